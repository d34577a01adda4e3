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


# every (status, action) pair: allowed exactly where the table says, and nowhere else
EXPECTED = {
    None: {"accept", "accept_for_initial_review", "accept_incomplete", "consult", "return"},
    "pending_materials": {"return", "supplement", "complete_materials", "complete_materials_for_initial_review"},
    "initial_review": {"return", "pass_initial_review"},
    "in_review": {"deliver_deferred", "pause", "extend", "record_decision", "decide", "request_materials"},
    "paused": {"deliver_deferred", "resume", "record_decision", "decide"},
    "returned": {"request_review"},
    "completed": set(),
    "consulted": set(),
}
RESULT = {"accept": "in_review", "accept_for_initial_review": "initial_review",
          "accept_incomplete": "pending_materials", "consult": "consulted", "return": "returned",
          "supplement": "pending_materials",
          "complete_materials": "in_review", "complete_materials_for_initial_review": "initial_review",
          "pass_initial_review": "in_review", "request_materials": "pending_materials", "request_review": "returned",
          "pause": "paused", "resume": "in_review",
          "decide": "completed"}


@pytest.mark.parametrize("status", list(EXPECTED))
@pytest.mark.parametrize("action", sorted(intake.TRANSITIONS))
def test_every_transition_allowed_or_forbidden(status, action):
    if action in EXPECTED[status]:
        to = intake.next_status(status, action)
        assert to == RESULT.get(action, status), "actions not listed keep the status"
    else:
        with pytest.raises(intake.ForbiddenTransition):
            intake.next_status(status, action)
    assert set(intake.allowed_actions(status)) == EXPECTED[status]


def test_joint_outcome():
    d = lambda o, r=None, n=None: intake.Decision(o, r, n, 1)  # noqa: E731
    need = ["minzheng", "weijian", "renshe"]
    assert intake.joint_outcome(need, {"minzheng": d("approved", n="A")}) is None
    assert intake.joint_outcome(need, {"weijian": d("refused", "不符合")}) == ("refused", "weijian: 不符合", None)
    everyone = {k: d("approved", n=k.upper()) for k in need}
    assert intake.joint_outcome(need, everyone) == ("approved", None, "MINZHENG;WEIJIAN;RENSHE")


def test_pause_moves_the_deadline_by_the_working_days_paused():
    cal = WorkingCalendar()
    # paused Mon 2026-11-02, resumed Mon 2026-11-09: 5 working days paused
    due = intake.deadline_after_pause(date(2026, 11, 20), date(2026, 11, 2), date(2026, 11, 9), cal)
    assert due.date == date(2026, 11, 27)


def test_extension_rules():
    intake.check_extension(False, 5, 20, 5, "需要补充调查")
    with pytest.raises(intake.ExtensionTaken, match="once"):  # a clash with the case's state: 409, not 400
        intake.check_extension(True, 5, 20, 5, "再延")
    with pytest.raises(intake.RuleViolation, match="reason"):
        intake.check_extension(False, 5, 20, 5, " ")
    with pytest.raises(intake.RuleViolation, match="1 to 15"):
        intake.check_extension(False, 16, 20, 5, "太长")
    # what the routed work tells the back office it may still ask for
    assert intake.extension_days_max(PROMISED, already_extended=False) == 15
    assert intake.extension_days_max(PROMISED, already_extended=True) == 0


def test_the_opening_decision_comes_whole_from_the_rules():
    cal = WorkingCalendar()
    accepted = intake.open_case(PROMISED, ["idcard", "form"], date(2026, 11, 2), cal, accepting_town="320583101")
    assert (accepted.action, accepted.status, accepted.routes, accepted.announces) == (
        "accept", "in_review", True, True)
    assert accepted.deadline == date(2026, 11, 9) and accepted.clock_started_on == date(2026, 11, 2)
    assert accepted.notices == ("promise",) and accepted.departments == ["renshe"]
    incomplete = intake.open_case(PROMISED, ["idcard"], date(2026, 11, 2), cal, accepting_town="320583101")
    assert (incomplete.status, incomplete.deadline, incomplete.notices) == ("pending_materials", None,
                                                                            ("one_time_notice",))
    assert incomplete.missing == [{"code": "form", "name": "社会保险登记表"}] and incomplete.was_supplement
    returned = intake.open_case(PROMISED, [], date(2026, 11, 2), cal, accepting_town="320583101",
                                return_reason="不属于本中心受理范围")
    assert (returned.status, returned.reason, returned.notices, returned.was_supplement) == (
        "returned", "不属于本中心受理范围", ("rejection",), False)
    with pytest.raises(intake.RuleViolation, match="materials"):
        intake.open_case(PROMISED, ["passport"], date(2026, 11, 2), cal, accepting_town="320583101")


def test_history_chain_verification_finds_the_edited_entry():
    records, prev = [], intake.GENESIS_HASH
    for seq in (1, 2, 3):
        rec = {"seq": seq}
        h = intake.action_hash(prev, rec)
        records.append((rec, prev, h))
        prev = h
    assert intake.verify_chain(records) is None
    records[1] = ({"seq": 2, "actor": "mallory"}, records[1][1], records[1][2])
    assert intake.verify_chain(records) == 1


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


def test_delivery_channel():
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
