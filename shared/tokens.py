"""API tokens: standard JWTs (PyJWT) signed by the portal's private key, checked with public keys only.

Why asymmetric (it replaced an HMAC secret every service held): a service that can check a token can no
longer mint one, and a leaked service configuration yields no token. EdDSA (Ed25519): small keys, fast
signatures, no parameters to get wrong. Every token names its key (`kid`, the key's RFC 7638
thumbprint), so a new key can be added to the services' key set before the portal signs with it and the
old one removed after its tokens expired (rotation without a flag day).

Claims: `sub` (staff number or machine name), `role`, `scope` (shared.auth.Scope text), `iat`, `exp`,
`iss` = "tongban-portal", `aud` = "tongban", optional `name` (printed on notices as 首问负责人).

Revocation: the portal publishes the staff directory's revocations on the reference stream
(shared.reference, kind "staff"); every service follows the stream and refuses a disabled subject's
tokens, and tokens of a subject issued before its `not_before` (a password reset, a re-enabled account),
within a second or two of the change (DESIGN: a disabled user is refused within a minute).

This module does no I/O except `dev_keys`, which keeps a development key pair in a folder.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.algorithms import OKPAlgorithm

from shared import auth
from shared.auth import InvalidToken, Principal, Scope

ALGORITHM = "EdDSA"
ISSUER = "tongban-portal"
AUDIENCE = "tongban"
DEFAULT_TTL_SECONDS = auth.DEFAULT_TTL_SECONDS
REVOKED = "token revoked"
UNKNOWN_KEY = "token signed by an unknown key"


def _rfc7638(jwk: dict) -> str:
    import base64
    import hashlib

    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x")}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()[:16]


@dataclass(frozen=True)
class SigningKey:
    """The portal's private key and its key id."""

    private: Ed25519PrivateKey
    kid: str

    @classmethod
    def generate(cls) -> SigningKey:
        key = Ed25519PrivateKey.generate()
        return cls(key, _rfc7638(json.loads(OKPAlgorithm.to_jwk(key.public_key()))))

    @classmethod
    def from_pem(cls, text: str) -> SigningKey:
        try:
            key = serialization.load_pem_private_key(text.encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"not a PEM private key: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the token signing key must be an Ed25519 key (openssl genpkey -algorithm ed25519)")
        return cls(key, _rfc7638(json.loads(OKPAlgorithm.to_jwk(key.public_key()))))

    def to_pem(self) -> str:
        return self.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()).decode()

    def public_jwk(self) -> dict:
        jwk = json.loads(OKPAlgorithm.to_jwk(self.private.public_key()))
        return {**jwk, "kid": self.kid, "alg": ALGORITHM, "use": "sig"}


def jwks_text(*keys: SigningKey | dict) -> str:
    """A JSON Web Key Set of the public halves (what services are given)."""
    return json.dumps({"keys": [k.public_jwk() if isinstance(k, SigningKey) else k for k in keys]}, indent=1)


def issue(key: SigningKey, subject: str, role: str, scope: str, ttl_seconds: int = DEFAULT_TTL_SECONDS,
          now: float | None = None, name: str | None = None) -> str:
    """A signed token; ValueError for any invalid argument (as shared.auth validates them)."""
    if not auth._valid_subject(subject):
        raise ValueError(f"subject must be 1-{auth.MAX_SUBJECT_LENGTH} printable characters without whitespace, "
                         f"got {subject!r}")
    if role not in auth.ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(auth.ROLES)}")
    parsed = Scope.parse(scope)
    if not auth._is_int(ttl_seconds) or ttl_seconds <= 0:
        raise ValueError(f"ttl_seconds must be a positive integer, got {ttl_seconds!r}")
    issued_at = int(auth._now(now))
    claims = {"sub": subject, "role": role, "scope": str(parsed), "iat": issued_at, "exp": issued_at + ttl_seconds,
              "iss": ISSUER, "aud": AUDIENCE}
    if name is not None:
        if not auth._valid_name(name):
            raise ValueError(f"name must be 1-{auth.MAX_NAME_LENGTH} printable characters, got {name!r}")
        claims["name"] = name
    return jwt.encode(claims, key.private, algorithm=ALGORITHM, headers={"kid": key.kid})


@dataclass(frozen=True)
class Revocations:
    """Who is refused: disabled subjects, and per subject the time before which its tokens are void."""

    disabled: frozenset = frozenset()
    not_before: dict = field(default_factory=dict)

    @classmethod
    def from_text(cls, text: str) -> Revocations:
        data = json.loads(text)
        return cls(frozenset(str(s) for s in data.get("disabled", [])),
                   {str(k): int(v) for k, v in (data.get("not_before") or {}).items()})

    def to_text(self) -> str:
        return json.dumps({"disabled": sorted(self.disabled), "not_before": dict(sorted(self.not_before.items()))},
                          ensure_ascii=False, separators=(",", ":"))

    def refuses(self, subject: str, issued_at: int) -> bool:
        return subject in self.disabled or issued_at < self.not_before.get(subject, 0)


class TokenVerifier:
    """Checks tokens against the public key set; `revocations` is a callable giving the current ones."""

    def __init__(self, jwks: str | dict, revocations=None):
        data = json.loads(jwks) if isinstance(jwks, str) else jwks
        self.keys: dict[str, Ed25519PublicKey] = {}
        for jwk in (data or {}).get("keys", []):
            try:
                public = OKPAlgorithm.from_jwk(json.dumps(jwk))
            except jwt.PyJWTError as exc:  # an RSA or EC key, a broken one: a configuration error, said as such
                raise ValueError(f"key {jwk.get('kid')!r}: only Ed25519 public keys are accepted ({exc})") from None
            if not isinstance(public, Ed25519PublicKey):
                raise ValueError(f"key {jwk.get('kid')!r}: only Ed25519 public keys are accepted")
            self.keys[jwk.get("kid") or _rfc7638(jwk)] = public
        self._revocations = revocations or (lambda: Revocations())

    def verify(self, token: str, now: float | None = None) -> Principal:
        """The token's Principal; InvalidToken (and nothing else) for any token value."""
        if not isinstance(token, str) or not token or len(token) > auth.MAX_TOKEN_LENGTH or not token.isascii():
            raise InvalidToken(auth.MALFORMED)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken(auth.MALFORMED) from None
        if header.get("alg") != ALGORITHM:
            raise InvalidToken(auth.MALFORMED)
        key = self.keys.get(header.get("kid"))
        if key is None:
            raise InvalidToken(UNKNOWN_KEY)
        current = auth._now(now)
        try:
            claims = jwt.decode(token, key, algorithms=[ALGORITHM], audience=AUDIENCE, issuer=ISSUER,
                                options={"require": ["sub", "iat", "exp", "iss", "aud"], "verify_exp": False,
                                         "verify_iat": False, "verify_nbf": False})
        except jwt.InvalidSignatureError:
            raise InvalidToken(auth.BAD_SIGNATURE) from None
        except (jwt.PyJWTError, ValueError, TypeError):
            raise InvalidToken(auth.MALFORMED) from None
        subject, role, scope_text = claims.get("sub"), claims.get("role"), claims.get("scope")
        issued_at, expires_at, name = claims.get("iat"), claims.get("exp"), claims.get("name")
        if (not auth._valid_subject(subject) or not isinstance(role, str) or not isinstance(scope_text, str)
                or not auth._is_int(issued_at) or not auth._is_int(expires_at) or expires_at <= issued_at
                or (name is not None and not auth._valid_name(name))):
            raise InvalidToken(auth.MALFORMED)
        if role not in auth.ROLES:
            raise InvalidToken(auth.UNKNOWN_ROLE)
        try:
            scope = Scope.parse(scope_text)
        except ValueError:
            raise InvalidToken(auth.BAD_SCOPE) from None
        if current >= expires_at:
            raise InvalidToken(auth.EXPIRED)
        if self._revocations().refuses(subject, issued_at):
            raise InvalidToken(REVOKED)
        return Principal(subject=subject, role=role, scope=scope, expires_at=expires_at, issued_at=issued_at,
                         name=name)


# --- development keys -------------------------------------------------------------------------------

DEV_KEY_FILE = "token-signing-key.pem"


def dev_keys(folder: Path) -> SigningKey:
    """The development key pair kept in `folder` (made on first use; `tongban up`, the demo). Two processes
    starting at once agree: the file is created exclusively and a loser reads the winner's."""
    folder = Path(folder)
    path = folder / DEV_KEY_FILE
    for _ in range(50):
        if path.exists():
            text = path.read_text()
            if text.strip().endswith("-----END PRIVATE KEY-----"):
                return SigningKey.from_pem(text)
            time.sleep(0.02)  # another process is writing it
            continue
        folder.mkdir(parents=True, exist_ok=True)
        key = SigningKey.generate()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w") as f:
            f.write(key.to_pem())
        return key
    raise RuntimeError(f"could not read the development token key {path}")
