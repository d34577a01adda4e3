"""Extract the openAPIV3Schema of the custom resources the deployment uses from the operators' own CRDs.

Run by hand when an operator is upgraded (not by the tests), with the operators' repositories checked out
at the release named below:

    python tests/unit/deploy_schemas/extract_crds.py /path/to/checkouts

where /path/to/checkouts/<owner>+<name>/repo is a git repository. Each CRD's served storage version is
written to crds/<kind>.json with its `description` texts dropped (they are documentation, not rules, and
made up most of the size); crds/SOURCES.txt records where each came from.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
# repository, release tag, CRD files
SOURCES = (
    ("rabbitmq/cluster-operator", "v2.22.3", ("config/crd/bases/rabbitmq.com_rabbitmqclusters.yaml",)),
    ("rabbitmq/messaging-topology-operator", "v1.20.1",
     tuple(f"config/crd/bases/rabbitmq.com_{n}.yaml"
           for n in ("users", "permissions", "topicpermissions", "queues", "exchanges", "bindings", "policies"))),
    ("cloudnative-pg/cloudnative-pg", "v1.30.0",
     tuple(f"config/crd/bases/postgresql.cnpg.io_{n}.yaml" for n in ("clusters", "databases", "scheduledbackups"))),
    ("cloudnative-pg/plugin-barman-cloud", "v0.14.0", ("config/crd/bases/barmancloud.cnpg.io_objectstores.yaml",)),
    ("kedacore/keda", "v2.20.2",
     tuple(f"config/crd/bases/keda.sh_{n}.yaml" for n in ("scaledobjects", "triggerauthentications"))),
    ("prometheus-operator/prometheus-operator", "v0.93.0",
     tuple(f"example/prometheus-operator-crd-full/monitoring.coreos.com_{n}.yaml"
           for n in ("servicemonitors", "podmonitors", "prometheusrules"))),
)


def without_descriptions(node):
    if isinstance(node, dict):
        return {k: without_descriptions(v) for k, v in node.items() if not (k == "description" and isinstance(v, str))}
    if isinstance(node, list):
        return [without_descriptions(v) for v in node]
    return node


def main(checkouts: Path) -> None:
    out = HERE / "crds"
    out.mkdir(exist_ok=True)
    lines = []
    for repo, tag, paths in SOURCES:
        git = checkouts / repo.replace("/", "+") / "repo"
        commit = subprocess.run(["git", "-C", str(git), "rev-parse", f"{tag}^{{commit}}"], check=True,
                                capture_output=True, text=True).stdout.strip()
        for path in paths:
            text = subprocess.run(["git", "-C", str(git), "show", f"{commit}:{path}"], check=True,
                                  capture_output=True, text=True).stdout
            crd = yaml.safe_load(text)
            (version,) = [v for v in crd["spec"]["versions"] if v.get("served") and v.get("storage")]
            kind = crd["spec"]["names"]["kind"]
            doc = {"apiVersion": f"{crd['spec']['group']}/{version['name']}", "kind": kind,
                   "openAPIV3Schema": without_descriptions(version["schema"]["openAPIV3Schema"])}
            (out / f"{kind}.json").write_text(json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n")
            lines.append(f"{kind}\t{doc['apiVersion']}\t{repo}@{tag} ({commit})\t{path}")
    (out / "SOURCES.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
