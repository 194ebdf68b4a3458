# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Manifests: the interim result after one step, as a delta on its base.

``steps/<step>/manifest.json`` (sealed JSON, :mod:`.layout`) lists, per
part, the entries that differ from the base interim result (the one the
same process saved or restored before) and the paths that were removed.
A step that adds one raster to a mapset of 100,000 files writes one line.
The state of an interim result is its chain of deltas folded, oldest first
(:func:`fold`); a chain is valid only when every manifest of it is sealed,
parses, and is the very base (by id) the next one was saved on
(:meth:`ManifestReader.chain_checked`).

Why streaming: a manifest of 100,000 entries is written in chunks
(:func:`write_manifest`) and parsed once per process while its bytes are the
same (a PUT lists, verifies and plans from the same manifests).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import xxhash

from .bulk import without_gc
from .entry import Entry
from .errors import SnapshotDamaged
from .layout import (
    MANIFEST_NAME,
    MISSING,
    STEP_DIR_RE,
    STEPS_DIR,
    SealBroken,
    check_part_names,
    step_dirname,
    unseal,
    unseal_head,
)

__all__ = [
    "MANIFEST_VERSION",
    "Manifest",
    "ManifestReader",
    "SnapshotInfo",
    "delta",
    "fold",
    "manifest_doc",
    "parse_manifest",
    "write_manifest",
]

MANIFEST_VERSION = 2

#: Entries encoded per ``json.dumps`` call when a manifest is written.
_MANIFEST_CHUNK = 4096


@dataclass
class SnapshotInfo:
    """A committed (visible) snapshot."""

    step: int
    path: Path
    meta: dict
    created: float
    parts: list[str]
    id: str = ""


@dataclass
class Manifest:
    """A parsed, validated manifest: the delta of one snapshot."""

    step: int
    id: str
    base: int | None
    base_id: str | None
    created: float
    meta: dict
    # part -> (mode, {rel: Entry} changed, [rel] removed); None when only
    # the head was read (:meth:`ManifestReader.head`)
    parts: dict | None
    path: Path
    part_names: list | None = None  # sorted; None: of ``parts``

    def __post_init__(self):
        if self.part_names is None:
            self.part_names = sorted(self.parts)

    def info(self) -> SnapshotInfo:
        return SnapshotInfo(step=self.step, path=self.path, meta=dict(self.meta),
                            created=self.created, parts=list(self.part_names),
                            id=self.id)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_head(doc, step: int) -> tuple:
    """``(base, base_id, meta)`` of a manifest document; ValueError."""
    if not isinstance(doc, dict) or doc.get("version") != MANIFEST_VERSION:
        raise ValueError("not a manifest of this version")
    if doc.get("step") != step:
        raise ValueError("manifest of another step")
    base, base_id = doc.get("base"), doc.get("base_id")
    if base is not None and not (_is_int(base) and 0 <= base < step
                                 and isinstance(base_id, str)):
        raise ValueError("malformed base")
    meta = doc.get("meta")
    if not isinstance(meta, dict):
        raise ValueError("meta is not an object")
    return base, base_id, meta


def parse_head(doc, step: int, path: Path) -> Manifest:
    """Validate the head of a manifest (everything in front of its
    ``parts``, which new manifests name in ``part_names``); ValueError for
    anything damaged. The result has no ``parts``."""
    base, base_id, meta = _check_head(doc, step)
    names = doc.get("part_names")
    if not (isinstance(names, list) and all(isinstance(n, str) for n in names)
            and names == sorted(set(names))):
        raise ValueError("part_names is malformed")
    return Manifest(step=step, id=str(doc.get("id") or ""), base=base,
                    base_id=base_id, created=float(doc.get("created") or 0),
                    meta=meta, parts=None, path=path, part_names=names)


def parse_manifest(doc, step: int, path: Path) -> Manifest:
    """Validate a manifest document; ValueError for anything damaged."""
    base, base_id, meta = _check_head(doc, step)
    parts = doc.get("parts")
    if not isinstance(parts, dict):
        raise ValueError("parts is not an object")
    if "part_names" in doc and doc["part_names"] != sorted(parts):
        raise ValueError("part_names does not name the parts")
    parsed = {}
    for name, part in parts.items():
        if not isinstance(part, dict) or not _is_int(part.get("mode")):
            raise ValueError(f"part {name!r} is malformed")
        changed, removed = part.get("changed"), part.get("removed", [])
        if not isinstance(changed, dict) or not isinstance(removed, list):
            raise ValueError(f"part {name!r} is malformed")
        from_json = Entry.from_json
        entries = {rel: from_json(e) for rel, e in changed.items()}
        parsed[name] = (part["mode"], entries, [str(r) for r in removed])
    check_part_names(parsed)
    return Manifest(step=step, id=str(doc.get("id") or ""), base=base,
                    base_id=base_id, created=float(doc.get("created") or 0),
                    meta=meta, parts=parsed, path=path)


def write_manifest(handle, manifest: dict) -> None:
    """Write a manifest whose parts hold :class:`Entry` objects, encoding
    the entries in chunks: a step that adds 100,000 files never holds their
    JSON (lists, then one 12 MB string) in memory at once."""
    head = {k: v for k, v in manifest.items() if k != "parts"}
    handle.write(json.dumps(head, separators=(",", ":"))[:-1])
    handle.write(',"parts":{')
    for number, (name, part) in enumerate(manifest["parts"].items()):
        handle.write(("," if number else "") + json.dumps(name) + ':{"mode":'
                     + str(part["mode"]) + ',"removed":'
                     + json.dumps(part["removed"]) + ',"changed":{')
        items = list(part["changed"].items())
        for start in range(0, len(items), _MANIFEST_CHUNK):
            chunk = {rel: e.to_json()
                     for rel, e in items[start:start + _MANIFEST_CHUNK]}
            handle.write(("," if start else "")
                         + json.dumps(chunk, separators=(",", ":"))[1:-1])
        handle.write("}}")
    handle.write("}}")


def manifest_doc(step: int, parts: dict, base_step: int | None,
                 base_id: str | None, meta: dict, id: str | None = None,
                 created: float | None = None) -> dict:
    """A manifest document (``parts``: name -> {"mode", "changed",
    "removed"}); a new id and the time now unless given (a rewrite keeps
    both)."""
    return {
        "version": MANIFEST_VERSION,
        "id": id or uuid.uuid4().hex,
        "step": step,
        "base": base_step,
        "base_id": base_id,
        "created": time.time() if created is None else created,
        "meta": meta,
        # in front of the parts: a chain check reads no further
        "part_names": sorted(parts),
        "parts": parts,
    }


def delta(old: dict, new: dict, fresh=None) -> tuple[dict, list]:
    """Entries of ``new`` whose content differs from ``old``, and the paths
    ``old`` has that ``new`` lacks. ``fresh``: the only paths of ``new``
    that may differ (the others hold ``old``'s very entry objects)."""
    candidates = new if fresh is None else fresh
    changed = {rel: e for rel in candidates
               if (prev := old.get(rel)) is not (e := new[rel])
               and (prev is None or prev.content() != e.content())}
    removed = sorted(old.keys() - new.keys())
    return changed, removed


def fold(chain: list[Manifest]) -> tuple[dict, dict]:
    """Apply a chain of deltas (oldest first): ``({part: {rel: Entry}},
    {part: mode})``. A part missing from a manifest is gone from then on."""
    state: dict = {}
    modes: dict = {}
    for manifest in chain:
        for name in list(state):
            if name not in manifest.parts:
                del state[name], modes[name]
        for name, (mode, changed, removed) in manifest.parts.items():
            entries = state.setdefault(name, {})
            entries.update(changed)
            for rel in removed:
                entries.pop(rel, None)
            modes[name] = mode
    return state, modes


#: Parsed manifests of this process: (manifest path, size, xxh3 of the
#: bytes) -> Manifest (:data:`_HEADS`: those read up to their parts).
#: One for every reader, because a resume reads the same manifests through
#: several stores (the worker's re-plan, its check of the plan, the
#: adoption of a kept mapset): a manifest of 100,000 entries takes about
#: half a second to parse. Kept while the bytes are the same.
_PARSED: dict = {}
_HEADS: dict = {}


class ManifestReader:
    """Reads the manifests below one ``steps/`` dir and their chains.

    Parsed manifests are kept (in :data:`_PARSED`) while their *bytes* are
    the same; the store drops them (:meth:`clear`) when it saves and after
    a restore, so that they never add to a job's RSS."""

    def __init__(self, steps_dir: Path):
        self.steps_dir = steps_dir

    @staticmethod
    def clear() -> None:
        _PARSED.clear()
        _HEADS.clear()

    def step_path(self, step: int) -> Path:
        return self.steps_dir / step_dirname(step)

    def candidate_steps(self) -> list[int]:
        """Every step dir, committed or not, ascending."""
        try:
            with os.scandir(self.steps_dir) as it:
                return sorted(int(e.name) for e in it
                              if STEP_DIR_RE.match(e.name)
                              and e.is_dir(follow_symlinks=False))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def read(self, step: int) -> Manifest | None:
        """The manifest of ``step`` or None (see :meth:`load`)."""
        return self.load(step)[0]

    @without_gc
    def load(self, step: int, head: bool = False
             ) -> tuple[Manifest | None, str]:
        """Read, check the seal of and parse a manifest. ``(None, why)``
        when it is missing or damaged. ``head``: parse only what is in
        front of its parts (``parts`` None) where the manifest names them
        there (older ones are parsed whole)."""
        path = self.step_path(step)
        try:
            with open(path / MANIFEST_NAME, "rb") as handle:
                raw = handle.read()
        except FileNotFoundError:
            return None, MISSING
        except OSError as exc:
            return None, f"cannot be read ({exc.strerror})"
        key = (str(path), len(raw), xxhash.xxh3_128_hexdigest(raw))
        if key in _PARSED:
            return _PARSED[key], ""
        if head:
            if key not in _HEADS:
                _HEADS[key] = _parsed(_head_of, raw, step, path)
            manifest, problem = _HEADS[key]
            if manifest is not None or problem:
                return manifest, problem
        manifest, problem = _parsed(
            lambda: parse_manifest(unseal(raw), step, path))
        if manifest is not None:
            _PARSED[key] = manifest
        return manifest, problem

    def chain(self, step: int, cache: dict | None = None,
              head: bool = False) -> list[Manifest] | None:
        """The manifests from the full one up to ``step`` (oldest first), or
        None when any link is missing or does not match its base id.
        ``head``: their heads (:meth:`load`)."""
        return self.chain_checked(step, cache, head)[0]

    def chain_checked(self, step: int, cache: dict | None = None,
                      head: bool = False
                      ) -> tuple[list[Manifest] | None,
                                 SnapshotDamaged | None]:
        """:meth:`chain` and, for None, what is wrong where (for notices;
        ``reason`` is :data:`.layout.MISSING` when the step has no
        manifest). ``cache`` (step -> :meth:`load`'s answer) lets many
        chains share the reads of their common bases."""
        cache = {} if cache is None else cache
        chain, want_id = [], None
        current: int | None = step
        while current is not None:
            if current not in cache:
                cache[current] = self.load(current, head)
            manifest, problem = cache[current]
            if manifest is None or (want_id is not None
                                    and manifest.id != want_id):
                return None, SnapshotDamaged(
                    step, STEPS_DIR,
                    f"{step_dirname(current)}/{MANIFEST_NAME}",
                    _link_problem(manifest, problem, current != step))
            chain.append(manifest)
            current, want_id = manifest.base, manifest.base_id
        chain.reverse()
        return chain, None


def _parsed(parse, *args) -> tuple[Manifest | None, str]:
    """``(parse(*args), "")``, or ``(None, why)`` for a broken seal or
    anything that is not a valid manifest."""
    try:
        return parse(*args), ""
    except SealBroken as exc:
        return None, str(exc)
    except (ValueError, RecursionError, TypeError) as exc:
        return None, f"is not a valid manifest ({str(exc)[:80]})"


def _head_of(raw: bytes, step: int, path: Path) -> Manifest | None:
    """The head of a manifest's bytes; None when it does not name its
    parts in front of them (the caller parses it whole)."""
    doc, found = unseal_head(raw, "parts")
    if not found or "part_names" not in doc:
        return None
    return parse_head(doc, step, path)


def _link_problem(manifest: Manifest | None, problem: str,
                  is_base: bool) -> str:
    """Why a link of a chain is unusable, said for a notice."""
    if manifest is not None:
        return "is not the base this interim result was saved on"
    if problem == MISSING and is_base:
        return "is missing (the base of this interim result)"
    return problem
