#!/usr/bin/env python3
"""Run the README's first job against a running deployment and print it."""

import json
import sys
import time
from pathlib import Path

import requests

BASE = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8088/api/v3"
AUTH = ("actinia-gdi", "actinia-gdi")
chain = json.loads(
    (Path(__file__).parent.parent / "config/examples/pc_first.json").read_text()
)
resp = requests.post(f"{BASE}/locations/nc_spm_08/processing_async",
                     json=chain, auth=AUTH, timeout=30)
status_url = resp.json()["urls"]["status"]
print(f"\nPOST -> {resp.status_code}, status URL: {status_url}")
for _ in range(120):
    doc = requests.get(status_url, auth=AUTH, timeout=30).json()
    if doc["status"] not in ("accepted", "running"):
        break
    time.sleep(0.5)
print(f"job {doc['status']}: {doc['message']}")
print(json.dumps(doc.get("process_results"), indent=2))
sys.exit(0 if doc["status"] == "finished" else 1)
