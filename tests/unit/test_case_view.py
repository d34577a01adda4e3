"""Evaluation's case read model: what each event changes, and what it must not."""
from datetime import UTC, date, datetime

from services.evaluation.domain import case_view_changes

AT = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
ACCEPTED = {"accepting_town": "320583101", "handling_town": "320583101", "department": "minzheng",
            "item_code": "MZ-0002", "item_name": "低保", "kind": "promised", "status": "in_review",
            "deadline": date(2026, 12, 15), "first_responder": "clerk-7", "via_agent": None, "village": None}


def test_acceptance_sets_the_case_and_when_it_was_accepted():
    c = case_view_changes("case.accepted", ACCEPTED, AT, 1)
    assert c["status"] == "in_review" and c["deadline"] == date(2026, 12, 15) and c["accepted_at"] == AT
    assert c["first_responder"] == "clerk-7" and c["version"] == 1 and c["paused_since"] is None


def test_an_older_or_repeated_event_changes_nothing():
    update = {"accepting_town": "320583101", "status": "in_review", "deadline": "2026-12-20"}
    assert case_view_changes("case.updated", update, AT, 3, {"version": 4}) is None
    assert case_view_changes("case.updated", update, AT, 4, {"version": 4}) is None
    assert case_view_changes("case.updated", update, AT, 5, {"version": 4})["deadline"] == date(2026, 12, 20)


def test_a_pause_keeps_the_day_the_clock_stopped_until_it_runs_again():
    paused = {"accepting_town": "320583101", "status": "paused", "deadline": "2026-12-15"}
    first = case_view_changes("case.updated", paused, AT, 2, {"version": 1, "paused_since": None})
    assert first["paused_since"] == date(2026, 12, 1)
    later = case_view_changes("case.updated", paused, datetime(2026, 12, 3, tzinfo=UTC), 3,
                              {"version": 2, "paused_since": date(2026, 12, 1)})
    assert later["paused_since"] == date(2026, 12, 1)
    resumed = case_view_changes("case.updated", {**paused, "status": "in_review"}, AT, 4,
                                {"version": 3, "paused_since": date(2026, 12, 1)})
    assert resumed["paused_since"] is None


def test_a_deadline_move_of_the_same_version_applies_and_completion_closes():
    moved = {"deadline": date(2026, 12, 18), "paused_since": None, "department": "minzheng"}
    assert case_view_changes("case.deadline_moved", moved, AT, 4, {"version": 4})["deadline"] == date(2026, 12, 18)
    done = case_view_changes("case.completed", {"accepting_town": "320583101", "department": "minzheng",
                                                "item_name": "低保", "kind": "promised", "outcome": "approved",
                                                "deadline": date(2026, 12, 18), "on_time": True,
                                                "completed_on": date(2026, 12, 10)}, AT, 5, {"version": 4})
    assert done["status"] == "completed" and done["on_time"] is True and done["completed_on"] == date(2026, 12, 10)


def test_events_that_do_not_describe_the_case_change_nothing():
    assert case_view_changes("notice.sent", {"channel": "sms"}, AT, 9) is None


def test_the_events_of_one_step_apply_in_either_order():
    """A step's case.updated and its companions (the completion, a deadline move) share a version and are handled
    in whatever order they come: each brings its part; a repeat of the update brings nothing."""
    update = {"accepting_town": "320583101", "status": "completed", "deadline": "2026-12-15"}
    completion = {"accepting_town": "320583101", "department": "minzheng", "item_name": "低保", "kind": "promised",
                  "outcome": "refused", "deadline": "2026-12-15", "on_time": True, "completed_on": "2026-12-10"}
    after_update = case_view_changes("case.completed", completion, AT, 5, {"version": 5, "status": "completed"})
    assert (after_update["outcome"], after_update["completed_on"]) == ("refused", date(2026, 12, 10))
    assert case_view_changes("case.updated", update, AT, 5, {"version": 5, "status": "completed"}) is None

    paused = {"accepting_town": "320583101", "status": "paused", "deadline": "2026-12-15"}
    after_move = case_view_changes("case.updated", paused, AT, 3,
                                   {"version": 3, "status": "in_review", "paused_since": date(2026, 11, 30)})
    assert after_move["status"] == "paused" and after_move["paused_since"] == date(2026, 11, 30)
    assert case_view_changes("case.updated", paused, AT, 3, {"version": 3, "status": "paused"}) is None


def test_a_pause_early_in_the_shanghai_morning_is_that_days():
    early = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)  # 07:30 on 2 December in Shanghai
    changes = case_view_changes("case.updated", {"status": "paused"}, early, 2, {"version": 1, "paused_since": None})
    assert changes["paused_since"] == date(2026, 12, 2)


def test_a_completion_stays_whichever_of_the_steps_two_events_comes_last():
    completion = {"outcome": "refused", "completed_on": "2026-12-01", "on_time": True}
    update = {"status": "returned"}
    done = case_view_changes("case.completed", completion, AT, 2, {"version": 1, "status": "in_review"})
    assert done["status"] == "completed"
    # the update of the same version, handled after the completion, changes nothing
    assert case_view_changes("case.updated", update, AT, 2, {"version": 2, "status": "completed"}) is None
    # the other order: the update first, then the completion still completes it
    first = case_view_changes("case.updated", update, AT, 2, {"version": 1, "status": "in_review"})
    assert first["status"] == "returned"
    assert case_view_changes("case.completed", completion, AT, 2, {"version": 2, "status": "returned"})["status"] \
        == "completed"
