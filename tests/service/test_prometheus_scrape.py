"""A real Prometheus (Debian's /usr/bin/prometheus, installed by ./run setup) scrapes a running suite and
RabbitMQ's own exporter, with the shipped alert rules: an alert fires once a department's consumer stops with
work waiting, and every query of every shipped dashboard names only series Prometheus really holds.

The rules are a test copy of deploy/prometheus/rules with every `for:` cut to 0s (the shipped ones wait
minutes; promtool's unit tests, tests/unit/test_alert_rules.py, check those), evaluated every second."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import yaml

from shared.clock import ManualClock
from tests.support import TOWN_A, VALID_PHONE, wait_for

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules"
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
PROMETHEUS = os.environ.get("TONGBAN_PROMETHEUS", "/usr/bin/prometheus")
RABBITMQ_EXPORTER = os.environ.get("TONGBAN_TEST_RABBITMQ_PROMETHEUS", "127.0.0.1:15692")
RS_MATERIALS = ["idcard", "form", "receipt"]  # RS-0008: renshe at the town, 15 working days promised
# Grafana's variables, as a query would run: every town and department, Grafana's own intervals
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h", "$town": ".*",
                     "$department": ".*"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prometheus:
    """One Prometheus server in a temporary folder, on a free port, stopped at the end of the test."""

    def __init__(self, folder: Path, targets: list[str]):
        if not os.access(PROMETHEUS, os.X_OK):
            pytest.fail(f"{PROMETHEUS} is missing: ./run setup installs it (as root: apt-get install -y prometheus)")
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        rules = folder / "tongban.rules.yml"
        rules.write_text(yaml.safe_dump(_without_waiting(yaml.safe_load((RULES / "tongban.rules.yml").read_text()))))
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules)],
            "scrape_configs": [
                {"job_name": "tongban", "static_configs": [{"targets": targets}]},
                {"job_name": "rabbitmq", "static_configs": [{"targets": [RABBITMQ_EXPORTER]}]},
                {"job_name": "rabbitmq-queues", "metrics_path": "/metrics/detailed",
                 "params": {"family": ["queue_coarse_metrics", "queue_consumer_count"]},
                 "static_configs": [{"targets": [RABBITMQ_EXPORTER]}]},
            ]}
        (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.url = f"http://127.0.0.1:{_free_port()}"
        self.log = open(folder / "prometheus.log", "wb")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={folder / 'prometheus.yml'}", f"--storage.tsdb.path={folder / 'data'}",
             f"--web.listen-address={self.url.removeprefix('http://')}", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.started = time.time()
        wait_for(self._ready, timeout=30, what="Prometheus ready")

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"Prometheus ended: {(self.folder / 'prometheus.log').read_text()[-2000:]}")
        try:
            return requests.get(f"{self.url}/-/ready", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    def api(self, path: str, **params):
        r = requests.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = r.json()
        assert body["status"] == "success", f"{path} {params}: {body}"
        return body["data"]

    def query(self, expr: str) -> list:
        return self.api("query", query=expr)["result"]

    def firing(self, alertname: str) -> list[dict]:
        return [a["labels"] for a in self.api("alerts")["alerts"]
                if a["labels"]["alertname"] == alertname and a["state"] == "firing"]

    def holds(self, name: str) -> bool:
        return bool(self.api("series", **{"match[]": name, "start": str(self.started - 60)}))

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def _without_waiting(rules: dict) -> dict:
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "0s"
    return rules


def metric_names(expr: str) -> set[str]:
    """The metric names a dashboard query uses (parsed by promql-parser, Grafana's variables filled in)."""
    import promql_parser

    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    names: set[str] = set()

    def walk(node):
        if isinstance(node, promql_parser.VectorSelector):
            name = node.name or next((m.value for m in node.matchers.matchers if m.name == "__name__"), None)
            assert name, f"a selector without a metric name: {node}"
            names.add(name)
            return
        for attr in ("expr", "lhs", "rhs", "param", "vector_selector"):
            child = getattr(node, attr, None)
            if child is not None:
                walk(child)
        for arg in getattr(node, "args", None) or []:
            walk(arg)

    walk(promql_parser.parse(expr))
    return names


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel or variable, PromQL) of every shipped dashboard."""
    out = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text(encoding="utf-8"))
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                out.append((path.name, panel["title"], target["expr"]))
        for variable in board.get("templating", {}).get("list", []):
            if variable["type"] == "query":
                query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
                m = re.fullmatch(r"label_values\((.+),\s*\w+\)", query)
                assert m, f"{path.name} ${variable['name']}: only label_values(SERIES, LABEL) is checked: {query}"
                out.append((path.name, f"${variable['name']}", m.group(1)))
    return out


def test_metric_names_are_read_from_the_syntax_tree():
    expr = ('histogram_quantile(0.95, sum by (route, le) (rate(tongban_http_request_seconds_bucket[$__rate_interval])))'
            ' / on (instance) group_left (tongban_instance) max_over_time(tongban_instance_info{town=~"$town"}[5m:1m])'
            ' > bool 2 unless -{__name__="up", job="tongban"}')
    assert metric_names(expr) == {"tongban_http_request_seconds_bucket", "tongban_instance_info", "up"}
    assert len(dashboard_queries()) > 40


def _families(city, instance) -> dict:
    """{(name, sorted labels): value} of an instance's /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    text = city.call("GET", instance, "/metrics").text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def _seed(city, clock: ManualClock) -> dict:
    """Cases, a bad rating, a complaint and a dead letter; then a month passes on evaluation's clock (the case
    goes red, the rectification and the complaint overdue). Returns what was made."""
    open_case = city.submit("RS-0008", materials=RS_MATERIALS).json()["case_number"]
    rated = city.submit("RS-0008", materials=RS_MATERIALS).json()["case_number"]
    assert city.case(rated)["case_number"] == rated
    window = city.token("clerk", f"town:{TOWN_A}", "window-device-1")

    def rate():
        r = city.call("POST", "evaluation", "/ratings", window, {"case_number": rated, "level": 5,
                                                                 "channel": "window_device", "stage": "acceptance"})
        return r.status_code in (200, 201) and r.json()

    assert wait_for(rate, what="a bad rating recorded")["rectification_id"]
    complaint = {"subject": "窗口态度", "text": "办理时被推诿", "town": TOWN_A, "channel": "window",
                 "complainant": {"name": "李四", "phone": VALID_PHONE}}
    assert city.call("POST", "evaluation", "/complaints", window, complaint).status_code == 201
    standing = _families(city, "evaluation")
    assert standing[("tongban_rectifications_open", (("state", "open"), ("town", TOWN_A)))] == 1
    assert standing[("tongban_complaints_open", (("status", "received"), ("town", TOWN_A)))] == 1
    city.publish_raw("not a message", f"case.accepted.{TOWN_A}")  # malformed: dead-lettered at once
    dlq = f"{city.queue('evaluation', 'events')}.dlq"
    wait_for(lambda: city.queue_depth(dlq) == 1, what="the malformed message dead-lettered")
    clock.advance(days=40)

    def figures():  # evaluation's gauges by town and department, from its read models
        found = _families(city, "evaluation")
        return {name: sum(v for (n, labels), v in found.items() if n == name and dict(labels).get("town") == TOWN_A
                          and dict(labels).get("department") == "renshe" and dict(labels).get("colour", "red") == "red")
                for name in ("tongban_open_cases", "tongban_open_warnings", "tongban_forecast_breaches")}

    # both cases open and past their deadline: red; the forecast counts those still due, none here
    wait_for(lambda: figures() == {"tongban_open_cases": 2, "tongban_open_warnings": 2, "tongban_forecast_breaches": 0}
             and any(n == "tongban_forecast_breaches" for n, _labels in _families(city, "evaluation")),
             what="two open cases, both red, by town and department")
    return {"open_case": open_case, "dlq": dlq}


@pytest.mark.full  # long: a real Prometheus; the rules' promtool tests stay in CI
def test_prometheus_scrapes_the_suite_fires_on_a_stopped_consumer_and_holds_every_dashboard_series(city, tmp_path):
    clock = ManualClock(datetime.now(UTC) - timedelta(minutes=1))
    city.start(f"intake-{TOWN_A}", "approval-renshe", "notify")
    city.start("evaluation", build={"clock": clock},
               extra={"supervision_interval": 0.3, "figures_refresh_seconds": 0.5})
    made = _seed(city, clock)
    work = city.queue("approval-renshe", "work")
    targets = [s.base_url.removeprefix("http://") for s in city.layout
               if s.instance in (f"intake-{TOWN_A}", "approval-renshe", "notify", "evaluation")]

    prometheus = Prometheus(tmp_path / "prometheus", targets)
    try:
        up = f'count(up{{job="tongban"}} == 1) == {len(targets)} and on () count(up{{job=~"rabbitmq.*"}} == 1) == 2'
        wait_for(lambda: prometheus.query(up), timeout=20,
                 what=f"every target scraped (the suite's, and RabbitMQ's prometheus plugin at {RABBITMQ_EXPORTER}: "
                      "./run setup enables it)")
        served = f'rabbitmq_detailed_queue_consumers{{queue="{work}"}} > 0'
        wait_for(lambda: prometheus.query(served), timeout=20, what=f"{work} seen with its consumer")
        assert not [a for a in prometheus.firing("TongbanQueueWithoutConsumer") if a["queue"] == work]

        # the department's consumer stops; the window routes more work to it
        city.stop("approval-renshe")
        assert city.submit("RS-0008", materials=RS_MATERIALS).status_code == 201
        fired = wait_for(lambda: [a for a in prometheus.firing("TongbanQueueWithoutConsumer") if a["queue"] == work],
                         timeout=40, what=f"TongbanQueueWithoutConsumer for {work}")
        assert fired[0]["severity"] == "page" and fired[0]["vhost"] == "/"
        # the seeded troubles are alerts too
        assert wait_for(lambda: [a for a in prometheus.firing("TongbanDeadLetters") if a["queue"] == made["dlq"]],
                        timeout=20, what="TongbanDeadLetters")
        red = wait_for(lambda: prometheus.firing("TongbanRedDeadlineWarnings"), timeout=20, what="red warnings")
        assert {(a["town"], a["department"]) for a in red} == {(TOWN_A, "renshe")}
        assert wait_for(lambda: prometheus.firing("TongbanComplaintsOverdue"), what="complaints overdue")
        assert wait_for(lambda: prometheus.firing("TongbanRectificationsOverdue"), what="rectifications overdue")
        stopped = wait_for(lambda: prometheus.firing("TongbanServiceDown"), timeout=20, what="the stopped one down")
        assert [a["instance"] for a in stopped] == [city.url("approval-renshe").removeprefix("http://")]

        # every dashboard query: accepted by Prometheus, and each series it names held
        queries = dashboard_queries()
        for _board, _title, expr in queries:
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            prometheus.query(expr)  # a query Prometheus refuses fails here, saying which
        names = {name: (board, title) for board, title, expr in queries for name in metric_names(expr)}
        missing = {}
        deadline = time.monotonic() + 15  # a counter appears with its first event: give slow ones a moment
        while True:
            missing = {n: where for n, where in names.items() if not prometheus.holds(n)}
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert not missing, f"dashboard series Prometheus does not hold: {missing}"
    finally:
        prometheus.stop()
