"""Unit tests for shared.auth: scopes, tb1 tokens, bearer parsing, predicates."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import itertools
import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import auth
from shared.auth import (
    ROLES,
    Forbidden,
    InvalidToken,
    Principal,
    Scope,
    can_act_for_department,
    can_see_town,
    issue_token,
    parse_bearer,
    parse_scope,
    require_role,
    verify_token,
)

SECRET = "test-secret-不要在生产环境使用"
NOW = 1_760_000_000  # fixed unix time for deterministic tokens
TOWN = "320583101"  # 昆山市 某镇
OTHER_TOWN = "320583102"
VILLAGE = "320583101001"

# Hypothesis must not write a .hypothesis/ database into the repository.
hyp = settings(database=None, deadline=None)

SCOPE_FORMS = [
    "city",
    f"town:{TOWN}",
    "department:minzheng",
    f"department:weijian@{TOWN}",
    f"village:{VILLAGE}",
]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def forge(payload, secret: str = SECRET) -> str:
    """A correctly signed token around an arbitrary payload (object or raw bytes)."""
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode("utf-8")
    payload_b64 = b64(raw)
    sig = hmac.new(secret.encode("utf-8"), f"tb1.{payload_b64}".encode("ascii"), hashlib.sha256).digest()
    return f"tb1.{payload_b64}.{b64(sig)}"


def good_payload(**overrides):
    payload = {"sub": "zhang01", "role": "clerk", "scope": f"town:{TOWN}", "iat": NOW, "exp": NOW + 60}
    payload.update(overrides)
    return payload


def principal(role: str, scope: str, subject: str = "u1") -> Principal:
    return Principal(subject=subject, role=role, scope=parse_scope(scope), expires_at=NOW + 60, issued_at=NOW)


def reason_of(token, secret: str = SECRET, now=NOW) -> str:
    with pytest.raises(InvalidToken) as info:
        verify_token(secret, token, now=now)
    return info.value.reason


# --------------------------------------------------------------------------
# Scopes
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, kind, town, department, village",
    [
        ("city", "city", None, None, None),
        (f"town:{TOWN}", "town", TOWN, None, None),
        ("department:minzheng", "department", None, "minzheng", None),
        (f"department:weijian@{TOWN}", "department", TOWN, "weijian", None),
        ("department:a", "department", None, "a", None),
        ("department:" + "x" * 32, "department", None, "x" * 32, None),
        (f"department:shi_2_ju@{OTHER_TOWN}", "department", OTHER_TOWN, "shi_2_ju", None),
        (f"village:{VILLAGE}", "village", TOWN, None, VILLAGE),
    ],
)
def test_scope_parse_valid(text, kind, town, department, village):
    scope = parse_scope(text)
    assert scope == Scope(kind, town=town, department=department, village=village)
    assert (scope.kind, scope.town, scope.department, scope.village) == (kind, town, department, village)
    assert str(scope) == text
    assert Scope.parse(str(scope)) == scope


@pytest.mark.parametrize(
    "text",
    [
        "",
        "City",
        "city:",
        " city",
        "city ",
        "county:320583",
        "town",
        "town:",
        "town:32058310",  # 8 digits
        "town:3205831011",  # 10 digits
        "town:32058310a",
        "town:３２０５８３１０１",  # full-width digits
        "town:٣٢٠٥٨٣١٠١",  # Arabic-Indic digits
        f"town:{TOWN}\n",
        f"Town:{TOWN}",
        "department:",
        "department:Minzheng",
        "department:MINZHENG",
        "department:min-zheng",
        "department:min zheng",
        "department:民政",
        "department:" + "x" * 33,
        "department:minzheng@",
        "department:minzheng@32058310",
        f"department:minzheng@{TOWN}@{TOWN}",
        f"department:@{TOWN}",
        f"department:minzheng@{VILLAGE}",
        "village:",
        "village:32058310100",  # 11 digits
        "village:3205831010011",  # 13 digits
        f"village:{TOWN}",
    ],
)
def test_scope_parse_invalid(text):
    with pytest.raises(ValueError, match="scope"):
        parse_scope(text)


@pytest.mark.parametrize(
    "text, explanation",
    [
        ("city:", "'city' takes no"),
        ("town:32058310", "town code must be exactly 9 digits"),
        ("department:Minzheng", "lowercase"),
        ("department:minzheng@3205831", "9 digits"),
        ("village:32058310100", "village code must be exactly 12 digits"),
        ("county:320583", "unknown kind 'county'"),
        ("", "expected 'city'"),
    ],
)
def test_scope_parse_error_messages_explain(text, explanation):
    with pytest.raises(ValueError) as info:
        parse_scope(text)
    assert explanation in str(info.value)
    assert repr(text) in str(info.value)


@pytest.mark.parametrize("value", [None, 42, b"city"])
def test_scope_parse_non_string_is_value_error(value):
    with pytest.raises(ValueError, match="scope must be a string"):
        parse_scope(value)


def test_scope_direct_construction_derives_village_town():
    scope = Scope("village", village=VILLAGE)
    assert scope.town == TOWN
    assert scope == parse_scope(f"village:{VILLAGE}")
    assert str(scope) == f"village:{VILLAGE}"


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(kind="bogus"),
        dict(kind="city", town=TOWN),
        dict(kind="town"),
        dict(kind="town", town="12345"),
        dict(kind="town", town=TOWN, department="minzheng"),
        dict(kind="department"),
        dict(kind="department", department="Minzheng"),
        dict(kind="department", department="minzheng", town="12"),
        dict(kind="village", village="123"),
        dict(kind="village", village=VILLAGE, town=OTHER_TOWN),
        dict(kind="village", village=VILLAGE, department="minzheng"),
    ],
)
def test_scope_direct_construction_is_validated(kwargs):
    with pytest.raises(ValueError):
        Scope(**kwargs)


def test_scope_and_principal_are_frozen():
    scope = parse_scope("city")
    with pytest.raises(dataclasses.FrozenInstanceError):
        scope.kind = "town"  # type: ignore[misc]
    p = principal("clerk", f"town:{TOWN}")
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.role = "city_admin"  # type: ignore[misc]


town_codes = st.text(alphabet="0123456789", min_size=9, max_size=9)
village_codes = st.text(alphabet="0123456789", min_size=12, max_size=12)
dept_codes = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=32)
scope_strings = st.one_of(
    st.just("city"),
    town_codes.map(lambda t: f"town:{t}"),
    dept_codes.map(lambda d: f"department:{d}"),
    st.tuples(dept_codes, town_codes).map(lambda dt: f"department:{dt[0]}@{dt[1]}"),
    village_codes.map(lambda v: f"village:{v}"),
)


@hyp
@given(scope_strings)
def test_scope_round_trip_property(text):
    scope = parse_scope(text)
    assert str(scope) == text
    if scope.kind == "village":
        assert scope.town == scope.village[:9]


@hyp
@given(st.text(max_size=60))
def test_scope_parse_garbage_raises_only_value_error(text):
    try:
        scope = parse_scope(text)
    except ValueError:
        return
    assert str(scope) == text  # whatever is accepted is canonical


# --------------------------------------------------------------------------
# Tokens: round trip and format
# --------------------------------------------------------------------------


@pytest.mark.parametrize("role, scope", list(itertools.product(ROLES, SCOPE_FORMS)))
def test_round_trip_every_role_and_scope(role, scope):
    token = issue_token(SECRET, "zhang01", role, scope, ttl_seconds=600, now=NOW + 0.75)
    p = verify_token(SECRET, token, now=NOW + 1)
    assert p == Principal(subject="zhang01", role=role, scope=parse_scope(scope), expires_at=NOW + 600, issued_at=NOW)
    assert str(p.scope) == scope


def test_roles_are_exactly_the_documented_set():
    assert ROLES == ("clerk", "approver", "department_head", "agent", "town_agent", "supervisor", "city_admin",
                     "service")


def test_token_wire_format_matches_spec():
    token = issue_token(SECRET, "li.si", "approver", f"department:minzheng@{TOWN}", ttl_seconds=3600, now=NOW)
    assert "=" not in token
    version, payload_b64, sig_b64 = token.split(".")
    assert version == "tb1"
    assert json.loads(unb64(payload_b64)) == {
        "sub": "li.si",
        "role": "approver",
        "scope": f"department:minzheng@{TOWN}",
        "iat": NOW,
        "exp": NOW + 3600,
    }
    expected = hmac.new(SECRET.encode(), b"tb1." + payload_b64.encode(), hashlib.sha256).digest()
    assert unb64(sig_b64) == expected
    # and a token forged independently from the spec verifies
    p = verify_token(SECRET, forge(good_payload(role="supervisor", scope="city")), now=NOW)
    assert (p.role, str(p.scope), p.subject) == ("supervisor", "city", "zhang01")


def test_default_ttl_is_eight_hours():
    p = verify_token(SECRET, issue_token(SECRET, "u", "clerk", "city", now=NOW), now=NOW)
    assert p.expires_at - p.issued_at == 8 * 3600


def test_now_defaults_to_current_time():
    before = int(time.time())
    token = issue_token(SECRET, "u", "service", "city", ttl_seconds=120)
    p = verify_token(SECRET, token)
    assert before <= p.issued_at <= int(time.time())
    assert p.expires_at == p.issued_at + 120
    assert reason_of(issue_token(SECRET, "u", "service", "city", now=NOW), now=None) == "token expired"


@pytest.mark.parametrize("subject", ["王小明", "a", "x" * 64, "staff-0042", "zhang.san@town"])
def test_subject_round_trip(subject):
    p = verify_token(SECRET, issue_token(SECRET, subject, "agent", f"village:{VILLAGE}", now=NOW), now=NOW)
    assert p.subject == subject


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(secret=""), "secret"),
        (dict(secret=None), "secret"),
        (dict(secret=b"bytes"), "secret"),
        (dict(subject=""), "subject"),
        (dict(subject="x" * 65), "subject"),
        (dict(subject="zhang san"), "subject"),
        (dict(subject="zhang\n"), "subject"),
        (dict(subject=None), "subject"),
        (dict(role="admin"), "role"),
        (dict(role="Clerk"), "role"),
        (dict(scope="town:123"), "scope"),
        (dict(scope="everywhere"), "scope"),
        (dict(ttl_seconds=0), "ttl"),
        (dict(ttl_seconds=-5), "ttl"),
        (dict(ttl_seconds=1.5), "ttl"),
        (dict(ttl_seconds=True), "ttl"),
        (dict(now=float("nan")), "now"),
        (dict(now="1760000000"), "now"),
    ],
)
def test_issue_token_rejects_bad_arguments(kwargs, fragment):
    args = dict(secret=SECRET, subject="u1", role="clerk", scope="city", ttl_seconds=60, now=NOW)
    args.update(kwargs)
    with pytest.raises(ValueError, match=fragment):
        issue_token(**args)


# --------------------------------------------------------------------------
# Tokens: rejection
# --------------------------------------------------------------------------


def test_tampered_payload_is_bad_signature():
    token = issue_token(SECRET, "zhang01", "clerk", f"town:{TOWN}", now=NOW)
    version, payload_b64, sig = token.split(".")
    payload = json.loads(unb64(payload_b64))
    payload["role"] = "city_admin"
    payload["scope"] = "city"
    tampered = f"{version}.{b64(json.dumps(payload).encode())}.{sig}"
    assert reason_of(tampered) == "bad signature"


def test_tampered_signature_is_bad_signature():
    token = issue_token(SECRET, "zhang01", "clerk", f"town:{TOWN}", now=NOW)
    head, sig = token.rsplit(".", 1)
    flipped = sig[:5] + ("A" if sig[5] != "A" else "B") + sig[6:]
    assert reason_of(f"{head}.{flipped}") == "bad signature"
    assert reason_of(f"{head}.{sig[:-1]}") == "bad signature"
    assert reason_of(f"{head}.{sig}AAAA") == "bad signature"


def test_signature_from_another_payload_is_rejected():
    a = issue_token(SECRET, "a", "clerk", "city", now=NOW)
    b = issue_token(SECRET, "b", "city_admin", "city", now=NOW)
    swapped = ".".join(b.split(".")[:2] + [a.split(".")[2]])
    assert reason_of(swapped) == "bad signature"


def test_wrong_secret_is_bad_signature():
    token = issue_token(SECRET, "zhang01", "clerk", "city", now=NOW)
    assert reason_of(token, secret="another-deployment") == "bad signature"
    assert verify_token(SECRET, token, now=NOW).subject == "zhang01"


def test_expiry_boundaries():
    token = issue_token(SECRET, "zhang01", "clerk", "city", ttl_seconds=100, now=NOW)
    assert verify_token(SECRET, token, now=NOW + 99.999).subject == "zhang01"
    assert reason_of(token, now=NOW + 100) == "token expired"
    assert reason_of(token, now=NOW + 10**6) == "token expired"


def test_signature_is_checked_before_expiry():
    token = issue_token(SECRET, "zhang01", "clerk", "city", ttl_seconds=100, now=NOW)
    assert reason_of(token, secret="other", now=NOW + 1000) == "bad signature"


def test_signature_compare_is_constant_time(monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    token = issue_token(SECRET, "zhang01", "clerk", "city", now=NOW)
    verify_token(SECRET, token, now=NOW)
    assert len(calls) == 1


@pytest.mark.parametrize(
    "payload, reason",
    [
        (good_payload(role="admin"), "unknown role"),
        (good_payload(role=""), "unknown role"),
        (good_payload(scope="town:1"), "bad scope"),
        (good_payload(scope="department:MinZheng"), "bad scope"),
        (good_payload(scope=""), "bad scope"),
        ([1, 2, 3], "malformed token"),
        ("a string", "malformed token"),
        (42, "malformed token"),
        (None, "malformed token"),
        ({}, "malformed token"),
        (good_payload(sub=7), "malformed token"),
        (good_payload(sub=""), "malformed token"),
        (good_payload(sub="x" * 65), "malformed token"),
        (good_payload(sub="a b"), "malformed token"),
        (good_payload(role=["clerk"]), "malformed token"),
        (good_payload(scope=None), "malformed token"),
        (good_payload(scope={"kind": "city"}), "malformed token"),
        (good_payload(iat="1760000000"), "malformed token"),
        (good_payload(exp=float(NOW + 60)), "malformed token"),
        (good_payload(exp=True), "malformed token"),
        (good_payload(exp=NOW), "malformed token"),  # exp must be after iat
        (b"not json", "malformed token"),
        (b"\xff\xfe\x00", "malformed token"),
        (b"", "malformed token"),
        (b'{"sub": "u", "exp": NaN}', "malformed token"),
        (b"[" * 100_000 + b"]" * 100_000, "malformed token"),
        (b'{"iat": 1' + b"0" * 5000 + b"}", "malformed token"),
    ]
    + [({k: v for k, v in good_payload().items() if k != missing}, "malformed token") for missing in good_payload()],
)
def test_signed_but_invalid_payloads(payload, reason):
    assert reason_of(forge(payload)) == reason


def test_unknown_payload_keys_are_ignored():
    p = verify_token(SECRET, forge(good_payload(extra="x", nbf=0)), now=NOW)
    assert p.role == "clerk"


@pytest.mark.parametrize(
    "token",
    [
        "",
        ".",
        "..",
        "...",
        "tb1",
        "tb1.",
        "tb1..",
        "tb1.a.",
        "tb1..a",
        "tb1.a.b.c",
        "tb2.e30.AAAA",
        "TB1.e30.AAAA",
        " tb1.e30.AAAA",
        "tb1.e30=.AAAA",
        "tb1.e30.AAAA=",
        "tb1.e+0.AAAA",
        "tb1.é.AAAA",
        "tb1.令牌.签名",
        "\x00",
        "\ud800",
        "Bearer tb1.e30.AAAA",
        "tb1." + "A" * 5000 + ".AAAA",
    ],
)
def test_garbage_strings_are_malformed(token):
    assert reason_of(token) == "malformed token"


@pytest.mark.parametrize("token", [None, b"tb1.e30.AAAA", 12, ["tb1", "x", "y"]])
def test_non_string_tokens_are_malformed(token):
    assert reason_of(token) == "malformed token"


@pytest.mark.parametrize("secret", ["", None])
def test_verify_token_with_bad_secret_is_configuration_error(secret):
    with pytest.raises(ValueError, match="secret"):
        verify_token(secret, "tb1.e30.AAAA", now=NOW)


@settings(hyp, max_examples=500)
@given(st.text())
def test_any_text_raises_only_invalid_token(text):
    with pytest.raises(InvalidToken) as info:
        verify_token(SECRET, text, now=NOW)
    assert info.value.reason in {"malformed token", "bad signature"}


b64ish = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/.é", max_size=80)


@settings(hyp, max_examples=300)
@given(b64ish, b64ish)
def test_token_shaped_text_raises_only_invalid_token(middle, tail):
    with pytest.raises(InvalidToken):
        verify_token(SECRET, f"tb1.{middle}.{tail}", now=NOW)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
payload_values = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"sub": json_values, "role": st.sampled_from(ROLES) | json_values, "scope": scope_strings | json_values,
         "iat": json_values, "exp": json_values}
    ),
    st.binary(max_size=64),
)


@settings(hyp, max_examples=300)
@given(payload_values)
def test_signed_arbitrary_payloads_never_raise_anything_else(payload):
    try:
        p = verify_token(SECRET, forge(payload), now=NOW)
    except InvalidToken as exc:
        assert exc.reason in {"malformed token", "unknown role", "bad scope", "token expired"}
    else:
        assert p.role in ROLES and p.expires_at > NOW


@hyp
@given(
    st.sampled_from(ROLES),
    scope_strings,
    st.text(min_size=1, max_size=64).filter(lambda s: s.isprintable() and not any(c.isspace() for c in s)),
    st.integers(min_value=1, max_value=10**7),
)
def test_round_trip_property(role, scope, subject, ttl):
    p = verify_token(SECRET, issue_token(SECRET, subject, role, scope, ttl_seconds=ttl, now=NOW), now=NOW)
    assert (p.subject, p.role, str(p.scope), p.issued_at, p.expires_at) == (subject, role, scope, NOW, NOW + ttl)


def test_invalid_token_carries_reason():
    exc = InvalidToken("token expired")
    assert isinstance(exc, Exception)
    assert exc.reason == "token expired"
    assert str(exc) == "token expired"


# --------------------------------------------------------------------------
# parse_bearer
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header, token",
    [
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("BEARER abc", "abc"),
        ("  Bearer   abc  ", "abc"),
        ("Bearer tb1.e30.AAAA", "tb1.e30.AAAA"),
    ],
)
def test_parse_bearer_valid(header, token):
    assert parse_bearer(header) == token


def test_parse_bearer_then_verify():
    token = issue_token(SECRET, "zhang01", "clerk", f"town:{TOWN}", now=NOW)
    assert verify_token(SECRET, parse_bearer(f"Bearer {token}"), now=NOW).subject == "zhang01"


@pytest.mark.parametrize(
    "header",
    [None, "", "   ", "Bearer", "Bearer ", "Bearer    ", "Basic dXNlcjpwYXNz", "Token abc", "Bearerabc", "abc",
     "Bearer\tabc",  # RFC 7235: only SP separates scheme and credentials
     "Bеarer abc", 42, b"Bearer abc"],  # the 'е' in "Bеarer" is Cyrillic
)
def test_parse_bearer_missing(header):
    with pytest.raises(InvalidToken) as info:
        parse_bearer(header)
    assert info.value.reason == "missing bearer token"


@pytest.mark.parametrize("header", ["Bearer a b", "Bearer a\tb", "Bearer a\nb"])
def test_parse_bearer_multiple_credentials_is_malformed(header):
    with pytest.raises(InvalidToken) as info:
        parse_bearer(header)
    assert info.value.reason == "malformed token"


@hyp
@given(st.one_of(st.none(), st.text()))
def test_parse_bearer_raises_only_invalid_token(header):
    try:
        token = parse_bearer(header)
    except InvalidToken as exc:
        assert exc.reason in {"missing bearer token", "malformed token"}
    else:
        assert token and not any(c in token for c in " \t\r\n")


# --------------------------------------------------------------------------
# Authorisation predicates
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "role, scope, town, expected",
    [
        ("city_admin", "city", TOWN, True),
        ("supervisor", "city", OTHER_TOWN, True),
        ("service", "city", TOWN, True),
        ("clerk", f"town:{TOWN}", TOWN, True),
        ("clerk", f"town:{TOWN}", OTHER_TOWN, False),
        ("town_agent", f"town:{TOWN}", TOWN, True),
        ("approver", f"department:minzheng@{TOWN}", TOWN, True),
        ("approver", f"department:minzheng@{TOWN}", OTHER_TOWN, False),
        ("approver", "department:minzheng", TOWN, False),
        ("agent", f"village:{VILLAGE}", TOWN, False),  # its own town: still no
        ("agent", f"village:{VILLAGE}", OTHER_TOWN, False),
        ("city_admin", "city", "32058310", False),  # not a town code
        ("city_admin", "city", VILLAGE, False),
        ("clerk", f"town:{TOWN}", None, False),
    ],
)
def test_can_see_town(role, scope, town, expected):
    assert can_see_town(principal(role, scope), town) is expected


@pytest.mark.parametrize(
    "role, scope, department, town, expected",
    [
        ("approver", f"department:minzheng@{TOWN}", "minzheng", TOWN, True),
        ("department_head", f"department:minzheng@{TOWN}", "minzheng", TOWN, True),
        ("approver", f"department:minzheng@{TOWN}", "minzheng", OTHER_TOWN, False),
        ("approver", f"department:minzheng@{TOWN}", "weijian", TOWN, False),
        ("approver", f"department:minzheng@{TOWN}", "minzheng", None, False),
        ("approver", "department:minzheng", "minzheng", None, True),
        ("department_head", "department:minzheng", "minzheng", None, True),
        ("approver", "department:minzheng", "minzheng", TOWN, False),
        ("approver", "department:minzheng", "weijian", None, False),
        ("clerk", f"department:minzheng@{TOWN}", "minzheng", TOWN, False),
        ("service", "department:minzheng", "minzheng", None, False),
        ("approver", f"town:{TOWN}", "minzheng", TOWN, False),
        ("agent", f"village:{VILLAGE}", "minzheng", TOWN, False),
        ("city_admin", "city", "minzheng", TOWN, True),
        ("city_admin", "city", "weijian", None, True),
        ("city_admin", f"town:{TOWN}", "minzheng", TOWN, False),
        ("supervisor", "city", "minzheng", TOWN, False),
        ("approver", "city", "minzheng", TOWN, False),
        ("department_head", "city", "minzheng", None, False),
    ],
)
def test_can_act_for_department(role, scope, department, town, expected):
    assert can_act_for_department(principal(role, scope), department, town) is expected


def test_require_role_allows_listed_roles():
    p = principal("approver", f"department:minzheng@{TOWN}")
    assert require_role(p, "approver") is None
    assert require_role(p, "department_head", "approver") is None


def test_require_role_forbids_other_roles():
    p = principal("clerk", f"town:{TOWN}")
    with pytest.raises(Forbidden, match=r"^role clerk may not perform this action") as info:
        require_role(p, "approver", "department_head")
    assert "approver" in str(info.value)
    with pytest.raises(Forbidden, match=r"^role clerk may not approve applications"):
        require_role(p, "approver", action="approve applications")
    assert issubclass(Forbidden, Exception) and not issubclass(Forbidden, InvalidToken)


@pytest.mark.parametrize("roles", [(), ("admin",), ("clerk", "Clerk")])
def test_require_role_rejects_bad_role_lists(roles):
    with pytest.raises(ValueError):
        require_role(principal("clerk", "city"), *roles)


def test_a_token_may_carry_the_persons_name_for_what_they_sign():
    token = issue_token(SECRET, "clerk-9", "clerk", "town:320583101", name="张敏")
    assert verify_token(SECRET, token).name == "张敏"
    assert verify_token(SECRET, issue_token(SECRET, "clerk-9", "clerk", "town:320583101")).name is None
    for bad in ("", " 张敏", "x" * 51, "张\n敏"):
        with pytest.raises(ValueError, match="name"):
            issue_token(SECRET, "clerk-9", "clerk", "town:320583101", name=bad)
