# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Answer 503 (with ``Retry-After``) instead of 500 while valkey is down.

Every request of our endpoints reads valkey: actinia's authentication (the
user database), the status documents, the plugin's locks and heartbeats,
rq's queues. While valkey restarts, those reads raise a connection error
that flask-restful would turn into ``500 Internal Server Error``, which says
"a bug" to a client and to its retry logic. The view wrapper here turns it
into ``503 Service Unavailable`` with a message and ``Retry-After``: "try
again in a few seconds". It is the outermost layer of each of our views (see
``endpoints.replace_view``), so it also covers actinia's own decorators
(authentication runs before our resource method).
"""

from __future__ import annotations

import functools
import logging

from flask import jsonify, make_response

#: Seconds a client should wait before it tries again.
RETRY_AFTER_SECONDS = 5

log = logging.getLogger("actinia_resume_plugin.unavailable")


def kvdb_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "valkey cannot be reached" (the valkey
    client actinia uses and the redis client rq uses)."""
    found = []
    for module in ("valkey.exceptions", "redis.exceptions"):
        try:
            exceptions = __import__(module, fromlist=["ConnectionError"])
        except ImportError:
            continue
        found += [exceptions.ConnectionError, exceptions.TimeoutError,
                  exceptions.BusyLoadingError]
    return tuple(found)


def unavailable_response(exc: BaseException):
    response = make_response(jsonify({
        "status": "error",
        "message": "The key-value database (valkey) of this actinia cannot "
        f"be reached ({type(exc).__name__}); nothing was changed. Try "
        f"again in {RETRY_AFTER_SECONDS} s"}), 503)
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def answers_503_while_kvdb_down(view):
    """Wrap a flask view function: a valkey connection error -> 503."""
    errors = kvdb_errors()

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        try:
            return view(*args, **kwargs)
        except errors as exc:
            log.warning("actinia_resume_plugin: valkey unreachable: %s", exc)
            return unavailable_response(exc)

    return wrapper
