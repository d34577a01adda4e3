"""/health tells the truth from checks kept fresh in the background, and answers at once;
/health/live stays 200 while the process serves."""
import time

import eventlet
import sqlalchemy as sa
from kombu import Connection
from openapi_spec_validator import validate as validate_spec

from shared.db import outbox_table
from shared.platform import Platform
from shared.store import utcnow
from tests.support import TOWN_A, wait_for
from tests.unit.test_openapi import assert_matches_document

FAST = {"health_interval": 0.2}


def _metric(city, instance, name, **labels) -> float | None:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(city.call("GET", instance, "/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None


def _platform(city, instance) -> Platform:
    (container,) = city.cluster.by_instance(instance).runner.containers
    return next(d for d in container.dependencies if isinstance(d, Platform))


def _as_documented(city, instance, operation, body):
    """`body` is what the instance's own /openapi.json, served without a token, says `operation` answers."""
    r = city.call("GET", instance, "/openapi.json")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json"), r.text
    doc = r.json()
    validate_spec(doc)
    assert_matches_document(body, doc, operation)


def _timed_get(city, instance, path):
    started = time.perf_counter()
    r = city.call("GET", instance, path)
    return r, time.perf_counter() - started


def test_an_old_unsent_message_makes_readiness_fail_while_liveness_holds(any_city):
    city = any_city
    intake = f"intake-{TOWN_A}"
    city.start("approval-minzheng", "notify", "evaluation")
    # the window's relay is off: what it commits stays in its outbox
    city.start(intake, extra={"relay": False}, outbox_max_age=1.0, **FAST)
    r = city.call("GET", intake, "/health")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok"
    assert body["checks"] == {"database": "ok", "broker": "ok", "outbox": "ok", "unroutable": "ok",
                              "reference": "ok"}  # intake holds a catalogue from the reference stream
    assert body["outbox"]["backlog"] == 0 and body["outbox"]["relay"] == "off"
    _as_documented(city, intake, "health", body)
    assert _metric(city, intake, "tongban_outbox_oldest_unsent_seconds") == 0.0

    assert city.submit("MZ-0001", TOWN_A).status_code == 201
    body = wait_for(lambda: (r := city.call("GET", intake, "/health")).status_code == 503 and r.json(),
                    what="readiness failing on the old unsent message")
    assert body["status"] == "degraded"
    assert body["checks"]["outbox"].startswith("error: the oldest unsent message waits")
    assert body["checks"]["database"] == "ok" and body["checks"]["broker"] == "ok"
    assert body["outbox"]["backlog"] >= 1 and body["outbox"]["oldest_unsent_seconds"] >= 1.0
    _as_documented(city, intake, "health", body)

    live = city.call("GET", intake, "/health/live")
    assert live.status_code == 200, "the process serves: no restart for a backlog"
    assert live.json()["status"] == "degraded", "and says what is wrong"
    assert _metric(city, intake, "tongban_outbox_oldest_unsent_seconds") > 1.0

    # the relay comes back (a restart with it on): the outbox empties and readiness returns
    city.stop(intake)
    city.start(intake, outbox_max_age=1.0, **FAST)
    wait_for(lambda: city.call("GET", intake, "/health").status_code == 200, what="ready again")
    wait_for(lambda: _metric(city, intake, "tongban_outbox_oldest_unsent_seconds") == 0.0,
             what="nothing left unsent once the case is done")


def test_unroutable_messages_waiting_make_readiness_fail(city):
    city.start("notify", outbox_max_age=600.0, **FAST)
    # the registry binds every key notify may publish (evaluation hears notice.#): take that binding away
    with Connection(city.amqp_url) as conn:
        conn.default_channel.queue_unbind(city.queue("evaluation", "events"), f"{city.prefix}.events", "notice.#")
    store = _platform(city, "notify").store
    with store.engine.begin() as conn:
        conn.execute(outbox_table.insert().values(
            message_id="unroutable-1", exchange=f"{city.prefix}.events", routing_key=f"notice.sent.{TOWN_A}",
            body='{"case_number": "C-1"}', created_at=utcnow(), attempts=0))
    store.on_commit_with_messages()  # wake the relay as a transaction would
    body = wait_for(lambda: (r := city.call("GET", "notify", "/health")).status_code == 503 and r.json(),
                    what="readiness failing on the unroutable message")
    assert body["checks"]["unroutable"] == "error: 1 message(s) wait: no queue takes their routing key"
    assert _metric(city, "notify", "tongban_outbox_publish_failures_total", reason="unroutable") >= 1
    assert city.call("GET", "notify", "/health/live").status_code == 200


def test_health_answers_at_once_from_its_checks_while_the_database_is_stuck(city):
    city.start("notify", **FAST)
    assert city.call("GET", "notify", "/health").status_code == 200
    store = _platform(city, "notify").store
    # SQLite runs on one pooled connection per instance: holding it stalls every database call
    held = store.engine.connect()
    held.execute(sa.text("SELECT 1"))
    try:
        started = time.monotonic()
        timings, statuses = [], []
        while time.monotonic() - started < 7.0:
            r, seconds = _timed_get(city, "notify", "/health")
            timings.append(seconds)
            statuses.append(r.status_code)
            eventlet.sleep(0.25)
        # waiting on the held connection would take the pool's timeout (60 s); 2 s leaves room for a busy machine
        assert max(timings) < 2.0, f"/health waited on the database: {max(timings):.3f} s"
        assert sorted(timings)[len(timings) // 2] < 0.05
        assert statuses[0] == 200 and statuses[-1] == 503, "checks that stop completing are a failure"
        body = city.call("GET", "notify", "/health").json()
        assert body["checks"]["freshness"].startswith("error: the checks last completed")
        r, seconds = _timed_get(city, "notify", "/health/live")
        assert r.status_code == 200 and seconds < 0.5
    finally:
        held.close()
    wait_for(lambda: city.call("GET", "notify", "/health").status_code == 200, what="healthy again")
