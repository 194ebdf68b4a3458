# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""The on-disk layout of interim results: every name, its checks, and
what a committed interim result is.

One place for the names the snapshot store, the kept mapsets, the resource
storage and the API read and write, so that they cannot disagree::

    {grass_resource_dir}/{user}/                     a user's resource storage
        interim/<resource_id>/                       one job root
            objects/ab/cdef…                         file contents (xxh3-128)
            objects/.tmp-<host>-<pid>-<hex>          an object being written
            steps/000003/manifest.json               interim result after step 3
            .staging-<host>-<pid>-<hex>/             a manifest being committed
            .trash-<host>-<pid>-<hex>/               a step dir being removed
            job.json                                 the job record
        kept_mapsets/<resource_id>/                  a failed iteration's dirs
        .<name>.deleted-<hex>                        a unit being removed

Names starting with a dot are never a unit's content: they are being
written or removed.

The two JSON files of a job root (the manifests and the job record) are
**sealed JSON**. A sealed file is one JSON object whose last member is
``"xxh3_128": "<32 hex digits>"``, the xxh3-128 hash of every byte before
that member (without the comma). A byte changed in place, whatever
happened to the file's timestamps, breaks the seal; a file without a seal
was not written by the plugin. Readers refuse both (:class:`SealBroken`),
so content, never a timestamp, decides whether a stored file is used.

What makes a step a *committed interim result* is defined once, here
(:func:`survey_steps`): its manifest and the manifests of its whole base
chain are sealed and valid, and every object its state names exists with
its recorded size (the objects' bytes are checked against their hashes
whenever they are restored). The snapshot store's readers, a PUT's plan and
``GET /resource_storage`` all go through it.

Plain Python; imports only the store's errors.
"""

from __future__ import annotations

import json
import os
import re
import socket
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Union

import orjson
import xxhash

from .errors import SnapshotDamaged

__all__ = [
    "DELETED_MARK",
    "EXCLUDED_DIR_NAMES",
    "EXCLUDED_FILE_NAMES",
    "HOST",
    "INTERIM_DIR",
    "JOB_FILE",
    "KEPT_DIR",
    "MANIFEST_NAME",
    "MISSING",
    "OBJECTS_DIR",
    "OBJECT_TMP_PREFIX",
    "RESOURCE_PREFIX",
    "SEAL_KEY",
    "STAGING_PREFIX",
    "STEPS_DIR",
    "STEP_DIR_RE",
    "TEMP_NAME_RE",
    "TRASH_PREFIX",
    "SealBroken",
    "SealingWriter",
    "check_component",
    "check_user_id",
    "check_part_names",
    "deleted_name",
    "interim_root",
    "is_object_name",
    "list_job_roots",
    "seal_text",
    "step_dirname",
    "survey_steps",
    "temp_name",
    "check_seal",
    "loads_json",
    "unseal",
    "unseal_head",
    "user_storage_dir",
]

PathLike = Union[str, "os.PathLike[str]"]

#: actinia's resource ids (job roots, exported resource dirs, status URLs)
RESOURCE_PREFIX = "resource_id-"
INTERIM_DIR = "interim"
#: a failed iteration's own dirs, kept for its resume (:mod:`.kept_mapset`)
KEPT_DIR = "kept_mapsets"
STEPS_DIR = "steps"
OBJECTS_DIR = "objects"
MANIFEST_NAME = "manifest.json"
JOB_FILE = "job.json"
STEP_DIR_RE = re.compile(r"^[0-9]{6,}$")

#: The reason of a step dir without manifest (a step never saved).
MISSING = "is missing"

#: Never snapshotted: the GRASS mapset lock belongs to the running session,
#: restoring it would make GRASS believe the mapset is in use.
EXCLUDED_FILE_NAMES = frozenset({".gislock"})
#: GRASS' per-session scratch directories (``<mapset>/.tmp/<host>/...``).
EXCLUDED_DIR_NAMES = frozenset({".tmp"})

# Temporary names in a job root: ``<prefix><host>-<pid>-<hex>``, so that a
# leftover of a crashed process can be told from one still being written.
STAGING_PREFIX = ".staging-"
TRASH_PREFIX = ".trash-"
OBJECT_TMP_PREFIX = ".tmp-"
TEMP_NAME_RE = re.compile(
    r"^\.(?:staging|trash|tmp)-(?P<host>.*)-(?P<pid>[0-9]+)-[0-9a-f]{32}$")
#: this host's name as it appears in temporary names
HOST = re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname() or "host")

#: What a unit (or a job root) is renamed to before it is removed:
#: ``.<name>.deleted-<hex>``; the resource storage counts it as trash.
DELETED_MARK = ".deleted-"


def temp_name(prefix: str) -> str:
    """A temporary name of this process (``prefix`` one of the three)."""
    return f"{prefix}{HOST}-{os.getpid()}-{uuid.uuid4().hex}"


def deleted_name(name: str) -> str:
    """The hidden name ``name`` is renamed to before it is removed."""
    return f".{name}{DELETED_MARK}{uuid.uuid4().hex}"


def check_component(value: str, what: str) -> str:
    """Reject ids that could escape the resource dir (they come from URLs)."""
    value = str(value)
    if (not value or value in (".", "..") or "/" in value or "\\" in value
            or "\0" in value):
        raise ValueError(f"invalid {what}: {value!r}")
    return value


def check_user_id(user_id: str) -> str:
    """A user id usable as one path component (ids come from URLs)."""
    return check_component(user_id, "user id")


def user_storage_dir(resource_dir, user_id: str) -> str:
    """``{resource_dir}/{user_id}``: the user's resource storage."""
    return os.path.join(str(resource_dir), check_user_id(user_id))


def interim_root(resource_dir: PathLike, user_id: str, resource_id: str) -> Path:
    """Job root ``{resource_dir}/{user_id}/interim/{resource_id}``."""
    return (Path(user_storage_dir(resource_dir, user_id)) / INTERIM_DIR
            / check_component(resource_id, "resource id"))


def list_job_roots(resource_dir: PathLike, user_id: str) -> list[Path]:
    """The job roots of a user (``{resource_dir}/{user_id}/interim/*``),
    sorted; hidden entries (being removed) and non-directories skipped."""
    base = Path(user_storage_dir(resource_dir, user_id)) / INTERIM_DIR
    try:
        with os.scandir(base) as it:
            return sorted(Path(e.path) for e in it if not e.name.startswith(".")
                          and e.is_dir(follow_symlinks=False))
    except (FileNotFoundError, NotADirectoryError):
        return []


def check_part_names(names: Iterable[str]) -> None:
    """Part names are relative paths below a snapshot (``mapset``,
    ``mapsets/<name>``): never escaping it, never nested in each other."""
    names = sorted(names)
    for name in names:
        pieces = str(name).split("/")
        if not name or any(p in ("", ".", "..") or "\0" in p or "\\" in p
                           for p in pieces):
            raise ValueError(f"invalid part name: {name!r}")
    # "mapsets" and "mapsets/x" would nest one restored tree in the other
    for a in names:
        for b in names:
            if a != b and b.startswith(a + "/"):
                raise ValueError(f"part names {a!r} and {b!r} overlap")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def step_dirname(step: int) -> str:
    """``steps/<this>``: the step number, six digits at least."""
    if not _is_int(step) or step < 0:
        raise ValueError(f"step must be a non-negative int, got {step!r}")
    return f"{step:06d}"


def is_object_name(value) -> bool:
    """32 hex digits: an object name can never point outside objects/."""
    return (isinstance(value, str) and len(value) == 32 and value.isascii()
            and value.isalnum())

SEAL_KEY = "xxh3_128"
_SEAL_RE = re.compile(
    rb'(,?)"' + SEAL_KEY.encode() + rb'":"([0-9a-f]{32})"\}\s*\Z')


class SealBroken(ValueError):
    """A sealed file's bytes do not match its seal (or it has none)."""


class SealingWriter:
    """Wraps a text handle: everything written is hashed, and the final
    ``}`` of the object is held back until :meth:`close_seal` writes the
    seal member in front of it. Lets a writer stream a large document."""

    def __init__(self, handle):
        self._handle = handle
        self._digest = xxhash.xxh3_128()
        self._pending = ""
        self._written = 0

    def write(self, text: str) -> None:
        if not text:
            return
        out, self._pending = self._pending + text[:-1], text[-1]
        if out:
            self._digest.update(out.encode("utf-8"))
            self._handle.write(out)
            self._written += len(out)

    def close_seal(self) -> None:
        if self._pending != "}":
            raise ValueError("a sealed document must be a JSON object")
        sep = "," if self._written > 1 else ""
        self._handle.write(
            f'{sep}"{SEAL_KEY}":"{self._digest.hexdigest()}"}}')
        self._pending = ""


def seal_text(doc: dict) -> str:
    """``doc`` as sealed JSON text (compact)."""
    body = json.dumps(doc, separators=(",", ":"))
    if not body.startswith("{"):
        raise ValueError("a sealed document must be a JSON object")
    head = body[:-1]
    digest = xxhash.xxh3_128(head.encode("utf-8")).hexdigest()
    sep = "," if len(head) > 1 else ""
    return f'{head}{sep}"{SEAL_KEY}":"{digest}"}}'


def check_seal(raw: bytes) -> None:
    """:class:`SealBroken` unless a sealed file's bytes match their seal."""
    offset = max(0, len(raw) - 64)
    match = _SEAL_RE.search(raw, offset)
    if match is None:
        raise SealBroken("has no checksum (it was not written by the "
                         "plugin, or it was edited)")
    digest = xxhash.xxh3_128(raw[:match.start()]).hexdigest()
    if digest != match.group(2).decode():
        raise SealBroken("does not match its checksum (changed after it "
                         "was written)")


def loads_json(data: bytes):
    """Parse JSON with orjson (2.4x faster than ``json`` on a manifest of
    100,000 entries: 0.11 s against 0.27 s), or with ``json`` where orjson
    refuses what ``json`` wrote: lone surrogates (``\\udcff``), i.e. file
    names that are not UTF-8. ``ValueError`` for what is not JSON."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def unseal(raw: bytes) -> dict:
    """Check the seal of a sealed file's bytes and parse it (without the
    seal member). :class:`SealBroken` when the bytes do not match their
    seal or have none; ``ValueError`` (json) for what is not JSON."""
    check_seal(raw)
    doc = loads_json(raw)
    if not isinstance(doc, dict):
        raise SealBroken("is not a JSON object")
    doc.pop(SEAL_KEY, None)
    return doc


_DECODER = json.JSONDecoder()
_WHITESPACE = re.compile(r"[ \t\n\r]*")


def unseal_head(raw: bytes, stop: str) -> tuple[dict, bool]:
    """Check the seal of a sealed file's bytes and parse the members of
    its object up to (without) member ``stop``: ``(head, found)``; without
    ``stop`` the head is the whole object (``found`` False).

    Why: a manifest of 100,000 entries holds them in its last member
    (``parts``); what a chain check or a plan reads (ids, bases, meta) is
    in front of it: 3-16 ms instead of a parse of 0.3-0.5 s. The seal
    still covers every byte. ``ValueError`` for what is not JSON."""
    check_seal(raw)
    text = raw.decode("utf-8", "surrogateescape")
    skip = _WHITESPACE.match
    pos = skip(text, 0).end()
    if text[pos:pos + 1] != "{":
        raise SealBroken("is not a JSON object")
    pos, head = pos + 1, {}
    while True:
        pos = skip(text, pos).end()
        if text[pos:pos + 1] == "}" and not head:
            return head, False
        key, pos = _DECODER.raw_decode(text, pos)
        pos = skip(text, pos).end()
        if not isinstance(key, str) or text[pos:pos + 1] != ":":
            raise ValueError("a member without a name")
        if key == stop:
            return head, True
        value, pos = _DECODER.raw_decode(text, skip(text, pos + 1).end())
        if key != SEAL_KEY:
            head[key] = value
        pos = skip(text, pos).end()
        if text[pos:pos + 1] == "}":
            return head, False
        if text[pos:pos + 1] != ",":
            raise ValueError("members not separated by a comma")
        pos += 1


def survey_steps(step_dirs: Iterable[int], chain_of: Callable,
                 delta_problems: Callable
                 ) -> tuple[list[int], dict[int, str]]:
    """The one definition of a *committed interim result*: the step dirs
    ``step_dirs`` split into the committed steps (ascending) and ``{step:
    why}`` for every other one.

    A step is committed when ``chain_of(step)`` gives its chain of
    manifests (oldest first; ``(None, SnapshotDamaged)`` when a manifest of
    it is missing, damaged or not the base it was saved on) and no object
    its *state* names is missing or of the wrong size. ``delta_problems(
    manifest)`` lists ``(part, rel, reason)`` for the objects of one
    manifest's own delta (checked once per manifest, however many chains
    share it); a problem counts for a step only when the step's state still
    holds that entry (no later delta of its chain changed or removed the
    path, and the part is still there): exactly the objects a restore of
    the step would read."""
    problems: dict = {}  # manifest step -> [(part, rel, reason)]
    steps, damaged = [], {}
    for step in step_dirs:
        chain, problem = chain_of(step)
        if chain is None:
            damaged[step] = str(problem)
            continue
        for at, manifest in enumerate(chain):
            if manifest.step not in problems:
                problems[manifest.step] = delta_problems(manifest)
            live = [p for p in problems[manifest.step]
                    if _still_held(chain[at + 1:], p[0], p[1])]
            if live:
                damaged[step] = str(SnapshotDamaged(step, *live[0]))
                break
        else:
            steps.append(step)
    return steps, damaged


def _still_held(later: list, part: str, rel: str) -> bool:
    """Does the state after the manifests ``later`` still hold the entry
    ``part/rel`` an earlier delta set? (A part missing from a manifest is
    gone from then on.)"""
    for manifest in later:
        entry = manifest.parts.get(part)
        if entry is None:
            return False
        _mode, changed, removed = entry
        if rel in changed or rel in removed:
            return False
    return True
