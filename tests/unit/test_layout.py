# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Sealed JSON (store/layout.py): any changed byte breaks the seal."""

import io
import json

import pytest

from actinia_resume_plugin.store.layout import (
    SealBroken,
    SealingWriter,
    seal_text,
    unseal,
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
