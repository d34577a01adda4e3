"""The instance registry is fit for Prometheus: no label Prometheus reserves for the target, the process's own
series once per process, HTTP latency by route template."""
import gc

from prometheus_client.parser import text_string_to_metric_families

from shared.metrics import RESERVED_LABELS, ServiceMetrics, _ProcessSeries


def _families(metrics: ServiceMetrics) -> dict:
    return {f.name: f for f in text_string_to_metric_families(metrics.render().decode())}


def _process_names(families: dict) -> set:
    # the default registry's collectors: the process (Linux) and the interpreter, in every process
    return {n for n in families if n.startswith(("process_", "python_"))}


def test_no_series_carries_a_label_prometheus_reserves_for_the_target():
    m = ServiceMetrics("intake-320583101", "intake", town="320583101", process_series=_ProcessSeries())
    m.observe_request("GET /cases/<number>", 200, 0.01)
    m.messages_handled.labels(queue="q", outcome="ok").inc()
    m.dead_letters.labels(queue="q").set(1)
    labels = {k for f in _families(m).values() for s in f.samples for k in s.labels}
    assert labels and not labels & RESERVED_LABELS, labels & RESERVED_LABELS
    (info,) = _families(m)["tongban_instance_info"].samples
    assert info.labels == {"tongban_instance": "intake-320583101", "service": "intake", "town": "320583101",
                           "department": ""}


def test_the_process_series_come_once_per_process_and_pass_on_when_their_instance_stops():
    series = _ProcessSeries()
    first = ServiceMetrics("portal", "portal", process_series=series)
    second = ServiceMetrics("notify", "notify", process_series=series)
    assert _process_names(_families(first)), "the first instance made shows the process's series"
    assert not _process_names(_families(second)), "a second instance of the process does not repeat them"
    assert "tongban_outbox_backlog" in _families(second), "its own figures it shows"
    first.close()
    assert _process_names(_families(second)), "the first stopped: the next one to render takes them over"
    assert not _process_names(_families(first)), "a closed instance renders no process series (it took none back)"
    second.close()
    third = ServiceMetrics("evaluation", "evaluation", process_series=series)
    assert _process_names(_families(third))


def test_http_latency_is_a_histogram_by_route_with_the_request_count_beside_it():
    m = ServiceMetrics("intake-320583101", "intake", process_series=_ProcessSeries())
    for seconds in (0.003, 0.2, 3.0):
        m.observe_request("GET /cases/<number>", 200, seconds)
    m.observe_request("GET /cases/<number>", 404, 0.004)
    families = _families(m)
    hist = {(s.name, s.labels.get("le")): s.value for s in families["tongban_http_request_seconds"].samples}
    assert hist[("tongban_http_request_seconds_count", None)] == 4
    assert hist[("tongban_http_request_seconds_bucket", "0.005")] == 2
    assert hist[("tongban_http_request_seconds_bucket", "0.25")] == 3
    assert hist[("tongban_http_request_seconds_bucket", "+Inf")] == 4
    counts = {s.labels["status"]: s.value for s in families["tongban_http_requests"].samples
              if s.name == "tongban_http_requests_total"}
    assert counts == {"200": 3.0, "404": 1.0}


def test_an_instance_dropped_without_closing_does_not_keep_the_process_series():
    series = _ProcessSeries()
    ServiceMetrics("gone", "notify", process_series=series)  # made, never closed, dropped
    gc.collect()
    assert _process_names(_families(ServiceMetrics("next", "notify", process_series=series)))


def test_the_compose_targets_are_the_sample_citys_instances():
    """deploy/prometheus/targets/tongban.yml lists every instance of the sample city: re-rendered, no difference."""
    from pathlib import Path

    import yaml

    from shared.catalog import load_catalog
    from shared.config import Settings
    from shared.metrics import scrape_targets
    from tests.support import SIGNING_KEY
    from tongban.runtime import host_layout

    catalog = load_catalog()
    # a key given: the layout makes no development key in a data folder
    base = Settings(service="t", instance="t", token_private_key=SIGNING_KEY.to_pem())
    layout = host_layout(base, towns=sorted(catalog.towns), departments=sorted(catalog.departments))
    committed = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "targets" / "tongban.yml"
    rendered = scrape_targets([s.instance for s in layout])
    assert committed.read_text() == rendered, "re-render: shared.metrics.scrape_targets"
    (group,) = yaml.safe_load(rendered)
    assert len(group["targets"]) == 1 + len(catalog.towns) + len(catalog.departments) + 3
