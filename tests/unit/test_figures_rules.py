"""The monthly figures' rules (no I/O): month keys, the kind a case is received as, working days to finish,
rates and averages as shown, attribution rows, and who may read which figures."""
from datetime import UTC, date, datetime

import pytest

from services.evaluation import figures_rules as rules
from shared.auth import Principal, Scope
from shared.errors import NotPermitted, RuleViolation
from shared.workdays import WorkingCalendar

A, B = "320583101", "320583102"


def who(role: str, scope: str) -> Principal:
    return Principal(subject="tester", role=role, scope=Scope.parse(scope), expires_at=0, issued_at=0)


def test_a_moment_counts_in_the_month_of_its_shanghai_date():
    assert rules.month_key(datetime(2026, 10, 31, 15, 59, tzinfo=UTC)) == "2026-10"
    assert rules.month_key(datetime(2026, 10, 31, 16, 0, tzinfo=UTC)) == "2026-11"  # 00:00 on 1 Nov in Shanghai
    assert rules.month_key(datetime(2026, 12, 31, 16, 30, tzinfo=UTC)) == "2027-01"
    assert rules.month_key(date(2026, 2, 28)) == "2026-02"


def test_working_days_to_finish_skip_weekends_and_holidays_and_the_start_day():
    cal = WorkingCalendar()
    assert rules.working_days_to_finish(cal, date(2026, 11, 2), date(2026, 11, 2)) == 0  # the same day
    assert rules.working_days_to_finish(cal, date(2026, 11, 6), date(2026, 11, 9)) == 1  # Friday -> Monday
    assert rules.working_days_to_finish(cal, date(2026, 11, 2), date(2026, 11, 16)) == 10
    # National Day 2026: 1-7 October off, Saturday 10 October a make-up working day (chinese-calendar)
    assert rules.working_days_to_finish(cal, date(2026, 9, 30), date(2026, 10, 9)) == 2
    assert rules.working_days_to_finish(cal, date(2026, 11, 9), date(2026, 11, 2)) == 0  # never negative


def test_the_kind_a_case_is_received_as():
    assert rules.reception_kind("promised", "in_review") == "promised"
    assert rules.reception_kind("instant", "in_review") == "instant"
    assert rules.reception_kind("joint", "in_review") == "joint"
    assert rules.reception_kind("escalated", "initial_review") == "escalated"
    assert rules.reception_kind("promised", "pending_materials") == "supplement"
    assert rules.reception_kind("instant", "returned") == "returned"
    assert rules.reception_kind(None, "consulted") == "consultation"
    assert rules.reception_kind("review", "in_review") == "review"
    assert not rules.clock_runs("pending_materials") and rules.clock_runs("initial_review")


def test_rates_are_percent_with_two_decimals_half_up_and_none_when_nothing_to_divide():
    assert rules.percent(2, 3) == 66.67 and rules.percent(1, 3) == 33.33 and rules.percent(1, 8) == 12.5
    assert rules.percent(1, 200) == 0.5 and rules.percent(1, 16) == 6.25 and rules.percent(1, 1600) == 0.06
    assert rules.percent(0, 0) is None and rules.percent(3, 3) == 100.0
    assert rules.average(7, 3) == 2.33 and rules.average(5, 2) == 2.5 and rules.average(0, 0) is None


def test_a_row_of_figures_from_its_measures():
    row = rules.figures({"received": 5, "received_instant": 2, "received_promised": 3, "completed": 4, "on_time": 3,
                         "finish_days": 9, "finish_counted": 4, "ratings": 4, "satisfied": 3, "bad": 1,
                         "complaints": 2})
    assert list(row) == list(rules.COLUMNS)
    assert (row["received"], row["instant"], row["promised"], row["joint"]) == (5, 2, 3, 0)
    assert (row["late"], row["on_time_rate"], row["avg_days"]) == (1, 75.0, 2.25)
    assert (row["satisfaction_rate"], row["rectification_rate"], row["complaints"]) == (75.0, 0.0, 2)
    assert rules.figures({})["on_time_rate"] is None


def test_ratings_count_good_and_bad_and_a_follow_up_apart():
    assert rules.rating_measures(3) == {"ratings": 1, "satisfied": 1, "bad": 0, "rectified": 0}
    assert rules.rating_measures(4) == {"ratings": 1, "satisfied": 0, "bad": 1, "rectified": 0}
    assert rules.rating_measures(5, rectified=True)["rectified"] == 1
    assert rules.rating_measures(1, follow_up=True) == {"follow_ups": 1}


def test_a_case_counts_once_for_everyone_and_once_per_department_office():
    a = rules.Attribution(window=A, town=B, staff="clerk-1", village=f"{A}001",
                          offices=("minzheng@320583102", "renshe@320583102"))
    rows = a.rows()
    assert ("village", A, f"{A}001", "") in rows and ("staff", A, "clerk-1", "") in rows
    assert ("window", A, A, "") in rows and ("town", B, B, "") in rows
    assert ("town", B, B, "renshe@320583102") in rows
    assert [r for r in rows if r[0] == "department"] == [("department", B, "minzheng@320583102", "minzheng@320583102"),
                                                         ("department", B, "renshe@320583102", "renshe@320583102")]
    assert len(rows) == 3 * 4 + 2
    only_new = a.rows(["renshe@320583102"], everyone=False)
    assert all(r[3] == "renshe@320583102" for r in only_new) and len(only_new) == 5
    d = rules.deltas(a.rows(), {"received": 1, "received_joint": 1, "on_time": 0}, "2026-11")
    assert d[("2026-11", "window", A, A, "", "received")] == 1 and not any(k[-1] == "on_time" for k in d)


def test_offices_and_the_responsible_town():
    assert rules.office("minzheng", A) == f"minzheng@{A}" and rules.office("gongan", "city") == "gongan@city"
    assert rules.office_town("gongan@city") == "city" and rules.office_town(f"minzheng@{A}") == A
    assert rules.responsible_town(A, B) == B and rules.responsible_town(A, "city") == A


def test_who_reads_which_figures():
    assert rules.report_scope(who("supervisor", "city"), None, None) == (None, None)
    assert rules.report_scope(who("supervisor", "city"), B, "minzheng") == (B, "minzheng")
    assert rules.report_scope(who("supervisor", f"town:{A}"), None, None) == (A, None)
    assert rules.report_scope(who("supervisor", f"town:{A}"), A, "renshe") == (A, "renshe")
    with pytest.raises(NotPermitted):
        rules.report_scope(who("supervisor", f"town:{A}"), B, None)
    head = who("department_head", f"department:minzheng@{A}")
    assert rules.report_scope(head, None, None) == (None, f"minzheng@{A}")
    assert rules.report_scope(head, A, "minzheng") == (None, f"minzheng@{A}")
    for town, dept in ((B, None), (None, "renshe"), (None, f"minzheng@{B}"), (None, "minzheng@city")):
        with pytest.raises(NotPermitted):
            rules.report_scope(head, town, dept)
    assert rules.report_scope(who("department_head", "department:gongan"), None, None) == (None, "gongan@city")
    with pytest.raises(NotPermitted):
        rules.report_scope(who("agent", f"village:{A}001"), None, None)
    for town, dept in (("12", None), (None, "Min Zheng"), (None, "minzheng@12"), (None, "minzheng@")):
        with pytest.raises(RuleViolation):
            rules.report_scope(who("supervisor", "city"), town, dept)


def test_a_report_adds_a_departments_offices_and_names_what_it_can():
    names = rules.Names(towns={A: "玉山镇"}, villages={f"{A}001": "城北社区"}, departments={"minzheng": "民政"})
    counted = [("window", A, A, "received", 2), ("window", A, A, "received", 3), ("window", A, A, "completed", 4),
               ("window", A, A, "on_time", 3), ("village", A, f"{A}001", "received", 1),
               ("department", "city", "minzheng@city", "received", 1)]
    report = rules.assemble("2026-11", None, "minzheng", counted, names)
    dims = {d["dimension"]: d for d in report["dimensions"]}
    assert list(dims) == ["village", "window", "staff", "town", "department"] and dims["staff"]["rows"] == []
    window = dims["window"]["rows"][0]
    assert (window["name"], window["received"], window["on_time_rate"], window["late"]) == ("玉山镇便民服务中心", 5,
                                                                                            75.0, 1)
    assert dims["village"]["rows"][0]["name"] == "城北社区"
    assert dims["department"]["rows"][0]["name"] == "民政（市级）"
    assert report["department"] == "minzheng" and [c["heading"] for c in report["columns"]][:3] == ["受理总数",
                                                                                                   "即办件", "承诺件"]
