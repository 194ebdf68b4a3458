#!/usr/bin/env bash
# Bring up the demo deployment: install what is missing, build the sample
# project, start valkey + gunicorn-served actinia with our plugin on
# 127.0.0.1, and print the base URL, credentials and a first curl example.
#   ACTINIA_DATA (default .data/demo)  ACTINIA_PORT (default 8088)
#   SAVE_INTERIM_RESULTS (default True; or onError / False)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="${ACTINIA_DATA:-$REPO/.data/demo}"
PORT="${ACTINIA_PORT:-8088}"
"$REPO/scripts/install.sh"
state="$("$REPO/.venv/bin/python" "$REPO/scripts/stack.py" start --data "$DATA" \
  --port "$PORT" --bind "${ACTINIA_BIND:-127.0.0.1}" --save-interim-results "${SAVE_INTERIM_RESULTS:-True}" | tail -n1)"
URL="http://127.0.0.1:$PORT/api/v3"
cat <<MSG

actinia with actinia_resume_plugin is running.
  base URL:     $URL
  credentials:  actinia-gdi:actinia-gdi (superadmin), resume-user:resume-user-pw (user)
  config:       $DATA/actinia.cfg
  stop it with: scripts/stop.sh

First job (a chain with an r.info step), then its status:
  curl -s -u actinia-gdi:actinia-gdi -H 'Content-Type: application/json' \\
    -d @$REPO/config/examples/pc_first.json $URL/locations/nc_spm_08/processing_async
  curl -s -u actinia-gdi:actinia-gdi <urls.status from the answer>
MSG
if [ "${RUN_EXAMPLE:-1}" = "1" ]; then
  "$REPO/.venv/bin/python" "$REPO/scripts/example_job.py" "$URL"
fi
