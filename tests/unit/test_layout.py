# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Sealed JSON (store/layout.py): any changed byte breaks the seal."""

import io
import json

import pytest
import xxhash

from actinia_resume_plugin.store.layout import (
    SealBroken,
    SealingWriter,
    seal_text,
    unseal,
    unseal_head,
)


@pytest.mark.parametrize("doc", [{}, {"a": 1}, {"a": [1, {"b": "ü"}]}])
def test_round_trip_and_streamed_writer_agree(doc):
    text = seal_text(doc)
    assert unseal(text.encode()) == doc
    handle = io.StringIO()
    writer = SealingWriter(handle)
    body = json.dumps(doc, separators=(",", ":"))
    for i in range(0, len(body), 3):
        writer.write(body[i:i + 3])
    writer.close_seal()
    assert handle.getvalue() == text
    assert json.loads(text)["xxh3_128"]


def test_every_changed_byte_breaks_the_seal():
    raw = seal_text({"chain": {"list": [1, 2, 3]}, "status": "error"}).encode()
    for i in range(len(raw)):
        changed = raw[:i] + bytes([raw[i] ^ 0x01]) + raw[i + 1:]
        with pytest.raises(ValueError):
            unseal(changed)


def test_unsealed_json_is_refused():
    with pytest.raises(SealBroken, match="no checksum"):
        unseal(b'{"status": "error"}')


@pytest.mark.parametrize("doc", [
    {}, {"a": 1}, {"a": [1, {"b": "ü"}], "parts": {"x": [1]}, "z": 2},
    {"name\udcff": "not UTF-8", "parts": {}}])
def test_the_head_is_what_is_in_front_of_the_stop_member(doc):
    raw = seal_text(doc).encode("utf-8", "surrogateescape")
    assert unseal(raw) == doc  # orjson refuses the lone surrogate: json
    keys = list(doc)
    front = keys[:keys.index("parts")] if "parts" in doc else keys
    head, found = unseal_head(raw, "parts")
    assert head == {k: doc[k] for k in front}
    assert found == ("parts" in doc)
    spaced = json.dumps(doc, indent=1)[:-1].rstrip()
    digest = xxhash.xxh3_128(spaced.encode("utf-8", "surrogateescape"))
    sealed = f'{spaced}{"," if doc else ""}"xxh3_128":"{digest.hexdigest()}"}}'
    assert unseal_head(sealed.encode("utf-8", "surrogateescape"),
                       "parts") == (head, found)


def test_the_head_checks_the_seal_over_every_byte():
    raw = seal_text({"id": "a", "parts": {"x": [1, 2, 3]}}).encode()
    at = raw.index(b"[1")
    with pytest.raises(SealBroken):
        unseal_head(raw[:at] + b"[7" + raw[at + 2:], "parts")
