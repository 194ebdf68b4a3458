# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of what an iteration tells its client (worker/report.py) and
of the removals deferred until the final status (worker/removals.py)."""

from __future__ import annotations

import os

from actinia_resume_plugin.store import KeptMapset
from actinia_resume_plugin.worker.removals import DeferredRemovals
from actinia_resume_plugin.worker.report import (
    decorate,
    for_client,
    relative_paths,
    resume_report,
)

from .test_saving import Log


def test_server_paths_become_relative_to_the_root_that_holds_them():
    text = ("cannot write /srv/res/u/interim/job1/steps/3 "
            "(see /srv/db/proj/mapset_a/cell); /etc/passwd")
    assert relative_paths(text, ["/srv/res/", None, "/srv/db"]) == (
        "cannot write u/interim/job1/steps/3 "
        "(see proj/mapset_a/cell); passwd")
    assert for_client(OSError("no space: /srv/res"), ["/srv/res"]) == \
        "no space: ."


def test_the_report_names_every_step_with_its_action():
    plan = {"start": 1, "restore_snapshot": 0,
            "actions": ["reused", "rerun"], "notice": "n",
            "source_resource_id": "resource_id-a"}
    assert resume_report(plan, 1, 3, ["a", "b"]) == {
        "iteration": 3, "start_step": 1, "restored_interim_result": 0,
        "steps": [{"id": "a", "action": "reused"},
                  {"id": "b", "action": "rerun"}],
        "notice": "n", "reused_from": "resource_id-a"}


def test_the_report_says_why_a_continued_iteration_runs():
    plan = {"continued": {"attempt": 1, "max_attempts": 3,
                          "previous_iteration": 1, "why": "heartbeat gone"}}
    report = resume_report(plan, 0, 2, ["a"])
    assert report["restored_interim_result"] is None
    assert report["steps"] == [{"id": "a", "action": "run"}]
    assert "1" in report["continued"] and "3" in report["continued"]
    assert (report["continued_from_iteration"], report["worker_lost"]) == (
        1, "heartbeat gone")
    assert "notice" not in report


def test_decorate_adds_the_report_and_the_note_to_a_final_status():
    running = decorate({"status": "running", "message": "m"}, {"x": 1}, "n")
    assert running == {"status": "running", "message": "m",
                       "resume": {"x": 1}}
    final = decorate({"status": "error", "message": "failed"}, None, "note")
    assert final == {"status": "error", "message": "failed. note"}


def test_removals_happen_at_the_end(tmp_path):
    base = tmp_path / "tmpdb"
    (base / "proj").mkdir(parents=True)
    removals = DeferredRemovals(Log())
    removals.rename_away(base)
    removals.rename_away(tmp_path / "missing")
    os.symlink(tmp_path, tmp_path / "link")
    removals.rename_away(tmp_path / "link")
    assert not base.exists() and (tmp_path / "link").is_symlink()
    [trash] = removals.paths
    assert os.path.basename(trash).startswith("tmpdb.removing-")
    assert os.path.isdir(trash)
    removals.add(None)
    removals.remove_all()
    assert not os.path.exists(trash) and removals.paths == [trash]


def test_a_kept_mapset_that_cannot_be_discarded_is_only_logged(tmp_path):
    class Broken(KeptMapset):
        def discard_all(self):
            raise OSError("busy")

    log = Log()
    removals = DeferredRemovals(log)
    removals.discard_kept(Broken(tmp_path, "u", "job1"))
    assert removals.paths == []
    assert ("warning", "Kept mapset clean-up: busy") in log.lines
