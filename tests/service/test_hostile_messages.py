"""Hostile messages on every queue of a running city (issue 14): unreadable, wrong shape, unknown type and
version, oversized, unknown case, forged producer. No consumer dies, each is dead-lettered or ignored as the
bus rules say (DESIGN.md, shared/contracts.py), and valid messages keep flowing.

One city, every hostile message published at once and waited for together: the CI budget is a minute."""
from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime

import amqp
import pytest
from kombu import Connection, Exchange, Producer

from shared import busauth, registry
from shared.bus import consumer_counts
from shared.contracts import make_message
from shared.deadletters import peek
from tests.support import TOWN_A, TOWN_B, wait_for

PHANTOM = "09999"  # the serial of a case number no centre gave


def _phantom(town: str) -> str:
    return f"{town}-20260101-{PHANTOM}"


# --- one well-formed message per queue, for a case nobody holds ----------------------------------------
# (routing key, exchange, message) of a type the queue's consumer handles; town: the instance's town (intake),
# department: the instance's department (approval)

def _decided(town, dept):
    return "events", f"case.decided.minzheng.{town}", make_message("case.decided", _phantom(town), 1, {
        "accepting_town": town, "handling_town": town, "department": "minzheng", "outcome": "approved",
        "reason": None, "result_number": "X-1", "decided_by": "someone", "work_item_id": 1}, producer="test")


def _transfer(town, dept):
    other = TOWN_B if town == TOWN_A else TOWN_A
    return "events", f"case.transfer.{town}", make_message("case.transfer", _phantom(other), 1, {
        "accepting_town": other, "handling_town": town, "item_code": "MZ-0001", "item_name": "测试事项",
        "department": "minzheng", "kind": "instant", "status": "in_review", "deadline": None,
        "accepted_at": datetime.now(UTC), "first_responder": "clerk-1"}, producer="test")


def _routed(town, dept):
    return "work", f"case.routed.{dept}.{TOWN_A}", make_message("case.routed", _phantom(TOWN_A), 1, {
        "accepting_town": TOWN_A, "handling_town": TOWN_A, "item_code": "RS-0001", "item_name": "测试",
        "department": dept, "kind": "promised", "deadline": date(2026, 12, 31), "auto_decide": False,
        "lead_department": dept, "departments": [dept]}, producer="test")


def _completed(town, dept):
    return "events", f"case.completed.{TOWN_A}", make_message("case.completed", _phantom(TOWN_A), 3, {
        "accepting_town": TOWN_A, "department": dept or "minzheng", "item_name": "测试", "kind": "instant",
        "outcome": "approved", "completed_on": date(2026, 1, 2), "deadline": None, "on_time": True},
        producer="test")


def _step_refused(town, dept):
    return "events", f"case.step_refused.{dept}.{TOWN_A}", make_message("case.step_refused", _phantom(TOWN_A), 1, {
        "accepting_town": TOWN_A, "handling_town": TOWN_A, "department": dept, "work_item_id": 1,
        "step": "extend", "reason": "no", "days": 5}, producer="test")


def _deadline_moved(town, dept):
    return "events", f"case.deadline_moved.{dept}.{TOWN_A}", make_message(
        "case.deadline_moved", _phantom(TOWN_A), 2, {
            "accepting_town": TOWN_A, "handling_town": TOWN_A, "department": dept, "deadline": date(2026, 12, 31),
            "deadline_provisional": False, "paused_since": None, "action": "extend"}, producer="test")


def _updated(town, dept):
    return "events", f"case.updated.{TOWN_A}", make_message("case.updated", _phantom(TOWN_A), 2, {
        "accepting_town": TOWN_A, "action": "supplement", "status": "in_review", "deadline": None},
        producer="test")


def _escalation_decided(town, dept):
    return "events", f"escalation.decided.minzheng.{TOWN_A}", make_message(
        "escalation.decided", _phantom(TOWN_A), 1, {
            "accepting_town": TOWN_A, "handling_town": "city", "department": "minzheng", "outcome": "approved",
            "reason": None, "result_number": "X-1", "decided_by": "someone", "work_item_id": 1}, producer="test")


def _notice(town, dept):
    return "events", f"notice.issued.{TOWN_A}", make_message("notice.issued", _phantom(TOWN_A), 1, {
        "accepting_town": TOWN_A, "notice_id": 1, "notice_kind": "acceptance", "title": "受理通知书",
        "sms_text": "【全城通办】受理", "contact": {"name": "李四", "phone": "13912345678", "channel": "sms"}},
        producer="test")


SAMPLES = {("intake", "decisions"): _decided, ("intake", "arrivals"): _transfer, ("approval", "work"): _routed,
           ("approval", "closures"): _completed, ("approval", "refusals"): _step_refused,
           ("approval", "deadlines"): _deadline_moved, ("agent", "results"): _updated,
           ("agent", "escalations"): _escalation_decided, ("notify", "notices"): _notice,
           ("evaluation", "events"): _updated}


# what becomes of a well-formed message for a case the consumer does not know, by the bus rules: a dead letter
# at once with the reason ("dead", a fragment of it), or a handled outcome (the messages-handled metric).
# A transfer or routed work is the first word of a case there (the broker's permissions are what keep a
# forger from sending one: see the forged producer below). What may only have overtaken the message it
# follows on another queue (a notice its case.accepted, a deadline its routed work) waits through the
# retries, then is dead-lettered with its last error
UNKNOWN_CASE = {("intake", "decisions"): ("dead", "does not hold"), ("intake", "arrivals"): ("handled", "ok"),
                ("approval", "work"): ("handled", "ok"), ("approval", "closures"): ("handled", "not_ours"),
                ("approval", "refusals"): ("dead", "does not hold"),
                ("approval", "deadlines"): ("dead", "no work item of case"),
                ("agent", "results"): ("handled", "not_ours"),
                ("agent", "escalations"): ("dead", "which no town agent relayed"),
                ("notify", "notices"): ("dead", "heard of yet"), ("evaluation", "events"): ("handled", "ok")}


# --- the hostile kinds: (name, body from the sample's wire form, expected outcome or None: as UNKNOWN_CASE) ----

def _unreadable(wire: dict) -> bytes:
    return b"\xff\xfe\x00 not UTF-8, not JSON \xc3\x28"


def _wrong_shape(wire: dict) -> dict:
    return {"id": wire["message_id"], "kind": wire["type"], "data": wire["payload"]}


def _unknown_type(wire: dict) -> dict:
    return {**wire, "type": "case.exploded"}


def _unknown_version(wire: dict) -> dict:
    return {**wire, "schema_version": 99}


def _oversized(wire: dict) -> dict:
    """A megabyte where the contract bounds a field."""
    field = next(k for k in ("accepting_town", "department", "decided_by") if k in wire["payload"])
    return {**wire, "payload": {**wire["payload"], field: "3" * 1_000_000}}


def _padded(wire: dict) -> dict:
    """A megabyte of fields no contract knows: tolerant readers ignore them (DESIGN.md), so the message is
    what it is without them. The contracts bound every field, not the body."""
    return {**wire, "payload": {**wire["payload"], "padding": "x" * 1_000_000}}


HOSTILE = [
    ("unreadable", _unreadable, ("dead", "undecodable body")),
    ("wrong_shape", _wrong_shape, ("dead", "bad envelope")),
    ("unknown_type", _unknown_type, ("dead", "unknown contract case.exploded v1")),
    ("unknown_version", _unknown_version, ("dead", " v99")),
    ("oversized", _oversized, ("dead", "payload")),
    ("oversized_unknown_fields", _padded, None),
    ("unknown_case", lambda wire: wire, None),
]
MALFORMED = {kind for kind, _make, expected in HOSTILE if expected is not None}  # counted "malformed"


@dataclass
class Sent:
    queue: str
    instance: str
    kind: str
    message_id: str
    expected: tuple[str, str]  # ("dead", reason fragment) or ("handled", outcome)


def _publish(amqp_url: str, exchange: str, routing_key: str, body, message_id: str) -> None:
    with Connection(amqp_url, transport_options={"confirm_publish": True}) as conn:
        producer = Producer(conn.default_channel, exchange=Exchange(exchange, type="topic", durable=True))
        if not isinstance(body, bytes):
            body = json.dumps(body, ensure_ascii=False).encode()
        producer.publish(body, routing_key=routing_key, content_type="application/json", content_encoding="utf-8",
                         message_id=message_id, retry=False)


def _forger(type_: str, exchange: str, consumer: str) -> str:
    """A service kind the broker must not let publish `type_` on `exchange` (shared.busauth), nor put into the
    consumer's queues (a kind may requeue only into its own)."""
    return next(k for k in busauth.KINDS if type_ not in busauth.PUBLISHES[k].get(exchange, ()) and k != consumer)


def _handled(city, instance: str, queue: str) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    counts = {}
    for family in text_string_to_metric_families(city.call("GET", instance, "/metrics").text):
        for sample in family.samples:
            if sample.name == "tongban_messages_handled_total" and sample.labels.get("queue") == queue:
                counts[sample.labels["outcome"]] = sample.value
    return counts


def test_hostile_messages_on_every_queue_are_dead_lettered_or_ignored_and_valid_ones_flow(city):
    assert set(SAMPLES) == {(s.service, s.purpose) for s in registry.SUBSCRIPTIONS}, "a sample for every queue"
    assert set(UNKNOWN_CASE) == set(SAMPLES)
    city.start()
    towns = sorted(s.town for s in city.layout if s.service == "intake")
    specs = registry.deployment_queues(towns, city.departments)
    queues = [city.queue(s.instance, s.purpose) for s in specs]
    wait_for(lambda: all(consumer_counts(city.amqp_url, queues).values()), what="a consumer on every queue")

    sent: list[Sent] = []
    serial = 90000
    for spec, queue in zip(specs, queues, strict=True):
        instance = next(s for s in city.layout if s.instance == spec.instance)
        subscription = (instance.service, spec.purpose)
        exchange, routing_key, message = SAMPLES[subscription](instance.town, instance.department)
        for kind, make, expected in HOSTILE:
            serial += 1
            mid = uuid.uuid4().hex
            wire = message.to_wire()
            # each its own id and case: no message is another's duplicate or its case's later version
            wire.update(message_id=mid, case_number=f"{wire['case_number'][:9]}-20260101-{serial:05d}")
            # straight into this queue, by the requeue exchange (as a replay): the normal routing keys would
            # also copy it to evaluation's and other queues bound on them
            _publish(city.amqp_url, f"{city.prefix}.requeue", f"hostile.0.{queue}", make(wire), mid)
            sent.append(Sent(queue, spec.instance, kind, mid, expected or UNKNOWN_CASE[subscription]))

        # the forged producer: a kind that may not publish this type, by the real routing key and by the
        # requeue exchange's back door to the queue, claiming to be the rightful producer. RabbitMQ refuses both
        forger = _forger(message.type, exchange, instance.service)
        url = city.settings(next(s.instance for s in city.layout if s.service == forger)).service_amqp_url
        assert f"{city.prefix}-{forger}:" in url
        forged = {**message.to_wire(), "producer": spec.instance}
        for ex, rk in ((f"{city.prefix}.{exchange}", routing_key), (f"{city.prefix}.requeue", f"x.0.{queue}")):
            with pytest.raises(amqp.exceptions.AccessRefused):
                _publish(url, ex, rk, forged, forged["message_id"])

    def letters(queue: str) -> dict:
        return {d.message_id: d for d in peek(city.amqp_url, queue + ".dlq", limit=100)}

    def settled() -> bool:
        for queue in queues:
            dead = letters(queue)
            mine = [s for s in sent if s.queue == queue]
            want = Counter(s.expected[1] for s in mine if s.expected[0] == "handled")
            want["malformed"] = sum(1 for s in mine if s.kind in MALFORMED)
            got = _handled(city, mine[0].instance, queue)
            if any(s.message_id not in dead for s in mine if s.expected[0] == "dead"):
                return False
            if any(got.get(outcome, 0) < n for outcome, n in want.items()):
                return False
        return True

    wait_for(settled, timeout=30, interval=0.5, what="every hostile message dead-lettered or handled")

    for queue in queues:
        dead = letters(queue)
        mine = [s for s in sent if s.queue == queue]
        for s in mine:
            if s.expected[0] == "dead":
                assert s.expected[1] in (dead[s.message_id].reason or ""), (queue, s.kind, dead[s.message_id])
                assert dead[s.message_id].failed_queue == queue
            else:
                assert s.message_id not in dead, (queue, s.kind, dead[s.message_id].reason)
        assert len(dead) == sum(1 for s in mine if s.expected[0] == "dead"), f"{queue}: nothing else dead-lettered"
        # exactly these outcomes, nothing else (a forged message was never delivered)
        want = Counter(s.expected[1] for s in mine if s.expected[0] == "handled")
        want["malformed"] = sum(1 for s in mine if s.kind in MALFORMED)
        got = _handled(city, mine[0].instance, queue)
        for outcome, n in want.items():
            assert got.get(outcome) == n, (queue, outcome, got)

    # no consumer died: every queue keeps its consumer, every instance is healthy
    assert all(consumer_counts(city.amqp_url, queues).values()), consumer_counts(city.amqp_url, queues)
    for instance in {s.instance for s in sent}:
        assert city.call("GET", instance, "/health").json()["status"] == "ok", instance

    # and valid messages keep flowing: a real case end to end
    number = city.submit("MZ-0001", TOWN_A).json()["case_number"]
    wait_for(lambda: city.case(number)["status"] == "completed", what="the real case completed")
    wait_for(lambda: city.stats("notify")["by_kind"].get("result") == 1, what="its result notice sent")
