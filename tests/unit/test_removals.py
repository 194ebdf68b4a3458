# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of the removals after the final status (worker/removals.py)."""

from __future__ import annotations

import uuid

from actinia_resume_plugin.worker.removals import DeferredRemovals


class Log:
    def info(self, text):
        pass

    warning = info


def test_a_renamed_dir_is_removed_at_the_end_with_leftovers_of_killed_jobs(
        tmp_path):
    """A job killed while removing left its renamed dir: the next removal
    in the same parent takes it along, and nothing else."""
    base = tmp_path / "temp_db" / "job2"
    (base / "PERMANENT").mkdir(parents=True)
    leftover = tmp_path / "temp_db" / f"job1.removing-{uuid.uuid4().hex}"
    (leftover / "PERMANENT").mkdir(parents=True)
    (leftover / "PERMANENT" / "WIND").write_text("x")
    other = tmp_path / "temp_db" / "job3.removing-not-ours"
    other.mkdir()
    running = tmp_path / "temp_db" / "job4"
    running.mkdir()
    removals = DeferredRemovals(Log())
    removals.rename_away(base)
    assert not base.exists()
    renamed = removals.paths[0]
    removals.remove_all()
    left = sorted(p.name for p in (tmp_path / "temp_db").iterdir())
    assert left == ["job3.removing-not-ours", "job4"]
    assert not (tmp_path / "temp_db" / renamed).exists()


def test_nothing_is_swept_where_nothing_was_renamed(tmp_path):
    leftover = tmp_path / f"job1.removing-{uuid.uuid4().hex}"
    leftover.mkdir()
    removals = DeferredRemovals(Log())
    removals.add(tmp_path / "gone")
    removals.remove_all()
    assert leftover.exists()
