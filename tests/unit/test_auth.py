"""Unit tests for shared.auth (scopes, bearer parsing, predicates) and shared.tokens (JWTs: issue and verify,
key ids and rotation, forgery and algorithm confusion, revocations)."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import hmac
import itertools
import json
import time

import jwt
import jwt.algorithms
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import tokens
from shared.auth import (
    ROLES,
    Forbidden,
    InvalidToken,
    Principal,
    Scope,
    can_act_for_department,
    can_see_town,
    parse_bearer,
    parse_scope,
    require_role,
)
from shared.tokens import Revocations, SigningKey, TokenVerifier, issue, jwks_text

KEY = SigningKey.generate()  # the deployment's key (the portal's)
OTHER = SigningKey.generate()  # another deployment's, or an attacker's
VERIFIER = TokenVerifier(jwks_text(KEY))
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


def raw_token(header, claims, key: SigningKey | None) -> str:
    """A compact JWS made by hand: any header and claims (object or raw bytes), signed by `key` with EdDSA
    whatever the header says (None: an empty signature)."""
    raw = claims if isinstance(claims, bytes) else json.dumps(claims).encode("utf-8")
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(raw)}"
    signature = key.private.sign(signing_input.encode("ascii")) if key else b""
    return f"{signing_input}.{b64(signature)}"


def forge(claims, key: SigningKey = KEY) -> str:
    """A correctly signed token (through PyJWT) around arbitrary claims (object or raw bytes)."""
    raw = claims if isinstance(claims, bytes) else json.dumps(claims).encode("utf-8")
    return jwt.api_jws.encode(raw, key.private, algorithm="EdDSA", headers={"kid": key.kid})


def good_claims(**overrides):
    claims = {"sub": "zhang01", "role": "clerk", "scope": f"town:{TOWN}", "iat": NOW, "exp": NOW + 60,
              "iss": tokens.ISSUER, "aud": tokens.AUDIENCE}
    claims.update(overrides)
    return claims


def principal(role: str, scope: str, subject: str = "u1") -> Principal:
    return Principal(subject=subject, role=role, scope=parse_scope(scope), expires_at=NOW + 60, issued_at=NOW)


def reason_of(token, now=NOW, verifier: TokenVerifier = VERIFIER) -> str:
    with pytest.raises(InvalidToken) as info:
        verifier.verify(token, now=now)
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
# Tokens (shared.tokens): round trip and format
# --------------------------------------------------------------------------


def test_round_trip_every_role_and_scope():
    for role, scope in itertools.product(ROLES, SCOPE_FORMS):
        token = issue(KEY, "zhang01", role, scope, ttl_seconds=600, now=NOW + 0.75)
        p = VERIFIER.verify(token, now=NOW + 1)
        assert p == Principal(subject="zhang01", role=role, scope=parse_scope(scope), expires_at=NOW + 600,
                              issued_at=NOW)
        assert str(p.scope) == scope


def test_roles_are_exactly_the_documented_set():
    assert ROLES == ("clerk", "approver", "department_head", "agent", "town_agent", "supervisor", "city_admin",
                     "service")


def test_token_is_a_standard_eddsa_jwt_naming_its_key():
    token = issue(KEY, "li.si", "approver", f"department:minzheng@{TOWN}", ttl_seconds=3600, now=NOW)
    header_b64, claims_b64, _ = token.split(".")
    assert "=" not in token
    assert json.loads(unb64(header_b64)) == {"alg": "EdDSA", "typ": "JWT", "kid": KEY.kid}
    assert json.loads(unb64(claims_b64)) == {
        "sub": "li.si", "role": "approver", "scope": f"department:minzheng@{TOWN}", "iat": NOW, "exp": NOW + 3600,
        "iss": tokens.ISSUER, "aud": tokens.AUDIENCE,
    }
    # any JWT library with the public key checks it: nothing of ours is needed to read our tokens
    public = KEY.private.public_key()
    assert jwt.decode(token, public, algorithms=["EdDSA"], audience="tongban", options={"verify_exp": False})["sub"] \
        == "li.si"
    # and a token made independently with PyJWT from the same claims verifies
    p = VERIFIER.verify(forge(good_claims(role="supervisor", scope="city")), now=NOW)
    assert (p.role, str(p.scope), p.subject) == ("supervisor", "city", "zhang01")


def test_the_key_id_is_the_public_keys_thumbprint():
    jwk = KEY.public_jwk()
    assert jwk["kid"] == KEY.kid and jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519" and "d" not in jwk
    assert SigningKey.from_pem(KEY.to_pem()).kid == KEY.kid
    assert OTHER.kid != KEY.kid
    keys = json.loads(jwks_text(KEY, OTHER))["keys"]
    assert [k["kid"] for k in keys] == [KEY.kid, OTHER.kid]
    assert all("d" not in k for k in keys)  # no private half in a key set


def test_default_ttl_is_eight_hours():
    p = VERIFIER.verify(issue(KEY, "u", "clerk", "city", now=NOW), now=NOW)
    assert p.expires_at - p.issued_at == 8 * 3600


def test_now_defaults_to_current_time():
    before = int(time.time())
    p = VERIFIER.verify(issue(KEY, "u", "service", "city", ttl_seconds=120))
    assert before <= p.issued_at <= int(time.time())
    assert p.expires_at == p.issued_at + 120
    assert reason_of(issue(KEY, "u", "service", "city", now=NOW), now=None) == "token expired"


@pytest.mark.parametrize("subject", ["王小明", "a", "x" * 64, "staff-0042", "zhang.san@town"])
def test_subject_round_trip(subject):
    assert VERIFIER.verify(issue(KEY, subject, "agent", f"village:{VILLAGE}", now=NOW), now=NOW).subject == subject


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
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
        (dict(name=""), "name"),
        (dict(name=" 张敏"), "name"),
        (dict(name="x" * 51), "name"),
        (dict(name="张\n敏"), "name"),
    ],
)
def test_issue_rejects_bad_arguments(kwargs, fragment):
    args = dict(subject="u1", role="clerk", scope="city", ttl_seconds=60, now=NOW)
    args.update(kwargs)
    with pytest.raises(ValueError, match=fragment):
        issue(KEY, **args)


def test_a_token_may_carry_the_persons_name_for_what_they_sign():
    assert VERIFIER.verify(issue(KEY, "clerk-9", "clerk", f"town:{TOWN}", name="张敏")).name == "张敏"
    assert VERIFIER.verify(issue(KEY, "clerk-9", "clerk", f"town:{TOWN}")).name is None
    assert reason_of(forge(good_claims(name="张\n敏"))) == "malformed token"


def test_signing_key_from_pem_refuses_what_is_not_an_ed25519_key():
    with pytest.raises(ValueError, match="PEM"):
        SigningKey.from_pem("not a key")
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    with pytest.raises(ValueError, match="Ed25519"):
        SigningKey.from_pem(rsa_pem)


def test_a_key_set_with_other_than_ed25519_keys_is_refused():
    rsa_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa.generate_private_key(65537, 2048).public_key()))
    with pytest.raises(ValueError, match="Ed25519"):
        TokenVerifier({"keys": [rsa_jwk]})


# --------------------------------------------------------------------------
# Tokens: keys, rotation, forgery
# --------------------------------------------------------------------------


def test_unknown_kid_is_refused():
    token = issue(OTHER, "zhang01", "clerk", "city", now=NOW)
    assert reason_of(token) == "token signed by an unknown key"
    assert reason_of(raw_token({"alg": "EdDSA", "typ": "JWT"}, good_claims(), KEY)) == "token signed by an unknown key"


def test_another_key_under_our_kid_is_bad_signature():
    impostor = SigningKey(OTHER.private, KEY.kid)
    assert reason_of(issue(impostor, "zhang01", "city_admin", "city", now=NOW)) == "bad signature"


def test_rotation_both_keys_of_the_set_verify():
    new = SigningKey.generate()
    both = TokenVerifier(jwks_text(KEY, new))
    old_token, new_token = (issue(k, "zhang01", "clerk", "city", now=NOW) for k in (KEY, new))
    assert both.verify(old_token, now=NOW).subject == both.verify(new_token, now=NOW).subject == "zhang01"
    # the old key dropped later: its tokens are refused, the new one's still verify
    only_new = TokenVerifier(json.loads(jwks_text(new)))
    assert only_new.verify(new_token, now=NOW).subject == "zhang01"
    assert reason_of(old_token, verifier=only_new) == "token signed by an unknown key"


def test_tampered_claims_are_bad_signature():
    token = issue(KEY, "zhang01", "clerk", f"town:{TOWN}", now=NOW)
    header, claims_b64, sig = token.split(".")
    claims = json.loads(unb64(claims_b64))
    claims.update(role="city_admin", scope="city")
    assert reason_of(f"{header}.{b64(json.dumps(claims).encode())}.{sig}") == "bad signature"


def test_tampered_signature_is_refused():
    token = issue(KEY, "zhang01", "clerk", f"town:{TOWN}", now=NOW)
    head, sig = token.rsplit(".", 1)
    flipped = sig[:5] + ("A" if sig[5] != "A" else "B") + sig[6:]
    assert reason_of(f"{head}.{flipped}") == "bad signature"
    assert reason_of(f"{head}.{sig[:-4]}") in {"bad signature", "malformed token"}
    assert reason_of(f"{head}.") in {"bad signature", "malformed token"}


def test_signature_from_another_token_is_rejected():
    a = issue(KEY, "a", "clerk", "city", now=NOW)
    b = issue(KEY, "b", "city_admin", "city", now=NOW)
    assert reason_of(".".join(b.split(".")[:2] + [a.split(".")[2]])) == "bad signature"


def test_expiry_boundaries():
    token = issue(KEY, "zhang01", "clerk", "city", ttl_seconds=100, now=NOW)
    assert VERIFIER.verify(token, now=NOW + 99.999).subject == "zhang01"
    assert reason_of(token, now=NOW + 100) == "token expired"
    assert reason_of(token, now=NOW + 10**6) == "token expired"


def test_signature_is_checked_before_expiry():
    impostor = SigningKey(OTHER.private, KEY.kid)
    assert reason_of(issue(impostor, "zhang01", "clerk", "city", ttl_seconds=100, now=NOW), now=NOW + 1000) \
        == "bad signature"


# --- algorithm confusion: only EdDSA is ever accepted, whatever the header says ---

def _hs256(secret: bytes) -> str:
    """A token with alg HS256 keyed with `secret` (what an attacker holding only public material can make)."""
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": KEY.kid}).encode())
    claims = b64(json.dumps(good_claims(role="city_admin", scope="city")).encode())
    sig = hmac.new(secret, f"{header}.{claims}".encode(), hashlib.sha256).digest()
    return f"{header}.{claims}.{b64(sig)}"


PUBLIC_PEM = KEY.private.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
PUBLIC_RAW = KEY.private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(_hs256(jwks_text(KEY).encode()), id="HS256-jwks-text"),
        pytest.param(_hs256(json.dumps(KEY.public_jwk()).encode()), id="HS256-jwk"),
        pytest.param(_hs256(PUBLIC_PEM), id="HS256-public-pem"),
        pytest.param(_hs256(PUBLIC_RAW), id="HS256-public-raw"),
        pytest.param(_hs256(KEY.public_jwk()["x"].encode()), id="HS256-x"),
        pytest.param(raw_token({"alg": "none", "kid": KEY.kid}, good_claims(), None), id="alg-none"),
        pytest.param(raw_token({"alg": "None", "kid": KEY.kid}, good_claims(), None), id="alg-None"),
        pytest.param(raw_token({"kid": KEY.kid}, good_claims(), KEY), id="no-alg"),
        pytest.param(raw_token({"alg": "RS256", "kid": KEY.kid}, good_claims(), KEY), id="alg-RS256"),
        pytest.param(raw_token({"alg": "ES256", "kid": KEY.kid}, good_claims(), KEY), id="alg-ES256"),
        pytest.param(raw_token({"alg": "eddsa", "kid": KEY.kid}, good_claims(), KEY), id="alg-lowercase"),
        pytest.param(raw_token({"alg": ["EdDSA"], "kid": KEY.kid}, good_claims(), KEY), id="alg-list"),
    ],
)
def test_algorithm_confusion_is_refused(token):
    assert reason_of(token) == "malformed token"


# --------------------------------------------------------------------------
# Tokens: revocations (a disabled user, a password reset)
# --------------------------------------------------------------------------


def test_a_disabled_subject_is_refused_as_revoked():
    revocations = Revocations(disabled=frozenset({"zhang01"}))
    verifier = TokenVerifier(jwks_text(KEY), lambda: revocations)
    assert reason_of(issue(KEY, "zhang01", "clerk", "city", now=NOW), verifier=verifier) == "token revoked"
    assert verifier.verify(issue(KEY, "li.si", "clerk", "city", now=NOW), now=NOW).subject == "li.si"


def test_tokens_issued_before_not_before_are_refused_later_ones_verify():
    current = {"value": Revocations()}
    verifier = TokenVerifier(jwks_text(KEY), lambda: current["value"])
    before = issue(KEY, "zhang01", "clerk", "city", now=NOW)
    assert verifier.verify(before, now=NOW).subject == "zhang01"
    current["value"] = Revocations(not_before={"zhang01": NOW + 1})  # the revocations are read on every call
    assert reason_of(before, verifier=verifier) == "token revoked"
    assert verifier.verify(issue(KEY, "zhang01", "clerk", "city", now=NOW + 1), now=NOW + 1).subject == "zhang01"


def test_revocations_round_trip_as_text():
    revocations = Revocations(frozenset({"b", "a"}), {"c": NOW})
    assert Revocations.from_text(revocations.to_text()) == revocations
    assert json.loads(revocations.to_text()) == {"disabled": ["a", "b"], "not_before": {"c": NOW}}
    assert Revocations.from_text("{}") == Revocations()
    assert revocations.refuses("a", NOW) and revocations.refuses("c", NOW - 1) and not revocations.refuses("c", NOW)


def test_expiry_is_reported_before_revocation():
    verifier = TokenVerifier(jwks_text(KEY), lambda: Revocations(disabled=frozenset({"zhang01"})))
    token = issue(KEY, "zhang01", "clerk", "city", ttl_seconds=10, now=NOW)
    assert reason_of(token, now=NOW + 11, verifier=verifier) == "token expired"


# --------------------------------------------------------------------------
# Tokens: malformed input of every kind
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "claims, reason",
    [
        (good_claims(role="admin"), "unknown role"),
        (good_claims(role=""), "unknown role"),
        (good_claims(scope="town:1"), "bad scope"),
        (good_claims(scope="department:MinZheng"), "bad scope"),
        (good_claims(scope=""), "bad scope"),
        ([1, 2, 3], "malformed token"),
        ("a string", "malformed token"),
        (42, "malformed token"),
        (None, "malformed token"),
        ({}, "malformed token"),
        (good_claims(sub=7), "malformed token"),
        (good_claims(sub=""), "malformed token"),
        (good_claims(sub="x" * 65), "malformed token"),
        (good_claims(sub="a b"), "malformed token"),
        (good_claims(role=["clerk"]), "malformed token"),
        (good_claims(scope=None), "malformed token"),
        (good_claims(scope={"kind": "city"}), "malformed token"),
        (good_claims(iat="1760000000"), "malformed token"),
        (good_claims(exp=float(NOW + 60)), "malformed token"),
        (good_claims(exp=True), "malformed token"),
        (good_claims(exp=NOW), "malformed token"),  # exp must be after iat
        (good_claims(iss="someone-else"), "malformed token"),
        (good_claims(aud="another-system"), "malformed token"),
        (b"not json", "malformed token"),
        (b"\xff\xfe\x00", "malformed token"),
        (b"", "malformed token"),
        (b'{"sub": "u", "exp": NaN}', "malformed token"),
        (b"[" * 1000 + b"]" * 1000, "malformed token"),
        (b'{"iat": 1' + b"0" * 2000 + b"}", "malformed token"),
    ]
    + [({k: v for k, v in good_claims().items() if k != missing}, "malformed token")
       for missing in good_claims()],
)
def test_signed_but_invalid_claims(claims, reason):
    assert reason_of(forge(claims)) == reason


def test_unknown_claims_are_ignored():
    assert VERIFIER.verify(forge(good_claims(extra="x", jti="1")), now=NOW).role == "clerk"


@pytest.mark.parametrize(
    "token",
    [
        "", ".", "..", "...", "a", "a.", "a..", "a.b.", "a..b", "a.b.c.d", "e30.e30.AAAA", "e30.e30.", " e30.e30.AAAA",
        "eyJhbGciOiJFZERTQSJ9=.e30.AAAA", "e+0.e30.AAAA", "é.e30.AAAA", "令牌.载荷.签名", "\x00", "\ud800",
        "Bearer e30.e30.AAAA", "A" * 5000, "e30." + "A" * 5000 + ".AAAA",
        b64(b"not json") + ".e30.AAAA", b64(b"[1]") + ".e30.AAAA", b64(b"\xff") + ".e30.AAAA",
    ],
)
def test_garbage_strings_are_malformed(token):
    assert reason_of(token) == "malformed token"


@pytest.mark.parametrize("token", [None, b"e30.e30.AAAA", 12, ["a", "b", "c"]])
def test_non_string_tokens_are_malformed(token):
    assert reason_of(token) == "malformed token"


@settings(hyp, max_examples=300)
@given(st.text())
def test_any_text_raises_only_invalid_token(text):
    with pytest.raises(InvalidToken) as info:
        VERIFIER.verify(text, now=NOW)
    assert info.value.reason in {"malformed token", "bad signature", "token signed by an unknown key"}


b64ish = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/.é", max_size=80)


@settings(hyp, max_examples=200)
@given(b64ish, b64ish)
def test_token_shaped_text_raises_only_invalid_token(claims, tail):
    header = issue(KEY, "u", "clerk", "city", now=NOW).split(".")[0]
    with pytest.raises(InvalidToken):
        VERIFIER.verify(f"{header}.{claims}.{tail}", now=NOW)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
claim_values = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"sub": json_values, "role": st.sampled_from(ROLES) | json_values, "scope": scope_strings | json_values,
         "iat": json_values, "exp": json_values, "iss": st.just(tokens.ISSUER) | json_values,
         "aud": st.just(tokens.AUDIENCE) | json_values}
    ),
    st.binary(max_size=64),
)
header_values = st.one_of(
    st.just({"alg": "EdDSA", "kid": KEY.kid}),
    st.fixed_dictionaries({"alg": st.sampled_from(["EdDSA", "HS256", "none"]) | json_values,
                           "kid": st.just(KEY.kid) | json_values}),
    json_values,
)


@settings(hyp, max_examples=300)
@given(claim_values)
def test_signed_arbitrary_claims_never_raise_anything_else(claims):
    try:
        p = VERIFIER.verify(forge(claims), now=NOW)
    except InvalidToken as exc:
        assert exc.reason in {"malformed token", "unknown role", "bad scope", "token expired"}
    else:
        assert p.role in ROLES and p.expires_at > NOW


@settings(hyp, max_examples=300)
@given(header_values, claim_values)
def test_arbitrary_headers_never_raise_anything_else(header, claims):
    with contextlib.suppress(InvalidToken):
        VERIFIER.verify(raw_token(header, claims, KEY), now=NOW)


@hyp
@given(
    st.sampled_from(ROLES),
    scope_strings,
    st.text(min_size=1, max_size=64).filter(lambda s: s.isprintable() and not any(c.isspace() for c in s)),
    st.integers(min_value=1, max_value=10**7),
)
def test_round_trip_property(role, scope, subject, ttl):
    p = VERIFIER.verify(issue(KEY, subject, role, scope, ttl_seconds=ttl, now=NOW), now=NOW)
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
    token = issue(KEY, "zhang01", "clerk", f"town:{TOWN}", now=NOW)
    assert VERIFIER.verify(parse_bearer(f"Bearer {token}"), now=NOW).subject == "zhang01"


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
