# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""What an iteration tells its client: the ``resume`` section of its
responses, the note when saving stopped, and messages without server paths.

Plain Python on plain values (the plan as JSON, the step ids, the response
model as a dict); the worker's actinia hook ``_send_to_database`` only
unpickles actinia's document and hands the model to :func:`decorate`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence

from actinia_resume_plugin import continuation

_ABSOLUTE_PATH = re.compile(r"(?<![\w.~-])/[^\s'\",;:]+")


def relative_paths(text: str, roots) -> str:
    """``text`` with absolute server paths made relative to the first of
    ``roots`` that holds them (else the file name): messages go to the
    client, who has no business knowing the server's directory layout."""
    def shorten(match):
        path = match.group(0)
        for root in roots:
            root = str(root or "").rstrip("/")
            if root and (path == root or path.startswith(root + "/")):
                return os.path.relpath(path, root)
        return os.path.basename(path.rstrip("/")) or path

    return _ABSOLUTE_PATH.sub(shorten, text)


def for_client(exc: Exception, roots: Iterable) -> str:
    """An error message without absolute server paths."""
    return relative_paths(str(exc), list(roots))


def resume_report(plan: dict, start: int, iteration: int | None,
                  step_ids: Sequence[str]) -> dict:
    """What this iteration does (the ``resume`` of its responses), from its
    plan (JSON), the step it starts at and its steps' ids in execution
    order."""
    report = {
        "iteration": iteration or 1,
        "start_step": start,
        "restored_interim_result": plan.get(
            "restore_interim_result", plan.get("restore_snapshot")),
        "steps": [
            {"id": step_id, "action": action}
            for step_id, action in zip(
                step_ids, plan.get("actions", ["run"] * len(step_ids)),
                strict=False)
        ],
        "notice": plan.get("notice"),
        "reused_from": plan.get("source_resource_id"),
    }
    # --- hook (issue 22, continuation.py): say why this iteration runs
    continued = plan.get("continued")
    if continued:
        report["continued"] = continuation.attempt_text(
            continued["attempt"], continued["max_attempts"],
            continued.get("reason", continuation.REASON))
        report["continued_from_iteration"] = continued["previous_iteration"]
        report["worker_lost"] = continued["why"]
    return {k: v for k, v in report.items()
            if v is not None or k in ("restored_interim_result",)}


def decorate(model: dict, report: dict | None, note: str | None) -> dict:
    """The response model with the ``resume`` section and, in a final
    status, the note why interim results are no longer saved."""
    if report is not None:
        model["resume"] = report
    if note and model.get("status") in ("finished", "error"):
        model["message"] = f"{model.get('message')}. {note}"
    return model
