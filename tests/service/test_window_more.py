"""The window answering the back office, the calendar catching up, the catalogue and case lists."""
from datetime import UTC, datetime

import eventlet
import pytest

from shared.clock import ManualClock
from shared.contracts import make_message, rk_department_action
from tests.support import TOWN_A, City, wait_for


@pytest.fixture
def city(tmp_path):
    c = City(amqp_url="amqp://guest:guest@127.0.0.1:5672//", data_dir=tmp_path / "data")
    yield c
    c.close()


def _ask(city, number, version, action, **fields):
    payload = {"accepting_town": TOWN_A, "handling_town": TOWN_A, "department": "renshe", "work_item_id": 1,
               "action": action, "by": "approver-renshe", "reason": fields.pop("reason", "需要"), **fields}
    city.publish(make_message("case.department", number, version, payload, producer="test"),
                 rk_department_action("renshe", TOWN_A))


def test_more_materials_from_the_back_office_stop_the_clock_and_route_again(city):
    clock = ManualClock(datetime(2026, 11, 2, 1, 0, tzinfo=UTC))  # Monday 2 Nov, 09:00 Shanghai
    city.start("intake-320583101", build={"clock": clock})
    city.start("approval-renshe")
    case = city.submit("RS-0001").json()
    number = case["case_number"]
    assert case["deadline"] == "2026-11-09"  # 5 working days
    wait_for(lambda: city.stats("approval-renshe")["received"] == 1, what="routed")

    _ask(city, number, 1, "request_materials", materials=[{"name": "劳动合同"}], reason="需核实用工关系")
    back = wait_for(lambda: (c := city.case(number))["status"] == "pending_materials" and c, what="back at window")
    assert back["missing_materials"] == [{"code": "renshe-1", "name": "劳动合同"}]
    assert back["notices"][-1]["kind"] == "one_time_notice" and "劳动合同" in back["notices"][-1]["sms_text"]

    clock.advance(days=2)  # Wednesday: two working days stopped
    done = city.act(number, "supplement", {"materials": ["renshe-1"]}).json()
    assert done["status"] == "in_review" and done["deadline"] == "2026-11-11", "moved by the two days, not restarted"
    assert done["clock_started_on"] == "2026-11-02"
    wait_for(lambda: city.stats("approval-renshe")["received"] == 2, what="routed again with the new version")
    token = city.approver("renshe", TOWN_A)
    items = city.call("GET", "approval-renshe", "/work-items", token).json()["items"]
    newest = max((i for i in items if i["case_number"] == number), key=lambda i: i["case_version"])
    r = city.call("POST", "approval-renshe", f"/work-items/{newest['id']}/decision", token, {"outcome": "approved"})
    assert r.status_code == 200, r.text
    closed = wait_for(lambda: (c := city.case(number))["status"] == "completed" and c, what="completed")
    assert [h["action"] for h in closed["history"]] == ["accept", "request_materials", "complete_materials", "decide"]


def test_special_procedure_and_extension_asked_by_the_back_office(city):
    clock = ManualClock(datetime(2026, 11, 2, 1, 0, tzinfo=UTC))
    city.start("intake-320583101", build={"clock": clock})
    number = city.submit("RS-0008", materials=["idcard", "form", "receipt"]).json()["case_number"]
    _ask(city, number, 1, "start_procedure", procedure="专家评审", reason="需专家论证")
    wait_for(lambda: city.case(number)["status"] == "paused", what="paused")
    _ask(city, number, 1, "start_procedure", procedure="听证", reason="again")  # not while paused: ignored
    clock.advance(days=7)
    _ask(city, number, 1, "end_procedure", reason="评审结束")
    resumed = wait_for(lambda: (c := city.case(number))["status"] == "in_review" and c, what="resumed")
    assert resumed["deadline"] == "2026-11-30"  # 2026-11-23 + 5 working days paused
    _ask(city, number, 1, "extend", days=2, approved_by="head-renshe", reason="需征求意见")
    wait_for(lambda: city.case(number)["extended_days"] == 2, what="extended")
    _ask(city, number, 1, "extend", days=1, approved_by="head-renshe", reason="again")
    _ask(city, number, 0, "start_procedure", procedure="听证", reason="stale version")
    eventlet.sleep(1.0)
    case = city.case(number)
    assert case["deadline"] == "2026-12-02" and case["extended_days"] == 2, "one extension only"
    assert case["status"] == "in_review", "a request on an old version changes nothing"
    assert [h["action"] for h in case["history"]] == ["accept", "pause", "resume", "extend"]


def test_deadlines_in_an_unknown_year_are_recounted_when_the_year_is_loaded(city, tmp_path):
    clock = ManualClock(datetime(2027, 2, 3, 1, 0, tzinfo=UTC))  # Wednesday 3 Feb 2027
    city.start("intake-320583101", build={"clock": clock})
    case = city.submit("RS-0001").json()
    assert case["deadline_provisional"] is True and case["deadline"] == "2027-02-10"  # weekends only
    city.load_calendar("shared/data/holidays/2027.yaml")  # published to the city's reference stream
    after = wait_for(lambda: (c := city.case(case["case_number"]))["deadline_provisional"] is False and c,
                     what="deadline recounted")
    assert after["deadline"] == "2027-02-18"  # the sample 2027 Spring Festival holiday (Feb 5-13) is skipped
    assert after["history"][-1]["action"] == "recompute_deadline"


def test_catalogue_and_case_lists(city):
    city.start("intake-320583101")
    clerk = city.token("clerk", f"town:{TOWN_A}")
    listing = city.call("GET", "intake-320583101", "/catalog", clerk, None).json()
    assert len(listing["items"]) >= 60
    joint = city.call("GET", "intake-320583101", "/catalog?kind=joint", clerk).json()["items"]
    assert joint and all(i["kind"] == "joint" for i in joint)
    item = city.call("GET", "intake-320583101", "/catalog/items/RS-0001", clerk).json()
    assert item["promised_days"] == 5 and [m["code"] for m in item["materials"]] == ["idcard", "form"]
    assert city.call("GET", "intake-320583101", "/catalog/items/NOPE", clerk).status_code == 404

    incomplete = city.submit("RS-0001", materials=[]).json()["case_number"]
    accepted = city.submit("RS-0001").json()["case_number"]
    city.submit("MZ-0012", materials=[])
    def numbers(query):
        return {c["case_number"]
                for c in city.call("GET", "intake-320583101", f"/cases?{query}", clerk).json()["cases"]}
    assert numbers("status=pending_materials") == {incomplete}
    assert numbers("status=in_review&item_code=RS-0001") == {accepted}
    assert len(numbers("kind=consultation")) == 1
    assert accepted in numbers("due_by=2099-01-01") and incomplete not in numbers("due_by=2099-01-01")
    assert numbers("overdue=1") == set()
    assert city.call("GET", "intake-320583101", "/cases?status=lost", clerk).status_code == 400
    assert city.call("GET", "intake-320583101", "/cases?due_by=tomorrow", clerk).status_code == 400
