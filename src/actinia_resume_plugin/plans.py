# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""The plan of an iteration: the step it starts from and the interim result
it restores.

This is the one place that decides it, for every caller:

* a PUT on the status URL (api/resume.py): :func:`plan_for_job`;
* a POST with ``?reuse=`` (api/reuse.py): :func:`plan_reuse_of`,
  :func:`plan_reuse_best`;
* the worker, when the planned interim result is damaged or gone by the
  time the job runs (worker/restoring.py): :func:`replan`,
  :func:`reuse_gone`;
* a job that continues by itself after its worker was lost
  (continuation.py): :func:`plan_continuation`.

Each returns one :class:`ResumePlan`; it becomes JSON only where it leaves
the process (:meth:`ResumePlan.to_json`: the dry-run answer and the queue to
the worker). Planning errors are :class:`PlanError`, never HTTP errors: the
API answers them with 400.

The rules, from the inside out (each function adds one):

1. :func:`plan_resume`: the first changed step, the failed step and
   ``from_step`` against the steps that have an interim result;
2. :func:`plan_from_interim_results`: an interim result counts when its
   fingerprint matches the new chain (also one of an earlier iteration);
3. :func:`plan_with_intact_interim_results`: never a damaged one;
4. :func:`plan_checked`: never one taken after a step whose inputs
   (mapsets, import sources, see inputs.py) changed since.

Positions are those of planner.py (0-based, execution order). Plain Python:
no Flask, no actinia imports.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from actinia_resume_plugin import inputs, planner
from actinia_resume_plugin.store import (
    JobRecord,
    SnapshotStore,
    interim_root,
    list_job_roots,
    read_job_record,
)

__all__ = [
    "PlanError",
    "ResumeNotPossible",
    "ResumePlan",
    "ReuseRefused",
    "at_failure_notice",
    "plan_checked",
    "plan_continuation",
    "plan_for_job",
    "plan_from_interim_results",
    "plan_resume",
    "plan_reuse_best",
    "plan_reuse_of",
    "plan_with_intact_interim_results",
    "replan",
    "reuse_gone",
]


# --------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------


class PlanError(ValueError):
    """No plan can be made; the message tells the client why."""


class ResumeNotPossible(PlanError):
    """The requested resume point cannot be honoured.

    ``earliest`` is the earliest step from which a resume with an interim
    result is possible (0 = from the start if there is none), ``possible``
    all valid resume points.
    """

    def __init__(self, message: str, *, earliest: int = 0,
                 possible: Sequence[int] = (0,)):
        super().__init__(message)
        self.earliest = earliest
        self.possible = list(possible)


class ReuseRefused(PlanError):
    """``?reuse=`` names a job whose interim results cannot serve the POST."""


# --------------------------------------------------------------------------
# the plan
# --------------------------------------------------------------------------


@dataclass
class ResumePlan:
    """Where the next iteration starts.

    ``start`` is the first position to run, ``restore_interim_result`` the
    position whose interim result is restored before (``None``: start from
    scratch). ``actions[i]`` is ``"reused"`` (result taken from the interim
    result), ``"rerun"`` (known step, run again) or ``"new"`` (step not in
    the previous iteration or changed); ``None`` when the chain was not
    compared with any job (the worker then reports every step as run).
    ``notice`` explains deviations from the ideal resume point.

    The request adds: ``inputs_changed`` (why inputs count as changed),
    ``forced_from`` (the position ``from_step`` named), ``step_ids`` (in
    execution order) and, for reuse across jobs, ``source_resource_id``
    (the job whose interim result is restored).
    """

    start: int
    restore_interim_result: int | None
    actions: list[str] | None = None
    notice: str | None = None
    inputs_changed: list[str] | None = None
    forced_from: int | None = None
    step_ids: list[str] | None = None
    source_resource_id: str | None = None
    # issue 23: "kept_mapset", "interim_results" or "first_step"
    resume_from: str | None = None
    #: a dry run in a kept mapset: how many files the adoption would put
    #: back from the store (the rest stay where they are)
    files_to_put_back: int | None = None

    @property
    def steps_reused(self) -> int:
        return (self.actions or []).count("reused")

    @property
    def steps_to_run(self) -> int:
        return len(self.actions or []) - self.start

    def add_notice(self, *parts: str | None, first: bool = False) -> None:
        """Join ``parts`` to the notice (before it with ``first``)."""
        given = [p for p in parts if p]
        joined = [*given, self.notice] if first else [self.notice, *given]
        self.notice = " ".join(p for p in joined if p) or None

    def to_json(self) -> dict:
        """The plan as the dry run answers it and the worker receives it.

        ``restore_snapshot`` is the old name of ``restore_interim_result``,
        kept as an alias for clients and for workers of an older version
        (see CHANGELOG.md). Optional parts are left out when unset, as they
        always were.
        """
        doc = {"start": self.start,
               "restore_interim_result": self.restore_interim_result,
               "restore_snapshot": self.restore_interim_result,
               "notice": self.notice, "steps_reused": self.steps_reused}
        if self.actions is not None:
            doc.update(actions=list(self.actions),
                       steps_to_run=self.steps_to_run,
                       forced_from=self.forced_from)
        for name in ("inputs_changed", "step_ids", "source_resource_id",
                     "resume_from", "files_to_put_back"):
            if getattr(self, name) is not None:
                doc[name] = getattr(self, name)
        return doc

    @classmethod
    def from_json(cls, doc: dict) -> ResumePlan:
        """The plan from :meth:`to_json` (also one that has only the old
        ``restore_snapshot`` key)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in doc.items() if k in known}
        values.setdefault("restore_interim_result",
                          doc.get("restore_snapshot"))
        return cls(**values)


# --------------------------------------------------------------------------
# the rules
# --------------------------------------------------------------------------


def _check_position(value, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int or None, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def _out_of_range(from_step: int, n: int) -> ResumeNotPossible:
    return ResumeNotPossible(
        f"cannot resume from step {from_step}: the process chain has only {n} "
        f"step(s) (valid steps: 0 to {n - 1})" if n else
        f"cannot resume from step {from_step}: the process chain is empty",
        earliest=0, possible=[0],
    )


def _no_interim_result_before(from_step, resume, snaps, usable, first_diff,
                              failed_step, n) -> ResumeNotPossible:
    """``from_step`` asked for a start that no interim result allows: name
    the possible steps instead of silently running more than requested."""
    possible = [0] + [s + 1 for s in usable if s + 1 <= resume]
    if len(possible) == 1:
        # no interim result at or before the requested step, but maybe
        # after it (onError keeps only the one before the failed step)
        natural = min([c for c in (first_diff, failed_step) if c is not None]
                      or [n])
        possible += [s + 1 for s in usable if resume < s + 1 <= natural]
    earliest = possible[1] if len(possible) > 1 else 0
    others = ", ".join(str(p) for p in possible[1:])
    return ResumeNotPossible(
        f"cannot resume from step {from_step}: no snapshot after step "
        f"{from_step - 1} exists. Earliest possible step: {earliest}"
        + (" (from the start)" if earliest == 0 else
           f"; possible steps: {others} or 0 (from the start)"),
        earliest=earliest,
        possible=possible,
    )


def _restore_point(resume: int, snaps, usable) -> tuple[int, int | None,
                                                         str | None]:
    """``(start, restore, notice)`` for a resume at ``resume``: the
    interim result just before it, else the nearest earlier one, else the
    first step."""
    if resume == 0:
        return 0, None, None
    if (resume - 1) in snaps:
        return resume, resume - 1, None
    earlier = [s for s in usable if s < resume - 1]
    if earlier:
        restore = earlier[-1]
        return restore + 1, restore, (
            f"No snapshot after step {resume - 1} exists; resuming from step "
            f"{restore + 1} (snapshot after step {restore}) instead of step "
            f"{resume}.")
    return 0, None, (
        f"No snapshot after step {resume - 1} (or any earlier step) exists; "
        f"running the process chain from the start instead of step {resume}.")


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

    The interim result "after resume point − 1" is restored. If it is
    missing, the nearest earlier one is used (or the chain runs from the
    start) and ``notice`` says so — except when the user explicitly asked
    for ``from_step`` and that is the resume point: then
    :class:`ResumeNotPossible` names the possible steps instead.

    If neither a change nor a failed step nor ``from_step`` determines the
    resume point, the failure happened after the latest interim result, so
    the iteration continues after the latest usable one.
    """
    n = len(new_fps)
    failed_step = _check_position(failed_step, "failed_step")
    from_step = _check_position(from_step, "from_step")
    snaps = sorted({_check_position(s, "snapshot step") for s in snapshot_steps})
    if from_step is not None and from_step >= n:
        raise _out_of_range(from_step, n)

    first_diff = planner.first_changed_step(new_fps, saved_fps)
    # positions before this one are identical in both chains; an interim
    # result after step s is only valid if s < limit
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
    if (from_step is not None and resume == from_step and from_step > 0
            and (from_step - 1) not in snaps):
        raise _no_interim_result_before(from_step, resume, snaps, usable,
                                        first_diff, failed_step, n)

    start, restore, fallback = _restore_point(resume, snaps, usable)
    notice = fallback or notice
    if from_step is not None and start < from_step and notice is None:
        why = ("has changed" if first_diff is not None and first_diff == resume
               else "failed in the previous iteration")
        notice = (
            f"Resuming from step {start}, not from the requested step {from_step}: "
            f"step {resume} {why}."
        )
    return ResumePlan(start=start, restore_interim_result=restore,
                      actions=planner.step_actions(new_fps, saved_fps, start),
                      notice=notice)


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
    return ResumePlan(
        start=furthest, restore_interim_result=furthest - 1,
        actions=planner.step_actions(new_fps, saved_fps, furthest),
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
        step = plan.restore_interim_result
        problem = None if step is None else damage(step)
        if problem is None:
            break
        if step not in usable:
            raise ResumeNotPossible(problem)
        problems.append(problem)
        del usable[step]
    if problems:
        where = (f"resuming after step {plan.restore_interim_result}"
                 if plan.restore_interim_result is not None
                 else "running from the first step")
        plan.add_notice(*problems, f"It is not used: {where}.", first=True)
    return plan


def plan_checked(new_fps: Sequence[str], saved_fps: Sequence[str],
                 failed_step: int | None, snapshot_fps: dict[int, str],
                 recorded: dict | None, current: dict | None,
                 damage=lambda step: None,
                 from_step: int | None = None) -> ResumePlan:
    """:func:`plan_with_intact_interim_results`, with interim results taken
    after a step whose inputs changed (``recorded`` against ``current``,
    see inputs.py) left out: the iteration starts at the first affected
    step at the latest."""
    affected, reasons = inputs.first_affected_step(recorded, current)
    if affected is not None:
        snapshot_fps = {s: fp for s, fp in snapshot_fps.items()
                        if s < affected}
        failed_step = affected if failed_step is None else min(failed_step,
                                                               affected)
    plan = plan_with_intact_interim_results(
        new_fps, saved_fps, failed_step, snapshot_fps, damage,
        from_step=from_step)
    if affected is not None and affected < len(new_fps):
        plan.add_notice("Inputs changed since the interim results were "
                        "saved: " + "; ".join(reasons)
                        + f". Steps from step {affected} on are run again.")
        plan.inputs_changed = reasons
    return plan


def at_failure_notice(restored: int) -> str:
    """onError keeps the state when a step failed, not a clean state."""
    return (f"The interim result restored (after step {restored}) was "
            f"saved when step {restored + 1} failed (onError): outputs that "
            "step wrote before it failed may be part of it; the step runs "
            "again and overwrites them.")


# --------------------------------------------------------------------------
# a chain against a job (PUT, reuse)
# --------------------------------------------------------------------------


def plan_for_job(chain: dict, job: JobRecord, store: SnapshotStore,
                 from_step: str | None = None,
                 job_local_pattern: str | None = None,
                 verify_content: bool = False) -> ResumePlan:
    """The plan of running ``chain`` as the next iteration of the job whose
    record is ``job`` and whose interim results are in ``store``.

    ``from_step`` is the user's step reference (an id or a position);
    ``job_local_pattern`` is ``include_additional_mapset_pattern`` (mapsets
    that are the job's own, not inputs). ``verify_content``: read every
    byte of the interim result it plans to restore (a dry run does; a real
    PUT checks cheaply and the restore checks every byte as it copies,
    falling back as the dry run would). Raises :class:`PlanError`.
    """
    steps = chain["list"]
    order = planner.execution_order(steps)
    ordered = [steps[i] for i in order]
    ids = [str(steps[i].get("id", i)) for i in order]
    snapshots = store.fingerprints()
    failed = job.get("failed_step")
    if failed is None and job:
        failed = (max(snapshots) + 1) if snapshots else 0
    # one survey of the stored objects answers both the cheap damage check
    # of the interim result to restore and the notice about the others
    damaged = store.survey()[1]
    try:
        from_position = (planner.resolve_step_ref(from_step, ids)
                         if from_step is not None else None)
        # never a damaged interim result; also checks the mapsets and
        # import sources the chain reads
        plan = plan_checked(
            planner.step_fingerprints(ordered), job.get("fingerprints") or [],
            failed, snapshots, job.get("inputs"),
            inputs.current_inputs(ordered, job.get("inputs"),
                                  job_local_pattern),
            damage=functools.partial(store.damage, content=True)
            if verify_content else functools.partial(_surveyed, damaged),
            from_step=from_position)
    except PlanError:
        raise
    except ValueError as exc:
        raise PlanError(str(exc)) from None
    plan.forced_from = from_position
    plan.step_ids = ids
    _add_job_notices(plan, job, store, bool(snapshots), damaged)
    return plan


def _surveyed(damaged: dict, step: int) -> str | None:
    """:meth:`.SnapshotStore.damage` without ``content``, from the
    survey's ``{step: why}`` (the same definition of an intact interim
    result: every manifest sealed, every object there at its size)."""
    why = damaged.get(step)
    return None if why is None else f"The {why}."


def _add_job_notices(plan: ResumePlan, job: JobRecord, store: SnapshotStore,
                     any_interim_results: bool, damaged: dict) -> None:
    """What the plan should say about the job's record, about damaged
    interim results (``damaged``: the survey's ``{step: why}``) and about
    an interim result saved at a failure (onError)."""
    if not job.found and not any_interim_results:
        plan.notice = ("No interim results are stored for this job; it runs "
                       "from the first step")
    elif job.damaged:
        plan.add_notice(job.notice(), first=True)
    restore = plan.restore_interim_result
    _add_damage_notice(plan, damaged, restore)
    restored = store.get(restore) if restore is not None else None
    if restored is not None and restored.meta.get("taken_at_failure"):
        plan.add_notice(at_failure_notice(restore))


def _add_damage_notice(plan: ResumePlan, surveyed: dict,
                       restore: int | None) -> None:
    """Name every damaged interim result after the restore point ("damaged",
    and where), unless the notice already does."""
    damaged = [f"The {why}." for step, why in sorted(surveyed.items())
               if restore is None or step > restore]
    damaged = [why for why in damaged if why not in (plan.notice or "")]
    if damaged:
        plan.add_notice(*damaged, "It is not used.", first=True)


# --------------------------------------------------------------------------
# reuse across jobs
# --------------------------------------------------------------------------


def _unusable(job: JobRecord, wanted: dict) -> str | None:
    """Why a job's interim results cannot serve this POST (None: they can)."""
    if job.get("status") != "error":
        return (f"it is {job.get('status') or 'unknown'}; only jobs that "
                "ended with an error can be reused")
    for key, value in wanted.items():
        if job.get(key) != value:
            return f"its {key} is {job.get(key)!r}, not {value!r}"
    return None


def _from_source(plan: ResumePlan, resource_id: str) -> ResumePlan:
    if plan.restore_interim_result is not None:
        plan.source_resource_id = resource_id
    return plan


def plan_reuse_of(resource_dir: str | Path, user_id: str, resource_id: str,
                  chain: dict, wanted: dict,
                  job_local_pattern: str | None = None,
                  verify_content: bool = False) -> ResumePlan:
    """The plan of a POST with ``?reuse=<resource_id>``: ``chain`` planned
    as a PUT on that job of ``user_id`` would plan it. ``wanted`` holds what
    the job must match (project, core class, target mapset). Raises
    :class:`ReuseRefused` when the job cannot be reused."""
    roots = {root.name: root for root in list_job_roots(resource_dir, user_id)}
    if resource_id not in roots:
        raise ReuseRefused(f"reuse={resource_id}: you have no interim "
                           "results of such a job")
    store = SnapshotStore(roots[resource_id])
    job = read_job_record(store.root)
    why = _unusable(job, wanted)
    if why:
        raise ReuseRefused(f"reuse={resource_id}: cannot be reused: {why}")
    return _from_source(plan_for_job(chain, job, store, None,
                                     job_local_pattern, verify_content),
                        resource_id)


def _shares_a_step(store: SnapshotStore, new_fps: list[str]) -> bool:
    """Cheap pre-check before planning (which fingerprints the inputs):
    does any interim result hold a prefix of the new chain?"""
    return any(step < len(new_fps) and fp == new_fps[step]
               for step, fp in store.fingerprints().items())


def plan_reuse_best(resource_dir: str | Path, user_id: str, chain: dict,
                    wanted: dict,
                    job_local_pattern: str | None = None,
                    verify_content: bool = False) -> ResumePlan:
    """The plan of a POST with ``?reuse=latest``: over the caller's matching
    job that reuses the most steps (the most recently updated one among
    equals); from the first step when none matches."""
    new_fps = planner.chain_fingerprints(chain["list"])
    best, best_key = None, None
    for root in list_job_roots(resource_dir, user_id):
        store = SnapshotStore(root)
        job = read_job_record(store.root)
        if _unusable(job, wanted) or not _shares_a_step(store, new_fps):
            continue
        try:
            plan = plan_for_job(chain, job, store, None, job_local_pattern,
                                verify_content)
        except PlanError:
            continue
        key = (plan.steps_reused, job.get("updated") or 0)
        if plan.restore_interim_result is not None and (
                best_key is None or key > best_key):
            best, best_key = _from_source(plan, root.name), key
    if best is None:
        return ResumePlan(
            start=0, restore_interim_result=None, actions=None,
            notice="No interim results of your earlier jobs match this "
                   "chain; it runs from the first step")
    return best


# --------------------------------------------------------------------------
# the worker's second look
# --------------------------------------------------------------------------


def replan(fingerprints: Sequence[str], job: JobRecord,
           store: SnapshotStore,
           damage: Callable[[int], str | None] | None = None) -> ResumePlan:
    """The plan again from what is intact in ``store``, for a worker whose
    planned interim result was damaged or removed after the PUT planned it
    (e.g. by retention). ``fingerprints`` are the chain's, in execution
    order; ``damage`` (default ``store.damage``) also knows what the worker
    found damaged while restoring."""
    return plan_with_intact_interim_results(
        fingerprints, job.get("fingerprints") or [], job.get("failed_step"),
        store.fingerprints(), damage or store.damage)


def reuse_gone(number_of_steps: int, why: str | None = None) -> ResumePlan:
    """An earlier job's interim result (reuse) is not planned again when it
    is damaged or gone: the job runs from the first step; ``why`` says what
    was damaged."""
    plan = ResumePlan(
        start=0, restore_interim_result=None,
        actions=["run"] * number_of_steps,
        notice="The interim result to reuse is damaged or gone; the job "
               "runs from the first step")
    plan.add_notice(why, first=True)
    return plan


# --------------------------------------------------------------------------
# a continuation after worker loss
# --------------------------------------------------------------------------


def plan_continuation(resource_dir: str | Path, user_id: str,
                      resource_id: str) -> ResumePlan:
    """The plan of a continuation (continuation.py: the job's worker was
    lost and the job runs again by itself): the same chain again, after the
    newest intact interim result (a damaged one is skipped, as for a PUT).
    From the first step when the job has no record or no plan can be
    made."""
    store = SnapshotStore(interim_root(resource_dir, user_id, resource_id))
    fingerprints = read_job_record(store.root).get("fingerprints") or []
    from_the_start = ResumePlan(start=0, restore_interim_result=None)
    if not fingerprints:
        return from_the_start
    snapshots = store.fingerprints()
    failed = (max(snapshots) + 1) if snapshots else 0
    try:
        return plan_with_intact_interim_results(
            fingerprints, fingerprints, failed, snapshots, store.damage)
    except PlanError:
        return from_the_start
