# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""The real-stack fixtures: deployments started on demand, one per
configuration (deployments.py), and a file server for input files (no
internet here). Only tests/integration sees them; the unit tests start no
stack."""

from __future__ import annotations

import os

import pytest

from .deployments import (
    DATA,
    Deployment,
    MountedStacks,
    StackFactory,
    serve,
)


@pytest.fixture(scope="session")
def mounted_stacks(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.fail("tests with their own file systems mount them: run as root")
    stacks = MountedStacks(tmp_path_factory.mktemp("mounted"))
    yield stacks
    stacks.stop_all()


@pytest.fixture(scope="session")
def stacks(tmp_path_factory):
    factory = StackFactory(tmp_path_factory.mktemp("stacks"))
    yield factory
    factory.stop_all()


@pytest.fixture(scope="session")
def stack_true(stacks) -> Deployment:
    """save_interim_results = True; jobs whose worker died are left to a
    PUT (the tests of what a PUT does with them), test_continuation.py has
    stacks that continue them by themselves."""
    return stacks.get("true", "--save-interim-results", "True",
                      "--misc", "continue_after_worker_loss=0")


@pytest.fixture(scope="session")
def stack_onerror(stacks) -> Deployment:
    """save_interim_results = onError"""
    return stacks.get("onerror", "--save-interim-results", "onError")


@pytest.fixture(scope="session")
def stack_false(stacks) -> Deployment:
    """save_interim_results = False"""
    return stacks.get("false", "--save-interim-results", "False")


@pytest.fixture(scope="session")
def file_server():
    """Serves tests/data on 127.0.0.1 (importer needs HEAD, mime, wget)."""
    server, url = serve(DATA)
    yield url
    server.shutdown()
