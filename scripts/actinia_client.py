# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""A small HTTP client of actinia's API, as one user: the demo
(scripts/demo.py), the benchmark and the real-stack tests use it."""

from __future__ import annotations

from dataclasses import dataclass

import requests
from polling import poll

FINAL_STATES = ("finished", "error", "terminated", "timeout")


def project_url_part(grass_version: str) -> str:
    """`locations` for GRASS < 8.4, `projects` from 8.4 on (actinia serves
    only the form the installed GRASS supports)."""
    major_minor = tuple(int(x) for x in grass_version.split(".")[:2])
    return "locations" if major_minor < (8, 4) else "projects"


@dataclass
class ActiniaClient:
    """Talks to one deployment as one user, with actinia's basic auth."""

    base: str
    user: str
    password: str
    project_url_part: str = "locations"

    @property
    def auth(self):
        return (self.user, self.password)

    def as_user(self, user: str, password: str) -> ActiniaClient:
        return ActiniaClient(self.base, user, password, self.project_url_part)

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"

    def project_url(self, path: str, project: str = "nc_spm_08") -> str:
        return self.url(f"{self.project_url_part}/{project}/{path}")

    def request(self, method: str, url: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 60)
        if not url.startswith("http"):
            url = self.url(url)
        return requests.request(method, url, auth=self.auth, **kwargs)

    def grass_version(self) -> str:
        return self.request("GET", "version").json()["grass_version"][
            "version"]

    def post_chain(self, path: str, chain: dict) -> requests.Response:
        """POST a process chain to a project endpoint (e.g. processing_async)."""
        resp = self.request("POST", self.project_url(path), json=chain)
        assert resp.status_code == 200, resp.text
        return resp

    def wait(self, status_url: str, timeout: float = 180.0,
             iteration: int | None = None) -> dict:
        """Poll the status URL until the job (latest iteration) is final."""
        seen = {}

        def final():
            doc = seen["doc"] = self.request("GET", status_url).json()
            if iteration is not None and doc.get("iteration") not in (
                    iteration, None if iteration == 1 else iteration):
                return None
            return doc if doc.get("status") in FINAL_STATES else None
        try:
            return poll(final, f"the job to end in {timeout}s", timeout, 0.25)
        except AssertionError:
            raise AssertionError(
                f"job not final in {timeout}s: {seen.get('doc')}") from None

    def run_chain(self, path: str, chain: dict, **kw) -> dict:
        resp = self.post_chain(path, chain)
        return self.wait(resp.json()["urls"]["status"], **kw)

    def put(self, status_url: str, chain: dict | None = None,
            **kwargs) -> requests.Response:
        if chain is not None:
            kwargs["json"] = chain
        return self.request("PUT", status_url, **kwargs)

    def wait_status(self, status_url: str, status: str,
                    timeout: float = 60.0) -> dict:
        """Poll until the latest iteration reports ``status``."""
        def seen():
            doc = self.request("GET", status_url).json()
            return doc if doc.get("status") == status else None
        return poll(seen, f"status {status} of {status_url}", timeout)
