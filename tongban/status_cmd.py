"""`tongban status`: what runs, what waits and what is stuck in a running deployment, in one place.

Gathers the facts and hands them to the rules (tongban/status_rules.py):

* the instances, each one's `/health` (its checks, and its outbox: backlog, oldest unsent message, messages
  no queue took). Which instances: `--instances` (JSON `{"instance": "URL", …}` or a file with it), else
  `TONGBAN_PORTAL_UPSTREAMS` (the list the portal calls, set in docker-compose and k8s; with
  `TONGBAN_PORTAL_URL` added as `portal`), else `<data dir>/instances.json`, which `tongban up` writes;
* the queues of the bus prefix from RabbitMQ's management API (depth, consumers, rates), the ready count and
  consumers exact from the broker itself, the registry's queues (shared.registry, for the active catalogue)
  checked to be there; dead-letter and retry queues;
* the open deadline warnings from evaluation's `/metrics` (`tongban_open_warnings`; no token needed);
* the virtual host's unroutable messages (management API), for context.

It talks to the broker as `TONGBAN_AMQP_URL` names it (the admin, as `tongban dlq` and `tongban bus`), its
management API at `TONGBAN_MANAGEMENT_URL` or port 15672 of the broker's host.
"""
from __future__ import annotations

import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import requests

from tongban import status_rules as rules

INSTANCES_FILE = "instances.json"  # in the data folder: the instances `tongban up` runs, {name: URL}
HTTP_TIMEOUT = 3.0  # seconds per instance: one that hangs must not hang the report
QUEUE_COLUMNS = ("name,messages_ready,messages_unacknowledged,consumers,message_stats.publish_details.rate,"
                 "message_stats.deliver_get_details.rate,message_stats.ack_details.rate")


class StatusError(Exception):
    """The report cannot be made (no instance list, a bad one)."""


# --- where the instances are ---------------------------------------------------------------------------

def write_instances_file(data_dir, urls: dict[str, str]) -> Path:
    """What `tongban up` leaves for `tongban status`: the instances it runs and their URLs."""
    path = Path(data_dir) / INSTANCES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(urls, indent=1, sort_keys=True), encoding="utf-8")
    tmp.replace(path)
    return path


def _parse_instances(text: str, source: str) -> dict[str, str]:
    try:
        urls = json.loads(text)
    except ValueError as exc:
        raise StatusError(f"{source} must be JSON {{\"instance\": \"URL\", …}}: {exc}") from None
    if not isinstance(urls, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in urls.items()):
        raise StatusError(f"{source} must be a JSON object of instance names to URLs")
    return urls


def instance_urls(given: str | None, data_dir, env=None) -> tuple[dict[str, str], str]:
    """({instance: URL}, where the list came from); see the module's docstring for the order."""
    env = os.environ if env is None else env
    if given:
        text = given if given.lstrip().startswith("{") else _read(given, "--instances")
        return _parse_instances(text, "--instances"), "--instances"
    if env.get("TONGBAN_PORTAL_UPSTREAMS"):
        urls = _parse_instances(env["TONGBAN_PORTAL_UPSTREAMS"], "TONGBAN_PORTAL_UPSTREAMS")
        if env.get("TONGBAN_PORTAL_URL"):
            urls.setdefault("portal", env["TONGBAN_PORTAL_URL"])
        return urls, "TONGBAN_PORTAL_UPSTREAMS"
    path = Path(data_dir) / INSTANCES_FILE
    if path.exists():
        return _parse_instances(_read(path, str(path)), str(path)), str(path)
    raise StatusError(f"which instances? none named: give --instances '{{\"name\": \"URL\", …}}' (or a file), set "
                      f"TONGBAN_PORTAL_UPSTREAMS as the portal has it, or run where `tongban up` wrote {path}")


def _read(path, source: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise StatusError(f"{source}: cannot read {path}: {exc.strerror}") from None


# --- gathering -----------------------------------------------------------------------------------------

def instance_facts(http: requests.Session, name: str, url: str) -> rules.InstanceFacts:
    try:
        r = http.get(url.rstrip("/") + "/health", timeout=HTTP_TIMEOUT)
    except requests.RequestException as exc:
        return rules.InstanceFacts(name, url, error=type(exc).__name__)
    try:
        body = r.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    return rules.InstanceFacts(name, url, r.status_code, dict(body.get("checks") or {}), dict(body.get("outbox") or {}))


def open_warnings(http: requests.Session, urls: dict[str, str]) -> list[rules.WarningFacts] | None:
    """Evaluation's open warnings gauge (its instances are named `evaluation`, replicas alike); None when
    no evaluation instance answered."""
    from prometheus_client.parser import text_string_to_metric_families

    for name, url in sorted(urls.items()):
        if not name.startswith("evaluation"):
            continue
        try:
            r = http.get(url.rstrip("/") + "/metrics", timeout=HTTP_TIMEOUT)
            r.raise_for_status()
        except requests.RequestException:
            continue
        found = []
        for family in text_string_to_metric_families(r.text):
            if family.name != "tongban_open_warnings":
                continue
            for sample in family.samples:
                labels = sample.labels
                found.append(rules.WarningFacts(labels.get("colour", ""), labels.get("town", ""),
                                                labels.get("department", ""), int(sample.value)))
        return found
    return None


def _rate(item: dict, key: str) -> float | None:
    return ((item.get("message_stats") or {}).get(key) or {}).get("rate")


def _registry_queues(amqp_url: str, prefix: str) -> set[str]:
    """The consuming queues the registry names for the deployment's active catalogue."""
    from shared import registry
    from shared.reference import StreamClient

    towns, departments = registry.catalogue_scope(StreamClient(amqp_url, prefix).catalogs())
    return {spec.name(prefix) for spec in registry.deployment_queues(towns, departments)}


def broker_facts(amqp_url: str, prefix: str, management: str | None) -> tuple[list[rules.QueueFacts], str, dict]:
    """(queues, error, the virtual host's unroutable figures)."""
    from shared.bus import queue_counts
    from shared.deadletters import management_url
    from shared.platform import _safe_url
    from shared.reference import stream_name

    base, creds, vhost = management_url(amqp_url, management)
    api = f"{base}/api"
    try:
        r = requests.get(f"{api}/queues/{quote(vhost, safe='')}", auth=creds, timeout=10,
                         params={"columns": QUEUE_COLUMNS})
        r.raise_for_status()
        listed = [q for q in r.json() if q["name"].startswith(prefix + ".")]
        v = requests.get(f"{api}/vhosts/{quote(vhost, safe='')}", auth=creds, timeout=10)
        v.raise_for_status()
        stats = v.json().get("message_stats") or {}
    except requests.HTTPError as exc:
        return [], f"management API at {base}: HTTP {exc.response.status_code}", {}
    except (requests.RequestException, ValueError) as exc:
        return [], f"management API at {base}: {type(exc).__name__}", {}
    unroutable = {f"{k}_total": stats.get(k) for k in ("return_unroutable", "drop_unroutable") if k in stats}
    unroutable.update({f"{k}_per_second": (stats.get(f"{k}_details") or {}).get("rate")
                       for k in ("return_unroutable", "drop_unroutable") if f"{k}_details" in stats})
    by_name = {q["name"]: q for q in listed}
    # the figures an operator acts on come from the broker itself (the management API's lag by seconds)
    judged = [n for n in by_name if rules.queue_kind(prefix, n) in (rules.WORK, rules.DEAD_LETTER)]
    error = ""
    try:
        expected = _registry_queues(amqp_url, prefix) if stream_name(prefix) in by_name else set()
        exact = queue_counts(amqp_url, judged, timeout=10)
    except Exception as exc:  # the management API answered, AMQP did not: its (lagging) figures still tell much
        expected, exact = set(), {}
        error = f"AMQP at {_safe_url(amqp_url)}: {type(exc).__name__}: {exc} (figures from the management API alone)"
    queues = []
    for name in sorted(set(by_name) | expected):
        item = by_name.get(name)
        kind = rules.queue_kind(prefix, name)
        if item is None:
            queues.append(rules.QueueFacts(name, kind, present=False, in_registry=True))
            continue
        ready, consumers = exact.get(name) or (item.get("messages_ready") or 0, item.get("consumers") or 0)
        queues.append(rules.QueueFacts(
            name, kind, ready=ready, unacked=item.get("messages_unacknowledged") or 0, consumers=consumers,
            publish_rate=_rate(item, "publish_details"), deliver_rate=_rate(item, "deliver_get_details"),
            ack_rate=_rate(item, "ack_details"), in_registry=name in expected))
    return queues, error, unroutable


def gather(settings, urls: dict[str, str], management: str | None = None) -> rules.Facts:
    http = requests.Session()
    with ThreadPoolExecutor(max_workers=16) as pool:
        health = pool.map(lambda item: instance_facts(http, *item), sorted(urls.items()))
        broker = pool.submit(broker_facts, settings.amqp_url, settings.bus_prefix, management)
        warnings = pool.submit(open_warnings, http, urls)
        instances = list(health)
        queues, broker_error, unroutable = broker.result()
        found = warnings.result()
    return rules.Facts(settings.bus_prefix, instances, queues, found, outbox_max_age=settings.outbox_max_age,
                       broker_error=broker_error, broker_unroutable=unroutable)


# --- showing -------------------------------------------------------------------------------------------

def _n(value) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def _short(prefix: str, name: str) -> str:
    """A queue's name without the bus prefix (the table's title names it once)."""
    return name[len(prefix) + 1:] if name.startswith(prefix + ".") else name


def render(report: rules.Report, show_all: bool = False, stream=None) -> None:
    """Readable tables; a line that needs a person is marked `!` and says what to look at."""
    from rich.console import Console
    from rich.table import Table

    stream = stream or sys.stdout
    console = Console(file=stream, width=None if stream.isatty() else 160, highlight=False)

    def mark(line: rules.Line) -> str:
        return "[bold red]![/]" if line.needs_person else ""

    def style(line: rules.Line) -> str | None:
        return "red" if line.needs_person else None

    table = Table(title=f"instances (bus {report.prefix})", title_justify="left")
    for col in ("", "instance", "state", "outbox", "oldest unsent s", "unroutable", "needs a person"):
        table.add_column(col)
    for line in report.section("instances"):
        f = line.figures
        table.add_row(mark(line), line.subject, line.state, _n(f.get("backlog")), _n(f.get("oldest_unsent_seconds")),
                      _n(f.get("unroutable")), line.attention or line.detail, style=style(line))
    console.print(table)

    queues = report.section("queues")
    shown = [q for q in queues if show_all or q.needs_person or q.figures.get("consumers")
             or q.figures.get("ready") or q.figures.get("unacked")]
    if not queues:
        console.print(f"queues: none of bus {report.prefix} found")
    table = Table(title=f"queues ({report.prefix}.…)", title_justify="left")
    for col in ("", "queue", "state", "ready", "unacked", "consumers", "in/s", "out/s", "ack/s", "needs a person"):
        table.add_column(col)
    for line in shown:
        f = line.figures
        table.add_row(mark(line), _short(report.prefix, line.subject), line.state, _n(f.get("ready")),
                      _n(f.get("unacked")), _n(f.get("consumers")), _n(f.get("publish_rate")),
                      _n(f.get("deliver_rate")), _n(f.get("ack_rate")), line.attention, style=style(line))
    if shown:
        console.print(table)
    if len(shown) < len(queues):
        console.print(f"  … and {len(queues) - len(shown)} empty queue(s) without consumers (no instance of theirs "
                      "runs here); --all lists them")

    letters = [d for d in report.section("dead_letters") if d.needs_person]
    if letters:
        table = Table(title=f"dead letters ({report.prefix}.…)", title_justify="left")
        for col in ("", "queue", "messages", "needs a person"):
            table.add_column(col)
        for line in letters:
            table.add_row(mark(line), _short(report.prefix, line.subject), line.detail, line.attention,
                          style=style(line))
        console.print(table)
    else:
        console.print(f"dead letters: none in {len(report.section('dead_letters'))} dead-letter queue(s)")

    warnings = report.section("warnings")
    if warnings:
        table = Table(title="open deadline warnings (督办)", title_justify="left")
        for col in ("", "office (department@town)", "colour", "open", "needs a person"):
            table.add_column(col)
        for line in warnings:
            table.add_row(mark(line), line.subject, line.state, line.detail, line.attention, style=style(line))
        console.print(table)
    else:
        console.print("open deadline warnings: none")
    for line in report.section("broker"):
        if line.needs_person:
            console.print(f"[bold red]![/] {line.attention}", style="red")
        else:
            console.print(f"broker, {line.subject}: {line.detail}")

    attention = [line for line in report.lines if line.needs_person]
    if attention:
        console.print(f"[bold red]needs a person:[/] {len(attention)} line(s) marked !")
    else:
        console.print("all well: nothing needs a person")


def cmd_status(args) -> int:
    from shared.config import Settings

    settings = Settings.from_env("tongban", instance="tongban",
                                 **({"data_dir": Path(args.data_dir)} if args.data_dir else {}))
    try:
        urls, _source = instance_urls(args.instances, settings.data_dir)
    except StatusError as exc:
        print(f"tongban status: {exc}", file=sys.stderr)
        return 2
    report = rules.assess(gather(settings, urls, os.environ.get("TONGBAN_MANAGEMENT_URL")))
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        render(report, show_all=args.all)
    return 1 if report.needs_person else 0


def register(sub) -> None:
    status = sub.add_parser("status", help="a running deployment: instances, queues, dead letters, outboxes, "
                                           "warnings; exit 1 when something needs a person")
    status.add_argument("--instances", help='JSON {"instance": "URL", …} or a file with it (default: '
                                            "$TONGBAN_PORTAL_UPSTREAMS, else the data folder's instances.json "
                                            "that `tongban up` writes)")
    status.add_argument("--data-dir", help="where `tongban up` keeps its data (default $TONGBAN_DATA_DIR or ./var)")
    status.add_argument("--all", action="store_true", help="list every queue, the empty ones without consumers too")
    status.add_argument("--json", action="store_true", help="print the report as one JSON object")
    status.set_defaults(func=cmd_status)
