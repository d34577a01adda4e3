"""The village agent's and town agent's workbenches through the portal, with requests as the browser: an
in-person item refused on the page with the agent service's reason, an ordinary submission made once though
its form is posted twice, the station's log; the town agent's escalations in flight, relayed from the page."""
from __future__ import annotations

import re

from shared.catalog import load_catalog
from tests.portal.support import add_user, csrf_of, hidden, sign_in
from tests.support import TOWN_A, VALID_ID, VALID_PHONE, wait_for

VILLAGE = TOWN_A + "001"


def submission(page: str, code: str, materials: list[str]) -> dict:
    return {"csrf_token": csrf_of(page), "request_key": hidden(page, "request_key"), "item_code": code,
            "name": "李四", "id_number": VALID_ID, "phone": VALID_PHONE, "material": materials, "auth_by": "李四",
            "auth_matters": "代为申请", "signed_at": "2026-03-10T09:30", "auth_method": "手写签名", "fee_fen": "0"}


def test_village_agent_refused_in_person_and_submits_once(city):
    city.start("portal", f"intake-{TOWN_A}", "agent")
    add_user(city, "agent-1", "陈代办", "agent", f"village:{VILLAGE}")
    portal = city.url("portal")
    agent = sign_in(city.url("portal"), "agent-1", lands="/agent")

    # 结婚登记 must be done in person: the agent service refuses it, and the page says why
    page = wait_for(lambda: (t := agent.get(portal + "/agent?item=MZ-0006").text) and "须申请人本人到场" in t
                    and 'name="request_key"' in t and t, what="the catalogue at the window")
    assert "结婚登记（须本人到场）" in page
    r = agent.post(portal + "/agent/submit", data=submission(page, "MZ-0006", ["idcard"]))
    assert r.status_code == 200
    alert = re.search(r'<p class="problem" role="alert">([^<]*)</p>', r.text).group(1)
    assert alert == "不予代办：结婚登记须申请人本人到场办理，不能代办"

    # an ordinary item: the same form posted twice is one service (the page made the key)
    page = agent.get(portal + "/agent?item=RS-0001").text
    form = submission(page, "RS-0001", ["idcard", "form"])
    first = agent.post(portal + "/agent/submit", data=form)
    assert first.status_code == 200 and "已报送镇中心" in first.text, first.text
    number = re.search(r"已登记服务 (V\d+-\d+-\d+)", first.text).group(1)
    again = agent.post(portal + "/agent/submit", data=form)
    assert again.status_code == 200 and number in again.text and "未重复办理" in again.text
    assert hidden(first.text, "request_key") != form["request_key"], "a fresh key for the next form"

    token = city.token("agent", f"village:{VILLAGE}", "agent-1")
    logged = city.call("GET", "agent", "/station/services", token).json()["services"]
    assert [(s["item_code"], s["number"]) for s in logged] == [("MZ-0006", logged[0]["number"]), ("RS-0001", number)]
    assert logged[0]["status"] == "refused" and logged[1]["status"] in ("relayed", "accepted")
    assert logged[1]["authorisation"]["method"] == "手写签名"
    # one case at the town's window: the second post published nothing
    wait_for(lambda: city.call("GET", "agent", f"/station/services/{number}", token).json()["status"] == "accepted",
             what="the town's case for the station's submission")
    cases = city.call("GET", f"intake-{TOWN_A}", "/cases", city.token("clerk", f"town:{TOWN_A}")).json()["cases"]
    assert [c["item_code"] for c in cases] == ["RS-0001"]

    # a field the service refuses (a wrong phone) is shown next to the form, nothing logged
    bad = {**submission(agent.get(portal + "/agent?item=RS-0001").text, "RS-0001", ["idcard"]), "phone": "123"}
    r = agent.post(portal + "/agent/submit", data=bad)
    assert r.status_code == 400 and 'class="field-error" id="phone-error"' in r.text
    assert len(city.call("GET", "agent", "/station/services", token).json()["services"]) == 2

    # the station's log page shows both, the phone masked
    log = agent.get(portal + "/agent/services").text
    assert number in log and "不予代办" in log and VALID_PHONE not in log
    assert "待回复" in agent.get(portal + "/agent/replies").text


def test_town_agent_sees_an_escalation_in_flight_and_relays_it(city):
    city.start("portal", f"intake-{TOWN_A}", "agent")
    add_user(city, "town-agent-101", "周代理", "town_agent", f"town:{TOWN_A}")
    materials = [m["code"] for m in load_catalog().item("MZ-0003")["materials"] if m["required"]]
    number = city.submit("MZ-0003", materials=materials).json()["case_number"]
    assert city.act(number, "initial-review").json()["status"] == "in_review"
    esc = city.escalation(number, status="awaiting_relay")

    browser = sign_in(city.url("portal"), "town-agent-101", lands="/town-agent")
    page = browser.get(city.url("portal") + "/town-agent").text
    assert number in page and esc["deadline"] in page and "待报送" in page
    r = browser.post(city.url("portal") + f"/town-agent/escalations/{number}/relay",
                     data={"csrf_token": csrf_of(page)})
    assert r.status_code == 200 and "已报送市级部门" in r.text
    relayed = city.escalation(number, status="relayed")
    assert relayed["relayed_by"] == "town-agent-101"
    # relaying again: the agent service's 409 on the page
    r = browser.post(city.url("portal") + f"/town-agent/escalations/{number}/relay",
                     data={"csrf_token": csrf_of(page)})
    assert r.status_code == 409 and 'role="alert"' in r.text
    detail = browser.get(city.url("portal") + f"/town-agent/escalations/{number}").text
    assert "town-agent-101" in detail and "特困人员救助供养申请" in detail
