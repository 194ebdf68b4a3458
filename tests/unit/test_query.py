# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Query string checks shared by PUT (status URL) and resource_storage."""

from __future__ import annotations

import pytest
from werkzeug.datastructures import MultiDict

from actinia_resume_plugin.api.common import parse_flag, query_problem

ALLOWED = ("dry_run", "from_step")


@pytest.mark.parametrize("pairs, named", [
    ([("dryrun", "true")], "dryrun"), ([("dry-run", "1")], "dry-run"),
    ([("DRY_RUN", "true")], "DRY_RUN"),
    ([("dry_run", "true"), ("dry_run", "false")], "more than once"),
])
def test_unknown_or_repeated_parameters_are_named(pairs, named):
    problem = query_problem(MultiDict(pairs), ALLOWED)
    assert problem and named in problem


def test_known_parameters_pass():
    assert query_problem(MultiDict([("dry_run", "1"), ("from_step", "b")]),
                         ALLOWED) is None
    assert query_problem(MultiDict(), ALLOWED) is None


@pytest.mark.parametrize("value, expected", [
    (None, False), ("true", True), ("TRUE", True), ("1", True), ("on", True),
    ("yes", True), ("false", False), ("0", False), ("off", False),
    ("no", False),
])
def test_flags(value, expected):
    assert parse_flag("dry_run", value) is expected


@pytest.mark.parametrize("value", ["ture", "", "2", "truee", "\ud800"])
def test_flag_values_not_understood_are_refused(value):
    with pytest.raises(ValueError, match="dry_run"):
        parse_flag("dry_run", value)
