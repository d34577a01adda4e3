"""`tongban deploy render|compose`: the city's deployment files, generated from its catalogue.

    tongban deploy render --catalog FILE --out DIR     DIR/base and DIR/overlays/<name> (kustomize)
    tongban deploy compose --catalog FILE --out DIR    DIR/docker-compose.yml and DIR/deploy/postgres/init.sql

The rules are tongban/deploy_render.py's (and deploy_compose.py's); this module reads the catalogue and the alert
rule files and writes what they return. Files the render no longer produces are removed from the folders it
owns, so an instance dropped from the catalogue leaves no manifest behind.
"""
from __future__ import annotations

import sys
from pathlib import Path

import yaml

from shared.catalog import CatalogError, load_catalog
from tongban import deploy_compose, deploy_render

ROOT = Path(__file__).resolve().parents[1]
RULES_DIR = ROOT / "deploy" / "prometheus" / "rules"
DASHBOARDS_DIR = ROOT / "deploy" / "grafana" / "dashboards"


def read_rule_files(folder: Path = RULES_DIR) -> dict[str, dict]:
    """The rule files Prometheus loads (`*.rules.yml`; `*.rules.test.yml` beside them are promtool's tests)."""
    return {p.name: yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.rules.yml"))}


def write_tree(out: Path, files: dict[str, str], owned: list[str]) -> list[Path]:
    """Write `files` (path inside `out` -> text); remove other files under the `owned` folders of `out`."""
    written = []
    for rel, text in files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append(path)
    keep = set(written)
    for folder in owned:
        for path in sorted((out / folder).rglob("*"), reverse=True):
            if path.is_file() and path not in keep:
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
    return written


def read_dashboards(folder: Path = DASHBOARDS_DIR) -> dict[str, str]:
    """Grafana's dashboards (file name -> JSON text), as compose provisions them."""
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.json"))}


def render_k8s(catalog_path: Path, out: Path, name: str | None = None, portal_host: str | None = None,
               rules_dir: Path = RULES_DIR, dashboards_dir: Path = DASHBOARDS_DIR) -> list[Path]:
    catalog = load_catalog(catalog_path)
    name = name or catalog_path.stem
    city = deploy_render.city_of(catalog, name, portal_host or f"tongban.{catalog.data['city']['code']}.example.cn")
    files = deploy_render.k8s_tree(city, read_rule_files(rules_dir), catalog_path.read_text(encoding="utf-8"),
                                   read_dashboards(dashboards_dir))
    return write_tree(out, files, ["base", f"overlays/{name}"])


def render_compose(catalog_path: Path, out: Path) -> list[Path]:
    catalog = load_catalog(catalog_path)
    city = deploy_render.city_of(catalog, catalog_path.stem, "localhost")
    # the bus set-up mounts the catalogue where it is: by a path relative to the compose file when it can
    try:
        mount = "./" + catalog_path.resolve().relative_to(out.resolve()).as_posix()
    except ValueError:
        mount = catalog_path.resolve().as_posix()
    return write_tree(out, deploy_compose.compose_files(city, mount), [])


def cmd_deploy(args) -> int:
    try:
        if args.action == "render":
            written = render_k8s(Path(args.catalog), Path(args.out), args.name, args.portal_host)
        else:
            written = render_compose(Path(args.catalog), Path(args.out))
    except CatalogError as exc:
        print(f"tongban deploy {args.action}: {args.catalog}: {exc}", file=sys.stderr)
        for line in exc.problems or []:
            print(f"  - {line}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"tongban deploy {args.action}: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(written)} files under {args.out}")
    return 0


def register(sub) -> None:
    deploy = sub.add_parser("deploy", help="generate the city's deployment: kustomize overlay, docker-compose.yml")
    deploy.add_argument("action", choices=["render", "compose"],
                        help="render: k8s base and overlay; compose: docker-compose.yml for one host")
    deploy.add_argument("--catalog", required=True, help="the city's catalogue (YAML)")
    deploy.add_argument("--out", required=True,
                        help="render: the k8s folder (e.g. deploy/k8s); compose: the project folder (e.g. .)")
    deploy.add_argument("--name", default=None, help="render: the overlay's name (default: the catalogue's file name)")
    deploy.add_argument("--portal-host", default=None, help="render: the portal's public host name (Ingress, TLS)")
    deploy.set_defaults(func=cmd_deploy)
