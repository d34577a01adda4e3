"""Notices reach people through real servers: our SMS gateway and a local SMTP server (tongban/local_outlets),
through the real broker; a failing gateway is retried, then dead-lettered and the next channel used."""
import json

import eventlet
import pytest

from shared.contracts import make_message, rk_accepted, rk_notice_issued
from tests.service.test_notify_once import case_accepted, deliveries, metric
from tests.support import TOWN_A, VALID_ID, wait_for
from tongban.local_outlets import LocalOutlets

EMAIL = "zhangsan@example.com"


@pytest.fixture
def outlets(tmp_path):
    o = LocalOutlets(tmp_path / "outlets").start()
    yield o
    o.stop()


def start(city, outlets, *instances):
    city.start(*instances, "notify", extra=outlets.notify_extra())


def submit(city, **applicant):
    body = {"item_code": "MZ-0001", "materials": ["idcard", "photo"],
            "applicant": {"name": "张三", "id_number": VALID_ID, "phone": "13812345678", **applicant}}
    r = city.call("POST", f"intake-{TOWN_A}", "/cases", city.token("clerk", f"town:{TOWN_A}", "clerk-1"), body)
    assert r.status_code == 201, r.text
    return r.json()["case_number"]


def settled(city, number, count):
    return wait_for(lambda: len(d := [x for x in deliveries(city, number)
                                      if x["status"] in ("sent", "dead_lettered")]) == count and d,
                    timeout=30, what=f"{count} deliveries settled for {number}")


def test_sms_and_email_with_the_pdf_reach_their_servers_for_a_decided_case(city, outlets):
    start(city, outlets, f"intake-{TOWN_A}", "approval-minzheng")
    by_sms, by_mail = submit(city), submit(city, channel="email", email=EMAIL)

    sms = wait_for(lambda: len(m := [x for x in outlets.sms() if by_sms in x["text"]]) == 2 and m,
                   what="acceptance and result by SMS")
    assert all(m["text"].startswith("【全城通办】") and m["phone"] == "138****5678" for m in sms)
    assert all(m["segments"] >= 1 and m["encoding"] == "ucs2" for m in sms)
    logged = settled(city, by_sms, 2)
    assert {d["notice_kind"] for d in logged} == {"acceptance", "result"}
    assert all(d["channel"] == "sms" and d["recipient"] == "138****5678" and d["segments"] >= 1 for d in logged)
    assert {d["id"] for d in logged} == {int(m["idempotency_key"]) for m in sms}, "the delivery id is the key"

    mails = wait_for(lambda: len(m := [x for x in outlets.mail() if by_mail in x["Subject"]]) == 2 and m,
                     timeout=30, what="acceptance and result by e-mail")
    for mail in mails:
        assert mail["To"] == EMAIL
        [pdf] = [p for p in mail.iter_attachments() if p.get_content_type() == "application/pdf"]
        assert pdf.get_content().startswith(b"%PDF"), "the notice's PDF is attached"
        assert "张三" in mail.get_body(("plain",)).get_content()
    logged = settled(city, by_mail, 2)
    assert all(d["channel"] == "email" and d["recipient"] == "z***@example.com" for d in logged)
    assert not [m for m in outlets.sms() if by_mail in m["text"]], "nothing by SMS for the e-mail applicant"
    # the address is kept by notify alone: the centre's record of the case does not have it
    assert EMAIL not in json.dumps(city.case(by_mail), ensure_ascii=False)
    assert metric(city, "notify", "tongban_notify_deliveries_total", channel="email", outcome="sent") == 2
    assert metric(city, "notify", "tongban_notify_sms_segments_total", notice_kind="result") >= 1


def notice(number, notice_id=1, email=None):
    contact = {"name": "李四", "phone": "13912345678", "channel": "sms", **({"email": email} if email else {})}
    return make_message("notice.issued", number, 1, {
        "accepting_town": TOWN_A, "notice_id": notice_id, "notice_kind": "acceptance", "title": "受理通知书",
        "sms_text": f"【全城通办】受理号{number}", "contact": contact}, producer="test")


def test_a_gateway_that_fails_twice_then_succeeds_sends_one_sms(city, outlets):
    outlets.fail_sms(next_n=2)
    start(city, outlets)
    number = f"{TOWN_A}-20261124-00011"
    city.publish(case_accepted(number), rk_accepted(TOWN_A))
    city.publish(notice(number), rk_notice_issued(TOWN_A))
    [d] = settled(city, number, 1)
    assert d["status"] == "sent" and d["attempts"] == 3 and d["channel"] == "sms"
    assert [m["idempotency_key"] for m in outlets.sms()] == [str(d["id"])], "one SMS received"
    assert outlets.sms_attempts() == 3
    assert metric(city, "notify", "tongban_notify_deliveries_total", channel="sms", outcome="failed") == 2


def test_a_gateway_that_always_fails_is_dead_lettered_and_the_next_channel_used(city, outlets):
    outlets.fail_sms(always=True)
    start(city, outlets, f"intake-{TOWN_A}", "approval-minzheng")
    number = submit(city, email=EMAIL)  # chose SMS; gave an address too
    logged = settled(city, number, 4)  # acceptance and result: each dead on SMS, then sent by e-mail
    dead = [d for d in logged if d["status"] == "dead_lettered"]
    sent = [d for d in logged if d["status"] == "sent"]
    assert len(dead) == 2 and all(d["channel"] == "sms" for d in dead)
    assert all(d["attempts"] == 4 and "503" in d["dead_letter_reason"] for d in dead), "every retry, then dead"
    assert sorted(d["fallback_of"] for d in sent) == sorted(d["id"] for d in dead)
    assert all(d["channel"] == "email" for d in sent)
    wait_for(lambda: len([m for m in outlets.mail() if number in m["Subject"]]) == 2, what="both by e-mail")
    assert outlets.sms() == []
    wait_for(lambda: city.queue_depth(city.queue("notify", "notices") + ".dlq") == 2, what="two dead letters")
    assert metric(city, "notify", "tongban_notify_deliveries_total", channel="sms", outcome="dead_lettered") == 2


def test_without_another_channel_the_notice_waits_at_the_window(city, outlets):
    outlets.fail_sms(always=True)
    start(city, outlets)
    number = f"{TOWN_A}-20261124-00012"
    city.publish(case_accepted(number), rk_accepted(TOWN_A))
    city.publish(notice(number), rk_notice_issued(TOWN_A))  # no e-mail address
    logged = settled(city, number, 2)
    assert [(d["channel"], d["status"]) for d in logged] == [("sms", "dead_lettered"), ("pickup", "sent")]
    assert logged[1]["channel_status"] == "held at window"


def test_a_duplicated_event_sends_nothing_twice(city, outlets):
    start(city, outlets)
    number = f"{TOWN_A}-20261124-00013"
    city.publish(case_accepted(number), rk_accepted(TOWN_A))
    issued = notice(number)
    for message in (issued, issued, notice(number)):  # the same message twice, the same notice once more
        city.publish(message, rk_notice_issued(TOWN_A))
    [d] = settled(city, number, 1)
    eventlet.sleep(1.5)  # any copy on its way back from a retry
    assert [m["idempotency_key"] for m in outlets.sms()] == [str(d["id"])]
    assert len(deliveries(city, number)) == 1
