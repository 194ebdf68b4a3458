# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""The examples of the README and of docs/ are all runnable and comparable
(no stack needed); tests/integration/test_doc_examples.py runs them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.integration.doc_examples import (
    docs_text,
    examples,
    json_documents,
    mismatches,
    nav_pages,
    readme_text,
    unmarked_curl_blocks,
)

REPO = Path(__file__).resolve().parent.parent.parent
README = docs_text()  # the pages whose examples run in one shell


def test_every_curl_block_of_the_readme_and_docs_is_a_marked_example():
    assert unmarked_curl_blocks(readme_text()) == []
    for page in nav_pages():
        assert unmarked_curl_blocks(page.read_text()) == [], page


def test_every_page_of_docs_is_in_the_nav():
    listed = {page.resolve() for page in nav_pages()}
    on_disk = {page.resolve() for page in (REPO / "docs").rglob("*.md")}
    assert on_disk == listed


def test_the_readme_walkthrough_is_a_runnable_example():
    names = [ex.name for ex in examples(readme_text())]
    assert names == ["readme-setup", "readme-plan", "readme-resume"]
    setup = examples(readme_text())[0].code
    assert "URL=${URL:-http://127.0.0.1:8088/api/v3}" in setup
    docs_names = {ex.name for ex in examples(docs_text())}
    assert not docs_names & set(names)


def test_the_readme_has_the_examples_the_integration_test_checks():
    names = [ex.name for ex in examples(README)]
    assert names[0] == "setup"
    for name in ("fail", "plan", "resume", "iterations", "template-fail",
                 "template-resume", "storage", "storage-delete", "reuse"):
        assert name in names
    assert len(names) == len(set(names)), "example names must be unique"


def test_examples_set_url_and_auth_overridable_at_the_top():
    setup = examples(README)[0].code
    assert "URL=${URL:-http://127.0.0.1:8088/api/v3}" in setup
    assert "AUTH=${AUTH:-actinia-gdi:actinia-gdi}" in setup


def test_chains_named_in_the_readme_exist_without_placeholders():
    names = set(re.findall(r"@(config/examples/[\w.]+\.json)",
                           README + readme_text()))
    assert names, "the README names no chain files"
    for name in sorted(names):
        text = (REPO / name).read_text()
        assert "{{" not in text, f"{name} has a placeholder"
        chain = json.loads(text)
        assert chain["version"] and chain["list"], name


def test_the_demo_chains_differ_only_in_the_fixed_map_name():
    failing = json.loads((REPO / "config/examples/pc_error.json").read_text())
    fixed = json.loads((REPO / "config/examples/pc_noerror.json").read_text())
    assert failing["list"][:-1] == fixed["list"][:-1]
    assert failing["list"][-1]["inputs"] != fixed["list"][-1]["inputs"]


def test_json_documents_reads_several_documents():
    assert json_documents('{"a": 1}\n["x","y"]\n"s"\n') == [
        {"a": 1}, ["x", "y"], "s"]


@pytest.mark.parametrize("expected, actual", [
    ({"a": 1}, {"a": 2.5, "b": "extra keys are abridged"}),
    ("resource_id-…", "resource_id-1234-abcd"),
    ("6000532", "5999999"),
    ("0 unit(s) removed, 0 bytes freed", "2 unit(s) removed, 912 bytes freed"),
    ("http://127.0.0.1:8088/api/v3/x", "http://127.0.0.1:41234/api/v3/x"),
    (["a", "…"], ["a", "b", "c"]),
    (["a", "…"], ["a"]),
    (None, None),
])
def test_answers_match_with_examples_for_what_varies(expected, actual):
    assert mismatches(expected, actual) == []


@pytest.mark.parametrize("expected, actual, where", [
    ({"status": "error"}, {"status": "finished"}, "$.status"),
    ({"a": {"b": 1}}, {"a": {}}, "$.a.b: missing"),
    (["reused", "new"], ["reused", "reused", "new"], "2 item(s)"),
    (["a", "…"], [], "1 item(s) or more"),
    ("r_univar: new", "r_univar: rerun", "r_univar"),
    ("resource_id-…", 5, "$"),
    (3, "3", "a number"),
    (None, 0, "$"),
])
def test_answers_that_differ_are_reported(expected, actual, where):
    found = mismatches(expected, actual)
    assert found and where in found[0]
