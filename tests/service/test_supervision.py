"""Deadline supervision (电子监察), the board and the breach forecast, through the real broker with a manual clock."""
from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from services.evaluation.supervision import SupervisionConfig, Supervisor
from shared.platform import Platform
from shared.workdays import WorkingCalendar
from tests.support import TOWN_A, TOWN_B, wait_for

RS_MATERIALS = ["idcard", "form", "receipt"]  # RS-0008: renshe at the town, 15 working days promised


def _metric(city, instance, name, **labels) -> float | None:
    for family in text_string_to_metric_families(city.call("GET", instance, "/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None


def _get(city, path, token, status=200):
    r = city.call("GET", "evaluation", path, token)
    assert r.status_code == status, r.text
    return r.json()


def _warnings(city, token, number):
    return _get(city, f"/supervision/warnings?case={number}", token)["warnings"]


def test_a_case_goes_yellow_then_red_once_a_paused_one_stays_green_and_other_towns_see_nothing(any_city):
    city = any_city
    from shared.clock import ManualClock

    clock = ManualClock(datetime(2026, 11, 2, 1, 0, tzinfo=UTC))  # Monday 2 November 2026, 09:00 in Shanghai
    city.start("intake-320583101", "evaluation", build={"clock": clock}, extra={"supervision_interval": 0.2})
    late = city.submit("RS-0008", materials=RS_MATERIALS).json()
    assert late["deadline"] == "2026-11-23"
    late = late["case_number"]
    held = city.submit("RS-0008", materials=RS_MATERIALS).json()["case_number"]
    assert city.act(held, "pause", {"procedure": "现场勘察", "reason": "核实经营场所"}).json()["status"] == "paused"
    supervisor = city.token("supervisor", "city", "supervisor-1")
    board = wait_for(lambda: (b := _get(city, "/board", supervisor))["cases"] and len(b["cases"]) == 2
                     and any(c["paused"] for c in b["cases"]) and b, what="both cases on the board, one paused")
    assert board["counts"] == {"red": 0, "yellow": 0, "green": 2, "paused": 1}

    clock.advance(days=18)  # Friday 20 November: one working day left
    (yellow,) = wait_for(lambda: _warnings(city, supervisor, late), what="the yellow warning")
    assert (yellow["colour"], yellow["working_days_left"], yellow["deadline"]) == ("yellow", 1, "2026-11-23")
    assert yellow["rule"] == "at_most_1_working_days_left" and yellow["department"] == "renshe"
    assert yellow["first_responder"] == "clerk-1", "the window's first responder is the person named"
    board = _get(city, f"/board?town={TOWN_A}", supervisor)
    assert [(c["case_number"], c["colour"]) for c in board["cases"]] == [(late, "yellow"), (held, "green")]

    clock.advance(days=4)  # Tuesday 24 November: the deadline has passed
    red = wait_for(lambda: [w for w in _warnings(city, supervisor, late) if w["colour"] == "red"], what="red")[0]
    assert red["working_days_left"] == -1 and red["rule"] == "deadline_passed"
    board = _get(city, "/board", supervisor)
    assert board["cases"][0]["case_number"] == late and board["cases"][0]["colour"] == "red"
    assert board["counts"]["red"] == 1 and board["cases"][1]["paused"] and board["cases"][1]["colour"] == "green"
    assert _warnings(city, supervisor, held) == [], "a paused case's clock stands still: never warned"
    earlier = next(w for w in _warnings(city, supervisor, late) if w["colour"] == "yellow")
    assert earlier["resolution"] == "turned_red"

    # red escalated by itself: a supervision notice for the department head and the town's supervisor
    (notice,) = _get(city, "/supervision/notices", supervisor)["notices"]
    assert (notice["case_number"], notice["warning_id"]) == (late, red["id"])
    assert notice["department_head"] == f"department:renshe@{TOWN_A}" and notice["supervisor"] == f"town:{TOWN_A}"
    assert late in notice["text"] and "督办" in notice["text"]
    head = city.token("department_head", f"department:renshe@{TOWN_A}", "head-renshe")
    town_supervisor = city.token("supervisor", f"town:{TOWN_A}", "supervisor-a")
    assert [n["id"] for n in _get(city, "/supervision/notices", head)["notices"]] == [notice["id"]]
    assert [n["id"] for n in _get(city, "/supervision/notices", town_supervisor)["notices"]] == [notice["id"]]

    # each warning went out as an event (supervision.warned.<town>), which lands on the case's timeline
    events = wait_for(lambda: len(e := [x for x in _get(city, f"/cases/{late}/events", supervisor)["events"]
                                        if x["type"] == "supervision.warned"]) == 2 and e, what="both events")
    assert [e["data"]["colour"] for e in events] == ["yellow", "red"]
    assert _metric(city, "evaluation", "tongban_warnings_total", colour="yellow") == 1
    assert _metric(city, "evaluation", "tongban_warnings_total", colour="red") == 1
    assert _metric(city, "evaluation", "tongban_open_warnings", colour="red", town=TOWN_A, department="renshe") == 1

    # once: a restarted watcher (its first pass at once) raises nothing again
    city.stop("evaluation")
    city.start("evaluation", build={"clock": clock}, extra={"supervision_interval": 0.2})
    wait_for(lambda: _metric(city, "evaluation", "tongban_open_warnings", colour="red", town=TOWN_A,
                             department="renshe") == 1, what="a pass of the restarted watcher")
    assert [w["colour"] for w in _warnings(city, supervisor, late)] == ["red", "yellow"]
    assert _metric(city, "evaluation", "tongban_warnings_total", colour="red") == 0
    assert len(_get(city, "/supervision/notices", supervisor)["notices"]) == 1
    # two watchers at once: one that read the case before the other's warning committed raises nothing either
    (container,) = city.cluster.by_instance("evaluation").runner.containers
    store = next(d for d in container.dependencies if isinstance(d, Platform)).store
    again = Supervisor(clock=clock, calendar=WorkingCalendar(), config=SupervisionConfig(), instance="evaluation")
    assert again._raise(store, late, "red", clock.today(), None) is None
    assert len(_warnings(city, supervisor, late)) == 2

    # another town's supervisor, another department's head: nothing, and another town's board is not found
    other = city.token("supervisor", f"town:{TOWN_B}", "supervisor-b")
    assert _get(city, "/board", other)["cases"] == []
    assert _get(city, f"/board?town={TOWN_A}", other, 404)["error"] == "not_found"
    assert _get(city, "/supervision/notices", other)["notices"] == []
    assert _get(city, "/supervision/warnings", other)["warnings"] == []
    minzheng = city.token("department_head", f"department:minzheng@{TOWN_A}", "head-minzheng")
    assert _get(city, "/supervision/notices", minzheng)["notices"] == []
    assert _get(city, "/board", minzheng)["cases"] == []
    assert _get(city, "/board?department=renshe", minzheng, 404)
    assert [c["case_number"] for c in _get(city, "/board", head)["cases"]] == [late, held]
    assert _get(city, "/board", city.token("clerk", f"town:{TOWN_A}"), 403)
    assert _get(city, "/board?town=abc", supervisor, 400)


def test_forecast_on_a_backlog_at_a_slow_decision_rate(city):
    from shared.clock import ManualClock

    clock = ManualClock(datetime(2026, 11, 2, 1, 0, tzinfo=UTC))  # Monday 2 November 2026
    city.start("intake-320583101", "approval-renshe", "evaluation", build={"clock": clock},
               extra={"supervision_interval": 0.2, "forecast_window_days": 5})
    numbers = [city.submit("RS-0008", materials=RS_MATERIALS).json()["case_number"] for _ in range(4)]
    clock.advance(days=14)  # Monday 16 November: the office decides one case in the week
    city.decide("renshe", numbers[0], TOWN_A)
    supervisor = city.token("supervisor", f"town:{TOWN_A}", "supervisor-a")
    clock.advance(days=1)  # Tuesday 17 November: the other three are due Monday 23, five working days away

    def office(days=5):
        offices = _get(city, f"/forecast?department=renshe&days={days}", supervisor)["offices"]
        return next((o for o in offices if (o["town"], o["department"]) == (TOWN_A, "renshe")), None)

    f = wait_for(lambda: (o := office()) and o["open_cases"] == 3 and o["decisions"] == 1 and o,
                 what="the decision and the completion seen")
    # one decision in five working days: 0.2 a day decides one of the three by Monday
    assert (f["rate"], f["breaches"], f["overdue"]) == (0.2, 2, 0)
    assert [b["case_number"] for b in f["first_breaches"]] == numbers[2:]
    assert all(b["deadline"] == "2026-11-23" and b["working_days_available"] == 5 for b in f["first_breaches"])
    assert f["first_breaches"][0]["expected_decision"] == "2026-11-30"  # the 10th working day from today
    assert (f["needed_rate"], f["needed_per_day"]) == (0.6, 1), "three cases in five working days"
    assert office(days=4)["breaches"] == 0, "nothing falls due in the next four working days"
    assert _get(city, "/forecast?days=0", supervisor, 400)["error"] == "bad_request"
    assert _get(city, "/forecast?days=x", supervisor, 400)

    board = _get(city, "/board", supervisor)
    assert board["forecast"]["breaches"] == 2 and board["forecast"]["offices"][0]["needed_per_day"] == 1
    wait_for(lambda: _metric(city, "evaluation", "tongban_forecast_breaches", town=TOWN_A, department="renshe") == 2,
             what="the forecast metric")
    head = city.token("department_head", f"department:renshe@{TOWN_A}", "head-renshe")
    assert _get(city, "/forecast", head)["breaches"] == 2
    assert _get(city, "/forecast", city.token("supervisor", f"town:{TOWN_B}"))["offices"] == []
    assert _get(city, f"/forecast?town={TOWN_A}", city.token("supervisor", f"town:{TOWN_B}"), 404)
