# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""A small HTTP client for the real actinia deployment the tests start."""

from __future__ import annotations

import time
from dataclasses import dataclass

import requests

FINAL_STATES = ("finished", "error", "terminated", "timeout")


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

    def post_chain(self, path: str, chain: dict) -> requests.Response:
        """POST a process chain to a project endpoint (e.g. processing_async)."""
        resp = self.request("POST", self.project_url(path), json=chain)
        assert resp.status_code == 200, resp.text
        return resp

    def wait(self, status_url: str, timeout: float = 180.0,
             iteration: int | None = None) -> dict:
        """Poll the status URL until the job (latest iteration) is final."""
        deadline = time.monotonic() + timeout
        while True:
            resp = self.request("GET", status_url)
            doc = resp.json()
            if iteration is not None and doc.get("iteration") not in (
                iteration, None if iteration == 1 else iteration
            ):
                doc = {"status": "waiting-for-iteration"}
            if doc.get("status") in FINAL_STATES:
                return doc
            if time.monotonic() > deadline:
                raise AssertionError(f"job not final in {timeout}s: {doc}")
            time.sleep(0.25)

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
        deadline = time.monotonic() + timeout
        while True:
            doc = self.request("GET", status_url).json()
            if doc.get("status") == status:
                return doc
            if time.monotonic() > deadline:
                raise AssertionError(f"status {status} not seen: {doc}")
            time.sleep(0.1)
