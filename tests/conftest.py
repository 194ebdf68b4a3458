# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures that start the real stack: valkey + gunicorn-served actinia with
actinia_resume_plugin (scripts/stack.py, the same code as the demo), plus a
local HTTP server for input files (no internet here)."""

from __future__ import annotations

import functools
import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import stack  # noqa: E402
from actinia_client import ActiniaClient  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
SUPERADMIN = ("actinia-gdi", "actinia-gdi")
USER = ("resume-user", "resume-user-pw")


class Deployment:
    """One running deployment (data dir, URL, config) started for the tests."""

    def __init__(self, state: dict):
        self.state = state
        self.data = Path(state["data"])
        self.url = state["url"]
        self.config = Path(state["config"])

    @functools.cached_property
    def project_url_part(self) -> str:
        """`locations` for GRASS < 8.4, `projects` from 8.4 on (as actinia)."""
        doc = ActiniaClient(self.url, *SUPERADMIN).request("GET", "version")
        version = doc.json()["grass_version"]["version"]
        major_minor = tuple(int(x) for x in version.split(".")[:2])
        return "locations" if major_minor < (8, 4) else "projects"

    def client(self, user=SUPERADMIN) -> ActiniaClient:
        return ActiniaClient(self.url, *user, self.project_url_part)

    @property
    def resource_dir(self) -> Path:
        return self.data / "resources"

    def log(self) -> str:
        return (self.data / "logs" / "actinia.log").read_text(errors="replace")


class StackFactory:
    """Starts deployments on demand, one per distinct configuration."""

    def __init__(self, base: Path):
        self.base = base
        self.running: dict[str, Deployment] = {}

    def get(self, name: str, *args: str) -> Deployment:
        if name not in self.running:
            data = self.base / name
            state = stack.start(stack_options(data, *args))
            self.running[name] = Deployment(state)
        return self.running[name]

    def stop_all(self) -> None:
        for dep in self.running.values():
            stack.stop(dep.data)
        self.running.clear()


class MountedStacks:
    """Deployments with a file system of their own mounted below the data
    dir before start: a small tmpfs as grass_resource_dir (full disks) or
    an ext4 with 1 s timestamps as the temporary GRASS database (the racy
    rule). Needs root, as CI and the developers' machines run."""

    def __init__(self, base: Path):
        self.base = base
        self.mounts: list[Path] = []
        self.started: list[Path] = []

    def get(self, name: str, where: str, fs: str, *args: str) -> Deployment:
        data = self.base / name
        target = data / where
        target.mkdir(parents=True)
        if fs.startswith("tmpfs:"):
            cmd = ["mount", "-t", "tmpfs", "-o", f"size={fs[6:]}", "tmpfs",
                   str(target)]
        elif fs.startswith("ext4-1s:"):
            image = self.base / f"{name}.img"
            subprocess.run(["truncate", "-s", fs[8:], str(image)], check=True)
            subprocess.run(["mkfs.ext4", "-q", "-F", "-I", "128", str(image)],
                           check=True, capture_output=True)
            cmd = ["mount", "-o", "loop", str(image), str(target)]
        else:
            raise ValueError(fs)
        subprocess.run(cmd, check=True)
        self.mounts.append(target)
        self.started.append(data)
        return Deployment(stack.start(stack_options(data, *args)))

    def stop_all(self) -> None:
        for data in self.started:
            stack.stop(data)
        for target in self.mounts:
            subprocess.run(["umount", "-l", str(target)], check=False)


@pytest.fixture(scope="session")
def mounted_stacks(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.fail("tests with their own file systems mount them: run as root")
    stacks = MountedStacks(tmp_path_factory.mktemp("mounted"))
    yield stacks
    stacks.stop_all()


def stack_options(data: Path, *args: str):
    return stack.build_parser().parse_args(["start", "--data", str(data), *args])


@pytest.fixture(scope="session")
def stacks(tmp_path_factory):
    factory = StackFactory(tmp_path_factory.mktemp("stacks"))
    yield factory
    factory.stop_all()


@pytest.fixture(scope="session")
def stack_true(stacks) -> Deployment:
    """save_interim_results = True; jobs whose worker died are left to a
    PUT (the tests of what a PUT does with them), test_continuation.py has
    stacks that continue them by themselves."""
    return stacks.get("true", "--save-interim-results", "True",
                      "--misc", "continue_after_worker_loss=0")


@pytest.fixture(scope="session")
def stack_onerror(stacks) -> Deployment:
    """save_interim_results = onError"""
    return stacks.get("onerror", "--save-interim-results", "onError")


@pytest.fixture(scope="session")
def stack_false(stacks) -> Deployment:
    """save_interim_results = False"""
    return stacks.get("false", "--save-interim-results", "False")


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".json": "application/json",
        ".tif": "image/tiff",
    }

    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def file_server():
    """Serves tests/data on 127.0.0.1 (importer needs HEAD, mime, wget)."""
    handler = functools.partial(QuietHandler, directory=str(DATA))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def load_chain(name: str, **replacements) -> dict:
    """Load tests/data/chains/<name>.json, replacing {{key}} placeholders."""
    text = (DATA / "chains" / f"{name}.json").read_text()
    for key, value in replacements.items():
        text = text.replace("{{" + key + "}}", str(value))
    return json.loads(text)


def univar(client: ActiniaClient, map_name: str) -> dict:
    """``r.univar -g`` of a map, run as a new job (reads results back)."""
    chain = {"version": "1", "list": [{
        "id": "univar", "module": "r.univar", "flags": "g",
        "inputs": [{"param": "map", "value": map_name}],
        "stdout": {"id": "stats", "format": "kv", "delimiter": "="}}]}
    doc = client.run_chain("processing_async", chain)
    assert doc["status"] == "finished", doc["message"]
    return doc["process_results"]["stats"]
