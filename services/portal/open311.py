"""Portal pages: Open311 GeoReport v2 for online channels (a self-service kiosk, an app).

    GET  /open311/v2/services.json               the catalogue's items as services
    GET  /open311/v2/services/<code>.json        a service's definition (its attributes)
    POST /open311/v2/requests.json               a request becomes a case at a town's window (api_key needed)
    GET  /open311/v2/requests/<id>.json          a request's status (nothing personal)

JSON only (the `.json` format). The mapping is services/portal/open311_rules.py. Every error answers in the
specification's format, `[{"code": 400, "description": "..."}]`, with that HTTP status; this is why these
endpoints have their own thin decorator rather than shared.web.api (whose errors are `{error, message}` and
which hands a handler no form-encoded body).

api_key: an API token (`tongban token`, or the portal's) of a clerk or a service, as `Authorization: Bearer`
or the `api_key` argument. A town's key files at that town's window; a city key names the town as
`jurisdiction_id`. The case is opened through the town's intake (POST /cases) as that key's holder, so the
window checks their scope itself.
"""
from __future__ import annotations

import json
import time
from types import SimpleNamespace

from services.portal.applicant_rules import town_of
from services.portal.open311_rules import (
    Open311Error,
    case_body,
    definition_of,
    department_names,
    json_request_fields,
    offered,
    request_fields,
    request_of,
    service_notice,
    service_of,
)
from services.portal.upstream import UpstreamDown
from shared import auth
from shared.logging import get_logger
from shared.web import http, json_response

log = get_logger(__name__)

PORTAL = SimpleNamespace(staff_number="portal", role="service", scope="city", name=None)
FILERS = ("clerk", "service")
PREFIX = "/open311/v2"


# the GeoReport v2 error body: a list of {code, description}
OPEN311_ERRORS = {"type": "array", "items": {"type": "object", "required": ["code", "description"],
                                             "properties": {"code": {"type": "integer"},
                                                            "description": {"type": "string"}}}}


# what a request is filed with (GeoReport v2 POST requests.json): as JSON (`attribute` an object) or as a form
# (`attribute[code]`, `attribute[code][]`); the window checks the applicant's fields
_FILED = {"service_code": {"type": "string"}, "jurisdiction_id": {"type": "string"},
          "api_key": {"type": "string", "description": "or the Authorization header"},
          "first_name": {"type": "string"}, "last_name": {"type": "string"}, "phone": {"type": "string"},
          "email": {"type": "string"}, "description": {"type": "string"}}
REQUEST_BODY = {
    "application/json": {"schema": {"type": "object", "properties": {**_FILED, "attribute": {
        "type": "object", "additionalProperties": {"anyOf": [{"type": "string"},
                                                             {"type": "array", "items": {"type": "string"}}]}}}}},
    "application/x-www-form-urlencoded": {"schema": {"type": "object", "properties": _FILED,
                                                     "additionalProperties": {"type": "string"}}},
}
KEY_ARGUMENT = {"name": "api_key", "in": "query", "required": False, "schema": {"type": "string"},
                "description": "an API token of a clerk or a service (or the Authorization header)"}


def open311(method: str, path: str, body: dict | None = None, query: tuple = (), keyed: bool = False):
    """`fn(self, request, **params)` returning (status, payload) as JSON; Open311Error in the spec's format.

    For the document: `body` the request body's content, `query` the query arguments (OpenAPI parameters),
    `keyed` that an api_key (a clerk's or a service's token) may be given as a bearer token."""

    def decorator(fn):
        route = f"{method} {path}"

        def entry(service, request, **params):
            status = 500
            started = time.perf_counter()
            try:
                status, payload = fn(service, request, **params)
                return json_response(payload, status)
            except Open311Error as exc:
                status = exc.status
                return json_response(exc.body(), exc.status)
            except UpstreamDown as exc:
                status = 503
                return json_response([{"code": 503, "description": str(exc)}], 503)
            except Exception:
                log.exception("open311.failed", route=route)
                return json_response([{"code": 500, "description": "internal error; the incident is logged"}], 500)
            finally:
                service.platform.metrics.observe_request(route, status, time.perf_counter() - started)

        entry.__name__ = fn.__name__
        entry.__doc__ = fn.__doc__
        # in the portal's OpenAPI document: public, JSON arrays or objects, errors in the spec's format
        entry.api_route = (method, path, None, None, True)
        entry.api_response = {"oneOf": [{"type": "array", "items": {"type": "object"}}, {"type": "object"}]}
        entry.api_errors = ([400, 403, 404, 503], OPEN311_ERRORS)
        entry.api_request_body, entry.api_query_parameters = body, list(query)
        entry.api_optional_roles = FILERS if keyed else None
        return http(method, path)(entry)

    return decorator


def routing_error(path: str, exc):
    """A request under /open311/v2 no route takes (an unknown service code with a slash, another method):
    the specification's error format, as every other error of these endpoints; elsewhere None."""
    if not path.startswith(PREFIX + "/"):
        return None
    status = exc.code or 400
    return json_response([{"code": status, "description": f"{path}: {exc.name.lower()}"}], status)


def _as_user(principal):
    """The key's holder as the portal's upstream calls take a person (they sign a short token for them)."""
    return SimpleNamespace(staff_number=principal.subject, role=principal.role, scope=str(principal.scope),
                           name=principal.name)


class Open311Api:
    """Mixed into the portal service (services/portal/service.py); its @page / @api methods are entrypoints."""

    # --- the catalogue, as the portal's own service reads it from any window ----------------------------

    def _catalogue_call(self, path: str):
        windows = self.upstreams.instances("intake-")
        if not windows:
            raise Open311Error(503, "no window service is configured")
        answer = self.upstreams.call(PORTAL, "GET", windows[0], path)
        if answer.status in (400, 404):  # no such code, or none the window could even look up
            raise Open311Error(404, "service_code not found")
        if not answer.ok:
            raise Open311Error(503, f"the catalogue is not available now ({answer.message()})")
        return answer.body

    def _department_names(self) -> dict:
        return department_names(self._catalogue_call("/catalog"))

    def _open311_item(self, code: str) -> dict:
        if not code or "/" in code:
            raise Open311Error(404, "service_code not found")
        item = self._catalogue_call(f"/catalog/items/{code}")
        if not offered(item):
            raise Open311Error(404, f"service_code {code} must be applied for in person at a window")
        return item

    @open311("GET", PREFIX + "/services.json")
    def open311_services(self, request):
        """The catalogue's items that may be asked for online, as services."""
        catalog = self._catalogue_call("/catalog")
        names = department_names(catalog)
        return 200, [service_of(i, names) for i in catalog["items"] if offered(i)]

    @open311("GET", PREFIX + "/services/<string:code>.json")
    def open311_service_definition(self, request, code):
        """A service's definition: the applicant's fields and the materials checklist as attributes."""
        return 200, definition_of(self._open311_item(code))

    # --- requests -------------------------------------------------------------------------------------

    def _key_holder(self, request, plain: dict):
        """Whose api_key (argument or Bearer) this is: a clerk or a service, as the portal's key signed it."""
        header = request.headers.get("Authorization")
        if not header and not (plain.get("api_key") or "").strip():
            raise Open311Error(403, "api_key required")
        try:
            token = auth.parse_bearer(header) if header else plain["api_key"].strip()
            principal = self.platform.tokens.verify(token)
        except auth.InvalidToken as exc:
            raise Open311Error(403, f"api_key invalid: {exc.reason}") from None
        if principal.role not in FILERS:
            raise Open311Error(403, f"api_key invalid: role {principal.role} may not file requests")
        return principal

    def _filer(self, request, plain: dict):
        """Who files: the api_key's holder (a clerk or a service), and the town whose window opens the case."""
        principal = self._key_holder(request, plain)
        jurisdiction = (plain.get("jurisdiction_id") or "").strip()
        if principal.scope.kind == "city":
            if not jurisdiction:
                raise Open311Error(400, "jurisdiction_id (the town code) required with a city api_key")
            town = jurisdiction
        elif principal.scope.kind == "town":
            town = principal.scope.town
            if jurisdiction and jurisdiction != town:
                raise Open311Error(403, f"api_key invalid for jurisdiction_id {jurisdiction}")
        else:
            raise Open311Error(403, "api_key invalid: not a town's or the city's")
        return _as_user(principal), town

    @staticmethod
    def _arguments(request) -> dict[str, list[str]]:
        if (request.mimetype or "") == "application/json":
            try:
                body = json.loads(request.get_data(cache=True) or b"{}")
            except (ValueError, UnicodeDecodeError):
                raise Open311Error(400, "the request body is not valid JSON") from None
            if not isinstance(body, dict):
                raise Open311Error(400, "the request body must be a JSON object")
            return json_request_fields(body)
        return {k: request.form.getlist(k) for k in request.form.keys()}

    @open311("POST", PREFIX + "/requests.json", body=REQUEST_BODY, keyed=True)
    def open311_create_request(self, request):
        """A service request: a case opened at the town's window (POST /cases), its number the request id."""
        plain, attributes = request_fields(self._arguments(request))
        user, town = self._filer(request, plain)
        code = (plain.get("service_code") or "").strip()
        if not code:
            raise Open311Error(400, "service_code required")
        item = self._open311_item(code)
        window = f"intake-{town}"
        if window not in self.upstreams.urls:
            raise Open311Error(404, f"jurisdiction_id {town} not found")
        answer = self.upstreams.call(user, "POST", window, "/cases", body=case_body(plain, attributes, item))
        if answer.status in (401, 403):
            raise Open311Error(403, f"api_key invalid: {answer.message()}")
        if not answer.ok:
            raise Open311Error(400 if 400 <= answer.status < 500 else 503, answer.message())
        case = answer.body
        log.info("open311.request_filed", case_number=case["case_number"], item=code)
        return 201, [{"service_request_id": case["case_number"], "service_notice": service_notice(case),
                      "account_id": None}]

    @open311("GET", PREFIX + "/requests/<string:request_id>.json", query=(KEY_ARGUMENT,), keyed=True)
    def open311_request(self, request, request_id):
        """A request's status: open or closed, the status notes, the service, when asked and last updated.

        Asked with an api_key (argument or Bearer) like a request is filed: case numbers are sequential, so a
        request is shown only to a key whose town (or the city) may see it; any other answer is a 404, as for
        a request that does not exist."""
        user = _as_user(self._key_holder(request, {"api_key": request.args.get("api_key", "")}))
        town = town_of(request_id)
        window = f"intake-{town}"
        if town is None or window not in self.upstreams.urls:
            raise Open311Error(404, f"service_request_id {request_id} not found")
        answer = self.upstreams.call(user, "GET", window, f"/cases/{request_id}")
        if answer.status in (403, 404):
            raise Open311Error(404, f"service_request_id {request_id} not found")
        if not answer.ok:
            raise Open311Error(503, f"the window service is not available now ({answer.message()})")
        return 200, [request_of(answer.body, self._department_names())]

