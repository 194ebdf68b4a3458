#!/usr/bin/env bash
# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
# Bring up the demo deployment: install what is missing, build the sample
# project, start valkey + gunicorn-served actinia with our plugin on
# 127.0.0.1, print the base URL and credentials, then run the main job
# (scripts/demo.py: a chain fails, is fixed and resumes).
#   ACTINIA_DATA (default .data/demo)  ACTINIA_PORT (default 8088)
#   SAVE_INTERIM_RESULTS (default True; or onError / False)
#   RUN_EXAMPLE=0 skips the demo job
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="${ACTINIA_DATA:-$REPO/.data/demo}"
PORT="${ACTINIA_PORT:-8088}"
"$REPO/scripts/install.sh"
state="$("$REPO/.venv/bin/python" "$REPO/scripts/stack.py" start --data "$DATA" \
  --port "$PORT" --bind "${ACTINIA_BIND:-127.0.0.1}" --save-interim-results "${SAVE_INTERIM_RESULTS:-True}" \
  --misc reuse_interim_results=True | tail -n1)"
# the URL stack.py reports (ACTINIA_PORT=0 picks a free port)
URL="$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["url"])' "$state")"
cat <<MSG

actinia with actinia_resume_plugin is running.
  base URL:     $URL
  credentials:  actinia-gdi:actinia-gdi (superadmin), resume-user:resume-user-pw (user),
                resume-admin:resume-admin-pw (admin of resume-user's group)
  config:       $DATA/actinia.cfg
  stop it with: scripts/stop.sh
  try it:       the curl examples in README.md ("Resuming a job"), from $REPO
MSG
if [ "${RUN_EXAMPLE:-1}" = "1" ]; then
  # the main job: a chain fails, is fixed and resumes (skip: RUN_EXAMPLE=0)
  "$REPO/.venv/bin/python" "$REPO/scripts/demo.py" "$URL" --resource-dir "$DATA/resources"
fi
