"""The breach forecast: a queue in deadline order served at the office's recent rate. No broker."""
from datetime import date
from fractions import Fraction

import pytest

from services.evaluation import forecast as fc
from services.evaluation.forecast import QueuedCase, forecast_office
from shared.workdays import WorkingCalendar, YearCalendar

# 2030, a year of our own: 1-3 May off (Wed-Fri), Saturday 11 May a make-up working day (调休)
CAL = WorkingCalendar({2030: YearCalendar(2030, holidays=frozenset({date(2030, 5, 1), date(2030, 5, 2),
                                                                    date(2030, 5, 3)}),
                                          workdays=frozenset({date(2030, 5, 11)}))})
MON_6_MAY, FRI_10_MAY = date(2030, 5, 6), date(2030, 5, 10)


def cases(n, deadline, prefix="c"):
    return [QueuedCase(f"{prefix}{i}", deadline) for i in range(1, n + 1)]


def test_the_rate_window_and_the_days_available_skip_days_off():
    assert fc.window_start(CAL, MON_6_MAY, 3) == date(2030, 4, 29)  # May 6, Apr 30, Apr 29
    assert fc.window_start(CAL, MON_6_MAY, 1) == MON_6_MAY
    assert fc.working_days_available(CAL, date(2030, 4, 30), MON_6_MAY) == 2  # Apr 30 and May 6
    assert fc.working_days_available(CAL, MON_6_MAY, date(2030, 4, 30)) == 0
    assert fc.nth_working_day(CAL, date(2030, 4, 30), 2) == MON_6_MAY


def test_a_slow_office_misses_all_but_what_its_rate_decides():
    # 2 decisions in the last 10 working days: 0.2 a day; 5 cases due Friday, 5 working days from today
    f = forecast_office(CAL, MON_6_MAY, "320583101", "minzheng", cases(5, FRI_10_MAY), 2, window_days=10,
                        horizon_days=5)
    assert f.rate == Fraction(1, 5) and f.open_cases == 5 and f.overdue == 0
    assert [b.case_number for b in f.breaches] == ["c2", "c3", "c4", "c5"]  # the first is decided in time
    assert f.needed_rate == 1  # five cases in five working days
    # the second decision comes on the 10th working day: the make-up Saturday counts
    assert f.breaches[0].expected_decision == date(2030, 5, 16)
    s = f.summary()
    assert (s["breaches"], s["needed_rate"], s["needed_per_day"], s["rate"], s["extra_per_day"]) == (4, 1.0, 1, 0.2,
                                                                                                     0.8)


def test_overdue_cases_are_served_first_and_take_capacity():
    queue = cases(2, date(2030, 5, 7), "due") + [QueuedCase("late", date(2030, 4, 30))]
    f = forecast_office(CAL, MON_6_MAY, "320583101", "renshe", queue, 5, window_days=5, horizon_days=5)
    assert f.overdue == 1 and f.rate == 1
    assert [(b.case_number, b.position) for b in f.breaches] == [("due2", 3)]
    assert f.needed_rate == Fraction(3, 2) and f.summary()["needed_per_day"] == 2
    assert f.detail()["first_breaches"][0]["expected_decision"] == date(2030, 5, 8)


def test_only_deadlines_within_the_horizon_count():
    far = cases(3, date(2030, 6, 28))
    assert forecast_office(CAL, MON_6_MAY, "city", "gongan", far, 0, horizon_days=5).breaches == []
    near = forecast_office(CAL, MON_6_MAY, "city", "gongan", cases(1, FRI_10_MAY) + far, 0, horizon_days=5)
    assert [b.case_number for b in near.breaches] == ["c1"] and near.breaches[0].expected_decision is None
    assert near.open_cases == 4 and near.needed_rate == Fraction(1, 5)
    wider = forecast_office(CAL, MON_6_MAY, "city", "gongan", far, 0, horizon_days=60)
    assert len(wider.breaches) == 3


def test_a_fast_enough_office_breaks_nothing_and_order_of_input_does_not_matter():
    queue = [QueuedCase("b", FRI_10_MAY), QueuedCase("a", date(2030, 5, 7))]
    f = forecast_office(CAL, MON_6_MAY, "320583101", "minzheng", queue, 20, window_days=20)
    assert f.breaches == [] and f.needed_rate == Fraction(1, 2)  # "a" at 1 of 2 days, "b" at 2 of 5
    with pytest.raises(ValueError):
        forecast_office(CAL, MON_6_MAY, "320583101", "minzheng", queue, 1, window_days=0)
