"""全城通办 through the real broker: town A's centre accepts a case of a town-B resident, town B's department
office decides, the result goes back by EMS with its waybill; both centres see the case, a third does not."""
from shared import s10
from tests.support import TOWN_A, TOWN_B, VALID_PHONE, wait_for
from tests.unit.test_notices import pdf_text, squeeze
from tests.unit.test_openapi import assert_matches_document

TOWN_C = "320583103"
MZ_0002 = ["idcard", "hukou", "apply", "income", "consent"]  # 最低生活保障申请: city-wide, town level, promised
ADDRESS = "江苏省昆山市巴城镇正仪路8号"


def _apply(city, town=TOWN_A, item="MZ-0002", materials=MZ_0002, applicant_town=TOWN_B, channel="sms", **extra):
    body = {"item_code": item, "materials": materials,
            "applicant": {"name": "李四", "id_number": "11010519491231002X", "phone": VALID_PHONE,
                          "channel": channel, "town": applicant_town}, **extra}
    return city.call("POST", f"intake-{town}", "/cases", city.token("clerk", f"town:{town}", "clerk-a1"), body)


def _work_items(city, town):
    r = city.call("GET", "approval-minzheng", "/work-items", city.approver("minzheng", town))
    assert r.status_code == 200, r.text
    return r.json()["items"]


def test_a_case_accepted_in_one_town_is_decided_in_the_household_town_and_mailed_back(city, tmp_path):
    intake_c = city.add_intake(TOWN_C)
    city.start()
    assert intake_c == f"intake-{TOWN_C}"

    # the rules at the window: an address for mail, only what the catalogue offers, city-wide items only
    no_address = _apply(city, delivery="mail")
    assert no_address.status_code == 400 and "mail_address" in no_address.json()["details"]
    not_offered = _apply(city, item="TY-0002", materials=["idcard"], applicant_town=None, delivery="mail",
                         mail_address=ADDRESS)
    assert not_offered.status_code == 400 and "pickup" in not_offered.json()["message"]
    not_city_wide = _apply(city, item="MZ-0006", materials=[])
    assert not_city_wide.status_code == 400 and "全城通办" in not_city_wide.json()["message"]

    mailed = _apply(city, delivery="mail", mail_address=ADDRESS)
    picked = _apply(city, channel="pickup")  # the older channel: the result waits at A's centre
    assert mailed.status_code == 201 and picked.status_code == 201, (mailed.text, picked.text)
    number, pickup_number = mailed.json()["case_number"], picked.json()["case_number"]
    assert mailed.json()["handling_town"] == TOWN_B and mailed.json()["delivery"] == "mail"
    assert picked.json()["delivery"] == "pickup"

    # at A: each centre's share recorded, in the view and in the acceptance entry of the history
    at_a = city.case(number)
    accepting, handling = at_a["responsibilities"]
    assert accepting["role"] == "accepting" and accepting["town"] == TOWN_A
    assert accepting["centre"] == "玉山镇便民服务中心" and accepting["first_responder"] == "clerk-a1"
    assert accepting["duties"] == ["形式审查", "身份核验", "受理", "送达"]
    assert handling["role"] == "handling" and handling["town"] == TOWN_B and handling["duties"] == ["审查决定"]
    assert handling["scope"] == f"department:minzheng@{TOWN_B}" and handling["office"].endswith("民政办")
    assert at_a["history"][0]["data"]["responsibilities"] == at_a["responsibilities"]
    assert at_a["waybill"] is None

    # the work is town B's office's: its approver decides, town A's office never sees it
    b_items = wait_for(lambda: len(items := {i["case_number"]: i for i in _work_items(city, TOWN_B)
                                             if i["case_number"] in (number, pickup_number)}) == 2 and items,
                       what="both cases at B's office")
    assert set(b_items) == {number, pickup_number}
    assert not [i for i in _work_items(city, TOWN_A) if i["case_number"] in b_items]
    hidden = city.call("GET", "approval-minzheng", f"/work-items/{b_items[number]['id']}",
                       city.approver("minzheng", TOWN_A))
    assert hidden.status_code == 404
    city.decide("minzheng", number, TOWN_B)
    city.decide("minzheng", pickup_number, TOWN_B)

    # completed at A, with the EMS waybill on the case, in the result notice and on case.completed
    done = wait_for(lambda: (c := city.case(number))["status"] == "completed" and c, what="completed at A")
    assert done["outcome"] == "approved"
    tracking = done["waybill"]["tracking_number"]
    assert s10.is_valid(tracking) and tracking.endswith("CN") and tracking.startswith("E")
    result = next(n for n in done["notices"] if n["kind"] == "result")
    assert f"EMS运单号{tracking}" in result["sms_text"]
    assert "pickup" not in [n["kind"] for n in done["notices"]]
    pdf = city.call("GET", f"intake-{TOWN_A}", f"/cases/{number}/notices/{result['id']}.pdf",
                    city.token("clerk", f"town:{TOWN_A}"))
    assert pdf.status_code == 200 and f"EMS运单号{tracking}" in squeeze(pdf_text(pdf.content, tmp_path))
    events = wait_for(lambda: [e for e in city.listed("evaluation", f"/cases/{number}/events", "events")
                               if e["type"] == "case.completed"], what="case.completed heard")
    assert events[0]["data"]["tracking_number"] == tracking and events[0]["data"]["delivery"] == "mail"
    # notify records the mailing in the case's delivery log (EMS: nothing sent by notify, the waybill kept)
    ems = wait_for(lambda: [d for d in city.listed("notify", f"/cases/{number}/deliveries", "deliveries")
                            if d["channel"] == "ems"], what="the EMS delivery recorded")
    assert len(ems) == 1 and ems[0]["status"] == "recorded" and ems[0]["tracking_number"] == tracking

    # pickup: the pickup notice (and the result) name town A's centre, where the result waits
    picked_done = wait_for(lambda: (c := city.case(pickup_number))["status"] == "completed" and c,
                           what="pickup case completed")
    notices = {n["kind"]: n["sms_text"] for n in picked_done["notices"]}
    assert "玉山镇便民服务中心" in notices["pickup"] and "玉山镇便民服务中心" in notices["result"]
    assert picked_done["waybill"] is None and "EMS" not in notices["result"]

    # at B: the case under /transfers, answered from B's own record, the accepting centre named
    clerk_b = city.token("clerk", f"town:{TOWN_B}", "clerk-b1")

    def completed_at_b():
        rows = city.call("GET", f"intake-{TOWN_B}", "/transfers?status=completed", clerk_b).json()["transfers"]
        return rows if {t["case_number"] for t in rows} == {number, pickup_number} else None

    listed = wait_for(completed_at_b, what="both transfers completed at B")
    mine = next(t for t in listed if t["case_number"] == number)
    assert mine["tracking_number"] == tracking and mine["outcome"] == "approved" and mine["delivery"] == "mail"
    assert mine["accepting_town"] == TOWN_A and mine["accepting_centre"] == "玉山镇便民服务中心"
    assert city.call("GET", f"intake-{TOWN_B}", "/transfers?status=in_review", clerk_b).json()["transfers"] == []
    at_b = city.call("GET", f"intake-{TOWN_B}", f"/cases/{number}", clerk_b)
    assert at_b.status_code == 200, at_b.text
    seen = at_b.json()
    assert seen["responsibility"] == "handling" and seen["accepting_centre"] == "玉山镇便民服务中心"
    assert seen["status"] == "completed" and seen["version"] == done["version"]
    assert "applicant" not in seen and VALID_PHONE[-4:] not in at_b.text
    assert [r["role"] for r in seen["responsibilities"]] == ["accepting", "handling"]
    doc = city.call("GET", f"intake-{TOWN_B}", "/openapi.json").json()
    assert_matches_document(seen, doc, "get_case")
    assert_matches_document(city.call("GET", f"intake-{TOWN_B}", "/transfers", clerk_b).json(), doc,
                            "list_transfers")

    # a third town's clerk cannot tell the case exists: not at A, not at B, not at their own centre
    clerk_c = city.token("clerk", f"town:{TOWN_C}", "clerk-c1")
    for town in (TOWN_A, TOWN_B, TOWN_C):
        r = city.call("GET", f"intake-{town}", f"/cases/{number}", clerk_c)
        assert r.status_code == 404, (town, r.text)
    assert city.call("GET", f"intake-{TOWN_C}", "/transfers", clerk_c).json()["transfers"] == []
    assert city.call("GET", f"intake-{TOWN_B}", "/transfers", clerk_c).status_code == 404
