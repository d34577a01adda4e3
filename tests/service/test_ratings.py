"""好差评 and 有诉即办 through the real broker: cases accepted and completed through the suite are rated; a bad
rating goes through callback, rectification and follow-up; an appeal voids one; complaints are accepted,
assigned, resolved, and one goes overdue on a manual clock. Scopes: another town sees nothing (404)."""
from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from shared.clock import ManualClock
from tests.support import TOWN_A, TOWN_B, VALID_PHONE, wait_for

MASKED_PHONE = "138****5678"


def metric(city, name, **labels) -> float:
    for family in text_string_to_metric_families(city.call("GET", "evaluation", "/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def seen_by_evaluation(city, number: str, event: str):
    wait_for(lambda: any(e["type"] == event for e in city.call("GET", "evaluation", f"/cases/{number}/events",
                                                               city.ops).json().get("events", [])),
             what=f"evaluation heard {event} of {number}")


def post(city, path, token, body=None, key=None):
    return city.call("POST", "evaluation", path, token, body, headers={"Idempotency-Key": key} if key else None)


def get(city, path, token):
    return city.call("GET", "evaluation", path, token)


def test_ratings_rectification_follow_up_and_an_appeal(city):
    clock = ManualClock(datetime.now(UTC))
    city.start(f"intake-{TOWN_A}", "approval-minzheng", "approval-renshe")
    city.start("evaluation", build={"clock": clock})
    window = city.token("clerk", f"town:{TOWN_A}", "window-device-1")
    portal = city.token("service", "city", "portal")
    head = city.token("department_head", f"department:renshe@{TOWN_A}", "head-renshe")
    head_mz = city.token("department_head", f"department:minzheng@{TOWN_A}", "head-minzheng")
    sup_a = city.token("supervisor", f"town:{TOWN_A}", "sup-a")
    sup_b = city.token("supervisor", f"town:{TOWN_B}", "sup-b")
    sup_city = city.token("supervisor", "city", "sup-city")

    # a promised case: rated at acceptance, once
    r = city.submit("RS-0001", TOWN_A)
    assert r.status_code == 201, r.text
    promised = r.json()["case_number"]
    seen_by_evaluation(city, promised, "case.accepted")
    body = {"case_number": promised, "level": 2, "channel": "window_device", "stage": "acceptance"}
    first = post(city, "/ratings", window, body, key="device-1-0001")
    assert first.status_code == 201, first.text
    again = post(city, "/ratings", window, body, key="device-1-0001")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"], "a resend is the same rating"
    assert post(city, "/ratings", window, body, key="device-1-0002").status_code == 409, "once per stage"
    assert post(city, "/ratings", city.token("clerk", f"town:{TOWN_B}"), body).status_code == 404
    assert post(city, "/ratings", window, {**body, "channel": "online"}).status_code == 403
    early = post(city, "/ratings", portal, {**body, "stage": "completion", "channel": "qr_code"})
    assert early.status_code == 409, "a rating at completion waits for the completion"
    assert first.json()["staff"] == "clerk-1" and first.json()["department"] == "renshe"
    assert first.json()["town"] == first.json()["window"] == TOWN_A and first.json()["rectification_id"] is None

    # completed through the back office, then a bad rating by the applicant through the QR code
    city.decide("renshe", promised, TOWN_A)
    seen_by_evaluation(city, promised, "case.completed")
    bad = post(city, "/ratings", portal, {"case_number": promised, "level": 5, "channel": "qr_code",
                                          "stage": "completion", "comment": "等了很久",
                                          "rater": {"name": "张三", "phone": VALID_PHONE}})
    assert bad.status_code == 201, bad.text
    bad = bad.json()
    assert bad["bad"] and bad["level_name"] == "非常不满意" and bad["rectification_state"] == "open"
    assert "rater" not in bad, "the portal's service account is not a supervisor"

    # the staff and their department head never see who rated; the supervisor does, the phone masked
    as_head = get(city, f"/ratings?case_number={promised}", head).json()["ratings"]
    assert [x["level"] for x in as_head] == [5, 2] and all("rater" not in x for x in as_head)
    assert VALID_PHONE not in get(city, "/ratings", head).text and "张三" not in get(city, "/ratings", head).text
    as_sup = get(city, f"/ratings/{bad['id']}", sup_a).json()
    assert as_sup["rater"] == {"name": "张三", "phone": MASKED_PHONE} and as_sup["recorded_by"] == "portal"
    assert get(city, f"/ratings/{bad['id']}", sup_b).status_code == 404
    assert get(city, "/ratings", sup_b).json()["ratings"] == []
    assert metric(city, "tongban_ratings_total", level="5", channel="qr_code") == 1

    # rectification: callback, then measures, then the rater's one follow-up
    rects = get(city, "/rectifications", head).json()["rectifications"]
    assert [x["rating_id"] for x in rects] == [bad["id"]] and rects[0]["state"] == "open"
    rect = rects[0]["id"]
    assert get(city, "/rectifications", sup_b).json()["rectifications"] == []
    assert post(city, f"/rectifications/{rect}/callback", sup_b, {"by": "x", "notes": "x"}).status_code == 404
    follow = {"level": 2, "channel": "sms_link"}
    assert post(city, f"/ratings/{bad['id']}/follow-up", portal, follow).status_code == 409, "not rectified yet"
    assert post(city, f"/rectifications/{rect}/rectify", head, {"measures": "x"}).status_code == 409, "callback first"
    called = post(city, f"/rectifications/{rect}/callback", sup_a, {"by": "李监察", "notes": "申请人说明了等待原因"})
    assert called.status_code == 200 and called.json()["state"] == "called_back", called.text
    done = post(city, f"/rectifications/{rect}/rectify", head, {"measures": "增加窗口，公开办理进度"})
    assert done.status_code == 200 and done.json()["state"] == "rectified", done.text
    followed = post(city, f"/ratings/{bad['id']}/follow-up", portal, follow)
    assert followed.status_code == 201, followed.text
    assert followed.json()["follow_up"]["level"] == 2 and followed.json()["rectification_state"] == "closed"
    assert post(city, f"/ratings/{bad['id']}/follow-up", portal, follow).status_code == 409, "one follow-up only"
    closed = get(city, "/rectifications?state=closed", head).json()["rectifications"]
    assert closed[0]["closed_reason"] == "follow_up" and closed[0]["follow_up_level"] == 2

    # an instant case is rated once; its bad rating goes overdue on the clock, is appealed and voided
    r = city.submit("MZ-0001", TOWN_A)
    assert r.status_code == 201, r.text
    instant = r.json()["case_number"]
    seen_by_evaluation(city, instant, "case.completed")
    mistaken = post(city, "/ratings", window, {"case_number": instant, "level": 4, "channel": "window_device",
                                               "stage": "completion"})
    assert mistaken.status_code == 201, mistaken.text
    mistaken = mistaken.json()
    assert post(city, "/ratings", portal, {"case_number": instant, "level": 1, "channel": "online",
                                           "stage": "acceptance"}).status_code == 409, "an instant case: once"
    open_rect = get(city, "/rectifications", sup_a).json()["rectifications"][0]
    assert open_rect["rating_id"] == mistaken["id"] and open_rect["overdue"] is None
    today = datetime.fromisoformat(get(city, "/rectifications", sup_a).json()["today"]).date()
    clock.advance(days=(datetime.fromisoformat(open_rect["callback_due"]).date() - today).days + 1)
    late = get(city, "/rectifications?state=all", sup_a).json()["rectifications"]
    assert late[0]["rating_id"] == mistaken["id"] and late[0]["overdue"] == "callback", "overdue first"
    assert metric(city, "tongban_rectifications_overdue", town=TOWN_A) == 1

    assert post(city, f"/ratings/{mistaken['id']}/appeal", head, {"reason": "x"}).status_code == 404, \
        "renshe's head does not see a minzheng rating"
    appeal = post(city, f"/ratings/{mistaken['id']}/appeal", head_mz, {"reason": "评价器误触，申请人当场说明"})
    assert appeal.status_code == 201 and appeal.json()["status"] == "pending", appeal.text
    assert post(city, f"/ratings/{mistaken['id']}/appeal", sup_a, {"reason": "again"}).status_code == 409
    assert post(city, f"/ratings/{first.json()['id']}/appeal", head, {"reason": "x"}).status_code == 409, \
        "a good rating is not appealed"
    other = post(city, f"/ratings/{bad['id']}/appeal", head, {"reason": "等待是因为听证程序"})
    assert other.status_code == 201, other.text
    pending = get(city, "/appeals", sup_city).json()["appeals"]
    assert [a["rating_id"] for a in pending] == [mistaken["id"], bad["id"]]
    assert post(city, f"/appeals/{other.json()['id']}/decision", sup_city,
                {"outcome": "rejected", "reason": "听证不计入等待时间，评价属实"}).json()["status"] == "rejected"
    assert get(city, f"/ratings/{bad['id']}", head).json()["void"] is False, "a rejected appeal leaves the rating"
    decision = {"outcome": "upheld", "reason": "核实为误触"}
    decided = post(city, f"/appeals/{appeal.json()['id']}/decision", sup_city, decision)
    assert decided.status_code == 200 and decided.json()["status"] == "upheld", decided.text
    assert post(city, f"/appeals/{appeal.json()['id']}/decision", sup_city, decision).status_code == 409
    voided = get(city, f"/ratings/{mistaken['id']}", head_mz).json()
    assert voided["void"] and voided["rectification_state"] == "closed" and voided["appeal_status"] == "upheld"
    closed = {x["rating_id"]: x for x in get(city, "/rectifications?state=closed", sup_a).json()["rectifications"]}
    assert closed[mistaken["id"]]["closed_reason"] == "appeal_upheld" and closed[bad["id"]]["closed_reason"] == \
        "follow_up"
    assert metric(city, "tongban_rectifications_overdue", town=TOWN_A) == 0


def test_complaints_accepted_assigned_resolved_and_one_overdue(any_city):
    city = any_city
    clock = ManualClock(datetime(2026, 12, 1, 2, 0, tzinfo=UTC))  # Tuesday 1 December, 10:00 in Shanghai
    city.start("evaluation", build={"clock": clock})
    desk = city.token("clerk", f"town:{TOWN_A}", "complaints-window")
    sup_a = city.token("supervisor", f"town:{TOWN_A}", "sup-a")
    sup_b = city.token("supervisor", f"town:{TOWN_B}", "sup-b")
    head = city.token("department_head", f"department:minzheng@{TOWN_A}", "head-minzheng")
    wang = city.token("approver", f"department:minzheng@{TOWN_A}", "wang")
    body = {"subject": "窗口态度", "text": "办理时被推诿", "town": TOWN_A, "channel": "window", "staff": "clerk-1",
            "case_number": f"{TOWN_A}-20261130-00001", "complainant": {"name": "李四", "phone": VALID_PHONE}}

    filed = post(city, "/complaints", desk, body, key="c-1")
    assert filed.status_code == 201, filed.text
    c = filed.json()
    assert c["number"].startswith(f"TS-{TOWN_A}-20261201-") and c["due"] == "2026-12-08" and c["status"] == "received"
    assert c["complainant"] == {"name": "李四", "phone": MASKED_PHONE}
    assert post(city, "/complaints", desk, body, key="c-1").json()["number"] == c["number"], "a resend: the same"
    bad_phone = {**body, "complainant": {"name": "李四", "phone": "12345"}}
    assert post(city, "/complaints", desk, bad_phone).status_code == 400
    assert post(city, "/complaints", city.token("clerk", f"town:{TOWN_B}"), body).status_code == 403
    assert post(city, f"/complaints/{c['number']}/resolve", sup_a, {"resolution": "x"}).status_code == 409

    assert get(city, f"/complaints/{c['number']}", sup_b).status_code == 404
    assert get(city, "/complaints", sup_b).json()["complaints"] == []
    assert get(city, f"/complaints/{c['number']}", head).status_code == 404, "not the department's yet"
    assert post(city, f"/complaints/{c['number']}/acknowledge", desk).json()["status"] == "acknowledged"
    assigned = post(city, f"/complaints/{c['number']}/assign", sup_a, {"to": "wang", "department": "minzheng"})
    assert assigned.status_code == 200 and assigned.json()["assigned_to"] == "wang", assigned.text
    seen = get(city, f"/complaints/{c['number']}", head).json()
    assert seen["department"] == "minzheng" and seen["complainant"] is None, "the department head: no complainant"
    clock.advance(days=1)
    resolved = post(city, f"/complaints/{c['number']}/resolve", wang, {"resolution": "已向申请人道歉并说明"})
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved", resolved.text
    assert resolved.json()["resolved_on_time"] is True and resolved.json()["overdue"] is False

    late = post(city, "/complaints", sup_a, {**body, "case_number": None, "channel": "hotline"})
    assert late.status_code == 201, late.text
    late = late.json()
    assert late["due"] == "2026-12-09"
    clock.advance(days=8)  # Thursday 10 December: past its due date, unresolved
    listed = get(city, "/complaints?status=all", sup_a).json()
    assert [x["number"] for x in listed["complaints"]] == [late["number"], c["number"]], "overdue first"
    assert listed["overdue"] == 1 and listed["complaints"][0]["overdue"] is True
    assert listed["complaints"][0]["complainant"]["phone"] == MASKED_PHONE
    assert VALID_PHONE not in get(city, "/complaints?status=all", sup_a).text
    assert [x["number"] for x in get(city, "/complaints?overdue=1", desk).json()["complaints"]] == [late["number"]]
    assert metric(city, "tongban_complaints_overdue", town=TOWN_A) == 1
