# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures of the store's unit tests (one file per module of
``store/``). Every test here runs with both ways of listing the live dirs:
GNU find (the fast path) and the Python walk (its fallback)."""

import pytest

from actinia_resume_plugin.store import (
    SnapshotStore,
    live_listing,
)
from tests.unit.store.helpers import make_mapset


@pytest.fixture(autouse=True, params=["find", "python"])
def lister(request, monkeypatch):
    """Every store test runs with both ways of listing the live dirs: GNU
    find (the fast path) and the Python walk (its fallback)."""
    if request.param == "python":
        monkeypatch.setattr(live_listing, "_find_command", lambda *a: None)
    return request.param


@pytest.fixture
def live(tmp_path):
    return {"mapset": make_mapset(tmp_path / "live" / "mapset"),
            "tmpdir": make_mapset(tmp_path / "live" / "tmpdir", tag=b"\x07")}


@pytest.fixture
def store(tmp_path):
    return SnapshotStore(tmp_path / "res" / "user" / "interim" / "job1")
