#!/usr/bin/env bash
# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
# Stop the demo deployment started by scripts/start.sh (only what it started).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$REPO/.venv/bin/python" "$REPO/scripts/stack.py" stop --data "${ACTINIA_DATA:-$REPO/.data/demo}"
echo "stopped"
