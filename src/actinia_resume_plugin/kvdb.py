# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""A client of actinia's key-value database (valkey), from actinia's config."""

from __future__ import annotations


def kvdb_client(actinia_config):
    """A valkey client for the server actinia itself uses."""
    import valkey

    kwargs = {
        "host": actinia_config.KVDB_SERVER_URL,
        "port": int(actinia_config.KVDB_SERVER_PORT),
    }
    if actinia_config.KVDB_SERVER_PW:
        kwargs["password"] = actinia_config.KVDB_SERVER_PW
    return valkey.Valkey(**kwargs)
