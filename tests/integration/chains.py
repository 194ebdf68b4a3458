# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""The process-chain builders of the real-stack tests: one place for the
step dicts (r.mapcalc, r.univar, g.region, exe steps) and the chains of
tests/data/chains, so that a test says what its chain does, not how
actinia spells it."""

from __future__ import annotations

import json

from .deployments import DATA

#: A box in nc_spm_08 (the sample project), for regions of a given size.
BOX = {"n": 228500, "s": 215000, "w": 630000, "e": 645000}


def chain(*steps: dict) -> dict:
    return {"version": "1", "list": list(steps)}


def load_chain(name: str, **replacements) -> dict:
    """Load tests/data/chains/<name>.json, replacing {{key}} placeholders."""
    text = (DATA / "chains" / f"{name}.json").read_text()
    for key, value in replacements.items():
        text = text.replace("{{" + key + "}}", str(value))
    return json.loads(text)


def mapcalc(step_id: str, expression: str, flags: str = "") -> dict:
    step = {"id": step_id, "module": "r.mapcalc",
            "inputs": [{"param": "expression", "value": expression}]}
    if flags:
        step["flags"] = flags
    return step


def univar(step_id: str, raster: str, stdout: str | None = None) -> dict:
    """``r.univar -g`` of ``raster``; its output is the process result
    ``stdout`` (default: the step id)."""
    return {"id": step_id, "module": "r.univar", "flags": "g",
            "inputs": [{"param": "map", "value": raster}],
            "stdout": {"id": stdout or step_id, "format": "kv",
                       "delimiter": "="}}


def region(step_id: str = "region", **params) -> dict:
    """``g.region`` (default: the region of the elevation model)."""
    params = params or {"raster": "elevation@PERMANENT"}
    return {"id": step_id, "module": "g.region",
            "inputs": [{"param": k, "value": str(v)}
                       for k, v in params.items()]}


def box_region(rows: int, cols: int, step_id: str = "region") -> dict:
    """``g.region`` of :data:`BOX` with ``rows`` x ``cols`` cells."""
    return region(step_id, **BOX, rows=rows, cols=cols)


def exe(step_id: str, executable: str, *params) -> dict:
    return {"id": step_id, "exe": executable,
            "params": [str(p) for p in params]}


def sh(step_id: str, script: str) -> dict:
    return exe(step_id, "/bin/sh", "-c", script)


def gate(path, step_id: str = "gate") -> dict:
    """A step that fails while ``path`` is missing (``ls path``)."""
    return exe(step_id, "ls", path)


def sleep(step_id: str, seconds) -> dict:
    return exe(step_id, "sleep", seconds)
