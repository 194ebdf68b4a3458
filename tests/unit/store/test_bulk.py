# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""The collector pause of bulk building: never left off, nests, threads."""

import gc
import threading

import pytest

from actinia_resume_plugin.store import bulk


@pytest.fixture(autouse=True)
def collector_on():
    gc.enable()
    yield
    gc.enable()


def test_paused_switches_the_collector_off_and_on_again():
    with bulk.paused():
        assert not gc.isenabled()
        with bulk.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer block still builds
    assert gc.isenabled()


def test_an_error_inside_switches_it_on_again():
    with pytest.raises(KeyError):
        with bulk.paused():
            raise KeyError("x")
    assert gc.isenabled()


def test_a_collector_switched_off_by_the_caller_stays_off():
    gc.disable()
    with bulk.paused():
        pass
    assert not gc.isenabled()


def test_the_last_thread_to_leave_switches_it_on():
    inside, leave = threading.Event(), threading.Event()

    def other():
        with bulk.paused():
            inside.set()
            leave.wait()

    thread = threading.Thread(target=other)
    thread.start()
    inside.wait()
    with bulk.paused():
        pass
    assert not gc.isenabled()  # the other thread is still inside
    leave.set()
    thread.join()
    assert gc.isenabled()


def test_without_gc_keeps_the_function():
    @bulk.without_gc
    def build(n):
        """Docstring."""
        assert not gc.isenabled()
        return list(range(n))

    assert build(3) == [0, 1, 2] and build.__doc__ == "Docstring."
    assert gc.isenabled()
