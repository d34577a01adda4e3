"""Two replicas of one approval department (issue 12): the shape a department scales out in.

A replica is the same instance run again — the same instance name, settings and database, another HTTP port
(k8s: replicas of one Deployment) — so both consume the department's one work queue as competing consumers
(shared.registry) and share its PostgreSQL database: the outbox (relays claim disjoint windows), the inbox,
the work items. Cases routed to the department, instant ones decided by the catalogue's rule and promised
ones decided over HTTP at either replica (some at both at once), are each decided exactly once: one decided
work item, one `decide` in approval's history, one case.decided in its outbox, one decision in the intake's
ledger; nothing retried or dead-lettered. And replicas that start together on a fresh database both start
(their migrations take turns, across processes too)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import eventlet
import pytest
import requests
import sqlalchemy as sa

from shared.bus import consumer_counts
from shared.platform import Platform
from tests.support import TOWN_A, City, _free_port_block, wait_for

INTAKE = f"intake-{TOWN_A}"
APPROVAL = "approval-minzheng"
N_INSTANT = 40
ROOT = Path(__file__).resolve().parents[2]
PROMISED = {"MZ-0005": ["idcard", "hukou", "bank"], "MZ-0004": ["idcard", "apply", "proof"]}


@pytest.fixture
def pg_city(tmp_path, postgres, amqp_url):
    c = City(amqp_url=amqp_url, data_dir=tmp_path / "data", backend="postgres", postgres=postgres,
             departments=("minzheng",))
    yield c
    c.close()


def _platforms(city) -> list[Platform]:
    """The Platform of every running replica of the department."""
    out = []
    for r in city.cluster.running:
        if r.settings.instance == APPROVAL:
            (container,) = r.runner.containers
            out.append(next(d for d in container.dependencies if isinstance(d, Platform)))
    return out


def _handled(platform: Platform, queue: str) -> float:
    return sum(s.value for m in platform.metrics.messages_handled.collect() for s in m.samples
               if s.name.endswith("_total") and s.labels["queue"] == queue and s.labels["outcome"] == "ok")


def _settled(platform: Platform) -> float:
    return sum(s.value for m in platform.metrics.messages_settled.collect() for s in m.samples
               if s.name.endswith("_total"))


def test_two_replicas_of_a_department_decide_each_case_once(pg_city):
    city = pg_city
    one = city.settings(APPROVAL)
    two = one.with_(http_port=_free_port_block(1))  # the same instance and database, another port
    assert two.instance == one.instance and two.db_url == one.db_url
    city.ensure_users()
    city.cluster.start_all([one, two])  # at once, on a fresh database
    work_queue = city.queue(APPROVAL, "work")
    wait_for(lambda: consumer_counts(city.amqp_url, [work_queue])[work_queue] == 2, what="both replicas consuming")
    urls = [one.base_url, two.base_url]
    city.start(INTAKE)  # after the department: it is served from the first case on

    # instant cases, decided by the rule at whichever replica takes the routed work
    instant = []
    for _ in range(N_INSTANT):
        r = city.submit("MZ-0001")
        assert r.status_code == 201, r.text
        instant.append(r.json()["case_number"])
    # promised cases, decided by an approver over HTTP
    promised = []
    for i in range(8):
        code = list(PROMISED)[i % 2]
        r = city.submit(code, materials=PROMISED[code])
        assert r.status_code == 201, r.text
        promised.append(r.json()["case_number"])

    token = city.approver("minzheng", TOWN_A)
    session = requests.Session()

    def items_at(url: str) -> dict:
        listed = session.get(f"{url}/work-items", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert listed.status_code == 200, listed.text
        return {i["case_number"]: i["id"] for i in listed.json()["items"]}

    work = wait_for(lambda: set(promised) <= set(w := items_at(urls[0])) and w,
                    what="every promised case's work item", timeout=40)
    assert {n: work[n] for n in promised} == {n: items_at(urls[1])[n] for n in promised}, "one worklist"

    def decide(url: str, number: str) -> int:
        with requests.Session() as s:
            return s.post(f"{url}/work-items/{work[number]}/decision", json={"outcome": "approved"},
                          headers={"Authorization": f"Bearer {token}"}, timeout=30).status_code

    # half at one replica or the other; half at both at once: one decision each, the other answered 409
    for i, number in enumerate(promised[:4]):
        assert decide(urls[i % 2], number) == 200
    pool = eventlet.GreenPool(8)
    raced = {n: [pool.spawn(decide, url, n) for url in urls] for n in promised[4:]}
    for number, threads in raced.items():
        assert sorted(t.wait() for t in threads) == [200, 409], number

    everything = instant + promised
    wait_for(lambda: all(city.case(n)["status"] == "completed" for n in everything), timeout=60,
             what="every case completed at the window")

    # the intake's ledger: one decision per case (the department's), one `decide` in its history
    for number in everything:
        case = city.case(number)
        actions = Counter(h["action"] for h in case["history"])
        assert actions["decide"] == 1 and actions["record_decision"] == 0, (number, actions)
        assert case["outcome"] == "approved"

    # approval's database, shared by the replicas
    engine = sa.create_engine(one.db_url)
    try:
        with engine.connect() as conn:
            items = conn.execute(sa.text("SELECT case_number, status, decided_by FROM work_items")).all()
            decides = Counter(r[0] for r in conn.execute(sa.text(
                "SELECT i.case_number FROM work_actions a JOIN work_items i ON i.id = a.work_item_id "
                "WHERE a.action = 'decide'")))
            outbox = conn.execute(sa.text("SELECT routing_key, body, published_at FROM outbox")).all()
            inbox = conn.execute(sa.text("SELECT consumer, count(*) FROM inbox GROUP BY consumer")).all()
    finally:
        engine.dispose()
    assert sorted(r[0] for r in items) == sorted(everything), "one work item per case"
    assert {r[1] for r in items} == {"decided"}
    assert Counter(r[2] for r in items)["rule:instant"] == N_INSTANT
    assert decides == Counter(everything), "one decide in approval's history per case"
    decided = Counter(json.loads(body)["case_number"] for key, body, _ in outbox if key.startswith("case.decided."))
    assert decided == Counter(everything), "one case.decided per case in the outbox"
    assert all(published is not None for *_, published in outbox), "every message left"
    assert dict(inbox)[work_queue] == len(everything), "each routed message handled once"

    # both replicas took routed work; none of it failed, was retried or dead-lettered
    platforms = _platforms(city)
    assert len(platforms) == 2
    shares = [_handled(p, work_queue) for p in platforms]
    assert all(shares) and sum(shares) == len(everything), shares
    assert [_settled(p) for p in platforms] == [0, 0]
    for purpose in ("work", "closures", "refusals", "deadlines"):
        assert city.queue_depth(city.queue(APPROVAL, purpose) + ".dlq") == 0, purpose
    for purpose in ("decisions", "arrivals"):
        assert city.queue_depth(city.queue(INTAKE, purpose) + ".dlq") == 0, purpose
    assert city.queue_depth(f"{city.prefix}.broker.redelivered.dlq") == 0


# --- replicas starting together on a fresh database, in processes of their own (as pods are) -----------------

MIGRATE = """
import sys, time
from services.approval.service import VERSIONS
from shared.store import Store
store = Store(sys.argv[1], VERSIONS, "unused")
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))  # both at the same moment
try:
    store.migrate()
    print("ok")
except Exception as exc:
    print(type(exc).__name__, str(exc)[:300])
finally:
    store.dispose()
"""


@pytest.mark.full  # long
def test_replicas_starting_together_migrate_one_database_in_turn(postgres):
    """Without the turn-taking the second replica's CREATE TABLE collides with the first's and it fails."""
    url = postgres.new(f"replicas_{uuid.uuid4().hex[:4]}")
    at = str(time.time() + 6)  # after both have imported the service
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    replicas = [subprocess.Popen([sys.executable, "-c", MIGRATE, url, at], env=env, cwd=ROOT, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outcomes = [p.communicate(timeout=120) for p in replicas]
    assert [out.strip() for out, _ in outcomes] == ["ok", "ok"], outcomes
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar() >= 1
            assert conn.execute(sa.text("SELECT count(*) FROM work_items")).scalar() == 0
    finally:
        engine.dispose()
