"""A database that is away answers 503 with Retry-After (the request may be sent again), never a 500 that
quotes the driver's text."""
from __future__ import annotations

import json
import socket
from types import SimpleNamespace

import sqlalchemy as sa
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from shared.web import api


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


class _Service:
    def __init__(self):
        self.observed = []
        self.platform = SimpleNamespace(metrics=SimpleNamespace(
            observe_request=lambda route, status, seconds: self.observed.append((route, status))))


def _call(handler):
    entry = api("GET", "/things", public=True)(handler)
    service = _Service()
    return entry(service, Request(EnvironBuilder(path="/things").get_environ())), service


def test_an_unreachable_database_is_503_with_retry_after():
    url = f"postgresql://postgres:secret-password@127.0.0.1:{_closed_port()}/tongban"
    engine = sa.create_engine(url, connect_args={"connect_timeout": 2})

    def things(service, call):
        with engine.connect() as conn:  # the real driver's refusal, no stand-in
            return conn.execute(sa.text("SELECT 1 WHERE :id = '110101199003071234'"), {"id": "x"}).all()

    response, service = _call(things)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    body = json.loads(response.get_data(as_text=True))
    assert body["error"] == "unavailable"
    assert "secret-password" not in response.get_data(as_text=True)
    assert "127.0.0.1" not in body["message"]
    assert service.observed == [("GET /things", 503)]


def test_a_lost_connection_mid_request_is_503_too():
    def things(service, call):
        raise sa.exc.InterfaceError("SELECT 1", {}, Exception("connection already closed"))

    response, _ = _call(things)
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"


def test_a_programming_error_stays_a_500():
    def things(service, call):
        raise sa.exc.ProgrammingError("SELECT nonsense", {}, Exception("syntax error"))

    response, service = _call(things)
    assert response.status_code == 500
    assert "Retry-After" not in response.headers
    assert service.observed == [("GET /things", 500)]
