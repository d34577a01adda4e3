"""`tongban dlq replay` and `tongban dlq purge` on the real broker: bounded replays, purges that ask first."""
import io
import json

import pytest
from kombu import Connection, Exchange, Producer, Queue

from shared.contracts import make_message
from tests.service.probe import build_probe
from tests.support import TOWN_A, wait_for
from tongban import cli


class _Terminal(io.StringIO):
    """stdin as an operator at a terminal who will type `answer`."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def operator(city, monkeypatch):
    """The city, with the CLI pointed at it (the city removes every queue of its bus afterwards)."""
    monkeypatch.setenv("TONGBAN_AMQP_URL", city.amqp_url)
    monkeypatch.setenv("TONGBAN_BUS_PREFIX", city.prefix)
    yield city


def _probe(case_number: str):
    return make_message("case.updated", case_number, 1, {
        "accepting_town": TOWN_A, "action": "probe", "status": "in_review", "deadline": None}, producer="test")


def test_replay_moves_no_more_than_were_present_while_they_fail_again(operator, capsys):
    city = operator
    handled, poisoned = [], {f"P-{i}" for i in range(23)}  # the handler fails on every one, replayed or not
    settings = city.base.with_(service="probe", instance="probe", http_port=city.layout[0].http_port)
    city.cluster.start(settings, service_cls=build_probe(settings, handled, poisoned))
    queue = f"{city.prefix}.probe.probe"
    dlq = queue + ".dlq"
    for case in sorted(poisoned):
        city.publish(_probe(case), "probe.x")
    wait_for(lambda: city.queue_depth(dlq) == 23, what="23 dead letters")

    # each replayed letter fails at once and is dead-lettered again, to the end of the queue replay reads
    assert cli.main(["dlq", "replay", dlq, "--limit", "5"]) == 0
    assert f"replayed 5 message(s) from {dlq} of 23 present" in capsys.readouterr().out
    wait_for(lambda: city.queue_depth(dlq) == 23 and city.queue_depth(queue) == 0, what="the 5 back")

    assert cli.main(["dlq", "replay", dlq]) == 0
    out = capsys.readouterr().out
    assert f"replayed 23 message(s) from {dlq} of 23 present" in out, out
    wait_for(lambda: city.queue_depth(dlq) == 23 and city.queue_depth(queue) == 0, what="all 23 back")
    assert handled == []


@pytest.fixture
def dead_letters(operator):
    """A dead-letter queue of this deployment holding three letters, published straight into it."""
    city = operator
    dlq = f"{city.prefix}.manual.work.dlq"
    with Connection(city.amqp_url, transport_options={"confirm_publish": True}) as conn:
        Queue(dlq, durable=True, channel=conn.default_channel).declare()
        producer = Producer(conn.default_channel, exchange=Exchange("", type="direct"))
        for i in range(3):
            producer.publish(json.dumps({"type": "case.updated", "case_number": f"D-{i}"}), routing_key=dlq,
                             content_type="application/json", content_encoding="utf-8",
                             headers={"tongban-reason": "test"})
    wait_for(lambda: city.queue_depth(dlq) == 3, what="three dead letters")
    return dlq


def test_purge_asks_first_and_purges_on_yes(operator, dead_letters, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", _Terminal("y\n"))
    assert cli.main(["dlq", "purge", dead_letters]) == 0
    out = capsys.readouterr().out
    assert f"purge 3 dead letter(s) from {dead_letters}? [y/N]" in out
    assert f"purged 3 message(s) from {dead_letters}" in out
    assert operator.queue_depth(dead_letters) == 0


@pytest.mark.parametrize("answer", ["\n", "n\n", "nope\n", ""])
def test_purge_keeps_the_letters_unless_the_operator_says_yes(operator, dead_letters, monkeypatch, capsys, answer):
    monkeypatch.setattr("sys.stdin", _Terminal(answer))
    assert cli.main(["dlq", "purge", dead_letters]) == 1
    out = capsys.readouterr().out
    assert "[y/N]" in out and f"nothing purged from {dead_letters}" in out
    assert operator.queue_depth(dead_letters) == 3


def test_purge_with_no_terminal_refuses_unless_told_yes(operator, dead_letters, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))  # a pipe: nobody there to ask
    assert cli.main(["dlq", "purge", dead_letters]) == 2
    captured = capsys.readouterr()
    assert "not a terminal" in captured.err and "--yes" in captured.err
    assert "purged" not in captured.out
    assert operator.queue_depth(dead_letters) == 3

    assert cli.main(["dlq", "purge", dead_letters, "--yes"]) == 0
    captured = capsys.readouterr()
    assert f"purged 3 message(s) from {dead_letters}" in captured.out and "[y/N]" not in captured.out
    assert operator.queue_depth(dead_letters) == 0
