"""`tongban bus declare|users`: the operator's side of the bus (with the broker's admin account).

    tongban bus declare      every exchange and queue of the registry, the retry queues, and the policy
                             that gives consuming queues their delivery limit and dead-letter exchange
    tongban bus users        one user per service kind, with RabbitMQ permissions (shared.busauth)

Both are idempotent; `tongban up`, `tongban demo` and the tests run them before the services start.
"""
from __future__ import annotations

import os
import sys

from shared import busauth, registry
from shared.bus import Topology
from shared.config import Settings


def declare(settings: Settings, management: str | None = None) -> dict:
    """Declare the whole registry (as the admin the AMQP URL names) and set the consumers' policy."""
    towns, departments = registry.catalogue_scope(settings.data_dir)
    topology = Topology.of(settings)
    names = registry.declare_deployment(settings.amqp_url, topology, towns, departments,
                                        retry_kinds=busauth.KINDS)
    policy = busauth.apply_policy(settings.amqp_url, topology, management)
    return {"queues": names, "towns": towns, "departments": departments, "policy": policy,
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
    settings = Settings.from_env("tongban", instance="tongban",
                                 **({"data_dir": args.data_dir} if args.data_dir else {}))
    management = os.environ.get("TONGBAN_MANAGEMENT_URL")
    try:
        if args.action == "declare":
            report = declare(settings, management)
            print(f"declared {len(report['queues'])} queues for {len(report['towns'])} towns and "
                  f"{len(report['departments'])} departments on bus '{settings.bus_prefix}' (each with its .dlq), "
                  f"retry queues of {', '.join(f'{d:g}s' for d in report['retry_delays'])} for every service kind, "
                  f"policy {report['policy']}")
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
    bus.add_argument("--data-dir", help="where the catalogue is kept (default $TONGBAN_DATA_DIR or ./var)")
    bus.set_defaults(func=cmd_bus)
