# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue 20: a resumed job ends exactly as a fresh run of the fixed chain
(differential test, real stack, hypothesis).

Each scenario is a generated chain of 3-10 fast GRASS steps on a 10 x 10
region (r.mapcalc over earlier maps, overwrites, g.rename / g.remove /
g.copy, r.neighbors, r.null, r.reclass, r.mask, r.buildvrt, i.group,
r.colors with a rules file, v.random / v.db.update, exe steps, stdout
results, repeated step ids, and now and then one exe step making 40 maps at
once: enough small new files for its interim result to be a pack file).
One step is replaced by a failing one (a missing input, an external cause,
or a step that removes a map and then fails); the job fails; the chain is
fixed (the failed step repaired; sometimes an earlier step edited, a step
inserted or removed, or a second failure and a second resume) and resumed
with PUT, ephemeral or persistent, with ``save_interim_results`` True or
onError.

The oracle is a fresh run of the final chain. Every chain ends with an
inventory step that prints a checksum of every raster (cell values through
the mask, colour table), vector (geometry and attributes) and group of the
mapset; every stdout result, the inventory included, must be equal.
onError scenarios whose failing step removed a map before it failed (the
spec's documented limit: the interim result is the state at the failure)
are counted apart, never hidden.

Profiles: ``RESUME_DIFFERENTIAL=long`` (or ``RESUME_DIFFERENTIAL_EXAMPLES=N``)
for the long one; the short one runs in ``scripts/test.sh``. Deterministic
(``derandomize``); the figures are printed at the end of the run.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .chains import box_region

PROFILE = os.environ.get("RESUME_DIFFERENTIAL", "short")
#: per mode and endpoint (4 combinations)
EXAMPLES = int(os.environ.get("RESUME_DIFFERENTIAL_EXAMPLES")
               or (50 if PROFILE == "long" else 2))
SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
    suppress_health_check=list(HealthCheck))
OUTCOMES: Counter = Counter()
FIGURES = Path(os.environ.get("RESUME_DIFFERENTIAL_FIGURES",
                              "/tmp/resume-differential.json"))

# cut -c1-32 of md5sum; errors go to stdout too ("2>&1": '&' is refused)
#: Maps the "bulk" step makes at once (~7 files each: > the 256 small new
#: files that make a save write a pack file).
BULK = 40

INVENTORY = r"""
sum() { md5sum | cut -c1-32; }
for m in $(g.list type=raster mapset=. | sort); do
  echo "raster $m $(r.out.ascii -h input=$m output=- 2>/dev/null | sum)" \
    "$(r.colors.out map=$m 2>/dev/null | sum)"
done
for v in $(g.list type=vector mapset=. | sort); do
  echo "vector $v" \
    "$(v.out.ascii input=$v output=- format=point columns='*' 2>/dev/null | sum)"
done
for g in $(g.list type=group mapset=. | sort); do
  echo "group $g $(i.group -lg group=$g 2>/dev/null | sed 's/@.*//' | sort | sum)"
done
echo end
"""


def region():
    return box_region(10, 10)


def inventory():
    return {"id": "inventory", "exe": "/bin/sh", "params": ["-c", INVENTORY],
            "stdout": {"id": "inventory", "format": "list",
                       "delimiter": "\n"}}


def module(step_id, name, /, flags=None, overwrite=False, **params):
    step = {"id": step_id, "module": name, "inputs": [
        {"param": k, "value": str(v)} for k, v in params.items()]}
    if flags:
        step["flags"] = flags
    if overwrite:
        step["overwrite"] = True
    return step


@dataclass
class Model:
    """What the chain has made so far (for valid next steps)."""

    ints: list = field(default_factory=list)  # CELL rasters
    others: list = field(default_factory=list)  # FCELL/DCELL, VRTs
    pinned: set = field(default_factory=set)  # bases of reclass, VRT, group
    reclass: set = field(default_factory=set)  # reclass maps (no r.null)
    vrt: set = field(default_factory=set)  # maps that are part of a VRT
    vectors: list = field(default_factory=list)
    mask: bool = False
    bulk: bool = False  # a step made BULK maps at once (a packed save)
    names: int = 0

    def new(self, prefix="m"):
        self.names += 1
        return f"{prefix}{self.names}"

    def free(self):
        return [m for m in self.ints if m not in self.pinned
                and m not in self.reclass]


class Generator:
    def __init__(self, rng: random.Random, files: Path):
        self.rng, self.files = rng, files
        self.ids: list[str] = []
        self.count = 0

    def step_id(self, kind: str, stdout=False) -> str:
        # now and then an id an earlier step has (actinia runs steps in
        # list order whatever their ids); ids of stdout steps stay unique
        # (actinia reads a stdout result by process id: the later step's
        # output would replace it, in actinia alone too)
        if self.ids and not stdout and self.rng.random() < 0.15:
            return self.rng.choice(self.ids)
        self.count += 1
        sid = f"{kind}_{self.count}"
        if not stdout:
            self.ids.append(sid)
        return sid

    def file(self, text: str) -> str:
        path = self.files / f"f{uuid.uuid4().hex[:8]}.txt"
        path.write_text(text)
        return str(path)

    def step(self, m: Model) -> dict:
        r = self.rng
        kinds = ["mapcalc", "exe", "vrandom"]
        if m.ints:
            kinds += ["mapcalc", "over", "neighbors", "null", "reclass",
                      "mask", "colors", "univar", "copy", "vrt", "group"]
        if len(m.free()) > 1:
            kinds += ["rename", "remove"]
        if m.vectors:
            kinds += ["vupdate"]
        if not m.bulk and r.random() < 0.3:
            kinds += ["bulk"]
        kind = r.choice(kinds)
        sid = self.step_id(kind, stdout=kind == "univar")
        if kind == "mapcalc":
            out = m.new()
            sources = m.ints + m.others
            if sources and r.random() < 0.7:
                expr = (f"{out} = int({r.choice(sources)} * {r.randint(1, 5)}"
                        f" + {r.randint(0, 9)})")
            else:
                expr = f"{out} = row() * {r.randint(1, 9)} + col()"
            m.ints.append(out)
            return module(sid, "r.mapcalc", expression=expr)
        if kind == "over":
            target = r.choice(m.free() or [m.new()])
            if target not in m.ints:
                m.ints.append(target)
            src = r.choice([x for x in m.ints + m.others if x != target]
                           or ["row()"])
            return module(sid, "r.mapcalc", overwrite=True,
                          expression=f"{target} = int({src} + "
                          f"{r.randint(1, 9)})")
        if kind == "neighbors":
            out = m.new()
            m.others.append(out)
            return module(sid, "r.neighbors", input=r.choice(m.ints),
                          output=out, size=3,
                          method=r.choice(["average", "maximum"]))
        if kind == "null":
            target = r.choice(m.free() or [m.new()])
            if target not in m.ints:  # nothing to change: a new map
                m.ints.append(target)
                return module(sid, "r.mapcalc", expression=f"{target} = 1")
            return module(sid, "r.null", map=target,
                          setnull=str(r.randint(1, 12)))
        if kind == "reclass":
            src, out = r.choice(m.ints), m.new()
            m.pinned.add(src)
            m.ints.append(out)
            m.reclass.add(out)
            cut = r.randint(3, 40)
            return module(sid, "r.reclass", input=src, output=out,
                          rules=self.file(f"0 thru {cut} = 1\n{cut + 1} thru "
                                          "100000 = 2\nend\n"))
        if kind == "mask":
            if m.mask:
                m.mask = False
                return module(sid, "r.mask", flags="r")
            src = r.choice(m.ints)
            m.pinned.add(src)
            m.mask = True
            return module(sid, "r.mask", raster=src,
                          maskcats=f"1 thru {r.randint(10, 60)}")
        if kind == "colors":
            return module(sid, "r.colors", map=r.choice(m.ints),
                          rules=self.file("0 red\n30 green\n100 blue\n"))
        if kind == "univar":
            step = module(sid, "r.univar", flags="g",
                          map=r.choice(m.ints + m.others))
            step["stdout"] = {"id": sid, "format": "kv", "delimiter": "="}
            return step
        if kind == "copy":
            src, out = r.choice(m.ints), m.new()
            m.ints.append(out)
            return module(sid, "g.copy", raster=f"{src},{out}")
        if kind == "rename":
            src, out = r.choice(m.free()), m.new()
            m.ints[m.ints.index(src)] = out
            return module(sid, "g.rename", raster=f"{src},{out}")
        if kind == "remove":
            victim = r.choice(m.free())
            m.ints.remove(victim)
            return module(sid, "g.remove", flags="f", type="raster",
                          name=victim)
        if kind == "vrt":
            # a map is part of one VRT at most (GRASS refuses a second)
            members = [x for x in m.ints if x not in m.vrt]
            if len(members) < 2:
                return {"id": sid, "exe": "true"}
            inputs = r.sample(members, 2)
            m.pinned.update(inputs)
            m.vrt.update(inputs)
            out = m.new("v")
            m.others.append(out)
            return module(sid, "r.buildvrt", input=",".join(inputs),
                          output=out)
        if kind == "group":
            inputs = r.sample(m.ints, min(len(m.ints), 2))
            m.pinned.update(inputs)
            return module(sid, "i.group", group=m.new("g"),
                          input=",".join(inputs))
        if kind == "bulk":
            # enough small new files (BULK maps, ~7 files each) for the
            # step's interim result to go into a pack file
            m.bulk = True
            prefix = m.new("b")
            m.ints.extend(f"{prefix}_{i}" for i in range(BULK))
            return {"id": sid, "exe": "/bin/sh", "params": ["-c", (
                f"i=0; while [ $i -lt {BULK} ]; do echo \"{prefix}_$i = "
                "row() * $i + col()\"; i=$((i+1)); done | r.mapcalc file=- "
                "--quiet")]}
        if kind == "vrandom":
            out = m.new("p")
            m.vectors.append(out)
            return module(sid, "v.random", output=out, npoints=12,
                          seed=r.randint(1, 1000), column="z",
                          column_type="integer")
        if kind == "vupdate":
            return module(sid, "v.db.update", map=r.choice(m.vectors),
                          column="z", value=str(r.randint(1, 99)),
                          where=f"cat < {r.randint(2, 10)}")
        return {"id": sid, "exe": "true"}

    def chain(self) -> tuple[list[dict], list[Model]]:
        """Steps (after the region) and the model before each step."""
        model, steps, before = Model(), [], []
        for _ in range(self.rng.randint(3, 10)):
            before.append(_copy(model))
            steps.append(self.step(model))
        return steps, before

    def failing(self, kind: str, model: Model, gate: Path) -> dict:
        sid = f"fails_{uuid.uuid4().hex[:6]}"
        if kind == "missing":
            return module(sid, "r.mapcalc",
                          expression="broken = no_such_map + 1")
        if kind == "gate":
            return {"id": sid, "exe": "ls", "params": [str(gate)]}
        victim = self.rng.choice(model.free() or ["no_such_map"])
        return {"id": sid, "exe": "/bin/sh", "params": [
            "-c", f"g.remove -f type=raster name={victim} >/dev/null 2>&1;"
            " exit 1"]}


def _copy(model: Model) -> Model:
    return Model(list(model.ints), list(model.others), set(model.pinned),
                 set(model.reclass), set(model.vrt), list(model.vectors),
                 mask=model.mask, bulk=model.bulk, names=model.names)


def wrap(steps: list[dict]) -> dict:
    return {"version": "1", "list": [region(), *steps, inventory()]}


@dataclass
class Scenario:
    failing: dict
    final: dict
    middle: dict | None  # a second failing chain (second resume)
    destructive: bool
    gate: Path
    fix: str


def scenario(seed: int, files: Path) -> Scenario:
    rng = random.Random(seed)
    gen = Generator(rng, files)
    steps, before = gen.chain()
    gate = files / f"gate-{uuid.uuid4().hex[:8]}"
    k = rng.randrange(len(steps))
    kind = rng.choice(["missing", "gate", "destructive"])
    broken = list(steps)
    broken[k] = gen.failing(kind, before[k], gate)
    final, fix = list(steps), "repair"
    if kind == "gate" and rng.random() < 0.5:
        # an external cause: the chain stays, PUT without a body
        return Scenario(wrap(broken), wrap(broken), None, False, gate,
                        "external")
    roll = rng.random()
    if roll < 0.2 and k > 0:
        j = rng.randrange(k)
        text = json.dumps(final[j])
        edited = text.replace("+ col()", "+ col() * 2").replace(
            "* 1 +", "* 3 +")
        if edited != text:
            final[j] = json.loads(edited)
            fix += "+edit-earlier"
    elif roll < 0.35:
        at = rng.randrange(len(final) + 1)
        final.insert(at, {"id": f"inserted_{at}", "exe": "true"})
        fix += "+insert"
    elif roll < 0.5:
        harmless = [i for i, s in enumerate(final)
                    if s.get("exe") == "true" or s.get("stdout")]
        if harmless:
            del final[rng.choice(harmless)]
            fix += "+remove"
    middle = None
    if rng.random() < 0.25 and len(final) > 1:
        k2 = rng.randrange(len(final))
        middle_steps = list(final)
        middle_steps[k2] = gen.failing("missing", Model(), gate)
        middle = wrap(middle_steps)
        fix += "+second-failure"
    return Scenario(wrap(broken), wrap(final), middle,
                    kind == "destructive", gate, fix)


@pytest.fixture(scope="module")
def figures():
    yield OUTCOMES
    summary = {"profile": PROFILE, "examples_per_combination": EXAMPLES,
               **OUTCOMES}
    FIGURES.write_text(json.dumps(summary, indent=1, sort_keys=True))
    print(f"\ndifferential scenarios: {json.dumps(summary, sort_keys=True)}")


ENDPOINTS = {"ephemeral": "processing_async",
             "persistent": "mapsets/{mapset}/processing_async"}


def results(doc: dict) -> dict:
    return doc.get("process_results") or {}


SEEDS = (st.just(int(os.environ["RESUME_DIFFERENTIAL_SEED"]))
         if os.environ.get("RESUME_DIFFERENTIAL_SEED")
         else st.integers(0, 2**31))


@SETTINGS
@given(seed=SEEDS)
def run_scenario(deployments, files, outcomes, mode, endpoint, seed):
    client = deployments[mode].client()
    sc = scenario(seed, files)

    def path():
        return ENDPOINTS[endpoint].format(mapset=f"dif_{uuid.uuid4().hex[:8]}")

    failed = client.run_chain(path(), sc.failing)
    assert failed["status"] == "error", (seed, failed["message"])
    status_url = failed["urls"]["status"]
    sc.gate.mkdir(exist_ok=True)
    oracle = client.run_chain(path(), sc.final)
    assert oracle["status"] == "finished", (seed, oracle["message"])
    iteration = 2
    if sc.middle is not None:
        assert client.put(status_url, sc.middle).status_code == 200
        again = client.wait(status_url, iteration=iteration)
        iteration += 1
        assert again["status"] == "error", (seed, again["message"])
    body = sc.final if sc.fix != "external" else None
    assert client.put(status_url, body).status_code == 200
    done = client.wait(status_url, iteration=iteration)
    label = f"{mode}/{endpoint}"
    equal = done["status"] == "finished" and results(done) == results(oracle)
    if sc.destructive and mode == "onError":
        outcomes["onError, failing step damaged the mapset: "
                 + ("equal" if equal else "differs")] += 1
        return
    outcomes[f"{label}: {'equal' if equal else 'DIFFERS'}"] += 1
    outcomes[f"fix {sc.fix}"] += 1
    if any(step["id"].startswith("bulk_") for step in sc.final["list"]):
        outcomes["with a step making 40 maps (a packed save)"] += 1
    if not equal:
        FIGURES.with_suffix(f".{seed}.json").write_text(json.dumps(
            {"scenario": [sc.failing, sc.middle, sc.final], "done": done,
             "oracle": oracle}, indent=1, default=str))
    assert done["status"] == "finished", (seed, sc.fix, done["message"])
    assert results(done) == results(oracle), (seed, sc.fix)


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
@pytest.mark.parametrize("mode", ["True", "onError"])
def test_resumed_job_equals_a_fresh_run(stack_true, stack_onerror, figures,
                                        tmp_path_factory, mode, endpoint):
    files = tmp_path_factory.mktemp("differential")
    run_scenario({"True": stack_true, "onError": stack_onerror}, files,
                 figures, mode, endpoint)
