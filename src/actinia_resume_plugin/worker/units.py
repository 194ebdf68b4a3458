# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Attribute actinia's flat process list to the steps of the process chain.

actinia converts a process chain into one flat list of processes: the
download and import processes of every import step come first, then one
process per module/exe step; exporter steps yield none. Interim results and
fingerprints are per *step*, so the worker needs to know which processes
belong to which step. Plain Python: processes are only read through their
``id`` and ``executable`` attributes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from actinia_resume_plugin.planner import execution_order

# Processes that finish the import of one ``import_descr`` input.
IMPORT_COMMANDS = ("r.import", "v.import")


@dataclass
class StepUnit:
    """One chain step and the processes that carry it out."""

    position: int  # in execution order
    chain_index: int  # in the process chain's "list"
    step_id: str
    processes: list = field(default_factory=list)


def count_imports(step: dict) -> int:
    return sum(
        1 for item in step.get("inputs", []) or []
        if isinstance(item, dict) and "import_descr" in item
    )


def _ends_import(process) -> bool:
    """True for the process that completes one import input."""
    executable = getattr(process, "executable", None)
    if executable in IMPORT_COMMANDS:
        return True
    pid = getattr(process, "id", None) or ""
    return executable == "/bin/mv" and pid.startswith("mv_") and "_to_" in pid


def _makes_a_process(step: dict) -> bool:
    """actinia makes no process of an importer or exporter step itself."""
    return step.get("module") not in ("importer", "exporter")


def group_processes(chain_list: list[dict], process_list: list) -> list[StepUnit]:
    """Split ``process_list`` into one :class:`StepUnit` per chain step,
    ordered as actinia executes them (import steps first)."""
    order = execution_order(chain_list)
    units = {
        idx: StepUnit(pos, idx, str(chain_list[idx].get("id", idx)))
        for pos, idx in enumerate(order)
    }
    own_ids = {
        str(step.get("id")): idx for idx, step in enumerate(chain_list)
        if "id" in step
    }
    import_steps = [idx for idx in order if count_imports(chain_list[idx])]
    n_imports = sum(count_imports(chain_list[i]) for i in import_steps)

    imports, rest = [], []
    for process in process_list:
        pid = getattr(process, "id", None)
        (rest if (rest or pid in own_ids) else imports).append(process)

    _assign_imports(units, chain_list, import_steps, n_imports, imports)
    # actinia makes at most one process per module/exe step, in list order
    # whatever the ids: a process belongs to the next step (list order)
    # with its id, so steps sharing an id keep their order
    in_list_order = [units[idx] for idx in sorted(units)
                     if _makes_a_process(chain_list[idx])]
    last = units[order[0]] if order else None
    cursor = 0
    for process in rest:
        pid = getattr(process, "id", None)
        if pid in own_ids:
            match = next((j for j in range(cursor, len(in_list_order))
                          if in_list_order[j].step_id == pid), None)
            if match is None:  # not ahead: the last step with that id
                last = units[own_ids[pid]]
            else:
                last, cursor = in_list_order[match], match + 1
        if last is not None:
            last.processes.append(process)
    return [units[idx] for idx in order]


def _assign_imports(units, chain_list, import_steps, n_imports, imports):
    """Give each import step the processes of its import inputs; when the
    boundaries cannot be told apart, the first import step takes them all
    (coarser but still correct: all imports then form one unit)."""
    if not imports:
        return
    ends = [i for i, p in enumerate(imports) if _ends_import(p)]
    if not import_steps or len(ends) != n_imports:
        target = units[import_steps[0]] if import_steps else units[
            min(units)]
        target.processes.extend(imports)
        return
    start = 0
    cursor = 0
    for idx in import_steps:
        for _ in range(count_imports(chain_list[idx])):
            end = ends[cursor] + 1
            units[idx].processes.extend(imports[start:end])
            start, cursor = end, cursor + 1
    units[import_steps[-1]].processes.extend(imports[start:])
