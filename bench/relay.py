"""Benchmark: the outbox relay, the broker beneath it, and one intake under a steady load.

    .venv/bin/python bench/relay.py            # full: about three minutes
    .venv/bin/python bench/relay.py --quick    # a short run of everything

In one run it measures
- the broker alone: persistent publishes to a quorum queue, unconfirmed and with a confirm per message;
- the relay alone: outbox rows per second from PostgreSQL and from SQLite to a quorum queue;
- the suite under load: an open-loop schedule of case submissions (default 50 per second for 60 s) into
  one intake on PostgreSQL, with approval instances for the departments the items need, notify,
  evaluation and agent running (each instance on its own database, on a bus prefix of its own), in
  processes apart from this one, which generates the load and watches: submit latency from the
  scheduled send time, the outbox rows waiting (polled from the tables) and /health latency.

Figures are printed and written to bench/results/relay.json with the targets and whether they were met.
Everything the run creates (bus prefix, databases, data folder) is removed afterwards. Not a test.
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
from pathlib import Path

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results" / "relay.json"
AMQP_URL = os.environ.get("TONGBAN_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
PG_URL = os.environ.get("TONGBAN_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TOWN = "320583101"
# what the applicants ask for: instant items (decided by rule, so the whole flow runs for each) and
# promised ones (a work item waits for an approver); two departments serve them all
ITEMS = [("MZ-0001", ["idcard", "photo"]), ("RS-0002", ["idcard", "hukou", "form"]),
         ("RS-0004", ["idcard", "form"]), ("RS-0001", ["idcard", "form"]),
         ("MZ-0010", ["idcard", "apply"]), ("MZ-0004", ["idcard", "apply", "proof"])]
DEPARTMENTS = ("minzheng", "renshe")
TARGETS = {"relay_share_of_unconfirmed_broker_rate": 0.30, "submit_p99_ms": 150.0, "outbox_max_rows": 500,
           "health_p99_ms": 50.0}


def percentile(values, q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def sample_body(i: int) -> bytes:
    """A message of the size the suite sends (a case.updated envelope)."""
    return json.dumps({
        "message_id": uuid.uuid4().hex, "type": "case.updated", "schema_version": 1,
        "case_number": f"{TOWN}-20261125-{i:05d}", "case_version": 2, "producer": f"intake-{TOWN}",
        "occurred_at": "2026-11-25T06:00:00.000000+00:00",
        "payload": {"accepting_town": TOWN, "action": "accept", "status": "in_review",
                    "deadline": "2026-12-02", "item_code": "MZ-0002", "item_name": "最低生活保障申请",
                    "departments": ["minzheng"], "applicant_town": TOWN, "kind": "promised"},
    }, ensure_ascii=False).encode("utf-8")


# --- parts run in their own processes ---------------------------------------------------------------

def part_broker(messages: int, confirmed: int, bodies: list[bytes] | None = None, consume: bool = False) -> dict:
    """Raw persistent publishes to a quorum queue with py-amqp (no eventlet): the ceiling. `bodies` are sent in
    turn (default: one sample body); `consume`: also what is published consumed, with an ack per message."""
    import amqp

    from shared.relay import amqp_connection

    bodies = bodies or [sample_body(0)]
    queue = f"bench{uuid.uuid4().hex[:8]}.raw"
    conn = amqp_connection(AMQP_URL)
    conn.connect()
    ch = conn.channel()
    ch.queue_declare(queue, durable=True, auto_delete=False, arguments={"x-queue-type": "quorum"})

    def message(i):
        return amqp.Message(bodies[i % len(bodies)], delivery_mode=2, content_type="application/json",
                            content_encoding="utf-8", message_id=str(i))

    def rate(n: int, seconds: float) -> dict:
        return {"messages": n, "seconds": round(seconds, 3), "msgs_per_s": round(n / seconds, 1)}

    try:
        def unconfirmed(n):
            started = time.perf_counter()
            for i in range(n):
                ch.basic_publish(message(i), exchange="", routing_key=queue)
            ch.queue_declare(queue, passive=True)  # a round trip: the broker has read every publish
            return time.perf_counter() - started

        unconfirmed(min(2000, messages))  # warm up
        ch.queue_purge(queue)
        seconds = unconfirmed(messages)
        deadline = time.monotonic() + 60
        while ch.queue_declare(queue, passive=True)[1] < messages and time.monotonic() < deadline:
            time.sleep(0.05)
        out = {"unconfirmed": rate(messages, seconds)}
        if consume:  # what is there, an ack per message (prefetch 500, as a busy consumer would run)
            cconn = amqp_connection(AMQP_URL)
            cconn.connect()
            cch = cconn.channel()
            cch.basic_qos(0, 500, False)
            got = [0]

            def on_message(m):
                got[0] += 1
                cch.basic_ack(m.delivery_tag)

            started = time.perf_counter()
            cch.basic_consume(queue, callback=on_message)
            while got[0] < messages and time.perf_counter() - started < 120:
                cconn.drain_events(timeout=5)
            out["consume_ack_each"] = rate(got[0], time.perf_counter() - started)
            cconn.close()
        ch.queue_purge(queue)

        cconn = amqp_connection(AMQP_URL, confirm_publish=True)  # basic_publish waits for each ack
        cconn.connect()
        cch = cconn.channel()
        started = time.perf_counter()
        for i in range(confirmed):
            cch.basic_publish(message(i), exchange="", routing_key=queue)
        out["confirm_each"] = rate(confirmed, time.perf_counter() - started)
        cconn.close()
        return out
    finally:
        ch.queue_delete(queue)
        conn.close()


def part_relay(backend: str, messages: int, window: int) -> dict:
    """The relay alone, as a service runs it (eventlet, green psycopg2): a filled outbox to a quorum queue."""
    import eventlet

    eventlet.monkey_patch()
    import sqlalchemy as sa

    from shared.bus import Topology
    from shared.db import outbox_table
    from shared.metrics import ServiceMetrics
    from shared.relay import OutboxRelay, amqp_connection
    from shared.store import Store, utcnow

    topology = Topology(f"bench{uuid.uuid4().hex[:8]}")
    exchange = topology.events.name
    sink = f"{exchange}.sink"
    conn = amqp_connection(AMQP_URL)
    conn.connect()
    ch = conn.channel()
    ch.exchange_declare(exchange, "topic", durable=True, auto_delete=False)
    ch.queue_declare(sink, durable=True, auto_delete=False, arguments={"x-queue-type": "quorum"})
    ch.queue_bind(sink, exchange, "case.#")
    tmp = Path(tempfile.mkdtemp(prefix="tongban-bench-relay-"))
    from tongban.runtime import PostgresDatabases

    dbs = PostgresDatabases(PG_URL, label="tbbench")
    url = f"sqlite:///{tmp / 'relay.db'}" if backend == "sqlite" else dbs.new("relay")
    store = Store(url, ROOT / "services" / "evaluation" / "migrations" / "versions", exchange)
    try:
        store.migrate()
        for start in range(0, messages, 2000):
            with store.engine.begin() as db:
                db.execute(outbox_table.insert(), [
                    {"message_id": uuid.uuid4().hex, "exchange": exchange, "routing_key": f"case.updated.{TOWN}",
                     "body": sample_body(i).decode("utf-8"), "created_at": utcnow(), "attempts": 0}
                    for i in range(start, min(start + 2000, messages))])
        relay = OutboxRelay(store, AMQP_URL, ServiceMetrics("bench"), window=window)
        relay.relay_once(1)  # connect first: the figure is publishing, not the handshake
        sent, rounds = 1, 1
        started = time.perf_counter()
        while sent < messages:
            n = relay.relay_once()
            sent += n
            rounds += 1
            if not n and not store.due_outbox(1):
                break
        seconds = time.perf_counter() - started
        relay.close()
        with store.engine.connect() as db:
            left = db.execute(sa.select(sa.func.count()).select_from(outbox_table)
                              .where(outbox_table.c.published_at.is_(None))).scalar_one()
        deadline = time.monotonic() + 30
        while ch.queue_declare(sink, passive=True)[1] < messages and time.monotonic() < deadline:
            time.sleep(0.05)
        depth = ch.queue_declare(sink, passive=True)[1]
        return {"backend": backend, "messages": messages, "window": window, "seconds": round(seconds, 3),
                "msgs_per_s": round((sent - 1) / seconds, 1), "rounds": rounds, "left_unpublished": left,
                "in_queue": depth}
    finally:
        store.dispose()
        ch.queue_delete(sink)
        ch.exchange_delete(exchange)
        conn.close()
        dbs.drop_all()
        shutil.rmtree(tmp, ignore_errors=True)


# --- helpers of the main process ------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """User and system CPU a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds_of(command: str) -> float:
    """CPU used so far by every process whose command is `command` (e.g. beam.smp, postgres)."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "comm").read_text().strip() == command:
                total += cpu_seconds(int(proc.name))
        except (OSError, IndexError, ValueError):
            continue
    return total


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU jiffies of the whole machine so far."""
    values = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def run_part(*args: str, timeout: float = 600) -> dict:
    out = subprocess.run([sys.executable, __file__, "--part", *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"part {args[0]} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def load_test(rate: float, duration: float, groups: int, log_level: str, say, profile: str | None = None,
              nice_rest: int = 0, intake_only: bool = False) -> dict:
    """Open-loop submissions into one intake on PostgreSQL with the rest of the suite running."""
    import eventlet

    eventlet.monkey_patch()
    from psycogreen.eventlet import patch_psycopg

    patch_psycopg()
    import psycopg2
    import requests
    from requests.adapters import HTTPAdapter

    from shared import tokens
    from shared.config import Settings
    from tongban.demo import fake_resident_id
    from tongban.runtime import free_port_block, host_layout, remove_bus

    prefix = f"bench{uuid.uuid4().hex[:8]}"
    data_dir = Path(tempfile.mkdtemp(prefix="tongban-bench-load-"))
    from tongban.runtime import PostgresDatabases

    dbs = PostgresDatabases(PG_URL, label="tbbench")
    base = Settings(service="bench", instance="bench", amqp_url=AMQP_URL, bus_prefix=prefix, data_dir=data_dir)
    layout = host_layout(base, towns=(TOWN,), departments=DEPARTMENTS,
                         first_port=free_port_block(len(DEPARTMENTS) + 4, start=21000))
    layout = [s.with_(database_url=dbs.new(s.instance)) for s in layout]
    intake = next(s for s in layout if s.service == "intake")
    # the intake alone in one process, the others in another (or all in one with --groups 1)
    process_groups = [[intake], [s for s in layout if s is not intake]] if groups > 1 else [layout]
    if intake_only:  # a diagnosis: the intake with the machine to itself (its messages wait in their queues)
        process_groups = [[intake]]
    from tongban.process_groups import ProcessCluster

    cluster = ProcessCluster(data_dir, log_level, log_files=True)
    result: dict = {}
    try:
        for n, group in enumerate(process_groups):
            cluster.start(f"services{n}", group)
            if nice_rest and intake not in group:  # the rest of the suite yields the CPU to the intake
                os.setpriority(os.PRIO_PROCESS, cluster.procs[f"services{n}"].pid, nice_rest)
        for n in range(len(process_groups)):
            cluster.ready(f"services{n}")
        procs = list(cluster.procs.values())
        say(f"load: {sum(map(len, process_groups))} instances up in {len(procs)} processes on bus prefix {prefix}; "
            f"{rate:g} cases/s for {duration:g} s into {intake.instance}")

        key = base.with_(service="cli").signing_key()
        clerk = tokens.issue(key, "bench-clerk", "clerk", f"town:{TOWN}")
        ops = tokens.issue(key, "bench-ops", "service", "city")
        http = requests.Session()
        http.mount("http://", HTTPAdapter(pool_connections=4, pool_maxsize=400))
        rng = random.Random(20261125)
        total = int(rate * duration)
        bodies = []
        for _ in range(total):
            code, materials = rng.choice(ITEMS)
            bodies.append({"item_code": code, "materials": materials, "applicant": {
                "name": "王芳", "id_number": fake_resident_id(rng), "phone": f"138{rng.randint(0, 99999999):08d}",
                "channel": "sms", "town": TOWN}})
        submit_url = f"{intake.base_url}/cases"
        latencies, service_times, statuses, lags = [], [], {}, []

        def submit(body, scheduled):
            sent = time.monotonic()
            lags.append(sent - scheduled)
            try:
                r = http.post(submit_url, json=body, headers={"Authorization": f"Bearer {clerk}"}, timeout=60)
                code = r.status_code
            except Exception as exc:  # counted, not fatal: the figures say how many failed
                code = type(exc).__name__
            done = time.monotonic()
            latencies.append(done - scheduled)
            service_times.append(done - sent)
            statuses[str(code)] = statuses.get(str(code), 0) + 1

        running = [s for group in process_groups for s in group]
        outbox_seen = {s.instance: 0 for s in running}
        outbox_series = []
        health = {"latencies": [], "statuses": {}}
        watching = [True]

        def watch_outboxes():
            conns = {s.instance: psycopg2.connect(s.database_url) for s in running}
            for c in conns.values():
                c.autocommit = True
            try:
                while watching[0]:
                    for name, c in conns.items():
                        with c.cursor() as cur:
                            cur.execute("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                            n = cur.fetchone()[0]
                        outbox_seen[name] = max(outbox_seen[name], n)
                        if name == intake.instance:
                            outbox_series.append(n)
                    eventlet.sleep(0.2)
            finally:
                for c in conns.values():
                    c.close()

        def watch_health():
            probe = requests.Session()
            while watching[0]:
                t = time.monotonic()
                try:
                    code = probe.get(f"{intake.base_url}/health", timeout=30).status_code
                except Exception as exc:
                    code = type(exc).__name__
                health["latencies"].append(time.monotonic() - t)
                health["statuses"][str(code)] = health["statuses"].get(str(code), 0) + 1
                eventlet.sleep(0.1)

        watchers = [eventlet.spawn(watch_outboxes), eventlet.spawn(watch_health)]
        spies = []
        if profile:  # py-spy samples each services process during the load (collapsed stacks)
            Path(profile).mkdir(parents=True, exist_ok=True)
            for n, p in enumerate(procs):
                spies.append(subprocess.Popen(
                    [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(p.pid), "--format", "raw",
                     "--duration", str(int(duration)), "--rate", "200", "--nonblocking",
                     "--output", str(Path(profile) / f"services{n}.txt")],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        cpu_before = {n: cpu_seconds(p.pid) for n, p in enumerate(procs)}
        cpu_before["generator"] = cpu_seconds(os.getpid())
        others_before = {"rabbitmq": cpu_seconds_of("beam.smp"), "postgresql": cpu_seconds_of("postgres")}
        busy_before = machine_busy()
        pool = eventlet.GreenPool(1000)
        t0 = time.monotonic() + 0.2
        for i, body in enumerate(bodies):  # open loop: the schedule, not the answers, sets the pace
            scheduled = t0 + i / rate
            delay = scheduled - time.monotonic()
            if delay > 0:
                eventlet.sleep(delay)
            pool.spawn(submit, body, scheduled)
        pool.waitall()
        load_seconds = time.monotonic() - t0
        cpu = {(f"services{n}" if n != "generator" else n): round((cpu_seconds(procs[n].pid) if n != "generator"
                                                                   else cpu_seconds(os.getpid())) - before, 1)
               for n, before in cpu_before.items()}
        cpu.update({name: round(cpu_seconds_of("beam.smp" if name == "rabbitmq" else "postgres") - before, 1)
                    for name, before in others_before.items()})
        busy_after = machine_busy()
        machine_share = (busy_after[0] - busy_before[0]) / max(1, busy_after[1] - busy_before[1])
        for spy in spies:
            spy.wait()
        drain_started = time.monotonic()
        while time.monotonic() - drain_started < 60 and outbox_series and outbox_series[-1] > 0:
            eventlet.sleep(0.2)
        drained = time.monotonic() - drain_started
        watching[0] = False
        for w in watchers:
            w.wait()
        stats = http.get(f"{intake.base_url}/stats", headers={"Authorization": f"Bearer {ops}"}, timeout=30).json()
        metrics = http.get(f"{intake.base_url}/metrics", timeout=30).text
        published = next((float(line.split()[-1]) for line in metrics.splitlines()
                          if line.startswith("tongban_outbox_published_total ")), None)
        result = {
            "rate_per_s": rate, "duration_s": duration, "submitted": total, "service_processes": len(procs),
            "load_seconds": round(load_seconds, 1), "statuses": statuses,
            "submit_latency_from_schedule_ms": {"p50": ms(percentile(latencies, 0.5)),
                                                "p90": ms(percentile(latencies, 0.9)),
                                                "p99": ms(percentile(latencies, 0.99)), "max": ms(max(latencies))},
            "submit_service_time_ms": {"p50": ms(percentile(service_times, 0.5)),
                                       "p99": ms(percentile(service_times, 0.99))},
            "generator_send_lag_ms_p99": ms(percentile(lags, 0.99)),
            "outbox_max_rows": outbox_seen[intake.instance], "outbox_max_rows_by_instance": outbox_seen,
            "outbox_mean_rows": round(statistics.fmean(outbox_series), 1) if outbox_series else None,
            "outbox_drained_after_s": round(drained, 1),
            "intake_relay_published": published,
            "health": {"polls": len(health["latencies"]), "statuses": health["statuses"],
                       "p50_ms": ms(percentile(health["latencies"], 0.5)),
                       "p99_ms": ms(percentile(health["latencies"], 0.99)), "max_ms": ms(max(health["latencies"]))},
            "intake_cases_by_status": stats.get("by_status"),
            "cpu_seconds_during_load": cpu, "machine_cpu_busy_share": round(machine_share, 3),
            "process_groups": [[s.instance for s in g] for g in process_groups], "nice_rest": nice_rest,
            "intake_only": intake_only,
        }
        return result
    finally:
        cluster.stop_all()
        try:
            remove_bus(AMQP_URL, prefix, layout)
        except Exception as exc:
            print(f"note: could not remove bus prefix {prefix}: {exc}", file=sys.stderr)
        dbs.drop_all()
        if result:
            shutil.rmtree(data_dir, ignore_errors=True)
        else:
            print(f"note: the services' logs are kept in {data_dir}", file=sys.stderr)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a short run of everything (about 40 s)")
    ap.add_argument("--rate", type=float, default=50.0, help="cases per second into the intake")
    ap.add_argument("--duration", type=float, default=None, help="seconds of load (default 60, quick 10)")
    ap.add_argument("--relay-messages", type=int, default=None, help="outbox rows per relay figure")
    ap.add_argument("--window", type=int, default=500, help="relay window (rows per round)")
    ap.add_argument("--groups", type=int, default=2, choices=(1, 2),
                    help="service processes: 2 = the intake alone and the rest; 1 = all in one")
    ap.add_argument("--log-level", default="WARNING", help="the services' log level")
    ap.add_argument("--skip-load", action="store_true", help="only the broker and relay figures")
    ap.add_argument("--skip-relay", action="store_true", help="only the load test")
    ap.add_argument("--profile", metavar="DIR", help="py-spy the services processes during the load into DIR")
    ap.add_argument("--nice-rest", type=int, default=0, metavar="N",
                    help="run the services other than the intake at this nice level (a diagnosis: the intake "
                         "with the CPU it would have on its own node)")
    ap.add_argument("--intake-only", action="store_true",
                    help="run only the intake (a diagnosis: its latency when the rest of the suite is elsewhere)")
    ap.add_argument("--part", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.part:
        kind, *rest = args.part
        if kind == "broker":
            print(json.dumps(part_broker(int(rest[0]), int(rest[1]))))
        elif kind == "relay":
            print(json.dumps(part_relay(rest[0], int(rest[1]), int(rest[2]))))
        return 0

    def say(*a):
        print(*a, flush=True)

    quick = args.quick
    relay_messages = args.relay_messages or (5000 if quick else 30000)
    duration = args.duration or (10.0 if quick else 60.0)
    say(f"tongban relay bench{' (quick)' if quick else ''}: broker, relay, then {args.rate:g} cases/s "
        f"for {duration:g} s")
    broker, relay, load = None, {}, None
    if not args.skip_relay:
        broker = run_part("broker", str(relay_messages), str(1000 if quick else 3000))
        say(f"broker: {broker['unconfirmed']['msgs_per_s']:.0f} persistent msgs/s unconfirmed, "
            f"{broker['confirm_each']['msgs_per_s']:.0f} msgs/s with a confirm per message (quorum queue)")
        for backend in ("postgresql", "sqlite"):
            relay[backend] = run_part("relay", backend, str(relay_messages), str(args.window))
            r = relay[backend]
            say(f"relay on {backend}: {r['messages']} rows in {r['seconds']} s = {r['msgs_per_s']:.0f} msgs/s "
                f"(window {r['window']}, {r['rounds']} rounds; {r['in_queue']} in the queue, "
                f"{r['left_unpublished']} left)")
    if not args.skip_load:
        load = load_test(args.rate, duration, args.groups, args.log_level, say, args.profile, args.nice_rest,
                         args.intake_only)
        lat = load["submit_latency_from_schedule_ms"]
        say(f"load: {load['submitted']} submissions in {load['load_seconds']} s, statuses {load['statuses']}; "
            f"submit p50 {lat['p50']} ms, p99 {lat['p99']} ms (from the scheduled time); "
            f"outbox at most {load['outbox_max_rows']} rows; /health p99 {load['health']['p99_ms']} ms "
            f"({load['health']['polls']} polls, {load['health']['statuses']}); "
            f"CPU s {load['cpu_seconds_during_load']}, "
            f"machine busy {load['machine_cpu_busy_share']:.0%}")

    figures, targets = {}, {}
    if broker:
        unconfirmed = broker["unconfirmed"]["msgs_per_s"]
        figures.update({
            "relay_msgs_per_s_postgresql": relay["postgresql"]["msgs_per_s"],
            "relay_msgs_per_s_sqlite": relay["sqlite"]["msgs_per_s"],
            "broker_unconfirmed_msgs_per_s": unconfirmed,
            "broker_confirm_each_msgs_per_s": broker["confirm_each"]["msgs_per_s"],
        })
        share = figures["relay_msgs_per_s_postgresql"] / unconfirmed if unconfirmed else 0.0
        targets["relay_postgresql_share_of_unconfirmed"] = {
            "target": f">= {TARGETS['relay_share_of_unconfirmed_broker_rate']:.0%}", "value": round(share, 3),
            "met": share >= TARGETS["relay_share_of_unconfirmed_broker_rate"]}
    if load:
        figures.update({
            "submit_p50_ms": load["submit_latency_from_schedule_ms"]["p50"],
            "submit_p99_ms": load["submit_latency_from_schedule_ms"]["p99"],
            "outbox_max_rows": load["outbox_max_rows"],
            "health_p99_ms": load["health"]["p99_ms"],
        })
        targets.update({
            "submit_p99_ms": {"target": f"<= {TARGETS['submit_p99_ms']:g}", "value": figures["submit_p99_ms"],
                              "met": figures["submit_p99_ms"] <= TARGETS["submit_p99_ms"]},
            "outbox_max_rows": {"target": f"<= {TARGETS['outbox_max_rows']}", "value": figures["outbox_max_rows"],
                                "met": figures["outbox_max_rows"] <= TARGETS["outbox_max_rows"]},
            "health_p99_ms": {"target": f"<= {TARGETS['health_p99_ms']:g}", "value": figures["health_p99_ms"],
                              "met": figures["health_p99_ms"] <= TARGETS["health_p99_ms"]},
        })
    for name, t in targets.items():
        say(f"target {name}: {t['value']} (want {t['target']}): {'met' if t['met'] else 'NOT met'}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"), "machine": platform.node(), "cpus": os.cpu_count(),
        "python": platform.python_version(), "quick": quick, **figures, "targets": targets,
        "broker": broker, "relay": relay, "load": load}, indent=2, ensure_ascii=False))
    say(f"written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
