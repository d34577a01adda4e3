"""Every HTTP API fuzzed from its own OpenAPI document with schemathesis: one test city with every service and
the portal, each instance's /openapi.json loaded from the instance itself, and every operation called with
examples the document allows (positive) and examples it forbids (negative), with a token of each role the
operation names (`x-roles`), or none where it is public. Checks: no 5xx; the status, content type and body
as documented; bad input refused with a 4xx; a documented media type's parameters (the metrics'
`version=0.0.4`) sent; bad path parameters (the wrong type, odd characters) answered as JSON 4xx.

The CI set runs a few derandomized examples per operation (the same requests every run); the `full`
variant many more. A failure names the instance, operation, role, the request (as curl) and the response."""
from __future__ import annotations

import time

import pytest

from tests.service import fuzz_http as fuzz
from tests.service.test_access_matrix import records
from tests.support import TOWN_A

CI_EXAMPLES = 1  # per operation, role and mode (positive, negative); again with the seeded records' ids
FULL_EXAMPLES = 15


def _seeded_city(city) -> dict[str, dict]:
    """Every instance started, town A's records made at every service (the access matrix's); their ids by path
    parameter name, so that some examples reach past the 404 of an unknown record."""
    city.start(*[s.instance for s in city.layout])
    recs = records(city)
    promised_notice = city.case(recs["promised"])["notices"][0]["id"]
    return {
        "portal": {"request_id": recs["instant"], "code": "MZ-0001"},
        f"intake-{TOWN_A}": {"case_number": recs["promised"], "notice_id": promised_notice},
        f"approval-{fuzz.DEPARTMENT}": {"item_id": recs["item"], "office": TOWN_A},
        "agent": {"case_number": recs["escalated"], "number": recs["station"]},
        "notify": {"case_number": recs["instant"]},
        "evaluation": {"case_number": recs["instant"], "number": recs["complaint"], "rating_id": recs["rating"],
                       "rect_id": recs["rect"], "appeal_id": recs["appeal"]},
    }


def test_every_operation_of_every_instance_as_documented(city):
    started = time.monotonic()
    report = fuzz.run(city, CI_EXAMPLES, _seeded_city(city))
    print(report.summary(), f"in {time.monotonic() - started:.0f} s")
    assert not report.failures, report.explain()


@pytest.mark.full
def test_every_operation_fuzzed_deeply(any_city):
    """Many more examples, on SQLite and on PostgreSQL (which refuses some text SQLite stores, e.g. NUL)."""
    started = time.monotonic()
    report = fuzz.run(any_city, FULL_EXAMPLES, _seeded_city(any_city), negative_every_role=True)
    print(report.summary(), f"in {time.monotonic() - started:.0f} s")
    assert not report.failures, report.explain()
