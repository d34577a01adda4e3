"""The deployment files agree with the code: variable names, the host layout, probes, scrape annotations.

No Docker or Kubernetes here: the files are parsed as YAML (and the Dockerfile as text) and checked
against shared/config.py and tongban.runtime.host_layout, so a typo in a variable name, a missing
instance or a probe on the wrong path fails the unit tests instead of a deployment.
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
import yaml

with warnings.catch_warnings():  # nameko imports eventlet, which warns that it is deprecated
    warnings.simplefilter("ignore")
    from tongban.runtime import host_layout

from shared.config import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
K8S = ROOT / "deploy" / "k8s"
INIT_SQL = ROOT / "deploy" / "postgres" / "init.sql"
ENABLED_PLUGINS = ROOT / "deploy" / "rabbitmq" / "enabled_plugins"

VAR_RE = re.compile(r"TONGBAN_[A-Z_]+")
# read by the CLI (tongban/cli.py) to configure logging, not by Settings
CLI_VARS = {"TONGBAN_LOG_LEVEL"}
CONTAINER_PORT = 8000

LAYOUT = host_layout(Settings(service="intake", instance="layout"))
INSTANCES = [s.instance for s in LAYOUT]


def known_variables() -> set[str]:
    return set(VAR_RE.findall((ROOT / "shared" / "config.py").read_text(encoding="utf-8"))) | CLI_VARS


def unknown_variables(text: str, known: set[str]) -> set[str]:
    """TONGBAN_* names in `text` that nothing reads."""
    return set(VAR_RE.findall(text)) - known


def k8s_files() -> list[Path]:
    return sorted(p for p in K8S.iterdir() if p.suffix in (".yaml", ".yml"))


def k8s_docs() -> list[dict]:
    docs = []
    for path in k8s_files():
        docs += [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    return docs


def of_kind(kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in k8s_docs() if d.get("kind") == kind}


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def database_name(instance: str) -> str:
    return instance.replace("-", "_")


def deployment_problems(dep: dict) -> list[str]:
    """What a Deployment lacks: /health probes, scrape annotations, resources."""
    problems = []
    pod = dep["spec"]["template"]
    annotations = pod["metadata"].get("annotations") or {}
    if annotations.get("prometheus.io/scrape") != "true":
        problems.append("prometheus.io/scrape is not \"true\"")
    if annotations.get("prometheus.io/path") != "/metrics":
        problems.append("prometheus.io/path is not /metrics")
    containers = pod["spec"]["containers"]
    ports = {p.get("name"): p["containerPort"] for c in containers for p in c.get("ports", [])}
    if str(annotations.get("prometheus.io/port")) not in {str(p) for p in ports.values()}:
        problems.append(f"prometheus.io/port {annotations.get('prometheus.io/port')!r} is no container port")
    for c in containers:
        # readiness asks /health (503 when degraded); liveness and startup ask /health/live (200 while serving)
        for probe, path in (("readinessProbe", "/health"), ("livenessProbe", "/health/live"),
                            ("startupProbe", "/health/live")):
            if probe == "startupProbe" and probe not in c:
                continue  # optional, but if there is one it asks /health/live too
            get = (c.get(probe) or {}).get("httpGet") or {}
            if get.get("path") != path:
                problems.append(f"{c['name']}: {probe} is not an HTTP GET of {path}")
            elif get.get("port") not in ports and get.get("port") not in ports.values():
                problems.append(f"{c['name']}: {probe} port {get.get('port')!r} is no container port")
        res = c.get("resources") or {}
        for part in ("requests", "limits"):
            if not {"cpu", "memory"} <= set(res.get(part) or {}):
                problems.append(f"{c['name']}: resources.{part} needs cpu and memory")
    return problems


def container_env(dep: dict) -> dict[str, dict]:
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e for e in container.get("env", [])}


# --- the checkers themselves catch what they are for --------------------------------------------

def test_config_names_are_extracted():
    known = known_variables()
    assert {"TONGBAN_AMQP_URL", "TONGBAN_DATABASE_URL", "TONGBAN_SECRET", "TONGBAN_TOWN",
            "TONGBAN_DEPARTMENT", "TONGBAN_INSTANCE", "TONGBAN_HTTP_HOST", "TONGBAN_HTTP_PORT"} <= known


def test_unknown_variable_checker_catches_a_typo():
    text = "TONGBAN_TOWN: '1'\nTONGBAN_DEPARTMNT: minzheng\n"
    assert unknown_variables(text, known_variables()) == {"TONGBAN_DEPARTMNT"}


def test_deployment_checker_catches_a_wrong_probe_and_missing_annotations():
    dep = {"spec": {"template": {
        "metadata": {"annotations": {"prometheus.io/port": "8000"}},
        "spec": {"containers": [{
            "name": "x", "ports": [{"name": "http", "containerPort": 8000}],
            "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
            "livenessProbe": {"httpGet": {"path": "/health/live", "port": "http"}},
            "resources": {"requests": {"cpu": "1", "memory": "1Mi"}, "limits": {"cpu": "1", "memory": "1Mi"}},
        }]}}}}
    problems = deployment_problems(dep)
    assert any("readinessProbe" in p for p in problems)
    assert any("prometheus.io/scrape" in p for p in problems)
    assert not any("livenessProbe" in p for p in problems)


def test_the_layout_is_the_one_these_files_describe():
    assert INSTANCES == ["intake-320583101", "intake-320583102", "approval-minzheng", "approval-renshe",
                         "agent", "notify", "evaluation"]


# --- variable names ---------------------------------------------------------------------------

@pytest.mark.parametrize("path", [COMPOSE, DOCKERFILE, *k8s_files()], ids=lambda p: p.name)
def test_every_tongban_variable_is_one_the_code_reads(path):
    assert unknown_variables(path.read_text(encoding="utf-8"), known_variables()) == set()


def test_compose_and_k8s_give_each_instance_the_same_variable_names():
    services = compose()["services"]
    config = next(iter(of_kind("ConfigMap").values()))
    deployments = of_kind("Deployment")
    for instance in INSTANCES:
        in_compose = {k for k in services[instance]["environment"] if k.startswith("TONGBAN_")}
        in_k8s = set(container_env(deployments[instance])) | set(config["data"])
        assert in_compose == in_k8s, instance


# --- docker-compose -----------------------------------------------------------------------------

def test_compose_runs_every_instance_of_the_host_layout_and_nothing_else():
    assert set(compose()["services"]) == set(INSTANCES) | {"rabbitmq", "postgres"}


@pytest.mark.parametrize("settings", LAYOUT, ids=lambda s: s.instance)
def test_compose_instance(settings):
    svc = compose()["services"][settings.instance]
    env = svc["environment"]
    assert svc["build"]["context"] == "."
    assert svc["command"][:2] == ["serve", settings.service]
    assert env["TONGBAN_INSTANCE"] == settings.instance
    assert env["TONGBAN_HTTP_HOST"] == "0.0.0.0"
    assert str(env["TONGBAN_HTTP_PORT"]) == str(CONTAINER_PORT)
    assert env["TONGBAN_SECRET"].startswith("${TONGBAN_SECRET:?")
    assert env["TONGBAN_AMQP_URL"].startswith("amqp://") and "@rabbitmq:5672" in env["TONGBAN_AMQP_URL"]
    assert env["TONGBAN_DATABASE_URL"].startswith("postgresql://")
    assert env["TONGBAN_DATABASE_URL"].rsplit("/", 1)[1] == database_name(settings.instance)
    assert svc["ports"] == [f"{settings.http_port}:{CONTAINER_PORT}"]
    assert svc["depends_on"] == {"rabbitmq": {"condition": "service_healthy"},
                                 "postgres": {"condition": "service_healthy"}}
    if settings.service == "intake":
        assert str(env["TONGBAN_TOWN"]) == settings.town
    else:
        assert "TONGBAN_TOWN" not in env
    if settings.service == "approval":
        assert env["TONGBAN_DEPARTMENT"] == settings.department
    else:
        assert "TONGBAN_DEPARTMENT" not in env


def test_compose_instances_share_one_env_anchor():
    text = COMPOSE.read_text(encoding="utf-8")
    assert "x-tongban-env: &tongban-env" in text
    assert text.count("<<: *tongban-env") == len(INSTANCES)


def test_compose_rabbitmq_has_the_prometheus_plugin_and_a_healthcheck():
    rabbit = compose()["services"]["rabbitmq"]
    assert rabbit["image"] == "rabbitmq:3.10-management"
    assert "./deploy/rabbitmq/enabled_plugins:/etc/rabbitmq/enabled_plugins:ro" in rabbit["volumes"]
    assert ENABLED_PLUGINS.read_text(encoding="utf-8").strip() == "[rabbitmq_management,rabbitmq_prometheus]."
    assert rabbit["healthcheck"]["test"] == ["CMD", "rabbitmq-diagnostics", "-q", "ping"]


def test_compose_postgres_creates_one_database_per_instance():
    pg = compose()["services"]["postgres"]
    assert pg["image"] == "postgres:15"
    assert any(v.startswith("./deploy/postgres/init.sql:/docker-entrypoint-initdb.d/") for v in pg["volumes"])
    assert "healthcheck" in pg
    created = re.findall(r"^\s*CREATE DATABASE\s+(\w+)\s*;", INIT_SQL.read_text(encoding="utf-8"),
                         re.IGNORECASE | re.MULTILINE)
    assert sorted(created) == sorted(database_name(i) for i in INSTANCES)


# --- Dockerfile --------------------------------------------------------------------------------

def test_dockerfile():
    text = DOCKERFILE.read_text(encoding="utf-8")
    lines = [ln.strip() for ln in text.splitlines()]
    assert "FROM python:3.11-slim-bookworm" in lines
    assert any(re.match(r"RUN pip install \.(\s|$)", ln) for ln in lines)
    users = [ln.split(None, 1)[1] for ln in lines if ln.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert 'ENTRYPOINT ["tongban"]' in lines
    assert 'CMD ["serve", "intake"]' in lines
    assert f"EXPOSE {CONTAINER_PORT}" in lines
    healthcheck = text[text.index("HEALTHCHECK"):]
    assert "urllib" in healthcheck and "/health" in healthcheck


# --- Kubernetes ----------------------------------------------------------------------------------

def test_every_k8s_document_parses_and_has_a_kind():
    docs = k8s_docs()
    assert docs
    for doc in docs:
        assert doc.get("apiVersion") and doc.get("kind"), doc


def test_k8s_runs_every_instance_of_the_host_layout_and_nothing_else():
    assert set(of_kind("Deployment")) == set(INSTANCES)
    assert set(of_kind("Service")) == set(INSTANCES)


@pytest.mark.parametrize("instance", INSTANCES)
def test_k8s_deployment_has_probes_annotations_and_resources(instance):
    assert deployment_problems(of_kind("Deployment")[instance]) == []


@pytest.mark.parametrize("settings", LAYOUT, ids=lambda s: s.instance)
def test_k8s_deployment_env(settings):
    dep = of_kind("Deployment")[settings.instance]
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    env = container_env(dep)
    assert container["args"][:2] == ["serve", settings.service]
    assert env["TONGBAN_INSTANCE"]["value"] == settings.instance
    if settings.service == "intake":
        assert str(env["TONGBAN_TOWN"]["value"]) == settings.town
    else:
        assert "TONGBAN_TOWN" not in env
    if settings.service == "approval":
        assert env["TONGBAN_DEPARTMENT"]["value"] == settings.department
    else:
        assert "TONGBAN_DEPARTMENT" not in env
    # secrets come from the Secret, never as literal values
    for name in ("TONGBAN_SECRET", "TONGBAN_AMQP_URL", "TONGBAN_DATABASE_URL"):
        assert "value" not in env[name] and env[name]["valueFrom"]["secretKeyRef"], name
    config_maps = {ref["configMapRef"]["name"] for ref in container.get("envFrom", []) if "configMapRef" in ref}
    assert config_maps and config_maps <= set(of_kind("ConfigMap"))


def test_k8s_secret_refs_resolve_in_the_example_secret():
    secrets = of_kind("Secret")
    for instance, dep in of_kind("Deployment").items():
        for name, entry in container_env(dep).items():
            ref = (entry.get("valueFrom") or {}).get("secretKeyRef")
            if not ref:
                continue
            assert ref["name"] in secrets, (instance, name)
            secret = secrets[ref["name"]]
            keys = set(secret.get("stringData") or {}) | set(secret.get("data") or {})
            assert ref["key"] in keys, (instance, name, ref["key"])
        db_key = container_env(dep)["TONGBAN_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
        url = secrets[db_key["name"]]["stringData"][db_key["key"]]
        assert url.rsplit("/", 1)[1] == database_name(instance)


def test_k8s_configmap_listens_on_the_container_port():
    (config,) = of_kind("ConfigMap").values()
    assert config["data"]["TONGBAN_HTTP_HOST"] == "0.0.0.0"
    assert str(config["data"]["TONGBAN_HTTP_PORT"]) == str(CONTAINER_PORT)
    assert all(isinstance(v, str) for v in config["data"].values()), "ConfigMap values must be strings"


@pytest.mark.parametrize("instance", INSTANCES)
def test_k8s_service_selects_its_deployment(instance):
    dep = of_kind("Deployment")[instance]
    svc = of_kind("Service")[instance]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    selector = svc["spec"]["selector"]
    assert selector.items() <= labels.items()
    assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    port_names = {p.get("name") for p in container["ports"]} | {p["containerPort"] for p in container["ports"]}
    assert all(p["targetPort"] in port_names for p in svc["spec"]["ports"])


def test_k8s_everything_is_in_one_namespace():
    (ns,) = of_kind("Namespace")
    for doc in k8s_docs():
        if doc["kind"] not in ("Namespace", "Kustomization"):
            assert doc["metadata"].get("namespace") == ns, (doc["kind"], doc["metadata"]["name"])


def test_kustomization_lists_exactly_the_manifests_present():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed)), "a resource is listed twice"
    present = {p.name for p in k8s_files()} - {"kustomization.yaml"}
    examples = {name for name in present if ".example." in name}
    # example files hold placeholders: they are never applied with `kubectl apply -k`
    assert set(listed) == present - examples
    assert examples == {"secret.example.yaml"}
