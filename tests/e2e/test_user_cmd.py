"""`tongban user` as city IT runs it on the portal's host: add, list, disable, enable, reset-password, audit,
on a temporary data folder (it only writes the portal's database: no broker needed)."""
import io
import json
import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from services.portal import directory
from shared.tokens import Revocations
from tongban.cli import main
from tongban.user_cmd import portal_store

TONGBAN = [sys.executable, "-m", "tongban.cli"]
PASSWORD = "correct horse battery"


def user(data_dir, *args, stdin=""):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TONGBAN_")}
    env["TONGBAN_DEV"] = "1"
    return subprocess.run([*TONGBAN, "user", *args, "--data-dir", str(data_dir)], input=stdin, capture_output=True,
                          text=True, timeout=60, env=env)


@pytest.mark.full  # long
def test_user_add_list_disable_enable_reset_audit(tmp_path):
    data = tmp_path / "data"
    done = user(data, "add", "clerk-1", "--name", "张敏", "--role", "clerk", "--scope", "town:320583101",
                "--password-stdin", stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    assert "added clerk-1 (张敏, clerk, town:320583101)" in done.stdout
    assert PASSWORD not in done.stdout, "a password given is never echoed"
    generated = user(data, "add", "sup-1", "--name", "赵六", "--role", "supervisor", "--scope", "city", "--generate")
    assert generated.returncode == 0 and "password (shown once): " in generated.stdout

    listed = user(data, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {u["staff_number"]: u for u in json.loads(listed.stdout)}
    assert set(rows) == {"clerk-1", "sup-1"}
    assert (rows["clerk-1"]["name"], rows["clerk-1"]["role"], rows["clerk-1"]["disabled"]) == ("张敏", "clerk", False)
    assert "password" not in listed.stdout and "hash" not in listed.stdout

    disabled = user(data, "disable", "clerk-1")
    assert disabled.returncode == 0 and "every service refuses their tokens" in disabled.stdout
    store = portal_store(type("Args", (), {"data_dir": str(data), "database_url": None})())
    try:
        with store.transaction() as tx:
            assert directory.revocations(tx).disabled == frozenset({"clerk-1"})
            assert directory.sign_in(tx, "clerk-1", PASSWORD, None) == (None, "disabled")
        # the revocations wait in the portal's outbox for the running portal to send
        with store.engine.connect() as conn:
            outbox = [r for r in conn.execute(sa.text("select * from outbox")).mappings()]
        assert outbox and any("clerk-1" in str(dict(r)) for r in outbox)
    finally:
        store.dispose()

    enabled = user(data, "enable", "clerk-1")
    assert enabled.returncode == 0 and "enabled" in enabled.stdout
    reset = user(data, "reset-password", "clerk-1", "--password-stdin", stdin="another long password\n")
    assert reset.returncode == 0 and "reset" in reset.stdout and "another long password" not in reset.stdout
    store = portal_store(type("Args", (), {"data_dir": str(data), "database_url": None})())
    try:
        with store.transaction() as tx:
            assert directory.sign_in(tx, "clerk-1", "another long password", None)[0] is not None
            assert directory.sign_in(tx, "clerk-1", PASSWORD, None)[0] is None
            revocations = directory.revocations(tx)
        assert not revocations.disabled and "clerk-1" in revocations.not_before  # older tokens stay void
        assert Revocations.from_text(revocations.to_text()) == revocations
    finally:
        store.dispose()

    audit = user(data, "audit", "--limit", "10")
    assert audit.returncode == 0
    events = [line.split()[3] for line in audit.stdout.splitlines()]
    assert events[:4] == ["signin.failed", "signin.ok", "user.password_reset", "user.enabled"]
    assert "user.disabled" in events and events.count("user.added") == 2
    assert all(" by cli " in line for line in audit.stdout.splitlines() if " user." in line)


BAD_INPUT = [
    (("add", "c1", "--name", "张敏", "--role", "clerk", "--scope", "town:123", "--password-stdin"), PASSWORD, "scope"),
    (("add", "c1", "--name", "张敏", "--role", "service", "--scope", "city", "--password-stdin"), PASSWORD, "role"),
    (("add", "c1", "--name", "张敏", "--role", "agent", "--scope", "city", "--password-stdin"), PASSWORD,
     "scope: the role agent works in a village scope, not city"),
    (("add", "c1", "--name", "张敏", "--role", "clerk", "--scope", "town:320583101", "--password-stdin"), "short\n",
     "password: at least 10"),
    (("add", "c 1", "--name", "张敏", "--role", "clerk", "--scope", "town:320583101", "--password-stdin"), PASSWORD,
     "staff number"),
    (("add", "c1", "--name", " ", "--role", "clerk", "--scope", "town:320583101", "--generate"), "", "name"),
    (("add", "c1", "--role", "clerk", "--scope", "town:320583101", "--generate"), "", "--name, --role and --scope"),
    (("reset-password",), "", "give the staff number"),
]


@pytest.mark.parametrize("args, stdin, message", BAD_INPUT, ids=lambda v: None)
def test_bad_input_exits_2_with_a_clear_message(tmp_path, monkeypatch, capsys, args, stdin, message):
    """The same parser and handler in-process (a subprocess per case would cost seconds each)."""
    monkeypatch.delenv("TONGBAN_DATABASE_URL", raising=False)
    monkeypatch.setenv("TONGBAN_DEV", "1")
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    assert main(["user", *args, "--data-dir", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tongban user ") and message in err


@pytest.mark.full  # long
def test_a_taken_or_unknown_staff_number_and_an_unknown_action(tmp_path):
    data = tmp_path / "data"
    town = "town:320583101"
    assert user(data, "add", "c1", "--name", "张敏", "--role", "clerk", "--scope", town, "--generate").returncode == 0
    taken = user(data, "add", "c1", "--name", "李四", "--role", "clerk", "--scope", town, "--generate")
    assert taken.returncode == 2 and "tongban user add: staff number c1 is taken" in taken.stderr
    assert "Traceback" not in taken.stderr
    unknown = user(data, "disable", "nobody")  # not found: exit 1
    assert unknown.returncode == 1 and "no staff number nobody" in unknown.stderr
    assert user(data, "remove", "c1").returncode == 2  # argparse refuses an unknown action
