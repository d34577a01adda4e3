"""Running service instances on this host: one nameko ServiceRunner per instance, in one process."""
from __future__ import annotations

import importlib
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

from nameko.runners import ServiceRunner

from shared.config import Settings
from shared.registry import deployment_instances

SERVICES = ("intake", "approval", "agent", "notify", "evaluation", "portal")

# the host layout of `tongban up`: two towns' windows, two departments, one of each other service
DEFAULT_TOWNS = ("320583101", "320583102")
DEFAULT_DEPARTMENTS = ("minzheng", "renshe")


def service_class(settings: Settings, **kwargs):
    if settings.service not in SERVICES:
        raise ValueError(f"unknown service {settings.service!r}; one of {', '.join(SERVICES)}")
    module = importlib.import_module(f"services.{settings.service}.service")
    return module.build_service(settings, **kwargs)


def free_port_block(n: int, start: int = 18100) -> int:
    """The first of `n` consecutive ports free on 127.0.0.1 (the demo and the tests run beside `up`)."""
    for first in range(start, 60000, 50):
        ok = True
        for port in range(first, first + n):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return first
    raise RuntimeError("no free block of ports on 127.0.0.1")


def host_layout(base: Settings, towns=DEFAULT_TOWNS, departments=DEFAULT_DEPARTMENTS,
                first_port: int = 8101) -> list[Settings]:
    """Every instance `tongban up` runs, each with its own port and database; the portal first.

    The token keys: the portal alone gets the signing key (`base.token_private_key`, or the data folder's
    development key in development mode); every instance the public key set; notify an API token of its
    own (role service) to fetch notices' PDFs with."""
    from shared import tokens

    key = tokens.SigningKey.from_pem(base.token_private_key) if base.token_private_key else \
        base.with_(service="cli").signing_key()
    public = base.token_public_keys or (tokens.jwks_text(key) if key else "")
    base = base.with_(token_public_keys=public, token_private_key="")
    layout = [base.with_(service=spec.service, instance=spec.instance, http_port=first_port + i,
                         **{k: v for k, v in (("town", spec.town), ("department", spec.department)) if v})
              for i, spec in enumerate(deployment_instances(towns, departments))]
    layout[0] = layout[0].with_(token_private_key=key.to_pem() if key else "")  # the portal
    # notify fetches a notice's PDF (for the e-mail) from the centre that issued it
    urls = {s.town: s.base_url for s in layout if s.service == "intake"}
    notify_token = tokens.issue(key, "notify", "service", "city", ttl_seconds=365 * 86400) if key else None
    # the portal calls every other instance's API on the signed-in person's behalf
    upstreams = {s.instance: s.base_url for s in layout if s.service != "portal"}

    def extra(s: Settings) -> Settings:
        if s.service == "intake":  # the QR code on a notice leads to the portal's progress page
            return s.with_(extra={"portal_url": layout[0].base_url, **s.extra})
        if s.service == "notify":
            return s.with_(extra={"intake_urls": urls, **({"notify_token": notify_token} if notify_token else {}),
                                  **s.extra})
        if s.service == "portal":
            return s.with_(extra={"upstreams": upstreams, **s.extra})
        return s

    return [extra(s) for s in layout]


@dataclass
class Running:
    settings: Settings
    runner: ServiceRunner
    service_cls: type

    @property
    def url(self) -> str:
        return self.settings.base_url


def nameko_config(settings: Settings) -> dict:
    return {"AMQP_URI": settings.service_amqp_url, "WEB_SERVER_ADDRESS": settings.web_address,
            "serializer": "json", "max_workers": 10, "PARENT_CALLS_TRACKED": 10}


def start_instance(settings: Settings, service_cls=None, **kwargs) -> Running:
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    cls = service_cls or service_class(settings, **kwargs)
    runner = ServiceRunner(nameko_config(settings))
    runner.add_service(cls)
    runner.start()
    return Running(settings, runner, cls)


def _start_or_error(settings: Settings, kwargs: dict):
    try:
        return start_instance(settings, **kwargs)
    except Exception as exc:  # reported by Cluster.start_all once the others have started
        return exc


class Cluster:
    """Instances started together and stopped together (in reverse order)."""

    def __init__(self):
        self.running: list[Running] = []

    def start(self, settings: Settings, **kwargs) -> Running:
        r = start_instance(settings, **kwargs)
        self.running.append(r)
        return r

    def start_all(self, settings_list, concurrency: int = 8, **kwargs) -> list[Running]:
        """Start several instances at once (most of a start is waiting on the broker and the database);
        every one that started is in `running`, in the given order, even when another failed, whose
        error is then raised."""
        import eventlet

        pool = eventlet.GreenPool(concurrency)
        threads = [pool.spawn(_start_or_error, settings, kwargs) for settings in settings_list]
        outcomes = [t.wait() for t in threads]
        started = [o for o in outcomes if isinstance(o, Running)]
        self.running.extend(started)
        for o in outcomes:
            if isinstance(o, BaseException):
                raise o
        return started

    def platform(self, instance: str):
        """The running instance's Platform (its store, its metrics): for tests and tools in this process."""
        from shared.platform import Platform

        (container,) = self.by_instance(instance).runner.containers
        return next(d for d in container.dependencies if isinstance(d, Platform))

    def by_instance(self, instance: str) -> Running:
        return next(r for r in self.running if r.settings.instance == instance)

    def stop(self) -> None:
        """Stop every instance at once (each waits for its running workers to finish)."""
        import eventlet

        pool = eventlet.GreenPool()
        for r in reversed(self.running):
            pool.spawn(r.runner.stop)
        pool.waitall()
        self.running.clear()

    def kill(self) -> None:
        while self.running:
            self.running.pop().runner.kill()


def wait_for_stop_signal() -> None:
    """Until Ctrl-C (SIGINT) or SIGTERM. The handlers only note the signal: an exception raised from a
    signal handler lands in whichever green thread runs then (a consumer, the relay), not in this wait,
    and a stop would end half done. A second signal while stopping is noted, not obeyed."""
    import signal

    import eventlet

    asked: list[int] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda number, _frame: asked.append(number))
    while not asked:
        eventlet.sleep(0.2)


def queues_of(settings: Settings) -> list[str]:
    """The work queues an instance consumes from (without building its database)."""
    cls = service_class(settings)
    names = []
    for attr in vars(cls).values():
        for ext in getattr(attr, "nameko_entrypoints", ()):
            queue = getattr(ext, "queue", None)
            if queue is not None:
                names.append(queue.name)
    return names


def remove_bus(amqp_url: str, prefix: str, layout: list[Settings]) -> None:
    """Delete a throw-away deployment's queues, dead-letter and retry queues and exchanges (demo, tests)."""
    from kombu import Connection

    from shared import busauth, registry
    from shared.bus import Topology
    from shared.reference import StreamClient, stream_name

    names = set()
    topologies = {}
    catalogs = StreamClient(amqp_url, prefix).catalogs()
    kinds = {"probe"} | {s.service for s in layout}
    for settings in layout:
        topology = Topology.of(settings.with_(bus_prefix=prefix))
        topologies[topology.retry_delays] = topology
        towns, departments = registry.catalogue_scope(catalogs)
        names |= {spec.name(prefix) for spec in registry.deployment_queues(
            towns + ([settings.town] if settings.town else []),
            departments + ([settings.department] if settings.department else []))}
        names |= set(queues_of(settings))
    registry.forget_declarations(prefix)
    with Connection(amqp_url) as conn:
        channel = conn.default_channel
        for name in sorted(names):
            channel.queue_delete(name)
            channel.queue_delete(name + ".dlq")
        for topology in topologies.values():
            for kind in sorted(kinds | set(busauth.KINDS)):
                for seconds in topology.retry_delays:
                    channel.queue_delete(topology.retry_queue(kind, seconds).name)
        channel.queue_delete(Topology(prefix).redelivered_queue.name)
        channel.queue_delete(stream_name(prefix))
        for exchange in Topology(prefix).exchanges:
            channel.exchange_delete(exchange.name)
    busauth.remove_policy(amqp_url, prefix)


class PostgresDatabases:
    """One fresh PostgreSQL database per service instance, dropped afterwards (tests, benchmarks)."""

    def __init__(self, admin_url: str, label: str = "tbtest"):
        self.admin_url = admin_url
        self.label = label
        self.created: list[str] = []

    def _admin(self):
        import psycopg2

        conn = psycopg2.connect(self.admin_url)
        conn.autocommit = True
        return conn

    def new(self, name: str) -> str:
        db = f"{self.label}_{uuid.uuid4().hex[:8]}_{name.replace('-', '_')}"[:63]
        conn = self._admin()
        try:
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{db}"')
        finally:
            conn.close()
        self.created.append(db)
        base = self.admin_url.rsplit("/", 1)[0]
        return f"{base}/{db}"

    def drop_all(self):
        conn = self._admin()
        try:
            with conn.cursor() as cur:
                for db in self.created:
                    cur.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        finally:
            conn.close()
        self.created.clear()
