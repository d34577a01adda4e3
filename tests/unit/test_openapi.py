"""The OpenAPI documents: valid, complete, and true to what the services really accept. No broker."""
from __future__ import annotations

import copy
import json
import re
from datetime import UTC, date, datetime, timedelta, timezone
from functools import cache
from importlib import metadata
from types import SimpleNamespace

import pytest
from apispec.ext.marshmallow import resolver
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator
from jsonschema import ValidationError as JsonSchemaError
from marshmallow import Schema, ValidationError, fields, validate
from marshmallow.decorators import VALIDATES, VALIDATES_SCHEMA
from openapi_spec_validator import validate as validate_spec
from werkzeug.routing import Map, Rule
from werkzeug.test import EnvironBuilder

from services.agent.schemas import HelpApplicantSchema
from services.evaluation.rating_schemas import ComplainantSchema, RaterSchema
from shared.config import Settings
from shared.metrics import ServiceMetrics
from shared.openapi import MAX_ID, build_openapi, convert_path
from shared.schemas import ApplicantSchema, ErrorSchema, OpenApiDocumentSchema
from shared.web import HttpEntrypoint
from tests.support import VALID_ID, VALID_PHONE
from tongban.runtime import host_layout, service_class

LAYOUT = {s.instance: s for s in host_layout(Settings(service="x", instance="x"))}
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}

# Marshmallow validators JSON Schema cannot express, as (schema, field name or "@validates_schema"):
# (why, fix-up). Generated examples get known-good values from the fix-up; every other field must
# load exactly as the document says.
VALID_CREDIT_CODE = "91350100M000100Y43"


def _valid_identity(applicant: dict) -> None:
    applicant["phone"] = VALID_PHONE
    if applicant.get("type", "person") == "person":
        applicant["id_number"] = VALID_ID
    else:
        applicant["credit_code"] = VALID_CREDIT_CODE


def _valid_phone(person: dict) -> None:
    person["phone"] = VALID_PHONE


CUSTOM_VALIDATED = {
    (ApplicantSchema, "@validates_schema"): (
        "a person needs a 居民身份证 number with a right GB 11643 check digit and birth date, an organisation a "
        "统一社会信用代码 with a right GB 32100 check character, everyone a mainland mobile number",
        _valid_identity),
    (HelpApplicantSchema, "@validates_schema"): ("a mainland mobile number", _valid_phone),
    (ComplainantSchema, "@validates_schema"): ("a mainland mobile number", _valid_phone),
    (RaterSchema, "@validates_schema"): ("a mainland mobile number, if any", _valid_phone),
}
# validators apispec's marshmallow plugin turns into JSON Schema keywords (Email: the field's own `format: email`)
EXPRESSIBLE = (validate.OneOf, validate.Length, validate.Regexp, validate.Range, validate.Email)

WRONG_TYPE = {"string": 12345, "integer": "twelve", "number": "twelve", "boolean": {"not": "a boolean"},
              "array": "not a list", "object": ["not", "an", "object"]}
UNKNOWN = "zz_not_in_the_schema"

hyp = settings(database=None, deadline=None, max_examples=100,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@cache
def service(instance: str) -> type:
    return service_class(LAYOUT[instance])


@cache
def spec(instance: str) -> dict:
    return build_openapi(service(instance), title=instance, version="1.0")


def api_routes(cls) -> dict[str, tuple]:
    return {name: getattr(cls, name).api_route for name in dir(cls) if hasattr(getattr(cls, name), "api_route")}


def http_entrypoints(cls) -> dict[str, HttpEntrypoint]:
    """Every HTTP entrypoint but the portal's pages and files (HTML for people, not API operations)."""
    return {name: ext for name in dir(cls) for ext in getattr(getattr(cls, name), "nameko_entrypoints", ())
            if isinstance(ext, HttpEntrypoint) and not hasattr(getattr(cls, name), "page_route")}


def operations(doc: dict):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in HTTP_METHODS:
                yield method.upper(), path, op


def with_body(instance: str):
    """Operations whose body a marshmallow schema reads (not Open311's, written out as JSON Schema)."""
    routes = api_routes(service(instance))
    return [(instance, op["operationId"]) for _, _, op in operations(spec(instance))
            if "requestBody" in op and routes[op["operationId"]][3] is not None]


# one case per service kind (the instances of a kind share their schemas)
BODY_CASES = sorted({(LAYOUT[i].service, op): (i, op) for i in LAYOUT for _, op in with_body(i)}.values())


def test_the_layout_has_bodies_to_check():
    assert {op for _, op in BODY_CASES} >= {"submit_case", "decide"}


# --- the document -------------------------------------------------------------------------------

@pytest.mark.parametrize("instance", LAYOUT)
def test_document_is_valid_openapi_3_0(instance):
    doc = spec(instance)
    assert doc["openapi"] == "3.0.3" and doc["info"] == {"title": instance, "version": "1.0"}
    assert "servers" not in doc
    validate_spec(doc)


@pytest.mark.parametrize("instance", LAYOUT)
def test_every_http_entrypoint_and_nothing_else(instance):
    cls = service(instance)
    entrypoints = http_entrypoints(cls)
    documented = {op["operationId"]: (method, path) for method, path, op in operations(spec(instance))}
    assert set(documented) == set(entrypoints) == set(api_routes(cls))
    assert {(e.method, e.url) for e in entrypoints.values()} == {r[:2] for r in api_routes(cls).values()}

    # each documented path, filled with values of its parameters' types, is routed by werkzeug to
    # the same method, with the parameters converted to those types
    urls = Map([Rule(e.url, methods=[e.method], endpoint=name) for name, e in entrypoints.items()]).bind("x")
    samples = {"integer": ("7", 7), "string": ("abc-1", "abc-1")}
    for method, path, op in operations(spec(instance)):
        params = {p["name"]: samples[p["schema"]["type"]] for p in op.get("parameters", []) if p["in"] == "path"}
        assert set(re.findall(r"{(\w+)}", path)) == set(params)
        assert all(p["required"] for p in op.get("parameters", []) if p["in"] == "path")
        url = re.sub(r"{(\w+)}", lambda m, params=params: params[m[1]][0], path)
        assert urls.match(url, method) == (op["operationId"], {k: v[1] for k, v in params.items()})
        assert documented[op["operationId"]] == (method, path)


def test_path_conversion_of_both_kinds_of_parameter():
    approval = spec("approval-renshe")["paths"]["/work-items/{item_id}/decision"]["post"]
    assert approval["parameters"] == [{"name": "item_id", "in": "path", "required": True,
                                       "schema": {"type": "integer", "minimum": 0, "maximum": MAX_ID}}]
    intake = spec("intake-320583101")["paths"]["/cases/{case_number}"]["get"]
    assert intake["parameters"][0]["schema"] == {"type": "string"}


def test_path_parameters_say_what_werkzeug_routes():
    path, params = convert_path("/a/<int(min=1, max=9):n>/<int(signed=True):s>/<float:f>/<uuid:u>/<any(x, y):k>"
                                "/<string(length=9):town>/<name>/<path:rest>")
    assert path == "/a/{n}/{s}/{f}/{u}/{k}/{town}/{name}/{rest}"
    assert {p["name"]: p["schema"] for p in params} == {
        "n": {"type": "integer", "minimum": 1, "maximum": 9}, "s": {"type": "integer", "maximum": MAX_ID},
        "f": {"type": "number", "minimum": 0}, "u": {"type": "string", "format": "uuid"},
        "k": {"type": "string", "enum": ["x", "y"]}, "town": {"type": "string", "pattern": "^(?:[^/]{9})$"},
        "name": {"type": "string"}, "rest": {"type": "string"}}
    assert [p["name"] for p in params] == ["n", "s", "f", "u", "k", "town", "name", "rest"]
    assert all(p["in"] == "path" and p["required"] for p in params)
    town = Map([Rule("/<string(length=9):town>")]).bind("x")
    assert town.match("/320583101") and not re.fullmatch(params[5]["schema"]["pattern"], "32058310")


def component(schema_cls) -> str:
    """The component name apispec's marshmallow plugin gives a schema class (FooSchema -> Foo)."""
    return resolver(schema_cls)


def ref(schema_cls) -> dict:
    return {"$ref": f"#/components/schemas/{component(schema_cls)}"}


def success_content(response) -> dict:
    """{media type: {"schema": ...}} of the success answer; a list: each form the caller may ask for."""
    forms = response if isinstance(response, list) else [response]
    return {media: {"schema": wanted} for media, wanted in map(success_schema, forms)}


def success_schema(response) -> tuple[str, dict]:
    if response is None:
        return "application/json", {"type": "object"}
    if isinstance(response, str):
        return response, {"type": "string"} if response.startswith("text/") else {"type": "string", "format": "binary"}
    if isinstance(response, tuple):
        return "application/json", {"oneOf": [ref(r) for r in response]}
    if isinstance(response, dict):
        return "application/json", response
    return "application/json", ref(response)


@pytest.mark.parametrize("instance", LAYOUT)
def test_operations_follow_their_api_route(instance):
    cls = service(instance)
    routes = api_routes(cls)
    for method, path, op in operations(spec(instance)):
        name = op["operationId"]
        _, _, roles, schema, public = routes[name]
        doc = (getattr(cls, name).__doc__ or "").strip()
        assert op.get("summary") == (doc.splitlines()[0] if doc else None)
        response = getattr(cls, name).api_response
        optional = getattr(getattr(cls, name), "api_optional_roles", None)  # Open311's api_key
        if optional:
            assert public and op["security"] == [{}, {"bearerAuth": []}] and op["x-roles"] == list(optional)
        else:
            assert op["security"] == ([] if public else [{"bearerAuth": []}])
            assert op.get("x-roles") == (None if public or not roles else list(roles))
        written_out = getattr(getattr(cls, name), "api_request_body", None)  # Open311's JSON or form
        if written_out:
            assert schema is None and op["requestBody"] == {"content": written_out}
        elif schema is None:
            assert "requestBody" not in op
        else:
            body = op["requestBody"]
            assert body["required"] is True
            assert body["content"]["application/json"]["schema"] == ref(schema)
        has_params = "{" in path
        expected = {"200"}
        if method == "POST":
            expected |= {"201", "409"}
        if not public:
            expected |= {"401", "403"}
        query = getattr(getattr(cls, name), "api_query", None)
        if has_params or schema is not None or query:  # a path, a query or a body naming a record
            expected |= {"404"}
        if has_params or schema is not None or query:
            expected |= {"400"}
        errors = getattr(getattr(cls, name), "api_errors", None)
        if errors:  # a protocol of its own (Open311): its error codes and body
            expected = {"200"} | ({"201"} if method == "POST" else set()) | {str(c) for c in errors[0]}
        else:  # a database away for a moment: 503 with Retry-After (shared.web)
            expected |= {"503"}
        answers = getattr(getattr(cls, name), "api_answers", {})  # statuses the handler answers itself
        expected |= {str(c) for c in answers}
        assert set(op["responses"]) == expected
        if not errors and 503 not in answers:
            assert set(op["responses"]["503"]["headers"]) == {"Retry-After"}
        for code, answer in op["responses"].items():
            error = errors[1] if errors else ref(ErrorSchema)
            wanted = {"application/json": {"schema": error}} if int(code) >= 400 else success_content(response)
            assert answer["content"] == (success_content(answers[int(code)]) if int(code) in answers else wanted)
    assert spec(instance)["components"]["securitySchemes"] == {"bearerAuth": {"type": "http", "scheme": "bearer"}}


@pytest.mark.parametrize("instance", LAYOUT)
def test_openapi_json_is_served_publicly_by_every_service(instance):
    cls = service(instance)
    assert cls.openapi.api_route == ("GET", "/openapi.json", None, None, True)
    assert cls.openapi.api_response is OpenApiDocumentSchema
    assert (http_entrypoints(cls)["openapi"].method, http_entrypoints(cls)["openapi"].url) == ("GET", "/openapi.json")
    assert spec(instance)["paths"]["/openapi.json"]["get"]["security"] == []

    # the handler itself, without a token: a stand-in platform instead of the nameko dependency
    svc = cls()
    svc.platform = SimpleNamespace(settings=LAYOUT[instance], metrics=ServiceMetrics(instance))
    response = cls.openapi(svc, EnvironBuilder(path="/openapi.json").get_request())
    assert response.status_code == 200 and response.mimetype == "application/json"
    served = json.loads(response.get_data())
    assert served == build_openapi(cls, title=instance, version=metadata.version("tongban"))
    validate_spec(served)
    assert_matches_document(served, served, "openapi")


def assert_matches_document(body, doc: dict, operation: str, status: str = "200"):
    """A response body against the schema its operation documents for `status`."""
    op = next(op for _, _, op in operations(doc) if op["operationId"] == operation)
    schema = json_schema(op["responses"][status]["content"]["application/json"]["schema"],
                         doc["components"]["schemas"])
    Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER).validate(body)


@pytest.mark.parametrize("instance", LAYOUT)
def test_every_route_declares_its_response(instance):
    """A dump schema for every JSON response (clients and fuzzers check responses against it), a media
    type for any other body; the platform routes (health, metrics, openapi) included."""
    cls = service(instance)
    undeclared = sorted(f"{route[0]} {route[1]} ({name})" for name, route in api_routes(cls).items()
                        if getattr(cls, name).api_response is None)
    assert not undeclared, f"{instance}: routes without response=<Schema> (or a media type): {undeclared}"
    for name in api_routes(cls):
        declared = getattr(cls, name).api_response
        forms = declared if isinstance(declared, list) else [declared]  # a list: the forms a caller may ask for
        for response in forms:
            alternatives = response if isinstance(response, tuple) and len(response) > 1 else (response,)
            assert (isinstance(response, str) and re.fullmatch(r"[a-z]+/[\w.+-]+(; [\w-]+=[\w.-]+)*", response)
                    or isinstance(response, dict) and getattr(getattr(cls, name), "api_errors", None)  # Open311's
                    or all(isinstance(r, type) and issubclass(r, Schema) for r in alternatives)), (name, response)
        media = [success_schema(form)[0] for form in forms]
        assert len(media) == len(set(media)), f"{name}: one form per media type"


@pytest.mark.parametrize("report", [
    {"status": "ok", "instance": "intake-320583101", "checked_seconds_ago": 0.4,
     "checks": {"database": "ok", "broker": "ok", "outbox": "ok", "unroutable": "ok"},
     "outbox": {"backlog": 0, "oldest_unsent_seconds": 0.0, "unroutable": 0, "relay": "on"}},
    {"status": "degraded", "instance": "notify", "checks": {"startup": "error: no checks completed yet"},
     "outbox": {}, "checked_seconds_ago": None},
])
def test_health_reports_match_their_schema(report):
    doc = spec("intake-320583101")
    for operation in ("health", "health_live"):
        assert_matches_document(report, doc, operation)
    with pytest.raises(JsonSchemaError):
        assert_matches_document({**report, "status": "fine"}, doc, "health")


class _Inner(Schema):
    n = fields.Integer(required=True)


class _Loose(Schema):
    """What apispec's plugin alone would document more loosely than marshmallow checks."""

    code = fields.String(validate=validate.Regexp(r"[a-z]+"))
    share = fields.Float(validate=validate.Range(min=0, max=1, min_inclusive=False, max_inclusive=False))
    inner = fields.Nested(_Inner, allow_none=True)


def test_the_document_is_as_strict_as_marshmallow():
    def entry(service, request):
        """Takes a _Loose."""

    entry.api_route, entry.api_response = ("POST", "/loose", None, _Loose, False), _Loose
    doc = build_openapi(type("Svc", (), {"entry": entry}), title="t", version="1")
    validate_spec(doc)
    props = doc["components"]["schemas"]["_Loose"]["properties"]
    assert props["code"]["pattern"] == "^(?:[a-z]+)"  # marshmallow matches at the start, no further
    assert props["share"] == {"type": "number", "minimum": 0, "maximum": 1,
                              "exclusiveMinimum": True, "exclusiveMaximum": True}
    inner = json_schema(props["inner"], doc["components"]["schemas"])
    validator = Draft7Validator(inner)
    assert validator.is_valid(None) and validator.is_valid({"n": 1})
    assert not validator.is_valid({"m": "any object"}) and not validator.is_valid({})
    for bad in ("1abc", ""):
        with pytest.raises(ValidationError):
            _Loose().load({"code": bad})
        assert not re.search(props["code"]["pattern"], bad)


@pytest.mark.parametrize("instance", LAYOUT)
def test_one_component_per_schema_class_each_referenced(instance):
    doc = spec(instance)
    cls = service(instance)
    schemas = [route[3] for route in api_routes(cls).values() if route[3]]
    for name in api_routes(cls):
        response = getattr(cls, name).api_response
        for form in response if isinstance(response, list) else [response]:
            schemas += list(form) if isinstance(form, tuple) else [form]
    # the common error body, wherever an operation of ours (not one with a protocol of its own) can fail
    fails = any(int(code) >= 400 for _, _, op in operations(doc) for code in op["responses"]
                if not getattr(getattr(cls, op["operationId"]), "api_errors", None)
                and int(code) not in getattr(getattr(cls, op["operationId"]), "api_answers", {}))
    bodies = [s() for s in schemas if isinstance(s, type)] + ([ErrorSchema()] if fails else [])
    classes = {type(s) for body in bodies for s in reachable_schemas(body)}
    assert len({component(c) for c in classes}) == len(classes), "two schema classes of one name"
    assert set(doc["components"]["schemas"]) == {component(c) for c in classes}
    text = json.dumps(doc)
    assert all(f'"#/components/schemas/{name}"' in text for name in doc["components"]["schemas"])


# --- the request bodies: the document against marshmallow ----------------------------------------

def json_schema(node, components: dict):
    """OpenAPI 3.0 schema -> plain JSON Schema (draft 7): $refs inlined, `nullable` as a null
    alternative, boolean exclusiveMinimum/Maximum as numbers."""
    if isinstance(node, list):
        return [json_schema(n, components) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return json_schema(components[node["$ref"].rsplit("/", 1)[1]], components)
    out = {k: json_schema(v, components) for k, v in node.items() if k != "nullable"}
    for bound in ("Minimum", "Maximum"):
        if out.get(f"exclusive{bound}") is True:
            out[f"exclusive{bound}"] = out.pop(bound.lower())
    return {"anyOf": [{"type": "null"}, out]} if node.get("nullable") else out


# hypothesis-jsonschema 0.23.1 (the latest) breaks on current hypothesis (`many.more()` is gone), so
# examples come from this generator, for the keywords the document uses; every example is also
# checked against the JSON Schema, so the generator cannot drift from it unnoticed.
GENERATED_KEYWORDS = {"type", "enum", "anyOf", "allOf", "default", "description", "format", "pattern",
                      "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                      "items", "minItems", "maxItems", "properties", "required", "additionalProperties"}
JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                       max_size=3), max_leaves=6)
FORMATS = {
    "email": st.emails(),
    "date": st.dates().map(date.isoformat),
    "date-time": st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=8))]))
    .map(datetime.isoformat),
}


def examples(schema: dict) -> st.SearchStrategy:
    """JSON values `schema` accepts, often at the edges of its bounds."""
    assert set(schema) <= GENERATED_KEYWORDS, f"teach examples() {set(schema) - GENERATED_KEYWORDS}"
    if "anyOf" in schema:
        return st.one_of([examples(s) for s in schema["anyOf"]])
    if "allOf" in schema:
        assert len(schema["allOf"]) == 1 and not set(schema) & {"type", "enum", "anyOf"}
        return examples(schema["allOf"][0])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind is None:
        return JSON_VALUES
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        high = schema.get("maximum", schema.get("exclusiveMaximum"))
        if kind == "integer":
            edges = [n for n in (low, high) if n is not None]
            return (st.integers(low, high) | st.sampled_from(edges or [0])).filter(
                lambda n: n not in (schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")))
        return st.floats(low, high, allow_nan=False, allow_infinity=False, exclude_min="exclusiveMinimum" in schema,
                         exclude_max="exclusiveMaximum" in schema)
    if kind == "string":
        low, high = schema.get("minLength", 0), schema.get("maxLength")
        if "format" in schema:
            text = FORMATS[schema["format"]]
        elif "pattern" in schema:
            text = st.from_regex(schema["pattern"])
        else:
            exact = st.sampled_from([low] if high is None else [low, high])
            return st.text(min_size=low, max_size=high) | st.builds(lambda c, n: c * n, st.characters(), exact)
        return text.filter(lambda t: low <= len(t) <= (high if high is not None else len(t)))
    if kind == "array":
        items, low, high = examples(schema.get("items", {})), schema.get("minItems", 0), schema.get("maxItems")
        edge = high or low
        return st.lists(items, min_size=low, max_size=high) | st.lists(items, min_size=edge, max_size=edge)
    assert kind == "object", kind
    properties, required = schema.get("properties", {}), set(schema.get("required", ()))
    known = st.fixed_dictionaries({k: examples(s) for k, s in properties.items() if k in required},
                                  optional={k: examples(s) for k, s in properties.items() if k not in required})
    extra = schema.get("additionalProperties", True)
    if extra is False:
        return known
    others = st.dictionaries(st.text(max_size=8).filter(lambda k: k not in properties),
                             JSON_VALUES if extra is True else examples(extra), max_size=3)
    return st.tuples(known, others).map(lambda pair: {**pair[1], **pair[0]})


def body_case(instance: str, operation: str):
    doc = spec(instance)
    op = next(op for _, _, op in operations(doc) if op["operationId"] == operation)
    schema = json_schema(op["requestBody"]["content"]["application/json"]["schema"], doc["components"]["schemas"])
    return schema, api_routes(service(instance))[operation][3]()


def reachable_schemas(schema) -> list:
    found = [schema]
    for field in schema.fields.values():
        inner = field.inner if isinstance(field, fields.List) else field
        if isinstance(inner, fields.Nested):
            found += reachable_schemas(inner.schema)
    return found


def custom_validated(schema) -> set:
    found = set()
    for s in reachable_schemas(schema):
        for _, _, kwargs in s._hooks[VALIDATES]:
            found |= {(type(s), name) for name in kwargs["field_names"]}
        found |= {(type(s), "@validates_schema") for _ in s._hooks[VALIDATES_SCHEMA]}
        found |= {(type(s), name) for name, f in s.fields.items()
                  if any(not isinstance(v, EXPRESSIBLE) for v in f.validators)}
    return found


def with_known_good_values(data, schema):
    if not isinstance(data, dict):
        return data
    for (owner, _), (_, fix) in CUSTOM_VALIDATED.items():
        if owner is type(schema):
            fix(data)
    for name, field in schema.fields.items():
        value = data.get(field.data_key or name)
        inner = field.inner if isinstance(field, fields.List) else field
        if value is not None and isinstance(inner, fields.Nested):
            for item in value if inner.many or inner is not field else [value]:
                with_known_good_values(item, inner.schema)
    return data


def plain(schema: dict) -> dict:
    """`schema` without its null alternative and its single-allOf wrapper."""
    if "anyOf" in schema:
        schema = next(s for s in schema["anyOf"] if s.get("type") != "null")
    return schema["allOf"][0] if "allOf" in schema else schema


def bad_values(prop: dict):
    """(what, value) the property rejects: null, the wrong type, each constraint broken."""
    if "anyOf" not in prop and "type" in plain(prop):
        yield "null", None
    prop = plain(prop)
    if prop.get("type") in WRONG_TYPE:
        yield "wrong type", WRONG_TYPE[prop["type"]]
    if prop.get("minLength", 0) > 0:
        yield "too short", "x" * (prop["minLength"] - 1)
    if "maxLength" in prop:
        yield "too long", "x" * (prop["maxLength"] + 1)
    mismatch = next((t for t in ("", "x", "-", "0") if not re.search(prop.get("pattern", ""), t)), None)
    if mismatch is not None:
        yield "pattern", mismatch
    if "enum" in prop:
        yield "not in enum", "zz-not-a-choice"
    if "minimum" in prop:
        yield "too small", prop["minimum"] - 1
    if "maximum" in prop:
        yield "too large", prop["maximum"] + 1
    if prop.get("minItems", 0) > 0:
        yield "too few items", []
    if "maxItems" in prop:
        yield "too many items", [None] * (prop["maxItems"] + 1)


def mutations(example, schema: dict, path=()):
    """(what, path, change) making a valid `example` into a body the JSON Schema rejects: a required
    property missing, an unknown one, a bad value for any property or list item — at every depth."""
    schema = plain(schema)
    if schema.get("type") != "object" or not isinstance(example, dict):
        return
    for key in schema.get("required", []):
        yield "missing", path + (key,), lambda body, k=key: body.pop(k)
    if schema.get("additionalProperties") is False:
        yield "unknown", path + (UNKNOWN,), lambda body: body.__setitem__(UNKNOWN, 1)
    for key, prop in schema["properties"].items():
        for what, value in bad_values(prop):
            yield what, path + (key,), lambda body, k=key, v=value: body.__setitem__(k, v)
        if plain(prop).get("type") == "array" and example.get(key):
            for what, value in bad_values(plain(prop)["items"]):
                yield f"item {what}", path + (key, 0), lambda body, k=key, v=value: body[k].__setitem__(0, v)
        for what, where, change in mutations(example.get(key), prop, path + (key,)):
            yield what, where, lambda body, k=key, c=change: c(body[k])


@pytest.mark.parametrize("instance, operation", BODY_CASES)
def test_fields_with_custom_validators_are_listed(instance, operation):
    _, schema = body_case(instance, operation)
    listed = {key for key in CUSTOM_VALIDATED if key[0] in {type(s) for s in reachable_schemas(schema)}}
    assert custom_validated(schema) == listed


@pytest.mark.parametrize("instance, operation", BODY_CASES)
def test_bodies_the_document_allows_are_accepted(instance, operation):
    document, schema = body_case(instance, operation)
    Draft7Validator.check_schema(document)
    validator = Draft7Validator(document, format_checker=Draft7Validator.FORMAT_CHECKER)

    @hyp
    @given(examples(document))
    def check(example):
        body = with_known_good_values(json.loads(json.dumps(example)), schema)
        validator.validate(body)
        try:
            schema.load(body)
        except ValidationError as exc:
            pytest.fail(f"{json.dumps(body, ensure_ascii=False)} is valid by the document, "
                        f"but marshmallow says {exc.messages}")

    check()


@pytest.mark.parametrize("instance, operation", BODY_CASES)
def test_bodies_the_document_rejects_are_rejected(instance, operation):
    document, schema = body_case(instance, operation)
    validator = Draft7Validator(document, format_checker=Draft7Validator.FORMAT_CHECKER)
    seen = set()

    @hyp
    @given(examples(document))
    def check(example):
        example = with_known_good_values(json.loads(json.dumps(example)), schema)
        for what, path, change in mutations(example, document):
            body = copy.deepcopy(example)
            change(body)
            assert not validator.is_valid(body), (what, path)
            with pytest.raises(ValidationError) as raised:
                schema.load(body)
            messages = raised.value.messages
            for step in path:
                assert step in messages, f"{what} {'.'.join(map(str, path))}: marshmallow says {messages}"
                messages = messages[step]
            seen.add(what)

    check()
    assert seen >= {"missing", "null", "wrong type"} | ({"unknown"} if document.get("additionalProperties") is False
                                                        else set())
