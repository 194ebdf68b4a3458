#!/usr/bin/env python3
# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run actinia-core's own job-resumption tests (``test_job_resumption.py``,
``test_resource_storage.py`` of the pinned sdist) against deployments,
in actinia's real-server mode, one configuration per deployment.

Used by tests/integration/test_actinia_suite.py (the plugin, in the test
command) and, from the command line, to measure actinia-core's built-in
job resumption the same way (a deployment without our plugin)::

    .venv/bin/python tests/actinia_suite/run.py --builtin
    .venv/bin/python tests/actinia_suite/run.py            # with the plugin
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "scripts"))

import external_data  # noqa: E402
import sdist  # noqa: E402

MODES = ("True", "onError", "False")
DATA_CACHE = REPO / ".data" / "actinia-suite-data"
ADDON = HERE / "r.colors.out_sld"
#: tests in actinia's two files (65 + 2)
TOTAL = 67


@dataclass
class Outcome:
    """The result of one configuration's run."""

    mode: str
    returncode: int
    seconds: float
    passed: list = field(default_factory=list)
    xfailed: list = field(default_factory=list)
    failed: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    output: str = ""

    @property
    def not_run(self) -> int:
        return TOTAL - len(self.passed) - len(self.xfailed) - \
            len(self.failed) - len(self.skipped)

    def summary(self) -> str:
        return (f"{self.mode}: {len(self.passed)} passed, "
                f"{len(self.xfailed)} xfailed, {len(self.failed)} failed, "
                f"{len(self.errors)} errors, {self.not_run} not run "
                f"({self.seconds:.0f} s)")


def install_addon(data_dir: Path) -> None:
    """The r.colors.out_sld stand-in, where actinia looks for addon scripts
    (``[GRASS] grass_addon_path``/scripts)."""
    scripts = Path(data_dir) / "addons" / "scripts"
    scripts.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ADDON, scripts / ADDON.name)


def start_run(mode: str, state: dict, data_url: str, workdir: Path,
              builtin: bool = False) -> tuple[subprocess.Popen, Path, Path]:
    """Start actinia's tests for one deployment (``state`` of stack.py)
    in a subprocess; returns (process, junit xml path, output path)."""
    tests = sdist.actinia_tests()
    install_addon(Path(state["data"]))
    workdir.mkdir(parents=True, exist_ok=True)
    ini = workdir / "pytest.ini"
    ini.write_text("[pytest]\n")  # not actinia's pyproject (coverage, -x)
    junit = workdir / f"junit-{mode}.xml"
    out = workdir / f"output-{mode}.txt"
    host = state["url"].rsplit("/api/", 1)[0]
    env = dict(os.environ)
    env.update(
        ACTINIA_SERVER_TEST="1", ACTINIA_SERVER=host,
        DEFAULT_CONFIG_PATH=state["config"],
        ACTINIA_SUITE_TESTS=str(tests), ACTINIA_SUITE_DATA_URL=data_url,
        ACTINIA_SUITE_MODE=mode,
        ACTINIA_SUITE_BUILTIN="1" if builtin else "",
        PYTHONPATH=str(HERE),
    )
    cmd = [sys.executable, "-m", "pytest", "-c", str(ini), "--rootdir",
           str(tests.parent), "-p", "no:cacheprovider", "-p", "adapter",
           "-q", "-rfEX", "--tb=short", f"--junitxml={junit}",
           str(tests / "test_job_resumption.py"),
           str(tests / "test_resource_storage.py")]
    with open(out, "wb") as handle:
        proc = subprocess.Popen(cmd, cwd=tests.parent, env=env,
                                stdout=handle, stderr=subprocess.STDOUT)
    return proc, junit, out


def outcome(mode: str, proc: subprocess.Popen, junit: Path, out: Path,
            started: float, timeout: float) -> Outcome:
    try:
        returncode = proc.wait(timeout=max(1.0, started + timeout
                                           - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        returncode = proc.wait()
    result = Outcome(mode, returncode, time.monotonic() - started,
                     output=out.read_text(errors="replace"))
    if not junit.exists():
        return result
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::" \
               f"{case.get('name')}"
        tags = {child.tag: child for child in case}
        skipped = tags.get("skipped")
        if "failure" in tags:
            result.failed.append(name)
        elif "error" in tags:
            result.errors.append(name)
        elif skipped is not None and skipped.get("type") == "pytest.xfail":
            result.xfailed.append(name)
        elif skipped is not None:
            result.skipped.append(name)
        else:
            result.passed.append(name)
        # a teardown error is reported besides the test's own outcome
        if "error" in tags and name not in result.errors:
            result.errors.append(name)
    return result


def run_all(states: dict, workdir: Path, builtin: bool = False,
            timeout: float = 2400) -> dict[str, Outcome]:
    """Run the configurations of ``states`` ({mode: stack state}) in
    parallel, one deployment each."""
    server = external_data.DataServer(external_data.build(DATA_CACHE))
    try:
        started = time.monotonic()
        running = {mode: start_run(mode, state, server.url, workdir,
                                   builtin)
                   for mode, state in states.items()}
        return {mode: outcome(mode, *run, started, timeout)
                for mode, run in running.items()}
    finally:
        server.close()


def main(argv=None) -> int:
    import stack

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builtin", action="store_true",
                        help="actinia-core alone (its built-in resumption)")
    parser.add_argument("--modes", default=",".join(MODES))
    opts = parser.parse_args(argv)
    plugins = ("actinia_module_plugin" if opts.builtin
               else "actinia_module_plugin,actinia_resume_plugin")
    base = Path(tempfile.mkdtemp(prefix="actinia-suite-"))
    states = {}
    try:
        for mode in opts.modes.split(","):
            args = stack.build_parser().parse_args(
                ["start", "--data", str(base / mode),
                 "--save-interim-results", mode, "--plugins", plugins])
            states[mode] = stack.start(args)
        results = run_all(states, base / "runs", builtin=opts.builtin)
    finally:
        for state in states.values():
            stack.stop(Path(state["data"]))
    for result in results.values():
        print(result.summary())
        for name in result.failed + result.errors:
            print(f"  failed: {name}")
    print(f"outputs: {base / 'runs'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
