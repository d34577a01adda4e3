"""The read-scope rule (shared.auth.can_see_record) and what evaluation derives from a case's events.
No broker."""
from __future__ import annotations

from services.evaluation.domain import kept, reach
from shared.auth import Principal, Scope, can_see_record, town_of_case, visible_town

A, B = "320583101", "320583102"
CASE = f"{A}-20261125-00001"


def who(role: str, scope: str, subject: str = "someone") -> Principal:
    return Principal(subject=subject, role=role, scope=Scope.parse(scope), expires_at=2, issued_at=1)


def test_city_sees_all_a_town_its_own_a_department_its_office_an_agent_its_own():
    record = dict(towns=(A,), departments=(("renshe", A),), agent="agent-a")
    assert can_see_record(who("supervisor", "city"), **record)
    assert can_see_record(who("supervisor", f"town:{A}"), **record)
    assert not can_see_record(who("supervisor", f"town:{B}"), **record)
    assert can_see_record(who("approver", f"department:renshe@{A}"), **record)
    assert not can_see_record(who("approver", f"department:renshe@{B}"), **record)
    assert not can_see_record(who("approver", f"department:minzheng@{A}"), **record)
    assert not can_see_record(who("department_head", "department:renshe"), **record), "its level only"
    assert can_see_record(who("department_head", "department:renshe"), departments=(("renshe", None),))
    assert can_see_record(who("agent", f"village:{A}001", "agent-a"), **record)
    assert not can_see_record(who("agent", f"village:{A}002", "agent-c"), **record)
    assert not can_see_record(who("agent", f"village:{B}001", "agent-b"), towns=(B,))


def test_aggregates_are_the_city_s_or_one_town_s():
    assert visible_town(who("supervisor", "city")) == (True, None)
    assert visible_town(who("supervisor", f"town:{A}")) == (True, A)
    assert visible_town(who("supervisor", "department:renshe"))[0] is False
    assert visible_town(who("agent", f"village:{A}001"))[0] is False


def test_town_of_case():
    assert town_of_case(CASE) == A
    assert town_of_case("not-a-case") is None and town_of_case(None) is None


def test_reach_of_a_case_from_its_events():
    events = [("case.accepted", {"accepting_town": A, "handling_town": B, "via_agent": "agent-a"}),
              ("case.routed", {"accepting_town": A, "handling_town": B, "department": "renshe"}),
              ("case.routed", {"accepting_town": A, "handling_town": "city", "department": "zhujian"})]
    r = reach(CASE, events)
    assert r.towns == {A, B}
    assert r.departments == {("renshe", B), ("zhujian", None)}
    assert r.agent == "agent-a"
    assert reach(CASE, []).towns == {A}


def test_evaluation_keeps_no_contact_details_nor_notice_texts():
    assert kept({"notice_kind": "result", "sms_text": "张三您好", "contact": {"phone": "1"}}) == \
        {"notice_kind": "result"}
