# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Pack files: many small objects in one file, ``objects/<id>.pack``.

Why: a GRASS step can write 100,000 files of a few bytes each (a tiling, a
loop over 10,000 maps). As loose objects (one file per distinct content)
their first save costs one file creation each (~0.1 ms on ext4, more than
``cp -a`` of the whole mapset). A pack holds the bytes of all the small new
objects of one save, back to back, and ends with its own index, as restic's
packs and git's packfiles do: a save of 40,000 new objects creates a file
or two, and a restore reads them from one file instead of opening 40,000.

Format: the blobs, then the index (JSON ``{"version": 1, "blobs": [[object,
offset, length], ...]}``), then a trailer: the index's length (8 bytes,
little endian), the xxh3-64 of the index (8 bytes) and :data:`MAGIC`. A
pack is written under a temporary name, flushed and renamed to its name
before any manifest names its objects; a pack that lost its trailer
(truncated, cut short) holds no object for a reader, and its objects count
as missing, with the reason kept in :attr:`PackIndex.damaged`. A blob's
bytes are checked against its name whenever they are read, as a loose
object's are.

A pack stays while any committed interim result needs one of its blobs
(:meth:`PackIndex.unneeded`); an object found in two packs (the same bytes
saved again after the live state was lost) is read from the newer one.
"""

from __future__ import annotations

import json
import os
import struct
import threading
import uuid
from typing import NamedTuple

import xxhash

from . import fsops
from .layout import OBJECT_TMP_PREFIX, temp_name

__all__ = ["MAGIC", "PACK_MAX_BYTES", "PACK_MIN_OBJECTS", "PACK_SUFFIX",
           "Blob", "PackIndex", "PackWriter", "blob_problem", "read_blob"]

PACK_SUFFIX = ".pack"
MAGIC = b"ARPACK1\n"
_TRAILER = struct.Struct("<Q8s8s")
#: A save packs its new small objects when it writes at least this many
#: (fewer stay loose files: nothing to gain, and pruning frees them
#: exactly).
PACK_MIN_OBJECTS = 256
#: A pack is closed and a new one begun past this size (a pack is removed
#: only when none of its blobs is needed any more).
PACK_MAX_BYTES = 64 * 1024 * 1024


class Blob(NamedTuple):
    """Where the bytes of one packed object are."""

    pack: str  # path of the pack file
    offset: int
    length: int


# pack path -> ((inode, size, mtime_ns), blobs or the reason it is unreadable)
_TRAILERS: dict[str, tuple[tuple, list | str]] = {}
_TRAILERS_LOCK = threading.Lock()


def read_index(path: str, st: os.stat_result) -> list | str:
    """The ``[[object, offset, length], ...]`` of the pack at ``path`` (or
    why it has none), parsed once per process for a pack unchanged since
    (packs are written once; the key catches a replaced file)."""
    key = (st.st_ino, st.st_size, st.st_mtime_ns)
    with _TRAILERS_LOCK:
        cached = _TRAILERS.get(path)
    if cached is not None and cached[0] == key:
        return cached[1]
    blobs = _parse_index(path, st.st_size)
    with _TRAILERS_LOCK:
        _TRAILERS[path] = (key, blobs)
    return blobs


def _parse_index(path: str, size: int) -> list | str:
    """Read and check a pack's trailer and index (see the module doc)."""
    if size < _TRAILER.size:
        return "has no index (cut short)"
    try:
        with open(path, "rb") as handle:
            handle.seek(size - _TRAILER.size)
            length, digest, magic = _TRAILER.unpack(handle.read(_TRAILER.size))
            if magic != MAGIC or length > size - _TRAILER.size:
                return "has no index (cut short or overwritten)"
            handle.seek(size - _TRAILER.size - length)
            raw = handle.read(length)
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if xxhash.xxh3_64_digest(raw) != digest:
        return "has a damaged index"
    try:
        doc = json.loads(raw)
        blobs = doc["blobs"]
        end = size - _TRAILER.size - length
        for obj, offset, blen in blobs:
            if not (isinstance(obj, str) and type(offset) is int  # noqa: E721
                    and type(blen) is int and 0 <= offset  # noqa: E721
                    and offset + blen <= end):
                raise ValueError(obj)
    except (ValueError, KeyError, TypeError):
        return "has a malformed index"
    return blobs


class PackIndex:
    """The packs of one ``objects/`` dir: which object is where.

    Loaded when first asked and again when the dir changed (a pack renamed
    in or removed changes the dir's mtime), so a long-lived store sees the
    packs another process wrote."""

    def __init__(self, objects_dir: str):
        self.dir = objects_dir
        self._where: dict[str, Blob] = {}
        self._packs: dict[str, list] = {}  # pack path -> its blobs
        self.damaged: dict[str, str] = {}  # pack path -> why it is unreadable
        self._dir_key: tuple | None = None

    def sync(self) -> None:
        """Reload when the dir changed since the last load."""
        try:
            st = os.stat(self.dir)
            key = (st.st_ino, st.st_mtime_ns)
        except OSError:
            key = None
        if key != self._dir_key:
            self._load()
            self._dir_key = key

    def _load(self) -> None:
        self._where, self._packs, self.damaged = {}, {}, {}
        try:
            with os.scandir(self.dir) as it:
                found = [(e.stat(follow_symlinks=False), e.path) for e in it
                         if e.name.endswith(PACK_SUFFIX)
                         and not e.name.startswith(".")]
        except (FileNotFoundError, NotADirectoryError):
            return
        # older packs first: an object in two packs is read from the newer
        for st, path in sorted(found, key=lambda f: (f[0].st_mtime_ns, f[1])):
            blobs = read_index(path, st)
            if isinstance(blobs, str):
                self.damaged[path] = blobs
            else:
                self._add(path, blobs)

    def _add(self, path: str, blobs: list) -> None:
        self._packs[path] = blobs
        where = self._where
        for obj, offset, length in blobs:
            where[obj] = Blob(path, offset, length)

    def added(self, path: str, blobs: list) -> None:
        """A pack this process has just written (no reload needed)."""
        self.sync()
        if path not in self._packs:
            self._add(path, blobs)

    def locate(self, obj: str) -> Blob | None:
        """Where the packed object ``obj`` is (None: not in a pack)."""
        return self._where.get(obj)

    def blobs_of(self, path: str) -> list:
        """The ``[[object, offset, length], ...]`` of a readable pack."""
        return self._packs[path]

    def packs(self) -> list[str]:
        """The paths of the readable packs."""
        return list(self._packs)

    def unneeded(self, referenced: set) -> list[str]:
        """Packs none of whose blobs a committed interim result needs
        (blobs read from a newer pack do not keep an older one), and packs
        without a readable index (their blobs count as missing anyway)."""
        where = self._where
        out = [path for path, blobs in self._packs.items()
               if not any(obj in referenced and where[obj].pack == path
                          for obj, _offset, _length in blobs)]
        return out + list(self.damaged)

    def missing_reason(self) -> str:
        """What to add to "is missing" when a pack could not be read."""
        if not self.damaged:
            return ""
        path, why = next(iter(self.damaged.items()))
        return f" (the pack {os.path.basename(path)} {why})"


def read_blob(blob: Blob, fd: int | None = None) -> bytes:
    """The bytes of ``blob`` (short when the pack was cut: check them with
    :func:`blob_problem`), through ``fd`` when the caller holds the pack
    open (a restore reads thousands of blobs of one pack)."""
    if fd is not None:
        return os.pread(fd, blob.length, blob.offset)
    with open(blob.pack, "rb") as handle:
        return os.pread(handle.fileno(), blob.length, blob.offset)


def blob_problem(data: bytes, obj: str, size: int) -> str | None:
    """What is wrong with the bytes read for object ``obj`` of ``size``
    bytes (None: intact): every reader of a packed object asks this."""
    if len(data) != size:
        return f"has {len(data)} bytes, recorded {size}"
    if xxhash.xxh3_128_hexdigest(data) != obj:
        return "does not match its recorded hash"
    return None


class PackWriter:
    """Writes the small new objects of one save into packs.

    Blobs are appended to a temporary file; :meth:`finish` writes the
    index, flushes the file and renames it to ``<id>.pack``. :meth:`abort`
    (a failed save) removes what it wrote."""

    def __init__(self, objects_dir: str):
        self.dir = objects_dir
        self.done: list[tuple[str, list]] = []  # (pack path, blobs)
        self._tmp: str | None = None
        self._fd: int | None = None
        self._blobs: list = []
        self._offset = 0

    def add(self, obj: str, data: bytes) -> None:
        """Append the bytes of the object ``obj``."""
        if self._fd is None:
            os.makedirs(self.dir, exist_ok=True)
            self._tmp = os.path.join(self.dir, temp_name(OBJECT_TMP_PREFIX))
            self._fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT
                               | os.O_EXCL | os.O_CLOEXEC, 0o444)
            self._blobs, self._offset = [], 0
        fsops.write_all(self._fd, data)
        self._blobs.append([obj, self._offset, len(data)])
        self._offset += len(data)
        if self._offset >= PACK_MAX_BYTES:
            self._close_pack()

    def finish(self) -> list[tuple[str, list]]:
        """Close the open pack; returns every pack written, flushed to disk
        and under its name (the caller orders them before the manifest)."""
        self._close_pack()
        if self.done:
            fsops.fsync_path(self.dir, directory=True)
        return self.done

    def _close_pack(self) -> None:
        if self._fd is None:
            return
        index = json.dumps({"version": 1, "blobs": self._blobs},
                           separators=(",", ":")).encode()
        fsops.write_all(self._fd, index + _TRAILER.pack(
            len(index), xxhash.xxh3_64_digest(index), MAGIC))
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = None
        # a random name: a pack is never replaced by another one
        final = os.path.join(self.dir, uuid.uuid4().hex + PACK_SUFFIX)
        os.replace(self._tmp, final)
        self._tmp = None
        self.done.append((final, self._blobs))

    def abort(self) -> None:
        """Remove the packs of a save that failed (no manifest names them)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            fsops.unlink_quietly(self._tmp)
        for path, _blobs in self.done:
            fsops.unlink_quietly(path)
        self.done = []
