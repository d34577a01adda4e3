"""`tongban status`, the rules: which of the facts gathered from a running deployment need a person.

Plain Python over plain data (no broker, no HTTP): `tongban/status_cmd.py` gathers the facts, `assess`
turns them into lines, each marked when someone must act, and says whether anything needs a person.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

# what a queue is, told by its name (shared.bus.Topology names them; shared.registry says which consume)
WORK, DEAD_LETTER, RETRY, STREAM, OTHER = "work", "dead_letter", "retry", "stream", "other"
# deadline warnings (督办): red is overdue, someone must act; yellow is shown
RED, YELLOW = "red", "yellow"


@dataclass(frozen=True)
class InstanceFacts:
    """One instance's /health answer; `http_status` None when it did not answer (`error` says why)."""

    name: str
    url: str
    http_status: int | None = None
    checks: dict = field(default_factory=dict)  # each check: "ok" or what failed ("error: …")
    outbox: dict = field(default_factory=dict)  # backlog, oldest_unsent_seconds, unroutable, relay
    error: str = ""


@dataclass(frozen=True)
class QueueFacts:
    """One queue of the deployment as the broker sees it; `present` False for a registry queue it lacks."""

    name: str
    kind: str  # WORK | DEAD_LETTER | RETRY | STREAM | OTHER
    ready: int = 0
    unacked: int = 0
    consumers: int = 0
    publish_rate: float | None = None  # messages a second in, delivered, acked (management API, ~5 s means)
    deliver_rate: float | None = None
    ack_rate: float | None = None
    present: bool = True
    in_registry: bool = False  # a consuming queue the registry names (every service declares it)


@dataclass(frozen=True)
class WarningFacts:
    """Open deadline warnings of one colour for one office (evaluation's tongban_open_warnings)."""

    colour: str
    town: str
    department: str
    count: int


@dataclass(frozen=True)
class Facts:
    prefix: str
    instances: list[InstanceFacts]
    queues: list[QueueFacts]
    warnings: list[WarningFacts] | None  # None: no evaluation instance answered, nothing known
    outbox_max_age: float = 60.0  # seconds: the services' TONGBAN_OUTBOX_MAX_AGE
    broker_error: str = ""  # the management API did not answer: the queues are unknown
    # broker-wide (every deployment on the virtual host): messages returned or dropped as unroutable
    broker_unroutable: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Line:
    """One line of the report; `attention` says what a person must look at (empty: nothing)."""

    section: str  # instances | queues | dead_letters | warnings | broker
    subject: str
    state: str
    detail: str = ""
    attention: str = ""
    figures: dict = field(default_factory=dict)

    @property
    def needs_person(self) -> bool:
        return bool(self.attention)


@dataclass(frozen=True)
class Report:
    prefix: str
    lines: list[Line]

    @property
    def needs_person(self) -> bool:
        return any(line.needs_person for line in self.lines)

    def section(self, name: str) -> list[Line]:
        return [line for line in self.lines if line.section == name]

    def as_dict(self) -> dict:
        return {"bus_prefix": self.prefix, "needs_person": self.needs_person,
                "attention": [f"{line.subject}: {line.attention}" for line in self.lines if line.needs_person],
                "lines": [{**asdict(line), "needs_person": line.needs_person} for line in self.lines]}


def queue_kind(prefix: str, name: str) -> str:
    """What a queue of the deployment is, from the names shared.bus.Topology and shared.reference give."""
    if name.endswith(".dlq"):
        return DEAD_LETTER
    rest = name[len(prefix) + 1:] if name.startswith(prefix + ".") else name
    if rest.startswith("retry-"):
        return RETRY
    if rest == "reference":
        return STREAM
    return WORK if rest.count(".") == 1 else OTHER


def instance_line(facts: InstanceFacts, outbox_max_age: float) -> Line:
    outbox = facts.outbox or {}
    figures = {"backlog": outbox.get("backlog"), "oldest_unsent_seconds": outbox.get("oldest_unsent_seconds"),
               "unroutable": outbox.get("unroutable"), "url": facts.url}
    if facts.http_status is None:
        return Line("instances", facts.name, "down", facts.error, "does not answer /health", figures)
    failing = sorted(k for k, v in facts.checks.items() if v != "ok")
    problems = []
    age = outbox.get("oldest_unsent_seconds") or 0
    if age > outbox_max_age:
        problems.append(f"outbox not draining: the oldest unsent message waits {age:.0f} s "
                        f"(more than {outbox_max_age:g} s)")
    if outbox.get("unroutable"):
        problems.append(f"{outbox['unroutable']} unroutable message(s) in its outbox: no queue takes their "
                        "routing key (tongban bus declare?)")
    if failing:
        problems.append("failing checks: " + "; ".join(f"{k} ({facts.checks[k]})" for k in failing))
    elif facts.http_status != 200:
        problems.append(f"/health answered HTTP {facts.http_status}")
    state = "ok" if not problems else "degraded"
    return Line("instances", facts.name, state, "", "; ".join(problems), figures)


def queue_line(q: QueueFacts) -> Line:
    figures = {"ready": q.ready, "unacked": q.unacked, "consumers": q.consumers, "publish_rate": q.publish_rate,
               "deliver_rate": q.deliver_rate, "ack_rate": q.ack_rate}
    if q.kind == DEAD_LETTER:
        waiting = q.ready + q.unacked
        if waiting:
            return Line("dead_letters", q.name, "dead letters", f"{waiting} message(s)",
                        f"{waiting} dead letter(s): see `tongban dlq list {q.name}`, then replay or purge", figures)
        return Line("dead_letters", q.name, "empty", "", "", figures)
    if not q.present:
        return Line("queues", q.name, "missing", "", "the registry's queue is not on the broker: "
                    "run `tongban bus declare`", figures)
    if q.kind == WORK and q.ready and not q.consumers:
        return Line("queues", q.name, "no consumer", "",
                    f"{q.ready} message(s) waiting and no consumer: its instance is stopped or stuck", figures)
    if q.kind == STREAM:  # records are kept, never consumed away: their count is no backlog
        return Line("queues", q.name, "stream", f"{q.ready} record(s)", "", figures)
    state = "idle" if not (q.ready or q.unacked) else ("waiting to retry" if q.kind == RETRY else "busy")
    return Line("queues", q.name, state, "", "", figures)


def warning_lines(warnings: list[WarningFacts] | None) -> list[Line]:
    """One line per colour and office with open warnings; red (overdue) needs a person."""
    if warnings is None:
        return [Line("warnings", "evaluation", "unknown", "no evaluation instance answered /metrics",
                     "open deadline warnings unknown: evaluation does not answer")]
    lines = []
    for w in sorted(warnings, key=lambda w: (w.colour != RED, w.town, w.department)):
        if w.count <= 0:
            continue
        office = f"{w.department or '-'}@{w.town or '-'}"
        attention = f"{w.count} case(s) past their deadline (red 督办)" if w.colour == RED else ""
        lines.append(Line("warnings", office, w.colour, f"{w.count} open", attention, {"count": w.count}))
    return lines


def broker_lines(facts: Facts) -> list[Line]:
    lines = []
    if facts.broker_error:
        known = "the queues' figures may lag" if facts.queues else "queues and dead letters unknown"
        lines.append(Line("broker", "broker", "down", facts.broker_error,
                          f"the broker does not answer ({facts.broker_error}): {known}"))
    unroutable = facts.broker_unroutable or {}
    if not unroutable:
        return lines
    # broker-wide figures (every deployment on the virtual host), shown for context: this deployment's own
    # unroutable messages wait in its instances' outboxes, which the instance lines judge
    detail = ", ".join(f"{what} {unroutable.get(f'{key}_total', 0)} ({unroutable.get(f'{key}_per_second') or 0:g}/s)"
                       for what, key in (("returned", "return_unroutable"), ("dropped", "drop_unroutable")))
    return lines + [Line("broker", "unroutable (virtual host)", "info", detail, "", dict(unroutable))]


def assess(facts: Facts) -> Report:
    lines = [instance_line(i, facts.outbox_max_age) for i in sorted(facts.instances, key=lambda i: i.name)]
    lines += broker_lines(facts)
    order = {WORK: 0, OTHER: 1, STREAM: 2, RETRY: 3, DEAD_LETTER: 4}
    for q in sorted(facts.queues, key=lambda q: (order.get(q.kind, 9), q.name)):
        lines.append(queue_line(q))
    lines += warning_lines(facts.warnings)
    return Report(facts.prefix, lines)
