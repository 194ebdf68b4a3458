# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue 11: a bounded property-based fuzz of the plugin's endpoints
(hypothesis, real stack): PUT on the status URL with random bodies and
query strings, GET and DELETE ``resource_storage`` with random queries.
No input may give a 5xx. Runs on a deployment of its own (a random DELETE
may clean the fuzzing user's storage) and prints how many inputs were tried.

Deterministic (``derandomize``): the same inputs every run, so a failure
here is reproducible and CI does not flake on a new random draw.
"""

from __future__ import annotations

import json
import urllib.parse
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .deployments import USER

EXAMPLES = 200
SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
    suppress_health_check=list(HealthCheck))

# text including lone surrogates (JSON allows them, UTF-8 does not)
TEXT = st.text(st.characters(exclude_categories=[]), max_size=12)
SCALARS = (st.none() | st.booleans() | st.integers()
           | st.floats(allow_nan=True, allow_infinity=True) | TEXT)
JSON = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(TEXT, inner, max_size=4), max_leaves=20)
STEP = st.fixed_dictionaries(
    {"id": TEXT | st.integers() | st.sampled_from(["a", "b", "stats"])},
    optional={
        "module": st.sampled_from(["r.mapcalc", "r.univar", "g.list",
                                   "no.such", ""]) | TEXT,
        "exe": TEXT, "evaluate": TEXT, "inputs": JSON, "flags": TEXT,
        "stdout": JSON, "outputs": JSON})
CHAIN = st.fixed_dictionaries(
    {"list": st.lists(STEP, max_size=4) | JSON},
    optional={"version": st.sampled_from(["1", 1, None]) | TEXT})


def _deep(n: int) -> bytes:
    return b"[" * n + b"]" * n


BODIES = st.one_of(
    st.just(b""),
    JSON.map(lambda v: json.dumps(v).encode()),
    CHAIN.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
    st.integers(1, 20000).map(_deep),
    TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")),
)
PUT_KEYS = st.sampled_from(["dry_run", "from_step", "dryrun", "DRY_RUN",
                            "dry-run", "user_id", ""]) | TEXT
VALUES = st.sampled_from(["true", "false", "1", "0", "ture", "", "a", "2",
                          "-1", "99999999999999999999"]) | TEXT
STORAGE_KEYS = st.sampled_from(["user_id", "olderthan", "olderthen",
                                "dry_run", ""]) | TEXT
STORAGE_VALUES = VALUES | st.sampled_from(
    ["36500", "36501", "1e3", "nan", "resume-user", "resume-user2",
     "actinia-gdi", "..", "../x", "a/b"]) | st.integers(-5, 40000).map(str)

# most inputs pass the query check, so that bodies reach the planner and
# values reach the storage scan (a random key alone is refused at once)
PUT_QUERIES = st.one_of(
    st.just([("dry_run", "true")]), st.just([]),
    st.lists(st.tuples(st.sampled_from(["dry_run", "from_step"]), VALUES),
             max_size=2),
    st.lists(st.tuples(PUT_KEYS, VALUES), max_size=3))
STORAGE_QUERIES = st.one_of(
    st.just([]),
    st.lists(st.tuples(st.sampled_from(["user_id", "olderthan"]),
                       STORAGE_VALUES), max_size=2),
    st.lists(st.tuples(STORAGE_KEYS, STORAGE_VALUES), max_size=3))


def _query(pairs) -> str:
    """Percent-encode, lone surrogates included (as raw bytes)."""
    return urllib.parse.urlencode(
        [(k.encode("utf-8", "surrogatepass"), v.encode("utf-8",
                                                       "surrogatepass"))
         for k, v in pairs])


class Tally:
    """Inputs tried and 5xx answers per endpoint (printed for the note)."""

    def __init__(self):
        self.codes: dict[str, Counter] = {}
        self.server_errors: dict[str, list] = {}

    def record(self, endpoint: str, resp, what) -> None:
        self.codes.setdefault(endpoint, Counter())[resp.status_code] += 1
        if resp.status_code >= 500:
            self.server_errors.setdefault(endpoint, []).append(
                (what, resp.status_code, resp.text[:300]))

    def check(self, endpoint: str) -> None:
        errors = self.server_errors.get(endpoint, [])
        codes = self.codes.get(endpoint, Counter())
        print(f"\nfuzz {endpoint}: {codes.total()} inputs tried, "
              f"{len(errors)} answered 5xx; answers {dict(sorted(codes.items()))}")
        assert not errors, errors[:5]


@pytest.fixture(scope="module")
def fuzz_stack(stacks):
    return stacks.get("fuzz", "--save-interim-results", "True")


@pytest.fixture(scope="module")
def tally():
    return Tally()


@pytest.fixture(scope="module")
def failed_status_url(fuzz_stack):
    """A failed job with interim results: PUTs reach the planner."""
    client = fuzz_stack.client(USER)
    doc = client.run_chain("processing_async", {"version": "1", "list": [
        {"id": "a", "module": "r.mapcalc",
         "inputs": [{"param": "expression", "value": "a=5"}]},
        {"id": "stats", "module": "r.univar",
         "inputs": [{"param": "map", "value": "no_such_map"}]}]})
    assert doc["status"] == "error", doc["message"]
    return doc["urls"]["status"]


def test_fuzz_put_on_the_status_url(fuzz_stack, failed_status_url, tally):
    client = fuzz_stack.client(USER)
    base = failed_status_url.rsplit("/", 1)[0]

    @SETTINGS
    @given(body=BODIES, query=PUT_QUERIES,
           rid=st.none() | TEXT.filter(bool), json_type=st.booleans())
    def put(body, query, rid, json_type):
        url = failed_status_url if rid is None else \
            f"{base}/{urllib.parse.quote(rid.encode('utf-8', 'surrogatepass'))}"
        headers = {"Content-Type": "application/json"} if json_type else {}
        resp = client.request("PUT", f"{url}?{_query(query)}", data=body,
                              headers=headers)
        tally.record("PUT status URL", resp, (body[:200], query, rid))

    put()
    tally.check("PUT status URL")


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_fuzz_resource_storage(fuzz_stack, failed_status_url, tally, method):
    client = fuzz_stack.client(USER)

    @SETTINGS
    @given(query=STORAGE_QUERIES)
    def call(query):
        resp = client.request(method, f"resource_storage?{_query(query)}")
        tally.record(f"{method} resource_storage", resp, query)

    call()
    tally.check(f"{method} resource_storage")
