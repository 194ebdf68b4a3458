"""Small pieces the plugin's HTTP resources share."""

from __future__ import annotations

from flask import jsonify, make_response


def error_response(http_code: int, message: str):
    """actinia's error document: ``{"status": "error", "message": …}``."""
    return make_response(
        jsonify({"status": "error", "message": message}), http_code
    )


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
