# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Small pieces the plugin's HTTP resources share."""

from __future__ import annotations

import functools

from flask import jsonify, make_response

#: actinia's resource ids start with it; URLs may leave it out.
from actinia_resume_plugin.store import RESOURCE_PREFIX as PREFIX


def full_resource_id(resource_id: str) -> str:
    """The resource id with actinia's ``resource_id-`` prefix."""
    return resource_id if resource_id.startswith(PREFIX) else PREFIX + resource_id


def error_response(http_code: int, message: str, extra=None):
    """actinia's error document: ``{"status": "error", "message": …}``,
    with our ``extra`` fields (e.g. ``detail``) after actinia's."""
    return make_response(
        jsonify({"status": "error", "message": message, **(extra or {})}),
        http_code,
    )


class ApiError(Exception):
    """A refused request: the one error style of the plugin's HTTP layer.

    Raised anywhere below a resource method, answered by
    :func:`answers_api_errors` with actinia's error document (``http_code``
    and ``message``), or with the response actinia's own checks made
    (``response``, e.g. from ``check_permissions``)."""

    def __init__(self, http_code: int = 400, message: str = "",
                 response=None, detail: str | None = None):
        super().__init__(message)
        self.http_code = http_code
        self.message = message
        self.response = response
        # our fuller explanation where actinia's exact message is kept
        self.detail = detail

    @classmethod
    def from_response(cls, response) -> ApiError:
        return cls(response=response)

    def to_response(self):
        if self.response is not None:
            return self.response
        extra = {"detail": self.detail} if self.detail else None
        return error_response(self.http_code, self.message, extra)


def answers_api_errors(method):
    """Resource methods raise :class:`ApiError`; this turns it into the
    answer."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except ApiError as exc:
            return exc.to_response()

    return wrapper


def require_permission(resource, user_id: str) -> None:
    """actinia's ``check_permissions``, raised as :class:`ApiError`."""
    denied = resource.check_permissions(user_id=user_id)
    if denied:
        raise ApiError.from_response(denied)


def iteration_numbers(resource_logger, user_id: str,
                      resource_id_pattern: str) -> dict[str, list[int]]:
    """``{resource_id: [iteration numbers, ascending]}`` of a user's jobs
    whose id matches the glob pattern, from one key scan of actinia's
    resource logger (keys ``user/rid`` for iteration 1, ``user/rid/n``).

    Numbers, not strings: actinia-core compares iterations as strings and
    takes 9 for newer than 10.
    """
    numbers: dict[str, set[int]] = {}
    keys = resource_logger.db.get_keys_from_pattern(
        f"{user_id}/{resource_id_pattern}")
    for key in keys:
        parts = key.split("/")
        if len(parts) not in (2, 3):
            continue
        try:
            number = int(parts[2]) if len(parts) == 3 else 1
        except ValueError:
            continue
        numbers.setdefault(parts[1], set()).add(number)
    return {rid: sorted(found) for rid, found in numbers.items()}


TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


def query_problem(args, allowed) -> str | None:
    """Why the query string ``args`` (werkzeug's MultiDict) is refused, or
    None: unknown parameters (a typo such as ``?dryrun=true`` or
    ``?olderthen=7`` must not be ignored: the request would do more than
    asked) and parameters given more than once."""
    unknown = sorted(set(args) - set(allowed))
    if unknown:
        return (f"Unknown query parameter(s): {', '.join(unknown)}; "
                f"allowed: {', '.join(sorted(allowed))}")
    repeated = sorted(key for key in args if len(args.getlist(key)) > 1)
    if repeated:
        return f"Query parameter(s) given more than once: {', '.join(repeated)}"
    return None


def parse_flag(name: str, value: str | None) -> bool:
    """A boolean query parameter: absent is False; true/false, 1/0, yes/no,
    on/off (any case); anything else is a ValueError naming the value."""
    if value is None:
        return False
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(
        f"Query parameter {name} must be true or false, got {value!r}")
