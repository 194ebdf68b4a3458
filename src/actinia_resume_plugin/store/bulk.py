# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Build the state of 100,000 paths without the cyclic garbage collector.

Why: a job process holds about 200,000 objects of actinia, GRASS' Python
libraries and Flask before it touches the store. Parsing a manifest of
112,000 entries, a live record or a ``find`` listing makes several hundred
thousand new containers, and every 700 of them start a collection; the
full ones traverse the whole heap again. Measured on a resume in a kept
mapset of 112,000 paths in such a process: 0.7-0.87 s of 2.0-2.5 s were
the collector's. What the store builds in bulk (entry tuples, dicts of
them, lists of strings) holds no reference cycles, so pausing the collector
while it is built loses nothing: reference counting frees it as before, and
the collector runs again afterwards.

:func:`paused` nests and may be entered from several threads (the copy
threads of a restore): the collector is switched off by the first who
enters while it runs and on again by the last who leaves, never left off.
"""

from __future__ import annotations

import functools
import gc
import threading
from contextlib import contextmanager

__all__ = ["paused", "without_gc"]

_lock = threading.Lock()
_holders = 0
_switched_off = False


@contextmanager
def paused():
    """No cyclic garbage collection while the block runs."""
    global _holders, _switched_off
    with _lock:
        _holders += 1
        if _holders == 1 and gc.isenabled():
            gc.disable()
            _switched_off = True
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _switched_off:
                _switched_off = False
                gc.enable()


def without_gc(func):
    """Decorate a function that builds the state of many paths at once."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with paused():
            return func(*args, **kwargs)

    return wrapper
