"""Each kind of case from the window to its end state, through the real broker (issue: the case at the window)."""
import subprocess
import sys
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from shared.clock import ManualClock
from tests.support import TOWN_A, VALID_ID, VALID_PHONE, City, wait_for


@pytest.fixture
def city(tmp_path):
    c = City(amqp_url="amqp://guest:guest@127.0.0.1:5672//", data_dir=tmp_path / "data",
             departments=("minzheng", "renshe", "canlian", "nongye", "ziran", "zhujian"))
    yield c
    c.close()


def _completed(city, number, town=TOWN_A):
    return wait_for(lambda: (c := city.case(number, town))["status"] == "completed" and c, what=f"{number} completed")


def test_supplement_loop_twice_then_the_clock_starts(city):
    city.start("intake-320583101", "approval-renshe", "notify")
    r = city.submit("RS-0001", materials=[])
    assert r.status_code == 201
    case = r.json()
    number = case["case_number"]
    assert case["status"] == "pending_materials" and case["deadline"] is None
    assert [m["code"] for m in case["missing_materials"]] == ["idcard", "form"]

    first = city.act(number, "supplement", {"materials": ["idcard"]}).json()
    assert first["status"] == "pending_materials" and [m["code"] for m in first["missing_materials"]] == ["form"]
    assert first["deadline"] is None, "the clock has not started"
    again = city.act(number, "supplement", {"materials": ["idcard"]})
    assert again.status_code == 400, "supplying what is no longer missing is refused"
    second = city.act(number, "supplement", {"materials": ["form"]}).json()
    assert second["status"] == "in_review" and second["clock_started_on"] and second["deadline"]

    notices = second["notices"]
    assert [n["kind"] for n in notices] == ["one_time_notice", "one_time_notice", "promise"]
    assert "居民身份证" in notices[0]["sms_text"] and "社会保险登记表" in notices[0]["sms_text"], "ALL missing at once"

    city.decide("renshe", number, TOWN_A)
    done = _completed(city, number)
    assert [h["action"] for h in done["history"]] == [
        "accept_incomplete", "supplement", "complete_materials", "decide"]
    wait_for(lambda: city.stats("notify")["by_kind"].get("result") == 1, what="result delivered")


def test_returned_case_and_its_review(city):
    city.start("intake-320583101", "approval-renshe")
    number = city.submit("RS-0001", return_reason="申请人不属于灵活就业人员").json()["case_number"]
    returned = city.case(number)
    assert returned["status"] == "returned" and returned["reason"] == "申请人不属于灵活就业人员"
    assert [n["kind"] for n in returned["notices"]] == ["rejection"]
    assert "复核" in returned["notices"][0]["sms_text"]
    assert city.act(number, "supplement", {"materials": ["form"]}).status_code == 409

    reviewed = city.act(number, "review", {"reason": "申请人有灵活就业证明"}).json()
    review_number = reviewed["review_case"]
    assert reviewed["status"] == "returned" and review_number
    assert city.act(number, "review", {"reason": "again"}).status_code == 409, "one review"
    review = city.case(review_number)
    assert review["kind"] == "review" and review["review_of"] == number and review["status"] == "in_review"
    city.decide("renshe", review_number, TOWN_A, "approved")
    assert _completed(city, review_number)["outcome"] == "approved"
    assert city.case(number)["status"] == "returned", "the returned case itself is unchanged"


def test_consultation_is_recorded_and_answered(city):
    city.start("intake-320583101")
    r = city.submit("MZ-0012", materials=[])
    case = r.json()
    assert r.status_code == 201 and case["status"] == "consulted" and case["kind"] == "consultation"
    assert "需携带" in case["advice"] and "居民身份证" in case["advice"]
    assert case["allowed_actions"] == []
    assert city.act(case["case_number"], "pause", {"procedure": "听证", "reason": "x"}).status_code == 409


def test_escalated_case_passes_initial_review_then_the_city_decides(city):
    city.start("intake-320583101", "approval-minzheng", "agent")
    number = city.submit("MZ-0003", materials=["idcard", "hukou", "apply", "income"]).json()["case_number"]
    case = city.case(number)
    assert case["status"] == "initial_review" and case["handling_town"] == "city"
    town_approver = city.approver("minzheng", TOWN_A)
    import eventlet
    eventlet.sleep(0.5)
    assert city.call("GET", "approval-minzheng", "/work-items", town_approver).json()["items"] == [], \
        "nothing leaves the town before 初审"
    assert city.act(number, "initial-review").json()["status"] == "in_review"
    city.relay_escalation(number)  # the town agent takes it to the city bureau
    assert city.call("GET", "approval-minzheng", "/work-items", town_approver).json()["items"] == [], \
        "a town office does not see the city bureau's work"
    city.decide("minzheng", number, None, "approved")
    city.return_escalation(number)  # and brings the decision back
    assert _completed(city, number)["outcome"] == "approved"


def test_joint_case_is_approved_only_after_the_last_department(city):
    city.start("intake-320583101", "approval-minzheng", "approval-canlian")
    number = city.submit("MZ-0009", materials=["idcard", "disability", "apply", "bank"]).json()["case_number"]
    assert city.case(number)["departments"] == ["minzheng", "canlian"]
    city.decide("minzheng", number, TOWN_A)
    progress = wait_for(lambda: (c := city.case(number))["departments_progress"][0]["outcome"] and c,
                        what="lead decision recorded")
    assert progress["status"] == "in_review", "one department is not enough"
    assert progress["departments_progress"] == [
        {"department": "minzheng", "lead": True, "outcome": "approved", "reason": None},
        {"department": "canlian", "lead": False, "outcome": None, "reason": None}]
    city.decide("canlian", number, TOWN_A)
    done = _completed(city, number)
    assert done["outcome"] == "approved" and done["result_number"].count(";") == 1


def test_joint_case_of_three_departments_refused_by_one(city):
    city.start("intake-320583101", "approval-nongye", "approval-ziran", "approval-zhujian")
    number = city.submit("NY-0001", materials=["idcard", "hukou", "apply", "pledge", "minutes", "drawing"],
                         ).json()["case_number"]
    city.decide("nongye", number, TOWN_A)
    city.decide("ziran", number, TOWN_A, "refused", "不符合国土空间规划")
    done = _completed(city, number)
    assert done["outcome"] == "refused" and done["reason"] == "ziran: 不符合国土空间规划"
    token = city.approver("zhujian", TOWN_A)
    wait_for(lambda: city.call("GET", "approval-zhujian", "/work-items", token).json()["items"] == [],
             what="the third department's work withdrawn")
    assert city.stats("approval-zhujian")["withdrawn"] == 1


def test_deferred_material_is_accepted_now_and_delivered_later(city):
    city.start("intake-320583101")
    case = city.submit("MZ-0004", materials=["idcard", "apply"]).json()
    assert case["status"] == "in_review"
    assert case["deferred_materials"] == [{"code": "proof", "name": case["deferred_materials"][0]["name"]}]
    assert case["deferred_due"] is not None
    after = city.act(case["case_number"], "deferred", {"materials": ["proof"]}).json()
    assert after["deferred_materials"] == [] and after["status"] == "in_review"
    assert city.act(case["case_number"], "deferred", {"materials": ["proof"]}).status_code == 400


def test_pause_resume_and_one_extension_move_the_deadline(city):
    # Monday 2 November 2026, 09:00 in Shanghai
    clock = ManualClock(datetime(2026, 11, 2, 1, 0, tzinfo=UTC))
    city.start("intake-320583101", build={"clock": clock})
    case = city.submit("RS-0008", materials=["idcard", "form", "receipt"]).json()
    number = case["case_number"]
    assert case["deadline"] == "2026-11-23"  # 15 working days after Mon 2 Nov
    assert city.act(number, "pause", {"procedure": "现场勘察", "reason": "核实经营场所"}).json()["status"] == "paused"
    assert city.act(number, "extension", {"days": 3, "reason": "x"},
                    token=city.token("supervisor", "city")).status_code == 409, "not while paused"
    clock.advance(days=7)  # resumed Monday 9 November: five working days paused
    resumed = city.act(number, "resume").json()
    assert resumed["status"] == "in_review" and resumed["deadline"] == "2026-11-30"
    clerk_try = city.act(number, "extension", {"days": 3, "reason": "需要征求意见"})
    assert clerk_try.status_code == 403, "a clerk cannot extend"
    supervisor = city.token("supervisor", "city", "supervisor-1")
    extended = city.act(number, "extension", {"days": 3, "reason": "需要征求意见"}, token=supervisor).json()
    assert extended["deadline"] == "2026-12-03" and extended["extended_days"] == 3
    assert extended["history"][-1]["data"]["approved_by"] == "supervisor-1"
    second = city.act(number, "extension", {"days": 1, "reason": "again"}, token=supervisor)
    assert second.status_code == 409 and "once" in second.json()["message"]


def test_notice_pdf_is_served_and_the_ledger_verifies(city):
    city.start("intake-320583101")
    # the clerk's token carries her name: the notice names the first responder (首问负责人) by name and number
    body = {"item_code": "RS-0001", "materials": [],
            "applicant": {"name": "张三", "id_number": VALID_ID, "phone": VALID_PHONE}}
    case = city.call("POST", "intake-320583101", "/cases",
                     city.token("clerk", f"town:{TOWN_A}", "clerk-9", name="张敏"), body).json()
    number = case["case_number"]
    notice_id = city.case(number)["notices"][0]["id"]
    r = city.call("GET", "intake-320583101", f"/cases/{number}/notices/{notice_id}.pdf",
                  city.token("clerk", f"town:{TOWN_A}"))
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/pdf"
    text = subprocess.run(["pdftotext", "-", "-"], input=r.content, capture_output=True, check=True).stdout.decode()
    assert "一次性告知书" in text and number in text
    assert "张敏（工号 clerk-9）" in text.replace("\n", ""), text
    assert "原件" in text and "original" not in text  # the materials as a clerk hands them over
    assert city.call("GET", "intake-320583101", f"/cases/{number}/notices/999.pdf",
                     city.token("clerk", f"town:{TOWN_A}")).status_code == 404

    ops = city.token("supervisor", "city")
    assert city.call("GET", "intake-320583101", "/ledger/verify", ops).json() == {"cases": 1, "broken": {}}
    engine = sa.create_engine(city.settings("intake-320583101").db_url)
    with engine.begin() as conn:  # someone edits the history behind the service's back
        conn.execute(sa.text("UPDATE case_actions SET actor = 'mallory' WHERE seq = 1"))
    engine.dispose()
    assert city.call("GET", "intake-320583101", "/ledger/verify", ops).json() == {"cases": 1, "broken": {number: 1}}
    env = {**__import__("os").environ, "TONGBAN_DATA_DIR": str(city.data_dir)}
    cli = subprocess.run([sys.executable, "-m", "tongban.cli", "ledger", "verify", "--town", TOWN_A], env=env,
                         capture_output=True, text=True)
    assert cli.returncode == 1 and f"{number}: history entry 1" in cli.stdout, cli.stdout + cli.stderr


def test_joint_case_of_three_departments_approved_only_after_the_last(city):
    city.start("intake-320583101", "approval-nongye", "approval-ziran", "approval-zhujian")
    number = city.submit("NY-0001", materials=["idcard", "hukou", "apply", "pledge", "minutes", "drawing"],
                         ).json()["case_number"]
    for i, dept in enumerate(("zhujian", "nongye", "ziran")):
        city.decide(dept, number, TOWN_A)
        if i < 2:
            case = wait_for(lambda i=i: (c := city.case(number))["departments_progress"] and
                            sum(p["outcome"] == "approved" for p in c["departments_progress"]) == i + 1 and c,
                            what=f"{i + 1} decisions recorded")
            assert case["status"] == "in_review", f"not approved after {i + 1} of 3"
    done = _completed(city, number)
    assert done["outcome"] == "approved" and done["history"][-1]["action"] == "decide"
    assert [p["outcome"] for p in done["departments_progress"]] == ["approved"] * 3
