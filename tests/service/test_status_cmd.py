"""`tongban status` against a running suite on the real broker: all well while idle; a department's consumer
stopped with work waiting and a dead letter are marked as needing a person, and the exit code says so."""
import json

import pytest

from tests.support import TOWN_A, wait_for
from tongban import cli


@pytest.fixture
def running(city, monkeypatch):
    """The suite running, the CLI pointed at its broker (as the admin) and bus prefix."""
    monkeypatch.setenv("TONGBAN_AMQP_URL", city.amqp_url)
    monkeypatch.setenv("TONGBAN_BUS_PREFIX", city.prefix)
    monkeypatch.delenv("TONGBAN_PORTAL_UPSTREAMS", raising=False)
    city.start()
    return city


def status(city, capsys, *args) -> tuple[int, str]:
    """`tongban status` with the running instances named as the portal's upstreams would name them."""
    instances = {s.instance: s.base_url for s in city.layout if s.service != "portal"}
    capsys.readouterr()  # the services' own log lines so far
    code = cli.main(["status", "--instances", json.dumps(instances), *args])
    return code, capsys.readouterr().out


def as_json(out: str) -> dict:
    """The report among whatever the services in this process logged meanwhile."""
    return json.loads(next(line for line in out.splitlines() if line.startswith('{"bus_prefix"')))


def test_a_healthy_idle_suite_is_all_well(running, capsys):
    city = running
    # a suite just started settles (its first health checks, the reference catch-up) within seconds
    code, out = wait_for(lambda: (r := status(city, capsys, "--json"))[0] == 0 and r, timeout=30,
                         what="status exit 0")
    report = as_json(out)
    assert report["needs_person"] is False and report["attention"] == []
    instances = {line["subject"]: line for line in report["lines"] if line["section"] == "instances"}
    assert set(instances) == {s.instance for s in city.layout if s.service != "portal"}
    assert {line["state"] for line in instances.values()} == {"ok"}
    queues = {line["subject"]: line for line in report["lines"] if line["section"] == "queues"}
    work = f"{city.prefix}.approval-minzheng.work"
    assert queues[work]["figures"]["consumers"] == 1 and queues[work]["figures"]["ready"] == 0

    code, out = status(city, capsys)
    assert code == 0
    assert "all well: nothing needs a person" in out
    assert "approval-minzheng" in out and "!" not in out


def test_a_stopped_consumer_with_work_waiting_and_a_dead_letter_need_a_person(running, capsys):
    city = running
    work = f"{city.prefix}.approval-minzheng.work"
    dlq = f"{city.prefix}.evaluation.events.dlq"
    city.stop("approval-minzheng")
    r = city.submit("MZ-0001", TOWN_A)  # an instant case: its work goes to 民政, whose consumer is gone
    assert r.status_code == 201, r.text
    wait_for(lambda: city.queue_depth(work) == 1, what="the work waiting")
    # a body nobody can read is dead-lettered at once (only evaluation binds supervision.*)
    city.publish_raw("not json at all", "supervision.garbled")
    wait_for(lambda: city.queue_depth(dlq) == 1, what="a dead letter")

    code, out = status(city, capsys, "--json")
    assert code == 1
    report = as_json(out)
    assert report["needs_person"] is True
    lines = {line["subject"]: line for line in report["lines"]}
    assert lines[work]["needs_person"] and lines[work]["state"] == "no consumer"
    assert (lines[work]["figures"]["ready"], lines[work]["figures"]["consumers"]) == (1, 0)
    assert lines[dlq]["needs_person"] and lines[dlq]["section"] == "dead_letters"
    assert "1 dead letter(s)" in lines[dlq]["attention"]
    assert lines["approval-minzheng"]["state"] == "down"  # its instance does not answer either
    # the renshe department still consumes: its queue is not marked
    assert not lines[f"{city.prefix}.approval-renshe.work"]["needs_person"]
    assert f"{work}: 1 message(s) waiting and no consumer" in " ".join(report["attention"])

    code, out = status(city, capsys)
    assert code == 1
    marked = [row for row in out.splitlines() if row.lstrip("│┃ ").startswith("!")]
    # the tables name queues without the bus prefix
    assert any(" approval-minzheng.work " in row and "no consumer" in row for row in marked), out
    assert any(" evaluation.events.dlq " in row for row in marked), out
    assert any(" approval-minzheng " in row and "does not answer" in row for row in marked), out
    assert "needs a person:" in out
