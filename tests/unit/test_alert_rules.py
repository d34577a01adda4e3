"""The alert rules pass `promtool check rules`, and their unit tests (`promtool test rules`: every alert shown
firing and quiet) pass. promtool is Debian's `prometheus` package, installed by ./run setup."""
import shutil
import subprocess
from pathlib import Path

import pytest

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "rules"


def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        pytest.fail("promtool is missing: ./run setup installs it (as root: apt-get install -y prometheus)")
    return found


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=60, cwd=RULES)


def test_the_rule_files_pass_promtool_check():
    files = sorted(p.name for p in RULES.glob("*.rules.yml"))
    assert files, f"no rule files in {RULES}"
    r = _run("check", "rules", *files)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_alert_is_unit_tested_firing_and_quiet_and_the_tests_pass():
    import yaml

    alerts = {rule["alert"] for f in RULES.glob("*.rules.yml") for g in yaml.safe_load(f.read_text())["groups"]
              for rule in g["rules"] if "alert" in rule}
    firing, quiet = set(), set()
    for f in RULES.glob("*.rules.test.yml"):
        for case in yaml.safe_load(f.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert alerts - firing == set(), f"never shown firing: {sorted(alerts - firing)}"
    assert alerts - quiet == set(), f"never shown quiet: {sorted(alerts - quiet)}"
    r = _run("test", "rules", *sorted(p.name for p in RULES.glob("*.rules.test.yml")))
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr
