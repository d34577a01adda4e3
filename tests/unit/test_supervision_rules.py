"""Deadline supervision's rules (电子监察): colours in working days, pauses, what ends a warning. No broker."""
from datetime import date

from services.evaluation import supervision_rules as rules
from services.evaluation.supervision_rules import GREEN, RED, YELLOW, standing
from shared.workdays import WorkingCalendar, YearCalendar

# 2030, a year of our own: 1-3 May off (Wed-Fri), Saturday 11 May a make-up working day (调休)
CAL = WorkingCalendar({2030: YearCalendar(2030, holidays=frozenset({date(2030, 5, 1), date(2030, 5, 2),
                                                                    date(2030, 5, 3)}),
                                          workdays=frozenset({date(2030, 5, 11)}))})
MON_29_APR, TUE_30_APR, WED_1_MAY, MON_6_MAY = date(2030, 4, 29), date(2030, 4, 30), date(2030, 5, 1), date(2030, 5, 6)


def at(today, deadline, status="in_review", **kw):
    return standing(CAL, today, deadline=deadline, status=status, **kw)


def test_yellow_counts_working_days_across_a_holiday():
    s = at(TUE_30_APR, MON_6_MAY)  # six calendar days away, one working day: the holiday does not count
    assert (s.colour, s.working_days_left) == (YELLOW, 1)
    assert rules.warning_due(s) == YELLOW
    assert at(MON_29_APR, MON_6_MAY).colour == GREEN  # two working days left
    assert at(MON_6_MAY, MON_6_MAY) == rules.Standing(YELLOW, 0, False)  # the deadline day itself


def test_the_yellow_threshold_is_configurable():
    assert at(MON_29_APR, date(2030, 5, 7)).colour == GREEN  # Apr 30, May 6, May 7: three left
    assert at(MON_29_APR, date(2030, 5, 7), yellow_days=3).colour == YELLOW
    assert rules.rule_of(YELLOW, 3) == "at_most_3_working_days_left" and rules.rule_of(RED) == "deadline_passed"


def test_red_once_the_deadline_day_has_passed_even_on_a_day_off():
    s = at(WED_1_MAY, TUE_30_APR)  # no working day between, but the date has passed
    assert s.colour == RED and s.working_days_left == 0
    late = at(date(2030, 5, 8), TUE_30_APR)
    assert late.colour == RED and late.working_days_left == -3  # May 6, 7, 8 overdue


def test_a_stopped_clock_is_never_warned():
    paused = at(date(2030, 5, 8), TUE_30_APR, status="paused", paused_since=date(2030, 4, 29))
    assert paused.colour == GREEN and paused.clock_stopped and rules.warning_due(paused) is None
    dept_paused = at(date(2030, 5, 8), TUE_30_APR, paused_since=date(2030, 4, 29))  # work paused, case in review
    assert rules.warning_due(dept_paused) is None
    waiting = at(date(2030, 5, 8), TUE_30_APR, status="pending_materials")  # the back office asked for more
    assert waiting.clock_stopped and rules.warning_due(waiting) is None
    assert at(date(2030, 5, 8), None).colour == GREEN  # no deadline yet


def test_an_instant_case_goes_red_but_never_yellow():
    assert at(MON_6_MAY, MON_6_MAY, kind="instant").colour == GREEN
    assert at(date(2030, 5, 7), MON_6_MAY, kind="instant").colour == RED


def test_what_ends_a_warning():
    red = at(date(2030, 5, 8), MON_6_MAY)
    yellow = at(MON_6_MAY, MON_6_MAY)
    assert rules.resolution(YELLOW, MON_6_MAY, False, None, None) == "closed"
    assert rules.resolution(RED, MON_6_MAY, True, date(2030, 5, 9), red) == "deadline_moved"  # extended
    assert rules.resolution(YELLOW, MON_6_MAY, True, MON_6_MAY, red) == "turned_red"
    assert rules.resolution(YELLOW, MON_6_MAY, True, MON_6_MAY, yellow) is None
    assert rules.resolution(RED, MON_6_MAY, True, MON_6_MAY, red) is None
    paused = at(date(2030, 5, 8), MON_6_MAY, status="paused", paused_since=date(2030, 5, 7))
    assert rules.resolution(RED, MON_6_MAY, True, MON_6_MAY, paused) is None, "as late as it was"
    assert rules.resolution(YELLOW, MON_6_MAY, True, MON_6_MAY, at(MON_29_APR, MON_6_MAY)) == "no_longer_due"


def test_board_order_is_red_then_yellow_then_deadline():
    rows = [(GREEN, date(2030, 5, 2), "c1"), (YELLOW, date(2030, 5, 9), "c2"), (RED, date(2030, 5, 9), "c3"),
            (GREEN, None, "c4"), (YELLOW, date(2030, 5, 8), "c5"), (RED, date(2030, 5, 1), "c6")]
    assert [n for _c, _d, n in sorted(rows, key=lambda r: rules.urgency_key(*r))] == ["c6", "c3", "c5", "c2", "c1",
                                                                                      "c4"]


def test_red_is_addressed_to_the_office_that_decides():
    assert rules.addressees("minzheng", "320583101", "320583101") == rules.Addressees(
        "department:minzheng@320583101", "town:320583101")
    # 全城通办: accepted in A, handled by B's office: B's department head and supervisor
    assert rules.addressees("minzheng", "320583101", "320583102") == rules.Addressees(
        "department:minzheng@320583102", "town:320583102")
    assert rules.addressees("gongan", "320583101", "city") == rules.Addressees("department:gongan", "city")
    text = rules.notice_text("320583101-20300429-1", "低保", "minzheng", MON_6_MAY, -2, "clerk-7")
    assert "320583101-20300429-1" in text and "已超期2个工作日" in text and "clerk-7" in text
