# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""The on-disk layout of interim results, and the sealed JSON files.

One place for the names both the snapshot store and the resource storage
read, and for the format of the two JSON files of a job root (the
manifests and the job record): **sealed JSON**. A sealed file is one JSON
object whose last member is ``"xxh3_128": "<32 hex digits>"``, the xxh3-128
hash of every byte before that member (without the comma). A byte changed
in place, whatever happened to the file's timestamps, breaks the seal; a
file without a seal was not written by the plugin. Readers refuse both
(:class:`SealBroken`), so content, never a timestamp, decides whether a
stored file is used.

What makes a step a *committed interim result* is defined once, by
:meth:`~.snapshot_store.SnapshotStore.survey` (its manifest and the
manifests of its whole base chain are sealed and valid, and every object
they name exists with its recorded size; the objects' bytes are checked
against their hashes whenever they are restored).

Plain Python, no imports of the plugin.
"""

from __future__ import annotations

import json
import re

import xxhash

__all__ = [
    "INTERIM_DIR",
    "JOB_FILE",
    "MANIFEST_NAME",
    "OBJECTS_DIR",
    "RESOURCE_PREFIX",
    "SEAL_KEY",
    "STEPS_DIR",
    "STEP_DIR_RE",
    "SealBroken",
    "SealingWriter",
    "seal_text",
    "unseal",
]

#: actinia's resource ids (job roots, exported resource dirs, status URLs)
RESOURCE_PREFIX = "resource_id-"
INTERIM_DIR = "interim"
STEPS_DIR = "steps"
OBJECTS_DIR = "objects"
MANIFEST_NAME = "manifest.json"
JOB_FILE = "job.json"
STEP_DIR_RE = re.compile(r"^[0-9]{6,}$")

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


def unseal(raw: bytes) -> dict:
    """Check the seal of a sealed file's bytes and parse it (without the
    seal member). :class:`SealBroken` when the bytes do not match their
    seal or have none; ``ValueError`` (json) for what is not JSON."""
    offset = max(0, len(raw) - 64)
    match = _SEAL_RE.search(raw, offset)
    if match is None:
        raise SealBroken("has no checksum (it was not written by the "
                         "plugin, or it was edited)")
    start = match.start()
    digest = xxhash.xxh3_128(raw[:start]).hexdigest()
    if digest != match.group(2).decode():
        raise SealBroken("does not match its checksum (changed after it "
                         "was written)")
    doc = json.loads(raw)
    if not isinstance(doc, dict):
        raise SealBroken("is not a JSON object")
    doc.pop(SEAL_KEY, None)
    return doc
