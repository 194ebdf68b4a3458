# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""List a live directory tree with GNU ``find``: the stat walk of a save.

Why not Python: every save stats every path of the live mapset to find what
the step changed. At 100,000 files a Python ``scandir``/``lstat`` loop costs
about 0.75 s of interpreter time on top of the 0.2 s the kernel needs; GNU
``find`` does the stat calls in C in its own process while this one reads
its output in parallel, and an unchanged file then costs one dict lookup and
one string comparison. Each path comes with an opaque *stat key*: the text
``find`` prints for the stat fields that change on any write (see
:data:`KEY_FORMAT`); equal keys mean an unchanged file, as equal
``os.stat`` tuples do in the Python walk.

A big tree is listed by two ``find`` processes at once, each over half of
the top-level names (:func:`_shards`): the stat calls are kernel time, and
on two cores two walks of 56,000 paths end in about half the time of one of
112,000. A save (:func:`list_tree`) compares what either has written as it
arrives; an adoption's early walk (:class:`SpooledListing`) gets the shards
one after the other, each subtree whole in ``find``'s pre-order (a dir
right before its contents), as from one ``find``.

Where ``find`` is not GNU find (busybox in Alpine based images), is missing,
or fails for any reason (a path vanished while listing, permissions), the
caller falls back to its Python walk: :class:`ListingUnavailable`.
"""

from __future__ import annotations

import fcntl
import os
import select
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterable, Iterator

__all__ = ["KEY_FORMAT", "ListingUnavailable", "SpooledListing",
           "list_tree"]

#: The stat key ``find`` prints for each path. Type and permission bits come
#: first (the lister reads them), then size, mtime, inode and ctime: what
#: :func:`.entry.live_key` compares for the Python walk.
KEY_FORMAT = "%y %m %s %T@ %i %C@"

#: Bytes read from ``find`` at most at a time: parsing what has arrived
#: overlaps with ``find`` stat-ing the next paths.
_CHUNK = 1 << 20

#: A tree estimated to hold fewer paths than this is listed by one ``find``
#: (a second process costs a fork and an exec, ~3 ms).
SHARD_MIN_PATHS = 20_000

#: How many ``find`` processes list one big tree (the machines have 2 cores).
SHARDS = 2

_gnu_find: dict[str, bool] = {}


class ListingUnavailable(Exception):
    """``find`` cannot list this tree; use the Python walk."""


def _find_command(src: str, excluded_files: Iterable[str],
                  excluded_dirs: Iterable[str],
                  starts: list[str] | None = None) -> list[str] | None:
    """The ``find`` command listing ``src`` whole, or (``starts``) only
    the top-level names ``starts`` of ``src``, run in ``src``: their
    paths come as ``./<rel>`` (a name like ``-x`` or ``(`` is never read
    as an option), :func:`_cut` drops the ``./``."""
    find = shutil.which("find")
    if find is None or not _is_gnu_find(find):
        return None
    prune: list[str] = []
    for name in sorted(excluded_dirs):
        prune += ["(", "-name", name, "-type", "d", "-prune", ")", "-o"]
    for name in sorted(excluded_files):
        prune += ["-name", name, "-prune", "-o"]  # whatever its type
    if starts is not None:
        # -P: a top-level symlink is listed, not followed, as below
        return [find, "-P", *(f"./{name}" for name in starts), *prune,
                "-printf", KEY_FORMAT + "\\0%p\\0"]
    # -H: follow ``src`` itself if it is a symlink, as ``os.scandir`` does
    return [find, "-H", os.path.abspath(src), "-mindepth", "1", *prune,
            "-printf", KEY_FORMAT + "\\0%P\\0"]


def _shards(src: str) -> list[list[str]] | None:
    """The top-level names of ``src`` split into :data:`SHARDS` groups of
    about the same number of paths below them, or None when one ``find``
    is enough (a small tree, a single name). The sizes are estimates from
    one ``lstat`` per top-level name: a dir's size (about 32 bytes a name
    on ext4) and its subdirs (its link count, 4 paths each assumed); a
    poor guess only makes one walk end later."""
    weights = []
    try:
        with os.scandir(src) as it:
            for item in it:
                st = item.stat(follow_symlinks=False)
                weight = 1
                if stat.S_ISDIR(st.st_mode):
                    weight += st.st_size // 32 + 4 * max(st.st_nlink - 2, 0)
                weights.append((weight, item.name))
    except OSError:
        return None  # one find says what is wrong, as ever
    if len(weights) < 2 or sum(w for w, _ in weights) < SHARD_MIN_PATHS:
        return None
    totals, groups = [0] * SHARDS, [[] for _ in range(SHARDS)]
    for weight, name in sorted(weights, reverse=True):
        lightest = totals.index(min(totals))
        totals[lightest] += weight
        groups[lightest].append(name)
    return [sorted(names) for names in groups if names]


def _is_gnu_find(find: str) -> bool:
    """Only GNU find has ``-printf`` (asked once per process)."""
    if find not in _gnu_find:
        try:
            out = subprocess.run([find, "--version"], capture_output=True,
                                 stdin=subprocess.DEVNULL, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            out = b""
        _gnu_find[find] = b"GNU findutils" in out
    return _gnu_find[find]


def list_tree(src: str, excluded_files: Iterable[str] = (),
              excluded_dirs: Iterable[str] = (), sharded: bool = True
              ) -> Iterator[list[str]]:
    """Yield flat lists ``[key, relpath, key, relpath, …]`` of every path
    below ``src`` (directories, files, symlinks, special files), skipping
    files named in ``excluded_files`` and directories named in
    ``excluded_dirs`` with their contents.

    A big tree is listed by :data:`SHARDS` ``find`` processes at once
    (``sharded``), their pipes read in turn as they fill (``poll``, no
    thread): each list holds records of one ``find``, in its order, but
    lists of different ones interleave. ``sharded=False``: one ``find``,
    the whole listing in pre-order (a dir right before its contents).

    Paths are decoded as ``os.fsdecode`` does (``os.scandir`` names are
    equal). Raises :class:`ListingUnavailable` when ``find`` is not GNU
    find or did not list the whole tree; the caller must then discard what
    it got and list again another way.
    """
    commands, strip = _commands(src, excluded_files, excluded_dirs, sharded)
    procs: list[subprocess.Popen] = []
    try:
        for command in commands:
            procs.append(_start(command, src))
        yield from _read_in_turn([p.stdout.fileno() for p in procs], strip)
        # every pipe is at its end: each find has ended or is ending
        codes = [proc.wait() for proc in procs]
    finally:
        for proc in procs:  # only those still running: a listing not read
            _stop(proc)     # to its end
    failed = [code for code in codes if code != 0]
    if failed:  # e.g. a path vanished or could not be read
        raise ListingUnavailable(f"find exited with {failed[0]}")


def _commands(src: str, excluded_files: Iterable[str],
              excluded_dirs: Iterable[str], sharded: bool
              ) -> tuple[list[list[str]], bool]:
    """The ``find`` commands listing ``src`` (one per shard), and whether
    their paths come with ``./`` in front."""
    shards = _shards(src) if sharded else None
    commands = [_find_command(src, excluded_files, excluded_dirs, names)
                for names in shards] if shards else \
        [_find_command(src, excluded_files, excluded_dirs)]
    if None in commands:
        raise ListingUnavailable("no GNU find")
    return commands, shards is not None


def _start(command: list[str], cwd: str) -> subprocess.Popen:
    """``find`` started with its output going to a (widened) pipe."""
    proc = _find_process(command, cwd, subprocess.PIPE)
    _widen_pipe(proc.stdout.fileno())
    return proc


def _find_process(command: list[str], cwd: str, stdout) -> subprocess.Popen:
    """One ``find`` of a listing, in ``cwd``, in the C locale."""
    try:
        return subprocess.Popen(
            command, stdout=stdout, stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL, cwd=cwd,
            env={"LC_ALL": "C", "PATH": os.defpath})
    except OSError as exc:
        raise ListingUnavailable(str(exc)) from exc


def _stop(proc: subprocess.Popen) -> None:
    """End a ``find`` that still runs (its listing is not wanted)."""
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    proc.stdout.close()


def _read_in_turn(fds: list[int], strip_dot: bool) -> Iterator[list[str]]:
    """The records (:func:`_cut`) of each pipe, read as it has data: no
    ``find`` waits on a full pipe while another one is read."""
    poller = select.poll()
    rests = {}
    for fd in fds:
        poller.register(fd, select.POLLIN)
        rests[fd] = b""
    while rests:
        for fd, _event in poller.poll():
            chunk = os.read(fd, _CHUNK)
            if not chunk:
                poller.unregister(fd)
                if rests.pop(fd):
                    raise ListingUnavailable(
                        "find's output ended within a record")
                continue
            records, rests[fd] = _cut(rests[fd] + chunk, strip_dot)
            if records is not None:
                yield records


class SpooledListing:
    """:func:`list_tree` started now and read later: each ``find`` writes
    its listing into a file in memory (``memfd``), never waiting for a
    reader, so the walks go on (on both cores) while this process does
    something else: an adoption's job sets up and reads the kept record
    meanwhile. A big tree is listed by two ``find`` processes at once
    (:func:`_shards`); :meth:`chunks` gives their records shard after
    shard, each as soon as its ``find`` has ended, so every subtree comes
    whole in pre-order (a dir right before its contents), as from one
    ``find``. No thread: a draining thread per pipe competed with this
    process for the interpreter lock.

    ``identity`` is the ``(st_dev, st_ino)`` of ``src`` when the walk
    started: a caller that moves the tree (the claim of a kept mapset
    renames its parent) checks it is still the tree it lists, and waits
    (:meth:`wait`) until ``find`` has ended before it moves it. Raises
    :class:`ListingUnavailable` as :func:`list_tree` does (no GNU find
    now; :meth:`chunks` when ``find`` failed)."""

    def __init__(self, src: str, excluded_files: Iterable[str] = (),
                 excluded_dirs: Iterable[str] = ()):
        st = os.stat(src)
        self.identity = (st.st_dev, st.st_ino)
        commands, self._strip = _commands(src, excluded_files,
                                          excluded_dirs, True)
        self._walks: list[tuple[subprocess.Popen, int]] = []
        try:
            for command in commands:
                self._walks.append(_spooled(command, src))
        except BaseException:
            self.close()
            raise

    def chunks(self) -> Iterator[list[str]]:
        """The listing, as :func:`list_tree` yields it, a shard once its
        ``find`` has ended; raises :class:`ListingUnavailable` at the end
        of a shard whose ``find`` failed (the caller discards what it
        got); once."""
        try:
            for proc, fd in self._walks:
                code = proc.wait()
                yield from _split_records(_spool_reads(fd), self._strip)
                if code != 0:
                    raise ListingUnavailable(f"find exited with {code}")
        finally:
            self.close()

    def wait(self) -> None:
        """Until every ``find`` has ended."""
        for proc, _fd in self._walks:
            proc.wait()

    def close(self) -> None:
        """Stop the ``find`` processes that still run and drop what they
        wrote."""
        walks, self._walks = self._walks, []
        for proc, fd in walks:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            os.close(fd)


def _spooled(command: list[str], cwd: str) -> tuple[subprocess.Popen, int]:
    """``find`` started with its output going to a new file in memory."""
    fd = _memory_file()
    try:
        return _find_process(command, cwd, fd), fd
    except ListingUnavailable:
        os.close(fd)
        raise


def _memory_file() -> int:
    """A file descriptor of an anonymous file (in memory on Linux)."""
    if hasattr(os, "memfd_create"):
        return os.memfd_create("find-listing")  # close-on-exec
    with tempfile.TemporaryFile() as handle:  # other systems
        return os.dup(handle.fileno())


def _spool_reads(fd: int) -> Iterator[bytes]:
    """What a spooled ``find`` wrote, a chunk at a time (its own offset:
    ``find`` shared the file's)."""
    offset = 0
    while chunk := os.pread(fd, _CHUNK, offset):
        offset += len(chunk)
        yield chunk


def _widen_pipe(fd: int) -> None:
    """A pipe of 1 MiB (Linux' default limit for anyone) instead of 64 KiB:
    a ``find`` does not wait while this process compares what it read
    or reads the other shard's pipe."""
    try:
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), _CHUNK)
    except OSError:
        pass


def _split_records(reads: Iterable[bytes], strip_dot: bool = False
                   ) -> Iterator[list[str]]:
    """Split ``find``'s output into complete ``key, path`` pairs, a chunk at
    a time (:func:`_cut`)."""
    rest = b""
    for chunk in reads:
        records, rest = _cut(rest + chunk if rest else chunk, strip_dot)
        if records is not None:
            yield records
    if rest:
        raise ListingUnavailable("find's output ended within a record")


def _cut(data: bytes, strip_dot: bool) -> tuple[list[str] | None, bytes]:
    """The complete records of ``data`` (``[key, path, …]``, or None) and
    the bytes after them: a chunk is cut after a record so no name is
    split. A chunk starts with a key, so every path follows a NUL:
    ``strip_dot`` drops the ``./`` in front of each (a shard's paths)."""
    end = data.rfind(b"\0")
    if end >= 0 and data.count(b"\0") % 2:
        end = data.rfind(b"\0", 0, end)
    if end < 0:
        return None, data
    records = data[:end]
    if strip_dot:
        records = records.replace(b"\0./", b"\0")
    return os.fsdecode(records).split("\0"), data[end + 1:]
