# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""The deployments the real-stack tests start (valkey + gunicorn-served
actinia with actinia_resume_plugin, by scripts/stack.py, the same code as
the demo), the users they know, and a quiet file server; the fixtures that
hand them out are in conftest.py."""

from __future__ import annotations

import functools
import http.server
import subprocess
import threading
from pathlib import Path

import stack
from actinia_client import ActiniaClient, project_url_part

DATA = Path(__file__).resolve().parent.parent / "data"
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
        return project_url_part(
            ActiniaClient(self.url, *SUPERADMIN).grass_version())

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


def stack_options(data: Path, *args: str):
    return stack.build_parser().parse_args(["start", "--data", str(data), *args])


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".json": "application/json",
        ".tif": "image/tiff",
    }

    def log_message(self, *args):
        pass



def serve(directory: Path):
    """Serve ``directory`` on 127.0.0.1 (a free port) in a daemon thread:
    ``(server, base_url)``; ``server.shutdown()`` stops it."""
    handler = functools.partial(QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"
