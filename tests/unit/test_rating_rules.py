"""好差评 and 有诉即办 rules: who may rate when, due dates in working days, the states. No broker."""
from datetime import UTC, date, datetime, timedelta

import pytest

from services.evaluation import rating_rules as rules
from services.evaluation.rating_rules import AppealStatus, ComplaintStatus, RectState
from shared.errors import NotAllowedNow, NotPermitted, RuleViolation
from shared.workdays import WorkingCalendar

CAL = WorkingCalendar()


def test_levels_four_and_five_are_bad():
    assert [lvl for lvl in rules.LEVELS if rules.is_bad(lvl)] == [4, 5]
    assert rules.LEVELS[1] == "非常满意" and rules.LEVELS[5] == "非常不满意"


def test_an_instant_case_is_rated_once_whatever_the_stage():
    slot = rules.check_rating("instant", "completed", "acceptance", set())
    assert slot == rules.ONCE
    with pytest.raises(NotAllowedNow, match="rated once"):
        rules.check_rating("instant", "completed", "completion", {slot})


@pytest.mark.parametrize("kind", ["promised", "joint", "escalated", "review"])
def test_a_promised_case_is_rated_once_at_acceptance_and_once_at_completion(kind):
    assert rules.check_rating(kind, "in_review", "acceptance", set()) == "acceptance"
    with pytest.raises(NotAllowedNow, match="already"):
        rules.check_rating(kind, "in_review", "acceptance", {"acceptance"})
    assert rules.check_rating(kind, "completed", "completion", {"acceptance"}) == "completion"
    with pytest.raises(NotAllowedNow):
        rules.check_rating(kind, "completed", "completion", {"acceptance", "completion"})


def test_a_rating_at_completion_waits_for_the_completion():
    for status in ("in_review", "paused", "pending_materials", "returned"):
        with pytest.raises(NotAllowedNow, match="completed"):
            rules.check_rating("promised", status, "completion", set())


def test_who_records_a_rating():
    rules.check_rater("service", "qr_code")
    rules.check_rater("clerk", "window_device")
    with pytest.raises(NotPermitted):
        rules.check_rater("clerk", "online")  # the window's staff do not type ratings in for people
    with pytest.raises(NotPermitted):
        rules.check_rater("supervisor", "phone")
    rules.check_rater("supervisor", "phone", follow_up=True)  # at the callback
    with pytest.raises(NotPermitted):
        rules.check_rater("department_head", "phone", follow_up=True)


def test_callback_due_in_one_working_day_and_rectification_in_fifteen():
    friday = date(2026, 11, 27)
    callback, rectify = rules.rectification_dues(friday, CAL)
    assert callback == date(2026, 11, 30)  # Monday
    assert rectify == date(2026, 12, 18) and CAL.working_days_between(friday, rectify) == 15
    assert rules.rectification_dues(friday, CAL, 5)[1] == date(2026, 12, 4)


def test_rectification_steps_in_order():
    assert rules.rect_step(RectState.OPEN, "callback") == RectState.CALLED_BACK
    with pytest.raises(NotAllowedNow, match="callback"):
        rules.rect_step(RectState.OPEN, "rectify")
    assert rules.rect_step(RectState.CALLED_BACK, "rectify") == RectState.RECTIFIED
    with pytest.raises(NotAllowedNow):
        rules.rect_step(RectState.CALLED_BACK, "callback")
    assert rules.rect_step(RectState.RECTIFIED, "follow_up") == RectState.CLOSED
    assert rules.rect_step(RectState.RECTIFIED, "decline") == RectState.CLOSED
    for state in (RectState.OPEN, RectState.CALLED_BACK, RectState.RECTIFIED):
        assert rules.rect_step(state, "void") == RectState.CLOSED
    for step in ("callback", "rectify", "follow_up", "decline", "void"):
        with pytest.raises(NotAllowedNow):
            rules.rect_step(RectState.CLOSED, step)


def test_what_is_late():
    cb, rd = date(2026, 12, 1), date(2026, 12, 21)
    assert rules.rectification_overdue(RectState.OPEN, cb, rd, cb) is None
    assert rules.rectification_overdue(RectState.OPEN, cb, rd, cb + timedelta(days=1)) == "callback"
    assert rules.rectification_overdue(RectState.CALLED_BACK, cb, rd, cb + timedelta(days=1)) is None
    assert rules.rectification_overdue(RectState.OPEN, cb, rd, rd + timedelta(days=1)) == "rectification"
    assert rules.rectification_overdue(RectState.CALLED_BACK, cb, rd, rd + timedelta(days=1)) == "rectification"
    assert rules.rectification_overdue(RectState.RECTIFIED, cb, rd, rd + timedelta(days=9)) is None
    assert rules.next_due(RectState.OPEN, cb, rd) == cb and rules.next_due(RectState.CALLED_BACK, cb, rd) == rd
    assert rules.next_due(RectState.CLOSED, cb, rd) is None


def test_one_follow_up_after_the_rectification_of_a_bad_rating():
    assert rules.check_follow_up(False, True, RectState.RECTIFIED, False) == RectState.CLOSED
    with pytest.raises(NotAllowedNow, match="already"):
        rules.check_follow_up(False, True, RectState.CLOSED, True)
    with pytest.raises(NotAllowedNow, match="after the rectification"):
        rules.check_follow_up(False, True, RectState.CALLED_BACK, False)
    with pytest.raises(NotAllowedNow, match="only a bad rating"):
        rules.check_follow_up(False, False, None, False)
    with pytest.raises(NotAllowedNow, match="voided"):
        rules.check_follow_up(True, True, RectState.CLOSED, False)


def test_a_callback_is_recorded_after_the_rating_and_not_ahead():
    rated = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    now = rated + timedelta(hours=3)
    rules.check_callback_time(now, rated, now)
    with pytest.raises(RuleViolation):
        rules.check_callback_time(now + timedelta(minutes=1), rated, now)
    with pytest.raises(RuleViolation):
        rules.check_callback_time(rated - timedelta(minutes=1), rated, now)


def test_appeals_by_the_department_head_or_the_towns_supervisor_once_decided_by_another():
    rules.check_appeal("department_head", "department", True, False, False)
    rules.check_appeal("supervisor", "town", True, False, False)
    for role, scope in (("supervisor", "city"), ("clerk", "town"), ("approver", "department")):
        with pytest.raises(NotPermitted):
            rules.check_appeal(role, scope, True, False, False)
    with pytest.raises(NotAllowedNow, match="only a bad"):
        rules.check_appeal("department_head", "department", False, False, False)
    with pytest.raises(NotAllowedNow, match="once|already"):
        rules.check_appeal("department_head", "department", True, False, True)
    rules.check_appeal_decision(AppealStatus.PENDING, "head-1", "sup-1")
    with pytest.raises(NotPermitted):
        rules.check_appeal_decision(AppealStatus.PENDING, "sup-1", "sup-1")
    with pytest.raises(NotAllowedNow):
        rules.check_appeal_decision(AppealStatus.UPHELD, "head-1", "sup-1")


def test_complaints_go_received_acknowledged_assigned_resolved():
    s = rules.complaint_step(ComplaintStatus.RECEIVED, "acknowledge")
    with pytest.raises(NotAllowedNow):
        rules.complaint_step(ComplaintStatus.RECEIVED, "resolve")
    s = rules.complaint_step(s, "assign")
    assert rules.complaint_step(s, "assign") == ComplaintStatus.ASSIGNED  # handed on
    s = rules.complaint_step(s, "resolve")
    for step in ("acknowledge", "assign", "resolve"):
        with pytest.raises(NotAllowedNow):
            rules.complaint_step(s, step)


def test_a_complaint_is_due_in_five_working_days_and_overdue_after():
    friday = date(2026, 11, 27)
    due = rules.complaint_due(friday, CAL)
    assert due == date(2026, 12, 4)
    assert not rules.complaint_overdue(ComplaintStatus.ASSIGNED, due, due)
    assert rules.complaint_overdue(ComplaintStatus.ASSIGNED, due, due + timedelta(days=1))
    assert not rules.complaint_overdue(ComplaintStatus.RESOLVED, due, due + timedelta(days=30))


def test_complaint_numbers_are_never_taken_for_a_phone_number():
    from shared.pii import mask_text

    number = rules.complaint_number("320583101", date(2026, 12, 1), 7)
    assert number == "TS-320583101-20261201-0007" and mask_text(number) == number


def test_who_resolves_a_complaint():
    rules.may_resolve("approver", "wang", "wang")
    rules.may_resolve("department_head", "head", "wang")
    with pytest.raises(NotPermitted):
        rules.may_resolve("clerk", "li", "wang")


def test_overdue_first_then_the_nearest_due_date():
    rows = [(False, date(2026, 12, 3), "b"), (True, date(2026, 12, 9), "c"), (False, None, "a"),
            (True, date(2026, 12, 1), "d")]
    assert [k for *_, k in sorted(rows, key=lambda r: rules.overdue_first(*r))] == ["d", "c", "b", "a"]


def test_configured_days_are_checked():
    assert rules.check_days("rectify_days", 5, *rules.RECTIFY_DAYS_RANGE) == 5
    for bad in (4, 16, "15", True):
        with pytest.raises(ValueError):
            rules.check_days("rectify_days", bad, *rules.RECTIFY_DAYS_RANGE)
