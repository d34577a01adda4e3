"""Scoped reads: every GET route of every service, walked with foreign tokens, through the real broker.

A record the caller may not see must answer exactly like a record that does not exist (same status,
same body once the record's own id is set aside): case numbers are sequential, so existence must not
be probeable. The routes are enumerated from the service classes (`api_route`), so a new GET route is
walked without anyone adding it here.
"""
from __future__ import annotations

import re

import pytest

from tests.support import TOWN_A, TOWN_B, VALID_ID, VALID_PHONE, wait_for

# /health, /metrics and /openapi.json answer everyone without a token
PUBLIC = "public"
# reference data every authenticated role reads (the item catalogue is the city's, not a town's record)
REFERENCE_DATA = ("/catalog",)
AGENT = "agent-a"  # the village agent who submits the walked case (village 001 of town A)

_PARAM = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


def get_routes(service_cls) -> list[str]:
    """Every GET path of a service class (as `tests/unit/test_openapi.py` finds them), public ones apart."""
    routes = []
    for name in dir(service_cls):
        route = getattr(getattr(service_cls, name), "api_route", None)
        if route is None:
            continue
        method, path, _roles, _schema, public = route
        if method == "GET" and not public:
            routes.append(path)
    return sorted(routes)


def fill(path: str, values: dict) -> str:
    return _PARAM.sub(lambda m: str(values[m.group(2)]), path)


def foreign_tokens(city) -> dict[str, str]:
    """Callers of town B, other departments' offices and another agent: none may see town A's records."""
    return {
        "supervisor of town B": city.token("supervisor", f"town:{TOWN_B}", "sup-b"),
        "clerk of town B": city.token("clerk", f"town:{TOWN_B}", "clerk-b"),
        "town agent of town B": city.token("town_agent", f"town:{TOWN_B}", "ta-b"),
        "approver of minzheng in town B": city.token("approver", f"department:minzheng@{TOWN_B}", "ap-mz-b"),
        "approver of renshe in town B": city.token("approver", f"department:renshe@{TOWN_B}", "ap-rs-b"),
        "head of renshe at city level": city.token("department_head", "department:renshe", "head-rs"),
        "agent of a village of town B": city.token("agent", f"village:{TOWN_B}001", "agent-b"),
        "another agent of town A": city.token("agent", f"village:{TOWN_A}002", "agent-c"),
    }


def answer(city, instance: str, path: str, token: str):
    r = city.call("GET", instance, path, token)
    try:
        body = r.json()
    except ValueError:
        body = r.content
    return r.status_code, body


def without(body, *values) -> str:
    """The body as text with the record's own id set aside (an error message may name what was asked)."""
    text = body if isinstance(body, str) else repr(body)
    for v in sorted((str(v) for v in values), key=len, reverse=True):
        text = text.replace(v, "<id>")
    return text


def _make_records(city) -> dict:
    """Town A's records at every service: an agent's instant case (completed: a reply owed, notices,
    events) and a promised case waiting at renshe's town-A office (a work item)."""
    r = city.submit("MZ-0001", TOWN_A, via_agent=AGENT, in_person=False)
    assert r.status_code == 201, r.text
    instant = r.json()["case_number"]
    r = city.submit("RS-0001", TOWN_A)
    assert r.status_code == 201, r.text
    promised = r.json()["case_number"]
    ops = city.ops
    wait_for(lambda: city.call("GET", "agent", "/replies", ops).json()["replies"], what="a reply owed")
    wait_for(lambda: len(city.call("GET", "notify", f"/cases/{instant}/deliveries", ops).json()
                         .get("deliveries", [])) == 2, what="two notices delivered")
    wait_for(lambda: len(city.call("GET", "evaluation", f"/cases/{instant}/events", ops).json()
                         .get("events", [])) >= 8, what="the instant case's events recorded")
    items = {"renshe": wait_for(lambda: city.call("GET", "approval-renshe", "/work-items", ops).json()["items"],
                                what="a work item at renshe"),
             # the instant case was decided by rule: its item (id 1) is closed, so perhaps none is listed
             "minzheng": city.call("GET", "approval-minzheng", "/work-items", ops).json()["items"]}
    notice_id = city.case(instant)["notices"][0]["id"]
    # a village station's record of the same agent (help only: nothing reaches the town)
    r = city.call("POST", "agent", "/station/help", city.token("agent", f"village:{TOWN_A}001", AGENT),
                  {"content": "咨询", "solution": "已解答", "applicant": {"name": "张三", "phone": VALID_PHONE}},
                  headers={"Idempotency-Key": "walk-1"})
    assert r.status_code == 201, r.text
    station_record = r.json()["number"]
    # evaluation's 好差评 and 有诉即办 records: a bad rating (with its rectification) and a complaint
    r = city.call("POST", "evaluation", "/ratings", ops, {"case_number": instant, "level": 5, "channel": "online",
                                                          "stage": "completion"})
    assert r.status_code == 201, r.text
    rating_id = r.json()["id"]
    r = city.call("POST", "evaluation", "/complaints", ops, {
        "subject": "等候太久", "text": "排队两小时", "town": TOWN_A, "channel": "hotline", "case_number": instant,
        "complainant": {"name": "张三", "phone": VALID_PHONE}})
    assert r.status_code == 201, r.text
    return {"instant": instant, "promised": promised, "notice_id": notice_id, "items": items,
            "station_record": station_record, "rating_id": rating_id, "complaint": r.json()["number"]}


def test_every_get_route_answers_a_foreign_caller_as_for_a_missing_record(city):
    city.start()
    tokens = foreign_tokens(city)
    # the portal's reads are the services' own, asked as the signed-in person (its Open311: test_open311)
    instances = [s.instance for s in city.layout if s.service != "portal"]
    routes = {i: get_routes(city.cluster.by_instance(i).service_cls) for i in instances}
    assert sum(len(r) for r in routes.values()) >= 15, routes
    assert "/cases/<string:case_number>/events" in routes["evaluation"]

    # what foreign callers see before town A has any record: a list or statistic must not change
    listing = {(i, p) for i in instances for p in routes[i] if not _PARAM.search(p)}
    before = {(i, p, who): answer(city, i, p, t) for i, p in listing for who, t in tokens.items()}

    records = _make_records(city)
    some_day = records["instant"].split("-")[1]
    missing_case = f"{TOWN_A}-{some_day}-99999"
    leaks = []
    walked = 0
    for instance in instances:
        items = records["items"].get(instance.removeprefix("approval-"), [])
        complaints = instance == "evaluation"  # its <number> is a complaint's, the agent's a station record's
        real = {"case_number": records["instant"], "notice_id": records["notice_id"], "office": TOWN_A,
                "item_id": items[0]["id"] if items else 1, "code": "MZ-0001", "rating_id": records["rating_id"],
                "number": records["complaint"] if complaints else records["station_record"]}
        missing = {"case_number": missing_case, "notice_id": 999999, "office": "320583199", "item_id": 999999,
                   "code": "ZZ-9999", "rating_id": 999999,
                   "number": f"TS-{TOWN_A}-{some_day}-9999" if complaints else f"V{TOWN_A}001-{some_day}-9999"}
        for path in routes[instance]:
            if path.startswith(REFERENCE_DATA):
                continue
            for who, token in tokens.items():
                walked += 1
                if (instance, path) in listing:
                    got = answer(city, instance, path, token)
                    if got[0] in (401, 403, 404):
                        continue  # refused
                    if got != before[(instance, path, who)]:
                        leaks.append(f"{instance} GET {path} as {who}: {got[0]} {without(got[1])[:300]} "
                                     f"(before town A's records: {without(before[(instance, path, who)][1])[:200]})")
                    continue
                real_path, missing_path = fill(path, real), fill(path, missing)
                got, absent = answer(city, instance, real_path, token), answer(city, instance, missing_path, token)
                ids = [v for v in real.values()] + [v for v in missing.values()]
                if got[0] != absent[0] or without(got[1], *ids) != without(absent[1], *ids):
                    leaks.append(f"{instance} GET {real_path} as {who}: {got[0]} {without(got[1])[:200]}; "
                                 f"for a missing record {absent[0]} {without(absent[1])[:200]}")
    assert walked > 100
    assert not leaks, "foreign callers can tell town A's records exist:\n" + "\n".join(leaks)


def test_each_scope_still_sees_its_own(city):
    """The walk above must be able to fail: the owners of the records do see them."""
    city.start("intake-320583101", "approval-minzheng", "agent", "notify", "evaluation")
    r = city.submit("MZ-0001", TOWN_A, via_agent=AGENT, in_person=False)
    assert r.status_code == 201, r.text
    number = r.json()["case_number"]
    wait_for(lambda: city.call("GET", "agent", "/replies", city.ops).json()["replies"], what="a reply owed")
    wait_for(lambda: len(city.call("GET", "evaluation", f"/cases/{number}/events", city.ops).json()
                         .get("events", [])) >= 8, what="events recorded")
    supervisor_a = city.token("supervisor", f"town:{TOWN_A}", "sup-a")
    agent = city.token("agent", f"village:{TOWN_A}001", AGENT)
    assert [x["case_number"] for x in city.call("GET", "agent", "/replies", agent).json()["replies"]] == [number]
    assert [x["case_number"] for x in city.call("GET", "agent", "/replies", supervisor_a).json()["replies"]] \
        == [number]
    assert city.call("GET", "agent", "/stats", supervisor_a).json()["replies_owed"] == 1
    events = city.call("GET", "evaluation", f"/cases/{number}/events", supervisor_a)
    assert events.status_code == 200 and len(events.json()["events"]) >= 8
    assert all("sms_text" not in e["data"] and "contact" not in e["data"] for e in events.json()["events"])
    assert city.call("GET", "evaluation", "/stats", supervisor_a).json()["cases_by_event"]["case.accepted"] == 1
    assert city.call("GET", "notify", f"/cases/{number}/deliveries", supervisor_a).status_code == 200
    assert city.call("GET", "notify", "/stats", supervisor_a).json()["total"] >= 1
    # town B's supervisor sees town B's (empty) figures, not the city's
    supervisor_b = city.token("supervisor", f"town:{TOWN_B}", "sup-b")
    assert city.call("GET", "agent", "/stats", supervisor_b).json() == {
        "replies_owed": 0, "replies_made": 0, "agent_cases": 0, "station": {"by_status": {}, "by_mode": {}},
        "escalations": {"by_status": {}}}
    assert city.call("GET", "evaluation", "/stats", supervisor_b).json() == {"cases_by_event": {}}
    assert city.call("GET", "agent", "/replies", supervisor_b).json() == {"replies": []}


@pytest.mark.parametrize("path", ["/cases", "/cases/{number}"])
def test_a_phone_number_typed_into_a_reason_comes_back_masked(city, path):
    city.start("intake-320583101")
    body = {"item_code": "MZ-0001", "materials": ["idcard", "photo"],
            "applicant": {"name": f"张三{VALID_ID}", "id_number": VALID_ID, "phone": VALID_PHONE},
            "return_reason": "不予受理：请致电13912345678或138-1234-5678，单位91350100M000100Y43"}
    r = city.call("POST", "intake-320583101", "/cases", city.token("clerk", f"town:{TOWN_A}", "clerk-1"), body)
    assert r.status_code in (200, 201), r.text
    number = r.json()["case_number"]
    got = city.call("GET", "intake-320583101", path.format(number=number), city.token("clerk", f"town:{TOWN_A}"))
    assert got.status_code == 200, got.text
    text = got.text
    assert number in text
    for raw in ("13912345678", "138-1234-5678", VALID_ID, VALID_PHONE, "91350100M000100Y43"):
        assert raw not in text, f"{raw} came back unmasked from GET {path}"
    assert "139****5678" in text and "138-****-5678" in text and "9135**********0Y43" in text
