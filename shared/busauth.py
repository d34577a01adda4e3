"""Trusted publishers: one RabbitMQ user per service kind, held by RabbitMQ's own permissions.

Each kind (intake, approval, agent, notify, evaluation) connects as `<user prefix>-<kind>`. RabbitMQ
lets it
- configure every exchange and queue of the deployment (each service declares the whole registry at
  start, so nothing published waits for want of a queue; the price is that a kind could delete a queue
  it does not own: the broker's permissions know no finer "declare but not delete"),
- write (publish) only to the exchanges it uses, and on topic exchanges only the routing keys it owns
  (topic permissions): intake cannot publish a `case.decided.*` decision, approval cannot route work,
- read (consume) only its own queues.

`tongban bus users` creates or updates the users through the management API; passwords are derived
from one secret (TONGBAN_BUS_SECRET) with HMAC, or given per kind (TONGBAN_BUS_PASSWORD_<KIND>).
"""
from __future__ import annotations

import hashlib
import hmac
import re
from urllib.parse import quote

import requests

from shared.deadletters import management_url

# what each kind publishes, by exchange: the contracts' message types (the routing key starts with the type)
PUBLISHES: dict[str, dict[str, tuple[str, ...]]] = {
    "intake": {"events": ("case.accepted", "case.updated", "case.completed", "case.step_refused",
                          "case.deadline_moved", "notice.issued", "case.escalated", "case.transfer",
                          "station.refused"),
               "work": ("case.routed",)},
    "approval": {"events": ("case.decided", "case.department", "escalation.decided")},
    # the village stations relay submissions; the town agents relay escalated work to the city departments
    # (only to a city department's queue: see TOPIC_WRITE) and bring their decisions back
    "agent": {"events": ("station.submitted", "escalation.relayed", "escalation.returned"),
              "work": ("case.routed",)},
    "notify": {"events": ("notice.sent", "notice.fallback")},
    # deadline supervision's warnings (督办)
    "evaluation": {"events": ("supervision.warned",)},
    # the staff directory's token revocations, and catalogues and calendars city IT loads at the portal, routed
    # into the reference stream (shared.reference)
    "portal": {"events": ("staff.revocations", "reference.loaded")},
}
# the logical instances of each kind, as they appear in queue names (shared.registry.instance_name)
INSTANCES = {"intake": r"intake-[0-9]{9}", "approval": r"approval-[a-z][a-z0-9_]*", "agent": "agent",
             "notify": "notify", "evaluation": "evaluation", "portal": "portal"}
KINDS = tuple(PUBLISHES)
# narrower topic permissions than "the types' routing keys" where a kind may publish a type only to some
TOPIC_WRITE: dict[tuple[str, str], str] = {
    ("agent", "work"): r"^case\.routed\.[^.]+\.city$",  # work for a city department, never a town office
}


class BusAuthError(Exception):
    pass


def user_name(user_prefix: str, kind: str) -> str:
    return f"{user_prefix}-{kind}"


def password_for(secret: str, user: str) -> str:
    return hmac.new(secret.encode(), f"amqp-user:{user}".encode(), hashlib.sha256).hexdigest()[:40]


def permissions(kind: str, prefix: str) -> tuple[dict, list[dict]]:
    """The kind's configure/write/read patterns and its topic permissions on the deployment `prefix`."""
    p, inst = re.escape(prefix), INSTANCES[kind]
    publishes = PUBLISHES[kind]
    # requeue: declaring its retry queues (whose dead-letter exchange it is) needs write on it
    written = sorted(publishes) + ["retry", "dlx", "requeue"] + (["reference"] if kind == "portal" else [])
    queues = rf"^{p}\.[^.]+\.[^.]+(\.dlq)?$"  # binding a queue needs write on it; consuming needs read
    regular = {
        "configure": rf"^{p}\.",
        "write": rf"^{p}\.({'|'.join(written)})$|{queues}",
        # its own queues and dead-letter queues, and its own retry queues (declaring a queue with a
        # dead-letter exchange needs read on the queue)
        # and the reference stream (catalogue and calendar records), which every kind may read
        "read": rf"^{p}\.(events|work|dlx|retry|requeue|reference)$|^{p}\.{inst}\.|^{p}\.retry-{kind}\.",
    }
    topic = [{"exchange": f"{prefix}.{ex}",
              "write": TOPIC_WRITE.get((kind, ex)) or "^(" + "|".join(re.escape(t) for t in types) + r")\.",
              "read": ".*"} for ex, types in sorted(publishes.items())]
    # a failed message goes to wait, or to its dead-letter queue, only under its own queue's name
    own = rf"{p}\.{inst}\."
    topic += [{"exchange": f"{prefix}.retry", "write": rf"^{kind}\.[0-9]+\.{own}", "read": ".*"},
              {"exchange": f"{prefix}.requeue", "write": rf"^[^.]+\.[^.]+\.{own}", "read": ".*"},
              {"exchange": f"{prefix}.dlx", "write": rf"^{own}", "read": ".*"}]
    return regular, topic


def ensure_users(admin_amqp_url: str, prefix: str, user_prefix: str, passwords: dict[str, str],
                 management: str | None = None) -> list[str]:
    """Create or update every kind's user with its permissions; returns the user names."""
    base, creds, vhost = management_url(admin_amqp_url, management)
    v = quote(vhost, safe="")
    http = requests.Session()
    http.auth = creds

    def call(method: str, path: str, body=None):
        try:
            r = http.request(method, f"{base}/api/{path}", json=body, timeout=10)
        except requests.RequestException as exc:
            raise BusAuthError(f"cannot reach RabbitMQ's management API at {base} ({exc}); enable it with "
                               "`rabbitmq-plugins enable rabbitmq_management`") from None
        if r.status_code >= 400 and not (method == "DELETE" and r.status_code == 404):
            raise BusAuthError(f"{method} /api/{path}: HTTP {r.status_code} {r.text[:200]}")

    names = []
    for kind in KINDS:
        user = user_name(user_prefix, kind)
        regular, topic = permissions(kind, prefix)
        call("PUT", f"users/{quote(user, safe='')}", {"password": passwords[kind], "tags": ""})
        call("PUT", f"permissions/{v}/{quote(user, safe='')}", regular)
        call("DELETE", f"topic-permissions/{v}/{quote(user, safe='')}")  # none left over from an older layout
        for t in topic:
            call("PUT", f"topic-permissions/{v}/{quote(user, safe='')}", t)
        names.append(user)
    return names


def delete_users(admin_amqp_url: str, user_prefix: str, management: str | None = None) -> None:
    base, creds, _vhost = management_url(admin_amqp_url, management)
    for kind in KINDS:
        try:
            requests.delete(f"{base}/api/users/{quote(user_name(user_prefix, kind), safe='')}", auth=creds,
                            timeout=10)
        except requests.RequestException:
            pass


def apply_policy(admin_amqp_url: str, topology, management: str | None = None) -> str:
    """Set the deployment's policy for its consuming queues (delivery limit, dead-letter exchange)."""
    base, creds, vhost = management_url(admin_amqp_url, management)
    name = f"{topology.prefix}-consumers"
    try:
        r = requests.put(f"{base}/api/policies/{quote(vhost, safe='')}/{quote(name, safe='')}",
                         json=topology.policy(), auth=creds, timeout=10)
    except requests.RequestException as exc:
        raise BusAuthError(f"cannot reach RabbitMQ's management API at {base} ({exc})") from None
    if r.status_code >= 400:
        raise BusAuthError(f"setting policy {name}: HTTP {r.status_code} {r.text[:200]}")
    return name


def remove_policy(admin_amqp_url: str, prefix: str, management: str | None = None) -> None:
    base, creds, vhost = management_url(admin_amqp_url, management)
    try:
        requests.delete(f"{base}/api/policies/{quote(vhost, safe='')}/{quote(prefix + '-consumers', safe='')}",
                        auth=creds, timeout=10)
    except requests.RequestException:
        pass
