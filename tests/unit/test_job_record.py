# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""The job record parser: damaged records and fields count as missing."""

from __future__ import annotations

import json
import os

import pytest

from actinia_resume_plugin.store.job_record import (
    MAX_NESTING,
    chain_problem,
    nesting_problem,
    parse_job_record,
    read_job_record,
)

CHAIN = {"version": "1", "list": [{"id": "a", "module": "r.mapcalc"}]}
GOOD = {"chain": CHAIN, "fingerprints": ["f0"], "step_ids": ["a"],
        "failed_step": 0, "endpoint": "e", "core_class": "C",
        "request_url": "http://x/locations/p/processing_async",
        "project": "p", "mapset": None, "status": "error", "iteration": 2,
        "worker": {"pid": 1}, "updated": 1.5}


def test_intact_record_is_taken_as_is():
    record = parse_job_record(GOOD)
    assert not record.damaged and record.found
    assert record.get("failed_step") == 0 and record.get("chain") == CHAIN
    assert "mapset" not in record.data  # None is missing


@pytest.mark.parametrize("key, value", [
    ("failed_step", "3"), ("failed_step", -1), ("failed_step", True),
    ("failed_step", 1.5), ("fingerprints", "abc"), ("fingerprints", [1]),
    ("fingerprints", {"0": "x"}), ("step_ids", "a"), ("chain", "x"),
    ("chain", {"version": "1", "list": "x"}),
    ("chain", {"version": "1", "list": [1]}),
    ("chain", {"version": "1", "list": [{"id": "\ud800", "exe": "x"}]}),
    ("core_class", ["C"]), ("endpoint", 1), ("request_url", {}),
    ("worker", "pid"), ("iteration", 0), ("updated", "now"),
])
def test_damaged_field_is_dropped_and_named(key, value):
    record = parse_job_record({**GOOD, key: value})
    assert key not in record.data
    assert record.damaged and key.split("_")[0] in record.notice()
    others = set(GOOD) - {key, "mapset"}
    if key == "step_ids":
        others.discard("fingerprints")  # lengths can no longer be checked
    assert others <= set(record.data)


@pytest.mark.parametrize("doc", [[1], "x", 3, None, True])
def test_non_object_record_is_missing(doc):
    record = parse_job_record(doc)
    assert not record and record.damaged and record.found


@pytest.mark.parametrize("content", [
    b"", b'{"chain": {"vers', b"\xff\xfe{}", b"[" * 100000,
    b'{"a":' * 200 + b"1" + b"}" * 200,
])
def test_unreadable_file_is_missing(tmp_path, content):
    (tmp_path / "job.json").write_bytes(content)
    record = read_job_record(tmp_path)
    assert not record and record.damaged, record


def test_missing_record_is_not_damaged(tmp_path):
    record = read_job_record(tmp_path / "nope")
    assert not record and not record.damaged and not record.found


def test_symlink_fifo_and_directory_are_not_read(tmp_path):
    target = tmp_path / "other.json"
    target.write_text(json.dumps(GOOD))
    (tmp_path / "a").mkdir()
    os.symlink(target, tmp_path / "a" / "job.json")
    assert "symbolic link" in read_job_record(tmp_path / "a").notice()
    (tmp_path / "b").mkdir()
    os.mkfifo(tmp_path / "b" / "job.json")
    assert not read_job_record(tmp_path / "b")  # does not block
    (tmp_path / "c" / "job.json").mkdir(parents=True)
    assert read_job_record(tmp_path / "c").damaged
    (tmp_path / "d").write_text("a file, not a job root")
    assert not read_job_record(tmp_path / "d")


def test_chain_problem_and_nesting():
    assert chain_problem(CHAIN) is None
    assert "Step 0" in chain_problem({"version": "1", "list": [{"id": 1}]})
    deep = cur = {}
    for _ in range(MAX_NESTING + 1):
        cur["x"] = {}
        cur = cur["x"]
    assert "nested" in nesting_problem(deep)
    assert "Unicode" in nesting_problem({"\udc80": 1})
    assert nesting_problem({"a": ["\u00e4\U0001f600"]}) is None
