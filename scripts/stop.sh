#!/usr/bin/env bash
# Stop the demo deployment started by scripts/start.sh (only what it started).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$REPO/.venv/bin/python" "$REPO/scripts/stack.py" stop --data "${ACTINIA_DATA:-$REPO/.data/demo}"
echo "stopped"
