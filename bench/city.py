"""Benchmark: a city's busiest day on one small machine, beside the broker's own ceiling (issue 12).

    .venv/bin/python bench/city.py            # full: about 20 minutes
    .venv/bin/python bench/city.py --quick    # a short run of everything (about 5 minutes)

In one run it measures
1. the broker alone: persistent publishes to a quorum queue, unconfirmed and with a confirm per message, and
   consuming them with an ack each, at the suite's own message sizes (a case.accepted and a case.routed body
   built through the contracts);
2. the suite on PostgreSQL in three processes (the windows and the village stations; the approval
   departments; notify and evaluation), each instance on its own database and the whole on a bus prefix of
   its own, driven over HTTP by an open-loop simplified city day at increasing rates (5, 10, 20, 40, 80, 160
   cases/s, 60 s each; 15 s in --quick) until a rate is not sustained (the backlog of queued messages and
   outbox rows grows, submissions fail or wait seconds); messages per case from the broker's exchange stats;
3. at 50 cases/s: window submit latency p50/p99 and instant cases' submit-to-notified p99 (the result SMS
   as notify's deliveries record it, sent through the local SMS gateway);
4. a consumer outage: the approval and the notify+evaluation processes stopped for 60 s (15 s) while cases
   arrive at the windows, then started again: the drain rate (messages acknowledged per second) until every
   queue is empty;
5. the supervision board and the monthly report with 1,000,000 open and 10,000,000 historical cases (100k/1M
   in --quick) bulk-loaded into a fresh evaluation database: the endpoints' code (query, rules, schema dump
   and JSON), median of several runs.

The simplified city day (not the demo's DemoCity, whose applicants wait for each answer): 80 % at the two
town windows (instant, promised, joint, consultation and escalated items of the departments run here, in the
catalogue's proportions; city-wide items 30 % for a resident of the other town), 20 % at the village
stations (relayed to the town); escalated items pass the town's 初审 and go up to the city bureau through the
town agents, who relay and return them; approvers decide every work item as it arrives (7 % refused); 30 % of
the cases that are not instant are rated at acceptance (once evaluation has heard of them), one case in 200
brings a complaint. Left out: incomplete materials (the applicant's next trip), ratings at completion.

Figures are printed and written to bench/results/city.json with the targets and whether they were met.
Everything the run creates (bus prefix, databases, data folder, outlets) is removed afterwards. Not a test.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections import Counter
from pathlib import Path

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TONGBAN_DEV", "1")  # throw-away token keys in the run's data folder

from bench.relay import (  # noqa: E402
    AMQP_URL,
    PG_URL,
    cpu_seconds,
    cpu_seconds_of,
    machine_busy,
    ms,
    percentile,
)
from bench.relay import part_broker as relay_part_broker  # noqa: E402
from tongban.process_groups import ProcessCluster, process_groups  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "city.json"
MGMT_URL = os.environ.get("TONGBAN_MGMT_URL", "http://127.0.0.1:15672")
MGMT_AUTH = ("guest", "guest")
TOWNS = ("320583101", "320583102")
DEPARTMENTS = ("minzheng", "renshe", "yibao", "weijian")
VILLAGE_SHARE = 0.2
TARGETS = {"cases_per_s": (">=", 250.0), "submit_p99_ms_at_50": ("<=", 50.0),
           "instant_notified_p99_ms_at_50": ("<=", 2000.0), "board_ms_1m_open": ("<=", 100.0),
           "report_ms_10m_history": ("<=", 1000.0), "drain_msgs_per_s": (">=", 2000.0)}


def say(*a):
    print(*a, flush=True)


# --- 1. the broker alone (a process of its own, no eventlet) -----------------------------------------

def suite_bodies() -> dict[str, bytes]:
    """A case.accepted and a case.routed message as intake's outbox holds them (built by the contracts)."""
    from datetime import date

    from shared.contracts import make_message

    number = f"{TOWNS[0]}-20261125-00042"
    accepted = make_message("case.accepted", number, 1, {
        "accepting_town": TOWNS[0], "handling_town": TOWNS[0], "item_code": "MZ-0004", "item_name": "最低生活保障申请",
        "department": "minzheng", "kind": "promised", "status": "in_review", "deadline": date(2026, 12, 9),
        "first_responder": "clerk-101", "via_agent": None, "village": None, "station_submission": None},
        f"intake-{TOWNS[0]}")
    routed = make_message("case.routed", number, 1, {
        "accepting_town": TOWNS[0], "handling_town": TOWNS[0], "item_code": "MZ-0004", "item_name": "最低生活保障申请",
        "department": "minzheng", "kind": "promised", "deadline": date(2026, 12, 9), "auto_decide": False,
        "lead_department": "minzheng", "departments": ["minzheng"], "extension_days_max": 5, "relayed_by": None},
        f"intake-{TOWNS[0]}")
    return {m.type: json.dumps(m.to_wire(), ensure_ascii=False).encode("utf-8") for m in (accepted, routed)}


def part_broker(messages: int, confirmed: int) -> dict:
    """The broker's ceiling (bench/relay.py's measurement) at the suite's own message sizes, consumed too."""
    bodies = suite_bodies()
    return {"body_bytes": {t: len(b) for t, b in bodies.items()},
            **relay_part_broker(messages, confirmed, bodies=list(bodies.values()), consume=True)}


def run_part(*args: str, timeout: float = 3600) -> dict:
    out = subprocess.run([sys.executable, __file__, "--part", *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"part {args[0]} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- 5. the board and the report on a loaded history (a process of its own) ---------------------------

def _sql_array(values) -> str:
    return "ARRAY[" + ",".join("'" + str(v).replace("'", "''") + "'" for v in values) + "]::text[]"


def load_history(url: str, open_cases: int, history: int, say_=say) -> dict:
    """Bulk-load evaluation's case read model and figures on a migrated database, in the server
    (INSERT … SELECT over generate_series: no rows through Python), indexes built after the rows."""
    import psycopg2

    from shared.catalog import load_catalog

    catalog = load_catalog()
    items = [i for i in catalog.items.values() if i["kind"] != "escalated"]
    towns = list(catalog.towns)
    villages = [v["code"] for t in towns for v in catalog.towns[t]["villages"]]
    conn = psycopg2.connect(url)
    conn.autocommit = True
    cur = conn.cursor()
    timings = {}

    def run(label, sql):
        t = time.perf_counter()
        cur.execute(sql)
        timings[label] = round(time.perf_counter() - t, 1)

    cur.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ('case_views', 'figure_cases') "
                "AND indexname NOT IN (SELECT conname FROM pg_constraint)")
    indexes = cur.fetchall()
    for name, _ in indexes:
        cur.execute(f'DROP INDEX "{name}"')
    cur.execute("ALTER TABLE case_views SET UNLOGGED")
    cur.execute("ALTER TABLE figure_cases SET UNLOGGED")
    # the history: 24 months back, completed (85 %), returned (5 %), consulted (10 %); the open cases: accepted
    # in the last 30 days, deadlines from 5 days ago to 20 days ahead, 80 % in review
    arrays = (f"{_sql_array(towns)} AS towns, {_sql_array(villages)} AS villages, "
              f"{_sql_array([i['code'] for i in items])} AS codes, "
              f"{_sql_array([i['name'] for i in items])} AS names, "
              f"{_sql_array([i['department'] for i in items])} AS depts, "
              f"{_sql_array([i['kind'] for i in items])} AS kinds")
    common = f"""
        WITH a AS (SELECT {arrays}),
        g AS (SELECT n, (random() * 1e9)::bigint AS r1, (random() * 1e9)::bigint AS r2, random() AS u, random() AS v
              FROM generate_series(%(first)s, %(last)s) AS n),
        x AS (SELECT n, u, v,
                     a.towns[1 + r1 %% array_length(a.towns, 1)] AS town,
                     1 + r2 %% array_length(a.codes, 1) AS item,
                     CASE WHEN u < 0.2 THEN a.villages[1 + r2 %% array_length(a.villages, 1)] END AS village,
                     a.codes, a.names, a.depts, a.kinds, a.towns
              FROM g, a),
        y AS (SELECT x.*, CASE WHEN v < 0.85 THEN town WHEN v < 0.95 THEN towns[1 + (n %% 12)] ELSE 'city' END
                          AS handling, %(accepted)s AS accepted_at FROM x)"""
    history_select = common + """
        SELECT town || '-' || to_char(accepted_at, 'YYYYMMDD') || '-' || lpad(n::text, 9, '0'), 3, town, handling,
               depts[item], json_build_array(depts[item]), codes[item], names[item], kinds[item],
               CASE WHEN kinds[item] = 'consultation' THEN 'consulted' WHEN u > 0.95 THEN 'returned'
                    ELSE 'completed' END,
               'clerk-' || right(town, 3) || '-' || (n %% 6), NULL, village, accepted_at,
               (accepted_at + interval '15 days')::date, NULL, (accepted_at + (v * 18) * interval '1 day')::date,
               CASE WHEN v < 0.93 THEN 'approved' ELSE 'refused' END, v < 0.8, accepted_at + interval '10 days'
        FROM y"""
    open_select = common + """
        SELECT town || '-' || to_char(accepted_at, 'YYYYMMDD') || '-' || lpad(n::text, 9, '0'), 2, town, handling,
               depts[item], json_build_array(depts[item]), codes[item], names[item],
               CASE WHEN kinds[item] IN ('instant', 'consultation') THEN 'promised' ELSE kinds[item] END,
               CASE WHEN u < 0.8 THEN 'in_review' WHEN u < 0.88 THEN 'pending_materials'
                    WHEN u < 0.92 THEN 'paused' ELSE 'initial_review' END,
               'clerk-' || right(town, 3) || '-' || (n %% 6), NULL, village, accepted_at,
               (current_date + ((v * 25)::int - 5))::date, CASE WHEN u BETWEEN 0.88 AND 0.92 THEN current_date END,
               NULL, NULL, NULL, accepted_at
        FROM y"""
    columns = ("case_number, version, accepting_town, handling_town, department, departments, item_code, item_name, "
               "kind, status, first_responder, via_agent, village, accepted_at, deadline, paused_since, "
               "completed_on, outcome, on_time, updated_at")
    step = 2_000_000
    for label, select, first, total, accepted in (
            ("history", history_select, 1, history, "now() - (u * 730) * interval '1 day'"),
            ("open", open_select, history + 1, open_cases, "now() - (v * 30) * interval '1 day'")):
        started = time.perf_counter()
        for lo in range(first, first + total, step):
            hi = min(lo + step - 1, first + total - 1)
            cur.execute(f"INSERT INTO case_views ({columns}) " + select.replace("%(accepted)s", accepted),
                        {"first": lo, "last": hi})
        timings[f"case_views_{label}"] = round(time.perf_counter() - started, 1)
        say_(f"  loaded {total:,} {label} cases into case_views in {timings[f'case_views_{label}']} s")
    # the figures' record of each case, and the counters made from them (as the recorder would have moved them)
    run("figure_cases", """
        INSERT INTO figure_cases (case_number, "window", town, staff, village, offices, kind, received_month,
                                  clock_started_on, completed_month, completed_on, on_time, finish_days)
        SELECT case_number, accepting_town,
               CASE WHEN handling_town ~ '^[0-9]{9}$' THEN handling_town ELSE accepting_town END,
               first_responder, village,
               json_build_array(department || '@' || handling_town), kind,
               to_char(accepted_at, 'YYYY-MM'), accepted_at::date, to_char(completed_on, 'YYYY-MM'), completed_on,
               on_time, CASE WHEN completed_on IS NOT NULL THEN (completed_on - accepted_at::date) * 5 / 7 END
        FROM case_views""")
    say_(f"  figure_cases in {timings['figure_cases']} s")
    dims = """
        WITH c AS (
          SELECT received_month AS rm, completed_month AS cm, kind, "window", town, staff, village,
                 (offices ->> 0) AS office, count(*) AS n, count(*) FILTER (WHERE on_time) AS ot,
                 coalesce(sum(finish_days), 0) AS fd, count(finish_days) AS fc
          FROM figure_cases GROUP BY 1, 2, 3, 4, 5, 6, 7, 8)
        SELECT x.m, d, t, k, o, measure, sum(val) FROM c,
        LATERAL (VALUES ('window', c."window", c."window", ''), ('staff', c."window", c.staff, ''),
                        ('town', c.town, c.town, ''), ('village', left(c.village, 9), c.village, ''),
                        ('window', c."window", c."window", c.office), ('town', c.town, c.town, c.office),
                        ('department', split_part(c.office, '@', 2), c.office, c.office)) AS r(d, t, k, o),
        LATERAL (VALUES (c.rm, 'received', c.n), (c.rm, 'received_' || c.kind, c.n), (c.cm, 'completed', c.n),
                        (c.cm, 'on_time', c.ot), (c.cm, 'finish_days', c.fd), (c.cm, 'finish_counted', c.fc))
                AS x(m, measure, val)
        WHERE k IS NOT NULL AND x.m IS NOT NULL
        GROUP BY x.m, d, t, k, o, measure"""
    run("figure_counts", f"INSERT INTO figure_counts (month, dimension, town, key, office, measure, value) {dims}")
    say_(f"  figure_counts in {timings['figure_counts']} s")
    # the board's counts, as the case views' ORM events would have moved them (the loaded cases have one
    # department each: lead rows only)
    run("board_counts", """
        INSERT INTO board_counts (accepting_town, handling_town, department, lead, deadline, instant, stopped, cases)
        SELECT accepting_town, coalesce(handling_town, ''), coalesce(department, ''), true,
               coalesce(deadline, DATE '9999-12-31'), coalesce(kind = 'instant', false),
               paused_since IS NOT NULL OR status NOT IN ('in_review', 'initial_review'), count(*)
        FROM case_views WHERE status IN ('pending_materials', 'initial_review', 'in_review', 'paused')
        GROUP BY 1, 2, 3, 4, 5, 6, 7""")
    say_(f"  board_counts in {timings['board_counts']} s")
    # the decisions the forecast's rate reads: the history's completions of the last 30 days, per office and day
    run("decision_counts", """
        INSERT INTO decision_counts (day, office, department, decisions)
        SELECT completed_on, handling_town, department, count(*) FROM case_views
        WHERE status = 'completed' AND completed_on >= current_date - 30 AND department IS NOT NULL
        GROUP BY 1, 2, 3""")
    started = time.perf_counter()
    for _, definition in indexes:
        cur.execute(definition)
    cur.execute("ALTER TABLE case_views SET LOGGED")
    cur.execute("ALTER TABLE figure_cases SET LOGGED")
    cur.execute("ANALYZE")
    timings["indexes_and_analyze"] = round(time.perf_counter() - started, 1)
    cur.execute("SELECT (SELECT count(*) FROM case_views), (SELECT count(*) FROM figure_cases), "
                "(SELECT count(*) FROM figure_counts), (SELECT count(*) FROM board_counts), "
                "pg_database_size(current_database())")
    views, fcases, counters, board_rows, size = cur.fetchone()
    conn.close()
    return {"case_views": views, "figure_cases": fcases, "figure_counts": counters, "board_counts": board_rows,
            "database_mb": round(size / 2**20), "seconds": timings}


def part_history(open_cases: int, history: int, runs: int) -> dict:
    """Load the history on a fresh evaluation database, then time the board and the monthly report as their
    endpoints make them (the supervisor's and the figures' code, the response schema, JSON)."""
    import datetime as dt

    from services.evaluation import figures
    from services.evaluation.schemas import BoardSchema, MonthlyReportSchema
    from services.evaluation.supervision import SupervisionConfig, Supervisor
    from shared import auth
    from shared.clock import Clock
    from shared.config import Settings
    from shared.store import Store
    from shared.workdays import WorkingCalendar
    from tongban.runtime import PostgresDatabases

    dbs = PostgresDatabases(PG_URL, label="tbbench")
    try:
        url = dbs.new("evaluation_history")
        store = Store(url, ROOT / "services" / "evaluation" / "migrations" / "versions", "bench.events")
        store.migrate()
        started = time.perf_counter()
        loaded = load_history(url, open_cases, history, lambda *a: print(*a, file=sys.stderr, flush=True))
        loaded["total_seconds"] = round(time.perf_counter() - started, 1)
        settings = Settings(service="evaluation", instance="evaluation", data_dir=Path(tempfile.gettempdir()))
        supervisor = Supervisor(clock=Clock(), calendar=WorkingCalendar(), config=SupervisionConfig.of(settings),
                                instance="evaluation")
        now = int(time.time())
        city = auth.Principal("bench-supervisor", "supervisor", auth.Scope.parse("city"), now + 3600, now)
        month = (dt.date.today().replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")  # last month: complete

        def board(query):
            with store.transaction() as tx:
                body = BoardSchema().dump(supervisor.board(tx, city, query))
            return len(json.dumps(body, default=str)), len(body["cases"])

        def report(query):
            with store.transaction() as tx:
                rep, _ = figures.monthly_for(tx.session, city, query)
                body = MonthlyReportSchema().dump(rep)
            return len(json.dumps(body, default=str)), sum(len(d["rows"]) for d in body["dimensions"])

        def timed(fn, query, n):
            out, sizes = [], None
            for k in range(n):
                t = time.perf_counter()
                sizes = fn(query)
                out.append(time.perf_counter() - t)
                if k == 0 and out[0] > 20:  # one run says enough
                    break
            return {"runs_ms": [ms(x) for x in out], "median_ms": ms(statistics.median(out)),
                    "response_bytes": sizes[0], "rows": sizes[1]}

        timings = {
            "board_city": timed(board, {}, runs),
            "board_town": timed(board, {"town": TOWNS[0]}, runs),
            "board_department_office": timed(board, {"town": TOWNS[0], "department": "minzheng"}, runs),
            "report_city": timed(report, {"month": month}, runs),
            "report_town": timed(report, {"month": month, "town": TOWNS[0]}, runs),
            "report_department": timed(report, {"month": month, "dept": "minzheng"}, runs),
        }
        store.dispose()
        return {"open_cases": open_cases, "historical_cases": history, "loaded": loaded, "month": month,
                **timings}
    finally:
        dbs.drop_all()


# --- 2-4. the suite under load (this process, eventlet) -----------------------------------------------

class Broker:
    """What the broker says about one bus prefix: exact queue depths (passive declares), exchange and queue
    counters from the management API (refreshed by the broker every few seconds)."""

    def __init__(self, prefix: str, consumed: list[str]):
        import requests

        from shared.relay import amqp_connection

        self.prefix = prefix
        self.http = requests.Session()
        self.http.auth = MGMT_AUTH
        self.conn = amqp_connection(AMQP_URL)
        self.conn.connect()
        self.channel = self.conn.channel()
        # the queues the running instances consume (the registry declares every town's and department's: those
        # of towns and departments not run here fill with what is routed to them, and are no backlog of ours)
        self.queues = sorted(set(consumed))

    def depths(self) -> dict[str, int]:
        out = {}
        for q in self.queues:
            try:
                out[q] = self.channel.queue_declare(q, passive=True)[1]
            except Exception:  # a queue gone (never here): reopen the channel
                self.channel = self.conn.channel()
        return out

    def backlog(self) -> int:
        return sum(self.depths().values())

    def published(self) -> int:
        """Messages published into the events and work exchanges so far."""
        total = 0
        for kind in ("events", "work"):
            r = self.http.get(f"{MGMT_URL}/api/exchanges/%2F/{self.prefix}.{kind}", timeout=30).json()
            total += (r.get("message_stats") or {}).get("publish_in", 0)
        return total

    def acked(self) -> int:
        rows = self.http.get(f"{MGMT_URL}/api/queues/%2F", params={"columns": "name,message_stats"},
                             timeout=30).json()
        return sum((r.get("message_stats") or {}).get("ack", 0) for r in rows if r["name"] in self.queues)

    def settled_counters(self, wait: float = 6.0) -> tuple[int, int]:
        """(published, acked) once the management stats have caught up (they lag by up to 5 s)."""
        import eventlet

        eventlet.sleep(wait)
        return self.published(), self.acked()

    def close(self):
        self.conn.close()


class Suite:
    """The instances in three processes, the outlets, the people and the watchers."""

    GROUPS = (("front", ("intake", "agent")), ("approval", ("approval",)), ("after", ("notify", "evaluation")))

    def __init__(self, log_level: str, **base_settings):
        from shared import tokens
        from shared.catalog import load_catalog
        from shared.config import Settings
        from tongban.local_outlets import LocalOutlets
        from tongban.runtime import PostgresDatabases, free_port_block, host_layout

        self.prefix = f"bench{uuid.uuid4().hex[:8]}"
        self.data_dir = Path(tempfile.mkdtemp(prefix="tongban-bench-city-"))
        self.dbs = PostgresDatabases(PG_URL, label="tbbench")
        self.log_level = log_level
        self.base = Settings(service="bench", instance="bench", amqp_url=AMQP_URL, bus_prefix=self.prefix,
                             data_dir=self.data_dir, **base_settings)
        self.outlets = LocalOutlets(self.data_dir / "outlets")
        layout = host_layout(self.base, towns=TOWNS, departments=DEPARTMENTS,
                             first_port=free_port_block(len(TOWNS) + len(DEPARTMENTS) + 4, start=22000))
        # the portal serves people's pages: no load here goes through it, so it is left out
        self.layout = [s for s in layout if s.service != "portal"]  # databases made by up()
        self.catalog = load_catalog()
        key = self.base.with_(service="cli").signing_key()
        self.key = key
        self.ops = tokens.issue(key, "bench-ops", "service", "city")
        self.clerks = {t: tokens.issue(key, f"clerk-{t[-3:]}", "clerk", f"town:{t}", name="张敏") for t in TOWNS}
        self.villages = [v["code"] for t in TOWNS for v in self.catalog.towns[t]["villages"]]
        self.agents = {v: tokens.issue(key, f"agent-{v[-6:]}", "agent", f"village:{v}") for v in self.villages}
        self.town_agents = {t: tokens.issue(key, f"town-agent-{t[-3:]}", "town_agent", f"town:{t}") for t in TOWNS}
        self.supervisor = tokens.issue(key, "bench-supervisor", "supervisor", "city")
        self.approvers: dict[tuple[str, str], str] = {}
        self.processes = ProcessCluster(self.data_dir, log_level, log_files=True)
        self.urls = {s.instance: s.base_url for s in self.layout}
        self.broker: Broker | None = None
        self.ok = False

    def group(self, name: str) -> list:
        return dict(process_groups(self.layout, len(self.GROUPS)))[name]

    def start(self, name: str) -> float:
        started = time.monotonic()
        group = self.group(name)
        if name == "after":
            group = [s.with_(extra={**s.extra, **self.outlets.notify_extra()}) if s.service == "notify" else s
                     for s in group]
        self.processes.start(name, group)
        return started

    def ready(self, name: str) -> None:
        self.processes.ready(name)

    def stop(self, name: str) -> None:
        self.processes.stop(name)

    @property
    def procs(self) -> dict:
        return self.processes.procs

    def up(self) -> None:
        from tongban import bus_cmd

        self.layout = [s.with_(database_url=self.dbs.new(s.instance)) for s in self.layout]
        bus_cmd.prepare(self.base)  # broker users, every queue of the registry, the policy, the catalogue
        self.outlets.start()
        t = time.monotonic()
        for name, _ in self.GROUPS:
            self.start(name)
        for name, _ in self.GROUPS:
            self.ready(name)
        from tongban.runtime import queues_of

        self.broker = Broker(self.prefix, [q for s in self.layout for q in queues_of(s)])
        say(f"suite: {len(self.layout)} instances in {len(self.procs)} processes "
            f"({', '.join(f'{n}: ' + '+'.join(s.instance for s in self.group(n)) for n, _ in self.GROUPS)}) "
            f"up in {time.monotonic() - t:.1f} s on bus prefix {self.prefix}; {len(self.broker.queues)} queues")

    def down(self) -> None:
        from shared import busauth
        from tongban.runtime import remove_bus

        for name in list(self.procs):
            p = self.procs[name]
            try:
                self.stop(name)
            except Exception:
                p.kill()
        if self.broker:
            self.broker.close()
        self.outlets.stop()
        self.processes.stop_all()
        try:
            remove_bus(AMQP_URL, self.prefix, self.layout)
            if self.base.bus_users:
                busauth.delete_users(AMQP_URL, self.base.bus_users)
        except Exception as exc:
            print(f"note: could not remove bus prefix {self.prefix}: {exc}", file=sys.stderr)
        self.dbs.drop_all()
        if self.ok:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        else:
            print(f"note: the services' logs are kept in {self.data_dir}", file=sys.stderr)

    # the city's people
    def approver(self, department: str, handling_town: str) -> str:
        from shared import tokens

        k = (department, handling_town)
        if k not in self.approvers:
            scope = f"department:{department}" + ("" if handling_town == "city" else f"@{handling_town}")
            self.approvers[k] = tokens.issue(self.key, f"{department}-{handling_town[-3:]}-staff", "approver", scope)
        return self.approvers[k]

    def items(self) -> dict[str, list[dict]]:
        served = set(DEPARTMENTS)
        ok = [i for i in self.catalog.items.values() if i["department"] in served
              and set(i["co_departments"]) <= served
              and i["kind"] in ("instant", "promised", "joint", "consultation", "escalated")
              and i["level"] != "village"]
        return {"window": ok,
                "station": [i for i in ok if i["agent_allowed"] and not i["in_person"]
                            and i["kind"] != "consultation"]}


def make_jobs(suite: Suite, rng: random.Random, n: int, windows_only: bool = False) -> list[tuple]:
    from tongban.demo import fake_applicant

    items = suite.items()
    jobs = []
    for _ in range(n):
        applicant = fake_applicant(rng, list(TOWNS))
        applicant["channel"] = "sms"
        if not windows_only and rng.random() < VILLAGE_SHARE:
            item = rng.choice(items["station"])
            village = rng.choice(suite.villages)
            jobs.append(("station", village, item, {**applicant, "town": village[:9]}))
        else:
            item = rng.choice(items["window"])
            town = rng.choice(TOWNS)
            other = item["city_wide"] and rng.random() < 0.3
            applicant["town"] = next(t for t in TOWNS if t != town) if other else town
            jobs.append(("window", town, item, applicant))
    return jobs


def drive(suite: Suite, rate: float, seconds: float, rng: random.Random, watch_notified: bool = False,
          windows_only: bool = False, decide: bool = True) -> dict:
    """Open-loop submissions at `rate` for `seconds`; the backlog (queued messages and unpublished outbox
    rows) sampled each second; approvers decide the work as it comes."""
    import eventlet
    import psycopg2
    import requests
    from requests.adapters import HTTPAdapter

    http = requests.Session()
    http.mount("http://", HTTPAdapter(pool_connections=8, pool_maxsize=1000))
    jobs = make_jobs(suite, rng, int(rate * seconds), windows_only)
    latencies, statuses, kinds = [], Counter(), Counter()
    instant_sent: dict[str, float] = {}  # case number -> wall time the submission was scheduled
    running = [True]

    def submit(job, scheduled):
        where, place, item, applicant = job
        body = {"item_code": item["code"], "applicant": applicant,
                "materials": [m["code"] for m in item["materials"] if m["required"]]}
        try:
            if where == "window":
                r = http.post(f"{suite.urls['intake-' + place]}/cases", json=body, timeout=60,
                              headers={"Authorization": f"Bearer {suite.clerks[place]}"})
            else:
                body["authorisation"] = {"by": applicant["name"], "matters": f"代为申请{item['name']}",
                                         "signed_at": time.strftime("%Y-%m-%dT%H:%M:%S+08:00"), "method": "手写签名"}
                r = http.post(f"{suite.urls['agent']}/station/submissions", json=body, timeout=60,
                              headers={"Authorization": f"Bearer {suite.agents[place]}",
                                       "Idempotency-Key": uuid.uuid4().hex})
            code, answered = r.status_code, time.monotonic()
        except Exception as exc:
            code, answered = type(exc).__name__, time.monotonic()
        latencies.append((where, answered - scheduled))
        statuses[str(code)] += 1
        if where == "window" and code in (200, 201):
            case = r.json()
            if item["kind"] == "instant":
                instant_sent[case["case_number"]] = time.time() - (time.monotonic() - scheduled)
            try:
                after_acceptance(place, case, item)
            except Exception as exc:
                followed[f"error:{type(exc).__name__}"] += 1
        kinds[f"{where}:{item['kind']}"] += 1

    followed = Counter()

    def after_acceptance(town, case, item):
        """What follows at the window as in the demo: 初审 of an escalated case (then up to the town agent), a
        rating at acceptance (30 % of promised cases, as on the window's device), now and then a complaint."""
        headers = {"Authorization": f"Bearer {suite.clerks[town]}"}
        number = case["case_number"]
        if case.get("status") == "initial_review":
            r = http.post(f"{suite.urls['intake-' + town]}/cases/{number}/initial-review", headers=headers,
                          timeout=60)
            followed[f"initial_review:{r.status_code}"] += 1
        if item["kind"] != "instant" and rng.random() < 0.3:
            level = rng.choices([1, 2, 3, 4, 5], weights=[50, 25, 12, 8, 5])[0]
            eventlet.spawn(rate_at_acceptance, number, level)
        if rng.random() < 0.005:
            r = http.post(f"{suite.urls['evaluation']}/complaints", timeout=60,
                          headers={"Authorization": f"Bearer {suite.ops}"},
                          json={"subject": "窗口等候时间过长", "text": "排队时间较长", "town": town,
                                "channel": "hotline", "case_number": number,
                                "complainant": {"name": "王先生", "phone": f"139{rng.randint(0, 99999999):08d}"}})
            followed[f"complaint:{r.status_code}"] += 1

    def rate_at_acceptance(number, level):
        """The applicant rates at acceptance, once evaluation has heard of the case (it learns of it from the
        bus: a rating a moment too early is answered 404, and the device asks again)."""
        for _ in range(20):
            eventlet.sleep(3.0)
            try:
                r = http.post(f"{suite.urls['evaluation']}/ratings", timeout=60,
                              headers={"Authorization": f"Bearer {suite.ops}"},
                              json={"case_number": number, "level": level, "channel": "window_device",
                                    "stage": "acceptance"})
            except Exception as exc:
                followed[f"rating:{type(exc).__name__}"] += 1
                continue
            if r.status_code != 404:
                followed[f"rating:{r.status_code}"] += 1
                return
        followed["rating:not_heard_of_in_60s"] += 1

    def town_agents():
        """Each town's agent relays escalations to the city and returns the city's decisions (the demo's
        town agents), while the approvers' city bureaus decide them."""
        while running[0]:
            if "front" in suite.procs:
                for town in TOWNS:
                    headers = {"Authorization": f"Bearer {suite.town_agents[town]}"}
                    try:
                        listed = http.get(f"{suite.urls['agent']}/escalations", headers=headers,
                                          timeout=30).json()["escalations"]
                    except Exception:
                        continue
                    for esc in listed:
                        step = {"awaiting_relay": "relay", "decided": "return"}.get(esc["status"])
                        if step:
                            try:
                                r = http.post(f"{suite.urls['agent']}/escalations/{esc['case_number']}/{step}",
                                              headers=headers, timeout=30)
                                followed[f"escalation_{step}:{r.status_code}"] += 1
                            except Exception as exc:
                                followed[f"escalation_{step}:{type(exc).__name__}"] += 1
            eventlet.sleep(1.0)

    backlog_series = []

    def watch_backlog():
        conns = {s.instance: psycopg2.connect(s.database_url) for s in suite.layout}
        for c in conns.values():
            c.autocommit = True
        try:
            while running[0]:
                t = time.monotonic()
                rows = 0
                for c in conns.values():
                    with c.cursor() as cur:
                        cur.execute("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                        rows += cur.fetchone()[0]
                queued = suite.broker.backlog()
                backlog_series.append((round(t - t0, 1), queued, rows))
                eventlet.sleep(max(0.0, 1.0 - (time.monotonic() - t)))
        finally:
            for c in conns.values():
                c.close()

    decided = Counter()

    def approvers():
        while running[0]:
            for dept in DEPARTMENTS:
                if f"approval-{dept}" not in suite.urls or "approval" not in suite.procs:
                    continue
                try:
                    items = http.get(f"{suite.urls['approval-' + dept]}/work-items", params={"limit": 500},
                                     headers={"Authorization": f"Bearer {suite.ops}"}, timeout=30).json()["items"]
                except Exception:
                    continue
                pool = eventlet.GreenPool(20)
                for it in items:
                    pool.spawn(decide_one, dept, it)
                pool.waitall()
            eventlet.sleep(0.5)

    def decide_one(dept, it):
        body = {"outcome": "refused", "reason": "申请材料与实际情况不符"} if rng.random() < 0.07 \
            else {"outcome": "approved"}
        try:
            r = http.post(f"{suite.urls['approval-' + dept]}/work-items/{it['id']}/decision", json=body, timeout=30,
                          headers={"Authorization": f"Bearer {suite.approver(dept, it['handling_town'])}"})
            decided[str(r.status_code)] += 1
        except Exception as exc:
            decided[type(exc).__name__] += 1

    notified: dict[str, float] = {}

    def watch_notify():
        notify = next(s for s in suite.layout if s.service == "notify")
        conn = psycopg2.connect(notify.database_url)
        conn.autocommit = True
        last = 0
        try:
            while running[0] or (len(notified) < len(instant_sent) and time.monotonic() < watch_until[0]):
                with conn.cursor() as cur:
                    cur.execute("SELECT id, case_number, extract(epoch FROM sent_at) FROM deliveries "
                                "WHERE notice_kind = 'result' AND sent_at IS NOT NULL AND id > %s ORDER BY id",
                                (last,))
                    for id_, number, sent in cur.fetchall():
                        notified.setdefault(number, float(sent))
                        last = max(last, id_)
                eventlet.sleep(0.2)
        finally:
            conn.close()

    watch_until = [0.0]
    published_before = suite.broker.published()
    acked_before = suite.broker.acked()
    cpu_procs = {n: cpu_seconds(p.pid) for n, p in suite.procs.items()}
    cpu_before = {**cpu_procs, "generator": cpu_seconds(os.getpid()), "rabbitmq": cpu_seconds_of("beam.smp"),
                  "postgresql": cpu_seconds_of("postgres")}
    busy_before = machine_busy()
    t0 = time.monotonic() + 0.2
    watchers = [eventlet.spawn(watch_backlog)]
    if decide:
        watchers.append(eventlet.spawn(approvers))
        watchers.append(eventlet.spawn(town_agents))
    notify_watcher = eventlet.spawn(watch_notify) if watch_notified else None
    pool = eventlet.GreenPool(3000)
    for i, job in enumerate(jobs):
        delay = t0 + i / rate - time.monotonic()
        if delay > 0:
            eventlet.sleep(delay)
        pool.spawn(submit, job, t0 + i / rate)
    pool.waitall()
    load_seconds = time.monotonic() - t0
    eventlet.sleep(max(0.0, t0 + seconds + 1.0 - time.monotonic()))
    cpu = {n: round(cpu_seconds(suite.procs[n].pid) - v, 1) for n, v in cpu_procs.items() if n in suite.procs}
    cpu.update(generator=round(cpu_seconds(os.getpid()) - cpu_before["generator"], 1),
               rabbitmq=round(cpu_seconds_of("beam.smp") - cpu_before["rabbitmq"], 1),
               postgresql=round(cpu_seconds_of("postgres") - cpu_before["postgresql"], 1))
    busy_after = machine_busy()
    end_backlog = backlog_series[-1] if backlog_series else (0, 0, 0)
    watch_until[0] = time.monotonic() + 60  # the instant cases' results still on their way
    running[0] = False
    for w in watchers:
        w.wait()
    if notify_watcher:
        notify_watcher.wait()
    window_lat = [x for w, x in latencies if w == "window"]
    station_lat = [x for w, x in latencies if w == "station"]
    half = [b for b in backlog_series if b[0] >= seconds / 2]
    out = {
        "rate": rate, "seconds": seconds, "submitted": len(jobs), "load_seconds": round(load_seconds, 1),
        "statuses": dict(statuses), "mix": dict(sorted(kinds.items())), "decisions": dict(decided),
        "followed": dict(sorted(followed.items())),
        "window_submit_ms": {"p50": ms(percentile(window_lat, 0.5)), "p99": ms(percentile(window_lat, 0.99)),
                             "max": ms(max(window_lat)) if window_lat else None},
        "station_submit_ms": {"p50": ms(percentile(station_lat, 0.5)), "p99": ms(percentile(station_lat, 0.99))},
        "backlog_end": {"queued": end_backlog[1], "outbox": end_backlog[2]},
        "backlog_max": max((q + o for _, q, o in backlog_series), default=0),
        "backlog_second_half_first_last": [half[0][1] + half[0][2], half[-1][1] + half[-1][2]] if half else None,
        "backlog_series": backlog_series,
        "cpu_seconds": cpu, "machine_cpu_busy_share": round((busy_after[0] - busy_before[0])
                                                            / max(1, busy_after[1] - busy_before[1]), 3),
        "published_during": None, "acked_during": None,
    }
    if watch_notified:
        lags = [notified[n] - sent for n, sent in instant_sent.items() if n in notified]
        # a case not notified by the end of the watch counts as notified then: its lag is at least that
        waited = time.time() - min(instant_sent.values()) if instant_sent else 0.0
        missing = len(instant_sent) - len(lags)
        censored = sorted(lags + [float(waited)] * missing)
        out["instant_notified"] = {"instant_cases": len(instant_sent), "notified": len(lags),
                                   "not_notified_within_s": round(waited) if missing else None,
                                   "p50_ms": ms(percentile(censored, 0.5)), "p99_ms": ms(percentile(censored, 0.99)),
                                   "p99_is_lower_bound": bool(missing) and percentile(lags, 0.99) != percentile(
                                       censored, 0.99),
                                   "max_ms": ms(max(lags)) if lags else None}
    out["_published_before"], out["_acked_before"] = published_before, acked_before
    return out


def sustained(step: dict) -> bool:
    """Kept up: (nearly) every submission accepted, answered within 2 s (p99), and the backlog at the end of the
    step small and not growing over its second half."""
    ok = sum(v for k, v in step["statuses"].items() if k in ("200", "201"))
    end = step["backlog_end"]["queued"] + step["backlog_end"]["outbox"]
    limit = max(300.0, 3 * step["rate"])
    first_last = step["backlog_second_half_first_last"] or [0, 0]
    return (ok >= 0.99 * step["submitted"] and (step["window_submit_ms"]["p99"] or 0) <= 2000
            and end <= limit and first_last[1] - first_last[0] <= limit)


def wait_drained(suite: Suite, limit: float) -> float | None:
    """Seconds until every queue of the prefix is empty and no outbox row waits; None if not within `limit`."""
    import eventlet
    import psycopg2

    started = time.monotonic()
    conns = [psycopg2.connect(s.database_url) for s in suite.layout]
    for c in conns:
        c.autocommit = True
    try:
        while time.monotonic() - started < limit:
            rows = 0
            for c in conns:
                with c.cursor() as cur:
                    cur.execute("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                    rows += cur.fetchone()[0]
            if rows == 0 and suite.broker.backlog() == 0:
                return time.monotonic() - started
            eventlet.sleep(0.25)
        return None
    finally:
        for c in conns:
            c.close()


def finish_counts(suite: Suite, step: dict, settle: float = 6.0) -> None:
    """Messages published and acknowledged during a step (after it drained), per case."""
    published, acked = suite.broker.settled_counters(settle)
    step["published_during"] = published - step.pop("_published_before")
    step["acked_during"] = acked - step.pop("_acked_before")
    step["messages_per_case"] = round(step["published_during"] / max(1, step["submitted"]), 2)
    step["deliveries_per_case"] = round(step["acked_during"] / max(1, step["submitted"]), 2)


def run_suite(args, quick: bool) -> dict:
    import eventlet

    eventlet.monkey_patch()
    from psycogreen.eventlet import patch_psycopg

    patch_psycopg()
    step_seconds = args.step_seconds or (15.0 if quick else 60.0)
    outage_seconds = args.outage_seconds or (15.0 if quick else 60.0)
    rates = [float(r) for r in args.rates.split(",")]
    rng = random.Random(20261125)
    suite = Suite(args.log_level)
    result: dict = {"layout": {n: [s.instance for s in suite.group(n)] for n, _ in Suite.GROUPS},
                    "departments": list(DEPARTMENTS), "towns": list(TOWNS), "ramp": []}
    try:
        suite.up()
        drive(suite, 5, 4 if quick else 8, rng)  # warm up: connections, caches, the first of each kind
        wait_drained(suite, 60)
        best = 0.0
        for rate in rates:
            step = drive(suite, rate, step_seconds, rng)
            drained = wait_drained(suite, 90 if not quick else 45)
            step["drained_after_s"] = None if drained is None else round(drained, 1)
            finish_counts(suite, step)
            step["sustained"] = sustained(step) and drained is not None
            step.pop("backlog_series") if not args.keep_series else None
            result["ramp"].append(step)
            say(f"  {rate:g} cases/s for {step_seconds:g} s: {'sustained' if step['sustained'] else 'NOT sustained'}; "
                f"statuses {step['statuses']}; window submit p50/p99 {step['window_submit_ms']['p50']}/"
                f"{step['window_submit_ms']['p99']} ms; backlog at the end {step['backlog_end']} (most "
                f"{step['backlog_max']}), drained after {step['drained_after_s']} s; {step['messages_per_case']} "
                f"msgs/case; CPU s {step['cpu_seconds']}, machine busy {step['machine_cpu_busy_share']:.0%}")
            if not step["sustained"]:
                break
            best = rate
        result["cases_per_s"] = best

        say(f"fixed: 50 cases/s for {step_seconds:g} s (window submit latency, instant cases notified)")
        fixed = drive(suite, 50.0, step_seconds, rng, watch_notified=True)
        drained = wait_drained(suite, 90)
        fixed["drained_after_s"] = None if drained is None else round(drained, 1)
        finish_counts(suite, fixed)
        fixed["sustained"] = sustained(fixed) and drained is not None
        fixed.pop("backlog_series") if not args.keep_series else None
        result["fixed_50"] = fixed
        say(f"  window submit p50 {fixed['window_submit_ms']['p50']} ms, p99 {fixed['window_submit_ms']['p99']} ms; "
            f"instant notified {fixed['instant_notified']}; {fixed['messages_per_case']} msgs/case "
            f"({fixed['deliveries_per_case']} deliveries/case); CPU s {fixed['cpu_seconds']}")

        say(f"outage: approval, notify and evaluation stopped for {outage_seconds:g} s while 50 cases/s arrive "
            "at the windows")
        for name in ("approval", "after"):
            suite.stop(name)
        outage = drive(suite, 50.0, outage_seconds, rng, windows_only=True, decide=False)
        outage.pop("backlog_series", None)
        outage.pop("_published_before")
        outage.pop("_acked_before")
        # the windows' outboxes empty (nothing else publishes while the consumers are down), stats settled
        import psycopg2

        for s in suite.group("front"):
            c = psycopg2.connect(s.database_url)
            c.autocommit = True
            for _ in range(600):
                with c.cursor() as cur:
                    cur.execute("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                    if cur.fetchone()[0] == 0:
                        break
                eventlet.sleep(0.1)
            c.close()
        published0, acked0 = suite.broker.settled_counters()
        backlog0 = suite.broker.backlog()
        started = time.monotonic()
        for name in ("approval", "after"):
            suite.start(name)
        for name in ("approval", "after"):
            suite.ready(name)
        ready_after = time.monotonic() - started
        deciding = eventlet.spawn(lambda: None)
        drained = wait_drained(suite, 600)
        drain_seconds = None if drained is None else ready_after + drained
        published1, acked1 = suite.broker.settled_counters()
        deciding.wait()
        handled = acked1 - acked0
        result["outage"] = {
            "seconds": outage_seconds, "submitted": outage["submitted"], "statuses": outage["statuses"],
            "window_submit_ms": outage["window_submit_ms"], "backlog_at_restart": backlog0,
            "restart_to_ready_s": round(ready_after, 1),
            "restart_to_empty_s": None if drain_seconds is None else round(drain_seconds, 1),
            "messages_acked_in_drain": handled, "messages_published_in_drain": published1 - published0,
            "drain_msgs_per_s": None if not drain_seconds else round(handled / drain_seconds, 1),
            "drain_msgs_per_s_after_ready": None if not drained else round(handled / max(drained, 0.1), 1),
        }
        say(f"  backlog at restart {backlog0} messages; empty {result['outage']['restart_to_empty_s']} s after the "
            f"restart ({ready_after:.1f} s of it starting); {handled} messages acknowledged: "
            f"{result['outage']['drain_msgs_per_s']} msgs/s")
        suite.ok = True
        return result
    finally:
        suite.down()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a short run of everything")
    ap.add_argument("--rates", default=None, help="cases/s of the ramp, comma separated (default 5,10,20,40,80,160)")
    ap.add_argument("--step-seconds", type=float, default=None, help="seconds per rate (default 60, quick 15)")
    ap.add_argument("--outage-seconds", type=float, default=None, help="consumer outage (default 60, quick 15)")
    ap.add_argument("--open-cases", type=int, default=None, help="open cases loaded (default 1M, quick 100k)")
    ap.add_argument("--history", type=int, default=None, help="historical cases loaded (default 10M, quick 1M)")
    ap.add_argument("--log-level", default="WARNING", help="the services' log level")
    ap.add_argument("--skip", default="", help="sections to leave out: broker,suite,history (their figures are "
                                               "carried from bench/results/city.json, said so in it)")
    ap.add_argument("--fresh", action="store_true", help="carry no figures from an earlier run")
    ap.add_argument("--keep-series", action="store_true", help="keep each step's backlog series in the JSON")
    ap.add_argument("--part", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.part:
        kind, *rest = args.part
        if kind == "broker":
            print(json.dumps(part_broker(int(rest[0]), int(rest[1]))))
        elif kind == "history":
            print(json.dumps(part_history(int(rest[0]), int(rest[1]), int(rest[2]))))
        return 0

    quick = args.quick
    args.rates = args.rates or "5,10,20,40,80,160"
    skip = set(filter(None, args.skip.split(",")))
    started = time.monotonic()
    say(f"tongban city bench{' (quick)' if quick else ''} on {os.cpu_count()} cores")
    out: dict = {"when": time.strftime("%Y-%m-%dT%H:%M:%S"), "machine": platform.node(), "cores": os.cpu_count(),
                 "python": platform.python_version(), "quick": quick,
                 "load_average_at_start": list(os.getloadavg())}
    broker = suite = history = None
    # a section left out keeps its figures from the last run, said so in the JSON (a long load need not be
    # repeated to measure the suite again); --fresh drops them
    earlier = {} if args.fresh or not RESULTS.exists() else json.loads(RESULTS.read_text())
    carried = {}
    for section in ("broker", "suite", "history"):
        if section in skip and section in earlier:
            out[section] = earlier[section]
            carried[section] = earlier.get("sections_measured_at", {}).get(section, earlier.get("when"))
    broker, suite, history = (out.get(k) for k in ("broker", "suite", "history"))
    out["sections_measured_at"] = {k: carried.get(k, out["when"]) for k in ("broker", "suite", "history")
                                   if k not in skip or k in carried}
    if carried:
        say(f"carried from earlier runs: {', '.join(f'{k} ({v})' for k, v in carried.items())}")
    if "broker" not in skip:
        n = 20000 if quick else 100000
        broker = run_part("broker", str(n), str(1000 if quick else 3000))
        out["broker"] = broker
        say(f"broker (quorum queue, bodies {broker['body_bytes']} bytes): {broker['unconfirmed']['msgs_per_s']:.0f} "
            f"msgs/s unconfirmed, {broker['confirm_each']['msgs_per_s']:.0f} with a confirm each, "
            f"{broker['consume_ack_each']['msgs_per_s']:.0f} consumed with an ack each")
    if "suite" not in skip:
        say("suite: the ramp")
        suite = run_suite(args, quick)
        out["suite"] = suite
    if "history" not in skip:
        open_cases = args.open_cases or (100_000 if quick else 1_000_000)
        hist = args.history or (1_000_000 if quick else 10_000_000)
        say(f"history: loading {open_cases:,} open and {hist:,} historical cases into a fresh evaluation database")
        history = run_part("history", str(open_cases), str(hist), str(3 if quick else 5))
        out["history"] = history
        say(f"  loaded in {history['loaded']['total_seconds']} s ({history['loaded']['database_mb']} MB); "
            + "; ".join(f"{k} {history[k]['median_ms']} ms ({history[k]['rows']} rows, "
                        f"{history[k]['response_bytes']:,} bytes)"
                        for k in ("board_city", "board_town", "board_department_office", "report_city",
                                  "report_town", "report_department")))

    figures = {"cores": os.cpu_count()}
    if broker:
        figures["broker_unconfirmed_msgs_per_s"] = broker["unconfirmed"]["msgs_per_s"]
        figures["broker_confirm_each_msgs_per_s"] = broker["confirm_each"]["msgs_per_s"]
        figures["broker_consume_ack_msgs_per_s"] = broker["consume_ack_each"]["msgs_per_s"]
    if suite:
        figures["cases_per_s"] = suite["cases_per_s"]
        fixed = suite["fixed_50"]
        figures["messages_per_case"] = fixed["messages_per_case"]
        figures["deliveries_per_case"] = fixed["deliveries_per_case"]
        best = next((s for s in reversed(suite["ramp"]) if s["sustained"]), None)
        handled = best["acked_during"] / best["seconds"] if best else 0.0
        figures["messages_handled_per_s_at_best"] = round(handled, 1)
        if broker:
            figures["ratio_to_broker"] = round(handled / broker["unconfirmed"]["msgs_per_s"], 4)
        figures["submit_p50_ms_at_50"] = fixed["window_submit_ms"]["p50"]
        figures["submit_p99_ms_at_50"] = fixed["window_submit_ms"]["p99"]
        figures["instant_notified_p99_ms_at_50"] = fixed["instant_notified"]["p99_ms"]
        figures["drain_msgs_per_s"] = suite["outage"]["drain_msgs_per_s"]
        figures["drain_msgs_per_s_after_ready"] = suite["outage"]["drain_msgs_per_s_after_ready"]
    if history:
        figures["board_ms_1m_open"] = history["board_city"]["median_ms"]
        figures["board_town_ms"] = history["board_town"]["median_ms"]
        figures["report_ms_10m_history"] = history["report_city"]["median_ms"]
        figures["open_cases_loaded"] = history["open_cases"]
        figures["historical_cases_loaded"] = history["historical_cases"]
    targets = {}
    for name, (op, want) in TARGETS.items():
        if figures.get(name) is None and name not in figures:
            continue
        value = figures[name]
        met = value is not None and (value >= want if op == ">=" else value <= want)
        targets[name] = {"target": f"{op} {want:g}", "value": value, "met": met}
    out["seconds"] = round(time.monotonic() - started, 1)
    out.update(figures)
    out["targets"] = targets
    say(f"figures ({out['seconds']} s):")
    for name, value in figures.items():
        t = targets.get(name)
        say(f"  {name}: {value}" + (f"  (target {t['target']}: {'met' if t['met'] else 'NOT met'})" if t else ""))
    if "ratio_to_broker" in figures:
        say(f"  (ratio: messages acknowledged per second at {figures['cases_per_s']:g} cases/s ÷ the broker's "
            "unconfirmed ceiling)")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2, ensure_ascii=False, default=str))
    say(f"written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
