# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures of the store's unit tests (one file per module of
``store/``). Every test here runs with each way of listing the live dirs:
GNU find (one, or two at once over a big tree) and the Python walk (its
fallback)."""

import pytest

from actinia_resume_plugin.store import (
    SnapshotStore,
    live_listing,
)
from tests.unit.store.helpers import make_mapset


@pytest.fixture(autouse=True, params=["find", "find-sharded", "python"])
def lister(request, monkeypatch):
    """Every store test runs with the three ways of listing the live dirs:
    GNU find, two finds over halves of the top-level names (the small
    trees here are sharded as a big one would be), and the Python walk
    (the fallback)."""
    if request.param == "python":
        monkeypatch.setattr(live_listing, "_find_command", lambda *a: None)
    if request.param == "find-sharded":
        monkeypatch.setattr(live_listing, "SHARD_MIN_PATHS", 0)
    return request.param


@pytest.fixture
def live(tmp_path):
    return {"mapset": make_mapset(tmp_path / "live" / "mapset"),
            "tmpdir": make_mapset(tmp_path / "live" / "tmpdir", tag=b"\x07")}


@pytest.fixture
def store(tmp_path):
    return SnapshotStore(tmp_path / "res" / "user" / "interim" / "job1")
