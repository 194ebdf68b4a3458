#!/usr/bin/env bash
# Run the whole test suite against the real stack (installs what is missing
# first). Extra arguments go to pytest, e.g. scripts/test.sh -k resume.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$REPO/scripts/install.sh"
cd "$REPO"
exec "$REPO/.venv/bin/python" -m pytest "$@"
