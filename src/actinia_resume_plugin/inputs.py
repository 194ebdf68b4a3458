# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Input fingerprints: did what a job read change since its interim results
were saved?

A step fingerprint says *what* a step does; it cannot say whether what the
step read is still the same. Two kinds of inputs can change behind a job's
back:

* **mapsets** of the GRASS database the chain reads: PERMANENT (always
  linked), every mapset the chain names as ``map@mapset``, and the target
  mapset of a persistent job. actinia adds every named mapset to the search
  path of the *whole* job, so any step may read any of them through an
  unqualified name: a change re-runs the chain from its first step.
  Fingerprint: a cheap stat walk (relpath, size, mtime, ctime, inode, mode;
  the persistent database is never hard-linked or rewritten in place by the
  plugin, so inode and ctime are trustworthy here).
* **importer sources**: the URL plus what the server says about the content
  in a HEAD request (ETag, Last-Modified, Content-Length). A changed source
  re-runs the chain from its import step. A source the server says nothing
  useful about (no ETag and no Last-Modified, an error, a Last-Modified
  within the clock tick of the answer, or a non-HTTP source such as a
  database) counts as changed: never reuse what cannot be checked.

Plain Python: no Flask, no actinia imports (``requests`` for HEAD).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from email.utils import parsedate_to_datetime
from fnmatch import fnmatch

#: Bump when the meaning of a recorded fingerprint changes: records of
#: another version never match (the chain then runs from the first step).
VERSION = 1
#: Files and directories of a mapset that GRASS rewrites without changing
#: any map (locks, temporary files).
SKIPPED_NAMES = frozenset({".tmp", ".gislock", ".gislock.lock"})
#: Importer types whose ``source`` names immutable content (a scene id).
IMMUTABLE_SOURCE_TYPES = frozenset({"sentinel2", "landsat"})
#: A Last-Modified this close to the server's Date may be followed by
#: another change within the same second ("racy", as in git's index).
RACY_SECONDS = 2
HEAD_TIMEOUT = 10
_MAPSET_REF = re.compile(r"[\w.+-]+@([A-Za-z0-9_][\w.-]*)")


# ------------------------------------------------------------- mapsets
def mapset_fingerprint(path: str) -> str:
    """sha256 over the stat data of every file and directory of a mapset
    (``missing`` when it does not exist). No file is read."""
    if not os.path.isdir(path):
        return "missing"
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_NAMES)
        for name in sorted(files) + dirs:
            if name in SKIPPED_NAMES:
                continue
            full = os.path.join(root, name)
            try:
                st = os.lstat(full)
            except FileNotFoundError:
                continue
            rel = os.path.relpath(full, path)
            digest.update(
                f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}"
                f"\0{st.st_ino}\0{st.st_mode}\n".encode("utf-8", "replace"))
    return digest.hexdigest()


def _strings(value) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def read_mapsets(steps: Sequence[dict], target_mapset: str | None = None,
                 job_local_pattern: str | None = None) -> list[str]:
    """The mapsets of the database a chain reads: PERMANENT, the target
    mapset of a persistent job, and every ``@mapset`` the steps name in
    their inputs or parameters (not import descriptions: URLs contain
    ``@`` too). Mapsets matching ``include_additional_mapset_pattern`` are
    the job's own (saved with its interim results) and left out."""
    names = {"PERMANENT"}
    if target_mapset:
        names.add(target_mapset)
    for step in steps:
        if not isinstance(step, dict):
            continue
        inputs = [{k: v for k, v in i.items() if k != "import_descr"}
                  if isinstance(i, dict) else i
                  for i in step.get("inputs") or []]
        for text in _strings([inputs, step.get("params") or []]):
            names.update(_MAPSET_REF.findall(text))
    return sorted(n for n in names
                  if not (job_local_pattern and n != target_mapset
                          and fnmatch(n, job_local_pattern)))


def mapset_fingerprints(roots: Sequence[str], names: Iterable[str]) -> dict:
    """``{mapset: fingerprint}`` over the project in the global and in the
    user's database (actinia links a mapset from whichever holds it)."""
    return {
        name: "|".join(mapset_fingerprint(os.path.join(root, name))
                       for root in roots)
        for name in names
    }


# ------------------------------------------------------ importer sources
def import_sources(steps: Sequence[dict]) -> dict[str, list[dict]]:
    """``{position: [import_descr, …]}`` of the import steps (positions in
    execution order, as strings for JSON)."""
    found = {}
    for position, step in enumerate(steps):
        descrs = [i["import_descr"] for i in (step.get("inputs") or [])
                  if isinstance(i, dict)
                  and isinstance(i.get("import_descr"), dict)]
        if descrs:
            found[str(position)] = descrs
    return found


def source_fingerprint(descr: dict, session=None) -> dict:
    """What the server says about an importer source right now."""
    source = str(descr.get("source", ""))
    record = {"source": source, "type": descr.get("type")}
    if descr.get("type") in IMMUTABLE_SOURCE_TYPES:
        record["immutable"] = True
        return record
    if not source.startswith(("http://", "https://")):
        record["unknown"] = "not an HTTP source: its content cannot be checked"
        return record
    import requests

    try:
        resp = (session or requests).head(source, allow_redirects=True,
                                          timeout=HEAD_TIMEOUT)
    except requests.RequestException as exc:
        record["unknown"] = f"HEAD request failed: {exc}"
        return record
    if resp.status_code >= 400:
        record["unknown"] = f"HEAD request answered {resp.status_code}"
        return record
    for key, header in (("etag", "ETag"), ("last_modified", "Last-Modified"),
                        ("content_length", "Content-Length")):
        if resp.headers.get(header):
            record[key] = resp.headers[header]
    if not (record.get("etag") or record.get("last_modified")):
        record["unknown"] = "the server sends neither ETag nor Last-Modified"
    elif not record.get("etag") and _racy(record["last_modified"],
                                          resp.headers.get("Date")):
        record["unknown"] = ("Last-Modified is within the clock tick of the "
                             "answer; a change in the same second would be "
                             "missed")
    return record


def _racy(last_modified: str, date: str | None) -> bool:
    try:
        changed = parsedate_to_datetime(last_modified)
        now = parsedate_to_datetime(date) if date else None
    except (TypeError, ValueError):
        return True
    return now is None or (now - changed).total_seconds() < RACY_SECONDS


def source_fingerprints(steps: Sequence[dict]) -> dict[str, list[dict]]:
    import requests

    with requests.Session() as session:
        return {position: [source_fingerprint(d, session) for d in descrs]
                for position, descrs in import_sources(steps).items()}


# ------------------------------------------------------------ together
def job_inputs(steps: Sequence[dict], roots: Sequence[str],
               target_mapset: str | None = None,
               job_local_pattern: str | None = None) -> dict:
    """The input fingerprints of a chain (steps in execution order), as
    recorded in job.json when an iteration starts."""
    roots = [r for r in roots if r]
    return {
        "version": VERSION,
        "roots": roots,
        "target_mapset": target_mapset,
        "mapsets": mapset_fingerprints(
            roots, read_mapsets(steps, target_mapset, job_local_pattern)),
        "sources": source_fingerprints(steps),
    }


def current_inputs(steps: Sequence[dict], recorded: dict | None,
                   job_local_pattern: str | None = None) -> dict | None:
    """The inputs of ``steps`` now, over the database roots of a record
    (None without a usable record)."""
    if not recorded or recorded.get("version") != VERSION:
        return None
    return job_inputs(steps, recorded.get("roots") or [],
                      recorded.get("target_mapset"), job_local_pattern)


def first_affected_step(recorded: dict | None, current: dict | None
                        ) -> tuple[int | None, list[str]]:
    """The first step (execution order) whose inputs are not what they were
    when the interim results were saved, and why; ``(None, [])`` when all
    inputs are unchanged."""
    if not recorded or not current or recorded.get("version") != VERSION:
        return 0, ["no input fingerprints were recorded with the interim "
                   "results"]
    reasons, first = [], None
    old_maps, new_maps = recorded.get("mapsets", {}), current["mapsets"]
    changed = sorted(name for name in set(old_maps) | set(new_maps)
                     if old_maps.get(name) != new_maps.get(name))
    if changed:
        first = 0
        reasons.append("mapset(s) " + ", ".join(changed) + " changed (or the "
                       "chain reads other mapsets): every step may read them")
    old_src = recorded.get("sources", {})
    for position, records in sorted(current["sources"].items(),
                                    key=lambda item: int(item[0])):
        before = old_src.get(position)
        unknown = [r["unknown"] for r in records if r.get("unknown")]
        if unknown or before != records:
            first = int(position) if first is None else min(first,
                                                            int(position))
            why = unknown[0] if unknown else "changed"
            reasons.append(f"import source of step {position} {why}")
    return first, reasons


def check_restore(recorded: dict | None, current: dict | None,
                  start: int) -> str | None:
    """Worker-side guard: a message when the inputs of a step before
    ``start`` changed since the interim result to restore was saved (after
    the plan was made), else None."""
    if start <= 0:
        return None
    affected, reasons = first_affected_step(recorded, current)
    if affected is None or affected >= start:
        return None
    return ("The inputs of the interim result to restore changed after the "
            "resumption was planned (" + "; ".join(reasons) + "); "
            "resume again for a new plan")
