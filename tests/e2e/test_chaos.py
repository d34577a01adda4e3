"""The chaos run (bench/chaos.py, issue 14): the city works while RabbitMQ and PostgreSQL restart, each service
is killed, a database goes away and a queue fills to its limit; then nothing is lost and nothing done twice.

The short version is in the CI set; the full one (10,000 cases, every fault three times) runs with --full.
Both restart this machine's broker and database: tests/conftest.py runs them after every other test."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FAULTS = {"rabbitmq_restart", "postgres_restart", "db_unavailable", "queue_full", "kill:intake", "kill:agent",
          "kill:approval", "kill:notify", "kill:evaluation"}

pytestmark = pytest.mark.chaos


def _chaos(tmp_path, *args: str, timeout: float) -> dict:
    out = tmp_path / "chaos.json"
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "chaos.py"), *args, "--json", str(out)],
                       capture_output=True, text=True, timeout=timeout)
    assert out.exists(), r.stderr[-4000:]
    result = json.loads(out.read_text())
    assert r.returncode == 0 and result["ok"], r.stdout[-6000:] + r.stderr[-3000:]
    return result


def _assert_held(result: dict, cases: int) -> None:
    assert result["cases"]["submitted"] >= cases
    assert result["lost"] == 0 and result["duplicated"] == 0
    assert FAULTS <= {f["fault"] for f in result["faults"] if "error" not in f}, result["faults"]
    assert all(f["recovery_seconds"] is not None for f in result["faults"]), result["faults"]
    assert all(check["ok"] for check in result["checks"].values()), result["checks"]
    assert result["checks"]["one_delivery_per_notice_and_channel"]["sms_at_gateway"] > 0
    assert result["checks"]["one_delivery_per_notice_and_channel"]["mail_at_smtp"] > 0
    queue_full = next(f for f in result["faults"] if f["fault"] == "queue_full")
    assert queue_full["filled"] and queue_full["outbox_rows_waiting_at_most"] > 0, queue_full


def test_short_chaos_run_loses_nothing_and_does_nothing_twice(tmp_path):
    _assert_held(_chaos(tmp_path, "--cases", "500", "--short", "--rate", "10", "--outage", "10", "--fill", "60",
                        timeout=900), 500)


@pytest.mark.full
def test_chaos_run_at_ten_thousand_cases(tmp_path):
    _assert_held(_chaos(tmp_path, timeout=4 * 3600), 10_000)
