"""Fuzzing a running test city's HTTP APIs from their own OpenAPI documents with schemathesis
(tests/service/test_fuzz_http.py): the operations, the roles' tokens, the checks and a report that says
what failed as a developer needs it to reproduce it."""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import quote

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support import TOWN_A

DEPARTMENT = "renshe"  # the department whose office has a work item among the seeded records
# one instance of each kind: the instances of a kind serve one document
INSTANCES = ("portal", f"intake-{TOWN_A}", f"approval-{DEPARTMENT}", "agent", "notify", "evaluation")
# each role in a scope of its own where the seeded records are (town A)
ROLE_SCOPES = {
    "clerk": f"town:{TOWN_A}",
    "approver": f"department:{DEPARTMENT}@{TOWN_A}",
    "department_head": f"department:{DEPARTMENT}@{TOWN_A}",
    "agent": f"village:{TOWN_A}001",
    "town_agent": f"town:{TOWN_A}",
    "supervisor": "city",
    "city_admin": "city",
    "service": "city",
}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
# its documented 503 says a dependency is down (the broker restarted by other work on this machine), not a fault
READINESS = "GET /health"
# path parameter values no route takes as they are: the wrong type, characters a router or a database may
# trip over, a number too large for any column
BAD_PATH_VALUES = ("abc", "-1", "0x1f", "1.5", "9" * 40, "%00", "%25", "%2F", "..", "é", "'", "a b", "x" * 300)


@dataclass
class Failure:
    where: str  # instance, operation, role, mode
    text: str  # the request (curl), the response, what is wrong


@dataclass
class Report:
    operations: set = field(default_factory=set)  # (instance, label)
    examples: Counter = field(default_factory=Counter)  # (instance, label) -> requests sent
    failures: list[Failure] = field(default_factory=list)

    def summary(self) -> str:
        counts = sorted(self.examples.values()) or [0]
        return (f"fuzzed {len(self.operations)} operations of {len({i for i, _ in self.operations})} instances, "
                f"{sum(counts)} requests; per operation min {counts[0]}, median {counts[len(counts) // 2]}, "
                f"max {counts[-1]}")

    def explain(self) -> str:
        return f"{len(self.failures)} failure(s); {self.summary()}\n\n" + "\n\n".join(
            f"=== {f.where}\n{f.text}" for f in self.failures)


def documented_media_type_parameters(doc_media: list[str], received: str | None) -> str | None:
    """What is wrong when the response's media type lacks a parameter its documented type names
    (schemathesis compares type and subtype only), or None."""
    if not received:
        return None
    got = _media_type(received)
    for documented in doc_media:
        wanted = _media_type(documented)
        if wanted[0] == got[0]:
            missing = {k: v for k, v in wanted[1].items() if got[1].get(k) != v}
            if missing:
                return f"Content-Type {received!r} lacks the documented {documented!r}"
    return None


def _media_type(text: str) -> tuple[str, dict]:
    kind, *params = [p.strip() for p in text.split(";")]
    return kind.lower(), {k.strip().lower(): v.strip() for k, _, v in (p.partition("=") for p in params if p)}


def _tokens(city) -> dict[str | None, str | None]:
    return {None: None, **{role: city.token(role, scope, f"fuzz-{role}") for role, scope in ROLE_SCOPES.items()}}


def _roles(definition: dict) -> list[str | None]:
    """Who calls an operation: each role it names, any role where it names none; nobody's token if public
    (and the roles it names too where a token is optional, as Open311's api_key)."""
    security = definition.get("security")
    if security == []:
        return [None]
    return ([None] if {} in security else []) + list(definition.get("x-roles") or ROLE_SCOPES)


def _path_parameters(definition: dict) -> list[str]:
    return [p["name"] for p in definition.get("parameters", []) if p["in"] == "path"]


def _describe(exc: BaseException) -> str:
    """What schemathesis (or the check) says: the failures, the response, the request as curl; each failure of
    a group hypothesis found (a FailureGroup's message already holds its failures)."""
    parts = [str(exc).strip()]
    if isinstance(exc, BaseExceptionGroup) and not isinstance(exc, FailureGroup):
        parts += [_describe(inner) for inner in exc.exceptions]
    parts += [note.strip() for note in getattr(exc, "__notes__", ()) if note.strip()]
    return _shorter("\n".join(p for p in parts if p))


def _shorter(text: str, head: int = 40) -> str:
    """The first lines (what is wrong) and, from the response on, the rest (the response and the curl)
    without the long JSON Schema excerpts in between."""
    lines = text.splitlines()
    tail = next((i for i in range(len(lines) - 1, -1, -1) if re.match(r"\s*\[\d{3}\] ", lines[i])), len(lines))
    if tail <= head:
        return text
    return "\n".join(lines[:head] + ["    [...]"] + lines[tail:])


def fuzz_operation(report: Report, instance: str, base_url: str, operation, definition: dict, role, token,
                   examples: int, known: dict, negative: bool = True) -> None:
    """`examples` positive (and, if `negative`, negative) examples of one operation with one role's token;
    again with the seeded records' ids in the path (deeper than a 404) where there are some."""
    fixed = {name: known[name] for name in _path_parameters(definition) if name in known}
    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) if negative else (GenerationMode.POSITIVE,)
    for path_parameters in [None] + ([fixed] if fixed else []):
        for mode in modes:
            where = (f"{instance} {operation.label} as {role or 'anonymous (public)'}, {mode.value}"
                     + (f", seeded path {path_parameters}" if path_parameters else ""))
            check = _examples(report, (instance, operation.label), base_url, operation, definition, token,
                              examples, mode, path_parameters)
            try:
                check()
            except Unsatisfiable:
                continue  # nothing to make invalid (no body, no constrained parameter): no negative example
            except BaseException as exc:  # noqa: B036 (a failure group is a BaseExceptionGroup)
                if isinstance(exc, KeyboardInterrupt | SystemExit):
                    raise
                report.failures.append(Failure(where, _describe(exc)))


def _examples(report: Report, key, base_url: str, operation, definition: dict, token, examples: int, mode,
              path_parameters):
    """The hypothesis test of one operation, role and mode: derandomized, so every run sends the same."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    checks = CHECKS + ([negative_data_rejection] if mode == GenerationMode.NEGATIVE else [])
    if operation.label == READINESS:
        checks = [c for c in checks if c is not not_a_server_error]
    media = {code: list((answer.get("content") or {}).keys()) for code, answer in definition["responses"].items()}
    session = requests.Session()

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None, print_blob=False,
              phases=[Phase.explicit, Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck))
    # the token fixed, not generated: a negative example is one whose parameters or body are wrong
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters, headers=headers or None))
    def check(case):
        report.examples[key] += 1
        response = case.call(base_url=base_url, session=session, headers=headers, timeout=30)
        case.validate_response(response, checks=checks, headers=headers)
        wrong = documented_media_type_parameters(media.get(str(response.status_code), []),
                                                 response.headers.get("Content-Type"))
        assert wrong is None, f"{wrong}\n{case.as_curl_command(headers=headers, base_url=base_url)}"

    return check


def probe_path_parameters(report: Report, instance: str, base_url: str, path: str, method: str,
                          definition: dict, token) -> None:
    """Each path parameter replaced by values no route takes as they are: a JSON 4xx, never HTML or a 5xx."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    names = _path_parameters(definition)
    for name in names:
        for bad in BAD_PATH_VALUES:
            url = base_url + re.sub(r"{(\w+)}", lambda m, name=name, bad=bad: bad if m[1] == name else "1", path)
            r = requests.request(method, url, headers=headers, timeout=30)
            report.examples[(instance, f"{method} {path}")] += 1
            kind = r.headers.get("Content-Type", "")
            if not (400 <= r.status_code < 500 and kind.startswith("application/json")):
                report.failures.append(Failure(
                    f"{instance} {method} {path}: bad path parameter {name}={bad!r}",
                    f"curl -X {method} {quote(url, safe=':/?=&%')!r}"
                    + (" -H 'Authorization: Bearer <token>'" if token else "")
                    + f"\n-> {r.status_code} {kind}\n{r.text[:500]}"))


def run(city, examples: int, known: dict[str, dict], probes: bool = True, negative_every_role: bool = False) -> Report:
    """Fuzz every operation of every kind of instance of a started, seeded city; negative examples with one
    role of each operation (bad input is refused before any role's rule is asked), or with each."""
    report = Report()
    tokens = _tokens(city)
    for instance in INSTANCES:
        base_url = city.url(instance)
        r = city.call("GET", instance, "/openapi.json")
        assert r.status_code == 200, f"{instance} /openapi.json: {r.status_code} {r.text[:300]}"
        doc = r.json()
        schema = schemathesis.openapi.from_dict(doc)
        for result in schema.get_all_operations():
            operation = result.ok()
            definition = doc["paths"][operation.path][operation.method.lower()]
            report.operations.add((instance, operation.label))
            roles = _roles(definition)
            for role in roles:
                fuzz_operation(report, instance, base_url, operation, definition, role, tokens[role], examples,
                               known.get(instance, {}), negative=negative_every_role or role == roles[-1])
            if probes:
                probe_path_parameters(report, instance, base_url, operation.path, operation.method.upper(),
                                      definition, tokens[roles[0]])
    return report
