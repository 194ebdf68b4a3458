# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""The API description is a contract: schemathesis against
``/api/v3/swagger.json``, bounded, over the operations the plugin adds or
replaces (PUT, GET and DELETE on the status URL, GET of an iteration,
GET/DELETE ``/resource_storage``, the processing POSTs we serve): no 5xx,
no response that violates its documented schema, no undocumented status
code, no undocumented content type."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from .deployments import SUPERADMIN

#: the operations of the plugin, by path (all methods of these paths)
OPERATIONS = (
    r"^/(resources/\{user_id\}/\{resource_id\}(/\{iteration\})?"
    r"|resource_storage"
    r"|(locations|projects)/\{project_name\}/(mapsets/\{mapset_name\}/)?"
    r"processing_async(_export)?)$")
CHECKS = ("not_a_server_error,status_code_conformance,"
          "response_schema_conformance,content_type_conformance")


@pytest.fixture(scope="module")
def schema_stack(stacks):
    return stacks.get("schemathesis", "--save-interim-results", "True",
                      "--misc", "reuse_interim_results=True")


def test_swagger_contract_holds_for_our_operations(schema_stack, tmp_path):
    junit = tmp_path / "schemathesis.xml"
    cli = Path(sys.executable).parent / "schemathesis"
    proc = subprocess.run(
        [str(cli), "run", f"{schema_stack.url}/swagger.json",
         "--url", schema_stack.url, "--auth", ":".join(SUPERADMIN),
         "--include-path-regex", OPERATIONS, "--checks", CHECKS,
         "--phases", "examples,fuzzing", "--max-examples", "8",
         "--seed", "19", "--workers", "2", "--request-timeout", "60",
         "--suppress-health-check", "all",
         "--report", "junit", "--report-junit-path", str(junit)],
        capture_output=True, text=True, timeout=900, cwd=tmp_path)
    output = proc.stdout[-12000:] + proc.stderr[-3000:]
    assert junit.exists(), output
    cases = list(ET.parse(junit).getroot().iter("testcase"))
    tested = {case.get("name") for case in cases}
    for needed in ("PUT /resources/{user_id}/{resource_id}",
                   "GET /resources/{user_id}/{resource_id}",
                   "GET /resource_storage", "DELETE /resource_storage",
                   "POST /locations/{project_name}/processing_async"):
        assert any(needed in name for name in tested), (needed, tested)
    failed = [case.get("name") for case in cases
              if case.find("failure") is not None
              or case.find("error") is not None]
    assert failed == [], output
    assert proc.returncode == 0, output
