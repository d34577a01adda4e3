"""HTTP APIs on nameko's web entrypoint: bearer tokens, JSON bodies checked by marshmallow,
and a clear 4xx for every bad request — never a 500 for bad input.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from importlib import metadata

import eventlet
from marshmallow import Schema, ValidationError
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp
from sqlalchemy import exc as db_errors
from werkzeug import exceptions as http_errors
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import Map, RequestRedirect
from werkzeug.wrappers import Request, Response

from shared import auth, errors
from shared.auth import Principal
from shared.logging import bind_context, get_logger
from shared.openapi import ROUTE_CONVERTERS, build_openapi
from shared.pii import mask_value
from shared.schemas import ErrorSchema, HealthSchema, OpenApiDocumentSchema

log = get_logger(__name__)


class ApiError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, details=None):
        super().__init__(message)
        self.message = message
        self.details = details


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    status, code = 409, "conflict"


class ServiceUnavailable(ApiError):
    status, code = 503, "unavailable"


# The one table from domain error types to HTTP answers, for every service. A subclass inherits its
# base's row (approval's ExtensionTaken is a NotAllowedNow: 409) unless it has a row of its own.
ERROR_STATUS: dict[type[Exception], tuple[int, str]] = {
    errors.RuleViolation: (400, "bad_request"),
    errors.NotAllowedNow: (409, "conflict"),
    errors.NotVisible: (404, "not_found"),
    errors.NotPermitted: (403, "forbidden"),
    auth.Forbidden: (403, "forbidden"),
    ValidationError: (400, "bad_request"),
}


# The database went away or is busy for a moment (a restart, a failover, a full pool, SQLite's lock): the
# request was most likely not done (a lost commit may have been) and may be sent again -- with its
# Idempotency-Key, a step already done answers as done or 409 -- so 503 with Retry-After, not 500.
DATABASE_UNAVAILABLE = (db_errors.OperationalError, db_errors.InterfaceError, db_errors.TimeoutError,
                        db_errors.DisconnectionError)
RETRY_AFTER_SECONDS = 5


def note_database_unavailable(route: str, exc: Exception) -> None:
    # the driver's text may quote the statement and its parameters: only the error's type is logged and answered
    log.warning("http.database_unavailable", route=route, error=type(getattr(exc, "orig", None) or exc).__name__)


def database_unavailable_response(route: str, exc: Exception) -> Response:
    note_database_unavailable(route, exc)
    response = error_response(503, "unavailable", "the service's database is unavailable; try again shortly")
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def error_status(exc: Exception) -> tuple[int, str] | None:
    """The (status, code) of a domain error: the row of its nearest type in ERROR_STATUS."""
    for cls in type(exc).__mro__:
        if cls in ERROR_STATUS:
            return ERROR_STATUS[cls]
    return None


def domain_error_response(exc: Exception) -> Response | None:
    mapped = error_status(exc)
    if mapped is None:
        return None
    status, code = mapped
    if isinstance(exc, errors.DomainError):
        return error_response(status, code, exc.message, exc.details)
    if isinstance(exc, ValidationError):
        return error_response(status, code, "invalid input", exc.messages)
    return error_response(status, code, str(exc))


class JsonRoutingApp(WsgiApp):
    """nameko's WSGI app, except that a request no route takes (an unknown path, a path parameter of the
    wrong type or too large, another method) is answered like every other error of an API, in JSON, not
    with werkzeug's HTML page: the service class's `routing_error` says how (PlatformEndpoints)."""

    def __call__(self, environ, start_response):
        request = Request(environ, shallow=True)  # as nameko's: nobody reads the body before the handler
        adapter = self.url_map.bind_to_environ(environ)
        try:
            provider, values = adapter.match()
        except RequestRedirect as exc:  # a canonical URL (a slash added): werkzeug's redirect as it is
            return exc(environ, start_response)
        except HTTPException as exc:
            if isinstance(exc, MethodNotAllowed) and not _routed_otherwise(adapter, exc.valid_methods or ()):
                # werkzeug says 405 when this method's route refused a parameter (an id too large) and another
                # method's route has the same pattern; if that one refuses it too, nothing is there
                exc = http_errors.NotFound()
            answer = getattr(self.server.container.service_cls, "routing_error", lambda *_: None)(request.path, exc)
            if answer is None:
                answer = exc
            elif isinstance(exc, MethodNotAllowed) and exc.valid_methods:
                answer.headers["Allow"] = ", ".join(exc.valid_methods)
            return answer(environ, start_response)
        request.path_values = values
        return provider.handle_request(request)(environ, start_response)


def _routed_otherwise(adapter, methods) -> bool:
    """Whether the path is really served under one of `methods` (its parameters converted and all)."""
    for method in methods:
        try:
            adapter.match(method=method)
            return True
        except RequestRedirect:
            return True
        except HTTPException:
            continue
    return False


class ExclusiveWebServer(WebServer):
    """nameko's web server, except that it owns its port alone and closes it when killed.

    nameko listens with SO_REUSEPORT and leaves the socket open on kill, so a restarted or second
    instance on the same port would silently share connections with a dead one.
    """

    def start(self):
        if not self._starting:
            self._starting = True
            self._sock = eventlet.listen(self.bind_addr, reuse_port=False)
            self._sock.settimeout(None)
            self._serv = self.get_wsgi_server(self._sock, self.get_wsgi_app())
            self._gt = self.container.spawn_managed_thread(self.run, identifier="web-server")

    def make_url_map(self):
        url_map = Map(converters=ROUTE_CONVERTERS)  # as nameko's, with our converters (bounded ids)
        for provider in self._providers:
            rule = provider.get_url_rule()
            rule.endpoint = provider
            url_map.add(rule)
        return url_map

    def get_wsgi_app(self):
        return JsonRoutingApp(self)

    def kill(self):
        self._is_accepting = False
        if getattr(self, "_gt", None) is not None:
            self._gt.kill()
        if getattr(self, "_sock", None) is not None:
            self._sock.close()
        super().kill()


class HttpEntrypoint(HttpRequestHandler):
    server = ExclusiveWebServer()


http = HttpEntrypoint.decorator


class ImmediateHttpEntrypoint(HttpEntrypoint):
    """An endpoint answered in the web server's own green thread, without a nameko worker.

    A worker waits for a free slot of the container's pool (max_workers): under load every slot may
    be busy with requests waiting on the database, and /health would wait behind them. Only for
    handlers that do no I/O and use nothing but `self.platform` (the health routes).
    """

    def handle_request(self, request):
        request.shallow = False
        try:
            args, kwargs = self.get_entrypoint_parameters(request)
            service = self.container.service_cls()
            service.platform = next(d for d in self.container.dependencies if d.attr_name == "platform")
            return self.response_from_result(getattr(service, self.method_name)(*args, **kwargs))
        except Exception as exc:
            return self.response_from_exception(exc)


immediate_http = ImmediateHttpEntrypoint.decorator


@dataclass
class ApiCall:
    """What a handler gets: who asks, the checked body, path parameters and query arguments."""

    principal: Principal | None
    body: dict | None
    params: dict
    query: dict
    headers: dict = field(default_factory=dict)


def _json_default(value):
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # stored in UTC; SQLite hands it back without its zone
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def json_response(payload, status: int = 200) -> Response:
    """Every JSON answer of every service, masked at the edge (shared.pii.mask_value): ID, credit-code and
    mobile numbers typed into any field -- a name, a reason, a note -- leave masked, not only known fields."""
    return Response(json.dumps(mask_value(payload), ensure_ascii=False, default=_json_default), status=status,
                    mimetype="application/json")


def error_response(status: int, code: str, message: str, details=None) -> Response:
    body = {"error": code, "message": message}
    if details is not None:
        body["details"] = details
    return json_response(body, status)


def _has_nul(value) -> bool:
    """A NUL character anywhere in a string of `value`: PostgreSQL stores no such text (psycopg2 refuses it)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _read_json(request, schema: Schema) -> dict:
    raw = request.get_data(cache=True)
    if not raw:
        raise BadRequest("request body must be a JSON object")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object")
    if _has_nul(data):
        raise BadRequest("request body text may not contain NUL characters")
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise BadRequest("request body is invalid", exc.messages) from None


def api(method: str, path: str, roles: tuple[str, ...] | None = None, schema: type[Schema] | None = None,
        public: bool = False, immediate: bool = False,
        response: type[Schema] | tuple[type[Schema], ...] | str | list | None = None,
        query: type[Schema] | None = None, answers: dict[int, type[Schema]] | None = None):
    """Decorate `fn(self, call: ApiCall)` as an HTTP endpoint returning (status, payload) or payload.

    `schema` loads the request body; `response` is the marshmallow schema of the success body (for the
    OpenAPI document and for clients and fuzzers that check responses), a tuple of schemas when the body
    is one of several shapes, or the media type of a body that is not JSON ("application/pdf", "text/plain"); a
    list of those when the caller chooses the form (a report as JSON, CSV or a spreadsheet).

    `query`: the query arguments (a shared.schemas.QuerySchema), for the document and checked before the
    handler runs (a 400 saying which is wrong); the handler still reads them as the strings sent.

    `answers`: other statuses the handler itself answers with a body of its own ({503: HealthSchema}).

    `immediate`: answered without a worker (see ImmediateHttpEntrypoint); for the health routes."""

    def decorator(fn):
        route = f"{method} {path}"

        def entry(service, request, **params):
            platform = service.platform
            status = 500
            started = time.perf_counter()
            try:
                principal = None
                if not public:
                    try:
                        token = auth.parse_bearer(request.headers.get("Authorization"))
                        principal = platform.tokens.verify(token)
                    except auth.InvalidToken as exc:
                        raise Unauthorized(exc.reason) from None
                    if roles and principal.role not in roles:
                        raise Forbidden(f"role {principal.role} may not use {route}")
                    bind_context(user=principal.subject, role=principal.role)
                if _has_nul(params) or _has_nul(request.args.to_dict()):
                    raise BadRequest("path and query arguments may not contain NUL characters")
                if query is not None and (problems := query().validate(request.args.to_dict())):
                    raise BadRequest("query arguments are invalid", problems)
                body = _read_json(request, schema()) if schema else None
                call = ApiCall(principal=principal, body=body, params=params,
                               query=request.args.to_dict(), headers=dict(request.headers))
                result = fn(service, call)
                if isinstance(result, Response):
                    status = result.status_code
                    return result
                status, payload = result if isinstance(result, tuple) else (200, result)
                return json_response(payload, status)
            except ApiError as exc:
                status = exc.status
                return error_response(exc.status, exc.code, exc.message, exc.details)
            except DATABASE_UNAVAILABLE as exc:
                status = 503
                return database_unavailable_response(route, exc)
            except Exception as exc:
                answer = domain_error_response(exc)
                if answer is not None:
                    status = answer.status_code
                    return answer
                log.exception("http.internal_error", route=route)
                return error_response(500, "internal", "internal error; the incident is logged")
            finally:
                platform.metrics.observe_request(route, status, time.perf_counter() - started)

        entry.__name__ = fn.__name__
        entry.__doc__ = fn.__doc__
        entry.api_route = (method, path, roles, schema, public)
        entry.api_response = response
        entry.api_query = query
        entry.api_answers = answers or {}
        return (immediate_http if immediate else http)(method, path)(entry)

    return decorator


# what an operation answers until the deployment's item catalogue has arrived (shared.reference)
NO_CATALOGUE_YET = {503: ErrorSchema}


class PlatformEndpoints:
    """/health, /metrics and /openapi.json, served by every service without a token."""

    @classmethod
    def routing_error(cls, path: str, exc: HTTPException) -> Response | None:
        """A request no route takes (JsonRoutingApp): a JSON error like any other of the API; None would
        leave werkzeug's own page."""
        if exc.code == 405:
            return error_response(405, "method_not_allowed", f"{path} does not take this method")
        if exc.code == 404:
            return error_response(404, "not_found", f"no such resource: {path} (a path parameter of the "
                                                    "wrong form names nothing)")
        return error_response(exc.code or 400, "bad_request", exc.description or "bad request")

    @api("GET", "/health", public=True, immediate=True, response=HealthSchema, answers={503: HealthSchema})
    def health(self, call: ApiCall):
        """Readiness: 200 when every background check passes, 503 "degraded" with what failed.

        Answered from checks a background thread keeps fresh (database, broker, the oldest unsent
        outbox message, unroutable messages), so it never waits on a busy database or broker, nor
        for a free worker."""
        report = self.platform.health_report()
        return (200 if report["status"] == "ok" else 503), report

    @api("GET", "/health/live", public=True, immediate=True, response=HealthSchema)
    def health_live(self, call: ApiCall):
        """Liveness: 200 while the process serves requests; the body still says what is degraded."""
        return 200, self.platform.health_report()

    @api("GET", "/metrics", public=True, response="text/plain; version=0.0.4")
    def metrics(self, call: ApiCall):
        """Prometheus metrics, in its text exposition format."""
        return Response(self.platform.metrics.render(), status=200,
                        mimetype="text/plain; version=0.0.4; charset=utf-8")

    @api("GET", "/openapi.json", public=True, response=OpenApiDocumentSchema)
    def openapi(self, call: ApiCall):
        """This service's HTTP API as an OpenAPI 3.0 document."""
        try:
            version = metadata.version("tongban")
        except metadata.PackageNotFoundError:
            version = "0"
        return build_openapi(type(self), title=self.platform.settings.instance, version=version)
