"""The supervisor's workbench rules (services/portal/supervisor_rules.py): no I/O."""
from datetime import date

import pytest

from services.portal import supervisor_rules as rules


def test_every_colour_has_words():
    assert set(rules.COLOURS) <= set(rules.COLOUR_TEXT) and "超期" in rules.COLOUR_TEXT["red"]


def test_bad_ratings_come_first_worst_first_voided_ones_with_the_others():
    ratings = [{"id": 1, "level": 2}, {"id": 2, "level": 4}, {"id": 3, "level": 5, "void": True},
               {"id": 4, "level": 1}, {"id": 5, "level": 5}, {"id": 6, "level": 4}]
    assert [r["id"] for r in rules.bad_first(ratings)] == [5, 2, 6, 1, 3, 4]
    bad, others = rules.split_bad(ratings)
    assert [r["id"] for r in bad] == [5, 2, 6] and [r["id"] for r in others] == [1, 3, 4]


def test_steps_follow_the_states():
    assert rules.RECT_STEPS["open"] == ("callback",) and rules.RECT_STEPS["closed"] == ()
    assert rules.COMPLAINT_STEPS["assigned"] == ("assign", "resolve") and rules.COMPLAINT_STEPS["resolved"] == ()
    assert rules.by_rating([{"id": 7, "rating_id": 3}]) == {3: {"id": 7, "rating_id": 3}}
    assert [a["id"] for a in rules.pending_first([{"id": 1, "status": "upheld"}, {"id": 2, "status": "pending"}])] \
        == [2, 1]


@pytest.mark.parametrize("text,month", [("2026-01", "2026-01"), (" 2025-12 ", "2025-12"), ("2025-13", None),
                                        ("2025-1", None), ("", None), (None, None), ("1800-01", None),
                                        ("2025-01-01", None)])
def test_months(text, month):
    assert rules.parse_month(text) == month


def test_the_figures_offer_last_month_and_this_month():
    assert rules.figure_months(date(2026, 1, 15)) == {"last": "2025-12", "this": "2026-01"}
    assert rules.figure_months(date(2025, 11, 30)) == {"last": "2025-10", "this": "2025-11"}


def test_export_file_names():
    assert rules.export_filename("2026-01", "csv") == "tongban-monthly-2026-01.csv"
    assert rules.export_filename("2026-01", "xlsx", "320583101") == "tongban-monthly-2026-01-320583101.xlsx"
    with pytest.raises(ValueError):
        rules.export_filename("2026-01", "pdf")
    assert rules.scope_town("town:320583101") == "320583101" and rules.scope_town("city") is None


def test_board_filter_checks_the_codes():
    assert rules.board_filter({"town": "320583101", "department": "minzheng"}) == (
        {"town": "320583101", "department": "minzheng"}, {})
    params, problems = rules.board_filter({"town": "3205", "department": "Min Zheng"})
    assert params == {} and set(problems) == {"town", "department"}
    assert rules.board_filter({}) == ({}, {})


def test_field_errors_flatten_a_services_details():
    assert rules.field_errors({"notes": ["Missing data for required field."], "rater": {"phone": ["bad"]},
                               "state": "open"}) == {"notes": "Missing data for required field.", "phone": "bad",
                                                     "state": "open"}
    assert rules.field_errors(None) == {} and rules.field_errors(["x"]) == {}
    assert rules.field_errors({"to": ["a", "b"]}) == {"to": "a；b"}
