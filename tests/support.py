"""Test helpers: a throw-away city on the real broker and database, and an HTTP client."""
from __future__ import annotations

import json
import re
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import eventlet
import requests
from kombu import Connection, Exchange, Producer

from shared import busauth, tokens
from shared.config import Settings
from shared.contracts import Message
from shared.deadletters import management_url
from tongban import bus_cmd
from tongban.demo import fake_resident_id
from tongban.runtime import (
    Cluster,
    PostgresDatabases,  # noqa: F401 (the fixtures' databases)
    free_port_block,
    host_layout,
    remove_bus,
)

TOWN_A, TOWN_B = "320583101", "320583102"
VALID_ID = "11010519491231002X"
VALID_PHONE = "13812345678"
# the tests' portal key: every city of the session trusts it (as a deployment trusts its portal's)
SIGNING_KEY = tokens.SigningKey.generate()
PUBLIC_KEYS = tokens.jwks_text(SIGNING_KEY)


def issue_token(subject: str, role: str, scope: str, **kwargs) -> str:
    """A token signed by the tests' portal key (shared.tokens.issue)."""
    return tokens.issue(SIGNING_KEY, subject, role, scope, **kwargs)


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.1, what: str = "condition"):
    """Poll until predicate() is truthy; return its value or fail saying what never happened."""
    import eventlet

    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        eventlet.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def _new_prefix() -> str:
    # the hex time it was made, then randomness (enough that two cities made in one second never share a
    # bus, as one's background removal would take the other's queues): a sweep tells a killed run's
    # leftovers by age
    return f"t{int(time.time()):08x}{uuid.uuid4().hex[:6]}"


@dataclass
class City:
    """A deployment for one test: its own bus prefix, data folder and (optionally) PostgreSQL databases."""

    amqp_url: str
    data_dir: Path
    backend: str = "sqlite"
    postgres: PostgresDatabases | None = None
    delivery_limit: int = 3
    retry_delays: tuple = (0.2, 0.5, 1.0)  # short waits: the defaults are 1 s … 30 min
    departments: tuple = ("minzheng", "renshe")
    cluster: Cluster = field(default_factory=Cluster)
    # False: the test makes the bus itself (e.g. with `tongban bus` commands), none is made ahead for it
    prepared_bus: bool = True
    prefix: str = field(default_factory=_new_prefix)
    _db_urls: dict = field(default_factory=dict)

    def __post_init__(self):
        self._users = False
        self._preparing = None
        if self.prepared_bus:
            self.prefix, self._preparing = _PREPARED.take(
                (self.amqp_url, self.delivery_limit, tuple(self.retry_delays)), self._bus_settings)
        self.base = self._bus_settings(self.prefix)
        n = 1 + 2 + len(self.departments) + 3
        self.layout = host_layout(self.base, departments=self.departments, first_port=_free_port_block(n))
        self.session = requests.Session()

    # --- running ----------------------------------------------------------------------------------

    def settings(self, instance: str, **changes) -> Settings:
        s = next(s for s in self.layout if s.instance == instance)
        if self.backend == "postgres":
            if instance not in self._db_urls:
                self._db_urls[instance] = self.postgres.new(instance)
            s = s.with_(database_url=self._db_urls[instance])
        if "extra" in changes:  # a test's extras add to the city's
            changes["extra"] = {**s.extra, **changes["extra"]}
        return s.with_(**changes) if changes else s

    def start(self, *instances: str, build: dict | None = None, **changes):
        """Start instances (all but the portal by default: most tests call the services' APIs themselves);
        `build` goes to the service factory (e.g. a clock)."""
        names = instances or [s.instance for s in self.layout if s.service != "portal"]
        self.ensure_users()
        self.cluster.start_all([self.settings(name, **changes) for name in names], **(build or {}))

    def _bus_settings(self, prefix: str) -> Settings:
        # every service kind connects as its own broker user, as in production (shared.busauth)
        return Settings(service="test", instance="test", amqp_url=self.amqp_url, bus_prefix=prefix,
                        data_dir=self.data_dir, delivery_limit=self.delivery_limit, relay_interval=0.1,
                        retry_delays=self.retry_delays, bus_users=prefix, bus_secret="test-bus-secret",
                        token_public_keys=PUBLIC_KEYS, token_private_key=SIGNING_KEY.to_pem(),
                        # the reference stream here is local and small: a catch-up ends after a short quiet
                        extra={"reference_idle": 0.15,
                               # the tests reach the portal as its reverse proxy would (X-Forwarded-For/-Proto)
                               "proxy_hops": "1"})

    def ensure_users(self):
        """What an operator does before the services start: their broker users, the queues, the policy
        (made ahead of time for most cities: see _PreparedBuses)."""
        if not self._users:
            if self._preparing is not None:
                self._preparing.wait()
            else:
                bus_cmd.prepare(self.base)
            self._users = True

    # --- reference data (shared.reference): through the CLI, as city IT does --------------------------

    def cli_env(self) -> dict:
        """The environment `tongban` needs to talk to this city (its broker as the admin, its bus prefix)."""
        import os

        return {**os.environ, "TONGBAN_AMQP_URL": self.amqp_url, "TONGBAN_BUS_PREFIX": self.prefix,
                "TONGBAN_DATA_DIR": str(self.data_dir)}

    def tongban(self, *args: str, check: bool = True):
        """Run `tongban ARGS` against this city in a subprocess; the completed process."""
        import subprocess
        import sys

        r = subprocess.run([sys.executable, "-m", "tongban.cli", *args], env=self.cli_env(), capture_output=True,
                           text=True, timeout=120)
        if check:
            assert r.returncode == 0, f"tongban {' '.join(args)}: {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r

    def load_catalog(self, path) -> None:
        """Publish a catalogue file to the city's reference stream (before or after its services start)."""
        self.ensure_users()  # the stream gets the sample first only if nothing was loaded: then this one wins
        self.tongban("catalog", "load", str(path))

    def load_calendar(self, path) -> None:
        self.ensure_users()
        self.tongban("calendar", "load", str(path))

    def add_intake(self, town: str) -> str:
        """One more town's window in the layout (started later with `start`); its instance name."""
        s = next(s for s in self.layout if s.service == "intake").with_(instance=f"intake-{town}", town=town,
                                                                       http_port=_free_port_block(1))
        self.layout.append(s)
        return s.instance

    def forget_storage(self, instance: str) -> None:
        """The instance's next start finds an empty database (a new SQLite file, a new PostgreSQL
        database), as a rescheduled pod with an emptyDir would."""
        i = next(k for k, s in enumerate(self.layout) if s.instance == instance)
        fresh = Path(self.layout[i].data_dir) / f"fresh-{uuid.uuid4().hex[:6]}"
        self.layout[i] = self.layout[i].with_(data_dir=fresh)
        self._db_urls.pop(instance, None)

    def stop(self, instance: str, kill: bool = False):
        r = self.cluster.by_instance(instance)
        self.cluster.running.remove(r)
        (r.runner.kill if kill else r.runner.stop)()
        self.session.close()  # keep-alive connections to the stopped instance are dead
        self.session = requests.Session()

    def close(self):
        self.cluster.stop()
        # deleting a city's ~110 quorum queues takes the broker a second or two: let it happen while the
        # next test runs (the session waits for every removal at its end; a missed one is swept next run)
        _REMOVALS.spawn(self._remove_bus)

    def _remove_bus(self):
        if self._preparing is not None:  # made ahead for this city, used or not
            try:
                self._preparing.wait()
            except Exception:
                pass
            self._users = True
        for remove in (lambda: remove_bus(self.amqp_url, self.prefix, self.layout), self._remove_other_queues):
            try:
                remove()
            except Exception as exc:
                # to the real stderr: this runs beside the next test, whose captured output it must not join
                print(f"note: bus {self.prefix} not wholly removed ({exc!r}); the next run sweeps it",
                      file=sys.__stderr__)
        if self._users:
            busauth.delete_users(self.amqp_url, self.prefix)

    def _remove_other_queues(self):
        """Queues a test made outside the layout (a probe's, one it declared itself)."""
        base, creds, vhost = management_url(self.amqp_url)
        listed = requests.get(f"{base}/api/queues/{quote(vhost, safe='')}", auth=creds,
                              params={"columns": "name"}, timeout=10).json()
        with Connection(self.amqp_url) as conn:
            for name in (q["name"] for q in listed if q["name"].startswith(self.prefix + ".")):
                conn.default_channel.queue_delete(name)

    def url(self, instance: str) -> str:
        return next(s for s in self.layout if s.instance == instance).base_url

    # --- tokens and HTTP --------------------------------------------------------------------------

    def token(self, role: str, scope: str, subject: str = "tester", name: str | None = None) -> str:
        return issue_token(subject, role, scope, name=name)

    def call(self, method: str, instance: str, path: str, token: str | None = None, body=None,
             raw: bytes | None = None, headers: dict | None = None):
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"Bearer {token}"
        if raw is not None:
            h["Content-Type"] = "application/json"
            return self.session.request(method, self.url(instance) + path, data=raw, headers=h, timeout=30)
        return self.session.request(method, self.url(instance) + path, json=body, headers=h, timeout=30)

    def listed(self, instance: str, path: str, key: str, token: str | None = None) -> list:
        """The list under `key` of a GET, or [] while the service has not heard of the record yet (404:
        read models fill from the bus, so a record may be unknown for a moment after it is made)."""
        r = self.call("GET", instance, path, token or self.ops)
        if r.status_code == 404:
            return []
        assert r.status_code == 200, f"GET {path}: {r.status_code} {r.text}"
        return r.json()[key]

    @property
    def ops(self) -> str:
        return self.token("service", "city", "ops")

    def stats(self, instance: str) -> dict:
        r = self.call("GET", instance, "/stats", self.ops)
        assert r.status_code == 200, r.text
        return r.json()

    def submit(self, item_code: str = "MZ-0001", town: str = TOWN_A, materials=None, id_number: str | None = None,
               **extra) -> requests.Response:
        materials = materials if materials is not None else (
            ["idcard", "photo"] if item_code == "MZ-0001" else ["idcard", "form"])
        body = {"item_code": item_code, "materials": materials,
                "applicant": {"name": "张三", "id_number": id_number or VALID_ID, "phone": VALID_PHONE}, **extra}
        return self.call("POST", f"intake-{town}", "/cases", self.token("clerk", f"town:{town}", "clerk-1"), body)

    def act(self, number: str, step: str, body=None, town: str = TOWN_A, token: str | None = None):
        """POST /cases/<number>/<step> at the town's window (as its clerk unless a token is given)."""
        return self.call("POST", f"intake-{town}", f"/cases/{number}/{step}",
                         token or self.token("clerk", f"town:{town}", "clerk-1"), body)

    def approver(self, department: str, town: str | None) -> str:
        scope = f"department:{department}@{town}" if town else f"department:{department}"
        return self.token("approver", scope, f"approver-{department}")

    def decide(self, department: str, number: str, town: str | None, outcome: str = "approved", reason=None):
        """The department's approver finds the case's work item and decides it."""
        token = self.approver(department, town)
        items = wait_for(lambda: [i for i in self.call("GET", f"approval-{department}", "/work-items", token)
                                  .json()["items"] if i["case_number"] == number],
                         what=f"{department} work item for {number}")
        body = {"outcome": outcome, **({"reason": reason} if reason else {})}
        r = self.call("POST", f"approval-{department}", f"/work-items/{items[0]['id']}/decision", token, body)
        assert r.status_code == 200, r.text
        return r.json()

    # --- the town agent (镇代办员): escalated cases to the city and back ---------------------------------

    def town_agent(self, town: str = TOWN_A) -> str:
        return self.token("town_agent", f"town:{town}", f"town-agent-{town[-3:]}")

    def escalation(self, number: str, town: str = TOWN_A, status: str | None = None) -> dict:
        """The town agent's view of an escalated case, once it is there (and in `status`, if given)."""
        def seen():
            r = self.call("GET", "agent", f"/escalations/{number}", self.town_agent(town))
            return r.status_code == 200 and (status is None or r.json()["status"] == status) and r.json()
        return wait_for(seen, what=f"escalation {number}" + (f" {status}" if status else ""))

    def relay_escalation(self, number: str, town: str = TOWN_A) -> dict:
        """The town agent relays the work of an escalated case (after 初审) to the city department(s)."""
        self.escalation(number, town, "awaiting_relay")
        r = self.call("POST", "agent", f"/escalations/{number}/relay", self.town_agent(town))
        assert r.status_code == 200, r.text
        return r.json()

    def return_escalation(self, number: str, town: str = TOWN_A) -> dict:
        """The town agent brings the city's decision back to the town's ledger, once it is there."""
        self.escalation(number, town, "decided")
        r = self.call("POST", "agent", f"/escalations/{number}/return", self.town_agent(town))
        assert r.status_code == 200, r.text
        return r.json()

    def case(self, number: str, town: str = TOWN_A) -> dict:
        r = self.call("GET", f"intake-{town}", f"/cases/{number}", self.token("clerk", f"town:{town}"))
        assert r.status_code == 200, r.text
        return r.json()

    # --- the bus, directly --------------------------------------------------------------------------

    def publish_raw(self, body, routing_key: str, content_type: str = "application/json",
                    exchange_name: str | None = None, **props):
        with Connection(self.amqp_url, transport_options={"confirm_publish": True}) as conn:
            exchange = Exchange(exchange_name or f"{self.prefix}.events", type="topic", durable=True)
            producer = Producer(conn.default_channel, exchange=exchange)
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            producer.publish(body, routing_key=routing_key, content_type=content_type,
                             content_encoding="utf-8", **props)

    def publish(self, message: Message, routing_key: str):
        self.publish_raw(message.to_wire(), routing_key, message_id=message.message_id)

    def queue(self, instance: str, purpose: str) -> str:
        return f"{self.prefix}.{instance}.{purpose}"

    def queue_depth(self, name: str) -> int:
        with Connection(self.amqp_url) as conn:
            _n, count, _c = conn.default_channel.queue_declare(name, passive=True)
            return count


def _free_port_block(n: int) -> int:
    return free_port_block(n, start=19000 + (uuid.uuid4().int % 200) * 50)


__all__ = ["City", "PostgresDatabases", "wait_for", "fake_resident_id", "TOWN_A", "TOWN_B", "VALID_ID"]


_REMOVALS = eventlet.GreenPool()  # cities' buses being removed in the background (City.close)


def wait_for_removals() -> None:
    _PREPARED.discard()
    _REMOVALS.waitall()


class _PreparedBuses:
    """The next test city's bus (users, queues, policy: `bus_cmd.prepare`), made while the current test
    runs. Creating a city's ~180 quorum queues keeps the broker busy for seconds, most of it waiting on
    its disk; ahead of time it costs a test nothing. Only for cities of the usual broker settings."""

    def __init__(self):
        self._next: tuple | None = None  # (key, prefix, green thread preparing it)

    def take(self, key: tuple, settings_for) -> tuple[str, eventlet.greenthread.GreenThread]:
        """A prefix whose bus is (being) prepared for `key`; the one after it starts being prepared."""
        if self._next is not None and self._next[0] == key:
            _, prefix, preparing = self._next
        else:
            self.discard()
            prefix, preparing = self._spawn(settings_for)
        nxt_prefix, nxt = self._spawn(settings_for)
        self._next = (key, nxt_prefix, nxt)
        return prefix, preparing

    @staticmethod
    def _spawn(settings_for):
        prefix = _new_prefix()
        return prefix, eventlet.spawn(bus_cmd.prepare, settings_for(prefix))

    def discard(self) -> None:
        """Remove the bus prepared for a city that never came (at the end of the session)."""
        if self._next is None:
            return
        key, prefix, preparing = self._next
        self._next = None
        amqp_url = key[0]

        def remove():
            try:
                preparing.wait()
            except Exception:  # half made: removed all the same
                pass
            sweep_stale_test_buses(amqp_url, prefixes={prefix})

        _REMOVALS.spawn(remove)


_PREPARED = _PreparedBuses()


_TEST_PREFIX = re.compile(r"^(t[0-9a-f]{10}(?:[0-9a-f]{4})?)[.-]")


def sweep_stale_test_buses(amqp_url: str, idle_minutes: float = 10.0, prefixes=None) -> list[str]:
    """Remove what earlier, killed test runs left on the broker: the queues, exchanges, users and policy
    of every test bus prefix older than `idle_minutes` none of whose queues has a consumer (or of the
    given `prefixes`, whatever their age).

    Quorum queues hold file handles in RabbitMQ; enough leftovers stall every new connection."""
    base, creds, _vhost = management_url(amqp_url)
    api = requests.Session()
    api.auth = creds
    try:
        listing = {kind: api.get(f"{base}/api/{kind}", timeout=10).json()
                   for kind in ("queues/%2F", "exchanges/%2F", "users", "policies/%2F")}
    except (requests.RequestException, ValueError):
        return []
    now = time.time()

    def stale(prefix: str, queues: list) -> bool:
        # a test prefix begins with the hex time it was made (see City.prefix)
        born = int(prefix[1:9], 16)
        return not any(q.get("consumers") for q in queues) and not (now - idle_minutes * 60 < born < now + 60)

    by_prefix: dict[str, list] = {}
    for kind, items in listing.items():
        for item in items:
            if m := _TEST_PREFIX.match(item["name"]):
                by_prefix.setdefault(m.group(1), []).extend([item] if kind.startswith("queues") else [])
    gone = set(prefixes) & set(by_prefix) if prefixes is not None else {p for p, qs in by_prefix.items()
                                                                           if stale(p, qs)}
    for kind, items in listing.items():
        for item in items:
            m = _TEST_PREFIX.match(item["name"])
            if m and m.group(1) in gone:
                try:
                    api.delete(f"{base}/api/{kind}/{quote(item['name'], safe='')}", timeout=60)
                except requests.RequestException:
                    pass  # the next run sweeps it
    return sorted(gone)
