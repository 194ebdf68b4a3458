# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Decide where a new iteration of a resumable job starts.

All positions are 0-based indices into the *execution order* of a process
chain (see :func:`execution_order`): actinia runs the import steps first, so
"step 3" means the fourth step actinia actually executes.  A snapshot "after
step N" holds the interim results once position N has completed.

Pure functions, no I/O, no actinia imports.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field

__all__ = [
    "IGNORED_STEP_KEYS",
    "ResumeNotPossible",
    "ResumePlan",
    "at_failure_notice",
    "canonical_step",
    "chain_fingerprints",
    "execution_order",
    "is_import_step",
    "plan_from_interim_results",
    "plan_resume",
    "plan_with_intact_interim_results",
    "resolve_step_ref",
    "step_fingerprints",
]

#: Top-level keys of a process-chain entry that do not influence its result.
IGNORED_STEP_KEYS = frozenset({"comment"})


class ResumeNotPossible(ValueError):
    """The requested resume point cannot be honoured.

    ``earliest`` is the earliest step from which a resume with a snapshot is
    possible (0 = from the start if there is none), ``possible`` all valid
    resume points.
    """

    def __init__(self, message: str, *, earliest: int = 0, possible: Sequence[int] = (0,)):
        super().__init__(message)
        self.earliest = earliest
        self.possible = list(possible)


# --------------------------------------------------------------------------
# fingerprints and order
# --------------------------------------------------------------------------


def canonical_step(step: dict) -> str:
    """Canonical JSON of a process-chain entry (sorted keys, no ``comment``).

    Everything else counts: the module, inputs (including import
    descriptions), outputs, flags, stdout parsing, ``exe``/``params``, ...
    Key order and whitespace do not.
    """
    if not isinstance(step, dict):
        raise TypeError(f"process chain step must be a dict, got {type(step).__name__}")
    data = {k: v for k, v in step.items() if k not in IGNORED_STEP_KEYS}
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=True, default=str)


def step_fingerprints(steps: Sequence[dict]) -> list[str]:
    """Chained sha256 fingerprints: ``fp_i = sha256(fp_{i-1} + canonical(step_i))``.

    ``steps`` must already be in execution order.  Chaining means that a
    change in one step invalidates the fingerprints of all steps after it:
    their results depend on the earlier state.
    """
    out: list[str] = []
    prev = ""
    for step in steps:
        prev = hashlib.sha256((prev + canonical_step(step)).encode("utf-8")).hexdigest()
        out.append(prev)
    return out


def is_import_step(step: dict) -> bool:
    """A step with at least one input carrying an ``import_descr``."""
    inputs = step.get("inputs") if isinstance(step, dict) else None
    if not isinstance(inputs, list):
        return False
    return any(isinstance(i, dict) and "import_descr" in i for i in inputs)


def execution_order(chain_list: Sequence[dict]) -> list[int]:
    """Indices of ``chain_list`` in the order actinia executes them.

    Import steps (see :func:`is_import_step`) first, in chain order, then all
    other steps in chain order.
    """
    imports = [i for i, s in enumerate(chain_list) if is_import_step(s)]
    others = [i for i, s in enumerate(chain_list) if not is_import_step(s)]
    return imports + others


def chain_fingerprints(chain_list: Sequence[dict]) -> list[str]:
    """Fingerprints of a process chain's ``list``, chained in execution order."""
    return step_fingerprints([chain_list[i] for i in execution_order(chain_list)])


# --------------------------------------------------------------------------
# planning
# --------------------------------------------------------------------------


@dataclass
class ResumePlan:
    """Where the next iteration starts.

    ``start`` is the first position to run, ``restore_snapshot`` the
    position whose snapshot must be restored before (``None``: start from
    scratch).  ``actions[i]`` is ``"reused"`` (result taken from the
    snapshot), ``"rerun"`` (known step, run again) or ``"new"`` (step not in
    the previous iteration or changed).  ``notice`` explains deviations from
    the ideal resume point.
    """

    start: int
    restore_snapshot: int | None
    actions: list[str] = field(default_factory=list)
    notice: str | None = None

    @property
    def steps_reused(self) -> int:
        return self.actions.count("reused")

    @property
    def steps_to_run(self) -> int:
        return len(self.actions) - self.start

    def to_dict(self) -> dict:
        d = asdict(self)
        d["steps_reused"] = self.steps_reused
        d["steps_to_run"] = self.steps_to_run
        return d


def _check_position(value, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int or None, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def plan_resume(
    new_fps: Sequence[str],
    saved_fps: Sequence[str],
    failed_step: int | None,
    snapshot_steps: Iterable[int],
    from_step: int | None = None,
) -> ResumePlan:
    """Plan the next iteration of a job.

    The resume point is the earliest of

    * the first position whose new fingerprint differs from the saved one
      (or that the previous iteration did not have),
    * ``failed_step`` (the position that failed last time),
    * ``from_step`` (explicitly requested by the user).

    The snapshot "after resume point − 1" is restored.  If it is missing,
    the nearest earlier snapshot is used (or the chain runs from the start)
    and ``notice`` says so — except when the user explicitly asked for
    ``from_step`` and that is the resume point: then
    :class:`ResumeNotPossible` names the possible steps instead of silently
    running more than requested.

    If neither a change nor a failed step nor ``from_step`` determines the
    resume point, the failure happened after the latest snapshot, so the
    iteration continues after the latest usable snapshot.
    """
    n = len(new_fps)
    failed_step = _check_position(failed_step, "failed_step")
    from_step = _check_position(from_step, "from_step")
    snaps = sorted({_check_position(s, "snapshot step") for s in snapshot_steps})

    if from_step is not None and from_step >= n:
        raise ResumeNotPossible(
            f"cannot resume from step {from_step}: the process chain has only {n} "
            f"step(s) (valid steps: 0 to {n - 1})" if n else
            f"cannot resume from step {from_step}: the process chain is empty",
            earliest=0, possible=[0],
        )

    first_diff = next(
        (i for i in range(n) if i >= len(saved_fps) or new_fps[i] != saved_fps[i]),
        None,
    )
    # positions before this one are identical in both chains; a snapshot
    # after step s is only valid if s < limit
    limit = n if first_diff is None else first_diff
    usable = [s for s in snaps if s < limit]

    candidates = [c for c in (first_diff, failed_step, from_step) if c is not None]
    notice = None
    if candidates:
        resume = min(min(candidates), n)
    else:
        resume = usable[-1] + 1 if usable else 0
        notice = (
            "The failed step is unknown; continuing after the latest snapshot "
            f"(step {usable[-1]})." if usable else
            "The failed step is unknown and no snapshot exists; running from the start."
        )

    possible = [0] + [s + 1 for s in usable if s + 1 <= resume]
    if (from_step is not None and resume == from_step and from_step > 0
            and (from_step - 1) not in snaps):
        if len(possible) == 1:
            # no snapshot at or before the requested step, but maybe after
            # it (onError keeps only the one before the failed step)
            natural = min([c for c in (first_diff, failed_step) if c is not None] or [n])
            possible += [s + 1 for s in usable if resume < s + 1 <= natural]
        earliest = possible[1] if len(possible) > 1 else 0
        others = ", ".join(str(p) for p in possible[1:])
        raise ResumeNotPossible(
            f"cannot resume from step {from_step}: no snapshot after step "
            f"{from_step - 1} exists. Earliest possible step: {earliest}"
            + (" (from the start)" if earliest == 0 else
               f"; possible steps: {others} or 0 (from the start)"),
            earliest=earliest,
            possible=possible,
        )

    if resume == 0:
        start, restore = 0, None
    elif (resume - 1) in snaps:
        start, restore = resume, resume - 1
    else:
        earlier = [s for s in usable if s < resume - 1]
        if earlier:
            restore = earlier[-1]
            start = restore + 1
            notice = (
                f"No snapshot after step {resume - 1} exists; resuming from step "
                f"{start} (snapshot after step {restore}) instead of step {resume}."
            )
        else:
            start, restore = 0, None
            notice = (
                f"No snapshot after step {resume - 1} (or any earlier step) exists; "
                f"running the process chain from the start instead of step {resume}."
            )

    if from_step is not None and start < from_step and notice is None:
        why = ("has changed" if first_diff is not None and first_diff == resume
               else "failed in the previous iteration")
        notice = (
            f"Resuming from step {start}, not from the requested step {from_step}: "
            f"step {resume} {why}."
        )

    actions = []
    for i in range(n):
        known = i < len(saved_fps) and saved_fps[i] == new_fps[i]
        if i < start:
            actions.append("reused")
        else:
            actions.append("rerun" if known else "new")
    return ResumePlan(start=start, restore_snapshot=restore, actions=actions, notice=notice)


def plan_from_interim_results(
    new_fps: Sequence[str],
    saved_fps: Sequence[str],
    failed_step: int | None,
    snapshot_fps: dict[int, str],
    from_step: int | None = None,
) -> ResumePlan:
    """Plan the next iteration from the interim results that are stored.

    An interim result of step ``k`` is usable for the new chain exactly when
    its recorded (chained) fingerprint equals the new chain's fingerprint of
    step ``k``: it then holds the state after steps ``0..k`` of this very
    chain. Besides :func:`plan_resume`'s rule (first change against the
    previous iteration, failed step, ``from_step``), this lets a job continue
    after an interim result of an *earlier* iteration, e.g. when a PUT with a
    broken chain failed and the original chain is sent again.
    """
    valid = sorted(
        step for step, fp in snapshot_fps.items()
        if step < len(new_fps) and fp == new_fps[step]
    )
    plan = plan_resume(new_fps, saved_fps, failed_step, valid, from_step)
    furthest = valid[-1] + 1 if valid else 0
    if from_step is not None or furthest <= plan.start:
        return plan
    actions = [
        "reused" if i < furthest
        else "rerun" if i < len(saved_fps) and saved_fps[i] == fp
        else "new"
        for i, fp in enumerate(new_fps)
    ]
    return ResumePlan(
        start=furthest, restore_snapshot=furthest - 1, actions=actions,
        notice=(
            f"An interim result of an earlier iteration matches this chain "
            f"up to step {furthest - 1}; resuming from step {furthest}."
        ),
    )


def plan_with_intact_interim_results(
    new_fps: Sequence[str],
    saved_fps: Sequence[str],
    failed_step: int | None,
    snapshot_fps: dict[int, str],
    damage: Callable[[int], str | None],
    from_step: int | None = None,
) -> ResumePlan:
    """:func:`plan_from_interim_results`, never restoring a damaged interim
    result: ``damage(step)`` says what is wrong with the interim result of
    ``step`` (``None``: intact). A damaged one is dropped and the plan made
    again, so the iteration starts after the nearest intact earlier interim
    result, or from the first step; the ``notice`` says why."""
    usable = dict(snapshot_fps)
    problems = []
    while True:
        plan = plan_from_interim_results(
            new_fps, saved_fps, failed_step, usable, from_step=from_step)
        step = plan.restore_snapshot
        problem = None if step is None else damage(step)
        if problem is None:
            break
        if step not in usable:
            raise ResumeNotPossible(problem)
        problems.append(problem)
        del usable[step]
    if problems:
        where = (f"resuming after step {plan.restore_snapshot}"
                 if plan.restore_snapshot is not None
                 else "running from the first step")
        plan.notice = " ".join(
            [*problems, f"It is not used: {where}."]
            + ([plan.notice] if plan.notice else []))
    return plan


def at_failure_notice(restored: int) -> str:
    """onError keeps the state when a step failed, not a clean state."""
    return (f"The interim result restored (after step {restored}) was "
            f"saved when step {restored + 1} failed (onError): outputs that "
            "step wrote before it failed may be part of it; the step runs "
            "again and overwrites them.")


def resolve_step_ref(ref, chain_ids_in_execution_order: Sequence[str]) -> int:
    """Turn a user's step reference into a 0-based position.

    ``ref`` is a step ``id`` (e.g. ``"r_mapcalc"``) or a 0-based position
    (``"3"``).  An exact id match takes precedence over a number, so a step
    whose id is ``"3"`` is found by its id.
    """
    ids = list(chain_ids_in_execution_order)
    n = len(ids)
    if isinstance(ref, bool):
        raise ValueError(f"invalid step reference: {ref!r}")
    if isinstance(ref, int):
        text = str(ref)
    elif isinstance(ref, str):
        text = ref.strip()
    else:
        raise ValueError(f"invalid step reference: {ref!r}")
    if not text:
        raise ValueError("empty step reference: give a step id or a 0-based step number")
    matches = [i for i, sid in enumerate(ids) if sid == text]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise ValueError(
            f"step id {text!r} is ambiguous: it is used by steps "
            f"{', '.join(map(str, matches))}; give the step number instead"
        )
    if text.lstrip("+-").isdigit() and text.isascii():
        num = int(text)
        if 0 <= num < n:
            return num
        raise ValueError(
            f"step number {num} is out of range: the process chain has {n} step(s)"
            + (f" (0 to {n - 1})" if n else "")
        )
    known = ", ".join(repr(i) for i in ids) or "none"
    raise ValueError(
        f"unknown step {text!r}: not a step id of the process chain and not a "
        f"0-based step number (known ids: {known})"
    )
