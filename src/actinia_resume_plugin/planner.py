# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""The step arithmetic of resumption: fingerprints, execution order, the
first changed step, step references.

Where an iteration starts is decided in :mod:`actinia_resume_plugin.plans`
on top of these functions.

All positions are 0-based indices into the *execution order* of a process
chain (see :func:`execution_order`): actinia runs the import steps first, so
"step 3" means the fourth step actinia actually executes. An interim result
"after step N" holds the state once position N has completed.

Pure functions, no I/O, no actinia imports.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

__all__ = [
    "IGNORED_STEP_KEYS",
    "canonical_step",
    "chain_fingerprints",
    "execution_order",
    "first_changed_step",
    "is_import_step",
    "resolve_step_ref",
    "step_actions",
    "step_fingerprints",
]

#: Top-level keys of a process-chain entry that do not influence its result.
IGNORED_STEP_KEYS = frozenset({"comment"})


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
# comparing two chains
# --------------------------------------------------------------------------


def first_changed_step(new_fps: Sequence[str],
                       saved_fps: Sequence[str]) -> int | None:
    """The first position whose new fingerprint differs from the saved one
    (or that the saved chain did not have); ``None`` when the new chain is
    the saved one or a prefix of it."""
    return next(
        (i for i in range(len(new_fps))
         if i >= len(saved_fps) or new_fps[i] != saved_fps[i]),
        None,
    )


def step_actions(new_fps: Sequence[str], saved_fps: Sequence[str],
                 start: int) -> list[str]:
    """What an iteration starting at ``start`` does with each step:
    ``"reused"`` before ``start`` (from the interim result), then
    ``"rerun"`` for a step the saved chain has unchanged, else ``"new"``."""
    return [
        "reused" if i < start
        else "rerun" if i < len(saved_fps) and saved_fps[i] == fp
        else "new"
        for i, fp in enumerate(new_fps)
    ]


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
