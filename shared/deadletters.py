"""Operator work on dead letters: list them, replay them into the queue they failed in, purge them.

A dead letter keeps its body and headers; RabbitMQ's x-death header says which queue it failed
in and why. Replay publishes it back to that queue alone (default exchange, with a confirm) and
only then removes it from the dead-letter queue, so a crash in between duplicates, never loses;
consumers are idempotent.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import quote, unquote, urlparse

import requests
from kombu import Connection, Exchange, Queue

from shared.bus import ATTEMPT, FAILED_QUEUE, REASON

DLQ_SUFFIX = ".dlq"


class DeadLetterError(Exception):
    pass


@dataclass
class DeadLetter:
    message_id: str | None
    type: str | None
    case_number: str | None
    failed_queue: str | None
    reason: str | None
    count: int | None

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def management_url(amqp_url: str, override: str | None = None) -> tuple[str, tuple[str, str], str]:
    """Management API base, credentials and vhost, derived from the AMQP URL unless overridden."""
    u = urlparse(amqp_url)
    user, password = unquote(u.username or "guest"), unquote(u.password or "guest")
    vhost = unquote(u.path[1:]) if u.path and u.path != "/" else "/"
    base = override or f"http://{u.hostname or '127.0.0.1'}:15672"
    return base.rstrip("/"), (user, password), vhost


def list_queues(amqp_url: str, prefix: str, mgmt: str | None = None) -> list[dict]:
    """Dead-letter queues of this deployment with their message counts (RabbitMQ management API)."""
    base, creds, vhost = management_url(amqp_url, mgmt)
    try:
        resp = requests.get(f"{base}/api/queues/{quote(vhost, safe='')}", auth=creds, timeout=10,
                            params={"columns": "name,messages"})
        resp.raise_for_status()
    except requests.RequestException as exc:
        raise DeadLetterError(
            f"cannot reach RabbitMQ's management API at {base} ({exc}); "
            "enable it with `rabbitmq-plugins enable rabbitmq_management` or name the queue") from None
    names = sorted(q["name"] for q in resp.json()
                   if q["name"].startswith(prefix + ".") and q["name"].endswith(DLQ_SUFFIX))
    # the management API's counts lag by seconds; ask the queue itself
    return [{"queue": name, "messages": depth(amqp_url, name)} for name in names]


def depth(amqp_url: str, queue: str) -> int:
    """Messages ready in `queue` now (a passive declare: it never creates the queue)."""
    with Connection(amqp_url) as conn:
        _name, count, _consumers = conn.default_channel.queue_declare(queue, passive=True)
        return count


def _describe(message) -> DeadLetter:
    try:
        body = message.decode()
    except Exception:  # a dead letter may be exactly the body nobody could read
        body = None
    headers = message.headers or {}
    # our consumers dead-letter with the reason in a header; the broker's own dead-lettering
    # (delivery limit reached by a consumer that died) leaves only its x-death record
    death = (headers.get("x-death") or [{}])[0]
    fields = body if isinstance(body, dict) else {}
    reason = headers.get(REASON) or death.get("reason")
    count = headers.get(ATTEMPT) if REASON in headers else death.get("count")
    return DeadLetter(message_id=message.properties.get("message_id") or fields.get("message_id"),
                      type=fields.get("type"), case_number=fields.get("case_number"),
                      failed_queue=headers.get(FAILED_QUEUE) or death.get("queue"), reason=reason, count=count)


def _check_dlq(queue: str) -> None:
    if not queue.endswith(DLQ_SUFFIX):
        raise DeadLetterError(f"{queue} is not a dead-letter queue (its name ends in {DLQ_SUFFIX})")


def peek(amqp_url: str, queue: str, limit: int = 20) -> list[DeadLetter]:
    """Look at up to `limit` dead letters without removing them."""
    _check_dlq(queue)
    out = []
    with Connection(amqp_url) as conn:
        channel = conn.channel()
        try:
            source = Queue(queue, channel=channel, no_declare=True)
            for _ in range(limit):
                message = source.get(no_ack=False, accept=["json"])
                if message is None:
                    break
                out.append(_describe(message))
        finally:
            channel.close()  # closing without ack puts every message back, in order
    return out


class Replayed(NamedTuple):
    moved: int  # dead letters put back into the queue they failed in
    present: int  # dead letters in the queue when the replay started


def replay(amqp_url: str, queue: str, limit: int | None = None) -> Replayed:
    """Move dead letters back to the queue they failed in: at most those present when it starts (and
    at most `limit`), for a message that fails again while it runs comes back to the end of this queue."""
    _check_dlq(queue)
    moved = 0
    default_exchange = Exchange("", type="direct")
    with Connection(amqp_url, transport_options={"confirm_publish": True}) as conn:
        channel = conn.channel()
        _name, present, _consumers = channel.queue_declare(queue, passive=True)
        bound = present if limit is None else min(present, limit)
        producer = conn.Producer(channel=channel)
        source = Queue(queue, channel=channel, no_declare=True)
        while moved < bound:
            message = source.get(no_ack=False, accept=["json"])
            if message is None:
                break
            target = _describe(message).failed_queue or queue[: -len(DLQ_SUFFIX)]
            headers = {k: v for k, v in (message.headers or {}).items() if not k.startswith("x-")}
            producer.publish(message.body, exchange=default_exchange, routing_key=target,
                             content_type=message.content_type, content_encoding=message.content_encoding,
                             headers=headers, message_id=message.properties.get("message_id"),
                             delivery_mode=2, mandatory=True)
            message.ack()
            moved += 1
        channel.close()
    return Replayed(moved, present)


def purge(amqp_url: str, queue: str, confirm: Callable[[int], bool] | None = None) -> int | None:
    """Drop every dead letter in `queue` (after an operator decided they are worthless); returns how
    many were dropped. `confirm`, if given, is asked first with how many are there, and unless it
    answers True nothing is dropped (None). No connection stays open while it waits for an answer."""
    _check_dlq(queue)
    if confirm is not None and not confirm(depth(amqp_url, queue)):
        return None
    with Connection(amqp_url) as conn:
        return conn.default_channel.queue_purge(queue) or 0
