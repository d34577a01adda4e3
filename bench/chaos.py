"""Chaos: a city at work while its broker, database and services fail, then the books (issue 14).

    .venv/bin/python bench/chaos.py                          # 10,000 cases, every fault three times (~40 min)
    .venv/bin/python bench/chaos.py --cases 500 --short      # what CI runs: each fault once, shorter outages

The suite runs on PostgreSQL, a process per service (the two towns' windows; the village and town agents;
four approval departments; notify; evaluation), with our SMS gateway and a local SMTP server as the outlets.
Simulated people drive it over HTTP: windows and village stations submit every kind of case (instant, promised,
joint, consultation, escalated through the town's 初审 and the town agents, city-wide for the other town's
residents, incomplete then supplemented, returned), approvers decide every work item, town agents relay and
return escalations. Like real clients they retry what failed with the same Idempotency-Key.

Meanwhile, at random moments (one at a time), the run injects each fault:
  rabbitmq_restart   the broker application stopped and started (`rabbitmqctl stop_app` / `start_app`)
  postgres_restart   `pg_ctlcluster … restart --mode fast`: every connection of every service cut
  db_unavailable     one instance's database refuses connections for 60 s (20 s with --short)
  queue_full         evaluation killed while an operator policy caps its disk-backed queue: the queue fills
                     to the cap, the windows' publishes are rejected (reject-publish) and wait in their outboxes
  kill:<service>     SIGKILL of each service's process, started again a moment later
and measures the time to recover: from the fault's end until a canary case submitted then has been decided,
its result notice delivered, and evaluation has seen it completed.

Afterwards it checks: every case a client was told was accepted exists once and is finished; one decision per
department (intake's and approval's books agree, none twice); exactly one SMS per notice at the gateway and
one e-mail per notice at the SMTP server; the books of every service reconciled; every dead-letter queue
empty; every outbox published; no unmasked personal number in the logs, metrics or lists (the PII audit).
Prints the figures and writes bench/results/chaos.json (or --json PATH). Exit 0 when every check holds.

It restarts only the local RabbitMQ and PostgreSQL the project's set-up runs (127.0.0.1), as root.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
import uuid
import warnings
from collections import Counter
from pathlib import Path

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
warnings.filterwarnings("ignore", message="DSA is deprecated")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TONGBAN_DEV", "1")
# nine instances, the driver and the checks on one PostgreSQL (max_connections 100): small pools
os.environ.setdefault("TONGBAN_DB_POOL_SIZE", "3")
os.environ.setdefault("TONGBAN_DB_MAX_OVERFLOW", "2")

from bench.city import MGMT_AUTH, MGMT_URL, TOWNS, Suite, make_jobs  # noqa: E402
from bench.relay import AMQP_URL, PG_URL  # noqa: E402
from shared.vocabulary import OPEN_CASE_STATUSES, TERMINAL_CASE_STATUSES  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "chaos.json"
# A failed message waits 1, 5, 15, 30, then 60 s before its tries (TONGBAN_RETRY_DELAYS; the default ladder
# goes on to 5 and 30 minutes): a message that failed during a fault is back within minutes, so a run settles
# in minutes. The ladder changes when a message comes back, not whether; the longest outage here (60 s) ends
# before the last try.
RETRY_DELAYS = (1.0, 5.0, 15.0, 30.0, 60.0)
SERVICES = ("intake", "agent", "approval", "notify", "evaluation")
FAULTS = ("rabbitmq_restart", "postgres_restart", "db_unavailable", "queue_full",
          *(f"kill:{s}" for s in SERVICES))
FINISHED = tuple(str(s) for s in TERMINAL_CASE_STATUSES)
CANARY_ITEM = "MZ-0002"  # a promised item of 民政 at the town: window, approver, window, notify, evaluation


def say(*a):
    print("[chaos]", *a, file=sys.stderr, flush=True)


def root_cmd(*cmd: str, timeout: float = 120) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {(r.stderr or r.stdout)[-500:]}")


def local_only() -> None:
    """Refuse to touch a broker or database that is not this machine's own."""
    from urllib.parse import urlsplit

    for url in (AMQP_URL, PG_URL):
        if urlsplit(url).hostname not in ("127.0.0.1", "localhost"):
            raise SystemExit(f"chaos restarts only this machine's RabbitMQ and PostgreSQL; {url} is elsewhere")
    if os.geteuid() != 0:
        raise SystemExit("chaos restarts RabbitMQ and PostgreSQL: run it as root (as the project's set-up does)")


class ChaosSuite(Suite):
    """The bench's suite with a process per service, so each can be killed on its own."""

    GROUPS = tuple((s, (s,)) for s in SERVICES)

    def group(self, name: str) -> list:
        return [s for s in self.layout if s.service == name]

    def start(self, name: str) -> float:
        started = time.monotonic()
        group = self.group(name)
        if name == "notify":
            group = [s.with_(extra={**s.extra, **self.outlets.notify_extra()}) for s in group]
        self.processes.start(name, group)
        return started

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.kill()  # SIGKILL: no goodbye, whatever was in flight
        proc.wait(30)
        if proc.stdout:
            proc.stdout.close()

    def down(self) -> None:
        if self.broker is not None:  # its connection died with the broker restarts: closing may fail
            try:
                self.broker.close()
            except Exception:
                pass
            self.broker = None
        super().down()

    def db_url(self, instance: str) -> str:
        return next(s.database_url for s in self.layout if s.instance == instance)


class People:
    """The city's people as green threads: windows and stations submitting, approvers, town agents."""

    def __init__(self, suite: ChaosSuite, rng: random.Random):
        import requests
        from requests.adapters import HTTPAdapter

        self.suite, self.rng = suite, rng
        self.http = requests.Session()
        self.http.mount("http://", HTTPAdapter(pool_connections=16, pool_maxsize=500))
        self.accepted: dict[str, dict] = {}  # case number -> what the client was told, and the job
        self.submitted = 0
        self.counts = Counter()
        self.running = True
        self.closed_for_submissions = False

    # --- HTTP with a client's patience -------------------------------------------------------------------

    def call(self, method: str, url: str, token: str, body=None, key: str | None = None, patience: float = 900,
             ok=(200, 201), settled=(409,)) -> tuple[int, dict | None]:
        """Try until the service answers 2xx, or an answer that retrying will not change (4xx but 429); the
        same Idempotency-Key each time. (status, body); status 0 when patience ran out."""
        import eventlet

        headers = {"Authorization": f"Bearer {token}"}
        if key:
            headers["Idempotency-Key"] = key
        deadline, pause = time.monotonic() + patience, 0.5
        while time.monotonic() < deadline:
            try:
                r = self.http.request(method, url, json=body, headers=headers, timeout=30)
            except Exception as exc:
                self.counts[f"retry:{type(exc).__name__}"] += 1
            else:
                if r.status_code in ok or r.status_code in settled:
                    return r.status_code, (r.json() if r.content else None)
                if 400 <= r.status_code < 500 and r.status_code != 429:
                    self.counts[f"refused:{r.status_code}"] += 1
                    return r.status_code, (r.json() if r.content else None)
                self.counts[f"retry:{r.status_code}"] += 1
            eventlet.sleep(pause)
            pause = min(5.0, pause * 1.5)
        self.counts["gave_up"] += 1
        return 0, None

    # --- applicants at windows and stations --------------------------------------------------------------

    def submit(self, job: tuple) -> str | None:
        where, place, item, applicant = job
        suite = self.suite
        body = {"item_code": item["code"], "applicant": applicant,
                "materials": [m["code"] for m in item["materials"] if m["required"]]}
        luck = self.rng.random()
        missing = [m["code"] for m in item["materials"] if m["required"] and not m["deferrable"]]
        if where == "window" and item["kind"] != "consultation":
            if luck < 0.06 and missing:  # incomplete: one material forgotten (补齐补正)
                body["materials"] = [c for c in body["materials"] if c != missing[0]]
            elif luck > 0.97:
                body["return_reason"] = "申请事项不属于受理范围"  # 退回件
        key = uuid.uuid4().hex
        self.submitted += 1
        if where == "window":
            url, token = f"{suite.urls['intake-' + place]}/cases", suite.clerks[place]
        else:
            body["authorisation"] = {"by": applicant["name"], "matters": f"代为申请{item['name']}",
                                     "signed_at": time.strftime("%Y-%m-%dT%H:%M:%S+08:00"), "method": "手写签名"}
            url, token = f"{suite.urls['agent']}/station/submissions", suite.agents[place]
        status, case = self.call("POST", url, token, body, key=key)
        if status not in (200, 201):
            self.counts[f"not_accepted:{where}:{status}"] += 1
            return None
        if where == "station":
            self.counts["station_submissions"] += 1
            self.counts[f"kind:station:{item['kind']}"] += 1
            return case.get("case_number")
        number = case["case_number"]
        self.accepted[number] = {"town": place, "item": item["code"], "kind": item["kind"], "key": key}
        self.counts[f"kind:window:{item['kind']}"] += 1
        self.follow_up(place, number, case)
        return number

    def follow_up(self, town: str, number: str, case: dict) -> None:
        import eventlet

        base, token = self.suite.urls["intake-" + town], self.suite.clerks[town]
        if case["status"] == "pending_materials":
            self.counts["kind:supplement"] += 1
            eventlet.sleep(self.rng.uniform(1, 5))  # the applicant comes back with the missing material
            codes = [m["code"] for m in case["missing_materials"]]
            status, after = self.call("POST", f"{base}/cases/{number}/supplement", token, {"materials": codes})
            case = after if status in (200, 201) else self.call("GET", f"{base}/cases/{number}", token)[1] or case
        if case.get("status") == "initial_review":  # 初审 at the town, then up to the city
            self.call("POST", f"{base}/cases/{number}/initial-review", token)
        if case.get("status") == "returned":
            self.counts["kind:returned"] += 1

    # --- staff -------------------------------------------------------------------------------------------

    def approvers(self) -> None:
        import eventlet

        suite, pool = self.suite, eventlet.GreenPool(20)
        while self.running:
            for dept in ("minzheng", "renshe", "yibao", "weijian"):
                try:
                    r = self.http.get(f"{suite.urls['approval-' + dept]}/work-items", params={"limit": 500},
                                      headers={"Authorization": f"Bearer {suite.ops}"}, timeout=30)
                    items = r.json()["items"] if r.status_code == 200 else []
                except Exception:
                    items = []
                for it in items:
                    pool.spawn(self.decide, dept, it)
                pool.waitall()
            eventlet.sleep(0.5)

    def decide(self, dept: str, it: dict) -> None:
        body = {"outcome": "refused", "reason": "申请材料与实际情况不符"} if self.rng.random() < 0.07 \
            else {"outcome": "approved"}
        token = self.suite.approver(dept, it["handling_town"])
        status, _ = self.call("POST", f"{self.suite.urls['approval-' + dept]}/work-items/{it['id']}/decision",
                              token, body, patience=120)
        self.counts[f"decision:{status}"] += 1

    def town_clerks(self) -> None:
        """Each town's clerk works the 初审 list: escalated cases that came in from the village stations (and any
        whose first review at the window did not get through)."""
        import eventlet

        suite = self.suite
        while self.running:
            for town in TOWNS:
                base, token = suite.urls["intake-" + town], suite.clerks[town]
                try:
                    r = self.http.get(f"{base}/cases", params={"status": "initial_review", "limit": 500}, timeout=30,
                                      headers={"Authorization": f"Bearer {token}"})
                    listed = r.json()["cases"] if r.status_code == 200 else []
                except Exception:
                    listed = []
                for case in listed:
                    status, _ = self.call("POST", f"{base}/cases/{case['case_number']}/initial-review", token,
                                          patience=60)
                    self.counts[f"initial_review:{status}"] += 1
            eventlet.sleep(2.0)

    def town_agents(self) -> None:
        import eventlet

        suite = self.suite
        while self.running:
            for town in TOWNS:
                token = suite.town_agents[town]
                try:
                    r = self.http.get(f"{suite.urls['agent']}/escalations", timeout=30,
                                      headers={"Authorization": f"Bearer {token}"})
                    listed = r.json()["escalations"] if r.status_code == 200 else []
                except Exception:
                    listed = []
                for esc in listed:
                    step = {"awaiting_relay": "relay", "decided": "return"}.get(esc["status"])
                    if step:
                        status, _ = self.call("POST", f"{suite.urls['agent']}/escalations/{esc['case_number']}/"
                                              f"{step}", token, patience=60)
                        self.counts[f"escalation_{step}:{status}"] += 1
            eventlet.sleep(1.0)


class Faults:
    """The faults, one at a time, and the time each took to recover from."""

    def __init__(self, suite: ChaosSuite, people: People, rng: random.Random, outage: float, fill: int):
        self.suite, self.people, self.rng = suite, people, rng
        self.outage, self.fill = outage, fill
        self.log: list[dict] = []

    def inject(self, kind: str) -> dict:
        started = time.monotonic()
        detail = getattr(self, "_" + kind.split(":")[0])(*kind.split(":")[1:])
        healed = time.monotonic()
        recovered = self.canary(healed)
        entry = {"fault": kind, **(detail or {}), "fault_seconds": round(healed - started, 1),
                 "recovery_seconds": recovered}
        self.log.append(entry)
        say(f"{kind}: {json.dumps(detail, ensure_ascii=False) if detail else ''} lasted "
            f"{entry['fault_seconds']} s, recovered in {recovered} s")
        return entry

    def _kill(self, service: str) -> dict:
        import eventlet

        self.suite.kill(service)
        eventlet.sleep(self.rng.uniform(1, 3))
        self.suite.start(service)
        self.suite.ready(service)
        return {}

    def _rabbitmq_restart(self) -> dict:
        # the whole node, stopped and started as the project's set-up starts it (with its file-handle room)
        root_cmd("bash", "-c", f"source '{ROOT}/scripts/bootstrap.sh' && restart_rabbit", timeout=400)
        return {}

    def _postgres_restart(self) -> dict:
        version = sorted(os.listdir("/etc/postgresql"))[-1]
        root_cmd("pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart", "--mode", "fast")
        return {}

    def _db_unavailable(self) -> dict:
        import eventlet
        import psycopg2

        instance = self.rng.choice([s.instance for s in self.suite.layout])
        db = self.suite.db_url(instance).rsplit("/", 1)[1]
        admin = psycopg2.connect(PG_URL)
        admin.autocommit = True
        try:
            with admin.cursor() as cur:
                cur.execute(f'ALTER DATABASE "{db}" WITH ALLOW_CONNECTIONS false')
                cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (db,))
            eventlet.sleep(self.outage)
            with admin.cursor() as cur:
                cur.execute(f'ALTER DATABASE "{db}" WITH ALLOW_CONNECTIONS true')
        finally:
            admin.close()
        return {"instance": instance, "seconds": self.outage}

    def _queue_full(self) -> dict:
        import eventlet
        import requests

        from tongban.runtime import queues_of

        evaluation = self.suite.group("evaluation")[0]
        queue = next(q for q in queues_of(evaluation) if q.endswith(".events"))
        self.suite.kill("evaluation")
        depth = self._depth(queue)
        cap = depth + self.fill
        policy = f"{MGMT_URL}/api/operator-policies/%2F/{queue}-chaos-cap"
        requests.put(policy, auth=MGMT_AUTH, timeout=30, json={
            "pattern": f"^{queue}$", "apply-to": "queues", "priority": 10,
            "definition": {"max-length": cap}}).raise_for_status()
        full_at, rejected = None, 0
        filling = [True]

        def filler():
            # the windows go on accepting cases: their events for evaluation fill its queue
            for job in make_jobs(self.suite, self.rng, 100_000, windows_only=True):
                if not filling[0]:
                    return
                eventlet.spawn(self.people.submit, job)
                eventlet.sleep(0.2)

        feeding = eventlet.spawn(filler)
        try:
            deadline = time.monotonic() + max(120, self.fill / 2)
            while time.monotonic() < deadline:
                eventlet.sleep(1)
                if self._depth(queue) >= cap:
                    full_at = full_at or time.monotonic()
                    rejected = max(rejected, self.unpublished())
                    if time.monotonic() - full_at > 5 and rejected:
                        break
        finally:
            filling[0] = False
            feeding.wait()
            self.suite.start("evaluation")
            self.suite.ready("evaluation")
            # the cap goes only once the queue has drained below it and the held-back rows have left: a quorum
            # queue that rejects when its limit is removed goes on rejecting (RabbitMQ 3.10, rabbitmq-server#12206)
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline and (self._depth(queue) > cap // 2 or self.unpublished()):
                eventlet.sleep(1)
            requests.delete(policy, auth=MGMT_AUTH, timeout=30)
        return {"queue": queue.split(".", 1)[1], "cap": cap, "filled": full_at is not None,
                "outbox_rows_waiting_at_most": rejected}

    @staticmethod
    def _depth(queue: str) -> int:
        import requests

        r = requests.get(f"{MGMT_URL}/api/queues/%2F/{queue}", auth=MGMT_AUTH, timeout=30,
                         params={"columns": "messages"})
        return r.json().get("messages", 0) if r.status_code == 200 else 0

    def unpublished(self) -> int:
        return sum(sql_one(s.database_url, "SELECT count(*) FROM outbox WHERE published_at IS NULL")
                   for s in self.suite.layout)

    def canary(self, healed: float, limit: float = 900) -> float | None:
        """Seconds from the fault's end until a promised case submitted at a window then has been decided by its
        approver, its result delivered and seen completed by evaluation, and a village station's submission sent
        then has become a case at its town (None: not within `limit`). Every service is on one of the paths."""
        import eventlet

        from tongban.demo import fake_applicant

        suite, town = self.suite, TOWNS[0]
        applicant = {**fake_applicant(self.rng, [town]), "channel": "sms"}
        status, case = self.people.call("POST", f"{suite.urls['intake-' + town]}/cases", suite.clerks[town],
                                        {"item_code": CANARY_ITEM, "applicant": applicant,
                                         "materials": self.required(CANARY_ITEM)}, key=uuid.uuid4().hex)
        item = suite.items()["station"][0]
        village = next(v for v in suite.villages if v.startswith(town))
        body = {"item_code": item["code"], "applicant": {**applicant, "town": town},
                "materials": self.required(item["code"]),
                "authorisation": {"by": applicant["name"], "matters": f"代为申请{item['name']}",
                                  "signed_at": time.strftime("%Y-%m-%dT%H:%M:%S+08:00"), "method": "手写签名"}}
        relayed, submission = self.people.call("POST", f"{suite.urls['agent']}/station/submissions",
                                               suite.agents[village], body, key=uuid.uuid4().hex)
        if status not in (200, 201) or relayed not in (200, 201):
            return None
        number = case["case_number"]
        self.people.accepted[number] = {"town": town, "item": CANARY_ITEM, "kind": "canary", "key": None}
        self.people.submitted += 2
        notify, evaluation = suite.group("notify")[0], suite.group("evaluation")[0]
        agent = suite.group("agent")[0]
        while time.monotonic() - healed < limit:
            try:
                done = (sql_one(notify.database_url, "SELECT count(*) FROM deliveries WHERE case_number = %s "
                                "AND notice_kind = 'result' AND sent_at IS NOT NULL", (number,))
                        and sql_one(evaluation.database_url, "SELECT count(*) FROM case_views "
                                    "WHERE case_number = %s AND status = 'completed'", (number,))
                        and sql_one(agent.database_url, "SELECT count(*) FROM station_services WHERE number = %s "
                                    "AND case_number IS NOT NULL", (submission["number"],)))
            except Exception:
                done = False
            if done:
                return round(time.monotonic() - healed, 1)
            eventlet.sleep(0.5)
        return None

    def required(self, code: str) -> list[str]:
        return [m["code"] for m in self.suite.catalog.items[code]["materials"] if m["required"]]


def sql_one(url: str, sql: str, args=()):
    import psycopg2

    conn = psycopg2.connect(url, connect_timeout=10)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchone()[0]
    finally:
        conn.close()


def log_lines_naming(folder: Path, needle: str, limit: int = 12) -> list[str]:
    """The services' log lines (JSON, personal numbers masked) that mention `needle`, for a failure's report."""
    found = []
    for path in sorted(folder.rglob("*.log")):
        with open(path, encoding="utf-8", errors="replace") as f:
            found += [f"{path.name}: {line.strip()[:400]}" for line in f if needle in line]
    return found[:limit]


def sql_all(url: str, sql: str, args=()) -> list[tuple]:
    import psycopg2

    conn = psycopg2.connect(url, connect_timeout=10)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall()
    finally:
        conn.close()


# --- afterwards: settle, then the books ------------------------------------------------------------------

OPEN_CASE = "(" + ", ".join(f"'{s}'" for s in OPEN_CASE_STATUSES) + ")"


def open_work(suite: ChaosSuite, queues: list[str]) -> dict:
    """What is still on its way: open cases, pending work items, unpublished outbox rows, queued messages,
    escalations in the town agents' hands."""
    import requests

    by = Counter()
    for s in suite.layout:
        by["outbox"] += sql_one(s.database_url, "SELECT count(*) FROM outbox WHERE published_at IS NULL")
        if s.service == "intake":
            by["open_cases"] += sql_one(s.database_url, f"SELECT count(*) FROM cases WHERE status IN {OPEN_CASE}")
        elif s.service == "approval":
            by["pending_work_items"] += sql_one(s.database_url,
                                                "SELECT count(*) FROM work_items WHERE status = 'pending'")
    rows = requests.get(f"{MGMT_URL}/api/queues/%2F", auth=MGMT_AUTH, timeout=30,
                        params={"columns": "name,messages"}).json()
    by["queued"] = sum(r.get("messages", 0) for r in rows if r["name"] in queues)
    # a message that failed during a fault waits in a retry queue before it comes back: still on its way
    by["waiting_to_retry"] = sum(r.get("messages", 0) for r in rows
                                 if r["name"].startswith(f"{suite.prefix}.retry-"))
    return dict(by)


def settle(suite: ChaosSuite, queues: list[str], limit: float) -> tuple[float | None, dict]:
    import eventlet

    started, seen, quiet_since = time.monotonic(), {}, None
    while time.monotonic() - started < limit:
        try:
            seen = open_work(suite, queues)
        except Exception as exc:  # a database still coming back
            seen = {"error": repr(exc)}
        if seen and not any(v for k, v in seen.items() if k != "error") and "error" not in seen:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= 6:  # management counters lag: quiet twice in a row
                return round(quiet_since - started, 1), seen
        else:
            quiet_since = None
        eventlet.sleep(1.0)
    return None, seen


def check_books(suite: ChaosSuite, people: People) -> dict:
    """Each check: ok, and the figures it compared."""
    import requests

    from tongban.local_outlets import read_mail

    checks = {}
    intakes = [s for s in suite.layout if s.service == "intake"]
    approvals = [s for s in suite.layout if s.service == "approval"]
    notify, evaluation = suite.group("notify")[0], suite.group("evaluation")[0]
    agent = suite.group("agent")[0]

    cases = {}
    for s in intakes:
        for number, status, outcome, departments, key, station in sql_all(
                s.database_url, "SELECT case_number, status, outcome, departments, request_key, "
                                "station_submission FROM cases"):
            cases[number] = {"status": status, "outcome": outcome, "key": key, "station": station,
                             "departments": departments if isinstance(departments, list) else json.loads(departments)}
    accepted = people.accepted
    missing = [n for n in accepted if n not in cases]
    unfinished = [n for n in accepted if n in cases and cases[n]["status"] not in FINISHED]
    stations = sql_all(agent.database_url, "SELECT number, status, reason FROM station_services "
                                           "WHERE mode = 'submission' AND status <> 'refused' "
                                           "AND item_level <> 'village'")
    per_station = Counter(c["station"] for c in cases.values() if c["station"])
    station_lost = [n for n, _, _ in stations if per_station[n] == 0]
    checks["nothing_lost"] = {
        "ok": not missing and not unfinished and not station_lost,
        "accepted_at_windows": len(accepted), "missing": missing[:20], "unfinished": unfinished[:20],
        "station_submissions": len(stations), "station_submissions_without_case": station_lost[:20]}
    if station_lost:  # where each went: the station's record, and every log line that names it
        records = {n: {"status": st, "reason": r} for n, st, r in stations}
        checks["nothing_lost"]["traces"] = {n: {**records[n], "log": log_lines_naming(suite.data_dir, n)}
                                            for n in station_lost[:5]}

    dup_cases = [k for k, n in Counter(c["key"] for c in cases.values() if c["key"]).items() if n > 1]
    dup_stations = [k for k, n in per_station.items() if n > 1]
    decisions = Counter()
    for s in intakes:
        for number, dept in sql_all(s.database_url, "SELECT case_number, department FROM department_decisions"):
            decisions[(number, dept)] += 1
    dup_decisions = [k for k, n in decisions.items() if n > 1]
    decided_items = Counter()
    for s in approvals:
        for number, dept in sql_all(s.database_url,
                                    "SELECT case_number, department FROM work_items WHERE status = 'decided'"):
            decided_items[(number, dept)] += 1
    dup_items = [k for k, n in decided_items.items() if n > 1]
    short = [n for n, c in cases.items() if c["status"] == "completed" and c["outcome"] == "approved"
             and any(decisions[(n, d)] != 1 for d in c["departments"])]
    checks["one_decision_per_department"] = {
        "ok": not (dup_cases or dup_stations or dup_decisions or dup_items or short),
        "decisions_at_intakes": sum(decisions.values()), "decided_work_items": sum(decided_items.values()),
        "cases_twice_for_one_key": dup_cases[:10], "cases_twice_for_one_station_submission": dup_stations[:10],
        "decisions_twice": [list(k) for k in dup_decisions[:10]], "work_items_decided_twice": [list(k) for k in
                                                                                          dup_items[:10]],
        "approved_without_every_decision": short[:10]}

    deliveries = {str(i): (number, kind, notice_id, channel, status, sent) for i, number, kind, notice_id, channel,
                  status, sent in sql_all(notify.database_url,
                                          "SELECT id, case_number, notice_kind, notice_id, channel, status, "
                                          "sent_at IS NOT NULL FROM deliveries")}
    at_gateway = Counter(r["idempotency_key"] for r in suite.outlets.sms())
    mails = Counter(str(m["X-Tongban-Delivery"]) for m in read_mail(suite.outlets.mail_dir))
    per_notice = Counter()
    for key in list(at_gateway) + list(mails):
        d = deliveries.get(key)
        per_notice[(d[0], d[2], d[3]) if d else ("unknown", key, "")] += 1
    sent = {k: d for k, d in deliveries.items() if d[5] and d[3] in ("sms", "email")}
    not_received = [k for k, d in sent.items() if (at_gateway if d[3] == "sms" else mails)[k] == 0]
    twice = [list(k) for k, n in per_notice.items() if n > 1]
    unknown = [k for k in per_notice if k[0] == "unknown"]
    completed = [n for n, c in cases.items() if c["status"] == "completed"]
    results = Counter(d[0] for d in deliveries.values() if d[1] == "result" and d[5])
    no_result = [n for n in completed if results[n] == 0]
    checks["one_delivery_per_notice_and_channel"] = {
        "ok": not (not_received or twice or unknown or no_result),
        "sms_at_gateway": sum(at_gateway.values()), "mail_at_smtp": sum(mails.values()),
        "sent_by_notify": len(sent), "sent_but_not_received": not_received[:10],
        "received_twice": twice[:10], "received_unknown": [list(k) for k in unknown[:10]],
        "completed_without_result_notice": no_result[:10]}

    views_completed = sql_one(evaluation.database_url, "SELECT count(*) FROM case_views WHERE status = 'completed'")
    received = withdrawn_etc = 0
    for s in approvals:
        received += sql_one(s.database_url, "SELECT count(*) FROM work_items")
        withdrawn_etc += sql_one(s.database_url, "SELECT count(*) FROM work_items "
                                                 "WHERE status IN ('decided', 'withdrawn', 'superseded')")
    late = sum(sql_one(s.database_url, "SELECT count(*) FROM case_actions WHERE action = 'late_decision'")
               for s in intakes)
    books = {"completed": {"intake": len(completed), "result_notices": len(results),
                           "evaluation": views_completed},
             "decisions": {"approval": sum(decided_items.values()), "intake": sum(decisions.values()) + late},
             "work_items": {"received": received, "decided+withdrawn+superseded": withdrawn_etc}}
    checks["books_reconciled"] = {"ok": all(len(set(b.values())) == 1 for b in books.values()), **books,
                                  "late_decisions": late}

    dlqs = requests.get(f"{MGMT_URL}/api/queues/%2F", auth=MGMT_AUTH, timeout=30,
                        params={"columns": "name,messages"}).json()
    dead = {r["name"].split(".", 1)[1]: r.get("messages", 0) for r in dlqs
            if r["name"].startswith(suite.prefix + ".") and r["name"].endswith(".dlq") and r.get("messages")}
    checks["dead_letter_queues_empty"] = {"ok": not dead, "holding": dead}
    outbox = {s.instance: n for s in suite.layout
              if (n := sql_one(s.database_url, "SELECT count(*) FROM outbox WHERE published_at IS NULL"))}
    checks["outboxes_empty"] = {"ok": not outbox, "unpublished": outbox}
    return checks


def personal_data_audit(suite: ChaosSuite) -> dict:
    """The personal-data audit (tongban.pii_audit) over what the run left: every log line the instances wrote,
    every metric label, the staff lists and a sample of case views and notices, old outbox and inbox rows."""
    from dataclasses import asdict

    from tongban.pii_audit import audit_pii

    read = Counter()
    findings = audit_pii(urls=dict(suite.urls), log_paths=(suite.data_dir,), signing_key=suite.key, read=read,
                         database_urls={s.instance: s.database_url for s in suite.layout}, case_sample=50)
    return {"ok": not findings and read["log lines"] > 0 and read["http lists"] > 0, "read": dict(read),
            "findings": [asdict(f) for f in findings[:20]]}


# --- the run -----------------------------------------------------------------------------------------------

def dress(jobs: list[tuple], rng: random.Random) -> list[tuple]:
    """The applicants' own channels: most by SMS, a quarter by e-mail (the PDF attached), some pick up."""
    out = []
    for k, (where, place, item, applicant) in enumerate(jobs):
        luck = rng.random()
        if luck < 0.25:
            applicant = {**applicant, "channel": "email", "email": f"applicant{k}@example.com"}
        elif luck < 0.30:
            applicant = {**applicant, "channel": "pickup"}
        out.append((where, place, item, applicant))
    return out


_RUNNING: list[ChaosSuite] = []


def _stop_on_signal() -> None:
    for suite in _RUNNING:
        suite.down()
    os._exit(143)


def run(args) -> dict:
    import eventlet

    rng = random.Random(args.seed)
    suite = ChaosSuite("INFO", retry_delays=RETRY_DELAYS)  # INFO: every log line, for the personal-data audit
    _RUNNING.append(suite)
    started = time.monotonic()
    result: dict = {"cases_asked": args.cases, "rate": args.rate, "seed": args.seed,
                    "short": args.short, "cores": os.cpu_count()}
    try:
        suite.up()
        from tongban.runtime import queues_of

        queues = [q for s in suite.layout for q in queues_of(s)]
        people = People(suite, rng)
        staff = [eventlet.spawn(people.approvers), eventlet.spawn(people.town_clerks),
                 eventlet.spawn(people.town_agents)]
        jobs = dress(make_jobs(suite, rng, args.cases), rng)
        faults = Faults(suite, people, rng, outage=args.outage, fill=args.fill)
        plan = list(FAULTS) * args.rounds
        rng.shuffle(plan)
        span = args.cases / args.rate

        def fault_loop():
            # spread over the submissions; a fault's own time (and its recovery) pushes the next one on
            for kind in plan:
                eventlet.sleep(rng.uniform(0.3, 1.0) * span / (len(plan) + 1))
                try:
                    faults.inject(kind)
                except Exception as exc:
                    say(f"{kind}: could not inject: {exc!r}")
                    faults.log.append({"fault": kind, "error": repr(exc)})

        injector = eventlet.spawn(fault_loop)
        pool = eventlet.GreenPool(3000)
        t0 = time.monotonic()
        for i, job in enumerate(jobs):
            delay = t0 + i / args.rate - time.monotonic()
            if delay > 0:
                eventlet.sleep(delay)
            pool.spawn(people.submit, job)
            if i % max(50, len(jobs) // 20) == 0:
                say(f"{i}/{len(jobs)} submitted, {len(people.accepted)} accepted at windows, "
                    f"{len(faults.log)}/{len(plan)} faults")
        injector.wait()
        pool.waitall()
        result["submitting_seconds"] = round(time.monotonic() - t0, 1)
        say(f"all {len(jobs)} submitted and every fault injected; settling")
        result["settled_after_s"], result["left_open"] = settle(suite, queues, args.settle)
        people.running = False
        for s in staff:
            s.wait()
        result["checks"] = check_books(suite, people)
        result["checks"]["personal_data"] = personal_data_audit(suite)
        result["faults"] = faults.log
        by_kind = Counter(f["fault"].split(":")[0] if not f["fault"].startswith("kill:") else f["fault"]
                          for f in faults.log if "error" not in f)
        result["faults_by_kind"] = dict(sorted(by_kind.items()))
        result["faults_failed"] = [f for f in faults.log if "error" in f]
        recoveries = [f["recovery_seconds"] for f in faults.log if "error" not in f]
        result["recovery_seconds_max"] = max((r for r in recoveries if r is not None), default=None)
        result["not_recovered"] = [f["fault"] for f in faults.log if "error" not in f
                                   and f["recovery_seconds"] is None]
        checks = result["checks"]
        result["cases"] = {"submitted": people.submitted,
                           "accepted_at_windows": len(people.accepted),
                           "station_submissions": checks["nothing_lost"]["station_submissions"],
                           "by_kind": {k.split(":", 1)[1]: v for k, v in sorted(people.counts.items())
                                       if k.startswith("kind:")}}
        result["lost"] = (len(checks["nothing_lost"]["missing"]) + len(checks["nothing_lost"]["unfinished"])
                          + len(checks["nothing_lost"]["station_submissions_without_case"])
                          + len(checks["one_delivery_per_notice_and_channel"]["sent_but_not_received"]))
        result["duplicated"] = sum(len(checks["one_decision_per_department"][k]) for k in (
            "cases_twice_for_one_key", "cases_twice_for_one_station_submission", "decisions_twice",
            "work_items_decided_twice")) + len(checks["one_delivery_per_notice_and_channel"]["received_twice"])
        result["client_retries"] = {k: v for k, v in sorted(people.counts.items()) if not k.startswith("kind:")}
        every_fault = set(FAULTS) <= {f["fault"] for f in faults.log if "error" not in f}
        result["ok"] = (all(c["ok"] for c in checks.values()) and every_fault and not result["not_recovered"]
                        and result["settled_after_s"] is not None)
        suite.ok = result["ok"]
    finally:
        result["elapsed_seconds"] = round(time.monotonic() - started, 1)
        _RUNNING.remove(suite)
        suite.down()
    return result


def report(result: dict) -> str:
    lines = [f"chaos: {result['cases']['submitted']} cases submitted ({result['cases']['accepted_at_windows']} "
             f"at windows, {result['cases']['station_submissions']} from village stations) in "
             f"{result['elapsed_seconds']} s; faults: " + ", ".join(f"{k} ×{v}" for k, v in
                                                                     result["faults_by_kind"].items()),
             f"lost {result['lost']}, duplicated {result['duplicated']}; settled {result['settled_after_s']} s "
             f"after the last submission and fault"]
    for f in result["faults"]:
        lines.append(f"  {f['fault']:<22} {f.get('fault_seconds', '-'):>6} s   recovered in "
                     f"{f.get('recovery_seconds', '-')} s" + (f"   {f['error']}" if "error" in f else ""))
    for name, c in result["checks"].items():
        figures = {k: v for k, v in c.items() if k != "ok" and v not in ([], {}, None)}
        lines.append(f"  {'ok  ' if c['ok'] else 'FAIL'} {name}: {json.dumps(figures, ensure_ascii=False)}")
    lines.append("PASSED" if result["ok"] else "FAILED")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="bench/chaos.py", description=__doc__.split("\n")[0])
    p.add_argument("--cases", type=int, default=10_000)
    p.add_argument("--rate", type=float, default=6.0, help="submissions per second (default 6)")
    p.add_argument("--short", action="store_true", help="each fault once, 20 s database outage (CI)")
    p.add_argument("--rounds", type=int, help="how often each fault is injected (default 3; 1 with --short)")
    p.add_argument("--outage", type=float, help="seconds a database is unavailable (default 60; 20 with --short)")
    p.add_argument("--fill", type=int, help="messages the capped queue takes beyond its depth (300; 100 --short)")
    p.add_argument("--settle", type=float, default=900, help="seconds to wait for everything to finish")
    p.add_argument("--seed", type=int, default=14)
    p.add_argument("--json", type=Path, default=RESULTS, help=f"where to write the figures (default {RESULTS})")
    args = p.parse_args(argv)
    args.rounds = args.rounds or (1 if args.short else 3)
    args.outage = args.outage if args.outage is not None else (20.0 if args.short else 60.0)
    args.fill = args.fill or (100 if args.short else 300)
    local_only()
    import signal

    import eventlet

    # a stopped run (a CI timeout's SIGTERM) still takes its processes, queues and databases with it
    signal.signal(signal.SIGTERM, lambda *_: eventlet.spawn_n(_stop_on_signal))

    eventlet.monkey_patch()
    result = run(args)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, ensure_ascii=False, indent=1))
    print(report(result))
    print(f"figures in {args.json}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
