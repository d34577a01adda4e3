"""An OpenAPI 3.0.3 document for a service class, built with apispec from its `@api` endpoints.

Every method carrying `api_route` (see shared.web.api) becomes one operation. Its request body
(`api_route[3]`) and its success body (`api_response`) are marshmallow schemas, which apispec's
marshmallow plugin turns into components; path parameters come from werkzeug's converters of the
route, so the document says what the router accepts.
"""
from __future__ import annotations

import inspect
import re

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import validate
from werkzeug.routing import Map, Rule
from werkzeug.routing.converters import (
    AnyConverter,
    BaseConverter,
    FloatConverter,
    IntegerConverter,
    PathConverter,
    UnicodeConverter,
    UUIDConverter,
)

from shared.schemas import ErrorSchema

OPENAPI_VERSION = "3.0.3"

_PARAM = re.compile(r"<(?:[^<>:]+:)?(\w+)>")  # werkzeug: <name>, <int:name>, <string(length=2):name>
_DEFAULT_STRING = UnicodeConverter(Map()).regex  # <name> and <string:name> without arguments

_ERRORS = {400: "Bad request: unreadable or invalid body or parameters", 401: "Missing or invalid bearer token",
           403: "The token's role or scope may not do this", 404: "Not found",
           409: "Conflicts with the current state"}
_UNAVAILABLE = "The service's database is unavailable for a moment: send the request again after Retry-After"
_ANSWERS = {503: "Not ready: the body says what is missing or failing"}


# the largest id a path may name: the services' ids are INTEGER columns (4 bytes on PostgreSQL)
MAX_ID = 2**31 - 1


class IdConverter(IntegerConverter):
    """`<int:...>` of every route: at most MAX_ID unless the route says otherwise, so a larger number is a
    route that does not match (a 404), not a database error."""

    def __init__(self, map, fixed_digits=0, min=None, max=None, signed=False):
        super().__init__(map, fixed_digits, min, MAX_ID if max is None else max, signed)


ROUTE_CONVERTERS = {"int": IdConverter}  # for the routers (shared.web) and for the document alike


def build_openapi(service_cls: type, title: str, version: str) -> dict:
    plugin = MarshmallowPlugin()
    spec = APISpec(title=title, version=version, openapi_version=OPENAPI_VERSION, plugins=[plugin])
    plugin.converter.add_attribute_function(_as_marshmallow_checks)
    spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})

    paths: dict[str, dict] = {}
    for name in sorted(dir(service_cls)):
        fn = getattr(service_cls, name, None)
        route = getattr(fn, "api_route", None)
        if route is None:
            continue
        method, path, roles, schema, public = route
        oa_path, parameters = convert_path(path)
        item = paths.setdefault(oa_path, {})
        if method.lower() in item:
            raise ValueError(f"{method} {path} is declared twice")
        query = getattr(fn, "api_query", None)
        if query is not None:  # apispec's plugin makes a query parameter of each field
            parameters = parameters + [{"in": "query", "schema": query}]
        parameters = parameters + getattr(fn, "api_query_parameters", [])  # written out (Open311's)
        op = _operation(name, fn, method, roles, schema, getattr(fn, "api_response", None), public, parameters,
                        getattr(fn, "api_errors", None))
        if getattr(fn, "api_request_body", None):  # a body not read by a marshmallow schema (Open311's forms)
            op["requestBody"] = {"content": fn.api_request_body}
        if getattr(fn, "api_optional_roles", None):  # public, and a token of these roles may be sent
            op["security"], op["x-roles"] = [{}, {"bearerAuth": []}], list(fn.api_optional_roles)
        item[method.lower()] = op
    for oa_path, operations in paths.items():
        spec.path(path=oa_path, operations=operations)
    return spec.to_dict()


def convert_path(path: str) -> tuple[str, list[dict]]:
    """`/cases/<string:case_number>` -> (`/cases/{case_number}`, [its path parameter])."""
    rule = Rule(path)
    Map([rule], converters=ROUTE_CONVERTERS)  # binding parses the rule and makes its converters
    # `_converters` (name -> converter, in path order) is private, but the only place werkzeug keeps them
    parameters = [{"name": name, "in": "path", "required": True, "schema": _converter_schema(converter)}
                  for name, converter in rule._converters.items()]
    return _PARAM.sub(r"{\1}", path), parameters


def _converter_schema(converter: BaseConverter) -> dict:
    if isinstance(converter, (IntegerConverter, FloatConverter)):
        out = {"type": "integer" if isinstance(converter, IntegerConverter) else "number"}
        low = converter.min if converter.min is not None else (None if converter.signed else 0)
        if low is not None:
            out["minimum"] = low
        if converter.max is not None:
            out["maximum"] = converter.max
        return out
    if isinstance(converter, UUIDConverter):
        return {"type": "string", "format": "uuid"}
    if isinstance(converter, AnyConverter):
        return {"type": "string", "enum": sorted(converter.items)}
    if isinstance(converter, PathConverter) or converter.regex == _DEFAULT_STRING:
        return {"type": "string"}
    return {"type": "string", "pattern": f"^(?:{converter.regex})$"}  # <string(length=9):town> and the like


def _operation(name, fn, method, roles, schema, response, public, parameters, errors=None) -> dict:
    op = {"operationId": name}
    summary, _, description = inspect.cleandoc(fn.__doc__ or "").partition("\n")
    if summary:
        op["summary"] = summary
    if description.strip():
        op["description"] = description.strip()
    if parameters:
        op["parameters"] = parameters
    if schema is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
    op["security"] = [] if public else [{"bearerAuth": []}]
    if roles and not public:
        op["x-roles"] = list(roles)

    responses = {"200": {"description": "OK", "content": _success_content(response)}}
    if method == "POST":
        responses["201"] = {"description": "Created", "content": _success_content(response)}
    codes = [400] if schema is not None or parameters else []
    codes += [] if public else [401, 403]
    codes += [404] if parameters or schema is not None else []  # a path, a query or a body naming a record
    codes += [409] if method == "POST" else []
    codes = errors[0] if errors else codes  # a protocol of its own (Open311): its codes and error body
    for code in codes:
        responses[str(code)] = {"description": _ERRORS.get(code, "Error"),
                                "content": {"application/json": {"schema": errors[1] if errors else ErrorSchema}}}
    if not errors:  # shared.web: a database away for a moment (the handler's own 503 below takes precedence)
        responses["503"] = {"description": _UNAVAILABLE, "headers": {"Retry-After": {
            "description": "seconds to wait before sending the request again", "schema": {"type": "integer"}}},
            "content": {"application/json": {"schema": ErrorSchema}}}
    for code, body in getattr(fn, "api_answers", {}).items():  # a status the handler answers itself
        responses[str(code)] = {"description": _ANSWERS.get(code, "See the body"), "content": _success_content(body)}
    op["responses"] = responses
    return op


def _success_content(response) -> dict:
    """`api(response=...)`: a marshmallow schema (JSON), a media type (a PDF, the metrics text), a list of
    those (the forms a caller may ask for), or not given."""
    if isinstance(response, list):
        return {media: schema for form in response for media, schema in _success_content(form).items()}
    if response is None:
        return {"application/json": {"schema": {"type": "object"}}}  # undeclared: any JSON object
    if isinstance(response, dict):  # a JSON Schema written out (a body that is not an object, e.g. Open311's)
        return {"application/json": {"schema": response}}
    if isinstance(response, str):
        text = response.startswith("text/")
        return {response: {"schema": {"type": "string"} if text else {"type": "string", "format": "binary"}}}
    if isinstance(response, tuple):  # one of these shapes (each strict, so a body matches exactly one)
        return {"application/json": {"schema": {"oneOf": list(response)}}}
    return {"application/json": {"schema": response}}


def _as_marshmallow_checks(self, field, ret: dict, **kwargs) -> dict:
    """An apispec attribute function: what the plugin writes more loosely than marshmallow checks."""
    out = {}
    pattern = ret.get("pattern")
    if pattern is not None and not pattern.startswith("^"):
        out["pattern"] = f"^(?:{pattern})"  # marshmallow's Regexp matches at the start, JSON Schema searches
    ranges = [v for v in field.validators if isinstance(v, validate.Range)]
    if any(not v.min_inclusive and v.min == ret.get("minimum") for v in ranges):
        out["exclusiveMinimum"] = True  # the plugin drops min_inclusive/max_inclusive
    if any(not v.max_inclusive and v.max == ret.get("maximum") for v in ranges):
        out["exclusiveMaximum"] = True
    # a nullable Nested: the plugin's null alternative, {"type": "object", "nullable": true}, admits any object
    for alternative in ret.get("anyOf", ()):
        if alternative == {"type": "object", "nullable": True}:
            alternative["enum"] = [None]
    return out
