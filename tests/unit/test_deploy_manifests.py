"""The deployment files agree with the code: variable names, the host layout, probes, scrape annotations,
the bus set-up step and the broker credentials each instance gets.

No Docker or Kubernetes cluster here: the k8s overlay is built with `kubectl kustomize`, the compose file
parsed as YAML (and the Dockerfile as text), and checked against shared/config.py and tongban.runtime.host_layout
(for the sample city's towns and departments), so a typo in a variable name, a missing instance or a probe on the
wrong path fails the unit tests instead of a deployment. Where it matters the environment a container would get
is resolved (compose interpolation, ConfigMap, the example Secrets and the ones the operators make) and read with
`Settings.from_env`, as the container would: an instance must connect as the user, with the password, that the
set-up gave its service kind (`tongban bus users` on one host; the Messaging Topology Operator's User in k8s).
"""
from __future__ import annotations

import os
import re
import shlex
import warnings
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

with warnings.catch_warnings():  # nameko imports eventlet, which warns that it is deprecated
    warnings.simplefilter("ignore")
    from tongban.runtime import host_layout

from shared import busauth, registry
from shared.catalog import load_catalog
from shared.config import BUS_PASSWORD_VARIABLES, Settings, secret_problems
from tests.unit.deploy_support import CATALOG, COMPOSE, K8S, OVERLAY, ROOT, built, example_secrets

DOCKERFILE = ROOT / "Dockerfile"
INIT_SQL = ROOT / "deploy" / "postgres" / "init.sql"
ENABLED_PLUGINS = ROOT / "deploy" / "rabbitmq" / "enabled_plugins"

VAR_RE = re.compile(r"TONGBAN_[A-Z_]+")
# a name shared/config.py reads is quoted there; the CLI reads a few more itself (log level, management URL)
CONFIG_NAME_RE = re.compile(r"[\"'](TONGBAN_[A-Z0-9_]+)[\"']")
ENVIRON_READ_RE = re.compile(r"(?:environ\.get\(|environ\[|getenv\()\s*[\"'](TONGBAN_[A-Z0-9_]+)[\"']")
CODE_DIRS = ("shared", "services", "tongban")
CONTAINER_PORT = 8000
PASSWORD_VARIABLES = set(BUS_PASSWORD_VARIABLES.values())
CATALOG_IN_CONTAINER = "/etc/tongban/catalog/catalog.yaml"  # where the set-up finds the city's catalogue
LOAD_CATALOG = ["tongban", "catalog", "load", CATALOG_IN_CONTAINER]
BUS_SETUP_STEPS = [["tongban", "bus", "users"], LOAD_CATALOG, ["tongban", "bus", "declare"]]
# in k8s the operator makes the users: the Job loads the catalogue and declares what no operator resource does
K8S_BUS_SETUP_STEPS = [LOAD_CATALOG, ["tongban", "bus", "declare"]]
CONFIG = "tongban-config"
# what the compose file requires from the shell (`${NAME:?...}`), as a test gives it
COMPOSE_SHELL = {"TONGBAN_TOKEN_PUBLIC_KEYS": '{"keys": []}',
                 "TONGBAN_TOKEN_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----",
                 "TONGBAN_NOTIFY_TOKEN": "notify-token-under-test",
                 "TONGBAN_BUS_SECRET": "bus-secret-under-test", "GRAFANA_ADMIN_PASSWORD": "grafana-under-test"}

# the sample city, as `tongban up` would lay it out on one host
TOWNS, DEPARTMENTS = registry.scope_of(load_catalog(CATALOG))
LAYOUT = host_layout(Settings(service="intake", instance="layout"), towns=TOWNS, departments=DEPARTMENTS)
INSTANCES = [s.instance for s in LAYOUT]
INSTANCE_LABEL = "app.kubernetes.io/instance"


def known_variables() -> set[str]:
    """The TONGBAN_* names the code reads: Settings.from_env's, and the ones read from os.environ."""
    names = set(CONFIG_NAME_RE.findall((ROOT / "shared" / "config.py").read_text(encoding="utf-8")))
    for folder in CODE_DIRS:
        for path in (ROOT / folder).rglob("*.py"):
            names |= set(ENVIRON_READ_RE.findall(path.read_text(encoding="utf-8")))
    return names


def unknown_variables(text: str, known: set[str]) -> set[str]:
    """TONGBAN_* names in `text` that nothing reads."""
    return set(VAR_RE.findall(text)) - known


def k8s_files() -> list[Path]:
    return sorted(p for p in K8S.rglob("*") if p.suffix in (".yaml", ".yml"))


def k8s_docs() -> list[dict]:
    """The overlay as `kubectl apply -k` sends it."""
    return built()


def of_kind(kind: str) -> dict[str, dict]:
    """Built objects of a kind by name; Deployments and Services by the instance they run."""
    docs = [d for d in k8s_docs() if d.get("kind") == kind]
    if kind in ("Deployment", "Service"):
        return {d["metadata"]["labels"][INSTANCE_LABEL]: d for d in docs}
    return {d["metadata"]["name"]: d for d in docs}


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


def password_problems(names: set[str], kind: str) -> list[str]:
    """What is wrong with the broker credentials an instance of `kind` is given (by variable name): it
    needs its own kind's password and nothing that opens another kind's user."""
    problems = []
    own = BUS_PASSWORD_VARIABLES[kind]
    if own not in names:
        problems.append(f"{own} is missing")
    problems += [f"{name} is another kind's password" for name in sorted(names & PASSWORD_VARIABLES - {own})]
    if "TONGBAN_BUS_SECRET" in names:
        problems.append("TONGBAN_BUS_SECRET derives every kind's password")
    return problems


def setup_steps(argv: list[str]) -> list[list[str]]:
    """The commands of `sh -c "a && exec b"`, each as words (`exec` dropped); anything else as it is."""
    if argv[:2] != ["sh", "-c"] or len(argv) != 3:
        return [argv]
    steps = []
    for part in argv[2].split("&&"):
        words = shlex.split(part)
        steps.append(words[1:] if words[:1] == ["exec"] else words)
    return steps


def interpolate(value) -> str:
    """Compose's `${NAME}`, `${NAME:-default}`, `${NAME:?error}`, with COMPOSE_SHELL as the shell."""
    def one(m: re.Match) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if name in COMPOSE_SHELL:
            return COMPOSE_SHELL[name]
        assert op in (":-", "-"), f"${{{name}}} has no default and the test does not give it"
        return arg
    return re.sub(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}", one, str(value))


def compose_env(service: str) -> dict[str, str]:
    return {k: interpolate(v) for k, v in (compose()["services"][service].get("environment") or {}).items()}


def pod_container(doc: dict) -> dict:
    (container,) = doc["spec"]["template"]["spec"]["containers"]
    return container


def resolved_env(doc: dict) -> dict[str, str]:
    """The environment a Deployment's or Job's container gets: its ConfigMaps, then its own env
    (which wins), secrets taken from the example Secrets and the operators'."""
    container = pod_container(doc)
    config_maps, secrets = of_kind("ConfigMap"), example_secrets()
    env = {}
    for ref in container.get("envFrom", []):
        env.update(config_maps[ref["configMapRef"]["name"]]["data"])
    for entry in container.get("env", []):
        if "value" in entry:
            env[entry["name"]] = str(entry["value"])
        else:
            ref = entry["valueFrom"]["secretKeyRef"]
            env[entry["name"]] = secrets[ref["name"]][ref["key"]]
    return env


def settings_in(env: dict[str, str], service: str, monkeypatch, **overrides) -> Settings:
    """Settings.from_env as a process with exactly these TONGBAN_* variables would read them."""
    for name in list(os.environ):
        if name.startswith("TONGBAN_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings.from_env(service, **overrides)


def bus_setup_settings(env: dict[str, str], monkeypatch) -> Settings:
    """What `tongban bus users|declare` (tongban/bus_cmd.py) works with in that environment."""
    return settings_in(env, "tongban", monkeypatch, instance="tongban")


def assert_connects_as_its_kind(instance: Settings, admin: Settings) -> None:
    """The instance connects to the broker the set-up step prepared, as the user it created for the
    instance's kind, with the password it gave that user, on the same bus."""
    url = urlsplit(instance.service_amqp_url)
    assert instance.bus_users, "TONGBAN_BUS_USERS is off: the instance would ignore its kind's user"
    assert url.username == busauth.user_name(admin.bus_users, instance.service)
    assert url.password == admin.bus_password(instance.service)
    assert (url.hostname, url.port) == (urlsplit(admin.amqp_url).hostname, urlsplit(admin.amqp_url).port)
    assert urlsplit(instance.amqp_url).password is None, "the instance's TONGBAN_AMQP_URL carries a password"
    assert (instance.bus_prefix, instance.delivery_limit, instance.retry_delays) == \
        (admin.bus_prefix, admin.delivery_limit, admin.retry_delays)


# --- the checkers themselves catch what they are for --------------------------------------------

def test_config_names_are_extracted():
    known = known_variables()
    assert {"TONGBAN_AMQP_URL", "TONGBAN_DATABASE_URL", "TONGBAN_TOKEN_PUBLIC_KEYS", "TONGBAN_TOWN",
            "TONGBAN_DEPARTMENT", "TONGBAN_INSTANCE", "TONGBAN_HTTP_HOST", "TONGBAN_HTTP_PORT"} <= known


def test_names_the_cli_and_the_bus_read_are_known():
    known = known_variables()
    assert {"TONGBAN_LOG_LEVEL", "TONGBAN_MANAGEMENT_URL", "TONGBAN_BUS_USERS", "TONGBAN_BUS_SECRET",
            "TONGBAN_RETRY_DELAYS"} | PASSWORD_VARIABLES <= known
    assert "TONGBAN_BUS_PASSWORD_" not in known and "TONGBAN_BUS_PASSWORD" not in known


def test_unknown_variable_checker_catches_a_typo():
    text = "TONGBAN_TOWN: '1'\nTONGBAN_DEPARTMNT: minzheng\nTONGBAN_BUS_PASSWORD_APROVAL: x\n"
    assert unknown_variables(text, known_variables()) == {"TONGBAN_DEPARTMNT", "TONGBAN_BUS_PASSWORD_APROVAL"}


def test_password_checker_catches_a_missing_a_foreign_and_the_shared_password():
    assert password_problems({"TONGBAN_TOKEN_PUBLIC_KEYS", "TONGBAN_BUS_PASSWORD_AGENT"}, "agent") == []
    assert password_problems({"TONGBAN_TOKEN_PUBLIC_KEYS"}, "agent") == ["TONGBAN_BUS_PASSWORD_AGENT is missing"]
    assert password_problems({"TONGBAN_BUS_PASSWORD_AGENT", "TONGBAN_BUS_PASSWORD_INTAKE"}, "agent") == \
        ["TONGBAN_BUS_PASSWORD_INTAKE is another kind's password"]
    assert password_problems({"TONGBAN_BUS_PASSWORD_AGENT", "TONGBAN_BUS_SECRET"}, "agent") == \
        ["TONGBAN_BUS_SECRET derives every kind's password"]


def test_setup_steps_reads_a_shell_chain_and_keeps_anything_else_whole():
    assert setup_steps(["sh", "-c", "tongban bus users && exec tongban bus declare"]) == \
        [["tongban", "bus", "users"], ["tongban", "bus", "declare"]]
    # `;` would run declare after a failed `users`: it is not the chain the tests accept
    assert setup_steps(["sh", "-c", "tongban bus users; tongban bus declare"]) != \
        [["tongban", "bus", "users"], ["tongban", "bus", "declare"]]
    assert setup_steps(["bus", "users"]) == [["bus", "users"]]


def test_connection_check_catches_a_wrong_password_and_users_turned_off(monkeypatch):
    admin = bus_setup_settings({"TONGBAN_AMQP_URL": "amqp://admin:pw@broker:5672//",
                                "TONGBAN_BUS_SECRET": "s"}, monkeypatch)
    good = {"TONGBAN_AMQP_URL": "amqp://broker:5672//", "TONGBAN_BUS_SECRET": "s"}
    assert_connects_as_its_kind(settings_in(good, "notify", monkeypatch), admin)
    for bad in ({**good, "TONGBAN_BUS_SECRET": "other"}, {**good, "TONGBAN_BUS_USERS": "off"},
                {**good, "TONGBAN_BUS_PASSWORD_NOTIFY": "x"}, {**good, "TONGBAN_AMQP_URL": "amqp://elsewhere//"},
                {**good, "TONGBAN_RETRY_DELAYS": "5"}):
        with pytest.raises(AssertionError):
            assert_connects_as_its_kind(settings_in(bad, "notify", monkeypatch), admin)


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
    """The sample city: its twelve towns' windows and fourteen departments, as `tongban up` would run them."""
    assert INSTANCES == ["portal", *(f"intake-{t}" for t in TOWNS), *(f"approval-{d}" for d in DEPARTMENTS),
                         "agent", "notify", "evaluation"]
    assert (len(TOWNS), len(DEPARTMENTS)) == (12, 14)
    assert INSTANCES == [s.instance for s in registry.deployment_instances(TOWNS, DEPARTMENTS)]


# --- variable names ---------------------------------------------------------------------------

@pytest.mark.parametrize("path", [COMPOSE, DOCKERFILE, *k8s_files()], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_tongban_variable_is_one_the_code_reads(path):
    assert unknown_variables(path.read_text(encoding="utf-8"), known_variables()) == set()


@pytest.mark.parametrize("settings", LAYOUT, ids=lambda s: s.instance)
def test_compose_and_k8s_give_each_instance_the_same_variable_names(settings):
    """The same names, but for the broker password: on one host every instance derives its kind's from
    TONGBAN_BUS_SECRET; in k8s a pod is given only its own kind's."""
    config = of_kind("ConfigMap")[CONFIG]
    in_compose = {k for k in compose()["services"][settings.instance]["environment"] if k.startswith("TONGBAN_")}
    in_k8s = {k for k in set(container_env(of_kind("Deployment")[settings.instance])) | set(config["data"])
              if k.startswith("TONGBAN_")}
    assert "TONGBAN_BUS_SECRET" in in_compose and not in_compose & PASSWORD_VARIABLES
    assert password_problems(in_k8s, settings.service) == []
    assert in_compose - {"TONGBAN_BUS_SECRET"} == in_k8s - {BUS_PASSWORD_VARIABLES[settings.service]}


# --- docker-compose -----------------------------------------------------------------------------

def test_compose_runs_every_instance_of_the_host_layout_and_nothing_else():
    assert set(compose()["services"]) == set(INSTANCES) | {"rabbitmq", "postgres", "bus-setup", "prometheus",
                                                            "grafana"}


def test_compose_bus_setup_runs_users_loads_the_catalogue_then_declares_as_the_admin(monkeypatch):
    services = compose()["services"]
    setup = services["bus-setup"]
    # the image's ENTRYPOINT is `tongban`: the two commands are chained in a shell that stops at a failure
    assert setup["build"]["context"] == "." and setup["image"] == services[INSTANCES[0]]["image"]
    assert setup_steps(setup["entrypoint"] + setup.get("command", [])) == BUS_SETUP_STEPS
    # the catalogue it loads is the city's the file was rendered from
    (mount,) = [v for v in setup["volumes"] if v.split(":")[1] == CATALOG_IN_CONTAINER]
    assert (ROOT / mount.split(":")[0]).read_text(encoding="utf-8") == CATALOG.read_text(encoding="utf-8")
    assert str(setup.get("restart", "no")) == "no", "a one-shot service must not be restarted after it exits"
    assert setup["depends_on"] == {"rabbitmq": {"condition": "service_healthy"}}
    admin = bus_setup_settings(compose_env("bus-setup"), monkeypatch)
    url = urlsplit(admin.amqp_url)
    assert url.hostname == "rabbitmq" and url.username and url.password, "bus-setup needs the admin account"
    assert admin.bus_users, "with TONGBAN_BUS_USERS off, `tongban bus users` refuses"
    assert setup["environment"]["TONGBAN_BUS_SECRET"].startswith("${TONGBAN_BUS_SECRET:?")


@pytest.mark.parametrize("settings", LAYOUT, ids=lambda s: s.instance)
def test_compose_instance(settings, monkeypatch):
    svc = compose()["services"][settings.instance]
    env = svc["environment"]
    assert svc["build"]["context"] == "."
    assert svc["command"][:2] == ["serve", settings.service]
    assert env["TONGBAN_INSTANCE"] == settings.instance
    assert env["TONGBAN_HTTP_HOST"] == "0.0.0.0"
    assert str(env["TONGBAN_HTTP_PORT"]) == str(CONTAINER_PORT)
    assert env["TONGBAN_TOKEN_PUBLIC_KEYS"].startswith("${TONGBAN_TOKEN_PUBLIC_KEYS:?")
    # the signing key only where tokens are signed; notify's own token only in notify
    assert ("TONGBAN_TOKEN_PRIVATE_KEY" in env) == (settings.service == "portal")
    assert ("TONGBAN_NOTIFY_TOKEN" in env) == (settings.service == "notify")
    assert env["TONGBAN_BUS_SECRET"].startswith("${TONGBAN_BUS_SECRET:?")
    assert urlsplit(env["TONGBAN_AMQP_URL"]).scheme == "amqp"
    assert env["TONGBAN_DATABASE_URL"].startswith("postgresql://")
    assert env["TONGBAN_DATABASE_URL"].rsplit("/", 1)[1] == database_name(settings.instance)
    assert svc["ports"] == [f"{settings.http_port}:{CONTAINER_PORT}"]
    assert svc["depends_on"] == {"rabbitmq": {"condition": "service_healthy"},
                                 "postgres": {"condition": "service_healthy"},
                                 "bus-setup": {"condition": "service_completed_successfully"}}
    admin = bus_setup_settings(compose_env("bus-setup"), monkeypatch)
    assert_connects_as_its_kind(settings_in(compose_env(settings.instance), settings.service, monkeypatch), admin)
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
    # healthy once its listeners accept connections: bus-setup needs AMQP and the management API
    assert rabbit["healthcheck"]["test"] == ["CMD", "rabbitmq-diagnostics", "-q", "check_port_connectivity"]


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
    assert set(of_kind("Job")) == {"tongban-bus-setup"}


def k8s_bus_admin(monkeypatch) -> Settings:
    """What `tongban bus declare` in the Job works with: the operator's admin account on the cluster's broker."""
    return bus_setup_settings(resolved_env(of_kind("Job")["tongban-bus-setup"]), monkeypatch)


def k8s_kind_settings(kind: str, monkeypatch) -> Settings:
    """The set-up of a kind's user in k8s, as Settings: the User imports its name and password from a Secret
    (the operator sets them on the broker), on the broker the Job declares."""
    (user,) = [u for u in of_kind("User").values()
               if u["metadata"]["labels"].get("app.kubernetes.io/component") == kind]
    secret = example_secrets()[user["spec"]["importCredentialsSecret"]["name"]]
    admin = k8s_bus_admin(monkeypatch)
    assert secret["username"] == busauth.user_name(admin.bus_users, kind)
    return admin.with_(bus_passwords={kind: secret["password"]})


def test_k8s_bus_setup_job_declares_as_the_operators_admin(monkeypatch):
    job = of_kind("Job")["tongban-bus-setup"]
    container = pod_container(job)
    env = container_env(job)
    # `command` replaces the image's ENTRYPOINT (`tongban`): a shell chains the two steps, stopping at a failure
    assert setup_steps(container["command"]) == K8S_BUS_SETUP_STEPS and "args" not in container
    # the catalogue it loads is the city's the overlay was rendered from, from a ConfigMap kustomize makes
    (mount,) = [m for m in container["volumeMounts"] if CATALOG_IN_CONTAINER.startswith(m["mountPath"] + "/")]
    volume = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}[mount["name"]]
    catalog = of_kind("ConfigMap")[volume["configMap"]["name"]]["data"][CATALOG_IN_CONTAINER.rsplit("/", 1)[1]]
    assert catalog == CATALOG.read_text(encoding="utf-8")
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("OnFailure", "Never")
    assert container["image"] == pod_container(of_kind("Deployment")[INSTANCES[0]])["image"]
    assert {ref["configMapRef"]["name"] for ref in container.get("envFrom", [])} == {CONFIG}
    # the admin URL from the operator's Secret; no kind's password and no shared secret
    assert env["TONGBAN_AMQP_URL"]["valueFrom"]["secretKeyRef"] == {"name": "tongban-rabbitmq-default-user",
                                                                   "key": "connection_string"}
    assert not set(resolved_env(job)) & (PASSWORD_VARIABLES | {"TONGBAN_BUS_SECRET"})
    admin = k8s_bus_admin(monkeypatch)
    url = urlsplit(admin.amqp_url)
    assert url.username and url.password, "bus-setup needs the admin account"
    (cluster,) = of_kind("RabbitmqCluster").values()
    assert url.hostname.split(".")[0] == cluster["metadata"]["name"]
    res = container.get("resources") or {}
    assert all({"cpu", "memory"} <= set(res.get(part) or {}) for part in ("requests", "limits"))
    assert job["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_k8s_example_secret_gives_each_kind_its_own_password():
    secrets = example_secrets()
    passwords = [secrets[f"tongban-bus-{kind}"]["password"] for kind in busauth.KINDS]
    assert len(set(passwords)) == len(passwords), "equal example passwords would hide a kind's pod using another's"


@pytest.mark.parametrize("instance", INSTANCES)
def test_k8s_deployment_has_probes_annotations_and_resources(instance):
    assert deployment_problems(of_kind("Deployment")[instance]) == []


@pytest.mark.parametrize("settings", LAYOUT, ids=lambda s: s.instance)
def test_k8s_deployment_env(settings, monkeypatch):
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
    # secrets come from the Secret, never as literal values; of the broker passwords only its own kind's
    own = BUS_PASSWORD_VARIABLES[settings.service]
    secret_names = ("TONGBAN_TOKEN_PUBLIC_KEYS", "PGPASSWORD", own)
    secret_names += ("TONGBAN_TOKEN_PRIVATE_KEY",) if settings.service == "portal" else ()
    assert ("TONGBAN_TOKEN_PRIVATE_KEY" in env) == (settings.service == "portal"), "the signing key: portal only"
    for name in secret_names:
        assert "value" not in env[name] and env[name]["valueFrom"]["secretKeyRef"], name
    assert env[own]["valueFrom"]["secretKeyRef"] == {"name": f"tongban-bus-{settings.service}", "key": "password"}
    # the database URL names no password (libpq takes PGPASSWORD)
    assert urlsplit(env["TONGBAN_DATABASE_URL"]["value"]).password is None
    config_maps = {ref["configMapRef"]["name"] for ref in container.get("envFrom", []) if "configMapRef" in ref}
    assert config_maps == {CONFIG}
    pod_env = resolved_env(dep)
    assert password_problems(set(pod_env), settings.service) == []
    set_up = k8s_kind_settings(settings.service, monkeypatch)
    assert_connects_as_its_kind(settings_in(pod_env, settings.service, monkeypatch), set_up)


def secret_refs(doc: dict) -> list[tuple[str, str, dict]]:
    """(secret, key, the reference) for every Secret key an object reads: containers' env, and the operators'
    resources (a User's name and password, CloudNativePG's owner, the backups' keys, KEDA's broker account)."""
    refs = []

    def env_refs(node):
        if isinstance(node, dict):
            ref = node.get("secretKeyRef")
            if isinstance(ref, dict):
                refs.append((ref["name"], ref["key"], ref))
            for value in node.values():
                env_refs(value)
        elif isinstance(node, list):
            for value in node:
                env_refs(value)

    env_refs(doc)
    spec = doc.get("spec") or {}
    whole = []  # Secrets read whole: their username and password
    if doc["kind"] == "User":
        whole.append(spec["importCredentialsSecret"]["name"])
    if doc["kind"] == "Cluster":
        whole.append(spec["bootstrap"]["initdb"]["secret"]["name"])
    if doc["kind"] == "ObjectStore":
        refs += [(r["name"], r["key"], r) for r in spec["configuration"]["s3Credentials"].values()]
    if doc["kind"] == "TriggerAuthentication":
        refs += [(r["name"], r["key"], r) for r in spec["secretTargetRef"]]
    refs += [(name, key, {"name": name}) for name in whole for key in ("username", "password")]
    return refs


@pytest.mark.parametrize("settings", LAYOUT, ids=lambda s: s.instance)
def test_every_instance_would_start_outside_development_mode(settings, monkeypatch):
    """A service refuses to start without its token keys or with the published bus secret (shared.config):
    neither deployment leaves an instance to that refusal."""
    k8s = settings_in(resolved_env(of_kind("Deployment")[settings.instance]), settings.service, monkeypatch)
    assert secret_problems(k8s, env={}) == []
    on_one_host = settings_in(compose_env(settings.instance), settings.service, monkeypatch)
    assert secret_problems(on_one_host, env={}) == []
    assert secret_problems(on_one_host.with_(token_public_keys=""), env={}), "the check itself checks"


def test_k8s_secret_refs_resolve_in_the_example_secrets():
    secrets = example_secrets()
    used = set()
    for doc in k8s_docs():
        for name, key, ref in secret_refs(doc):
            where = (doc["kind"], doc["metadata"]["name"], name, key)
            assert name in secrets, where
            assert not ref.get("optional"), (*where, "a missing key must stop the pod, not start it without")
            assert key in secrets[name], where
            used.add((name, key))
    # and the example holds nothing that nothing reads (a key left over from an older layout)
    for doc in load_example_secrets():
        for key in doc["stringData"]:
            assert (doc["metadata"]["name"], key) in used, f"{doc['metadata']['name']}: key {key} is read by nothing"


def load_example_secrets() -> list[dict]:
    return [d for d in yaml.safe_load_all((OVERLAY / "secrets.example.yaml").read_text(encoding="utf-8")) if d]


def test_k8s_configmap_listens_on_the_container_port():
    config = of_kind("ConfigMap")[CONFIG]
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
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == ns, (doc["kind"], doc["metadata"]["name"])


def test_kustomization_lists_exactly_the_manifests_present():
    kustomization = yaml.safe_load((OVERLAY / "kustomization.yaml").read_text(encoding="utf-8"))
    everything = kustomization["resources"]
    assert len(everything) == len(set(everything)), "a resource is listed twice"
    listed = [r for r in everything if not r.startswith("instances/")]
    present = {p.name for p in OVERLAY.iterdir() if p.suffix == ".yaml"} - {"kustomization.yaml"}
    examples = {name for name in present if ".example." in name}
    # example files hold placeholders: they are never applied with `kubectl apply -k`
    assert set(listed) == present - examples
    assert examples == {"secrets.example.yaml"}
    assert [r for r in everything if r.startswith("instances/")] == [f"instances/{i}" for i in INSTANCES]
    # kustomize v4+ fields only: the older ones print a deprecation warning each
    for path in OVERLAY.rglob("kustomization.yaml"):
        assert not {"bases", "commonLabels", "patchesStrategicMerge"} & set(yaml.safe_load(path.read_text()))
    assert sorted(p.name for p in (OVERLAY / "instances").iterdir()) == sorted(INSTANCES)
