"""`tongban bus declare|users`: the operator's side of the bus (with the broker's admin account).

    tongban bus declare      the reference stream (publishing the shipped sample catalogue while it holds
                             none), every exchange and queue of the registry (for the active catalogue's
                             towns and departments), the retry queues, and the policy that gives
                             consuming queues their delivery limit and dead-letter exchange
    tongban bus users        one user per service kind, with RabbitMQ permissions (shared.busauth)

Both are idempotent; `tongban up`, `tongban demo` and the tests run them before the services start.
"""
from __future__ import annotations

import os
import sys

from shared import busauth, registry
from shared.bus import Topology
from shared.catalog import SAMPLE_CATALOG
from shared.config import Settings
from shared.reference import CATALOG, Book, Catalogs, Record, StreamClient, make_record


def seed_sample(settings: Settings, book: Book | None = None) -> Record | None:
    """Publish the shipped sample catalogue to the reference stream if it holds no catalogue yet (the
    returned record, added to `book` when given), else nothing: a deployment never serves the sample
    unless nobody loaded one."""
    stream = _stream(settings)
    book = book if book is not None else stream.book()
    if Catalogs(book).ready:
        return None
    record = make_record(CATALOG, SAMPLE_CATALOG.read_text(encoding="utf-8"), "tongban bus declare")
    if book.check(record):
        stream.publish(record)
        book.add(record)
    return record


def _stream(settings: Settings) -> StreamClient:
    return StreamClient(settings.amqp_url, settings.bus_prefix,
                        idle=float(settings.extra.get("reference_idle", StreamClient.IDLE)))


def declare(settings: Settings, management: str | None = None) -> dict:
    """Declare the reference stream (with the sample catalogue while it has none) and the whole registry
    (as the admin the AMQP URL names), and set the consumers' policy."""
    book = _stream(settings).book()  # read once: the sample (if needed) is added to it
    sample = seed_sample(settings, book)
    catalogs = Catalogs(book)
    towns, departments = registry.catalogue_scope(catalogs)
    topology = Topology.of(settings)
    names = registry.declare_deployment(settings.amqp_url, topology, towns, departments,
                                        retry_kinds=busauth.KINDS)
    from kombu import Connection

    from shared.reference import bind_staff_records

    with Connection(settings.amqp_url, connect_timeout=10) as conn:
        bind_staff_records(conn, settings.bus_prefix)
    policy = busauth.apply_policy(settings.amqp_url, topology, management)
    return {"queues": names, "towns": towns, "departments": departments, "policy": policy,
            "catalog": catalogs.active_version(), "sample_published": sample is not None,
            "retry_delays": list(topology.retry_delays)}


def users(settings: Settings, management: str | None = None) -> list[str]:
    """Create or update the service kinds' users; passwords from the settings (secret or per kind)."""
    if not settings.bus_users:
        raise busauth.BusAuthError("TONGBAN_BUS_USERS is off: the services connect with TONGBAN_AMQP_URL as given")
    return busauth.ensure_users(settings.amqp_url, settings.bus_prefix, settings.bus_users,
                                {kind: settings.bus_password(kind) for kind in busauth.KINDS}, management)


def prepare(settings: Settings) -> None:
    """What a host needs before its services start: users (unless turned off), queues, policy."""
    if settings.bus_users:
        users(settings)
    declare(settings)


def cmd_bus(args) -> int:
    settings = Settings.from_env("tongban", instance="tongban")
    management = os.environ.get("TONGBAN_MANAGEMENT_URL")
    try:
        if args.action == "declare":
            report = declare(settings, management)
            print(f"declared {len(report['queues'])} queues for {len(report['towns'])} towns and "
                  f"{len(report['departments'])} departments on bus '{settings.bus_prefix}' (each with its .dlq), "
                  f"retry queues of {', '.join(f'{d:g}s' for d in report['retry_delays'])} for every service kind, "
                  f"policy {report['policy']}; catalogue {report['catalog']} active"
                  + (" (the shipped sample, published now: the stream held no catalogue)"
                     if report["sample_published"] else ""))
        else:
            names = users(settings, management)
            source = "given per kind" if settings.bus_passwords else (
                "derived from TONGBAN_BUS_SECRET" if os.environ.get("TONGBAN_BUS_SECRET")
                else "derived from the development secret: set TONGBAN_BUS_SECRET in any real deployment")
            print(f"users {', '.join(names)} ready on bus '{settings.bus_prefix}' (passwords {source})")
    except busauth.BusAuthError as exc:
        print(f"tongban bus: {exc}", file=sys.stderr)
        return 2
    return 0


def register(sub) -> None:
    bus = sub.add_parser("bus", help="the bus: declare the registry's queues, create the services' users")
    bus.add_argument("action", choices=["declare", "users"])
    bus.set_defaults(func=cmd_bus)
