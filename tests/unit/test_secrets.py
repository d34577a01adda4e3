"""Outside development mode no service starts with the published development secrets, or without the token keys."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from shared import tokens
from shared.config import (
    DEV_BUS_SECRET,
    InsecureSettings,
    Settings,
    check_secrets,
    development_mode,
    secret_problems,
)
from shared.platform import Platform
from tests.unit.test_deploy_manifests import COMPOSE_SHELL, LAYOUT, compose_env, of_kind, resolved_env, settings_in

PROD = {}  # no TONGBAN_DEV
DEV = {"TONGBAN_DEV": "1"}
JWKS = tokens.jwks_text(tokens.SigningKey.generate())
NO_KEYS = "TONGBAN_TOKEN_PUBLIC_KEYS (the portal's public key set, JWKS) is unset"


def agent(**changes) -> Settings:
    base = Settings(service="agent", instance="agent", token_public_keys=JWKS, bus_users="tongban",
                    bus_secret="bus-s3cret")
    return base.with_(**changes)


def test_development_mode_must_be_explicit():
    assert not development_mode({}) and not development_mode({"TONGBAN_DEV": "0"})
    assert development_mode({"TONGBAN_DEV": "1"}) and development_mode({"TONGBAN_DEV": "true"})


def test_real_secrets_pass_and_development_secrets_are_named():
    assert secret_problems(agent(), PROD) == []
    assert secret_problems(agent(token_public_keys=""), PROD) == [NO_KEYS]
    # the portal signs tokens: it needs the private key as well; no other service reads one
    portal = agent(service="portal", instance="portal", bus_passwords={"portal": "pw"})
    assert secret_problems(portal, PROD) == [
        "TONGBAN_TOKEN_PRIVATE_KEY (the portal's Ed25519 signing key, PEM) is unset"]
    assert secret_problems(portal.with_(token_private_key=tokens.SigningKey.generate().to_pem()), PROD) == []
    (problem,) = secret_problems(agent(bus_secret=DEV_BUS_SECRET), PROD)
    assert "TONGBAN_BUS_SECRET" in problem and "TONGBAN_BUS_PASSWORD_AGENT" in problem
    # the kind's password given outright, or broker users off: the bus secret is not used
    assert secret_problems(agent(bus_secret=DEV_BUS_SECRET, bus_passwords={"agent": "pw"}), PROD) == []
    assert secret_problems(agent(bus_secret=DEV_BUS_SECRET, bus_users=None), PROD) == []
    assert secret_problems(agent(token_public_keys="", bus_secret=DEV_BUS_SECRET), DEV) == []


def test_the_message_is_one_line_and_says_what_to_do():
    with pytest.raises(InsecureSettings) as caught:
        check_secrets(agent(token_public_keys=""), PROD)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("agent refuses to start: TONGBAN_TOKEN_PUBLIC_KEYS") and "TONGBAN_DEV=1" in message


def test_a_platform_refuses_to_set_up_outside_development_mode(monkeypatch, tmp_path):
    """Whatever starts it (serve, a test, an embedding): the check is in the platform's setup, before any I/O."""
    monkeypatch.delenv("TONGBAN_DEV", raising=False)
    platform = Platform(agent(token_public_keys="", data_dir=tmp_path), tmp_path)
    with pytest.raises(InsecureSettings):
        platform.setup()
    assert not list(tmp_path.iterdir()), "nothing was created"


@pytest.mark.parametrize("settings", LAYOUT, ids=lambda s: s.instance)
def test_compose_and_k8s_give_every_instance_real_secrets(settings, monkeypatch):
    """The deployments run outside development mode: each instance's environment passes the check."""
    for name, value in COMPOSE_SHELL.items():
        monkeypatch.setenv(name, value)
    for env in (compose_env(settings.instance), resolved_env(of_kind("Deployment")[settings.instance])):
        assert "TONGBAN_DEV" not in env
        s = settings_in(env, settings.service, monkeypatch)
        assert secret_problems(s, env) == [], env


@pytest.mark.parametrize("extra, named", [
    ({}, "TONGBAN_TOKEN_PUBLIC_KEYS"),
    ({"TONGBAN_TOKEN_PUBLIC_KEYS": JWKS}, "TONGBAN_BUS_SECRET"),
])
def test_a_service_started_without_a_secret_outside_development_mode_exits(tmp_path, extra, named):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TONGBAN_")}
    env.update(TONGBAN_DATA_DIR=str(tmp_path), PYTHONUNBUFFERED="1", **extra)
    r = subprocess.run([sys.executable, "-m", "tongban.cli", "serve", "agent", "--port", "1"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tongban serve: agent refuses to start:"), r.stderr
    assert named in lines[0]
    assert not list(tmp_path.iterdir()), "it stopped before touching its data folder"
