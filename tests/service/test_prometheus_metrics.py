"""Each running instance's /metrics is fit for Prometheus: every instance of a shared process names itself,
none uses a label Prometheus reserves, the process's series come once, HTTP latency is by route template, and
the outbox's oldest unsent age is kept up to date."""
from prometheus_client.parser import text_string_to_metric_families

from shared.metrics import RESERVED_LABELS
from tests.support import TOWN_A, wait_for

INTAKE = f"intake-{TOWN_A}"
FAST = {"health_interval": 0.2}


def _families(city, instance) -> dict:
    r = city.call("GET", instance, "/metrics")
    assert r.status_code == 200, r.text
    return {f.name: f for f in text_string_to_metric_families(r.text)}


def _value(city, instance, name) -> float | None:
    family = _families(city, instance).get(name)
    return family.samples[0].value if family and family.samples else None


def test_instances_sharing_a_process_name_themselves_and_show_the_process_series_once(city):
    instances = [INTAKE, "approval-minzheng", "notify", "evaluation"]
    city.start(*instances)
    number = city.submit().json()["case_number"]
    assert city.case(number)["case_number"] == number
    assert city.call("GET", INTAKE, "/cases/no-such-case", city.token("clerk", f"town:{TOWN_A}")).status_code == 404

    shown = []
    for instance in instances:
        families = _families(city, instance)
        labels = {k for f in families.values() for s in f.samples for k in s.labels}
        assert not labels & RESERVED_LABELS, f"{instance}: {labels & RESERVED_LABELS}"
        (info,) = families["tongban_instance_info"].samples
        assert info.labels["tongban_instance"] == instance
        if any(name.startswith("process_") or name.startswith("python_") for name in families):
            shown.append(instance)
    assert len(shown) == 1, f"the process's own series must come from one instance, not {shown}"

    text = city.call("GET", INTAKE, "/metrics").text
    assert number not in text and "no-such-case" not in text, "a raw path never becomes a label"
    routes = {(s.labels["route"], s.name) for s in _families(city, INTAKE)["tongban_http_request_seconds"].samples
              if s.name == "tongban_http_request_seconds_count"}
    assert ("GET /cases/<string:case_number>", "tongban_http_request_seconds_count") in routes, routes
    assert ("POST /cases", "tongban_http_request_seconds_count") in routes, routes


def test_the_outbox_age_grows_while_nothing_leaves_and_is_zero_once_the_relay_caught_up(city):
    city.start("approval-minzheng", "notify", "evaluation")
    city.start(INTAKE, extra={"relay": False}, **FAST)  # what the window commits stays in its outbox
    assert city.submit().status_code == 201
    first = wait_for(lambda: (v := _value(city, INTAKE, "tongban_outbox_oldest_unsent_seconds")) and v >= 0.5 and v,
                     what="the outbox age to show the unsent message")
    later = wait_for(lambda: (v := _value(city, INTAKE, "tongban_outbox_oldest_unsent_seconds")) > first + 0.3 and v,
                     what="the outbox age to grow")
    assert later > first
    city.stop(INTAKE)
    city.start(INTAKE, **FAST)  # the relay on again: the backlog leaves, the age falls to zero
    wait_for(lambda: _value(city, INTAKE, "tongban_outbox_oldest_unsent_seconds") == 0.0
             and _value(city, INTAKE, "tongban_outbox_backlog") == 0.0, what="the outbox drained")
