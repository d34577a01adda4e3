"""The personal-data auditor (tongban.pii_audit) finds an unmasked number planted in each place it reads, never
shows one, and leaves masked numbers, case numbers and look-alikes alone."""
from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from shared import tokens
from shared.db import inbox_table, make_engine, outbox_table
from shared.pii import mask_text
from tongban import cli
from tongban.pii_audit import audit_http, audit_logs, audit_metrics, audit_pii, audit_portal, audit_tables, scan_text

ID = "11010519491231002X"  # a resident ID with a right check character
CREDIT = "91350100M000100Y43"  # a credit code with a right check character
MOBILE = "13812345678"
CASE = "320583101-20261124-00001"
NOW = datetime(2026, 12, 7, tzinfo=UTC)


def _unmasked(text: str) -> bool:
    return any(v in text for v in (ID, CREDIT, MOBILE))


def test_it_finds_each_kind_and_leaves_look_alikes_alone():
    text = f"id {ID} code {CREDIT} phone +86{MOBILE}, {MOBILE[:3]}-{MOBILE[3:7]}-{MOBILE[7:]}"
    assert [k for k, _s, _e in scan_text(text)] == ["resident_id", "credit_code", "mobile"]
    harmless = [mask_text(f"{ID} {CREDIT} {MOBILE}"), CASE, "110105194912310021",  # a wrong check character
                "took 0.13812345678 s", "waybill 1381234567812", "message 5d41402abc4b2a76b9719d911017c592",
                "2026-12-07T07:33:24.123456+00:00"]
    for h in harmless:
        assert scan_text(h) == [], h


def test_logs_every_line_of_the_files_and_folders_given(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "intake.log").write_text(
        json.dumps({"event": "message.handled", "case_number": CASE}) + "\n"
        + json.dumps({"event": "x", "applicant": {"id_number": ID}}, ensure_ascii=False) + "\n", encoding="utf-8")
    (tmp_path / "stderr.txt").write_text(f"a traceback naming {MOBILE}\n", encoding="utf-8")
    (tmp_path / "run" / "other.txt").write_text(f"not a log: {MOBILE}\n", encoding="utf-8")
    read = Counter()
    found = audit_logs([tmp_path / "run", tmp_path / "stderr.txt"], read)
    assert [(f.kind, f.where) for f in found] == [("resident_id", f"{tmp_path / 'run' / 'intake.log'}:2"),
                                                   ("mobile", f"{tmp_path / 'stderr.txt'}:1")]
    assert read["log lines"] == 3
    assert "110105********002X" in found[0].excerpt and not any(_unmasked(str(f)) for f in found)


class _Deployment:
    """One small HTTP instance as the services are: /openapi.json, a list, a case's notices, /metrics."""

    def __init__(self, list_body: dict, notices_body: dict, label: str, key: tokens.SigningKey):
        self.registry = CollectorRegistry()
        Gauge("tongban_things", "things", ["who"], registry=self.registry).labels(who=label).set(1)
        self.list_body, self.notices_body = list_body, notices_body
        self.verifier = tokens.TokenVerifier(tokens.jwks_text(key))
        self.seen_roles = set()

    def __call__(self, environ, start_response):
        path = environ["PATH_INFO"]
        if path == "/metrics":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [generate_latest(self.registry)]
        if path == "/openapi.json":
            body = {"paths": {"/things": {"get": {}}, "/cases/{case_number}/notices": {"get": {}},
                              "/cases/{case_number}/notices/{notice_id}.pdf": {"get": {}}}}
        else:
            try:
                principal = self.verifier.verify(environ.get("HTTP_AUTHORIZATION", "")[7:])
            except Exception:
                start_response("401 Unauthorized", [("Content-Type", "application/json")])
                return [b'{"error": "token"}']
            self.seen_roles.add(principal.role)
            if principal.role != "supervisor":  # only some roles may read: the others' 403 is no finding
                start_response("403 Forbidden", [("Content-Type", "application/json")])
                return [b'{"error": "forbidden"}']
            body = self.list_body if path == "/things" else self.notices_body if path.endswith("/notices") else None
            if body is None:
                start_response("404 Not Found", [("Content-Type", "application/json")])
                return [b"{}"]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(body, ensure_ascii=False).encode()]


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def serve():
    servers = []

    def start(app) -> str:
        server = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for s in servers:
        s.shutdown()


def test_metric_labels_http_lists_and_notices(serve):
    key = tokens.SigningKey.generate()
    app = _Deployment({"items": [{"case_number": CASE, "applicant": mask_text(ID)}, {"contact": MOBILE}]},
                      {"notices": [{"text": f"统一社会信用代码 {CREDIT}"}]}, f"applicant {ID}", key)
    urls = {"intake-320583101": serve(app)}
    read = Counter()
    metrics = audit_metrics(urls, read=read)
    assert [(f.place, f.kind, f.where) for f in metrics] == [
        ("metric", "resident_id", "intake-320583101 tongban_things{who}")]
    found = audit_http(urls, key, read=read)
    places = {(f.place, f.kind, f.where.split(" as ")[0]) for f in found}
    assert places == {("http", "mobile", "intake-320583101 GET /things"),
                      ("notice", "credit_code", f"intake-320583101 GET /cases/{CASE}/notices")}
    assert all(f.where.endswith("as supervisor@city") or "as supervisor@town:" in f.where for f in found)
    assert {"clerk", "supervisor", "city_admin", "town_agent"} <= app.seen_roles, "read as every staff role"
    assert read["cases"] == 1 and read["http lists"] >= 1 and read["case views"] >= 1
    assert not any(_unmasked(str(f)) for f in metrics + found)


def _tables(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'notify.db'}"
    engine = make_engine(url)
    outbox_table.create(engine)
    inbox_table.create(engine)
    old, recent = NOW - timedelta(days=9), NOW - timedelta(days=1)

    def out(mid, published, body):
        return {"message_id": mid, "exchange": "x.events", "routing_key": "notice.issued.320583101", "body": body,
                "created_at": published or old, "published_at": published, "attempts": 1}

    body = json.dumps({"payload": {"contact": {"phone": MOBILE}}})
    with engine.begin() as conn:
        conn.execute(outbox_table.insert(), [out("old-sent", old, body), out("recent-sent", recent, body),
                                             out("never-sent", None, body), out("old-clean", old, "{}")])
        conn.execute(inbox_table.insert(), [
            {"consumer": "q", "message_id": "old-seen", "message_type": "x", "case_number": ID, "handled_at": old},
            {"consumer": "q", "message_id": "recent-seen", "message_type": "x", "case_number": ID,
             "handled_at": recent}])
    engine.dispose()
    return url


def test_outbox_and_inbox_rows_past_retention(tmp_path):
    url = _tables(tmp_path)
    read = Counter()
    found = audit_tables({"notify": url}, retention_days=7, now=NOW, read=read)
    # only what the retention should have purged: not the recent rows, not an unsent one (never purged)
    assert sorted((f.place, f.kind, f.where) for f in found) == [
        ("inbox", "resident_id", "notify inbox message_id=old-seen"), ("outbox", "mobile", "notify outbox id=1")]
    assert read["old rows"] == 3
    assert not any(_unmasked(str(f)) for f in found)


def test_audit_pii_of_a_data_folder_and_the_command(tmp_path, capsys, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    _tables(data)
    (data / "demo.log").write_text(f"{{\"phone\": \"{MOBILE}\"}}\n", encoding="utf-8")
    found = audit_pii(data, now=NOW, retention_days=7)
    assert {f.place for f in found} == {"log", "outbox", "inbox"}
    monkeypatch.setenv("TONGBAN_DATA_DIR", str(data))
    assert cli.main(["audit-pii", "--json"]) == 1
    listed = json.loads(capsys.readouterr().out)
    assert {f["place"] for f in listed} >= {"log"} and not _unmasked(json.dumps(listed))
    (data / "demo.log").write_text("{}\n", encoding="utf-8")
    (data / "notify.db").unlink()
    assert cli.main(["audit-pii"]) == 0
    assert "0 unmasked number(s) found" in capsys.readouterr().err


def _portal(environ, start_response):
    """A portal: sign in, a workbench linking to a case page, which shows an unmasked number; a PDF link."""
    path, cookie = environ["PATH_INFO"], environ.get("HTTP_COOKIE", "")
    if path == "/login" and environ["REQUEST_METHOD"] == "POST":
        start_response("303 See Other", [("Location", "/clerk"), ("Set-Cookie", "s=1; Path=/")])
        return [b""]
    if "s=1" not in cookie:
        start_response("303 See Other", [("Location", "/login")])
        return [b""]
    pages = {"/clerk": '<a href="/clerk/cases/1">1</a> <a href="/clerk/cases/1/notices/1.pdf">pdf</a> '
                       '<a href="/logout">out</a>',
             "/clerk/cases/1": f"<td>{mask_text(ID)}</td><td>{MOBILE}</td>",
             "/login": "<form></form>"}
    if path not in pages:
        start_response("404 Not Found", [("Content-Type", "text/html")])
        return [b"no such page; " + ID.encode()]
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
    return [pages[path].encode()]


def test_portal_pages_as_a_signed_in_staff_member_sees_them(serve):
    url = serve(_portal)
    read = Counter()
    found = audit_portal(url, {"c001": "pw"}, read=read)
    assert [(f.place, f.kind, f.where) for f in found] == [("portal", "mobile", "portal GET /clerk/cases/1 as c001")]
    assert read == {"portal sign-ins": 1, "portal pages": 2}
    assert not _unmasked(str(found[0]))
