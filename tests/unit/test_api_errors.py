# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one error style of the HTTP layer: ApiError raised, answered once."""

from flask import Flask, make_response

from actinia_resume_plugin.api.common import (
    ApiError,
    answers_api_errors,
    require_permission,
)


class Resource:
    def __init__(self, denied=None):
        self.denied = denied

    def check_permissions(self, user_id):
        return self.denied

    @answers_api_errors
    def get(self, fail: str | None = None):
        if fail == "message":
            raise ApiError(409, "busy")
        if fail == "permission":
            require_permission(self, "someone")
        return "ok"


def test_api_error_becomes_actinia_error_document():
    with Flask(__name__).test_request_context():
        resp = Resource().get("message")
        assert resp.status_code == 409
        assert resp.get_json() == {"status": "error", "message": "busy"}


def test_actinia_permission_answer_is_passed_through():
    with Flask(__name__).test_request_context():
        denied = make_response("no", 401)
        assert Resource(denied).get("permission") is denied
        assert Resource(None).get("permission") == "ok"
        assert Resource().get() == "ok"


def test_detail_follows_actinias_exact_message():
    """actinia's clients compare its message word for word; our fuller
    explanation goes into ``detail``."""
    with Flask(__name__).test_request_context():
        resp = ApiError(404, "Resource is running no restart possible",
                        detail="its worker is alive").to_response()
        assert resp.status_code == 404
        assert resp.get_json() == {
            "status": "error",
            "message": "Resource is running no restart possible",
            "detail": "its worker is alive"}
