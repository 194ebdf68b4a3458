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

Where ``find`` is not GNU find (busybox in Alpine based images), is missing,
or fails for any reason (a path vanished while listing, permissions), the
caller falls back to its Python walk: :class:`ListingUnavailable`.
"""

from __future__ import annotations

import fcntl
import os
import queue
import shutil
import subprocess
import threading
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

_gnu_find: dict[str, bool] = {}


class ListingUnavailable(Exception):
    """``find`` cannot list this tree; use the Python walk."""


def _find_command(src: str, excluded_files: Iterable[str],
                  excluded_dirs: Iterable[str]) -> list[str] | None:
    find = shutil.which("find")
    if find is None or not _is_gnu_find(find):
        return None
    prune: list[str] = []
    for name in sorted(excluded_dirs):
        prune += ["(", "-name", name, "-type", "d", "-prune", ")", "-o"]
    for name in sorted(excluded_files):
        prune += ["-name", name, "-prune", "-o"]  # whatever its type
    # -H: follow ``src`` itself if it is a symlink, as ``os.scandir`` does
    return [find, "-H", os.path.abspath(src), "-mindepth", "1", *prune,
            "-printf", KEY_FORMAT + "\\0%P\\0"]


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
              excluded_dirs: Iterable[str] = ()) -> Iterator[list[str]]:
    """Yield flat lists ``[key, relpath, key, relpath, …]`` of every path
    below ``src`` (directories, files, symlinks, special files), skipping
    files named in ``excluded_files`` and directories named in
    ``excluded_dirs`` with their contents.

    Paths are decoded as ``os.fsdecode`` does (``os.scandir`` names are
    equal). Raises :class:`ListingUnavailable` when ``find`` is not GNU
    find or did not list the whole tree; the caller must then discard what
    it got and list again another way.
    """
    command = _find_command(src, excluded_files, excluded_dirs)
    if command is None:
        raise ListingUnavailable("no GNU find")
    try:
        proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL, env={"LC_ALL": "C", "PATH": os.defpath})
    except OSError as exc:
        raise ListingUnavailable(str(exc)) from exc
    try:
        yield from _records(proc.stdout)
    finally:
        proc.stdout.close()
        code = proc.wait()
    if code != 0:  # e.g. a path vanished or could not be read
        raise ListingUnavailable(f"find exited with {code}")


class SpooledListing:
    """:func:`list_tree` started now and read later, or while it runs:
    a thread drains ``find``'s pipe into memory as it comes, so ``find``
    walks the whole tree on the other core while this process does
    something else (an adoption parses the manifest it compares with
    meanwhile: 0.3-0.8 s each at 100,000 files), and the caller may take
    the records before ``find`` has ended (the comparison then runs on
    the part already listed while ``find`` stats the rest).

    ``identity`` is the ``(st_dev, st_ino)`` of ``src`` when the walk
    started: a caller that moves the tree (the claim of a kept mapset
    renames its parent) checks it is still the tree it lists, and waits
    (:meth:`wait`) until ``find`` has ended before it moves it. Raises
    :class:`ListingUnavailable` as :func:`list_tree` does (no GNU find
    now; :meth:`chunks` when ``find`` failed)."""

    def __init__(self, src: str, excluded_files: Iterable[str] = (),
                 excluded_dirs: Iterable[str] = ()):
        command = _find_command(src, excluded_files, excluded_dirs)
        if command is None:
            raise ListingUnavailable("no GNU find")
        st = os.stat(src)
        self.identity = (st.st_dev, st.st_ino)
        self._reads: queue.SimpleQueue = queue.SimpleQueue()
        try:
            self._proc = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                stdin=subprocess.DEVNULL,
                env={"LC_ALL": "C", "PATH": os.defpath})
        except OSError as exc:
            raise ListingUnavailable(str(exc)) from exc
        _widen_pipe(self._proc.stdout.fileno())
        self._drain = threading.Thread(target=self._drain_pipe, daemon=True,
                                       name="find-listing")
        self._drain.start()

    def _drain_pipe(self) -> None:
        """Read the pipe until ``find`` closes it (``None`` marks the
        end); ``os.read`` waits without the GIL."""
        fd = self._proc.stdout.fileno()
        try:
            while chunk := os.read(fd, _CHUNK):
                self._reads.put(chunk)
        except OSError:
            pass
        finally:
            self._reads.put(None)

    def _pending(self) -> Iterator[bytes]:
        while (chunk := self._reads.get()) is not None:
            yield chunk

    def chunks(self) -> Iterator[list[str]]:
        """The listing, as :func:`list_tree` yields it, as soon as ``find``
        has written it; raises :class:`ListingUnavailable` at the end when
        ``find`` failed (the caller discards what it got); once."""
        try:
            yield from _split_records(self._pending())
            code = self._proc.wait()
            if code != 0:
                raise ListingUnavailable(f"find exited with {code}")
        finally:
            self.close()

    def wait(self) -> None:
        """Until ``find`` has ended."""
        self._proc.wait()

    def close(self) -> None:
        """Stop ``find`` if it still runs and drop what it wrote."""
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._drain.join()
        self._proc.stdout.close()


def _widen_pipe(fd: int) -> None:
    """A pipe of 1 MiB (Linux' default limit for anyone) instead of 64 KiB:
    ``find`` does not wait for the draining thread while this process
    holds the GIL for a few milliseconds."""
    try:
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), _CHUNK)
    except OSError:
        pass


def _records(stream) -> Iterator[list[str]]:
    """:func:`_split_records` of what is read from ``stream``."""
    fd = stream.fileno()
    return _split_records(iter(lambda: os.read(fd, _CHUNK), b""))


def _split_records(reads: Iterable[bytes]) -> Iterator[list[str]]:
    """Split ``find``'s output into complete ``key, path`` pairs, a chunk at
    a time; a chunk is cut after a record so no name is split."""
    rest = b""
    for chunk in reads:
        data = rest + chunk if rest else chunk
        end = data.rfind(b"\0")
        if end >= 0 and data.count(b"\0") % 2:
            end = data.rfind(b"\0", 0, end)
        if end < 0:
            rest = data
            continue
        rest = data[end + 1:]
        yield os.fsdecode(data[:end]).split("\0")
    if rest:
        raise ListingUnavailable("find's output ended within a record")
