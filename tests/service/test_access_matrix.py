"""The access matrix (tests/service/access_matrix.py) run against one city: every endpoint × every role × own and
foreign scope, every mismatch reported at once; that the matrix has a row for every route of every service's
/openapi.json; and the credentials no instance may take: none, expired, signed with a foreign key (an unknown
kid, a forged one under our kid, HS256 keyed with the public key set), a disabled user's. And the applicant's
query code lookup is rate-limited per case, whatever address the guesses claim to come from."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from services.portal import directory
from shared import tokens
from tests.conftest import AMQP_URL
from tests.portal.support import hidden
from tests.service.access_matrix import (
    BODIES,
    CALLERS,
    DEFAULT_DEPARTMENT,
    DEPARTMENT,
    FILTERS,
    KINDS,
    MATRIX,
    ONE_SCOPE,
    OTHER_DEPARTMENT,
    QUERY,
    cells,
)
from tests.support import PUBLIC_KEYS, SIGNING_KEY, TOWN_A, TOWN_B, VALID_ID, VALID_PHONE, City, wait_for
from tests.unit.test_openapi import LAYOUT, operations, spec

AGENT = "agent-a"  # the village agent (of A001) who submits town A's records
DISABLED = "ops-1"  # a directory user the portal disables while the matrix runs
# the channel each role records ratings through (evaluation's rating rules)
RATING_CHANNEL = {"clerk": "window_device", "supervisor": "phone"}
SHANGHAI = ZoneInfo("Asia/Shanghai")  # the city's day and month
INSTANCE = {"intake": f"intake-{TOWN_A}", "approval": f"approval-{DEPARTMENT['approval']}"}


def instance_of(kind: str) -> str:
    return INSTANCE.get(kind, kind)


# --- callers -----------------------------------------------------------------------------------------------

def caller_claims(caller: str, side: str, kind: str) -> tuple[str, str, str] | None:
    """(role, scope, subject) of a column's caller in its own or a foreign scope; None: no token."""
    town = TOWN_A if side == "own" else TOWN_B
    dept = DEPARTMENT.get(kind, DEFAULT_DEPARTMENT)
    return {
        "anon": None,
        "clerk": ("clerk", f"town:{town}", f"clerk-{side}"),
        "approv": ("approver", f"department:{dept}@{town}", f"approver-{side}"),
        "o_dept": ("approver", f"department:{OTHER_DEPARTMENT[dept]}@{TOWN_A}", "approver-other"),
        "head": ("department_head", f"department:{dept}@{town}", f"head-{side}"),
        "c_head": ("department_head", f"department:{dept}", "head-city"),
        "agent": ("agent", f"village:{TOWN_A}001", AGENT) if side == "own" else
                 ("agent", f"village:{TOWN_A}002", "agent-c"),
        "t_agt": ("town_agent", f"town:{town}", f"town-agent-{side}"),
        "sup": ("supervisor", f"town:{town}", f"sup-{side}"),
        "c_sup": ("supervisor", "city", "sup-city"),
        "admin": ("city_admin", "city", "it-1"),
        "svc": ("service", "city", "ops"),
    }[caller]


# --- town A's records --------------------------------------------------------------------------------------

def records(city) -> dict:
    """Town A's records at every service: an agent's instant case (completed: a reply owed, notices, events, a
    bad rating with its rectification and an appeal, a complaint), a promised case waiting at renshe's town-A
    office (a work item), an escalated case waiting for the town agent, a village station's record."""
    ops = city.ops
    r = city.submit("MZ-0001", TOWN_A, via_agent=AGENT, in_person=False)
    assert r.status_code == 201, r.text
    instant, code = r.json()["case_number"], r.json()["query_code"]
    r = city.submit("RS-0001", TOWN_A)
    assert r.status_code == 201, r.text
    promised, promised_code = r.json()["case_number"], r.json()["query_code"]
    r = city.submit("MZ-0003", TOWN_A, materials=["idcard", "hukou", "apply", "income"])
    assert r.status_code == 201, r.text
    escalated = r.json()["case_number"]
    assert city.act(escalated, "initial-review").status_code == 200
    r = city.call("POST", "agent", "/station/help", city.token("agent", f"village:{TOWN_A}001", AGENT),
                  {"content": "咨询", "solution": "已解答", "applicant": {"name": "张三", "phone": VALID_PHONE}},
                  headers={"Idempotency-Key": "matrix-1"})
    assert r.status_code == 201, r.text
    station = r.json()["number"]
    wait_for(lambda: city.call("GET", "agent", "/replies", ops).json()["replies"], what="a reply owed")
    wait_for(lambda: len(city.call("GET", "notify", f"/cases/{instant}/deliveries", ops).json()
                         .get("deliveries", [])) == 2, what="two notices delivered")
    wait_for(lambda: len(city.call("GET", "evaluation", f"/cases/{instant}/events", ops).json()
                         .get("events", [])) >= 8, what="the instant case's events recorded")
    item = wait_for(lambda: city.call("GET", instance_of("approval"), "/work-items", ops).json()["items"],
                    what="a work item at renshe")[0]["id"]
    city.escalation(escalated, status="awaiting_relay")
    r = city.call("POST", "evaluation", "/ratings", ops, {"case_number": instant, "level": 5, "channel": "online",
                                                          "stage": "completion"})
    assert r.status_code == 201, r.text
    rating, rect = r.json()["id"], r.json()["rectification_id"]
    head = city.token("department_head", f"department:{DEFAULT_DEPARTMENT}@{TOWN_A}", "head-setup")
    r = city.call("POST", "evaluation", f"/ratings/{rating}/appeal", head, {"reason": "评价器误触"})
    assert r.status_code == 201, r.text
    appeal = r.json()["id"]
    r = city.call("POST", "evaluation", "/complaints", ops, {
        "subject": "等候太久", "text": "排队两小时", "town": TOWN_A, "channel": "hotline", "case_number": instant,
        "complainant": {"name": "张三", "phone": VALID_PHONE}})
    assert r.status_code == 201, r.text
    notice = city.case(instant)["notices"][0]["id"]
    return {"instant": instant, "query_code": code, "promised": promised, "promised_code": promised_code,
            "escalated": escalated, "station": station, "item": item, "rating": rating, "rect": rect,
            "appeal": appeal, "complaint": r.json()["number"], "notice": notice}


def path_values(kind: str, route: str, recs: dict | None) -> tuple[dict, dict]:
    """The values of a route's {params}: town A's records, and ones that do not exist."""
    day = (recs or {}).get("instant", f"{TOWN_A}-20261201-1").split("-")[1]
    missing_case = f"{TOWN_A}-{day}-99999"
    missing = {"case_number": missing_case, "request_id": missing_case, "notice_id": 999999, "code": "ZZ-9999",
               "item_id": 999999, "office": "320583199", "rating_id": 999999, "rect_id": 999999,
               "appeal_id": 999999,
               "number": f"TS-{TOWN_A}-{day}-9999" if kind == "evaluation" else f"V{TOWN_A}001-{day}-9999"}
    if recs is None:
        return {}, missing
    real = {"case_number": recs["escalated"] if "/escalations/" in route else recs["instant"],
            "request_id": recs["instant"], "notice_id": recs["notice"], "code": "MZ-0001", "item_id": recs["item"],
            "office": TOWN_A, "rating_id": recs["rating"], "rect_id": recs["rect"], "appeal_id": recs["appeal"],
            "number": recs["complaint"] if kind == "evaluation" else recs["station"]}
    return real, missing


def filled(template, values: dict):
    """A body or path with its "{name}" strings filled."""
    if isinstance(template, str):
        return re.sub(r"{(\w+)}", lambda m: str(values[m[1]]), template)
    if isinstance(template, dict):
        return {k: filled(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [filled(v, values) for v in template]
    return template


# --- asking and judging -----------------------------------------------------------------------------------

class Asker:
    """One requests.Session (the city's) for every request of the run; tokens made once per caller."""

    def __init__(self, city, recs: dict | None = None):
        self.city, self.recs = city, recs
        self._tokens: dict = {}

    def token(self, caller: str, side: str, kind: str) -> str | None:
        claims = caller_claims(caller, side, kind)
        if claims is None:
            return None
        if claims not in self._tokens:
            self._tokens[claims] = self.city.token(*claims)
        return self._tokens[claims]

    def ask(self, kind: str, route: str, caller: str, side: str, values: dict, query: str | None = None):
        """(status, body text) of the row's request as the caller."""
        method, path = route.split(" ", 1)
        claims = caller_claims(caller, side, kind)
        role = claims[0] if claims else None
        extra = {"rating_channel": RATING_CHANNEL.get(role, "online"),
                 "follow_channel": RATING_CHANNEL.get(role, "sms_link"),
                 "id_number": VALID_ID, "phone": VALID_PHONE, "town": TOWN_A,
                 "query_code": (self.recs or {}).get("query_code", "ZZZZ2345"),
                 "month": datetime.now(SHANGHAI).strftime("%Y-%m")}
        url = filled(path, values) + (f"?{filled(query, extra)}" if query else "")
        body = filled(BODIES.get((kind, route)), {**values, **extra})
        headers = {"Idempotency-Key": uuid.uuid4().hex} if method != "GET" else {}
        token = self.token(caller, side, kind)
        if kind == "portal" and method == "POST":  # GeoReport clients send forms
            headers["Authorization"] = f"Bearer {token}" if token else ""
            r = self.city.session.post(self.city.url("portal") + url, data=body, headers=headers, timeout=30)
        else:
            r = self.city.call(method, instance_of(kind), url, token, body, headers=headers)
        return r.status_code, r.text


def without(text: str, *values) -> str:
    """A body with the records' own ids set aside (an error message may name what was asked)."""
    for v in sorted({str(v) for v in values}, key=len, reverse=True):
        text = text.replace(v, "<id>")
    return text


def judge(expected: str, got: tuple[int, str], absent=None, before=None, ids=()) -> str | None:
    """What is wrong with `got` for the cell's `expected` answer; None when it is right."""
    status, text = got
    if status >= 500:
        return "a server error"
    if expected == "ok":
        return None if 200 <= status < 300 else "refused"
    if expected == "admitted":
        return None if status not in (401, 403, 404) else "refused"
    if expected == "hidden":
        if not 200 <= status < 300:
            return "refused"
        return None if text == before[1] else f"it changed with town A's records (before: {before[1][:150]})"
    if expected == "404":
        if status != 404:
            return "existence leaks"
        same = (absent[0], without(absent[1], *ids)) == (status, without(text, *ids))
        return None if same else f"unlike a missing record's answer ({absent[0]} {absent[1][:150]})"
    return None if status == int(expected) else "wrong answer"


def entries():
    """What the walk asks, (kind, route, query, row, filtered): the reads (with QUERY), the lists again with
    FILTERS, then the steps, which change the records the reads are about."""
    rows = [(kind, route, QUERY.get((kind, route)), row, False) for (kind, route), row in MATRIX.items()]
    filtered = [(kind, route, query, row or MATRIX[(kind, route)], True)
                for (kind, route), (query, row) in FILTERS.items()]
    reads = [r for r in rows if r[1].startswith("GET ")]
    return reads + filtered + [r for r in rows if not r[1].startswith("GET ")]


def walk(asker: Asker, expecting=None, before=None) -> tuple[dict, list[str], int]:
    """Every cell of the matrix (only those `expecting` an answer, when given): the answers and what is wrong."""
    answers, wrong, asked = {}, [], 0
    for kind, route, query, row, filtered in entries():
        real, missing = path_values(kind, route, asker.recs)
        ids = [*real.values(), *missing.values()]
        for caller, pair in cells(row).items():
            for side, expected in zip(("own", "foreign"), pair, strict=False):
                if expecting and expected != expecting:
                    continue
                asked += 1
                key = (kind, route, query, caller, side)
                got = answers[key] = asker.ask(kind, route, caller, side, real or missing, query)
                if expecting:
                    continue
                absent = asker.ask(kind, route, caller, side, missing, query) if expected == "404" else None
                if filtered and expected == "hidden" and got[0] in (403, 404):
                    continue  # the filter naming town A refused
                problem = judge(expected, got, absent, before.get(key), ids)
                if problem:
                    wrong.append(f"{kind} {route}{'?' + query if query else ''} as {caller} ({side} scope): "
                                 f"expected {expected}, got {got[0]}: {problem}; {got[1][:200]}")
    return answers, wrong, asked


# --- the test ----------------------------------------------------------------------------------------------

def traces_of_foreign_callers(city, recs: dict) -> list[str]:
    """A refused step must have done nothing: no subject of a foreign caller in town A's records afterwards."""
    foreign = {caller_claims(c, side, kind)[2] for c in CALLERS if c != "anon" for kind in KINDS
               for side in (("foreign",) if c not in ONE_SCOPE else ("own",))} - {
                   caller_claims(c, "own", "intake")[2] for c in ("c_sup", "admin", "svc")}
    reads = [(instance_of("intake"), f"/cases/{recs[n]}") for n in ("instant", "promised", "escalated")] + [
        (instance_of("approval"), f"/work-items/{recs['item']}"), ("agent", f"/escalations/{recs['escalated']}"),
        ("agent", f"/station/services/{recs['station']}"), ("evaluation", f"/ratings/{recs['rating']}"),
        ("evaluation", f"/complaints/{recs['complaint']}"), ("evaluation", "/appeals?status=all"),
        ("evaluation", "/rectifications?state=all"), ("evaluation", f"/cases/{recs['instant']}/events")]
    found, seen = [], ""
    for instance, path in reads:
        text = city.call("GET", instance, path, city.ops).text
        seen += text
        found += [f"{instance} {path} names {who}, whose steps were refused" for who in foreign
                  if re.search(rf"\b{re.escape(who)}\b", text)]
    # the check sees who acted: the own callers' admitted steps are there
    found += [f"no trace of {who}'s steps: the check is blind" for who in ("clerk-own", "approver-own", "sup-own")
              if who not in seen]
    return found


def test_every_documented_route_has_a_row():
    """A new endpoint without a row fails here (the documents are the ones /openapi.json serves)."""
    documented = {(LAYOUT[i].service, f"{method} {path}") for i in LAYOUT for method, path, _ in operations(spec(i))}
    assert {kind for kind, _ in documented} == set(KINDS)
    assert not documented - set(MATRIX), f"routes without a row in the matrix: {sorted(documented - set(MATRIX))}"
    assert not set(MATRIX) - documented, f"rows for routes no service has: {sorted(set(MATRIX) - documented)}"
    for row in MATRIX.values():
        cells(row)  # well formed


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_with_the_key_set(subject: str) -> str:
    """What someone holding only the public key set could try: HS256 keyed with the JWKS text, our kid."""
    now = int(time.time())
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": SIGNING_KEY.kid}).encode())
    claims = _b64(json.dumps({"sub": subject, "role": "service", "scope": "city", "iat": now, "exp": now + 600,
                              "iss": tokens.ISSUER, "aud": tokens.AUDIENCE}).encode())
    signature = hmac.new(PUBLIC_KEYS.encode(), f"{header}.{claims}".encode(), hashlib.sha256).digest()
    return f"{header}.{claims}.{_b64(signature)}"


def bad_tokens(subject: str) -> dict[str, str | None]:
    """Credentials no instance may take, by the reason it must give."""
    return {
        "missing bearer token": None,
        tokens.UNKNOWN_KEY: tokens.issue(tokens.SigningKey.generate(), subject, "service", "city"),
        "bad signature": tokens.issue(tokens.SigningKey(tokens.SigningKey.generate().private, SIGNING_KEY.kid),
                                      subject, "service", "city"),
        "malformed token": hs256_with_the_key_set(subject),
        "token expired": tokens.issue(SIGNING_KEY, subject, "service", "city", ttl_seconds=60,
                                      now=time.time() - 3600),
    }


def refusal(city, instance: str, token: str | None, recs: dict) -> tuple[int, str]:
    """An instance's answer to a read with `token`: (status, the reason it gives)."""
    if instance == "portal":  # Open311: api_key refusals are 403 in the specification's format
        r = city.call("GET", "portal", f"/open311/v2/requests/{recs['instant']}.json", token)
        return r.status_code, r.json()[0]["description"] if r.status_code != 200 else ""
    path = {"intake": "/cases", "approval": "/work-items"}.get(instance.split("-")[0], "/stats")
    r = city.call("GET", instance, path, token)
    return r.status_code, r.json().get("message", "") if r.status_code != 200 else ""


def refused(answer: tuple[int, str], instance: str, reason: str) -> bool:
    status, said = answer
    return (status, said) == ((403, f"api_key invalid: {reason}") if instance == "portal" else (401, reason)) or (
        instance == "portal" and reason == "missing bearer token" and answer == (403, "api_key required"))


def lookup_is_rate_limited(city, recs: dict) -> list[str]:
    """The portal's /track, per case and per address: the right code answers; after five wrong guesses at a
    case, each from another address, even the right code is refused (429) for that case; after five wrong
    guesses from one address, that address is refused (429) for any case."""
    portal, browser = city.url("portal"), city.session
    form = hidden(browser.get(portal + "/track", timeout=30).text, "form_token")

    def attempts(case: str, codes_and_addresses) -> list[int]:
        return [browser.post(portal + "/track", data={"form_token": form, "case_number": recs[case],
                                                      "query_code": code},
                             headers={"X-Forwarded-For": address}, timeout=30).status_code
                for code, address in codes_and_addresses]

    right, guess = recs["promised_code"], "ZZZZ2345"
    steps = [
        ("the right code", attempts("promised", [(right, "10.0.0.1")]), [200]),
        ("five wrong guesses at a case, from five addresses",
         attempts("promised", [(guess, f"10.0.1.{i}") for i in range(5)]), [404] * 5),
        ("then the right code for that case, from another address", attempts("promised", [(right, "10.0.2.1")]),
         [429]),
        ("five wrong guesses at another case, from one address",
         attempts("instant", [(guess, "10.0.3.1")] * 5), [404] * 5),
        ("then that address at a third case", attempts("escalated", [(guess, "10.0.3.1")]), [429]),
    ]
    return [f"the query-code lookup, {what}: {got}, not {wanted}" for what, got, wanted in steps if got != wanted]


def test_the_access_matrix(city):
    """The CI set: one city on SQLite."""
    run_the_matrix(city)


@pytest.mark.full
def test_the_access_matrix_on_postgresql(tmp_path, postgres):
    """The same on PostgreSQL (a missing row or a scope filter may be answered differently by another database)."""
    city = City(amqp_url=AMQP_URL, data_dir=tmp_path / "data", backend="postgres", postgres=postgres)
    try:
        run_the_matrix(city)
    finally:
        city.close()


def run_the_matrix(city):
    city.start()
    city.start("portal")

    # a directory user whose tokens work until the portal disables them, which it does while the matrix runs
    with city.cluster.platform("portal").store.transaction() as tx:
        directory.add_user(tx, DISABLED, "运维", "city_admin", "city", "correct horse battery", "test")
    instances = [s.instance for s in city.layout]
    disabled = city.token("service", "city", DISABLED)
    before_records = Asker(city)
    wrong = [f"{i}: the directory user's token refused before it was disabled" for i in instances
             if refusal(city, i, disabled, {"instant": f"{TOWN_A}-20261201-1"})[0] in (401, 403)]

    # what every `hidden` cell's caller sees before town A has a record
    before, _, _ = walk(before_records, expecting="hidden")
    recs = records(city)
    with city.cluster.platform("portal").store.transaction() as tx:
        directory.set_disabled(tx, DISABLED, True, "test")

    asker = Asker(city, recs)
    wrong += lookup_is_rate_limited(city, recs)  # before the matrix's own steps reissue the codes
    _, mismatches, asked = walk(asker, before=before)
    wrong += mismatches
    wrong += traces_of_foreign_callers(city, recs)

    for instance in instances:
        for reason, token in bad_tokens("ops-2").items():
            answer = refusal(city, instance, token, recs)
            if not refused(answer, instance, reason):
                wrong.append(f"{instance}: a token refused as {reason!r} answered {answer}")
        if refusal(city, instance, city.token("service", "city", "ops-2"), recs)[0] != 200:
            wrong.append(f"{instance}: a good token refused")
    # the services follow the directory's revocations within seconds of the change (made before the matrix ran)
    def still_taken():
        return [i for i in instances if not refused(refusal(city, i, disabled, recs), i, tokens.REVOKED)]
    late, deadline = still_taken(), time.monotonic() + 10
    while late and time.monotonic() < deadline:
        time.sleep(0.2)
        late = still_taken()
    wrong += [f"{i}: the disabled user's token still works" for i in late]

    assert asked > 900, asked
    assert not wrong, f"{len(wrong)} answers of {asked} against the access matrix are wrong:\n" + "\n".join(wrong)
