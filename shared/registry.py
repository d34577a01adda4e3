"""The one list of the queues a deployment has: every service's subscriptions, and a work queue for
every department of the active catalogue.

Every service declares the whole registry when it starts (and `tongban bus declare` does it for an
operator), so a message published before its consumer ever ran waits in its queue instead of being
routed nowhere. A queue is named after the logical instance that consumes it
(`<prefix>.<instance>.<purpose>`); replicas of one instance share it as competing consumers.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from shared.contracts import (
    rk_accepted,
    rk_completed,
    rk_deadline_moved,
    rk_decided,
    rk_department_action,
    rk_escalated,
    rk_escalation_decided,
    rk_escalation_relayed,
    rk_escalation_returned,
    rk_notice_fallback,
    rk_notice_issued,
    rk_routed,
    rk_station_refused,
    rk_station_submitted,
    rk_step_refused,
    rk_transfer,
    rk_updated,
)

SINGLETONS = ("agent", "notify", "evaluation")


@dataclass(frozen=True)
class Subscription:
    """What one service consumes: a queue per instance, bound to these routing keys on one exchange."""

    service: str
    purpose: str
    keys: Callable[[str | None], list[str]]  # given the instance's town or department
    exchange: str = "events"  # "events" (facts everyone may hear) or "work" (a department's work)


SUBSCRIPTIONS: tuple[Subscription, ...] = (
    # one queue for both, so a department's requests and its decision arrive in the order sent; the town
    # agent's hops of an escalated case (relayed, the city's decision returned) belong to the same order
    Subscription("intake", "decisions", lambda town: [rk_decided("*", town), rk_department_action("*", town),
                                                      rk_escalation_relayed(town), rk_escalation_returned(town)]),
    # cases that arrive from elsewhere: the town's village stations relay submissions (报送), each of which
    # becomes a case here, and 全城通办 cases other centres accepted that this town's department offices
    # handle. One queue for both: every queue is a quorum queue and a dead-letter queue in every town
    Subscription("intake", "arrivals", lambda town: [rk_station_submitted(town), rk_transfer(town)]),
    Subscription("approval", "work", lambda dept: [rk_routed(dept, "*")], exchange="work"),
    Subscription("approval", "closures", lambda _dept: [rk_completed("*")]),
    # the ledger refused a step the department asked for (case.decided in reverse)
    Subscription("approval", "refusals", lambda dept: [rk_step_refused(dept, "*")]),
    # the ledger moved the deadline of the department's open work (pause, resume, extension, recount …).
    # Its own queue, not a key added to "refusals": renaming that queue would strand what waits in the old
    # one during a rolling upgrade, and these messages need no order with refusals (case versions order them)
    Subscription("approval", "deadlines", lambda dept: [rk_deadline_moved(dept, "*")]),
    # the stations follow their villagers' cases (accepted, each step, completed) and hear a refused relay
    Subscription("agent", "results", lambda _: [rk_accepted("*"), rk_completed("*"), rk_updated("*"),
                                                rk_station_refused("*")]),
    # the town agents: escalated work to relay, and the city departments' decisions to bring back
    Subscription("agent", "escalations", lambda _: [rk_escalated("*"), rk_escalation_decided("*", "*")]),
    # notify: the cases it may send for, their notices, the EMS waybills of completed cases, and its own
    # fallbacks (a channel that failed for good: the next one, with retries of its own)
    Subscription("notify", "notices", lambda _: [rk_accepted("*"), rk_updated("*"), rk_notice_issued("*"),
                                                 rk_completed("*"), rk_notice_fallback("*")]),
    # every case event and notice; and supervision's own warnings (督办), which go on the case's timeline (and
    # so are routable before any other service consumes them)
    Subscription("evaluation", "events", lambda _: ["case.#", "notice.#", "supervision.#"]),
)


@dataclass(frozen=True)
class QueueSpec:
    """One consuming queue of the deployment (its dead-letter queue goes with it)."""

    instance: str
    purpose: str
    routing_keys: tuple[str, ...]
    exchange: str  # "events" or "work"

    def name(self, prefix: str) -> str:
        return f"{prefix}.{self.instance}.{self.purpose}"


def subscription(service: str, purpose: str) -> Subscription:
    for s in SUBSCRIPTIONS:
        if s.service == service and s.purpose == purpose:
            return s
    raise KeyError(f"no subscription {service}/{purpose} in the registry")


def instance_name(service: str, town: str | None = None, department: str | None = None) -> str:
    """The logical instance a queue belongs to: intake-<town>, approval-<department>, or the service."""
    if service == "intake":
        return f"intake-{town}"
    if service == "approval":
        return f"approval-{department}"
    return service


def queue_spec(sub: Subscription, town: str | None = None, department: str | None = None) -> QueueSpec:
    scope = town if sub.service == "intake" else department
    return QueueSpec(instance_name(sub.service, town, department), sub.purpose, tuple(sub.keys(scope)),
                     sub.exchange)


def deployment_queues(towns: Iterable[str], departments: Iterable[str]) -> list[QueueSpec]:
    """Every consuming queue of a deployment serving these towns and departments."""
    towns, departments = sorted(set(towns)), sorted(set(departments))
    specs = []
    for sub in SUBSCRIPTIONS:
        if sub.service == "intake":
            specs += [queue_spec(sub, town=t) for t in towns]
        elif sub.service == "approval":
            specs += [queue_spec(sub, department=d) for d in departments]
        else:
            specs.append(queue_spec(sub))
    return specs


def catalogue_scope(catalogs) -> tuple[list[str], list[str]]:
    """The towns and departments of the active catalogue (what the registry must cover); none while the
    deployment has no catalogue (`catalogs`: a `shared.reference.Catalogs`)."""
    if not catalogs.ready:
        return [], []
    return scope_of(catalogs.active())


def scope_of(catalog) -> tuple[list[str], list[str]]:
    """The towns and departments a catalogue (`shared.catalog.Catalog`) gives a deployment."""
    return sorted(catalog.towns), sorted(catalog.departments)


@dataclass(frozen=True)
class InstanceSpec:
    """One logical service instance of a deployment (replicas of it share its queues and its database)."""

    service: str
    instance: str
    town: str | None = None
    department: str | None = None


def deployment_instances(towns: Iterable[str], departments: Iterable[str]) -> list[InstanceSpec]:
    """Every instance of a deployment serving these towns and departments, the portal first: a window per
    town, an approval service per department, one of each other service. `tongban up`'s host layout and
    the generated manifests (`tongban deploy`) both come from this list."""
    specs = [InstanceSpec("portal", "portal")]
    specs += [InstanceSpec("intake", instance_name("intake", town=t), town=t) for t in towns]
    specs += [InstanceSpec("approval", instance_name("approval", department=d), department=d) for d in departments]
    specs += [InstanceSpec(s, s) for s in SINGLETONS]
    return specs


def deployment_kombu_queues(topology, towns: Iterable[str], departments: Iterable[str]) -> list:
    return [topology.queue_for(spec) for spec in deployment_queues(towns, departments)]


# what this process has declared already, per broker URL (so per broker user: each service kind declares
# with its own permissions) and bus prefix: every instance of `tongban up` (one process) would otherwise
# declare the same few hundred queues again at its start
_DECLARED: dict[tuple[str, str], set[str]] = {}
_DECLARED_LOCK = threading.Lock()


def declare_deployment(amqp_url: str, topology, towns: Iterable[str], departments: Iterable[str],
                       extra: Iterable = (), retry_kinds: Iterable[str] = ()) -> list[str]:
    """Declare every exchange and queue of the registry (and `extra` kombu queues), with the retry
    queues of `retry_kinds`; returns the names of the consuming queues.

    Queues this process declared before (with their dead-letter and retry queues) are not declared
    again: a declaration is idempotent and a queue is durable, so it would only cost the broker time."""
    from kombu import Connection

    queues = deployment_kombu_queues(topology, towns, departments)
    known = {q.name for q in queues}
    queues += [q for q in extra if q.name not in known]
    retry_kinds = list(retry_kinds)
    key = (amqp_url, topology.prefix)
    with _DECLARED_LOCK:  # never held across I/O: two instances declaring at once both declare, harmlessly
        done = set(_DECLARED.get(key, ()))
    todo = [q for q in queues if q.name not in done]
    kinds = [k for k in retry_kinds if f"retry:{k}" not in done]
    if todo or kinds:
        with Connection(amqp_url) as conn:
            topology.declare(conn, todo, retry_kinds=kinds)
        with _DECLARED_LOCK:
            _DECLARED.setdefault(key, set()).update([q.name for q in todo] + [f"retry:{k}" for k in kinds])
    return [q.name for q in queues]


def forget_declarations(prefix: str) -> None:
    """After this process removed a deployment's queues: a later start must declare them again."""
    with _DECLARED_LOCK:
        for key in [k for k in _DECLARED if k[1] == prefix]:
            del _DECLARED[key]
