# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of the step arithmetic (planner.py): fingerprints, execution
order, the first changed step, step references."""

import copy
import hashlib
import json

import pytest

from actinia_resume_plugin.planner import (
    canonical_step,
    chain_fingerprints,
    execution_order,
    first_changed_step,
    is_import_step,
    resolve_step_ref,
    step_actions,
    step_fingerprints,
)


def importer(i):
    return {
        "id": f"import_{i}",
        "module": "importer",
        "inputs": [{"import_descr": {"source": f"http://x/{i}.tif", "type": "raster"},
                    "param": "map", "value": f"in_{i}"}],
    }


def mod(i, expr="a = 1"):
    return {
        "id": f"step_{i}",
        "module": "r.mapcalc",
        "inputs": [{"param": "expression", "value": f"{expr} + {i}"}],
        "outputs": [],
        "flags": "",
    }


CHAIN = [mod(0), mod(1), mod(2), mod(3), mod(4)]


# ------------------------------------------------------------------ fingerprints


def test_fingerprints_are_chained_sha256():
    fps = step_fingerprints(CHAIN)
    assert len(fps) == 5 and len(set(fps)) == 5
    c0 = json.dumps(CHAIN[0], sort_keys=True, separators=(",", ":"))
    assert fps[0] == hashlib.sha256(c0.encode()).hexdigest()
    c1 = canonical_step(CHAIN[1])
    assert fps[1] == hashlib.sha256((fps[0] + c1).encode()).hexdigest()


def test_fingerprint_ignores_key_order_and_comment_only():
    a = {"module": "r.info", "id": "x", "inputs": [{"param": "map", "value": "e"}]}
    b = {"inputs": [{"value": "e", "param": "map"}], "id": "x", "module": "r.info",
         "comment": "just a note"}
    assert step_fingerprints([a]) == step_fingerprints([b])
    for key, value in (("flags", "g"), ("stdout", {"id": "s", "format": "kv"}),
                       ("outputs", [{"param": "o", "value": "x"}]), ("exe", "/bin/true"),
                       ("params", ["-a"]), ("id", "y")):
        c = dict(a, **{key: value})
        assert step_fingerprints([c]) != step_fingerprints([a]), key
    # nested "comment" keys are data, not ignored
    d = copy.deepcopy(a)
    d["inputs"][0]["comment"] = "x"
    assert step_fingerprints([d]) != step_fingerprints([a])


def test_change_invalidates_all_later_fingerprints():
    old = step_fingerprints(CHAIN)
    changed = copy.deepcopy(CHAIN)
    changed[2]["flags"] = "g"
    new = step_fingerprints(changed)
    assert new[:2] == old[:2]
    assert all(n != o for n, o in zip(new[2:], old[2:], strict=True))
    # same later steps after a changed step still differ (chained)
    assert canonical_step(changed[3]) == canonical_step(CHAIN[3])


def test_canonical_step_rejects_non_dict():
    with pytest.raises(TypeError):
        canonical_step(["r.info"])


# ------------------------------------------------------------------ execution order


def test_execution_order_imports_first():
    chain = [mod(0), importer(1), mod(2), importer(3), mod(4)]
    assert is_import_step(chain[1]) and not is_import_step(chain[0])
    assert execution_order(chain) == [1, 3, 0, 2, 4]
    assert execution_order([]) == []
    assert execution_order(CHAIN) == [0, 1, 2, 3, 4]


def test_non_importer_module_with_import_descr_counts_as_import():
    s = mod(7)
    s["inputs"].append({"import_descr": {"source": "http://x", "type": "raster"},
                        "param": "map", "value": "m"})
    assert execution_order([mod(0), s]) == [1, 0]


def test_chain_fingerprints_use_execution_order():
    chain = [mod(0), importer(1), mod(2)]
    assert chain_fingerprints(chain) == step_fingerprints([chain[1], chain[0], chain[2]])
    assert chain_fingerprints(chain) != step_fingerprints(chain)

# ------------------------------------------------------- comparing two chains


def test_first_changed_step():
    assert first_changed_step(["a", "b"], ["a", "b"]) is None
    assert first_changed_step(["a"], ["a", "b"]) is None  # a prefix
    assert first_changed_step(["a", "b", "c"], ["a", "b"]) == 2
    assert first_changed_step(["a", "x", "c"], ["a", "b", "c"]) == 1
    assert first_changed_step(["a"], []) == 0


def test_step_actions():
    assert step_actions(["a", "b", "x", "d"], ["a", "b", "c", "d"], 1) == [
        "reused", "rerun", "new", "rerun"]
    assert step_actions(["a", "b"], [], 0) == ["new", "new"]


# ------------------------------------------------------------------ resolve_step_ref

IDS = ["import_1", "r_mapcalc", "r_info", "3"]


def test_resolve_by_id_and_number():
    assert resolve_step_ref("r_mapcalc", IDS) == 1
    assert resolve_step_ref("0", IDS) == 0
    assert resolve_step_ref(" 2 ", IDS) == 2
    assert resolve_step_ref(2, IDS) == 2
    assert resolve_step_ref("3", IDS) == 3  # id "3" is also position 3


def test_resolve_id_takes_precedence_over_number():
    assert resolve_step_ref("1", ["a", "b", "1"]) == 2


@pytest.mark.parametrize("ref, msg", [
    ("nope", "unknown step 'nope'"),
    ("4", "out of range"),
    ("-1", "out of range"),
    ("", "empty"),
    ("1.5", "unknown step"),
    (None, "invalid step reference"),
    (True, "invalid step reference"),
])
def test_resolve_errors(ref, msg):
    with pytest.raises(ValueError) as exc:
        resolve_step_ref(ref, IDS)
    assert msg in str(exc.value)


def test_resolve_ambiguous_id():
    with pytest.raises(ValueError, match="ambiguous"):
        resolve_step_ref("a", ["a", "b", "a"])
