"""Contracts that evolve: a consumer not yet upgraded reads a newer producer's message (rolling deploy),
and what the contract lets through fits every column."""
import copy
import uuid

import pytest

from shared.contracts import MalformedMessage, decode, make_message, rk_decided
from tests.service.test_reliability import _metric
from tests.support import TOWN_B, wait_for

NOTICE = {"accepting_town": "320583101", "notice_id": 3, "notice_kind": "acceptance", "title": "受理通知书",
          "sms_text": "【全城通办】…", "contact": {"name": "李四", "phone": "13912345678", "channel": "sms"}}


def _decision(number: str) -> dict:
    return make_message("case.decided", number, 1, {
        "accepting_town": TOWN_B, "handling_town": TOWN_B, "department": "renshe", "outcome": "approved",
        "reason": None, "result_number": "RS-2026-077", "decided_by": "approver-1", "work_item_id": 1},
        producer="approval-renshe-v2").to_wire()


def test_an_older_consumer_completes_a_case_on_a_decision_with_fields_it_does_not_know(any_city):
    city = any_city
    city.start()
    number = city.submit("RS-0001", TOWN_B).json()["case_number"]
    wait_for(lambda: city.stats("approval-renshe")["received"] == 1, what="work item")

    wire = _decision(number)  # as a newer approval would send it: one optional field more, here and there
    wire["payload"]["signature_method"] = "sm2"
    wire["trace_id"] = "4bf92f3577b34da6a3ce929d0e0e4736"
    city.publish_raw(wire, rk_decided("renshe", TOWN_B), message_id=wire["message_id"])

    done = wait_for(lambda: (c := city.case(number, TOWN_B))["status"] == "completed" and c, what="completed")
    assert done["outcome"] == "approved" and done["result_number"] == "RS-2026-077"
    queue = city.queue("intake-320583102", "decisions")
    assert _metric(city, "intake-320583102", "tongban_messages_handled_total", queue=queue, outcome="ok") == 1
    assert _metric(city, "intake-320583102", "tongban_messages_handled_total", queue=queue, outcome="malformed") == 0
    assert city.queue_depth(queue + ".dlq") == 0, "nothing dead-lettered"


# --- the same rules without a broker ------------------------------------------------------------------

def test_unknown_fields_are_ignored_in_the_envelope_the_payload_and_nested_schemas():
    wire = make_message("notice.issued", "320583101-20261124-00001", 1, NOTICE, "intake-a").to_wire()
    newer = copy.deepcopy(wire)
    newer["trace_id"] = "abc"
    newer["payload"]["template"] = "v2"
    newer["payload"]["contact"]["preferred_hours"] = "9-17"
    assert decode(newer) == decode(wire)

    action = make_message("case.department", "320583101-20261124-00001", 2, {
        "accepting_town": "320583101", "handling_town": "320583101", "department": "renshe", "work_item_id": 1,
        "action": "request_materials", "by": "approver-1", "reason": "缺件",
        "materials": [{"code": "lease", "name": "租赁合同"}]}, "approval-renshe").to_wire()
    action["payload"]["materials"][0]["copies"] = 2
    assert decode(action).payload["materials"] == [{"code": "lease", "name": "租赁合同"}]


def test_a_known_field_is_still_checked_and_an_unknown_version_is_malformed():
    wire = _decision("320583102-20261124-00001")
    bad = copy.deepcopy(wire)
    bad["payload"]["outcome"] = "maybe"
    with pytest.raises(MalformedMessage, match="bad case.decided payload"):
        decode(bad)
    with pytest.raises(MalformedMessage, match="unknown contract case.decided v2"):
        decode({**wire, "schema_version": 2})


def test_a_case_number_longer_than_the_columns_is_malformed():
    wire = _decision("320583102-20261124-00001")
    too_long = "3" * 50  # passed the old contract (64), fails every String(40) case_number column
    with pytest.raises(MalformedMessage, match="bad envelope") as exc:
        decode({**wire, "case_number": too_long, "message_id": uuid.uuid4().hex})
    assert "case_number" in exc.value.details
    assert decode({**wire, "case_number": "3" * 40}).case_number == "3" * 40
    with pytest.raises(ValueError, match="envelope invalid"):  # and a producer cannot send one
        make_message("notice.issued", too_long, 1, NOTICE, "intake-a")


@pytest.mark.parametrize("path, value", [
    (("payload", "reason"), "很" * 501),
    (("payload", "decided_by"), "a" * 65),
    (("payload", "result_number"), "R" * 101),
    (("payload", "handling_town"), "3" * 10),
])
def test_strings_longer_than_their_columns_are_malformed(path, value):
    wire = _decision("320583102-20261124-00001")
    wire["payload"]["outcome"] = "refused"
    wire["payload"]["reason"] = "材料不实"
    wire[path[0]][path[1]] = value
    with pytest.raises(MalformedMessage, match="bad case.decided payload"):
        decode(wire)
