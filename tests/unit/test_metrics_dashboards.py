"""The shipped Grafana dashboards are well formed: unique uids and panel ids, every query on the `datasource`
variable, panels inside the 24-column grid. (That every series they name exists: tests/service/
test_prometheus_scrape.py, against a real Prometheus.)"""
import json
from pathlib import Path

DASHBOARDS = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def _boards() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(DASHBOARDS.glob("*.json"))}


def test_the_five_dashboards_have_unique_uids_and_a_prometheus_datasource_variable():
    boards = _boards()
    assert {b["uid"] for b in boards.values()} == {"tongban-bus", "tongban-deadlines", "tongban-service-quality",
                                                   "tongban-notices", "tongban-rabbitmq"}
    for name, board in boards.items():
        datasource = {v["name"]: v for v in board["templating"]["list"]}["datasource"]
        assert datasource["type"] == "datasource" and datasource["query"] == "prometheus", name


def test_every_panel_queries_the_datasource_variable_and_fits_the_grid():
    for name, board in _boards().items():
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), f"{name}: panel ids repeat"
        for panel in board["panels"]:
            where = f"{name}: {panel['title']}"
            g = panel["gridPos"]
            assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24, where
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == DATASOURCE, where
            assert panel["targets"], f"{where}: no query"
            for target in panel["targets"]:
                assert target["datasource"] == DATASOURCE and target["expr"].strip(), where
            refs = [t["refId"] for t in panel["targets"]]
            assert len(refs) == len(set(refs)), f"{where}: refIds repeat"
