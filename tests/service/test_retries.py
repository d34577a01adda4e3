"""Retries that wait in the broker; a database blip costs nothing; what waiting cannot fix is dead-lettered
at once, with its reason; nothing published is lost for want of a queue."""
import sqlite3
import time
from datetime import date

import eventlet
import psycopg2

from shared.contracts import make_message, rk_decided, rk_routed
from tests.service.probe import build_probe
from tests.service.test_reliability import _metric
from tests.support import TOWN_A, TOWN_B, wait_for
from tongban import cli


def _probe_message(case_number: str):
    return make_message("case.updated", case_number, 1, {
        "accepting_town": TOWN_A, "action": "probe", "status": "in_review", "deadline": None}, producer="test")


def _start_probe(city, **kwargs):
    settings = city.base.with_(service="probe", instance="probe", http_port=city.layout[0].http_port)
    city.cluster.start(settings, service_cls=build_probe(settings, **kwargs))
    return f"{city.prefix}.probe.probe"


def _probe_metric(city, name, **labels) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    text = city.session.get(f"{city.layout[0].base_url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def _use_delays(city, delays):
    city.base = city.base.with_(retry_delays=delays)
    city.layout = [s.with_(retry_delays=delays) for s in city.layout]


def test_a_failed_message_waits_in_a_retry_queue_then_is_handled_once(city):
    _use_delays(city, (1.0, 2.0))
    handled, tries = [], []
    queue = _start_probe(city, handled=handled, poisoned=set(), failures={"P-1": 2}, tries=tries)
    city.publish(_probe_message("P-1"), "probe.x")
    # the wait happens in RabbitMQ: the message sits in the deployment's 1-second retry queue
    wait_for(lambda: city.queue_depth(f"{city.prefix}.retry-probe.1000ms") == 1, interval=0.05,
             what="the message parked in the 1 s retry queue")
    wait_for(lambda: handled == ["P-1"], what="handled after two waits")
    times = [t for _case, t in tries]
    assert len(times) == 3
    assert times[1] - times[0] >= 0.95, "the first retry waited about 1 s"
    assert times[2] - times[1] >= 1.9, "the second retry waited about 2 s"
    assert city.queue_depth(queue + ".dlq") == 0
    assert city.queue_depth(queue) == 0
    assert _probe_metric(city, "tongban_messages_settled_total", queue=queue, outcome="retry") == 2
    eventlet.sleep(0.5)
    assert handled == ["P-1"], "handled exactly once"


def test_what_waiting_cannot_fix_is_dead_lettered_at_once_with_its_reason(city, monkeypatch, capsys):
    handled, tries = [], []
    queue = _start_probe(city, handled=handled, poisoned=set(), tries=tries, refused={"P-9"})
    city.publish(_probe_message("P-9"), "probe.x")
    city.publish_raw(b"\x00\x01 not json", "probe.x")
    wait_for(lambda: city.queue_depth(queue + ".dlq") == 2, what="two dead letters")
    assert [c for c, _t in tries] == ["P-9"], "tried once, not retried"
    assert _probe_metric(city, "tongban_messages_settled_total", queue=queue, outcome="retry") == 0
    monkeypatch.setenv("TONGBAN_AMQP_URL", city.amqp_url)
    monkeypatch.setenv("TONGBAN_BUS_PREFIX", city.prefix)
    assert cli.main(["dlq", "list", queue + ".dlq"]) == 0
    out = capsys.readouterr().out
    assert "none of the probe's business" in out
    assert "undecodable body" in out


def _rename(city, instance: str, table: str, new: str):
    """Make a table disappear (or come back) under a running service: its database 'blips'."""
    url = city.settings(instance).db_url
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.split("///", 1)[1], timeout=30)
        conn.execute(f"ALTER TABLE {table} RENAME TO {new}")
        conn.commit()
        conn.close()
    else:
        conn = psycopg2.connect(url)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SET lock_timeout = '10s'")
            cur.execute(f"ALTER TABLE {table} RENAME TO {new}")
        conn.close()


def test_a_database_blip_is_waited_out_and_every_message_is_handled_once(any_city):
    city = any_city
    _use_delays(city, (0.3, 1.0, 3.0, 6.0))
    city.start("intake-320583102", "approval-renshe")
    wait_for(lambda: city.stats("approval-renshe")["received"] == 0, what="approval up")
    _rename(city, "approval-renshe", "work_items", "work_items_away")
    started = time.monotonic()
    numbers = []
    for _ in range(16):
        r = city.submit("RS-0001", TOWN_B)
        assert r.status_code == 201, r.text
        numbers.append(r.json()["case_number"])
    queue = city.queue("approval-renshe", "work")
    wait_for(lambda: _metric(city, "approval-renshe", "tongban_messages_settled_total", queue=queue,
                             outcome="retry") >= 16, what="every message sent to wait")
    eventlet.sleep(max(0.0, 3.0 - (time.monotonic() - started)))  # the database is away for 3 s
    _rename(city, "approval-renshe", "work_items_away", "work_items")

    wait_for(lambda: city.stats("approval-renshe")["received"] == 16, timeout=30, what="all 16 work items")
    token = city.approver("renshe", TOWN_B)
    items = city.call("GET", "approval-renshe", "/work-items?status=all", token).json()["items"]
    assert sorted(i["case_number"] for i in items) == sorted(numbers), "each case once"
    assert city.queue_depth(queue + ".dlq") == 0, "no dead letter"
    assert _metric(city, "approval-renshe", "tongban_messages_settled_total", queue=queue, outcome="dead") == 0
    eventlet.sleep(0.5)
    assert city.stats("approval-renshe")["received"] == 16, "and no second effect"


def test_a_decision_on_a_case_the_centre_does_not_hold_is_dead_lettered_with_the_reason(city, monkeypatch, capsys):
    city.start("intake-320583101")
    phantom = make_message("case.decided", f"{TOWN_A}-20260101-09999", 1, {
        "accepting_town": TOWN_A, "handling_town": TOWN_A, "department": "minzheng", "outcome": "approved",
        "reason": None, "result_number": "X-1", "decided_by": "someone", "work_item_id": 1}, producer="test")
    city.publish(phantom, rk_decided("minzheng", TOWN_A))
    dlq = city.queue("intake-320583101", "decisions") + ".dlq"
    wait_for(lambda: city.queue_depth(dlq) == 1, what="the phantom decision dead-lettered")
    monkeypatch.setenv("TONGBAN_AMQP_URL", city.amqp_url)
    monkeypatch.setenv("TONGBAN_BUS_PREFIX", city.prefix)
    assert cli.main(["dlq", "list", dlq]) == 0
    out = capsys.readouterr().out
    assert phantom.message_id in out and "does not hold" in out


def _routed(number: str, department: str, payload_department: str, accepting_town: str = TOWN_A):
    return make_message("case.routed", number, 1, {
        "accepting_town": accepting_town, "handling_town": accepting_town, "item_code": "RS-0001",
        "item_name": "测试", "department": payload_department, "kind": "promised", "deadline": date(2026, 12, 31),
        "auto_decide": False, "lead_department": payload_department, "departments": [payload_department]},
        producer="test")


def test_approval_never_acts_on_work_that_is_not_its_department(city):
    city.start("approval-renshe")
    work = f"{city.prefix}.work"
    dlq = city.queue("approval-renshe", "work") + ".dlq"
    # the routing key says renshe, the payload says minzheng: a phantom, not a work item
    city.publish_raw(_routed(f"{TOWN_A}-20261124-00001", "renshe", "minzheng").to_wire(),
                     rk_routed("renshe", TOWN_A), exchange_name=work)
    # a case number the accepting centre never gives
    city.publish_raw(_routed("X-1", "renshe", "renshe").to_wire(), rk_routed("renshe", TOWN_A), exchange_name=work)
    wait_for(lambda: city.queue_depth(dlq) == 2, what="both dead-lettered")
    assert city.stats("approval-renshe")["received"] == 0


def test_a_notice_published_before_notify_ever_ran_is_delivered_once_it_starts(city):
    # notify has never run on this bus: its queue exists only because the others declared the registry
    city.start("intake-320583101", "approval-minzheng", "evaluation")
    number = city.submit("MZ-0001", TOWN_A).json()["case_number"]
    wait_for(lambda: city.case(number)["status"] == "completed", what="case completed")
    wait_for(lambda: city.queue_depth(city.queue("notify", "notices")) >= 2, what="notices waiting for notify")
    city.start("notify")
    wait_for(lambda: city.stats("notify")["by_kind"] == {"acceptance": 1, "result": 1},
             what="both notices delivered")
    eventlet.sleep(0.5)
    assert city.stats("notify")["total"] == 2


def test_a_case_for_a_department_nobody_serves_is_accepted_and_flagged(city):
    # the layout of docker-compose.yml: two departments; a case for a third (林业) comes in
    city.start("intake-320583101", "approval-minzheng", "approval-renshe")
    wait_for(lambda: _metric(city, "intake-320583101", "tongban_department_served", department="minzheng") == 1,
             what="the window has looked at the departments' queues")
    materials = ["idcard", "ownership", "bank"]
    r = city.submit("LY-0002", TOWN_A, materials=materials)
    assert r.status_code == 201, r.text
    view = r.json()
    assert view["status"] == "in_review" and view["deadline"], "accepted, with its promised date"
    assert view["departments_not_served"] == ["linye"]
    assert "linye" in view["warning"]
    case = city.case(view["case_number"])
    assert case["departments_not_served"] == ["linye"]
    assert _metric(city, "intake-320583101", "tongban_cases_unserved_total", department="linye") == 1
    assert _metric(city, "intake-320583101", "tongban_department_served", department="linye") == 0
    # its work waits in linye's queue, declared by the registry though no linye instance ever ran
    wait_for(lambda: city.queue_depth(city.queue("approval-linye", "work")) == 1, what="the work waiting")
    # a case for a served department is not flagged
    served = city.submit("MZ-0001", TOWN_A).json()
    assert served["departments_not_served"] == [] and "warning" not in served


def test_a_message_whose_consumer_keeps_dying_is_dead_lettered_by_the_policy_not_dropped(city):
    from kombu import Connection, Queue

    city.ensure_users()  # the operator's declare: queues and the policy with the delivery limit
    queue = city.queue("notify", "notices")
    message = _probe_message(f"{TOWN_A}-20261125-00042")
    city.publish(message, "case.updated." + TOWN_A)
    redelivered = f"{city.prefix}.broker.redelivered.dlq"
    with Connection(city.amqp_url) as conn:
        for _ in range(city.delivery_limit + 1):  # a consumer that dies before it settles, again and again
            got = wait_for(lambda: Queue(queue, no_declare=True)(conn.default_channel).get(no_ack=False),
                           what="the message back in its queue")
            got.requeue()
    wait_for(lambda: city.queue_depth(redelivered) == 1, what="dead-lettered after the delivery limit")
    assert city.queue_depth(queue) == 0
