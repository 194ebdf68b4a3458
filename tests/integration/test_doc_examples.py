# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue #15: the curl examples of the README and of docs/ run as written,
and the demo of scripts/start.sh (scripts/demo.py) shows the main job.

The examples run unchanged (doc_examples.py extracts the marked
bash blocks) against a deployment of their own, with URL and AUTH set to
it; their output is compared with the answers the pages show. The README's
walkthrough runs first, in a shell of its own; then the pages of docs/ in
the order of mkdocs.yml's nav, in one shell.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from . import doc_examples as rx

REPO = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(scope="module")
def readme_stack(stacks):
    """A deployment only for this module: the examples end by deleting the
    user's whole resource storage."""
    return stacks.get("readme", "--save-interim-results", "True",
                      "--misc", "reuse_interim_results=True")


@pytest.fixture(scope="module")
def shell_dir(tmp_path_factory) -> Path:
    """Where the examples run: like the repository's directory (they read
    config/examples/), but files they write (ndvi.tif) stay out of it."""
    path = tmp_path_factory.mktemp("readme-shell")
    (path / "config").symlink_to(REPO / "config")
    return path


def _run_in_one_shell(text, stack, shell_dir):
    examples = rx.examples(text)
    outputs, _ = rx.run(
        examples, {"URL": stack.url, "AUTH": "actinia-gdi:actinia-gdi"},
        cwd=shell_dir)
    return {ex.name: (ex, rx.json_documents(outputs[ex.name]))
            for ex in examples}


@pytest.fixture(scope="module")
def walkthrough_run(readme_stack, shell_dir):
    """The README's walkthrough, in a shell of its own."""
    return _run_in_one_shell(rx.readme_text(), readme_stack, shell_dir)


@pytest.fixture(scope="module")
def docs_run(walkthrough_run, readme_stack, shell_dir):
    """Every example of docs/, run in nav order in one shell (after the
    README's walkthrough, whose job has finished by then)."""
    return _run_in_one_shell(rx.docs_text(), readme_stack, shell_dir)


def test_every_example_answers_as_the_docs_show(docs_run):
    compared = 0
    for name, (example, printed) in docs_run.items():
        if example.answer is None:
            continue
        assert len(printed) == len(example.answer), (name, printed)
        for expected, actual in zip(example.answer, printed, strict=False):
            assert rx.mismatches(expected, actual) == [], (name, actual)
            compared += 1
    assert compared >= 10


def test_the_readme_walkthrough_answers_as_shown(walkthrough_run):
    for name, (example, printed) in walkthrough_run.items():
        assert example.answer is not None, name
        assert len(printed) == len(example.answer), (name, printed)
        for expected, actual in zip(example.answer, printed, strict=True):
            assert rx.mismatches(expected, actual) == [], (name, actual)
    _, (_, finished) = walkthrough_run["readme-resume"]
    assert finished == {"status": "finished", "iteration": 2,
                        "ran": ["r_univar"]}


def test_the_job_failed_then_finished(docs_run):
    _, (iterations,) = docs_run["iterations"]
    assert {n: it["status"] for n, it in iterations.items()} == {
        "1": "error", "2": "finished"}


def test_the_resume_reused_the_steps_before_the_fixed_one(docs_run):
    _, (accepted, finished) = docs_run["resume"]
    assert accepted == {"status": "accepted", "iteration": 2}
    actions = [s.split(": ")[1] for s in finished["steps"]]
    assert actions == ["reused"] * 6 + ["new"]
    assert finished["stats"]["cells"] == "8100000"


def test_the_template_job_resumed_with_the_complete_chain(docs_run,
                                                          shell_dir):
    _, (failed,) = docs_run["template-fail"]
    assert failed["status"] == "error"
    _, (_, finished) = docs_run["template-resume"]
    assert finished["status"] == "finished"
    assert finished["steps"][-1] == "r_info1: new"
    assert finished["resources"][0].endswith("/ndvi.tif")
    tiff = (shell_dir / "ndvi.tif").read_bytes()
    assert tiff[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def test_no_interim_results_of_the_resumed_job_are_left(docs_run,
                                                       readme_stack):
    """They were there after the failure; the job finished (and the
    storage examples DELETE everything)."""
    _, (entry,) = docs_run["interim"]
    assert entry["steps"] == 6 and entry["bytes"] > 0
    interim = readme_stack.resource_dir / "actinia-gdi" / "interim"
    assert not (interim / entry["resource_id"]).exists()


def test_delete_removed_the_interim_results_of_the_failed_job(
        docs_run, readme_stack):
    _, (storage,) = docs_run["storage"]
    (kept,) = storage["process_results"]["interim_results"]
    _, (older, _, removed_all) = docs_run["storage-delete"]
    # the interim results and the kept mapset (issue 23) of the job
    assert older["process_results"]["kept"] == 2
    assert [(u["kind"], u["resource_id"]) for u in removed_all["removed"]
            ] == [("interim_results", kept["resource_id"]),
                  ("kept_mapset", kept["resource_id"])]
    interim = readme_stack.resource_dir / "actinia-gdi" / "interim"
    assert not (interim / kept["resource_id"]).exists()


# ------------------------------------------------------------------ demo
def test_demo_shows_failure_plan_resume_and_step_table(readme_stack):
    """scripts/demo.py (run by scripts/start.sh) against a deployment."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "demo.py"), readme_stack.url,
         "--resource-dir", str(readme_stack.resource_dir)],
        capture_output=True, text=True, timeout=300)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "status: error" in out
    assert ("failed step: r_univar (r.univar): "
            "ERROR: Raster map <green_slope> not found") in out
    assert "r_univar: map=green_slope -> map=green_slopes" in out
    assert "   run:     r_univar (new)" in out
    assert "status: finished" in out
    interim = readme_stack.resource_dir / "actinia-gdi" / "interim"
    assert f"in {interim}/resource_id-" in out
    table = out[out.index("== 5."):out.index("== 6.")].splitlines()
    rows = [line.split()[:2] for line in table
            if line.startswith("   ") and "run time" not in line]
    assert rows == [
        ["g_region", "reused"], ["r_neighbors_dem", "reused"],
        ["r_slope_aspect", "reused"], ["r_mapcalc_ndvi", "reused"],
        ["r_neighbors_ndvi", "reused"], ["r_mapcalc_green_slopes", "reused"],
        ["r_univar", "run"]]
    # the time saved adds up: the table's run times are the whole chain
    times = [float(m.group(1)) for m in
             (re.search(r" ([\d.]+) s\b", line) for line in table
              if line.startswith("   ")) if m]
    assert len(times) == len(rows)
    saved = re.search(r"again: ([\d.]+) s .* the resume: ([\d.]+) s \+ "
                      r"([\d.]+) s restoring .* -> ([-\d.]+) s saved", out)
    assert saved, out
    whole, ran, restore, gained = map(float, saved.groups())
    assert whole == pytest.approx(sum(times), abs=0.05)
    assert ran == pytest.approx(times[-1], abs=0.01)
    assert gained == pytest.approx(whole - ran - restore, abs=0.02)
    assert "interim results of this job: removed (the job finished)" in out
