"""Nothing lost: crash between commit and publish, duplicates, poison messages, malformed bodies."""
import io
import logging

import eventlet

from shared.contracts import make_message, rk_accepted, rk_decided, rk_notice_issued
from shared.logging import configure_logging
from tests.service.probe import build_probe
from tests.service.test_notify_once import case_accepted
from tests.support import TOWN_A, TOWN_B, VALID_ID, wait_for
from tongban import cli


def _metric(city, instance, name, **labels) -> float:
    """One sample from an instance's /metrics, by name and labels (0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(city.call("GET", instance, "/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def test_crash_between_commit_and_publish_loses_nothing(city):
    city.start("approval-minzheng", "approval-renshe", "notify", "evaluation", "agent", "intake-320583102")
    # the window commits the case, but its relay never runs: the process dies before publishing
    city.start("intake-320583101", extra={"relay": False})
    r = city.submit("MZ-0001", TOWN_A)
    assert r.status_code == 201
    number = r.json()["case_number"]
    eventlet.sleep(1.0)
    assert city.stats("approval-minzheng")["received"] == 0, "nothing was published yet"
    assert _metric(city, "intake-320583101", "tongban_outbox_backlog") == 0.0  # gauge is set by the relay only
    city.stop("intake-320583101", kill=True)

    city.start("intake-320583101")  # restarted: the relay finds the committed messages
    done = wait_for(lambda: (c := city.case(number))["status"] == "completed" and c, what="case completed")
    assert done["outcome"] == "approved"
    assert city.stats("approval-minzheng")["received"] == 1, "published once, not twice"
    wait_for(lambda: _metric(city, "intake-320583101", "tongban_outbox_backlog") == 0.0, what="empty outbox")


def test_duplicated_and_stale_decisions_have_no_second_effect(any_city):
    city = any_city
    city.start()
    number = city.submit("RS-0001", TOWN_B).json()["case_number"]
    wait_for(lambda: city.stats("approval-renshe")["received"] == 1, what="work item")
    decision = make_message("case.decided", number, 1, {
        "accepting_town": TOWN_B, "handling_town": TOWN_B, "department": "renshe", "outcome": "approved",
        "reason": None, "result_number": "RS-2026-001", "decided_by": "approver-1", "work_item_id": 1},
        producer="test")
    city.publish(decision, rk_decided("renshe", TOWN_B))
    city.publish(decision, rk_decided("renshe", TOWN_B))  # the broker may deliver twice; so may we
    wait_for(lambda: city.case(number, TOWN_B)["status"] == "completed", what="completed")
    wait_for(lambda: _metric(city, "intake-320583102", "tongban_messages_handled_total",
                             queue=city.queue("intake-320583102", "decisions"), outcome="duplicate") == 1,
             what="the duplicate recognised")

    later = make_message("case.decided", number, 1, {  # a second decision on the old version of the case
        "accepting_town": TOWN_B, "handling_town": TOWN_B, "department": "renshe", "outcome": "refused",
        "reason": "迟到的决定", "result_number": None, "decided_by": "approver-2", "work_item_id": 1},
        producer="test")
    city.publish(later, rk_decided("renshe", TOWN_B))
    wait_for(lambda: _metric(city, "intake-320583102", "tongban_messages_handled_total",
                             queue=city.queue("intake-320583102", "decisions"), outcome="stale") == 1,
             what="the stale decision recognised")
    case = city.case(number, TOWN_B)
    assert case["outcome"] == "approved" and case["result_number"] == "RS-2026-001"
    # the same department again (one work item is decided once): nothing on the timeline, nothing counted
    assert [h["action"] for h in case["history"]] == ["accept", "decide"]
    assert city.stats("intake-320583102")["late_decisions"] == 0
    wait_for(lambda: city.stats("notify")["by_kind"].get("result") == 1, what="one result notice")
    eventlet.sleep(0.5)
    assert city.stats("notify")["by_kind"] == {"promise": 1, "result": 1}, "no second result notice"


def _notice(number: str, phone: str = "13912345678"):
    return make_message("notice.issued", number, 1, {
        "accepting_town": TOWN_A, "notice_id": 1, "notice_kind": "acceptance", "title": "受理通知书",
        "sms_text": f"【全城通办】受理号{number}", "contact": {"name": "李四", "phone": phone, "channel": "sms"}},
        producer="test")


def _probe(case_number: str):
    return make_message("case.updated", case_number, 1, {
        "accepting_town": TOWN_A, "action": "probe", "status": "in_review", "deadline": None}, producer="test")


def test_failing_handler_dead_letters_after_the_limit_and_replay_puts_it_back(city, monkeypatch, capsys):
    handled, poisoned = [], {"P-1"}
    settings = city.base.with_(service="probe", instance="probe", http_port=city.layout[0].http_port)
    city.cluster.start(settings, service_cls=build_probe(settings, handled, poisoned))
    queue = f"{city.prefix}.probe.probe"
    dlq = queue + ".dlq"
    city.publish(_probe("P-1"), "probe.x")  # its handler raises every time
    wait_for(lambda: city.queue_depth(dlq) == 1, what="dead letter after the delivery limit")
    assert handled == []

    city.publish(_probe("P-2"), "probe.x")  # the consumer is alive: later messages flow
    wait_for(lambda: handled == ["P-2"], what="later message handled")

    poisoned.clear()  # the operator fixes the cause, then replays the dead letter
    monkeypatch.setenv("TONGBAN_AMQP_URL", city.amqp_url)
    monkeypatch.setenv("TONGBAN_BUS_PREFIX", city.prefix)
    assert cli.main(["dlq", "list"]) == 0
    listing = capsys.readouterr().out
    assert (f"{dlq}: 1 message(s)" in listing and "P-1" in listing and "failed 4 times" in listing
            and "cannot handle P-1" in listing)
    assert cli.main(["dlq", "replay", dlq]) == 0
    assert "replayed 1 message(s)" in capsys.readouterr().out
    wait_for(lambda: handled == ["P-2", "P-1"], what="replayed message handled")
    assert city.queue_depth(dlq) == 0
    assert city.queue_depth(queue) == 0


def test_malformed_messages_are_dead_lettered_at_once_and_the_consumer_goes_on(city):
    city.start("notify")
    queue = city.queue("notify", "notices")
    rk = rk_notice_issued(TOWN_A)
    city.publish_raw(b"{not json", rk)
    city.publish_raw({"type": "notice.issued", "payload": {}}, rk)  # no envelope
    bad_payload = _notice("320583101-20261124-00002").to_wire()
    bad_payload["payload"]["contact"]["phone"] = "12345"
    city.publish_raw(bad_payload, rk)
    city.publish_raw(["a", "list"], rk)
    city.publish(case_accepted("320583101-20261124-00003"), rk_accepted(TOWN_A))  # notify heard of the case
    city.publish(_notice("320583101-20261124-00003"), rk)
    wait_for(lambda: city.stats("notify")["total"] == 1, what="the good message handled")
    wait_for(lambda: city.queue_depth(queue + ".dlq") == 4, what="four dead letters")
    assert _metric(city, "notify", "tongban_messages_handled_total", queue=queue, outcome="malformed") == 4
    assert city.call("GET", "notify", "/health").status_code == 200


def test_no_unmasked_id_or_phone_number_reaches_the_logs(city):
    buffer = io.StringIO()
    configure_logging("INFO", stream=buffer)
    try:
        city.start()
        number = city.submit("MZ-0001", TOWN_A).json()["case_number"]
        wait_for(lambda: city.stats("notify")["by_kind"].get("result") == 1, what="result notice")
        # the ID also travels in a URL, which the web server's access log writes
        city.call("GET", "intake-320583101", f"/cases?item_code={VALID_ID}&q=13812345678",
                  city.token("clerk", f"town:{TOWN_A}"))
        city.submit("MZ-0001", TOWN_A, id_number="110105194912310021")  # invalid check digit
        eventlet.sleep(0.3)
    finally:
        logging.getLogger().handlers[:] = [h for h in logging.getLogger().handlers if not getattr(h, "_tongban", 0)]
    out = buffer.getvalue()
    assert number in out, "the case number is logged"
    assert "110105********002X" in out, "the ID-number was logged, masked"
    assert "138****5678" in out, "the phone number was logged, masked"
    assert VALID_ID not in out and "13812345678" not in out and "110105194912310021" not in out
