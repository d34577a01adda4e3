"""What the deployment tests share: the committed files, the overlay as `kubectl kustomize` builds it, the
schemas every manifest must satisfy (Kubernetes' own through kubernetes-validate, the operators' CRDs, the
Compose specification), and the Secrets the operators create."""
from __future__ import annotations

import copy
import functools
import json
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "shared" / "data" / "catalog" / "sample-city.yaml"
K8S = ROOT / "deploy" / "k8s"
OVERLAY = K8S / "overlays" / "sample-city"
COMPOSE = ROOT / "docker-compose.yml"
SCHEMAS = Path(__file__).resolve().parent / "deploy_schemas"
K8S_VERSION = "1.33.0"  # the Kubernetes release the manifests are checked against (kubernetes-validate)
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml where built in: the overlay has ~750 objects
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

# Secrets the operators create (not city IT): their keys, from the operators' sources (the RabbitMQ cluster
# operator v2.22.3's internal/resource/default_user_secret.go; host is its ServiceSubDomain, <name>.<namespace>.svc),
# with example values
OPERATOR_SECRETS = {
    "tongban-rabbitmq-default-user": {
        "username": "default_user_EXAMPLE", "password": "EXAMPLE-operator-made", "host": "tongban-rabbitmq.tongban.svc",
        "port": "5672", "provider": "rabbitmq", "type": "rabbitmq", "default_user.conf": "",
        "connection_string": "amqp://default_user_EXAMPLE:EXAMPLE-operator-made@tongban-rabbitmq.tongban.svc:5672/"},
}


def kubectl() -> str:
    path = shutil.which("kubectl")
    assert path, ("kubectl is not installed: the deployment tests build the overlay with `kubectl kustomize`. "
                  "./run setup installs it (Debian: apt-get install -y kubernetes-client)")
    return path


def kustomize(folder: Path) -> list[dict]:
    """`kubectl kustomize FOLDER`: the objects `kubectl apply -k` would send."""
    run = subprocess.run([kubectl(), "kustomize", str(folder)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"kubectl kustomize {folder} failed:\n{run.stderr}"
    assert "Warning" not in run.stderr, f"kubectl kustomize {folder} warns:\n{run.stderr[:2000]}"
    return [d for d in yaml.load_all(run.stdout, Loader=LOADER) if d]


@functools.lru_cache(maxsize=1)
def _built() -> str:
    return json.dumps(kustomize(OVERLAY))


def built() -> list[dict]:
    """The committed sample city's overlay, built (a fresh copy each call: tests may change it)."""
    return json.loads(_built())


def load_docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def example_secrets() -> dict[str, dict[str, str]]:
    """City IT's Secrets (the overlay's example) and the operators', by name: their keys and values."""
    examples = load_docs(OVERLAY / "secrets.example.yaml")
    secrets = {d["metadata"]["name"]: dict(d.get("stringData") or {}) for d in examples}
    return {**secrets, **copy.deepcopy(OPERATOR_SECRETS)}


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


# --- custom resources against their CRD's schema ---------------------------------------------------

@functools.lru_cache(maxsize=1)
def crd_schemas() -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> the CRD's openAPIV3Schema (tests/unit/deploy_schemas/crds, see SOURCES.txt)."""
    schemas = {}
    for path in sorted((SCHEMAS / "crds").glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        schemas[(doc["apiVersion"], doc["kind"])] = strict_schema(doc["openAPIV3Schema"])
    return schemas


def strict_schema(node):
    """A CRD schema as the API server with strict field validation applies it: a field the schema does not
    name is an error (unless the schema keeps unknown fields), and int-or-string takes either."""
    if isinstance(node, list):
        return [strict_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: strict_schema(v) for k, v in node.items()}
    if out.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if out.get("nullable"):
        out["type"] = [out["type"], "null"] if isinstance(out.get("type"), str) else out.get("type")
    if (out.get("type") == "object" and "properties" in out and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        # metadata is ObjectMeta (checked apart): the CRD only says it is an object
        out["additionalProperties"] = False
    return out


def _one_of(spec: dict, *fields: str) -> bool:
    return sum(1 for f in fields if spec.get(f)) == 1


TOPOLOGY_KINDS = ("User", "Permission", "TopicPermission", "Queue", "Exchange", "Binding", "Policy")
# What the operators' admission webhooks refuse beyond the CRD schema (the Messaging Topology Operator v1.20.1,
# internal/webhook/v1beta1/*_webhook.go): (kinds, rule, check of the spec)
WEBHOOK_RULES = (
    (("Permission", "TopicPermission"), "exactly one of spec.user and spec.userReference",
     lambda spec: _one_of(spec, "user", "userReference")),
    (("Queue",), "a quorum queue must be durable",
     lambda spec: spec.get("type") != "quorum" or spec.get("durable", True) is True),
    (TOPOLOGY_KINDS, "exactly one of rabbitmqClusterReference.name and .connectionSecret",
     lambda spec: _one_of(spec.get("rabbitmqClusterReference") or {}, "name", "connectionSecret")),
)


def crd_problems(doc: dict) -> list[str]:
    schema = crd_schemas().get((doc.get("apiVersion"), doc.get("kind")))
    if schema is None:
        return [f"no CRD schema for {doc.get('apiVersion')} {doc.get('kind')}"]
    problems = [f"{e.json_path}: {e.message}" for e in jsonschema.Draft7Validator(schema).iter_errors(doc)]
    problems += [f"webhook: {rule}" for kinds, rule, ok in WEBHOOK_RULES
                 if doc.get("kind") in kinds and doc.get("apiVersion", "").startswith("rabbitmq.com/")
                 and not ok(doc.get("spec") or {})]
    name = (doc.get("metadata") or {}).get("name") or ""
    if len(name) > 253 or not DNS_SUBDOMAIN.match(name):
        problems.append(f"metadata.name {name!r} is no DNS subdomain name")
    return problems


def is_custom(doc: dict) -> bool:
    return (doc.get("apiVersion"), doc.get("kind")) in crd_schemas()


# --- built-in kinds: kubernetes-validate, strict -----------------------------------------------------

def k8s_problems(doc: dict) -> list[str]:
    import kubernetes_validate

    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{'.'.join(str(p) for p in exc.path)}: {exc.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        return [f"kubernetes-validate has no schema for {doc.get('apiVersion')} {doc.get('kind')}"]
    return []


# --- the Compose specification ----------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def compose_validator():
    schema = json.loads((SCHEMAS / "compose-spec.json").read_text(encoding="utf-8"))
    return jsonschema.Draft201909Validator(schema)


def compose_problems(doc: dict) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in compose_validator().iter_errors(doc)]
