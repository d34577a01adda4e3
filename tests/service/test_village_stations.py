"""Village stations (村/社区便民服务站) through the real broker: a village agent's submissions relayed to the
town centre (报送), decided and replied to (回复); resends that make one case; refusals at the station and by
the town; help only (帮办); done at the station; who sees a station's log. One city for the module."""
from __future__ import annotations

import uuid

import eventlet
import pytest

from tests.conftest import AMQP_URL
from tests.service.test_notify_once import metric
from tests.support import TOWN_A, TOWN_B, VALID_ID, VALID_PHONE, City, wait_for

INTAKE = f"intake-{TOWN_A}"
VILLAGE = f"{TOWN_A}001"  # 城北社区
AGENT = "agent-cb"
AUTHORISATION = {"by": "李四", "matters": "代为申请社会保险登记", "signed_at": "2026-11-24T09:00:00+08:00",
                 "method": "手写签名"}


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    c = City(amqp_url=AMQP_URL, data_dir=tmp_path_factory.mktemp("village") / "data")
    c.start(INTAKE, "approval-renshe", "agent")
    yield c
    c.close()


def agent_token(city, village: str = VILLAGE, subject: str = AGENT) -> str:
    return city.token("agent", f"village:{village}", subject)


def submission(item_code: str, materials=("idcard", "form"), **extra) -> dict:
    return {"item_code": item_code, "materials": list(materials), "authorisation": AUTHORISATION,
            "applicant": {"name": "李四", "id_number": VALID_ID, "phone": VALID_PHONE}, **extra}


def post(city, path: str, body: dict, key: str | None = None, token: str | None = None):
    headers = {"Idempotency-Key": key or uuid.uuid4().hex} if key != "" else {}
    return city.call("POST", "agent", path, token or agent_token(city), body, headers=headers)


def record(city, number: str, token: str | None = None) -> dict:
    r = city.call("GET", "agent", f"/station/services/{number}", token or agent_token(city))
    assert r.status_code == 200, r.text
    return r.json()


def town_cases(city) -> int:
    return city.stats(INTAKE)["cases"]


def test_a_relayed_submission_becomes_the_agents_case_is_decided_and_replied_to(city):
    r = post(city, "/station/submissions", submission("RS-0001", content="李四申请灵活就业人员社会保险登记"))
    assert r.status_code == 201, r.text
    sent = r.json()
    assert sent["status"] == "relayed" and sent["mode"] == "submission" and sent["agent"] == AGENT
    assert sent["number"].startswith(f"V{VILLAGE}-") and sent["village"] == VILLAGE and sent["town"] == TOWN_A
    assert sent["applicant"] == {"name": "李四", "id_number": "110105********002X", "phone": "138****5678"}
    assert sent["authorisation"]["by"] == "李四" and sent["content"] == "李四申请灵活就业人员社会保险登记"
    number = sent["number"]

    linked = wait_for(lambda: (x := record(city, number))["case_number"] and x, what="the town's case linked")
    assert linked["status"] == "accepted" and linked["case_status"] == "in_review" and linked["reply"] is None
    case = city.case(linked["case_number"])
    assert (case["via_agent"], case["first_responder"]) == (AGENT, AGENT)
    assert (case["village"], case["station_submission"]) == (VILLAGE, number)
    assert case["applicant"]["id_number"] == "110105********002X"

    city.decide("renshe", case["case_number"], TOWN_A)
    done = wait_for(lambda: (x := record(city, number))["status"] == "completed" and x, what="the station hears")
    assert done["outcome"] == "approved" and done["case_status"] == "completed" and done["completed_on"]
    owed = wait_for(lambda: [x for x in city.call("GET", "agent", "/replies", agent_token(city)).json()["replies"]
                             if x["case_number"] == case["case_number"]], what="a reply owed")
    assert owed[0]["village"] == VILLAGE and owed[0]["status"] == "to_reply" and owed[0]["method"] is None

    # another village's agent owes nothing here and cannot record it
    other = agent_token(city, f"{TOWN_A}002", "agent-c")
    reply = {"method": "phone", "what_said": "您的社会保险登记已办结，请留意短信"}
    assert city.call("POST", "agent", f"/replies/{case['case_number']}", other, reply).status_code == 404
    r = city.call("POST", "agent", f"/replies/{case['case_number']}", agent_token(city), reply)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "replied" and r.json()["replied_by"] == AGENT and r.json()["method"] == "phone"
    again = city.call("POST", "agent", f"/replies/{case['case_number']}", agent_token(city), reply)
    assert again.status_code == 200 and again.json()["replied_at"] == r.json()["replied_at"], "the same reply again"
    other_words = city.call("POST", "agent", f"/replies/{case['case_number']}", agent_token(city),
                            {"method": "visit", "what_said": "上门告知"})
    assert other_words.status_code == 409
    assert not [x for x in city.call("GET", "agent", "/replies", agent_token(city)).json()["replies"]
                if x["case_number"] == case["case_number"]], "the list of replies owed empties"
    assert record(city, number)["reply"]["what_said"] == reply["what_said"]


def test_one_submission_sent_ten_times_makes_one_record_and_one_case(city):
    cases_before = town_cases(city)
    stations_queue = city.queue(INTAKE, "arrivals")
    key, body = uuid.uuid4().hex, submission("RS-0001")
    pool = eventlet.GreenPool(5)
    answers = list(pool.imap(lambda _: post(city, "/station/submissions", body, key), range(5)))
    answers += [post(city, "/station/submissions", body, key) for _ in range(5)]
    assert all(a.status_code in (200, 201) for a in answers), [a.text for a in answers]
    assert sorted(a.status_code for a in answers) == [200] * 9 + [201]
    assert len({a.json()["number"] for a in answers}) == 1
    number = answers[0].json()["number"]
    wait_for(lambda: record(city, number)["case_number"], what="the case linked")
    assert town_cases(city) == cases_before + 1
    assert metric(city, INTAKE, "tongban_messages_handled_total", queue=stations_queue, outcome="duplicate") == 0
    mine = city.call("GET", "agent", "/station/services", agent_token(city)).json()["services"]
    assert [s["number"] for s in mine].count(number) == 1
    # the same key from another agent is another submission
    other = post(city, "/station/submissions", body, key, token=agent_token(city, f"{TOWN_A}002", "agent-c"))
    assert other.status_code == 201 and other.json()["number"] != number
    other_token = agent_token(city, f"{TOWN_A}002", "agent-c")
    wait_for(lambda: record(city, other.json()["number"], other_token)["case_number"], what="its own case")
    assert town_cases(city) == cases_before + 2


def test_the_station_refuses_does_at_once_or_only_helps_and_the_town_sees_none_of_it(city):
    cases_before = town_cases(city)
    marriage = post(city, "/station/submissions", submission("MZ-0006", ["idcard", "declare", "photo"]))
    assert marriage.status_code == 201, marriage.text
    assert marriage.json()["status"] == "refused"
    assert marriage.json()["reason"] == "结婚登记须申请人本人到场办理，不能代办"
    not_for_agents = post(city, "/station/submissions", submission("DJ-0001", ["letter", "idcard"]))
    assert not_for_agents.json()["status"] == "refused" and "不在代办员可代办" in not_for_agents.json()["reason"]
    at_once = post(city, "/station/submissions", submission("DJ-0006", ["idcard"]))
    assert at_once.status_code == 201 and at_once.json()["status"] == "done"
    assert at_once.json()["completed_on"] == at_once.json()["served_on"] and at_once.json()["solution"]
    helped = post(city, "/station/help", {"content": "咨询高龄津贴申请条件", "solution": "讲解政策，村民暂不委托",
                                          "item_code": "MZ-0005", "applicant": {"name": "王五", "phone": VALID_PHONE}})
    assert helped.status_code == 201, helped.text
    assert (helped.json()["mode"], helped.json()["status"]) == ("help_only", "helped")
    assert helped.json()["authorisation"] is None and helped.json()["item_name"] == "高龄津贴申请"

    too_dear = post(city, "/station/submissions", submission("RS-0001", fee_fen=500))
    assert too_dear.status_code == 400 and "fee_fen" in too_dear.json()["details"]
    assert post(city, "/station/submissions", submission("RS-0001"), key="").status_code == 400, "no key"
    bad_id = submission("RS-0001")
    bad_id["applicant"]["id_number"] = "110105194912310021"
    assert post(city, "/station/submissions", bad_id).status_code == 400
    no_mandate = submission("RS-0001")
    del no_mandate["authorisation"]
    assert post(city, "/station/submissions", no_mandate).status_code == 400

    # a relay after them all: once its case is at the town, the refused, done and helped ones never made one
    relayed = post(city, "/station/submissions", submission("RS-0001"))
    wait_for(lambda: record(city, relayed.json()["number"])["case_number"], what="the relay's case")
    assert town_cases(city) == cases_before + 1
    for r in (marriage, not_for_agents, at_once, helped):
        assert record(city, r.json()["number"])["case_number"] is None
    refused = city.call("GET", "agent", "/station/services?status=refused", agent_token(city)).json()["services"]
    assert {s["number"] for s in refused} == {marriage.json()["number"], not_for_agents.json()["number"]}


def test_a_relay_the_town_cannot_accept_comes_back_rejected_and_owes_a_reply(city):
    # 人民调解申请 is not city-wide: the town does not open it for a resident of another town
    body = submission("SF-0002", ["idcard"])
    body["applicant"]["town"] = TOWN_B
    r = post(city, "/station/submissions", body)
    assert r.status_code == 201 and r.json()["status"] == "relayed", r.text
    number = r.json()["number"]
    back = wait_for(lambda: (x := record(city, number))["status"] == "rejected" and x, what="the town's refusal")
    assert back["case_number"] is None and "not city-wide" in back["reason"]
    owed = [x for x in city.call("GET", "agent", "/replies", agent_token(city)).json()["replies"]
            if x["case_number"] == number]
    assert owed and owed[0]["outcome"] == "returned" and owed[0]["village"] == VILLAGE
    assert back["reply"]["status"] == "to_reply"


def test_who_sees_a_station_record(city):
    r = post(city, "/station/help", {"content": "咨询", "solution": "已解答", "applicant": {"name": "赵六",
                                                                                         "phone": VALID_PHONE}})
    number = r.json()["number"]
    missing = f"V{VILLAGE}-20000101-9999"
    foreign = {"another village's agent": agent_token(city, f"{TOWN_A}002", "agent-c"),
               "the same agent's name in another village": agent_token(city, f"{TOWN_A}003", AGENT),
               "a clerk of town B": city.token("clerk", f"town:{TOWN_B}", "clerk-b"),
               "a supervisor of town B": city.token("supervisor", f"town:{TOWN_B}", "sup-b")}
    for who, token in foreign.items():
        got = city.call("GET", "agent", f"/station/services/{number}", token)
        absent = city.call("GET", "agent", f"/station/services/{missing}", token)
        assert got.status_code == absent.status_code == 404, who
        assert got.json()["error"] == absent.json()["error"]
        listed = city.call("GET", "agent", "/station/services", token).json()["services"]
        assert number not in {s["number"] for s in listed}, who
    for token in (city.token("clerk", f"town:{TOWN_A}", "clerk-1"), city.token("town_agent", f"town:{TOWN_A}"),
                  city.ops, agent_token(city)):
        assert record(city, number, token)["number"] == number
    month = r.json()["served_on"][:7]
    town_log = city.call("GET", "agent", f"/station/services?month={month}",
                         city.token("supervisor", f"town:{TOWN_A}", "sup-a")).json()["services"]
    assert number in {s["number"] for s in town_log}
    assert [s["served_at"] for s in town_log] == sorted(s["served_at"] for s in town_log), "oldest first"
    assert all("*" in s["applicant"]["phone"] for s in town_log)
    assert city.call("GET", "agent", "/station/services?month=2000-01", city.ops).json()["services"] == []
    assert city.call("GET", "agent", "/station/services?month=11-2026", city.ops).status_code == 400
    approver = city.token("approver", f"department:renshe@{TOWN_A}", "ap")
    assert city.call("GET", "agent", f"/station/services/{number}", approver).status_code == 403


def test_the_months_village_table_matches_the_submissions_made_here(city):
    """The monthly table (村(社区)便民服务办理情况统计表) of this month, over HTTP as JSON, CSV and XLSX, counts
    exactly what the tests above did at the stations (the module's city: run after them)."""
    import csv
    import io
    from datetime import UTC, datetime

    import openpyxl

    from shared.workdays import today_in_shanghai

    month = today_in_shanghai(datetime.now(UTC)).strftime("%Y-%m")
    ops = city.token("supervisor", f"town:{TOWN_A}", "sup-a")
    logged = city.call("GET", "agent", "/station/services", ops, headers={}).json()["services"]
    assert logged, "the tests above logged services at the stations"
    mine = [s for s in logged if s["served_on"].startswith(month)]
    table = city.call("GET", "agent", f"/reports/village?month={month}&town={TOWN_A}", ops).json()
    (town,) = table["towns"]
    assert town["town"] == TOWN_A and table["month"] == month
    relayed = ("relayed", "accepted", "completed", "rejected")
    expected = {
        "services": len(mine),
        "refused": sum(s["status"] == "refused" for s in mine),
        "help_only": sum(s["mode"] == "help_only" for s in mine),
        "done_at_station": sum(s["status"] == "done" for s in mine),
        "relayed": sum(s["status"] in relayed for s in mine),
        "completed": sum(s["status"] == "completed" and (s["completed_on"] or "").startswith(month) for s in mine),
    }
    assert {k: town["total"][k] for k in expected} == expected and expected["relayed"] > 0
    replied = city.call("GET", "agent", "/replies?status=replied", ops).json()["replies"]
    assert town["total"]["replies"] == len(replied) > 0  # every reply of this module was made just now
    by_village = {v["village"]: v["subtotal"]["services"] for v in town["villages"]}
    assert by_village[VILLAGE] == sum(s["village"] == VILLAGE for s in mine)
    assert sum(by_village.values()) == len(mine)

    as_csv = city.call("GET", "agent", f"/reports/village?month={month}&town={TOWN_A}&format=csv", ops)
    assert as_csv.status_code == 200 and as_csv.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    header = rows[0]
    total_row = next(r for r in rows if "合计" in r)
    assert int(total_row[header.index("服务总数")]) == len(mine)
    assert int(total_row[header.index("报送")]) == expected["relayed"]

    as_xlsx = city.call("GET", "agent", f"/reports/village?month={month}&town={TOWN_A}&format=xlsx", ops)
    assert as_xlsx.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(as_xlsx.content))
    sheet = book.worksheets[0]
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    heading_row = next(r for r in values if "服务总数" in r)
    totals = next(r for r in values if "合计" in r)
    assert totals[heading_row.index("服务总数")] == len(mine)
    assert totals[heading_row.index("帮办")] == expected["help_only"]
