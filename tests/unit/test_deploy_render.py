"""The generated deployment: it is what the renderer makes of the sample city, kustomize builds it, every object
is valid for Kubernetes or for the operator that reads it, and it says what the design says (the bus's queues
as the services declare them, a database per instance, autoscaling on the departments' queues, disruption
budgets, network policies that let through only what must pass, monitoring, the alert rules).

Needs kubectl (`kubectl kustomize`; ./run setup installs Debian's kubernetes-client) and the Python package
kubernetes-validate; the operators' CRD schemas and the Compose specification's are fixtures in
tests/unit/deploy_schemas (SOURCES.txt says where each came from).
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
import yaml

from shared import busauth, registry
from shared.catalog import load_catalog
from tests.unit.deploy_support import (
    CATALOG,
    COMPOSE,
    K8S,
    OVERLAY,
    ROOT,
    built,
    by_kind,
    compose_problems,
    crd_problems,
    example_secrets,
    is_custom,
    k8s_problems,
    kustomize,
    load_docs,
)

with warnings.catch_warnings():  # nameko imports eventlet, which warns that it is deprecated
    warnings.simplefilter("ignore")
    from tongban import deploy_cmd, deploy_render
    from tongban.cli import main as cli_main

RULES = ROOT / "deploy" / "prometheus" / "rules"
TOWNS, DEPARTMENTS = registry.scope_of(load_catalog(CATALOG))
INSTANCES = registry.deployment_instances(TOWNS, DEPARTMENTS)
INSTANCE = "app.kubernetes.io/instance"
COMPONENT = "app.kubernetes.io/component"


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def deployments() -> dict[str, dict]:
    """The built Deployments by instance."""
    return {d["metadata"]["labels"][INSTANCE]: d for d in built() if d["kind"] == "Deployment"}


# --- the committed files are the renderer's -----------------------------------------------------------

def test_the_committed_k8s_files_are_the_sample_city_rendered_again(tmp_path):
    assert cli_main(["deploy", "render", "--catalog", str(CATALOG), "--out", str(tmp_path)]) == 0
    rendered, committed = tree(tmp_path), tree(K8S)
    assert sorted(rendered) == sorted(committed), "files added or missing: render again and commit"
    changed = [p for p in rendered if rendered[p] != committed[p]]
    assert changed == [], f"differ from a new render (tongban deploy render --catalog {CATALOG.relative_to(ROOT)} " \
                          f"--out deploy/k8s): {changed}"


def test_the_committed_compose_file_is_the_sample_city_rendered_again(tmp_path):
    catalog = tmp_path / CATALOG.relative_to(ROOT)  # where it is beside the compose file (bus-setup mounts it)
    catalog.parent.mkdir(parents=True)
    catalog.write_bytes(CATALOG.read_bytes())
    assert cli_main(["deploy", "compose", "--catalog", str(catalog), "--out", str(tmp_path)]) == 0
    for rel in ("docker-compose.yml", "deploy/postgres/init.sql"):
        assert (tmp_path / rel).read_text(encoding="utf-8") == (ROOT / rel).read_text(encoding="utf-8"), \
            f"{rel} differs from a new render (tongban deploy compose --catalog ... --out .)"


def test_compose_mounts_a_catalogue_outside_its_folder_by_its_full_path(tmp_path):
    assert cli_main(["deploy", "compose", "--catalog", str(CATALOG), "--out", str(tmp_path / "host")]) == 0
    compose = yaml.safe_load((tmp_path / "host" / "docker-compose.yml").read_text(encoding="utf-8"))
    assert compose["services"]["bus-setup"]["volumes"] == [f"{CATALOG}:/etc/tongban/catalog/catalog.yaml:ro"]


def test_a_render_removes_what_the_city_no_longer_has(tmp_path):
    small = tmp_path / "small-city.yaml"
    text = CATALOG.read_text(encoding="utf-8")
    assert cli_main(["deploy", "render", "--catalog", str(CATALOG), "--out", str(tmp_path / "k8s"),
                     "--name", "small-city"]) == 0
    assert (tmp_path / "k8s/overlays/small-city/instances/approval-linye/patch.yaml").exists()
    catalog = yaml.safe_load(text)
    catalog["items"] = [i for i in catalog["items"] if "linye" not in (i["department"], *i.get("co_departments", ()))]
    catalog["departments"] = [d for d in catalog["departments"] if d["code"] != "linye"]
    small.write_text(yaml.safe_dump(catalog, allow_unicode=True), encoding="utf-8")
    assert cli_main(["deploy", "render", "--catalog", str(small), "--out", str(tmp_path / "k8s")]) == 0
    overlay = tmp_path / "k8s/overlays/small-city"
    assert not (overlay / "instances/approval-linye").exists()
    assert (overlay / "instances/approval-minzheng/patch.yaml").exists()
    assert "approval-linye" not in (overlay / "kustomization.yaml").read_text(encoding="utf-8")


def test_a_bad_catalogue_is_refused_with_the_reason(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: '1'\ncity: {}\n", encoding="utf-8")
    assert cli_main(["deploy", "render", "--catalog", str(bad), "--out", str(tmp_path / "k8s")]) == 2
    assert "catalogue is invalid" in capsys.readouterr().err
    assert not (tmp_path / "k8s").exists()


# --- kustomize builds it; every object is valid ---------------------------------------------------------

def test_kustomize_builds_every_instance_and_the_operators_resources():
    docs = built()
    assert sorted(deployments()) == sorted(s.instance for s in INSTANCES)
    assert len(INSTANCES) == 1 + len(TOWNS) + len(DEPARTMENTS) + 3 == 30
    kinds = {d["kind"] for d in docs}
    assert {"RabbitmqCluster", "User", "Permission", "TopicPermission", "Exchange", "Queue", "Binding", "Policy",
            "Cluster", "ObjectStore", "Database", "ScheduledBackup", "ScaledObject", "TriggerAuthentication",
            "PodDisruptionBudget", "NetworkPolicy", "Ingress", "PodMonitor", "ServiceMonitor",
            "PrometheusRule"} <= kinds
    assert all(d["metadata"].get("namespace") == "tongban" for d in docs if d["kind"] != "Namespace")


def test_every_built_in_object_is_valid_for_kubernetes_strictly():
    docs = [d for d in built() if not is_custom(d)] + load_docs(OVERLAY / "secrets.example.yaml")
    problems = {f"{d['kind']}/{d['metadata']['name']}": p for d in docs if (p := k8s_problems(d))}
    assert problems == {}
    assert {d["kind"] for d in docs} >= {"Deployment", "Service", "Job", "ConfigMap", "Secret", "Namespace",
                                         "PodDisruptionBudget", "NetworkPolicy", "Ingress"}


def test_every_custom_resource_is_valid_for_its_operator():
    customs = [d for d in built() if is_custom(d)]
    problems = {f"{d['kind']}/{d['metadata']['name']}": p for d in customs if (p := crd_problems(d))}
    assert problems == {}
    # every object is checked by one or the other
    assert len(customs) + len([d for d in built() if not is_custom(d)]) == len(built())


def test_the_validators_catch_what_they_are_for():
    deployment = deployments()["portal"]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}  # a typo
    assert k8s_problems(deployment)
    del deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"]
    assert k8s_problems(deployment) == []
    docs = built()
    queue = next(d for d in docs if d["kind"] == "Queue")
    del queue["spec"]["name"]
    assert any("'name' is a required property" in p for p in crd_problems(queue))
    scaled = next(d for d in docs if d["kind"] == "ScaledObject")
    scaled["spec"]["triggers"][0]["metadata"]["value"] = 20  # trigger metadata are strings
    scaled["spec"]["minReplicas"] = 1  # not a field
    problems = crd_problems(scaled)
    assert any("20 is not of type 'string'" in p for p in problems)
    assert any("minReplicas" in p for p in problems)
    store = next(d for d in docs if d["kind"] == "ObjectStore")
    store["spec"]["configuration"].pop("destinationPath")
    store["spec"]["retentionPolicy"] = "30 days"
    problems = crd_problems(store)
    assert any("destinationPath" in p for p in problems) and any("30 days" in p for p in problems)
    assert crd_problems({"apiVersion": "example.com/v1", "kind": "Unknown", "metadata": {"name": "x"}})
    permission = next(d for d in docs if d["kind"] == "Permission")
    permission["spec"]["user"] = "tongban-intake"  # beside userReference: the operator's webhook refuses both
    assert crd_problems(permission) == ["webhook: exactly one of spec.user and spec.userReference"]
    other_queue = [d for d in docs if d["kind"] == "Queue"][1]
    other_queue["spec"]["durable"] = False
    assert crd_problems(other_queue) == ["webhook: a quorum queue must be durable"]
    assert any("DNS subdomain" in p for p in crd_problems({**queue, "metadata": {"name": "Tongban.Queue"}}))


def test_debian_kubectl_reads_the_overlay_too():
    """Debian's kubectl (kustomize v5) builds the overlay without a warning (tests/unit/deploy_support.py):
    the instances' names, labels (selectors too) and patches come out as written."""
    portal = deployments()["portal"]
    container = portal["spec"]["template"]["spec"]["containers"][0]
    assert portal["metadata"]["name"] == "tongban-portal"
    assert container["args"] == ["serve", "portal"]
    assert portal["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/part-of": "tongban",
                                                        COMPONENT: "portal", INSTANCE: "portal"}
    env = {e["name"] for e in container["env"]}
    assert {"TONGBAN_TOKEN_PUBLIC_KEYS", "TONGBAN_TOKEN_PRIVATE_KEY", "TONGBAN_INSTANCE"} <= env


# --- the bus: what the services declare, declared by the operator ---------------------------------------

def test_the_operator_declares_every_queue_of_the_registry_as_the_services_do():
    top = deploy_render.topology()
    queues = {d["spec"]["name"]: d["spec"] for d in built() if d["kind"] == "Queue"}
    expected = []
    for q in registry.deployment_kombu_queues(top, TOWNS, DEPARTMENTS):
        expected += [q, top.dead_letter_queue(q.name)]
    expected += [top.retry_queue(k, s) for k in busauth.KINDS for s in top.retry_delays] + [top.redelivered_queue]
    assert sorted(queues) == sorted(q.name for q in expected)
    for q in expected:
        spec = queues[q.name]
        # the same arguments, or the broker refuses the second declaration (PRECONDITION_FAILED)
        assert {"x-queue-type": spec["type"], **spec.get("arguments", {})} == q.queue_arguments, q.name
        assert spec["durable"] is True and spec["autoDelete"] is False
    assert {spec["type"] for spec in queues.values()} == {"quorum"}


def test_every_queue_is_bound_as_the_services_bind_it():
    top = deploy_render.topology()
    bindings = {(d["spec"]["source"], d["spec"]["destination"], d["spec"]["routingKey"])
                for d in built() if d["kind"] == "Binding"}
    exchanges = {d["spec"]["name"]: d["spec"]["type"] for d in built() if d["kind"] == "Exchange"}
    assert exchanges == {ex.name: ex.type for ex in top.exchanges}
    work = top.queue_name("approval-minzheng", "work")
    assert ("tongban.work", work, "case.routed.minzheng.*") in bindings
    assert ("tongban.requeue", work, f"*.*.{work}") in bindings
    assert ("tongban.dlx", f"{work}.dlq", work) in bindings
    assert {source for source, _, _ in bindings} <= set(exchanges)
    queues = {d["spec"]["name"] for d in built() if d["kind"] == "Queue"}
    assert {destination for _, destination, _ in bindings} <= queues


def test_the_policy_is_the_topologys():
    (policy,) = by_kind(built(), "Policy").values()
    expected = deploy_render.topology().policy()
    spec = policy["spec"]
    assert (spec["pattern"], spec["applyTo"], spec["priority"], spec["definition"]) == \
        (expected["pattern"], expected["apply-to"], expected["priority"], expected["definition"])


def test_each_kind_has_its_user_with_busauths_permissions():
    docs = built()
    secrets = example_secrets()
    users = by_kind(docs, "User")
    permissions = {d["spec"]["userReference"]["name"]: d["spec"] for d in docs if d["kind"] == "Permission"}
    topics = {}
    for d in docs:
        if d["kind"] == "TopicPermission":
            topics.setdefault(d["spec"]["userReference"]["name"], []).append(d["spec"]["permissions"])
    for kind in busauth.KINDS:
        name = f"tongban-{kind}"
        imported = secrets[users[name]["spec"]["importCredentialsSecret"]["name"]]
        assert imported["username"] == busauth.user_name("tongban", kind)
        regular, topic = busauth.permissions(kind, "tongban")
        assert permissions[name]["permissions"] == regular and permissions[name]["vhost"] == "/"
        assert sorted(topics[name], key=str) == sorted(topic, key=str)
    assert len({secrets[u["spec"]["importCredentialsSecret"]["name"]]["password"] for u in users.values()}) == \
        len(busauth.KINDS)


def test_the_rabbitmq_cluster_has_three_nodes():
    (cluster,) = by_kind(built(), "RabbitmqCluster").values()
    assert cluster["spec"]["replicas"] == 3
    for d in built():
        if d["apiVersion"].startswith("rabbitmq.com/") and d["kind"] != "RabbitmqCluster":
            assert d["spec"]["rabbitmqClusterReference"] == {"name": cluster["metadata"]["name"]}


# --- PostgreSQL, scaling, disruption ------------------------------------------------------------------

def test_a_database_per_instance_in_the_cnpg_cluster_with_backups():
    docs = built()
    (cluster,) = by_kind(docs, "Cluster").values()
    name = cluster["metadata"]["name"]
    assert cluster["spec"]["instances"] == 3
    databases = {d["spec"]["name"]: d["spec"] for d in docs if d["kind"] == "Database"}
    assert sorted(databases) == sorted(deploy_render.database_name(s.instance) for s in INSTANCES)
    assert {(db["cluster"]["name"], db["owner"]) for db in databases.values()} == \
        {(name, cluster["spec"]["bootstrap"]["initdb"]["owner"])}
    for instance, dep in deployments().items():
        env = {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
        url = env["TONGBAN_DATABASE_URL"]["value"]
        assert url == f"postgresql://tongban@{name}-rw:5432/{deploy_render.database_name(instance)}"
        # libpq reads the owner's password from PGPASSWORD: the Secret CloudNativePG made the role from
        assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == \
            cluster["spec"]["bootstrap"]["initdb"]["secret"]["name"]
    # WAL archiving and base backups through the Barman Cloud plugin, to the object store it names
    (plugin,) = cluster["spec"]["plugins"]
    assert plugin["isWALArchiver"] is True
    store = by_kind(docs, "ObjectStore")[plugin["parameters"]["barmanObjectName"]]
    assert store["spec"]["configuration"]["destinationPath"].startswith("s3://")
    (backup,) = by_kind(docs, "ScheduledBackup").values()
    assert backup["spec"]["cluster"]["name"] == name and backup["spec"]["method"] == "plugin"
    assert backup["spec"]["pluginConfiguration"]["name"] == plugin["name"]
    assert len(backup["spec"]["schedule"].split()) == 6, "CloudNativePG's schedule starts with seconds"


def test_each_approval_department_scales_on_its_work_queue():
    docs = built()
    scaled = by_kind(docs, "ScaledObject")
    queues = {d["spec"]["name"] for d in docs if d["kind"] == "Queue"}
    auths = by_kind(docs, "TriggerAuthentication")
    secrets = example_secrets()
    targets = {}
    for so in scaled.values():
        (trigger,) = so["spec"]["triggers"]
        assert trigger["type"] == "rabbitmq" and trigger["metadata"]["mode"] == "QueueLength"
        assert trigger["metadata"]["queueName"] in queues
        for ref in auths[trigger["authenticationRef"]["name"]]["spec"]["secretTargetRef"]:
            assert ref["key"] in secrets[ref["name"]]
        targets[so["spec"]["scaleTargetRef"]["name"]] = trigger["metadata"]["queueName"]
    by_name = {d["metadata"]["name"]: i for i, d in deployments().items()}
    assert sorted(by_name[t] for t in targets) == sorted(f"approval-{d}" for d in DEPARTMENTS)
    for target, queue in targets.items():
        assert queue == f"tongban.{by_name[target]}.work"
        # KEDA sets the replicas: the Deployment leaves them alone
        assert "replicas" not in next(d for d in deployments().values() if d["metadata"]["name"] == target)["spec"]
    assert all(dep["spec"].get("replicas", 0) >= 2 for i, dep in deployments().items() if not i.startswith("approval"))


def test_a_disruption_budget_per_instance_selects_its_pods():
    budgets = by_kind(built(), "PodDisruptionBudget")
    assert len(budgets) == len(INSTANCES)
    for instance, dep in deployments().items():
        labels = dep["spec"]["template"]["metadata"]["labels"]
        matching = [b for b in budgets.values() if b["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        assert len(matching) == 1, instance
        assert matching[0]["spec"]["maxUnavailable"] == 1


def test_an_instances_pods_spread_over_nodes_and_keep_off_the_kubernetes_api():
    for instance, dep in deployments().items():
        pod = dep["spec"]["template"]
        (spread,) = pod["spec"]["topologySpreadConstraints"]
        assert spread["topologyKey"] == "kubernetes.io/hostname"
        assert _selects(spread["labelSelector"], pod["metadata"]["labels"]), instance
        assert spread["labelSelector"]["matchLabels"][INSTANCE] == instance  # its own pods, not every instance's
        assert pod["spec"]["automountServiceAccountToken"] is False


# --- network: only what must pass ------------------------------------------------------------------

def _selects(selector: dict, labels: dict) -> bool:
    return (selector.get("matchLabels") or {}).items() <= labels.items() and all(
        e["key"] in labels for e in selector.get("matchExpressions") or [] if e["operator"] == "Exists")


def _peer_matches(peer: dict, namespace: str, labels: dict) -> bool:
    if "ipBlock" in peer:
        return namespace == "internet"
    if "namespaceSelector" in peer:
        ns_ok = _selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": namespace})
    else:
        ns_ok = namespace == "tongban"
    return ns_ok and _selects(peer.get("podSelector") or {}, labels)


def _allowed(policies, direction: str, pod: dict, peer_ns: str, peer: dict, port: int) -> bool:
    """Does NetworkPolicy let `pod` (in tongban) send to / receive from the peer on `port`?"""
    rules_key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    selecting = [p for p in policies
                 if direction in p["spec"]["policyTypes"] and _selects(p["spec"]["podSelector"], pod)]
    if not selecting:
        return True  # no policy isolates the pod in that direction
    for p in selecting:
        for rule in p["spec"].get(rules_key) or []:
            if any(_peer_matches(x, peer_ns, peer) for x in rule.get(peers_key) or []) and \
                    any(x["port"] == port for x in rule.get("ports") or []):
                return True
    return False


def can_connect(policies, src: tuple[str, dict], dst: tuple[str, dict], port: int) -> bool:
    (src_ns, src_pod), (dst_ns, dst_pod) = src, dst
    out_ok = src_ns != "tongban" or _allowed(policies, "Egress", src_pod, dst_ns, dst_pod, port)
    in_ok = dst_ns != "tongban" or _allowed(policies, "Ingress", dst_pod, src_ns, src_pod, port)
    return out_ok and in_ok


def test_network_policies_let_through_only_what_must_pass():
    policies = list(by_kind(built(), "NetworkPolicy").values())
    pods = {i: ("tongban", d["spec"]["template"]["metadata"]["labels"]) for i, d in deployments().items()}
    _pod = pods.__getitem__
    rabbit = ("tongban", {"app.kubernetes.io/name": "tongban-rabbitmq", COMPONENT: "rabbitmq"})
    postgres = ("tongban", {"cnpg.io/cluster": "tongban-postgres"})
    ingress = ("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"})
    prometheus = ("monitoring", {"app.kubernetes.io/name": "prometheus"})
    internet = ("internet", {})
    town = f"intake-{TOWNS[0]}"
    every = [s.instance for s in INSTANCES]
    for instance in every:
        assert can_connect(policies, _pod(instance), rabbit, 5672), instance
        assert can_connect(policies, _pod(instance), postgres, 5432), instance
        assert can_connect(policies, prometheus, _pod(instance), 8000), instance
        assert not can_connect(policies, _pod(instance), rabbit, 15672), "the management API is the set-up's"
        assert not can_connect(policies, _pod(instance), postgres, 8000)
        if instance != "portal":
            assert can_connect(policies, _pod("portal"), _pod(instance), 8000), instance
            assert not can_connect(policies, ingress, _pod(instance), 8000), f"{instance} is exposed"
    assert can_connect(policies, ingress, _pod("portal"), 8000)
    assert can_connect(policies, _pod("notify"), _pod(town), 8000)
    assert can_connect(policies, _pod("notify"), internet, 443)
    assert not can_connect(policies, _pod(town), internet, 443)
    assert not can_connect(policies, _pod(town), _pod("approval-minzheng"), 8000)
    assert not can_connect(policies, _pod("approval-minzheng"), _pod(town), 8000)
    assert not can_connect(policies, _pod("agent"), _pod("portal"), 8000)
    assert not can_connect(policies, ("other", {}), _pod("portal"), 8000)
    job = by_kind(built(), "Job")["tongban-bus-setup"]["spec"]["template"]["metadata"]["labels"]
    assert can_connect(policies, ("tongban", job), rabbit, 15672)
    assert can_connect(policies, ("tongban", job), rabbit, 5672)


def test_only_the_portal_is_exposed_over_tls():
    (ing,) = by_kind(built(), "Ingress").values()
    (rule,) = ing["spec"]["rules"]
    assert ing["spec"]["tls"] == [{"hosts": [rule["host"]], "secretName": "tongban-portal-tls"}]
    backends = {p["backend"]["service"]["name"] for p in rule["http"]["paths"]}
    assert backends == {deployments()["portal"]["metadata"]["name"]}
    services = by_kind(built(), "Service")
    assert all(s["spec"]["type"] == "ClusterIP" for s in services.values())


# --- monitoring ------------------------------------------------------------------------------------

def test_prometheus_scrapes_every_instance_and_rabbitmq():
    docs = built()
    (pod_monitor,) = by_kind(docs, "PodMonitor").values()
    (endpoint,) = pod_monitor["spec"]["podMetricsEndpoints"]
    for instance, dep in deployments().items():
        pod = dep["spec"]["template"]
        assert _selects(pod_monitor["spec"]["selector"], pod["metadata"]["labels"]), instance
        assert endpoint["port"] in {p["name"] for p in pod["spec"]["containers"][0]["ports"]}
    job = by_kind(docs, "Job")["tongban-bus-setup"]["spec"]["template"]["metadata"]["labels"]
    assert not _selects(pod_monitor["spec"]["selector"], job), "a one-shot Job has no /metrics"
    (rabbit_monitor,) = by_kind(docs, "ServiceMonitor").values()
    assert rabbit_monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] == "tongban-rabbitmq"
    # node-wide figures, and per queue the families the rules and dashboards use
    endpoints = {e["path"]: e for e in rabbit_monitor["spec"]["endpoints"]}
    assert {e["port"] for e in endpoints.values()} == {"prometheus"}
    assert sorted(endpoints) == ["/metrics", "/metrics/detailed"]
    assert endpoints["/metrics/detailed"]["params"]["family"] == ["queue_coarse_metrics", "queue_consumer_count"]


def job_of(endpoint: dict) -> str:
    (relabel,) = [r for r in endpoint["relabelings"] if r["targetLabel"] == "job"]
    return relabel["replacement"]


def test_targets_get_the_job_names_the_rules_use():
    """The alert rules name jobs (`up{job="tongban"}`) as the compose host's prometheus.yml does: the monitors
    give their targets those names instead of the operator's namespace/monitor."""
    docs = built()
    (pod_monitor,) = by_kind(docs, "PodMonitor").values()
    (rabbit_monitor,) = by_kind(docs, "ServiceMonitor").values()
    jobs = {job_of(e) for e in pod_monitor["spec"]["podMetricsEndpoints"] + rabbit_monitor["spec"]["endpoints"]}
    assert jobs == {"tongban", "rabbitmq", "rabbitmq-queues"}
    named = set()
    for path in RULES.glob("*.rules.yml"):
        for m in re.finditer(r'job\s*=~?\s*"([^"]+)"', path.read_text(encoding="utf-8")):
            named |= set(m.group(1).split("|"))
    assert named <= jobs, f"rules name jobs no monitor gives: {named - jobs}"
    prometheus_yml = ROOT / "deploy" / "prometheus" / "prometheus.yml"
    if prometheus_yml.exists():  # the compose host's jobs
        config = yaml.safe_load(prometheus_yml.read_text(encoding="utf-8"))
        assert {c["job_name"] for c in config["scrape_configs"]} == jobs


def test_the_prometheus_rule_holds_every_group_of_the_rule_files():
    files = sorted(RULES.glob("*.rules.yml"))
    assert files, "deploy/prometheus/rules has no rule file"
    groups = [g for f in files for g in yaml.safe_load(f.read_text(encoding="utf-8"))["groups"]]
    (rule,) = by_kind(built(), "PrometheusRule").values()
    assert rule["spec"]["groups"] == groups
    assert deploy_render.prometheus_rule({}) is None


def test_probes_ask_the_truthful_health_for_readiness_and_the_cheap_one_for_liveness():
    for instance, dep in deployments().items():
        (c,) = dep["spec"]["template"]["spec"]["containers"]
        assert c["readinessProbe"]["httpGet"]["path"] == "/health", instance
        assert c["livenessProbe"]["httpGet"]["path"] == "/health/live", instance
        assert c["startupProbe"]["httpGet"]["path"] == "/health/live", instance


# --- docker-compose ---------------------------------------------------------------------------------

def test_compose_file_is_valid_for_the_compose_specification():
    doc = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert compose_problems(doc) == []
    doc["services"]["portal"]["enviroment"] = {}  # a typo
    doc["services"]["notify"]["depends_on"]["bus-setup"]["condition"] = "service_done"
    problems = compose_problems(doc)
    assert any("enviroment" in p for p in problems) and any("service_done" in p for p in problems)


def test_compose_runs_prometheus_and_grafana_with_the_shipped_configuration():
    services = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]
    prometheus, grafana = services["prometheus"], services["grafana"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in prometheus["volumes"]  # prometheus.yml, rules/, targets/
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in grafana["volumes"] if v.startswith("./"))
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    provisioning = ROOT / "deploy" / "grafana" / "provisioning"
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    assert "9090:9090" in prometheus["ports"][0]
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "tongban.yml").read_text())["providers"]
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    with_plugins = (ROOT / "deploy" / "rabbitmq" / "enabled_plugins").read_text()
    assert "rabbitmq_prometheus" in with_plugins and "rabbitmq_management" in with_plugins


def test_kustomize_fails_loudly_on_a_broken_overlay(tmp_path):
    deploy_cmd.write_tree(tmp_path, {"kustomization.yaml": "resources: [missing.yaml]\n"}, [])
    with pytest.raises(AssertionError, match="kubectl kustomize"):
        kustomize(tmp_path)


def test_grafana_gets_every_dashboard_through_its_sidecar():
    maps = {d["metadata"]["name"]: d for d in built() if d["kind"] == "ConfigMap"
            and d["metadata"].get("labels", {}).get("grafana_dashboard") == "1"}
    files = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
    assert len(files) >= 5 and len(maps) == len(files)
    for path in files:
        (data,) = maps[f"tongban-dashboard-{path.stem}"]["data"].items()
        assert data == (path.name, path.read_text(encoding="utf-8"))
