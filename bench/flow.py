"""Benchmark: cases per second through the whole suite, and outbox relay publishes per second.

    .venv/bin/python bench/flow.py [--cases 500] [--relay-messages 2000]

Prints the figures and writes them to bench/results/flow.json. Not a test: tests check correctness.
"""
import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

from shared.config import Settings  # noqa: E402
from shared.contracts import make_message  # noqa: E402
from tongban.demo import run_demo  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "flow.json"


def bench_relay(messages: int) -> dict:
    """Publish `messages` outbox rows with confirms through a real broker (SQLite store)."""

    from kombu import Connection, Queue

    from services.notify.service import VERSIONS
    from shared.platform import Platform

    prefix = f"bench{uuid.uuid4().hex[:6]}"
    settings = Settings(service="notify", instance="bench", bus_prefix=prefix, data_dir=Path(tempfile.mkdtemp()))
    platform_ = Platform(settings, VERSIONS)

    class _Container:  # the relay needs no consumers here
        entrypoints = []

    platform_.container = _Container()
    platform_.setup()
    sink = Queue(f"{prefix}.sink", exchange=platform_.topology.events, routing_key="notice.#", auto_delete=False)
    with Connection(settings.amqp_url) as conn:
        sink(conn.default_channel).declare()
    payload = {"accepting_town": "320583101", "notice_kind": "result", "channel": "log", "delivery_id": 1}
    with platform_.store.transaction() as tx:
        for i in range(messages):
            tx.publish(make_message("notice.sent", f"N-{i}", 1, payload, "bench"), "notice.sent.320583101")
    started = time.perf_counter()
    sent = 0
    while sent < messages:
        sent += platform_.relay_once(limit=500)
    seconds = time.perf_counter() - started
    with Connection(settings.amqp_url) as conn:
        conn.default_channel.queue_delete(sink.name)
        for exchange in (platform_.topology.events, platform_.topology.work, platform_.topology.dead_letters):
            conn.default_channel.exchange_delete(exchange.name)
    return {"messages": messages, "seconds": round(seconds, 3), "messages_per_second": round(messages / seconds, 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=500)
    ap.add_argument("--relay-messages", type=int, default=2000)
    args = ap.parse_args()
    relay = bench_relay(args.relay_messages)
    print(f"outbox relay: {relay['messages']} messages in {relay['seconds']} s "
          f"= {relay['messages_per_second']} msg/s (publisher confirms, SQLite)")
    summary = run_demo(cases=args.cases, as_json=True)
    flow = {"cases": args.cases, "seconds": summary["elapsed_seconds"], "reconciled": summary["reconciled"],
            "cases_per_second": round(args.cases / summary["elapsed_seconds"], 1)}
    print(f"end to end: {flow['cases']} cases (start, accept, decide, notify, evaluate, stop) in "
          f"{flow['seconds']} s = {flow['cases_per_second']} cases/s, reconciled={flow['reconciled']}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"when": time.strftime("%Y-%m-%dT%H:%M:%S"), "machine": platform.node(),
                                   "python": platform.python_version(), "relay": relay, "flow": flow}, indent=2))
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
