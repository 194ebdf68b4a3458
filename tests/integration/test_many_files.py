# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue #10: a mapset of thousands of files through save, kill -9 of the
job process in the middle of a save, resume and clean-up.

Real stack over HTTP (conftest.py). Two `exe` steps (/bin/sh running
r.mapcalc with 100 expressions per call) make 500 FCELL maps each (10 files
+ 1 dir per map: ~5,000 files per step); the job is killed while the
interim result of the second one is being written; the PUT must restore the
last complete interim result (after the first, ~5,000 files), run the second
again and give the right values; after success nothing of the job is left
below the resource dir.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from polling import poll

from actinia_resume_plugin.store import SnapshotStore

from .chains import box_region, chain, sh, univar
from .jobs import put_until_not

ASYNC = "processing_async"
BATCH = 100
BATCHES = 5  # 500 maps per step


def many_maps(step_id: str, prefix: str, offset: int) -> dict:
    """An exe step making BATCH * BATCHES FCELL maps in a 4x4 region:
    ``{prefix}_{b}_{i} = (b * BATCH + i) / 3 + offset``."""
    script = (
        f": {step_id}; b=0; while [ $b -lt {BATCHES} ]; do i=0; "
        f"while [ $i -lt {BATCH} ]; do "
        f'echo "{prefix}_${{b}}_$i = float($b * {BATCH} + $i) / 3 + {offset}"; '
        "i=$((i+1)); done | r.mapcalc file=- --quiet || exit 1; "
        "b=$((b+1)); done")
    return sh(step_id, script)


def many_files_chain() -> dict:
    return chain(
        box_region(4, 4),
        many_maps("many_a", "a", 0),
        many_maps("many_b", "b", 1000),
        univar("univar_a", "a_3_42"),
        univar("univar_b", "b_4_99"),
    )


def interim_dir(dep, status_url: str) -> Path:
    user, rid = status_url.rstrip("/").split("/")[-2:]
    return dep.resource_dir / user / "interim" / rid


def _stack_pgids(dep) -> set[int]:
    state = json.loads((dep.data / "run" / "stack.json").read_text())
    return set(state["pids"])


def _object_count(objects: Path) -> int:
    """Loose objects plus the bytes of pack files (and of a pack being
    written): grows while a save writes."""
    total = 0
    for item in os.scandir(objects):
        if item.is_dir(follow_symlinks=False):
            total += len(os.listdir(item.path))
        else:
            total += item.stat(follow_symlinks=False).st_size
    return total


def _kill_during_save_of_step_2(dep, store: Path) -> int:
    """Wait until interim result 1 is committed and the save of step 2 has
    written objects but not committed; then kill -9 the job process.
    Returns the number of objects after interim result 1."""
    steps, objects = store / "steps", store / "objects"
    deadline = time.monotonic() + 300
    committed = None
    while time.monotonic() < deadline:
        try:
            done = os.listdir(steps)
        except FileNotFoundError:
            done = []
        assert "000002" not in done, "the save of step 2 was not observed"
        if "000001" in done:
            if committed is None:
                committed = _object_count(objects)
            elif _object_count(objects) > committed:
                break
        time.sleep(0.002)
    else:
        raise AssertionError("no save of step 2 was observed")
    pid = json.loads((store / "job.json").read_text())["worker"]["pid"]
    # only ever kill a process of the stack we started
    assert os.getpgid(pid) in _stack_pgids(dep)
    os.kill(pid, signal.SIGKILL)
    return committed


def test_many_files_kill_mid_save_resume_and_clean_up(stack_true, tmp_path):
    client = stack_true.client()
    resp = client.post_chain(ASYNC, many_files_chain())
    url = resp.json()["urls"]["status"]
    store = interim_dir(stack_true, url)

    _kill_during_save_of_step_2(stack_true, store)
    doc = client.wait(url, timeout=120)
    assert doc["status"] == "error", doc
    # the half-written interim result is invisible, the complete one intact
    snapshots = SnapshotStore(store)
    assert snapshots.steps() == [0, 1]
    copy = tmp_path / "interim-result-1"
    snapshots.restore(1, {"mapset": copy})
    files = sum(len(names) for _d, _s, names in os.walk(copy))
    assert files >= 5000, files

    # if the job still shows as running, the PUT waits for the heartbeat
    resp = put_until_not(client, url)
    assert resp.status_code == 200, resp.text
    doc = client.wait(url, iteration=2, timeout=300)
    assert doc["status"] == "finished", doc["message"]
    assert doc["resume"]["restored_interim_result"] == 1
    assert doc["resume"]["start_step"] == 2
    a, b = doc["process_results"]["univar_a"], doc["process_results"][
        "univar_b"]
    assert int(a["n"]) == int(b["n"]) == 16
    assert abs(float(a["mean"]) - (3 * BATCH + 42) / 3) < 1e-3, a
    assert abs(float(b["mean"]) - ((4 * BATCH + 99) / 3 + 1000)) < 1e-2, b

    # clean-up after success: the interim root and its renamed copy go
    # (after `finished` was sent), and so do renamed temp databases
    interim = store.parent
    temp_db = stack_true.data / "workspace" / "temp_db"
    def leftovers():
        left = [n for n in os.listdir(interim)
                if n == store.name or (n.startswith(f".{store.name}.")
                                       and ".deleted-" in n)]
        return left + [n for n in os.listdir(temp_db) if ".removing-" in n]
    poll(lambda: not leftovers(),
         "the interim root and renamed temp databases to go", 120)
