"""`tongban status`'s rules over gathered facts (no broker): what needs a person, and what does not."""
import json

import pytest

from tongban import status_rules as rules
from tongban.status_cmd import StatusError, instance_urls, write_instances_file

P = "tongban"
OK_CHECKS = {"database": "ok", "broker": "ok", "outbox": "ok", "unroutable": "ok", "reference": "ok"}
IDLE_OUTBOX = {"backlog": 0, "oldest_unsent_seconds": 0.0, "unroutable": 0, "relay": "on"}


def healthy(name="intake-320583101", **outbox) -> rules.InstanceFacts:
    return rules.InstanceFacts(name, "http://x:8000", 200, dict(OK_CHECKS), {**IDLE_OUTBOX, **outbox})


def facts(instances=(), queues=(), warnings=(), **kw) -> rules.Facts:
    return rules.Facts(P, list(instances) or [healthy()], list(queues), None if warnings is None else list(warnings),
                       **kw)


def attention(report: rules.Report) -> dict[str, str]:
    return {line.subject: line.attention for line in report.lines if line.needs_person}


def test_a_healthy_idle_deployment_needs_nobody():
    report = rules.assess(facts(
        [healthy(), healthy("evaluation")],
        [rules.QueueFacts(f"{P}.approval-minzheng.work", rules.WORK, consumers=1, in_registry=True),
         rules.QueueFacts(f"{P}.approval-minzheng.work.dlq", rules.DEAD_LETTER),
         # a department nobody serves here: empty, no consumer, nothing to do
         rules.QueueFacts(f"{P}.approval-linye.work", rules.WORK, in_registry=True),
         rules.QueueFacts(f"{P}.retry-intake.1000ms", rules.RETRY),
         rules.QueueFacts(f"{P}.reference", rules.STREAM, ready=3)],
        [rules.WarningFacts("yellow", "320583101", "minzheng", 2)]))
    assert not report.needs_person, attention(report)
    assert report.as_dict()["needs_person"] is False
    (yellow,) = report.section("warnings")
    assert (yellow.subject, yellow.state, yellow.detail) == ("minzheng@320583101", "yellow", "2 open")


def test_messages_waiting_with_no_consumer_need_a_person_but_a_busy_queue_does_not():
    stopped = rules.QueueFacts(f"{P}.approval-minzheng.work", rules.WORK, ready=4, consumers=0)
    busy = rules.QueueFacts(f"{P}.approval-renshe.work", rules.WORK, ready=40, unacked=10, consumers=2)
    report = rules.assess(facts(queues=[stopped, busy]))
    assert report.needs_person
    assert "4 message(s) waiting and no consumer" in attention(report)[stopped.name]
    lines = {line.subject: line for line in report.section("queues")}
    assert lines[stopped.name].state == "no consumer"
    assert (lines[busy.name].state, lines[busy.name].needs_person) == ("busy", False)


def test_unacked_messages_alone_are_in_hand_not_stopped():
    # a consumer holding messages right now; the count of consumers is exact, the unacked lag
    q = rules.QueueFacts(f"{P}.notify.notices", rules.WORK, ready=0, unacked=3, consumers=1)
    assert not rules.assess(facts(queues=[q])).needs_person


def test_a_dead_letter_needs_a_person_and_says_how_to_look():
    dlq = rules.QueueFacts(f"{P}.evaluation.events.dlq", rules.DEAD_LETTER, ready=1)
    redelivered = rules.QueueFacts(f"{P}.broker.redelivered.dlq", rules.DEAD_LETTER, ready=2)
    report = rules.assess(facts(queues=[dlq, redelivered]))
    found = attention(report)
    assert "1 dead letter(s)" in found[dlq.name] and f"tongban dlq list {dlq.name}" in found[dlq.name]
    assert "2 dead letter(s)" in found[redelivered.name]
    assert {line.subject for line in report.section("dead_letters")} == {dlq.name, redelivered.name}


def test_waiting_retries_are_shown_not_alarmed():
    q = rules.QueueFacts(f"{P}.retry-approval.60000ms", rules.RETRY, ready=5)
    report = rules.assess(facts(queues=[q]))
    assert not report.needs_person
    assert report.section("queues")[0].state == "waiting to retry"


def test_the_reference_streams_records_are_no_backlog():
    q = rules.QueueFacts(f"{P}.reference", rules.STREAM, ready=4, consumers=0)
    report = rules.assess(facts(queues=[q]))
    assert not report.needs_person
    assert (report.section("queues")[0].state, report.section("queues")[0].detail) == ("stream", "4 record(s)")


def test_a_missing_registry_queue_needs_declaring():
    q = rules.QueueFacts(f"{P}.approval-linye.work", rules.WORK, present=False, in_registry=True)
    assert "tongban bus declare" in attention(rules.assess(facts(queues=[q])))[q.name]


def test_an_instance_that_does_not_answer_or_fails_a_check_needs_a_person():
    down = rules.InstanceFacts("approval-renshe", "http://x:8000", error="ConnectionError")
    degraded = rules.InstanceFacts("notify", "http://y:8000", 503, {**OK_CHECKS, "database": "error: gone"},
                                   dict(IDLE_OUTBOX))
    report = rules.assess(facts([down, degraded, healthy()]))
    found = attention(report)
    assert found["approval-renshe"] == "does not answer /health"
    assert "database (error: gone)" in found["notify"]
    assert "intake-320583101" not in found
    states = {line.subject: line.state for line in report.section("instances")}
    assert states == {"approval-renshe": "down", "notify": "degraded", "intake-320583101": "ok"}


@pytest.mark.parametrize("age, flagged", [(59.9, False), (60.0, False), (61.0, True)])
def test_an_outbox_older_than_the_limit_is_not_draining(age, flagged):
    report = rules.assess(facts([healthy(backlog=12, oldest_unsent_seconds=age)], outbox_max_age=60.0))
    assert report.needs_person is flagged
    if flagged:
        assert "outbox not draining: the oldest unsent message waits 61 s" in attention(report)["intake-320583101"]
    assert report.section("instances")[0].figures["backlog"] == 12


def test_unroutable_messages_in_an_outbox_need_a_person():
    report = rules.assess(facts([healthy(unroutable=3, backlog=3)]))
    assert "3 unroutable message(s)" in attention(report)["intake-320583101"]


def test_the_virtual_hosts_unroutable_figures_are_context_not_an_alarm():
    # shared by every deployment on the virtual host; this deployment's own wait in its outboxes (above)
    report = rules.assess(facts(broker_unroutable={"return_unroutable_total": 7, "return_unroutable_per_second": 0.0}))
    assert not report.needs_person
    (line,) = report.section("broker")
    assert line.detail == "returned 7 (0/s), dropped 0 (0/s)"


def test_red_warnings_need_a_person_yellow_ones_do_not():
    report = rules.assess(facts(warnings=[rules.WarningFacts("yellow", "320583101", "minzheng", 1),
                                          rules.WarningFacts("red", "city", "gongan", 2),
                                          rules.WarningFacts("red", "320583102", "renshe", 0)]))
    found = attention(report)
    assert found == {"gongan@city": "2 case(s) past their deadline (red 督办)"}
    assert [line.state for line in report.section("warnings")] == ["red", "yellow"]  # red first, zeros left out


def test_unknown_warnings_and_an_unreachable_broker_are_said_not_hidden():
    report = rules.assess(facts(warnings=None, broker_error="management API at http://127.0.0.1:15672: refused"))
    found = attention(report)
    assert "open deadline warnings unknown" in found["evaluation"]
    assert found["broker"] == ("the broker does not answer (management API at http://127.0.0.1:15672: refused): "
                               "queues and dead letters unknown")


def test_queue_kinds_by_name():
    assert rules.queue_kind(P, f"{P}.approval-minzheng.work") == rules.WORK
    assert rules.queue_kind(P, f"{P}.approval-minzheng.work.dlq") == rules.DEAD_LETTER
    assert rules.queue_kind(P, f"{P}.broker.redelivered.dlq") == rules.DEAD_LETTER
    assert rules.queue_kind(P, f"{P}.retry-notify.1000ms") == rules.RETRY
    assert rules.queue_kind(P, f"{P}.reference") == rules.STREAM
    assert rules.queue_kind(P, f"{P}.odd.queue.name") == rules.OTHER


def test_the_json_report_lists_what_needs_a_person():
    q = rules.QueueFacts(f"{P}.approval-minzheng.work", rules.WORK, ready=1)
    out = json.loads(json.dumps(rules.assess(facts(queues=[q])).as_dict(), ensure_ascii=False))
    assert out["needs_person"] is True and out["bus_prefix"] == P
    assert out["attention"] == [f"{q.name}: 1 message(s) waiting and no consumer: its instance is stopped or stuck"]
    (line,) = [x for x in out["lines"] if x["subject"] == q.name]
    assert line["needs_person"] is True and line["figures"]["ready"] == 1


# --- where the instance list comes from ---------------------------------------------------------------

def test_instances_come_from_the_flag_then_the_portals_upstreams_then_the_file_up_wrote(tmp_path):
    write_instances_file(tmp_path, {"portal": "http://127.0.0.1:8100", "agent": "http://127.0.0.1:8107"})
    env = {"TONGBAN_PORTAL_UPSTREAMS": '{"agent": "http://agent:8000"}', "TONGBAN_PORTAL_URL": "https://p.example"}
    assert instance_urls('{"notify": "http://n:8000"}', tmp_path, env) == ({"notify": "http://n:8000"}, "--instances")
    assert instance_urls(None, tmp_path, env) == (
        {"agent": "http://agent:8000", "portal": "https://p.example"}, "TONGBAN_PORTAL_UPSTREAMS")
    urls, source = instance_urls(None, tmp_path, {})
    assert urls == {"portal": "http://127.0.0.1:8100", "agent": "http://127.0.0.1:8107"}
    assert source.endswith("instances.json")


def test_no_instance_list_or_a_bad_one_is_a_clear_error(tmp_path):
    with pytest.raises(StatusError, match="which instances"):
        instance_urls(None, tmp_path, {})
    with pytest.raises(StatusError, match="JSON object of instance names to URLs"):
        instance_urls(None, tmp_path, {"TONGBAN_PORTAL_UPSTREAMS": '["http://a"]'})
    with pytest.raises(StatusError, match="cannot read"):
        instance_urls(str(tmp_path / "nope.json"), tmp_path, {})
