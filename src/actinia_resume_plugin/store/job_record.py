# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""The job record (``job.json``) of a resumable job, read defensively.

``job.json`` is written by our worker, but it lives on disk next to the
user's data: a crash, a full disk, an operator or another tool may leave it
truncated, of the wrong type or with fields of the wrong type. Every reader
(the PUT on the status URL, ``resource_storage``, the worker itself) goes
through :func:`read_job_record`, so they agree on one rule: **a damaged
record, or a damaged field of it, counts as missing**. The record is sealed
JSON (:mod:`.layout`): bytes changed in place (timestamps kept or not)
break the seal, and the whole record counts as missing. A PUT then plans from
what is intact (the interim results and their own fingerprints, the
job's first iteration in actinia's resource logger) or from the first step,
and the plan's ``notice`` says what was ignored and why.

The same module holds the shape check of a process chain
(:func:`chain_problem`), used for a stored chain and for a PUT body alike,
and the one writer (:func:`write_job_record`: sealed, atomic).

Plain Python, no Flask, no actinia imports.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from . import fsops
from .layout import JOB_FILE, SealBroken, unseal

__all__ = [
    "JOB_FILE",
    "MAX_JOB_RECORD_BYTES",
    "MAX_NESTING",
    "JobRecord",
    "chain_problem",
    "nesting_problem",
    "parse_job_record",
    "read_job_record",
    "write_job_record",
]

#: A record larger than this is not read (process chains are kilobytes).
MAX_JOB_RECORD_BYTES = 64 * 1024 * 1024
#: Deeper JSON is refused: process chains are about 6 levels deep, and
#: deeper documents make json / pickle recurse towards Python's limit.
MAX_NESTING = 100

_TEXT_FIELDS = ("endpoint", "core_class", "request_url", "project",
                "mapset", "status")


@dataclass
class JobRecord:
    """The intact part of a job record.

    ``data`` holds only fields that passed their check (so ``data.get``
    never returns a value of the wrong type); ``problems`` says what was
    dropped; ``found`` whether a ``job.json`` exists at all.
    """

    data: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    found: bool = False

    def get(self, key: str, default=None):
        return self.data.get(key, default)

    def __bool__(self) -> bool:
        return bool(self.data)

    @property
    def damaged(self) -> bool:
        return bool(self.problems)

    def notice(self) -> str | None:
        """For the plan's notice: what was ignored, or None."""
        if not self.problems:
            return None
        return (f"The job record ({JOB_FILE}) is damaged: "
                f"{'; '.join(self.problems)}. The damaged parts are treated "
                "as missing.")


def nesting_problem(doc, limit: int = MAX_NESTING) -> str | None:
    """Why ``doc`` (parsed JSON) may not be used: nested deeper than
    ``limit`` or a string that is not valid Unicode text (a lone surrogate
    such as ``\\ud800``, which JSON allows but UTF-8 cannot encode).
    Iterative, so it never hits the recursion limit itself."""
    stack = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > limit:
                return f"it is nested more than {limit} levels deep"
            items = value.items() if isinstance(value, dict) else \
                enumerate(value)
            for key, item in items:
                if isinstance(key, str) and _not_utf8(key):
                    return f"the key {_show(key)} is not valid Unicode text"
                stack.append((item, depth + 1))
        elif isinstance(value, str) and _not_utf8(value):
            return f"the string {_show(value)} is not valid Unicode text " \
                "(lone surrogate)"
    return None


def _not_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _show(text: str, limit: int = 40) -> str:
    shown = text.encode("utf-8", "backslashreplace").decode("ascii",
                                                           "replace")
    return repr(shown if len(shown) <= limit else shown[:limit] + "...")


def chain_problem(chain) -> str | None:
    """Why ``chain`` is not a usable process chain, or None.

    A process chain is a JSON object with ``version`` and a non-empty
    ``list`` of steps; each step an object with an ``id`` and one of
    ``module``, ``exe`` or ``evaluate``.
    """
    if (not isinstance(chain, dict) or "version" not in chain
            or not isinstance(chain.get("list"), list)
            or not chain["list"]):
        return ("It must be a process chain: a JSON object with 'version' "
                "and a non-empty 'list' of steps.")
    for number, step in enumerate(chain["list"]):
        if not isinstance(step, dict) or "id" not in step or not (
                {"module", "exe", "evaluate"} & set(step)):
            return (f"Step {number} needs an 'id' and one of 'module', "
                    "'exe' or 'evaluate'.")
    problem = nesting_problem(chain)
    return f"It is refused: {problem}." if problem else None


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) \
        and value >= 0


def _is_text_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _field_problem(key: str, value) -> str | None:
    """Why the field ``key`` of a job record is unusable, or None."""
    if value is None:
        return None
    if key == "chain":
        problem = chain_problem(value)
        return f"the stored process chain is unusable ({problem.rstrip('.')})" \
            if problem else None
    if key in ("fingerprints", "step_ids"):
        return None if _is_text_list(value) else \
            f"{key} is not a list of strings"
    if key == "failed_step":
        return None if _is_count(value) else \
            f"failed_step is not a step number ({_show(repr(value))})"
    if key == "iteration":
        return None if _is_count(value) and value > 0 else \
            "iteration is not a positive number"
    if key in _TEXT_FIELDS:
        return None if isinstance(value, str) else f"{key} is not a string"
    if key == "worker":
        return None if isinstance(value, dict) else "worker is not an object"
    if key == "updated":
        return None if isinstance(value, (int, float)) and not isinstance(
            value, bool) else "updated is not a number"
    return None  # unknown fields are kept as they are


def parse_job_record(doc) -> JobRecord:
    """Check a parsed ``job.json`` document field by field."""
    if not isinstance(doc, dict):
        return JobRecord(problems=[
            f"it is a JSON {type(doc).__name__}, not an object"], found=True)
    record = JobRecord(found=True)
    for key, value in doc.items():
        problem = _field_problem(str(key), value)
        if problem:
            record.problems.append(problem)
        elif value is not None:
            record.data[str(key)] = value
    fps, ids = record.data.get("fingerprints"), record.data.get("step_ids")
    if fps is not None and ids is not None and len(fps) != len(ids):
        del record.data["fingerprints"]
        record.problems.append("fingerprints and step_ids differ in length")
    return record


def read_job_record(root) -> JobRecord:
    """The job record below the job root ``root`` (a directory).

    Never follows a symlinked ``job.json`` (it could point at another
    user's file), never blocks on a fifo, never reads more than
    :data:`MAX_JOB_RECORD_BYTES`; anything unreadable is a damaged record.
    """
    path = os.path.join(os.fspath(root), JOB_FILE)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return JobRecord()
    except NotADirectoryError:
        return JobRecord()  # the job root itself is not a directory
    except OSError as exc:
        return JobRecord(problems=[_unreadable(exc)], found=True)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        return JobRecord(problems=["it is not a regular file"], found=True)
    with os.fdopen(fd, "rb") as handle:
        if st.st_size > MAX_JOB_RECORD_BYTES:
            return JobRecord(problems=[
                f"it is larger than {MAX_JOB_RECORD_BYTES} bytes"],
                found=True)
        try:
            raw = handle.read(MAX_JOB_RECORD_BYTES + 1)
        except OSError as exc:
            return JobRecord(problems=[_unreadable(exc)], found=True)
    try:
        doc = unseal(raw)
    except SealBroken as exc:
        return JobRecord(problems=[f"it {exc}"], found=True)
    except RecursionError:
        return JobRecord(problems=["it is nested too deeply"], found=True)
    except ValueError as exc:  # also UnicodeDecodeError
        return JobRecord(problems=[f"it is not valid JSON ({exc})"],
                         found=True)
    problem = nesting_problem(doc)
    if problem:
        return JobRecord(problems=[problem], found=True)
    return parse_job_record(doc)


def write_job_record(root, record: dict) -> None:
    """Replace ``job.json`` below the job root ``root`` (created if
    needed) by ``record`` as sealed JSON, atomically (tmp file, fsync,
    rename): a reader sees the old record or the new one, never a part."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    fsops.write_json_atomic(root / JOB_FILE, record)


def _unreadable(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "it is a symbolic link (not followed)"
    return f"it cannot be read ({exc.strerror or exc})"
