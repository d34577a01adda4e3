"""The HTTP APIs: clear 4xx for bad input and bad tokens, never a 500."""
import pytest

from shared import tokens
from tests.support import SIGNING_KEY, TOWN_A, TOWN_B, VALID_ID, VALID_PHONE, issue_token, wait_for


@pytest.fixture
def running(city):
    city.start("intake-320583101", "approval-renshe")
    return city


def _post(city, body=None, raw=None, token=None):
    token = token or city.token("clerk", f"town:{TOWN_A}")
    return city.call("POST", "intake-320583101", "/cases", token, body=body, raw=raw)


def _body(**changes):
    body = {"item_code": "MZ-0001", "materials": ["idcard", "photo"],
            "applicant": {"name": "张三", "id_number": VALID_ID, "phone": VALID_PHONE}}
    body.update(changes)
    return body


@pytest.mark.parametrize("raw, fragment", [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b"", "must be a JSON object"),
    ("{\"item_code\": \"\xff\"}".encode("latin-1"), "not valid JSON"),
])
def test_unreadable_bodies_get_400(running, raw, fragment):
    r = _post(running, raw=raw)
    assert r.status_code == 400
    assert r.json()["error"] == "bad_request" and fragment in r.json()["message"]


@pytest.mark.parametrize("body, field", [
    (_body(applicant={"name": "张三", "id_number": "110105194912310021", "phone": VALID_PHONE}), "applicant"),
    (_body(applicant={"name": "张三", "id_number": VALID_ID, "phone": "12345"}), "applicant"),
    (_body(item_code=7), "item_code"),
    (_body(unexpected=True), "unexpected"),
    ({"materials": []}, "item_code"),
])
def test_invalid_fields_are_named(running, body, field):
    r = _post(running, body=body)
    assert r.status_code == 400, r.text
    assert field in r.json()["details"]


def test_bad_id_number_is_explained(running):
    r = _post(running, body=_body(applicant={"name": "张三", "id_number": "110105194912310021",
                                             "phone": VALID_PHONE}))
    assert "GB 11643" in r.json()["details"]["applicant"]["id_number"][0]


def test_rules_of_the_window_are_4xx(running):
    r = _post(running, body=_body(item_code="NOPE-1"))
    assert r.status_code == 400 and "unknown item" in r.json()["message"]
    r = _post(running, body=_body(materials=["idcard"]))  # incomplete: recorded, not refused (补办件)
    assert r.status_code == 201 and r.json()["status"] == "pending_materials"
    assert r.json()["missing_materials"] == [{"code": "photo", "name": "一寸免冠照片"}]
    r = _post(running, body=_body(materials=["idcard", "photo", "passport"]))
    assert r.status_code == 400 and r.json()["details"]["materials"] == ["passport"]
    r = running.call("GET", "intake-320583101", "/cases/320583101-20260101-00001",
                     running.token("clerk", f"town:{TOWN_A}"))
    assert r.status_code == 404


def test_the_same_request_twice_creates_one_case(running):
    headers = {"Idempotency-Key": "window-3-0001"}
    token = running.token("clerk", f"town:{TOWN_A}")
    first = running.call("POST", "intake-320583101", "/cases", token, body=_body(), headers=headers)
    second = running.call("POST", "intake-320583101", "/cases", token, body=_body(), headers=headers)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["case_number"] == second.json()["case_number"]
    listing = running.call("GET", "intake-320583101", "/cases", token).json()["cases"]
    assert len(listing) == 1
    assert listing[0]["applicant"] == {"type": "person", "name": "张三", "id_number": "110105********002X",
                                       "phone": "138****5678"}


def test_tokens_are_required_and_checked(running):
    city = running
    assert city.call("POST", "intake-320583101", "/cases", None, _body()).status_code == 401
    r = city.call("POST", "intake-320583101", "/cases", "not-a-token", _body())
    assert r.status_code == 401 and r.json()["message"] == "malformed token"
    # signed by another key under our key's id: a bad signature; under its own id: an unknown key
    other = tokens.SigningKey.generate()
    forged = tokens.issue(tokens.SigningKey(other.private, SIGNING_KEY.kid), "mallory", "clerk", f"town:{TOWN_A}")
    assert city.call("POST", "intake-320583101", "/cases", forged, _body()).json()["message"] == "bad signature"
    foreign = tokens.issue(other, "mallory", "clerk", f"town:{TOWN_A}")
    assert city.call("POST", "intake-320583101", "/cases", foreign, _body()).status_code == 401
    expired = issue_token("clerk", "clerk", f"town:{TOWN_A}", ttl_seconds=1, now=1_000_000)
    assert city.call("POST", "intake-320583101", "/cases", expired, _body()).json()["message"] == "token expired"
    # right signature, wrong role or wrong town
    agent = city.token("agent", f"village:{TOWN_A}001")
    assert city.call("POST", "intake-320583101", "/cases", agent, _body()).status_code == 403
    other_town = city.token("clerk", f"town:{TOWN_B}")
    r = city.call("POST", "intake-320583101", "/cases", other_town, _body())
    assert r.status_code == 403 and TOWN_A in r.json()["message"]
    assert city.call("GET", "intake-320583101", "/cases", other_town).status_code == 404
    # health and metrics are open, everything else is not
    assert city.call("GET", "intake-320583101", "/health").status_code == 200
    assert city.call("GET", "intake-320583101", "/stats").status_code == 401


def test_an_approver_sees_and_decides_only_their_own_work(running):
    city = running
    city.start("intake-320583102")
    number = city.submit("RS-0001", TOWN_B).json()["case_number"]
    mine = city.token("approver", f"department:renshe@{TOWN_B}", "a")
    items = wait_for(lambda: city.call("GET", "approval-renshe", "/work-items", mine).json()["items"], what="item")
    item_id = items[0]["id"]
    assert items[0]["case_number"] == number
    other_town = city.token("approver", f"department:renshe@{TOWN_A}", "b")
    other_dept = city.token("approver", f"department:minzheng@{TOWN_B}", "c")
    assert city.call("GET", "approval-renshe", "/work-items", other_town).json()["items"] == []
    assert city.call("GET", "approval-renshe", "/work-items", other_dept).status_code == 404
    for token in (other_town, other_dept):
        r = city.call("POST", "approval-renshe", f"/work-items/{item_id}/decision", token, {"outcome": "approved"})
        assert r.status_code == 404, r.text
        assert city.call("GET", "approval-renshe", f"/work-items/{item_id}", token).status_code == 404
    r = city.call("POST", "approval-renshe", f"/work-items/{item_id}/decision", mine, {"outcome": "refused"})
    assert r.status_code == 400 and "reason" in r.json()["message"]
    r = city.call("POST", "approval-renshe", "/work-items/999/decision", mine, {"outcome": "approved"})
    assert r.status_code == 404
    r = city.call("POST", "approval-renshe", f"/work-items/{item_id}/decision", mine, {"outcome": "maybe"})
    assert r.status_code == 400 and "outcome" in r.json()["details"]
