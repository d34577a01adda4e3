"""Rules of the window, the back office and notices, without a broker or a database."""
from datetime import date

import pytest

from services.approval import domain as approval
from services.intake import domain as intake
from services.notify import domain as notify
from shared.catalog import SAMPLE_CATALOG, CatalogError, load_catalog, parse_catalog
from shared.workdays import WorkingCalendar

CATALOG = load_catalog()
PROMISED = CATALOG.item("RS-0001")
INSTANT = CATALOG.item("MZ-0001")


def test_case_numbers_are_readable_and_sortable():
    assert intake.case_number("320583101", date(2026, 2, 3), 7) == "320583101-20260203-00007"


def test_all_missing_materials_are_told_at_once():
    assert intake.missing_materials(PROMISED, []) == [{"code": "idcard", "name": "居民身份证"},
                                                     {"code": "form", "name": "社会保险登记表"}]
    assert intake.missing_materials(PROMISED, ["idcard", "form"]) == []
    assert intake.unknown_materials(PROMISED, ["idcard", "passport"]) == ["passport"]


def test_deadline_counts_working_days_after_acceptance():
    cal = WorkingCalendar()
    # accepted Friday 13 Feb 2026; Sat 14 Feb is a make-up working day, then Spring Festival 15-23 Feb
    due = intake.deadline(PROMISED, date(2026, 2, 13), cal)
    assert due.date == date(2026, 2, 27) and not due.provisional
    assert intake.deadline(INSTANT, date(2026, 11, 23), cal).date == date(2026, 11, 23)


def test_transitions_are_data_and_forbidden_ones_raise():
    assert intake.next_status(None, "accept") == "in_review"
    assert intake.next_status("in_review", "decide") == "completed"
    with pytest.raises(intake.ForbiddenTransition):
        intake.next_status("completed", "decide")
    with pytest.raises(intake.ForbiddenTransition):
        intake.next_status("in_review", "accept")


def test_city_level_items_are_handled_by_the_city():
    assert intake.handling_town({**PROMISED, "level": "city"}, "320583101") == "city"
    assert intake.handling_town(PROMISED, "320583101") == "320583101"


def test_decisions_on_an_old_version_are_stale():
    assert intake.decision_is_current(1, intake.Decision("approved", None, None, 1))
    assert not intake.decision_is_current(2, intake.Decision("approved", None, None, 1))


def test_history_hash_chain_detects_edits():
    a = intake.action_hash(intake.GENESIS_HASH, {"seq": 1, "action": "accept"})
    b = intake.action_hash(a, {"seq": 2, "action": "decide"})
    assert b != intake.action_hash(intake.action_hash(intake.GENESIS_HASH, {"seq": 1, "action": "return"}),
                                   {"seq": 2, "action": "decide"})


def test_approval_decisions():
    approval.check_decision("pending", "approved", None)
    with pytest.raises(approval.DecisionRejected, match="reason"):
        approval.check_decision("pending", "refused", "  ")
    with pytest.raises(approval.AlreadyDecided):
        approval.check_decision("decided", "approved", None)
    assert approval.result_number("renshe", "320583101-20261124-00001") == "RENSHE-320583101-20261124-00001"


def test_notice_texts():
    text = notify.acceptance_text("N-1", "社保登记", date(2026, 12, 1), "promised")
    assert "2026年12月01日前办结" in text and "N-1" in text
    assert "理由：材料不实" in notify.result_text("N-1", "社保登记", "refused", "材料不实", None)
    assert "编号RS-1" in notify.result_text("N-1", "社保登记", "approved", None, "RS-1")
    assert notify.channel_for("sms", {"log"}) == "log"
    assert notify.channel_for("sms", {"log", "sms"}) == "sms"


def test_catalogue_validation_names_the_problem():
    text = SAMPLE_CATALOG.read_text(encoding="utf-8")
    assert parse_catalog(text).version == "2026.1"
    with pytest.raises(CatalogError, match="unknown department"):
        parse_catalog(text.replace("department: renshe", "department: nobody"))
    with pytest.raises(CatalogError, match="promised limit"):
        parse_catalog(text.replace("promised_days: 5", "promised_days: 25"))
    with pytest.raises(CatalogError, match="YAML"):
        parse_catalog("version: [")
