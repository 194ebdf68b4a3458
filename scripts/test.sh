#!/usr/bin/env bash
# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The test command (README, CI): installs what is missing, then
#   1. lint (ruff) and the docs (mkdocs build --strict): a typo or a broken
#      link fails in seconds
#   2. unit tests (tests/unit)           pure logic, seconds
#   3. real-stack tests (tests/integration): valkey + gunicorn actinia +
#      plugin over HTTP, each test session on its own loopback ports
#   scripts/test.sh --fast          steps 1 and 2 only
#   scripts/test.sh [pytest args]   extra arguments go to step 3, e.g. -k resume
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$REPO/scripts/install.sh"
cd "$REPO"
PY="$REPO/.venv/bin/python"
echo "== lint: ruff check"
"$REPO/.venv/bin/ruff" check .
echo "== docs: mkdocs build --strict"
"$REPO/.venv/bin/mkdocs" build --strict --quiet --site-dir "$(mktemp -d)"
echo "== unit tests"
"$PY" -m pytest tests/unit -q
if [ "${1:-}" = "--fast" ]; then
  exit 0
fi
echo "== real-stack tests"
exec "$PY" -m pytest tests/integration "$@"
