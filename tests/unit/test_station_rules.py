"""The village station's rules (services/agent/domain.py), against the sample catalogue: no broker."""
from datetime import UTC, date, datetime, timedelta

import pytest

from services.agent import domain
from services.agent.domain import ServiceStatus
from shared.catalog import load_catalog
from shared.errors import NotAllowedNow, RuleViolation

CATALOG = load_catalog()


def item(code: str) -> dict:
    return CATALOG.item(code)


def test_an_item_needing_the_applicant_in_person_is_refused_with_the_reason():
    h = domain.handle_submission(item("MZ-0006"), ["idcard"])
    assert h.status == ServiceStatus.REFUSED and not h.relays
    assert h.reason == "结婚登记须申请人本人到场办理，不能代办"
    assert domain.handle_submission(item("MZ-0007"), []).status == ServiceStatus.REFUSED  # 离婚登记


def test_an_item_agents_may_not_submit_is_refused():
    h = domain.handle_submission(item("DJ-0001"), ["letter"])  # 党员组织关系转接: agent_allowed false
    assert h.status == ServiceStatus.REFUSED
    assert "不在代办员可代办的事项之列" in h.reason and "镇（街道）便民服务中心" in h.reason


def test_a_village_level_item_is_done_at_the_station():
    h = domain.handle_submission(item("DJ-0006"), ["idcard"])
    assert h.status == ServiceStatus.DONE and h.solution.startswith("在村（社区）便民服务站当场办结")
    assert domain.handle_submission(item("DJ-0006"), [], solution="开具证明一份").solution == "开具证明一份"


def test_a_consultation_is_answered_at_the_station():
    h = domain.handle_submission(item("MZ-0012"), [])
    assert h.status == ServiceStatus.DONE and "需携带" in h.solution


def test_everything_else_is_relayed():
    for code in ("RS-0001", "MZ-0001", "MZ-0003"):  # promised, instant, escalated
        assert domain.handle_submission(item(code), ["idcard"]).relays, code


def test_no_fee_beyond_the_statutory_one():
    with pytest.raises(RuleViolation) as exc:
        domain.handle_submission(item("RS-0001"), [], fee_fen=1)
    assert exc.value.details == {"fee_fen": ["at most 0"]}
    with_fee = {**item("RS-0001"), "fee_fen": 2000}
    assert domain.handle_submission(with_fee, [], fee_fen=2000).relays
    with pytest.raises(RuleViolation):
        domain.handle_submission(with_fee, [], fee_fen=2001)
    with pytest.raises(RuleViolation):  # even for an item the station refuses: the fee is checked first
        domain.handle_submission(item("MZ-0006"), [], fee_fen=500)


def test_unknown_materials_are_the_agents_mistake():
    with pytest.raises(RuleViolation) as exc:
        domain.handle_submission(item("RS-0001"), ["idcard", "zz"])
    assert exc.value.details == {"materials": ["zz"]}


def test_record_numbers_are_readable_and_fit_the_column():
    n = domain.record_number("320583101001", date(2026, 11, 24), 7)
    assert n == "V320583101001-20261124-0007" and len(n) <= 40


def test_the_case_is_followed_by_version_and_status():
    assert not domain.is_stale(None, 1) and not domain.is_stale(3, 3) and domain.is_stale(3, 2)
    assert domain.status_for_case("in_review") == ServiceStatus.ACCEPTED
    assert domain.status_for_case("pending_materials") == ServiceStatus.ACCEPTED
    assert domain.status_for_case("completed", outcome_heard=True) == ServiceStatus.COMPLETED
    assert domain.status_for_case("completed") == ServiceStatus.ACCEPTED, "until case.completed brings the outcome"
    assert domain.status_for_case("returned") == ServiceStatus.REJECTED


def test_a_reply_is_by_phone_or_visit_once_and_not_in_the_future():
    now = datetime(2026, 11, 24, 8, tzinfo=UTC)
    domain.check_reply("to_reply", "phone", now, now)
    domain.check_reply("to_reply", "visit", now - timedelta(days=1), now)
    with pytest.raises(RuleViolation):
        domain.check_reply("to_reply", "letter", now, now)
    with pytest.raises(RuleViolation):
        domain.check_reply("to_reply", "phone", now + timedelta(minutes=1), now)
    with pytest.raises(NotAllowedNow):
        domain.check_reply("replied", "phone", now, now)
    assert domain.same_reply({"method": "phone", "what_said": "已办结"}, "phone", "已办结")
    assert not domain.same_reply({"method": "phone", "what_said": "已办结"}, "visit", "已办结")


def test_who_may_reply():
    v = "320583101001"
    assert domain.may_reply("agent-a", v, "agent-a", v)
    assert domain.may_reply("agent-b", v, "agent-a", v), "a colleague of the same station stands in"
    assert not domain.may_reply("agent-c", "320583101002", "agent-a", v)
    assert not domain.may_reply("agent-c", "320583101002", "agent-a", None)
