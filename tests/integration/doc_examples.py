# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""The documentation's shell examples: extract them, run them, compare the
answers.

The README and the pages of ``docs/`` (in the order of ``mkdocs.yml``'s
``nav``: a page's examples go on in the shell of the pages before it) mark
every runnable example with an HTML comment (invisible on
the rendered page) before a fenced bash block, and the answer a user should
expect with another comment before a fenced json block:

    <!-- example: NAME -->
    ```bash
    ...
    ```

    <!-- answer -->
    ```json
    ...
    ```

The examples run unchanged, one after the other in one bash process (as a
user pastes them into one shell), with ``URL`` and ``AUTH`` set in the
environment (the examples default them to the demo's values). An answer is
one or more JSON documents, compared with what the example printed by
:func:`mismatches`: it may leave keys out (abridged), and the values that
differ from run to run are written as examples:

* a number matches any number, a numeric string any numeric string;
* in other strings, ``…`` matches any text and each number any number;
* a list ending with ``"…"`` may have more items; otherwise lengths match.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]

EXAMPLE = re.compile(
    r"<!-- example: (?P<name>[\w-]+) -->\s*```bash\n(?P<code>.*?)```\n"
    r"(?:\s*<!-- answer -->\s*```json\n(?P<answer>.*?)```\n)?",
    re.S,
)
BASH_BLOCK = re.compile(r"(<!-- example: [\w-]+ -->\s*)?```bash\n(.*?)```\n",
                        re.S)
END = "@@readme-example-end@@"
ELLIPSIS = "…"
NUMBER = r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"


@dataclass
class Example:
    name: str
    code: str
    answer: list | None  # the expected JSON documents, None: not compared


def nav_pages(mkdocs_yml: Path = REPO / "mkdocs.yml") -> list[Path]:
    """The pages of ``docs/`` in the order of the mkdocs ``nav``."""
    def walk(items):
        for item in items:
            value = item if isinstance(item, str) else next(iter(item.values()))
            if isinstance(value, list):
                yield from walk(value)
            else:
                yield value
    config = yaml.safe_load(mkdocs_yml.read_text(encoding="utf-8"))
    docs_dir = mkdocs_yml.parent / config.get("docs_dir", "docs")
    return [docs_dir / page for page in walk(config["nav"])]


def docs_text() -> str:
    """All pages of ``docs/`` in nav order: one shell session's examples."""
    return "\n".join(page.read_text(encoding="utf-8") for page in nav_pages())


def readme_text() -> str:
    return (REPO / "README.md").read_text(encoding="utf-8")


def examples(text: str) -> list[Example]:
    """The marked examples in the order of ``text``."""
    found = []
    for match in EXAMPLE.finditer(text):
        answer = match.group("answer")
        found.append(Example(match.group("name"), match.group("code"),
                             None if answer is None
                             else json_documents(answer)))
    return found


def unmarked_curl_blocks(readme: str) -> list[str]:
    """Bash blocks that call curl but are not marked as examples (and so
    would not be run by the test)."""
    return [code for marker, code in BASH_BLOCK.findall(readme)
            if not marker and re.search(r"\bcurl\b", code)]


def json_documents(text: str) -> list:
    """All JSON documents in ``text`` (as printed by jq or curl)."""
    decoder, docs, pos = json.JSONDecoder(), [], 0
    text = text.strip()
    while pos < len(text):
        doc, end = decoder.raw_decode(text, pos)
        docs.append(doc)
        pos = end
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return docs


def run(examples_: list[Example], env: dict, cwd: Path,
        timeout: float = 600) -> tuple[dict[str, str], str]:
    """Run the examples in one bash process; stdout per example, stderr."""
    script = ["set -euo pipefail"]
    for example in examples_:
        script += [example.code, f"echo '{END}'"]
    proc = subprocess.run(
        ["bash", "-c", "\n".join(script)], cwd=cwd, capture_output=True,
        text=True, timeout=timeout, env={**os.environ, **env},
    )
    parts = proc.stdout.split(END + "\n")
    outputs = {ex.name: parts[i] if i < len(parts) else ""
               for i, ex in enumerate(examples_)}
    if proc.returncode != 0:
        ran = len(parts) - 1
        failed = examples_[ran].name if ran < len(examples_) else "?"
        raise AssertionError(
            f"documented example {failed!r} failed (exit {proc.returncode}):\n"
            f"stdout: {parts[-1][-2000:]}\nstderr: {proc.stderr[-3000:]}")
    return outputs, proc.stderr


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _string_pattern(expected: str) -> re.Pattern:
    parts = []
    for piece in re.split(f"({re.escape(ELLIPSIS)}|{NUMBER})", expected):
        if piece == ELLIPSIS:
            parts.append(".*")
        elif piece and re.fullmatch(NUMBER, piece):
            parts.append(NUMBER)
        else:
            parts.append(re.escape(piece))
    return re.compile("".join(parts), re.S)


def mismatches(expected, actual, path: str = "$") -> list[str]:
    """Where ``actual`` differs from the documented ``expected`` answer
    (rules in the module docstring); empty when it matches."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected an object, got {actual!r}"]
        found = []
        for key, value in expected.items():
            if key not in actual:
                found.append(f"{path}.{key}: missing")
            else:
                found += mismatches(value, actual[key], f"{path}.{key}")
        return found
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{path}: expected a list, got {actual!r}"]
        open_end = bool(expected) and expected[-1] == ELLIPSIS
        items = expected[:-1] if open_end else expected
        if len(actual) < len(items) or (
                not open_end and len(actual) != len(items)):
            return [f"{path}: expected {len(items)} item(s)"
                    f"{' or more' if open_end else ''}, got {len(actual)}"]
        found = []
        for i, item in enumerate(items):
            found += mismatches(item, actual[i], f"{path}[{i}]")
        return found
    if _is_number(expected):
        return [] if _is_number(actual) else [
            f"{path}: expected a number, got {actual!r}"]
    if isinstance(expected, str):
        if isinstance(actual, str) and _string_pattern(expected).fullmatch(
                actual):
            return []
        return [f"{path}: expected {expected!r}, got {actual!r}"]
    return [] if expected == actual else [
        f"{path}: expected {expected!r}, got {actual!r}"]
