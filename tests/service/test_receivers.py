"""Receivers act only on cases they have business with: notify on cases the issuing centre opened,
agent on cases its agents submitted."""
from datetime import date

import eventlet

from shared.contracts import make_message, rk_accepted, rk_completed, rk_notice_issued
from tests.service.test_notify_once import (
    CountingChannel,
    case_accepted,
    delivered,
    handled,
    metric,
    notice,
    start_notify,
)
from tests.support import TOWN_A, TOWN_B, wait_for


def dead_letters(city, instance: str, purpose: str) -> int:
    return city.queue_depth(city.queue(instance, purpose) + ".dlq")


def test_a_notice_for_a_case_notify_never_heard_of_is_not_sent_and_dead_lettered(city):
    sms = CountingChannel()
    sent = start_notify(city, sms)
    try:
        city.publish(notice(f"{TOWN_A}-20261124-00001"), rk_notice_issued(TOWN_A))
        wait_for(lambda: dead_letters(city, "notify", "notices") == 1, timeout=30,
                 what="dead-lettered after the last retry")
        assert handled(city, "error") == 1 + len(city.retry_delays), "retried, in case the case event was late"
        assert sms.calls == [], "never sent"
        assert city.stats("notify")["by_status"] == {}
    finally:
        sent.close()


def test_a_notice_that_does_not_match_its_case_is_unacceptable_at_once(city):
    sms = CountingChannel()
    sent = start_notify(city, sms)
    number = f"{TOWN_A}-20261124-00002"
    try:
        city.publish(case_accepted(number), rk_accepted(TOWN_A))
        wait_for(lambda: handled(city, "case_heard") == 1, what="the case heard of")
        # the notice claims another centre issued it for this case
        city.publish(notice(number, town=TOWN_B), rk_notice_issued(TOWN_B))
        # a case number that the town named never gave
        city.publish(notice(f"{TOWN_B}-20261124-00002", town=TOWN_A), rk_notice_issued(TOWN_A))
        wait_for(lambda: dead_letters(city, "notify", "notices") == 2, what="both dead-lettered")
        assert handled(city, "unacceptable") == 2 and handled(city, "error") == 0, "at once, not retried"
        assert sms.calls == []
    finally:
        sent.close()


def test_a_notice_for_a_known_case_is_sent_once(city):
    sms = CountingChannel()
    sent = start_notify(city, sms)
    number = f"{TOWN_A}-20261124-00003"
    try:
        city.publish(case_accepted(number), rk_accepted(TOWN_A))
        city.publish(case_accepted(number), rk_accepted(TOWN_A))  # heard twice: still one case
        city.publish(notice(number), rk_notice_issued(TOWN_A))
        [d] = delivered(city, number)
        wait_for(lambda: sent.count() == 1, what="notice.sent")
        eventlet.sleep(0.5)
        assert sms.keys == [str(d["id"])]
        assert dead_letters(city, "notify", "notices") == 0
    finally:
        sent.close()


def _completed(number: str, via_agent: str | None, town: str = TOWN_A):
    return make_message("case.completed", number, 2, {
        "accepting_town": town, "department": "minzheng", "item_name": "测试事项", "kind": "instant",
        "outcome": "approved", "reason": None, "result_number": f"MINZHENG-{number}",
        "completed_on": date(2026, 11, 24), "deadline": date(2026, 11, 24), "on_time": True,
        "via_agent": via_agent}, producer="test")


def test_agent_owes_no_reply_for_a_case_it_never_heard_of(city):
    city.start("agent")
    queue = city.queue("agent", "results")
    unknown, known, walk_in = (f"{TOWN_A}-20261124-0001{i}" for i in range(3))

    city.publish(_completed(unknown, via_agent="agent-7"), rk_completed(TOWN_A))
    wait_for(lambda: dead_letters(city, "agent", "results") == 1, timeout=30,
             what="the unknown case's result dead-lettered after the last retry")
    assert city.stats("agent")["replies_owed"] == 0

    city.publish(case_accepted(known, via_agent="agent-7"), rk_accepted(TOWN_A))
    city.publish(case_accepted(walk_in), rk_accepted(TOWN_A))  # no agent: not the station's
    city.publish(_completed(known, via_agent="agent-7"), rk_completed(TOWN_A))
    city.publish(_completed(walk_in, via_agent=None), rk_completed(TOWN_A))
    wait_for(lambda: city.stats("agent")["replies_owed"] == 1, what="a reply owed for the agent's case")
    wait_for(lambda: metric(city, "agent", "tongban_messages_handled_total", queue=queue, outcome="not_ours") == 2,
             what="the walk-in case left alone")
    replies = city.call("GET", "agent", "/replies", city.ops).json()["replies"]
    assert [(r["case_number"], r["agent"]) for r in replies] == [(known, "agent-7")]
    assert city.stats("agent")["agent_cases"] == 1
    assert dead_letters(city, "agent", "results") == 1
