# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a manifest and the in-memory state record per path, and when a
live file's stat can be trusted.

An :class:`Entry` is one path of a part (file, directory or symlink). The
writing process also keeps, per file, the *live key* (the stat fields that
change on any write) it saw at its last save or restore: a file with an
equal key is unchanged, unless the key was *racy* (git's rule: taken within
the clock tick of a write, so a later rewrite could leave the stat as it
was; :func:`is_racy`). Racy entries are compared by content instead.

Helpers are called through this module (``entry.is_racy(...)``), so tests
can patch them where they are looked up.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import NamedTuple

from .layout import is_object_name

__all__ = [
    "RACY_MIN_MARGIN_NS",
    "Entry",
    "LiveState",
    "is_racy",
    "live_key",
    "now_coarse_ns",
]


class Entry(NamedTuple):
    """One path of a part.

    ``kind`` is ``f`` (file), ``d`` (directory) or ``l`` (symlink). Files
    record their content (``obj``: xxh3-128 hex of the bytes) and the stat
    the object had when it was stored (``oino``, ``octime``: kept in the
    format, never trusted: a timestamp cannot prove bytes are intact, the
    hash is checked on every restore). ``live`` is the stat key of
    the live file (in memory only, never written) and ``racy`` whether it
    was taken too close to a write to be trusted.
    """

    kind: str
    mode: int
    size: int = 0
    mtime_ns: int = 0
    obj: str = ""
    oino: int = 0
    octime: int = 0
    target: str = ""
    live: tuple = ()
    racy: bool = False

    def content(self) -> tuple:
        """What a restore reproduces: a change here belongs in a delta."""
        return (self.kind, self.mode, self.size, self.mtime_ns, self.obj,
                self.target)

    def to_json(self) -> list:
        """The manifest form (without the in-memory live key)."""
        if self.kind == "f":
            return ["f", self.mode, self.size, self.mtime_ns, self.obj,
                    self.oino, self.octime]
        if self.kind == "l":
            return ["l", self.mode, self.target]
        return ["d", self.mode]

    @classmethod
    def from_json(cls, doc) -> Entry:
        """Parse a manifest entry; ValueError for anything malformed."""
        # ``type(v) is int`` (not isinstance): bool is no int here. A
        # manifest of 100,000 entries is parsed on every resume: the file
        # case is checked inline and built without NamedTuple's defaults
        # (0.18 -> 0.11 s at 112,000 entries)
        if type(doc) is list and len(doc) == 7 and doc[0] == "f":  # noqa: E721
            _, mode, size, mtime_ns, obj, oino, octime = doc
            if (type(mode) is int and type(size) is int  # noqa: E721
                    and type(mtime_ns) is int and type(oino) is int  # noqa: E721
                    and type(octime) is int  # noqa: E721
                    and is_object_name(obj)):
                return _new(cls, ("f", mode, size, mtime_ns, obj, oino,
                                  octime) + _FILE_DEFAULTS)
        if not isinstance(doc, list) or not doc:
            raise ValueError("entry is not a list")
        kind = doc[0]
        if kind == "l" and len(doc) == 3 and _is_int(doc[1]) \
                and isinstance(doc[2], str):
            return cls("l", doc[1], target=doc[2])
        if kind == "d" and len(doc) == 2 and _is_int(doc[1]):
            return cls("d", doc[1])
        raise ValueError(f"malformed entry {doc!r:.80}")


_new = tuple.__new__
#: The fields a manifest's file entry does not hold (target, live, racy),
#: as the class defaults them.
_FILE_DEFAULTS = tuple(Entry._field_defaults[name]
                       for name in Entry._fields[7:])


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class LiveState:
    """What the writing process knows about the live dirs: the full state
    of the snapshot it last saved, restored or adopted (its base for the
    next delta), with the live stat of each file then.

    ``state``: part -> {rel: Entry}; ``modes``: part -> mode of the part's
    top dir; ``sources``: part -> realpath of the live dir.
    ``known_objects``: obj -> (oino, octime) of the objects stored; None:
    those of the state's files, worked out when a save asks
    (:attr:`objects`). ``foreign``: the objects dir of another job's store
    the state's objects are in (a restore for reuse across jobs); the next
    save takes them over.

    ``load`` instead of ``state``: the state is built on first use. Why:
    an adoption decides from the kept mapset's record which files are
    unchanged; the entries of 100,000 files (the manifest's parse and a new
    entry per file: 0.5 s) are needed only by a later save or keep, and a
    resume whose only step is the last one never saves. ``view(part)``
    answers what the state of ``part`` holds (paths, kinds, objects)
    before it is built (:meth:`entries_of`)."""

    def __init__(self, step: int, id: str, state: dict | None, modes: dict,
                 sources: dict, known_objects: dict | None = None,
                 foreign: str | None = None, *,
                 load: Callable[[], dict] | None = None,
                 view: Callable[[str], Mapping | None] | None = None):
        if (state is None) == (load is None):
            raise ValueError("a live state needs its state or a loader")
        self.step = step
        self.id = id
        self._state = state
        self._load = load
        self._view = view
        self.modes = modes
        self.sources = sources
        self.known_objects = known_objects
        self.foreign = foreign

    @property
    def state(self) -> dict:
        if self._state is None:
            self._state = self._load()
            self._load = self._view = None
        return self._state

    def entries_of(self, part: str) -> Mapping | None:
        """``{rel: Entry}`` of ``part`` (None: no such part), without
        building the state when it is not built yet."""
        if self._state is None and self._view is not None:
            return self._view(part)
        return self.state.get(part)

    @property
    def objects(self) -> dict:
        """``{object: (inode, ctime)}``: the objects the next save of the
        same store need not write again. Why lazy: after a restore or an
        adoption these are the state's files (100,000 tuples: 0.15 s),
        and a resume whose steps save nothing (the last step of
        ``processing_async``) never asks."""
        if self.known_objects is None:
            self.known_objects = {
                e.obj: (e.oino, e.octime) for entries in self.state.values()
                for e in entries.values() if e.kind == "f"}
        return self.known_objects


# --------------------------------------------------------------------------
# clock / racy rule
# --------------------------------------------------------------------------

_CLOCK_COARSE = getattr(time, "CLOCK_REALTIME_COARSE", None)


def now_coarse_ns() -> int:
    """Wall clock as the kernel uses it for file timestamps.

    Linux stamps files from the *coarse* realtime clock, which may lag
    ``time.time_ns()`` by up to one tick; reading the same clock avoids a
    file written "after" t0 getting an mtime that looks older than t0.
    """
    if _CLOCK_COARSE is not None:
        return time.clock_gettime_ns(_CLOCK_COARSE)
    return time.time_ns()


def _coarse_res_ns() -> int:
    if _CLOCK_COARSE is not None:
        return int(time.clock_getres(_CLOCK_COARSE) * 1e9)
    return 1_000_000


#: Minimum window before t0 in which an mtime is considered racy.
RACY_MIN_MARGIN_NS = 10_000_000
RACY_MARGIN_NS = max(2 * _coarse_res_ns(), RACY_MIN_MARGIN_NS)


def is_racy(mtime_ns: int, t0_ns: int) -> bool:
    """Could the file be rewritten later *without* its stat changing?

    ``t0_ns`` is read before any file of the save is stat-ed. A write after
    t0 gets an mtime >= t0 (same coarse clock), so only files whose mtime is
    within the clock's granularity of t0 (or in the future: clock skew on
    network file systems) can hide a later rewrite behind an identical stat.
    A timestamp that is a whole second suggests a file system with 1 s (or,
    FAT, 2 s) granularity; then a 2 s window is used in addition.
    """
    margin = RACY_MARGIN_NS
    if mtime_ns % 1_000_000_000 == 0:
        margin += 2_000_000_000
    return mtime_ns >= t0_ns - margin


def live_key(st: os.stat_result) -> tuple:
    """The stat fields that must be equal for a file to count as unchanged."""
    return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns,
            st.st_mode)
