# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue #15: the README's curl examples run as written, and the demo of
scripts/start.sh (scripts/demo.py) shows the main job.

The examples run unchanged (tests/readme_examples.py extracts the marked
bash blocks) against a deployment of their own, with URL and AUTH set to
it; their output is compared with the answers the README shows.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import readme_examples as rx

REPO = Path(__file__).resolve().parent.parent.parent
README = REPO / "README.md"


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


@pytest.fixture(scope="module")
def readme_run(readme_stack, shell_dir):
    """Every example of the README, run in order in one shell."""
    examples = rx.examples(README.read_text())
    outputs, _ = rx.run(
        examples, {"URL": readme_stack.url, "AUTH": "actinia-gdi:actinia-gdi"},
        cwd=shell_dir)
    return {ex.name: (ex, rx.json_documents(outputs[ex.name]))
            for ex in examples}


def test_every_example_answers_as_the_readme_shows(readme_run):
    compared = 0
    for name, (example, printed) in readme_run.items():
        if example.answer is None:
            continue
        assert len(printed) == len(example.answer), (name, printed)
        for expected, actual in zip(example.answer, printed, strict=False):
            assert rx.mismatches(expected, actual) == [], (name, actual)
            compared += 1
    assert compared >= 10


def test_the_job_failed_then_finished(readme_run):
    _, (iterations,) = readme_run["iterations"]
    assert {n: it["status"] for n, it in iterations.items()} == {
        "1": "error", "2": "finished"}


def test_the_resume_reused_the_steps_before_the_fixed_one(readme_run):
    _, (accepted, finished) = readme_run["resume"]
    assert accepted == {"status": "accepted", "iteration": 2}
    actions = [s.split(": ")[1] for s in finished["steps"]]
    assert actions == ["reused"] * 6 + ["new"]
    assert finished["stats"]["cells"] == "8100000"


def test_the_template_job_resumed_with_the_complete_chain(readme_run,
                                                          shell_dir):
    _, (failed,) = readme_run["template-fail"]
    assert failed["status"] == "error"
    _, (_, finished) = readme_run["template-resume"]
    assert finished["status"] == "finished"
    assert finished["steps"][-1] == "r_info1: new"
    assert finished["resources"][0].endswith("/ndvi.tif")
    tiff = (shell_dir / "ndvi.tif").read_bytes()
    assert tiff[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def test_no_interim_results_of_the_resumed_job_are_left(readme_run,
                                                       readme_stack):
    """They were there after the failure; the job finished (and the
    storage examples DELETE everything)."""
    _, (entry,) = readme_run["interim"]
    assert entry["steps"] == 6 and entry["bytes"] > 0
    interim = readme_stack.resource_dir / "actinia-gdi" / "interim"
    assert not (interim / entry["resource_id"]).exists()


def test_delete_removed_the_interim_results_of_the_failed_job(
        readme_run, readme_stack):
    _, (storage,) = readme_run["storage"]
    (kept,) = storage["process_results"]["interim_results"]
    _, (older, _, removed_all) = readme_run["storage-delete"]
    assert older["process_results"]["kept"] == 1
    assert [u["resource_id"] for u in removed_all["removed"]] == [
        kept["resource_id"]]
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
