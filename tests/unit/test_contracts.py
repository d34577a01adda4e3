"""Message contracts: what is accepted, what is malformed, without a broker."""
from datetime import UTC, date, datetime

import pytest

from shared.contracts import MalformedMessage, decode, make_message

ACCEPTED = {
    "accepting_town": "320583101", "handling_town": "city", "item_code": "MZ-0001", "item_name": "老年人优待证办理",
    "department": "minzheng", "kind": "instant", "status": "in_review", "deadline": date(2026, 11, 24),
    "first_responder": "clerk-1",
}
NOTICE = {"accepting_town": "320583101", "notice_id": 3, "notice_kind": "acceptance", "title": "受理通知书",
          "sms_text": "【全城通办】…", "contact": {"name": "李四", "phone": "13912345678", "channel": "sms"}}


def test_round_trip_keeps_every_field():
    m = make_message("case.accepted", "320583101-20261124-00001", 1, ACCEPTED, producer="intake-a",
                     occurred_at=datetime(2026, 11, 24, 1, 2, 3, tzinfo=UTC))
    wire = m.to_wire()
    assert wire["payload"]["deadline"] == "2026-11-24" and wire["schema_version"] == 1
    back = decode(wire)
    assert back == m


def test_an_invalid_payload_never_leaves():
    with pytest.raises(ValueError, match="phone"):
        make_message("notice.issued", "n", 1, {**NOTICE, "contact": {"name": "x", "phone": "123"}}, "p")
    with pytest.raises(ValueError, match="kind"):
        make_message("case.accepted", "n", 1, {**ACCEPTED, "kind": "urgent"}, "p")
    with pytest.raises(ValueError, match="no contract"):
        make_message("case.exploded", "n", 1, {}, "p")


def _wire(**changes):
    wire = make_message("case.accepted", "320583101-20261124-00001", 1, ACCEPTED, "intake-a").to_wire()
    wire.update(changes)
    return wire


@pytest.mark.parametrize("body, reason", [
    ("a string", "JSON object"),
    ([1, 2], "JSON object"),
    (None, "JSON object"),
    ({}, "bad envelope"),
    (_wire(case_version="1"), "bad envelope"),
    (_wire(case_version=-1), "bad envelope"),
    (_wire(occurred_at="yesterday"), "bad envelope"),
    (_wire(message_id="x"), "bad envelope"),
    (_wire(type="case.unknown"), "unknown contract"),
    (_wire(schema_version=9), "unknown contract"),
    (_wire(payload={"accepting_town": "1"}), "bad case.accepted payload"),
])
def test_malformed_bodies_say_what_is_wrong(body, reason):
    with pytest.raises(MalformedMessage) as exc:
        decode(body)
    assert reason in exc.value.reason


def test_fields_a_newer_producer_added_are_ignored():
    message = decode(_wire(payload={**_wire()["payload"], "extra": 1}, envelope_extra="x"))
    assert "extra" not in message.payload and message.payload["item_code"] == ACCEPTED["item_code"]


def test_a_refusal_needs_a_reason():
    payload = {"accepting_town": "320583101", "handling_town": "320583101", "department": "renshe",
               "outcome": "refused", "reason": None, "result_number": None, "decided_by": "a", "work_item_id": 1}
    with pytest.raises(ValueError, match="reason"):
        make_message("case.decided", "n", 1, payload, "p")
    assert make_message("case.decided", "n", 1, {**payload, "reason": "材料不实"}, "p").payload["reason"] == "材料不实"
