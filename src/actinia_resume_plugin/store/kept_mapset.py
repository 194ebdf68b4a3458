# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""The failed iteration's own directories, kept for the next iteration.

Why: a resume used to copy the whole interim result back into a fresh
temporary mapset, although the failed job's mapset held almost exactly that
state a moment ago and actinia deleted it at the end of the job. Creating
100,000 inodes costs seconds on any file system; not deleting them costs
nothing. So at a failure the worker *renames* the iteration's temporary
mapset, its temporary file directory and its additional mapsets here,
together with what it knew about them (the stat of every file at its last
save or restore: the *live record*), and the next iteration adopts them
(:mod:`.adoption`) instead of restoring.

Layout below the user's resource storage (so the kept dirs are disk the
user pays for: counted in ``resource_storage`` and ``grass_resource_quota``)::

    {grass_resource_dir}/{user}/kept_mapsets/<resource_id>/
        live-record            header (JSON) + one record per file
        mapset/ tmpdir/ mapsets/<name>/    the parts, as the snapshot names them
    kept_mapsets/.<resource_id>.keeping-<hex>   being kept (not yet valid)
    kept_mapsets/.<resource_id>.adopting-<hex>  claimed by an adoption
    kept_mapsets/.<resource_id>.deleted-<hex>   being removed (trash)

Rules (the *why*):

* **Only renames.** Keeping moves directory entries, never data; it needs
  ``grass_tmp_database`` and ``grass_resource_dir`` on one file system
  (otherwise nothing is kept and the next resume restores from the store).
* **Crash-safe by name.** A kept mapset is valid only under its plain name
  ``<resource_id>``, which is given last (one rename, after the record is
  fsynced). An adoption first renames it to ``.adopting-…`` (its claim):
  whatever happens to the adoption afterwards, no later resume takes a
  half-repaired mapset for a kept one; it restores from the store instead.
* **A cache, never the truth.** The snapshot store holds every interim
  result; a kept mapset only saves copying it back. It may be removed at any
  time (quota, retention, ``DELETE /resource_storage``), and is removed when
  the job succeeds or is terminated.
* **One per job.** Keeping replaces the previous kept mapset of the job;
  another job (reuse across jobs) never adopts it.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import stat
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import xxhash

from . import fsops
from .bulk import without_gc
from .entry import Entry
from .layout import KEPT_DIR, check_component, is_object_name

__all__ = [
    "KeptMapset",
    "KeptRecord",
    "RECORD_NAME",
    "key_string",
    "kept_resource_id",
]

RECORD_NAME = "live-record"
RECORD_VERSION = 3  # 2: header last, in chunks; 3: dirs, links, modes
_READABLE_VERSIONS = (2, 3)
KEEPING = "keeping"
ADOPTING = "adopting"
DELETED = "deleted"
_LEFTOVER_RE = re.compile(
    r"^\.(?P<rid>[^/]+)\.(?P<what>keeping|adopting|deleted)-[0-9a-f]{32}$")


def kept_resource_id(name: str) -> str | None:
    """The job a name below ``kept_mapsets/`` belongs to (a kept mapset,
    one being kept or adopted), ``None`` for trash and foreign names."""
    match = _LEFTOVER_RE.match(name)
    if match is not None:
        return None if match.group("what") == DELETED else match.group("rid")
    if name.startswith(".") or not name:
        return None
    return name


def _ts(ns: int) -> str:
    """A timestamp in ns as GNU find's ``%T@``/``%C@`` prints it."""
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}0"


def key_string(live) -> str:
    """The stat key of a live file in the text form of
    :data:`.live_listing.KEY_FORMAT` (``f <perm> <size> <mtime> <inode>
    <ctime>``), from either form the store keeps in memory: the text ``find``
    printed or the tuple ``(size, mtime_ns, ino, ctime_ns, mode)`` of a
    Python ``lstat``. One form on disk, compared as text to a ``find``
    listing."""
    if isinstance(live, str):
        return live
    size, mtime_ns, ino, ctime_ns, mode = live
    return (f"f {stat.S_IMODE(mode):o} {size} {_ts(mtime_ns)} {ino} "
            f"{_ts(ctime_ns)}")


def stat_key_string(st: os.stat_result) -> str:
    """:func:`key_string` of an ``lstat`` (the Python walk's form)."""
    kind = "d" if stat.S_ISDIR(st.st_mode) else (
        "l" if stat.S_ISLNK(st.st_mode) else (
            "f" if stat.S_ISREG(st.st_mode) else "?"))
    return (f"{kind} {stat.S_IMODE(st.st_mode):o} {st.st_size} "
            f"{_ts(st.st_mtime_ns)} {st.st_ino} {_ts(st.st_ctime_ns)}")


def content_string(entry) -> str:
    """What a file held (mode, size, mtime, object) as one text: compared
    when the plan starts from another interim result than the one the
    kept state was saved or restored as, and the file's entry when an
    adoption decides from the record (:func:`entry_of_content`)."""
    return f"{entry.mode} {entry.size} {entry.mtime_ns} {entry.obj}"


def layout_string(entry) -> str:
    """A dir (``d <mode>``) or symlink (``l <mode> <target>``) as one
    text: the paths of the state that are not files (record v3)."""
    if entry.kind == "l":
        return f"l {entry.mode} {entry.target}"
    return f"d {entry.mode}"


def entry_of_content(text: str) -> Entry:
    """The entry a :func:`content_string` describes (the stored object's
    inode and ctime are not in it: 0, as for a packed object);
    ValueError for anything malformed."""
    mode, size, mtime_ns, obj = text.split(" ")
    if not is_object_name(obj):
        raise ValueError("live record names no object")
    return Entry("f", int(mode), int(size), int(mtime_ns), obj)


def entry_of_layout(text: str) -> Entry:
    """The entry a :func:`layout_string` describes; ValueError."""
    kind, _, rest = text.partition(" ")
    if kind == "l":
        mode, _, target = rest.partition(" ")
        return Entry("l", int(mode), target=target)
    if kind != "d":
        raise ValueError("live record holds an unknown kind of path")
    return Entry("d", int(rest))


class RecordEntries(Mapping):
    """The planned state of one part as a record (v3) holds it, read as
    ``{rel: Entry}`` without building 100,000 entries: an entry is made
    when it is asked for. What an adoption hands to the mapset-name
    rewrite (paths, kinds, objects) before the state is built from the
    manifests."""

    def __init__(self, files: dict, layout: dict):
        self.files = files  # rel -> content_string
        self.layout = layout  # rel -> layout_string

    def __getitem__(self, rel: str) -> Entry:
        text = self.files.get(rel)
        if text is not None:
            return entry_of_content(text)
        return entry_of_layout(self.layout[rel])

    def __contains__(self, rel) -> bool:
        return rel in self.files or rel in self.layout

    def __iter__(self):
        yield from self.files
        yield from self.layout

    def __len__(self) -> int:
        return len(self.files) + len(self.layout)


@dataclass
class KeptRecord:
    """The header and the files of a live record.

    ``keys``: part -> {rel: stat key} of the files whose key can be trusted
    (a racy key is not recorded: such a file is put back). Their content is
    that of snapshot ``snapshot_id``'s state (the store's live state always
    is a committed snapshot's state); for a plan starting from another
    snapshot, :meth:`contents` gives what each file held."""

    resource_id: str
    step: int
    snapshot_id: str
    mapset_name: str
    iteration: int | None
    created: float
    parts: list  # the part names
    keys: dict = field(default_factory=dict)
    _contents: dict = field(default_factory=dict, repr=False)
    # v3: part -> mode of its top dir, and the dirs and symlinks per part;
    # None: a v2 record (the adoption reads the state from the manifests)
    modes: dict | None = None
    _layout: dict | None = field(default=None, repr=False)

    def contents(self, part: str) -> dict:
        """``{rel: content_string}`` of ``part`` (parsed on first use)."""
        return _pairs(self._contents, part)

    def holds_state(self) -> bool:
        """Does the record hold the whole state it was kept with (every
        path and mode: v3), so that an adoption of that state needs no
        manifest?"""
        return self._layout is not None

    def layout(self, part: str) -> dict:
        """``{rel: layout_string}`` of ``part``'s dirs and symlinks (v3)."""
        return _pairs(self._layout or {}, part)

    def entries(self, part: str) -> RecordEntries:
        """The state of ``part`` the record holds, as ``{rel: Entry}``."""
        return RecordEntries(self.contents(part), self.layout(part))


def _pairs(sections: dict, part: str) -> dict:
    """A section's ``[rel, text, …]`` list of ``part`` as a dict (made on
    first use: one C-level ``dict(zip(...))``)."""
    raw = sections.get(part)
    if isinstance(raw, list):
        raw = sections[part] = dict(zip(raw[::2], raw[1::2], strict=True))
    return raw or {}


#: Fields joined, encoded and written at a time by :func:`_write_record`.
_RECORD_CHUNK = 8192


def _record_files(live_state: dict, name: str):
    return ((rel, e) for rel, e in live_state[name].items()
            if e.kind == "f" and e.obj)


def _record_layout(live_state: dict, name: str):
    return ((rel, e) for rel, e in live_state[name].items()
            if e.kind != "f")


def _record_fields(live_state: dict, parts: list):
    """The body's fields in order: ``rel, key`` of every trusted file per
    part, then ``rel, content`` of every file per part, then ``rel,
    layout`` of every dir and symlink per part."""
    for name in parts:
        for rel, entry in _record_files(live_state, name):
            if entry.live and not entry.racy:
                yield rel
                yield key_string(entry.live)
    for name in parts:
        for rel, entry in _record_files(live_state, name):
            yield rel
            yield content_string(entry)
    for name in parts:
        for rel, entry in _record_layout(live_state, name):
            yield rel
            yield layout_string(entry)


@without_gc
def _write_record(handle, header: dict, live_state: dict) -> None:
    """Body, then the header line: NUL separated ``rel, key`` pairs per
    part, then ``rel, content`` pairs per part; the header (JSON, last
    line) holds the counts and the body's hash. Compact and fast to read
    back: 100,000 files are one ``split`` and one ``dict(zip(...))``, not
    100,000 JSON lists.

    Why streamed, header last: built in memory at once, the record of
    100,000 files (four lists of 100,000 strings and two copies of a 20 MB
    body) was the peak of a failed job's RSS; written in chunks while
    hashed, it costs one chunk."""
    parts = sorted(live_state)
    key_counts = [sum(1 for _, e in _record_files(live_state, n)
                      if e.live and not e.racy) for n in parts]
    content_counts = [sum(1 for _ in _record_files(live_state, n))
                      for n in parts]
    layout_counts = [sum(1 for _ in _record_layout(live_state, n))
                     for n in parts]
    # a file without its object cannot be put back from the record
    whole = set(header.get("part_modes") or ()) == set(parts) and all(
        e.obj for n in parts for e in live_state[n].values() if e.kind == "f")
    digest = xxhash.xxh3_128()
    fields = _record_fields(live_state, parts)
    separator = b""
    while chunk := list(itertools.islice(fields, _RECORD_CHUNK)):
        data = separator + "\0".join(chunk).encode("utf-8",
                                                    "surrogateescape")
        digest.update(data)
        handle.write(data)
        separator = b"\0"
    header = dict(header, part_names=parts, key_counts=key_counts,
                  content_counts=content_counts, layout_counts=layout_counts,
                  holds_state=whole, body_hash=digest.hexdigest())
    handle.write(b"\n" + json.dumps(header, separators=(",", ":")).encode())


@without_gc
def _decode_record(data: bytes, resource_id: str) -> KeptRecord:
    """Parse a live record; ValueError for anything damaged or foreign."""
    body, sep, head = data.rpartition(b"\n")  # the header is the last line
    if not sep:
        raise ValueError("no header")
    try:
        header = json.loads(head)
    except ValueError:  # cut short: the header is written last
        raise ValueError("live record is damaged or truncated (no "
                         "complete header)") from None
    if not isinstance(header, dict) \
            or header.get("version") not in _READABLE_VERSIONS:
        raise ValueError("not a live record of this version")
    if header.get("resource_id") != resource_id:
        raise ValueError("live record of another job")
    if header.get("body_hash") != xxhash.xxh3_128_hexdigest(body):
        raise ValueError("live record is damaged")
    names = header.get("part_names")
    step = header.get("step")
    v3 = header["version"] >= 3
    counts = [header.get("key_counts"), header.get("content_counts")]
    if v3:
        counts.append(header.get("layout_counts"))
    if not (isinstance(names, list) and isinstance(step, int)
            and all(isinstance(n, str) for n in names)
            and all(isinstance(c, list) and len(c) == len(names)
                    and all(isinstance(n, int) and n >= 0 for n in c)
                    for c in counts)):
        raise ValueError("live record header is malformed")
    holds_state = v3 and header.get("holds_state") is True
    modes = header.get("part_modes") if holds_state else None
    if holds_state and not (
            isinstance(modes, dict) and set(modes) == set(names)
            and all(type(m) is int for m in modes.values())):  # noqa: E721
        raise ValueError("live record header is malformed")
    items = body.decode("utf-8", "surrogateescape").split("\0") if body \
        else []
    if len(items) != 2 * sum(sum(c) for c in counts):
        raise ValueError("live record is truncated")
    keys, contents, at = {}, {}, 0
    for name, count in zip(names, counts[0], strict=True):
        chunk = items[at:at + 2 * count]
        keys[name] = dict(zip(chunk[::2], chunk[1::2], strict=True))
        at += 2 * count
    for name, count in zip(names, counts[1], strict=True):
        contents[name] = items[at:at + 2 * count]
        at += 2 * count
    layout = {} if holds_state else None
    for name, count in zip(names, counts[2] if v3 else (), strict=False):
        if layout is not None:
            layout[name] = items[at:at + 2 * count]
        at += 2 * count
    return KeptRecord(
        resource_id=resource_id, step=step,
        snapshot_id=str(header.get("snapshot_id") or ""),
        mapset_name=str(header.get("mapset_name") or ""),
        iteration=header.get("iteration"),
        created=float(header.get("created") or 0), parts=names, keys=keys,
        _contents=contents, modes=modes if layout is not None else None,
        _layout=layout)


class KeptMapset:
    """The kept directories of one job (one actinia resource id)."""

    def __init__(self, resource_dir, user_id: str, resource_id: str):
        for value in (user_id, resource_id):
            # a hidden name is one being kept, adopted or removed
            if check_component(value, "id").startswith("."):
                raise ValueError(f"invalid id: {value!r}")
        self.resource_id = resource_id
        self.base = Path(resource_dir) / user_id / KEPT_DIR
        self.path = self.base / resource_id

    # ------------------------------------------------------------ naming
    def _temp(self, what: str) -> Path:
        return self.base / f".{self.resource_id}.{what}-{uuid.uuid4().hex}"

    def exists(self) -> bool:
        """A complete kept mapset is there (its record was written last)."""
        return (self.path / RECORD_NAME).is_file()

    def leftovers(self) -> list[Path]:
        """Names of this job below ``kept_mapsets/`` that are not a valid
        kept mapset: an interrupted keep or adoption, or trash."""
        try:
            with os.scandir(self.base) as it:
                return [Path(e.path) for e in it
                        if (m := _LEFTOVER_RE.match(e.name))
                        and m.group("rid") == self.resource_id]
        except (FileNotFoundError, NotADirectoryError):
            return []

    # ------------------------------------------------------------ keep
    def keep(self, parts: dict, live_state: dict, header: dict,
             modes: dict | None = None) -> Path:
        """Move the live dirs ``parts`` (part name -> dir) here, with the
        live record of ``live_state`` (part -> {rel: Entry}, as the store
        holds it in memory) and ``modes`` (part -> mode of its top dir;
        with them the record holds the whole state). Replaces an earlier
        kept mapset of the job. On any error the dirs are moved back and
        the error raised (the caller then lets actinia remove them as
        before)."""
        modes = {n: modes[n] for n in parts if n in (modes or {})}
        header = dict(header, version=RECORD_VERSION,
                      resource_id=self.resource_id, created=time.time(),
                      part_modes=modes)
        live_state = {n: live_state.get(n, {}) for n in parts}
        self.base.mkdir(parents=True, exist_ok=True)
        self.discard_all()
        staging = self._temp(KEEPING)
        staging.mkdir()
        moved: list[tuple[str, Path]] = []
        try:
            for name in sorted(parts):
                dst = staging / name
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.rename(parts[name], dst)
                moved.append((os.fspath(parts[name]), dst))
            with open(staging / RECORD_NAME, "wb") as handle:
                _write_record(handle, header, live_state)
                handle.flush()
                os.fsync(handle.fileno())
            fsops.fsync_path(staging, directory=True)
            os.rename(staging, self.path)
            fsops.fsync_path(self.base, directory=True)
        except BaseException:
            for src, dst in reversed(moved):
                try:
                    os.rename(dst, src)
                except OSError:
                    pass
            fsops.rmtree(staging)
            raise
        return self.path

    # ------------------------------------------------------------ adopt
    def claim(self) -> Path | None:
        """Take the kept mapset for an adoption: rename it to
        ``.adopting-…`` (atomic; from here on no resume sees it as kept).
        ``None`` when there is none."""
        if not self.exists():
            return None
        claimed = self._temp(ADOPTING)
        try:
            os.rename(self.path, claimed)
        except FileNotFoundError:
            return None
        return claimed

    def read_record(self, directory: Path) -> KeptRecord:
        """The live record of a claimed (or kept) directory; ValueError
        when it is missing, damaged or another job's."""
        try:
            data = (Path(directory) / RECORD_NAME).read_bytes()
        except OSError as exc:
            raise ValueError(f"no live record ({exc.strerror})") from None
        try:
            return _decode_record(data, self.resource_id)
        except (ValueError, TypeError, KeyError, IndexError,
                UnicodeDecodeError) as exc:
            raise ValueError(str(exc) or "live record is damaged") from None

    # ------------------------------------------------------------ remove
    def discard(self) -> Path | None:
        """Rename the kept mapset away at once and return the renamed dir
        (trash) for removal when nobody waits; ``None`` if there is none."""
        if not os.path.lexists(self.path):
            return None
        trash = self._temp(DELETED)
        try:
            os.rename(self.path, trash)
        except FileNotFoundError:
            return None
        return trash

    def discard_all(self) -> list[Path]:
        """:meth:`discard` plus this job's leftovers of interrupted keeps
        and adoptions (only ever called by the job's one live iteration, so
        they are stale); returns what is to be removed."""
        trash = [p for p in [self.discard()] if p is not None]
        for path in self.leftovers():
            if _LEFTOVER_RE.match(path.name).group("what") == DELETED:
                trash.append(path)
                continue
            target = self._temp(DELETED)
            try:
                os.rename(path, target)
                trash.append(target)
            except FileNotFoundError:
                pass
        return trash

    def remove(self) -> None:
        """Remove the kept mapset and the job's leftovers now."""
        for path in self.discard_all():
            fsops.rmtree(path)
