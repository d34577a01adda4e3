"""`tongban keys new` and `tongban keys jwks` as city IT runs them: a key pair, and key sets for rotation."""
import json
import os
import stat
import subprocess
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from shared import tokens

TONGBAN = [sys.executable, "-m", "tongban.cli"]


def run(*args, stdin=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TONGBAN_")}
    return subprocess.run([*TONGBAN, "keys", *args], input=stdin, capture_output=True, text=True, timeout=60,
                          env=env)


def test_new_writes_a_private_key_only_its_owner_reads_and_its_public_key_set(tmp_path):
    out = tmp_path / "keys"
    done = run("new", "--out", str(out))
    assert done.returncode == 0, done.stderr
    pem, jwks = out / "token-signing-key.pem", out / "jwks.json"
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    key = tokens.SigningKey.from_pem(pem.read_text())
    assert key.kid in done.stdout
    keys = json.loads(jwks.read_text())["keys"]
    assert [k["kid"] for k in keys] == [key.kid] and "d" not in keys[0]
    # what the portal signs with that key, a service given jwks.json accepts
    token = tokens.issue(key, "zhang01", "clerk", "town:320583101")
    assert tokens.TokenVerifier(jwks.read_text()).verify(token).subject == "zhang01"
    # a second `new` into the same folder does not overwrite a key that may be in use
    again = run("new", "--out", str(out))
    assert again.returncode == 2 and "exists already" in again.stderr
    assert tokens.SigningKey.from_pem(pem.read_text()).kid == key.kid
    forced = run("new", "--out", str(out), "--force")
    assert forced.returncode == 0 and tokens.SigningKey.from_pem(pem.read_text()).kid != key.kid


def test_jwks_merges_every_public_key_given_for_rotation(tmp_path):
    assert run("new", "--out", str(tmp_path / "old")).returncode == 0
    assert run("new", "--out", str(tmp_path / "new")).returncode == 0
    old = tokens.SigningKey.from_pem((tmp_path / "old" / "token-signing-key.pem").read_text())
    new = tokens.SigningKey.from_pem((tmp_path / "new" / "token-signing-key.pem").read_text())
    public_pem = tmp_path / "new.pub.pem"
    public_pem.write_bytes(new.private.public_key().public_bytes(serialization.Encoding.PEM,
                                                                 serialization.PublicFormat.SubjectPublicKeyInfo))
    # step 1: the old private key and the new key set (the same new key three ways: once in the output)
    done = run("jwks", str(tmp_path / "old" / "token-signing-key.pem"), str(tmp_path / "new" / "jwks.json"),
               str(public_pem), "-", stdin=(tmp_path / "new" / "jwks.json").read_text())
    assert done.returncode == 0, done.stderr
    both = json.loads(done.stdout)
    assert [k["kid"] for k in both["keys"]] == [old.kid, new.kid]
    assert all("d" not in k for k in both["keys"]), "a key set never carries a private half"
    verifier = tokens.TokenVerifier(done.stdout)
    for key in (old, new):
        assert verifier.verify(tokens.issue(key, "zhang01", "clerk", "city")).subject == "zhang01"
    # step 3: the old key dropped
    only_new = tokens.TokenVerifier(run("jwks", str(tmp_path / "new" / "jwks.json")).stdout)
    assert only_new.verify(tokens.issue(new, "u", "clerk", "city")).subject == "u"


def test_jwks_refuses_what_is_not_an_ed25519_key_naming_the_file(tmp_path):
    rsa_pem = tmp_path / "rsa.pem"
    rsa_pem.write_bytes(rsa.generate_private_key(65537, 2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    garbage = tmp_path / "notes.txt"
    garbage.write_text("hello")
    bad_set = tmp_path / "bad.json"
    bad_set.write_text('{"keys": "none"}')
    for path, message in ((rsa_pem, "Ed25519"), (garbage, "neither a PEM key nor JSON"), (bad_set, "list of keys"),
                          (tmp_path / "missing.pem", "cannot read")):
        done = run("jwks", str(path))
        assert done.returncode == 2 and str(path) in done.stderr and message in done.stderr, done.stderr
        assert done.stdout == "" and "Traceback" not in done.stderr
    assert run("jwks").returncode == 2  # argparse: at least one key
