# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""The file-system primitives of the store: copy while hashing, flush,
write sealed JSON atomically, remove trees.

Why one module: every byte the store writes or restores passes through
:func:`copy_hashing` or :func:`copy_fd_verified`, so the content check
(xxh3-128) costs no extra read, and every durable write goes through the
same fsync / rename order. The rest of the store calls these through the
module (``fsops.copy_hashing(...)``), so tests can patch one primitive
(a crash in the middle of a copy, a full disk) where it is looked up.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Union

import xxhash

from .layout import SealingWriter

__all__ = [
    "CHUNK",
    "copy_fd_verified",
    "copy_hashing",
    "fsync_path",
    "hash_file",
    "is_no_space",
    "pid_alive",
    "read_small_hashing",
    "rmtree",
    "syncfs",
    "unlink_quietly",
    "write_json_atomic",
    "write_all",
    "write_new",
    "write_sealed",
]

PathLike = Union[str, "os.PathLike[str]"]

#: Bytes read and hashed at a time.
CHUNK = 1 << 20


def hash_file(path: str) -> str:
    """xxh3-128 of a file's bytes (hex)."""
    digest = xxhash.xxh3_128()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def copy_hashing(src: str, dst: str) -> str:
    """Copy ``src`` to the new file ``dst`` (mode 0o444), hashing the bytes
    as they pass: the content check costs no extra read."""
    digest = xxhash.xxh3_128()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with open(src, "rb", buffering=0) as fsrc:
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        try:
            while n := fsrc.readinto(buf):
                digest.update(view[:n])
                done = 0
                while done < n:
                    done += os.write(fd, view[done:n])
        finally:
            os.close(fd)
    return digest.hexdigest()


def read_small_hashing(src: str, limit: int = CHUNK
                       ) -> tuple[bytes, str] | None:
    """``(bytes, xxh3-128 hex)`` of a file of at most ``limit`` bytes, read
    in one call; None when it is larger (the caller copies it).

    Why: most files of a GRASS mapset are a few bytes to a few KB, and many
    hold equal bytes (headers, ranges, colour rules of maps made alike).
    Hashing them before anything is written means an object that is stored
    already costs one read and no new file (a temporary copy created and
    removed again was most of the first save of 100,000 files)."""
    fd = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
    try:  # os.read, not open(): 100,000 file objects cost a second
        data = os.read(fd, limit + 1)
        while len(data) <= limit and (more := os.read(fd, limit + 1
                                                     - len(data))):
            data += more
    finally:
        os.close(fd)
    if len(data) > limit:
        return None
    return data, xxhash.xxh3_128_hexdigest(data)


def write_new(dst: str, data: bytes) -> os.stat_result:
    """Write ``data`` to the new file ``dst`` (mode 0o444; FileExistsError
    when it exists) and return its stat. A write that fails (a full disk)
    removes the file again."""
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    try:
        write_all(fd, data)
        st = os.fstat(fd)
    except BaseException:
        os.close(fd)
        unlink_quietly(dst)
        raise
    os.close(fd)
    return st


def write_all(fd: int, data) -> None:
    """Write all of ``data`` to ``fd`` (``os.write`` may write less)."""
    view, done = memoryview(data), 0
    while done < len(view):
        done += os.write(fd, view[done:])


_BUFFERS = threading.local()


def _copy_buffer() -> bytearray:
    """One copy buffer per thread (a new 1 MiB buffer per file would cost
    more than copying 100,000 small files)."""
    buf = getattr(_BUFFERS, "buf", None)
    if buf is None:
        buf = _BUFFERS.buf = bytearray(CHUNK)
    return buf


def _copy_fd_hashing(fd_src: int, fd_dst: int | None
                     ) -> tuple[str, int, int]:
    """Copy the rest of ``fd_src`` to ``fd_dst`` through this process,
    hashing the bytes as they pass: the bytes written are the bytes
    hashed, so a restore checks every byte it puts into a live mapset for
    the cost of the copy (xxh3 runs at memory speed and drops the GIL).
    ``fd_dst=None`` only hashes (the read-back of a kernel copy).
    Returns ``(xxh3-128 hex, bytes, ns spent hashing)``."""
    digest = xxhash.xxh3_128()
    buf = _copy_buffer()
    view = memoryview(buf)
    total = hashing = 0
    clock = time.perf_counter_ns
    while n := os.readv(fd_src, [buf]):
        chunk = view[:n]
        started = clock()
        digest.update(chunk)
        hashing += clock() - started
        done = 0 if fd_dst is not None else n
        while done < n:
            done += os.write(fd_dst, chunk[done:])
        total += n
    started = clock()
    hexdigest = digest.hexdigest()
    return hexdigest, total, hashing + clock() - started


def copy_fd_verified(fd_src: int, fd_dst: int, size: int
                     ) -> tuple[str, int, int]:
    """Copy ``fd_src`` to the new file ``fd_dst`` and hash the bytes the
    destination holds: small files through this process (one read, hashed
    as they pass), large ones in the kernel (``copy_file_range``, no copy
    through user space) and then read back from the page cache and hashed
    (the bytes now in the live mapset). Returns ``(xxh3-128 hex, bytes,
    ns spent hashing)``."""
    if size <= CHUNK:
        return _copy_fd_hashing(fd_src, fd_dst)
    try:
        while os.copy_file_range(fd_src, fd_dst, 1 << 30):
            pass
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL,
                             errno.EOPNOTSUPP, errno.EBADF, errno.EPERM):
            raise
        os.lseek(fd_src, 0, os.SEEK_SET)
        os.lseek(fd_dst, 0, os.SEEK_SET)
        os.ftruncate(fd_dst, 0)
        return _copy_fd_hashing(fd_src, fd_dst)
    os.lseek(fd_dst, 0, os.SEEK_SET)
    return _copy_fd_hashing(fd_dst, None)


def fsync_path(path: PathLike, directory: bool = False) -> None:
    """fsync a file or directory by name, as far as the file system lets
    us (a failure here only weakens durability, never correctness)."""
    flags = os.O_RDONLY | (os.O_DIRECTORY if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_LIBC = None


def syncfs(path: PathLike) -> None:
    """Flush the file system holding ``path`` (one syscall instead of one
    fsync per new object: a step adding 10,000 small files stays fast)."""
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _LIBC.syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def write_sealed(handle, data: dict, writer=None) -> None:
    """``data`` as sealed JSON (see :mod:`.layout`) into a text handle;
    ``writer(handle, data)`` streams a large document instead of one
    ``json.dumps``."""
    sealing = SealingWriter(handle)
    if writer is not None:
        writer(sealing, data)
    else:
        sealing.write(json.dumps(data, separators=(",", ":")))
    sealing.close_seal()


def write_json_atomic(path: Path, data: dict, writer=None) -> None:
    """Write ``data`` as sealed JSON: tmp file in the same dir, fsync,
    os.replace (readers see the old or the new file, never a part)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            write_sealed(handle, data, writer)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        unlink_quietly(tmp)
        raise
    fsync_path(path.parent, directory=True)


def rmtree(path: PathLike) -> None:
    """Remove a tree; read-only dirs (GRASS writes some) are made writable,
    entries removed concurrently are ignored."""

    def onexc(func, failed, exc):
        if isinstance(exc, FileNotFoundError):
            return
        try:
            os.chmod(os.path.dirname(failed), 0o700)
            func(failed)
        except FileNotFoundError:
            pass

    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, onexc=onexc)
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def unlink_quietly(path: PathLike) -> None:
    """Remove what a failed write left; it may not exist."""
    try:
        os.unlink(path)
    except OSError:
        pass


def is_no_space(exc: OSError) -> bool:
    """A full file system or quota: the store stops saving, the job goes on."""
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


def pid_alive(pid: int) -> bool:
    """Is a local process of this id running (a leftover of it is not
    stale)?"""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
