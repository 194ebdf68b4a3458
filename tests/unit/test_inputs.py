# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Input fingerprints (inputs.py): which mapsets and import sources a chain
reads, when they count as changed, and what that does to a plan."""

from __future__ import annotations

import os

from actinia_resume_plugin import inputs, planner, plans


def step(step_id, **kw):
    return {"id": step_id, "module": "r.mapcalc", **kw}


def value(text):
    return [{"param": "expression", "value": text}]


def importer(url, kind="vector"):
    return {"id": "imp", "module": "importer", "inputs": [{
        "import_descr": {"source": url, "type": kind},
        "param": "map", "value": "x"}]}


def test_read_mapsets_names_permanent_target_and_at_mapsets():
    steps = [step("a", inputs=value("x = elevation@PERMANENT + b@user1")),
             {"id": "e", "exe": "cat", "params": ["f@landsat"]},
             importer("http://me@host/x.json"),
             step("t", inputs=value("y = z@test_tmp_a"))]
    assert inputs.read_mapsets(steps, "target", "test_tmp_*") == [
        "PERMANENT", "landsat", "target", "user1"]


def test_mapset_fingerprint_sees_rewrites_not_locks(tmp_path):
    mapset = tmp_path / "PERMANENT"
    (mapset / "cellhd").mkdir(parents=True)
    header = mapset / "cellhd" / "elevation"
    header.write_text("rows: 1\n")
    first = inputs.mapset_fingerprint(str(mapset))
    (mapset / ".tmp").mkdir()
    (mapset / ".tmp" / "x").write_text("scratch")
    (mapset / ".gislock").write_text("1")
    assert inputs.mapset_fingerprint(str(mapset)) == first
    # same content, same mtime, new file: still a change
    copy = mapset / "cellhd" / ".new"
    copy.write_text("rows: 1\n")
    st = header.stat()
    os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(copy, header)
    assert inputs.mapset_fingerprint(str(mapset)) != first
    assert inputs.mapset_fingerprint(str(tmp_path / "nope")) == "missing"


class Head:
    """A stand-in for requests: HEAD answers with fixed headers."""

    def __init__(self, headers, status=200):
        self.headers, self.status_code = headers, status

    def head(self, url, **kw):
        return self


OLD = "Tue, 15 Sep 2020 12:26:40 GMT"
NOW = "Wed, 25 Nov 2026 21:00:00 GMT"


def test_source_fingerprint_uses_validators_and_distrusts_the_rest():
    descr = {"source": "http://127.0.0.1/a.json", "type": "vector"}
    good = inputs.source_fingerprint(descr, Head(
        {"Last-Modified": OLD, "Date": NOW, "Content-Length": "5"}))
    assert good["last_modified"] == OLD and "unknown" not in good
    assert "unknown" in inputs.source_fingerprint(
        descr, Head({"Content-Length": "5", "Date": NOW}))
    assert "unknown" in inputs.source_fingerprint(
        descr, Head({"Last-Modified": NOW, "Date": NOW}))  # racy
    assert "unknown" in inputs.source_fingerprint(descr, Head({}, 404))
    assert "unknown" in inputs.source_fingerprint(
        {"source": "PG:dbname=x", "type": "postgis"})
    assert inputs.source_fingerprint(
        {"source": "S2A_MSIL1C_X", "type": "sentinel2"})["immutable"]


def record(mapsets=None, sources=None):
    return {"version": inputs.VERSION, "roots": [],
            "mapsets": mapsets or {"PERMANENT": "p1"},
            "sources": sources or {}}


SRC = [{"source": "http://h/a", "type": "vector", "etag": "1"}]


def test_first_affected_step():
    assert inputs.first_affected_step(record(), record()) == (None, [])
    first, why = inputs.first_affected_step(
        record(), record({"PERMANENT": "p2"}))
    assert first == 0 and "PERMANENT" in why[0]
    changed = [dict(SRC[0], etag="2")]
    assert inputs.first_affected_step(
        record(sources={"2": SRC}), record(sources={"2": changed}))[0] == 2
    unknown = [dict(SRC[0], unknown="no validators")]
    assert inputs.first_affected_step(
        record(sources={"2": unknown}), record(sources={"2": unknown}))[0] == 2
    assert inputs.first_affected_step(None, record())[0] == 0


def test_plan_checked_starts_at_the_first_affected_step():
    fps = planner.step_fingerprints([step(str(i)) for i in range(6)])
    snaps = {i: fps[i] for i in range(5)}
    same = plans.plan_checked(fps, fps, 5, snaps, record(), record())
    assert same.start == 5 and same.inputs_changed is None
    assert "inputs_changed" not in same.to_json()
    new_src = [dict(SRC[0], etag="2")]
    plan = plans.plan_checked(fps, fps, 5, snaps, record(sources={"3": SRC}),
                              record(sources={"3": new_src}))
    assert plan.start == 3 and plan.restore_interim_result == 2
    assert "import source of step 3" in plan.notice
    plan = plans.plan_checked(fps, fps, 5, snaps, record(),
                              record({"PERMANENT": "p2"}))
    assert plan.start == 0 and plan.restore_interim_result is None
    assert plan.to_json()["inputs_changed"]


def test_check_restore_guards_the_worker():
    assert inputs.check_restore(record(), record({"PERMANENT": "x"}), 0) is None
    assert "changed" in inputs.check_restore(
        record(), record({"PERMANENT": "x"}), 3)
    assert inputs.check_restore(record(), record(), 3) is None
