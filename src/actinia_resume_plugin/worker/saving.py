# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""The saving policy of one iteration: which interim results are saved and
what happens when there is no room.

- ``save_interim_results = True`` saves after every step; ``onError`` only
  the state at the failed step, recorded as "after the last step that
  completed", and prunes the others (:meth:`SavingPolicy.job_failed`).
- Every save stays within ``grass_resource_quota`` (:meth:`budget`). When
  it would not, room is made: kept mapsets of other jobs first, then (with
  reuse across jobs on) the least recently used interim results of ended
  jobs; then the save is tried again.
- A full quota or disk, or a job record that cannot be written, stops
  saving for the rest of the job with a reason (:attr:`note`, added to the
  final message); the job itself goes on.
- At a failure the iteration's own dirs are kept for its resume (issue 23)
  when the store knows their state and the quota allows.
- Where nothing a resume could skip follows the last step (``…/processing_async``:
  only actinia's parse of the stdout), the last step's interim result is
  saved only when the job fails after it (:meth:`SavingPolicy.after_step`):
  after a success it would be deleted unread, and its save (a walk of the
  whole mapset) would delay ``finished``.

Plain Python: the job's dirs and the snapshot meta come from callbacks the
worker's actinia hooks provide; no actinia import.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from fnmatch import fnmatch

from actinia_resume_plugin.config import ResumeConfig
from actinia_resume_plugin.store import (
    KeptMapset,
    SnapshotBudgetExceeded,
    SnapshotError,
    SnapshotInfo,
    SnapshotNoSpace,
    SnapshotStore,
    evict_kept_mapsets,
    evict_unused_interim_results,
    storage_usage,
)
from actinia_resume_plugin.worker.job_record import write_job_record
from actinia_resume_plugin.worker.removals import DeferredRemovals

#: The part name prefix of an additional (job-local) mapset.
ADDITIONAL_PART = "mapsets/"


def snapshot_parts(mapset_path, tmpdir, project_path,
                   additional_pattern: str | None) -> dict:
    """The parts of an interim result: the temporary mapset, the job's
    temporary file directory and the mapsets of ``project_path`` matching
    ``additional_pattern`` (not links); only those that are directories."""
    parts = {"mapset": mapset_path, "tmpdir": tmpdir}
    if additional_pattern and project_path:
        for name in sorted(os.listdir(project_path)):
            path = os.path.join(project_path, name)
            if (fnmatch(name, additional_pattern) and os.path.isdir(path)
                    and not os.path.islink(path) and path != mapset_path):
                parts[ADDITIONAL_PART + name] = path
    return {k: v for k, v in parts.items() if v and os.path.isdir(v)}


def snapshot_meta(step_units: Sequence, position: int, process_logs: dict,
                  fingerprints: Sequence[str], mapset_name: str,
                  iteration, at_failure: bool) -> dict:
    """What an interim result after ``position`` records besides its files:
    the steps it contains, their stdout logs, where it was taken."""
    ids = {str(getattr(p, "id", None))
           for u in step_units[: position + 1] for p in u.processes}
    logs = {pid: dict(log) for pid, log in process_logs.items()
            if pid in ids}
    return {
        "mapset_name": mapset_name,
        "fingerprints": list(fingerprints[: position + 1]),
        "step_ids": [u.step_id for u in step_units[: position + 1]],
        "process_logs": logs,
        "iteration": iteration,
        # onError: the failed step may have written part of its outputs
        "taken_at_failure": at_failure,
    }


class SavingPolicy:
    """Saves this job's interim results, within the quota, and writes its
    job record.

    ``parts()`` returns the live parts (:func:`snapshot_parts`), or None
    while there is no temporary mapset; ``meta(position, at_failure)`` the
    snapshot meta (:func:`snapshot_meta`); ``for_client(exc)`` an error
    message without server paths. ``plan`` is the iteration's plan (JSON;
    its ``source_resource_id`` is the job reused, never evicted)."""

    def __init__(self, config: ResumeConfig, store: SnapshotStore, *,
                 user_id: str, resource_id: str, iteration, plan: dict,
                 kept: KeptMapset, removals: DeferredRemovals, log,
                 parts: Callable[[], dict | None],
                 meta: Callable[[int, bool], dict],
                 for_client: Callable[[Exception], str],
                 saves_last_step: bool = True):
        self.config = config
        self.store = store
        self.user_id = user_id
        self.resource_id = resource_id
        self.iteration = iteration
        self.plan = plan
        self.kept = kept
        self.removals = removals
        self.log = log
        self.parts = parts
        self.meta = meta
        self.for_client = for_client
        self.note: str | None = None  # why saving stopped
        self.last_saved_position: int | None = None
        self._budget: int | None = None
        self.saves_last_step = saves_last_step
        #: the last step, completed and not saved yet (see after_step)
        self.unsaved_last: int | None = None

    # ------------------------------------------------------------- budget
    def budget(self) -> int:
        """Bytes the next snapshot may add within grass_resource_quota."""
        if self._budget is None:
            user_dir = os.path.join(self.config.resource_dir, self.user_id)
            self._budget = (self.config.resource_quota_bytes
                            - storage_usage(user_dir))
        return max(self._budget, 0)

    def _spent(self, info: SnapshotInfo) -> None:
        self.budget()
        self._budget -= int(info.meta.get("bytes_copied", 0))

    # --------------------------------------------------------------- save
    def _save(self, position: int, parts: dict, at_failure: bool):
        return self.store.save(
            position, parts, self.meta(position, at_failure),
            # at a failure (onError) the others are pruned: self-contained
            budget_bytes=self.budget(), full=at_failure,
        )

    def _save_making_room(self, position: int, parts: dict,
                          at_failure: bool):
        """Kept mapsets of failed jobs are a cache of what their stores
        hold: when the quota is reached they are removed first (issue 23;
        never this job's). With reuse across jobs on, interim results of
        ended jobs are a cache too: the least recently used of them go next
        (never this job's or the one it reuses). The save is tried again
        after each removal."""
        try:
            return self._save(position, parts, at_failure)
        except SnapshotBudgetExceeded as exc:
            refused = exc
        evicted = evict_kept_mapsets(
            self.config.resource_dir, self.user_id,
            refused.needed - refused.budget, keep={self.resource_id})
        if evicted.removed:
            self.log.info(
                f"Removed {len(evicted.removed)} kept mapset(s) "
                f"({evicted.freed_bytes} bytes) to make room")
            self._budget = None
            try:
                return self._save(position, parts, at_failure)
            except SnapshotBudgetExceeded as exc:
                refused = exc
        if not self.config.reuse_interim_results:
            raise refused
        keep = {self.resource_id, self.plan.get("source_resource_id")}
        evicted = evict_unused_interim_results(
            self.config.resource_dir, self.user_id,
            refused.needed - refused.budget, keep=keep)
        if not evicted.removed:
            raise refused
        self.log.info(
            f"Removed {len(evicted.removed)} unused interim result(s) "
            f"({evicted.freed_bytes} bytes) to make room")
        self._budget = None
        return self._save(position, parts, at_failure)

    def save(self, position: int, at_failure: bool = False):
        """Save the interim result after ``position``; its info, or None
        when nothing was saved. A full quota or disk stops saving for the
        rest of the job (the job itself goes on) and says so in
        :attr:`note`; earlier interim results stay."""
        if self.note:
            return None
        parts = self.parts()
        if parts is None:
            return None
        try:
            info = self._save_making_room(position, parts, at_failure)
        except SnapshotBudgetExceeded as exc:
            quota = self.config.resource_quota_gb
            self.stop(
                f"after step {position}: the resource storage quota "
                f"(grass_resource_quota = {quota} GB) would be exceeded "
                f"({exc})")
            return None
        except (SnapshotNoSpace, OSError) as exc:
            # a full disk or a damaged job root (e.g. steps/ is a file)
            self.log.warning(
                f"Saving the interim result of step {position} failed: {exc}")
            self.stop(f"after step {position}: {self.for_client(exc)}")
            return None
        self._spent(info)
        if self.last_saved_position is None:
            # Interim results of later steps stem from an earlier iteration
            # that ran these steps on another state: no longer trustworthy.
            self.store.prune_after(position)
        self.last_saved_position = position
        return info

    def after_step(self, position: int, last: bool = False) -> None:
        """A step completed: ``True`` saves its interim result. The last
        step's waits for the job's end when ``saves_last_step`` is off (no
        work a resume could skip follows it): a success deletes interim
        results unread, a failure after the last step saves it then
        (:meth:`job_failed`; the dirs are as the step left them). A job
        killed in between resumes from the step before (the last step runs
        again: nothing wrong is kept)."""
        if not self.config.save_every_step:
            return
        if last and not self.saves_last_step:
            self.unsaved_last = position
            return
        self.save(position)

    def stop(self, reason: str) -> None:
        """No more interim results for this job, and why."""
        self.note = (
            f"Interim results are no longer saved {reason}; the job goes on "
            "and earlier interim results are kept")
        self.log.warning(self.note)

    # --------------------------------------------------------- job record
    def record(self, fields: dict) -> None:
        """Write the job record; one that cannot be written stops saving
        (a full disk or a damaged job root must not fail the job's own
        work)."""
        try:
            write_job_record(self.store, fields)
        except OSError as exc:
            self.log.warning(f"Job record not written: {exc}")
            if not self.note:
                self.stop(f"(the job record cannot be written: "
                          f"{self.for_client(exc)})")

    # ------------------------------------------------------ the job's end
    def job_succeeded(self) -> None:
        """Nothing to resume: the interim results and the kept mapset go."""
        self.removals.add(self.store.discard())
        self.removals.discard_kept(self.kept)

    def job_failed(self, failed: int | None, start: int, error: bool,
                   mapset_name: str | None) -> None:
        """After a failure at step ``failed`` of an iteration that started
        at ``start``: with ``onError`` save the state at the failure; keep
        the iteration's dirs when it ended in an error (not when terminated
        or out of time: issue 23); record the failure; collect garbage."""
        if self.unsaved_last is not None and failed == self.unsaved_last + 1:
            # all steps ran, the job failed after them (see after_step)
            self.save(self.unsaved_last)
        if (self.config.save_interim_results == "onError"
                and failed is not None and failed > start):
            # onError keeps one interim result: the state at the failure
            # (the failed step may have written part of its outputs),
            # recorded as "after the last step that completed".
            if self.save(failed - 1, at_failure=True):
                self.store.prune({failed - 1})
        if error:
            self.keep_mapset(mapset_name)
        else:
            self.removals.discard_kept(self.kept)
        self.record({"status": "error", "iteration": self.iteration,
                     "failed_step": failed})
        # the job ends: nothing saves after this, and the live state (the
        # stat of every file) would sit beside the manifests the garbage
        # collection parses (the peak RSS of a failed job at 100,000 files)
        self.store.forget_live()
        try:
            self.store.collect_garbage()
        except OSError as exc:
            self.log.warning(f"Interim result clean-up: {exc}")

    def keep_mapset(self, mapset_name: str | None) -> None:
        """At a failure, keep the iteration's dirs with the live state the
        store knows (instead of letting actinia remove them), so that the
        next iteration adopts them. Not for a state the store does not know
        (nothing saved or restored, or restored from another job), not
        beyond grass_resource_quota (other jobs' kept mapsets go first),
        and not when grass_tmp_database is on another file system than
        grass_resource_dir (a rename is all keeping may cost)."""
        live = self.store.live_state()
        if live is None or live.foreign or not mapset_name:
            return
        parts = self.parts() or {}
        if "mapset" not in parts:
            return
        size = sum(storage_usage(path) for path in parts.values())
        budget = self.budget()
        if size > budget:
            evict_kept_mapsets(self.config.resource_dir, self.user_id,
                               size - budget, keep={self.resource_id})
            self._budget = None
            if size > self.budget():
                self.log.info(
                    "The failed mapset is not kept: grass_resource_quota")
                return
        try:
            state = live.state  # an adopted state is built here
        except SnapshotError as exc:
            self.log.info(f"The failed mapset is not kept: {exc}")
            return
        try:
            self.kept.keep(parts, state, {
                "step": live.step, "snapshot_id": live.id,
                "mapset_name": mapset_name, "iteration": self.iteration},
                live.modes)
        except OSError as exc:
            self.log.info(f"The failed mapset is not kept: {exc}")
