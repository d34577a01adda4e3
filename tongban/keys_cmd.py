"""`tongban keys new|jwks`: the key pair API tokens are signed with (shared.tokens, EdDSA).

`new --out DIR` makes a key pair: `token-signing-key.pem` (the private key, mode 0600: the portal's
TONGBAN_TOKEN_PRIVATE_KEY, and city IT's for `tongban token`) and `jwks.json` (its public half: every
service's TONGBAN_TOKEN_PUBLIC_KEYS).

`jwks PEM_OR_JWKS...` prints one key set with every public key given (private PEMs, public PEMs, JWKS
files), which is how keys are rotated without a flag day:

1. `tongban keys new --out new/`, then give every service `tongban keys jwks old.pem new/jwks.json`
   (both keys verify);
2. switch the portal's private key to the new one;
3. once the old key's tokens have expired (8 h by default), give the services the new key set alone.

Every handler takes the parsed `args` and returns the exit code: 0 done, 2 refused (an unreadable or
unsuitable key, an output folder holding a key already), with the reason on stderr.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from jwt.algorithms import OKPAlgorithm

from shared import tokens

JWKS_FILE = "jwks.json"


def _fail(command: str, message: str) -> int:
    print(f"tongban keys {command}: {message}", file=sys.stderr)
    return 2


def public_keys_of(text: str, source: str = "input") -> list[dict]:
    """The public JWKs in `text`: a private or public Ed25519 PEM, one JWK or a JWKS; ValueError naming
    `source` when it is none of these, holds another kind of key, or would hand out a private half."""
    stripped = text.strip()
    if stripped.startswith("-----BEGIN") and "PRIVATE KEY-----" in stripped:
        try:
            return [tokens.SigningKey.from_pem(stripped).public_jwk()]
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from None
    if stripped.startswith("-----BEGIN"):
        try:
            public = serialization.load_pem_public_key(stripped.encode())
        except ValueError as exc:
            raise ValueError(f"{source}: not a PEM key: {exc}") from None
        if not isinstance(public, Ed25519PublicKey):
            raise ValueError(f"{source}: only Ed25519 keys sign Tongban tokens")
        keys = [json.loads(OKPAlgorithm.to_jwk(public))]  # its kid: the thumbprint, as TokenVerifier makes it
    else:
        try:
            data = json.loads(stripped)
        except ValueError:
            raise ValueError(f"{source}: neither a PEM key nor JSON (a JWK or a JWKS)") from None
        keys = data.get("keys") if isinstance(data, dict) and "keys" in data else [data]
        if not isinstance(keys, list) or not all(isinstance(k, dict) for k in keys):
            raise ValueError(f"{source}: a JWKS holds a list of keys under \"keys\"")
    result = []
    for jwk in keys:
        if "d" in jwk:  # a private JWK: never copy its private half into a key set handed to every service
            jwk = {k: v for k, v in jwk.items() if k != "d"}
        try:
            verifier = tokens.TokenVerifier({"keys": [jwk]})  # checks it is an Ed25519 public key
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{source}: {exc}") from None
        (kid,) = verifier.keys
        result.append({**jwk, "kid": kid, "alg": tokens.ALGORITHM, "use": "sig"})
    return result


def merge(key_lists: list[list[dict]]) -> str:
    """One JWKS with every key once (by kid; the first occurrence kept), in the order given."""
    seen: dict[str, dict] = {}
    for keys in key_lists:
        for jwk in keys:
            seen.setdefault(jwk["kid"], jwk)
    return tokens.jwks_text(*seen.values())


def cmd_new(args) -> int:
    out = Path(args.out)
    pem_path, jwks_path = out / tokens.DEV_KEY_FILE, out / JWKS_FILE
    if pem_path.exists() and not args.force:
        return _fail("new", f"{pem_path} exists already (a key in use?); choose another folder or give --force")
    key = tokens.SigningKey.generate()
    try:
        out.mkdir(parents=True, exist_ok=True)
        if pem_path.exists():
            pem_path.unlink()
        fd = os.open(pem_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others
        with os.fdopen(fd, "w") as f:
            f.write(key.to_pem())
        jwks_path.write_text(tokens.jwks_text(key) + "\n")
    except OSError as exc:
        return _fail("new", f"cannot write into {out}: {exc.strerror or exc}")
    print(f"private key: {pem_path}  (the portal's TONGBAN_TOKEN_PRIVATE_KEY; keep it on the portal's host)")
    print(f"public keys: {jwks_path}  (every service's TONGBAN_TOKEN_PUBLIC_KEYS)")
    print(f"key id: {key.kid}")
    return 0


def cmd_jwks(args) -> int:
    key_lists = []
    for name in args.keys:
        path = Path(name)
        try:
            text = sys.stdin.read() if name == "-" else path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            return _fail("jwks", f"cannot read {name}: {getattr(exc, 'strerror', None) or exc}")
        try:
            key_lists.append(public_keys_of(text, name))
        except ValueError as exc:
            return _fail("jwks", str(exc))
    print(merge(key_lists))
    return 0


def register(subparsers) -> None:
    """Add `keys` and its subcommands to the `tongban` parser's subparsers."""
    keys = subparsers.add_parser("keys", help="the token signing key pair: new, jwks (rotation)")
    sub = keys.add_subparsers(dest="keys_command", required=True)

    new = sub.add_parser("new", help="make a key pair: token-signing-key.pem (0600) and jwks.json in a folder")
    new.add_argument("--out", required=True, help="the folder to write them into")
    new.add_argument("--force", action="store_true", help="replace a key already in the folder")
    new.set_defaults(func=cmd_new)

    jwks = sub.add_parser("jwks", help="print one JWKS with the public half of every key given")
    jwks.add_argument("keys", nargs="+", metavar="PEM_OR_JWKS",
                      help="private or public PEM files, JWK or JWKS files ('-': standard input)")
    jwks.set_defaults(func=cmd_jwks)
