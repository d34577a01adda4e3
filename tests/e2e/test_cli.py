
"""The command line as a user runs it: `tongban up`, `tongban demo`, `tongban token`."""
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from shared import busauth, tokens
from shared.catalog import load_catalog
from shared.config import Settings
from tests.support import _free_port_block
from tongban.pii_audit import audit_logs, audit_pii
from tongban.runtime import host_layout, remove_bus

TONGBAN = [sys.executable, "-m", "tongban.cli"]


def _env(tmp_path, prefix):
    env = dict(os.environ)
    env.update(TONGBAN_BUS_PREFIX=prefix, TONGBAN_DATA_DIR=str(tmp_path / "data"), TONGBAN_DEV="1",
               PYTHONUNBUFFERED="1")
    return env


def _lines_until(proc, marker: str, seconds: float, lines: list[str]) -> list[str]:
    """What a running command prints, line by line into `lines`, until a line with `marker` (or the time is up)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        assert line, f"{proc.args[3]} ended early: {''.join(lines)[-3000:]}"
        lines.append(line)
        if marker in line:
            break
    return lines


@pytest.mark.full  # long; the kept demo (audited) and the chaos run stay in CI
def test_up_serves_health_and_metrics_on_every_instance_and_stops_on_ctrl_c(tmp_path):
    prefix = f"up{uuid.uuid4().hex[:8]}"
    port = _free_port_block(1 + 2 + len(load_catalog().departments) + 3)
    proc = subprocess.Popen([*TONGBAN, "up", "--port", str(port), "--processes", "3"], env=_env(tmp_path, prefix),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        _lines_until(proc, "tongban is up", 90, lines)
        assert "DEVELOPMENT MODE" in lines[0], "tongban up says plainly that it runs in development mode"
        portal = next(i for i, line in enumerate(lines) if line.startswith("portal: http"))
        assert portal == 1 + next(i for i, line in enumerate(lines) if "DEVELOPMENT MODE" in line), \
            "the portal's URL comes first"
        password = re.search(r"first city IT user: admin  password: (\S+)", "".join(lines)).group(1)
        signed_in = requests.post(lines[portal].split()[1] + "login", data={"staff_number": "admin",
                                                                            "password": password},
                                  allow_redirects=False, timeout=10)
        assert signed_in.status_code == 303 and "tongban_session=" in signed_in.headers["Set-Cookie"]
        urls = re.findall(r"(http://127\.0\.0\.1:\d+)   \(/health", "".join(lines))
        # no real SMS gateway or SMTP server configured: ours run beside the instances, and it says where
        assert any("sms.jsonl" in line for line in lines) and any("outlets/mail" in line for line in lines)
        departments = len(load_catalog().departments)
        # the portal, two windows, every department, three more
        assert len(urls) == 1 + 2 + departments + 3, "".join(lines)
        assert "approval-minzheng" in "".join(lines) and "approval-zhujian" in "".join(lines)
        process_series = []  # the instances showing the process's own series: one, as they share a process
        for url in urls:
            health = requests.get(f"{url}/health", timeout=10)
            checks = health.json()["checks"]
            assert health.status_code == 200 and {"database", "broker"} <= set(checks), checks
            assert all(v == "ok" for v in checks.values()), checks
            metrics = requests.get(f"{url}/metrics", timeout=10)
            names = {f.name for f in text_string_to_metric_families(metrics.text)}
            assert {"tongban_outbox_backlog", "tongban_instance_info"} <= names, names
            process_series += [url] if any(n.startswith("process_") for n in names) else []
        # the process-wide series once per process: `up` runs its instances in a process per kind of work
        processes = int(re.search(r"instances in (\d+) processes", "".join(lines)).group(1))
        assert processes == 3 and len(process_series) == processes, process_series
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out
        assert "stopped." in out
        for url in urls:
            try:
                requests.get(f"{url}/health", timeout=2)
                raise AssertionError(f"{url} still answers after Ctrl-C")
            except requests.ConnectionError:
                pass
    finally:
        if proc.poll() is None:
            proc.kill()
        base = Settings(service="t", instance="t", bus_prefix=prefix)
        remove_bus(base.amqp_url, prefix, host_layout(base, departments=sorted(load_catalog().departments)))
        busauth.delete_users(base.amqp_url, prefix)  # `up` made a broker user per service kind


@pytest.mark.full  # long; the kept demo (audited) and the chaos run stay in CI
def test_demo_reconciles_and_prints_json(tmp_path):
    prefix = f"demo{uuid.uuid4().hex[:8]}"
    r = subprocess.run([*TONGBAN, "demo", "--cases", "60", "--json"], env=_env(tmp_path, prefix),
                       capture_output=True, text=True, timeout=600)
    # what did not reconcile is in the summary (stdout), not in the progress on stderr
    assert r.returncode == 0, (r.stdout[-6000:] or r.stderr[-3000:])
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert "DEVELOPMENT MODE" in r.stderr, "tongban demo says plainly that it runs in development mode"
    assert summary["reconciled"] is True, summary["books"]
    books = summary["books"]
    assert books["open"] == {"cases": 0, "work_items": 0}
    assert books["completed"]["intake"] == books["completed"]["result_notices"] == books["completed"]["evaluation"]
    assert books["decisions"]["approval"] == books["decisions"]["intake"] > 0
    assert summary["cases"]["submitted"] == 60
    # the sample city's catalogue drives it: every kind of case appears
    assert {"instant", "promised", "joint", "escalated", "consultation", "supplement"} <= set(summary["by_kind"])
    assert summary["deadlines"]["on_time"] + summary["deadlines"]["late"] == books["completed"]["intake"]
    # AB posts: some A holders are away, so work went to B or to the head
    assert summary["ab_posts"]["absences"] > 0
    assert summary["ab_posts"]["handovers"] + summary["ab_posts"]["head_fallbacks"] > 0
    # village stations: relayed submissions became cases at the towns and were replied to; repeats made nothing
    village = summary["village_stations"]
    assert village["relayed"] == village["cases_at_towns"] == books["village_submissions"]["relayed_by_stations"] > 0
    assert village["refused_at_station"] + village["help_only"] + village["done_at_station"] > 0
    assert village["replies_made"] == books["village_submissions"]["finished_at_towns"] > 0
    assert village["services_logged"] == village["relayed"] + village["refused_at_station"] \
        + village["done_at_station"] + village["help_only"]
    # escalations through the town agents, and 全城通办 cases known to both centres
    escalations = summary["escalations"]
    assert escalations["to_town_agents"] == escalations["returned"] == books["escalations"]["completed_at_towns"] > 0
    city_wide = books["city_wide_cases"]
    assert city_wide["expected_at_handling_centres"] == city_wide["seen_by_handling_centres"] > 0
    assert city_wide["mailed"] == city_wide["waybills"] == summary["city_wide"]["mailed_by_ems"]
    # how the city serves: notices counted at our SMS gateway and SMTP server, ratings through their
    # rectifications, complaints, the board's warnings and the forecast, the month's figures
    served = summary["service_books"]
    deliveries = summary["deliveries"]
    assert deliveries["sms_sent"] == deliveries["sms_at_gateway"] > 0
    assert deliveries["email_sent"] == deliveries["mail_at_smtp"] > 0
    ratings = summary["ratings"]
    assert ratings["posted"] == served["ratings"]["at_evaluation"] > 0
    assert ratings["bad"] == ratings["followed_up"] + ratings["appeals_upheld"]
    assert summary["complaints"]["filed"] == summary["complaints"]["resolved"] + summary["complaints"]["open"] > 0
    supervision = summary["supervision"]
    assert supervision["backlog"] > 0 and sum(supervision["board"].values()) >= supervision["backlog"]
    assert sum(supervision["warnings"].values()) == supervision["board"]["yellow"] + supervision["board"]["red"]
    assert supervision["forecast"]["horizon_days"] == 5 and supervision["forecast"]["breaches"] >= 0
    monthly = summary["monthly"]
    assert monthly["completed"] == books["completed"]["intake"] and monthly["ratings"] > 0
    assert monthly["received"] >= books["completed"]["intake"]


def test_token_is_minted_for_a_role_and_scope(tmp_path):
    env = _env(tmp_path, "x")
    r = subprocess.run([*TONGBAN, "token", "--subject", "wang.fang", "--role", "approver",
                        "--scope", "department:minzheng@320583101"], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # signed with the data folder's development key: checked with its public half only
    key = tokens.dev_keys(tmp_path / "data" / "keys")
    principal = tokens.TokenVerifier(tokens.jwks_text(key)).verify(r.stdout.strip())
    assert (principal.subject, principal.role, str(principal.scope)) == \
        ("wang.fang", "approver", "department:minzheng@320583101")
    bad = subprocess.run([*TONGBAN, "token", "--subject", "x", "--role", "king", "--scope", "city"], env=env,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "role" in bad.stderr
    # the directory's pairing of roles and scopes: a clerk works at a town's window, not for the city
    wide = subprocess.run([*TONGBAN, "token", "--subject", "x", "--role", "clerk", "--scope", "city"], env=env,
                          capture_output=True, text=True)
    assert wide.returncode == 2 and "a clerk works in a town scope" in wide.stderr and not wide.stdout


def test_demo_keep_leaves_the_suite_up_with_the_portal_and_a_sign_in_per_role(tmp_path):
    # every line of work logged, to a file (a pipe nobody reads while the audit runs would stall the suite)
    log = tmp_path / "demo-stderr.log"
    with open(log, "w") as stderr:
        proc = subprocess.Popen([*TONGBAN, "demo", "--cases", "20", "--keep"],
                                env={**_env(tmp_path, "unused"), "TONGBAN_LOG_LEVEL": "INFO"},
                                stdout=subprocess.PIPE, stderr=stderr, text=True)
    lines, kept = [], None
    try:
        out = "".join(_lines_until(proc, "keeps running", 300, lines))
        kept = re.search(r"data stays in (\S+), queues under bus prefix (\w+)[;)]", out).groups()
        assert "RECONCILED" in out
        portal, password = re.search(r"portal: (http://\S+)/\s+sign in as \(password (\S+) for all\)", out).groups()
        people = dict(re.findall(r"^  (\S+)\s+\S+\s+(clerk|approver|department_head|agent|town_agent|supervisor|"
                                 r"city_admin)\s", out, re.M))
        assert set(people.values()) == {"clerk", "approver", "department_head", "agent", "town_agent",
                                        "supervisor", "city_admin"}, people
        clerk = next(n for n, role in people.items() if role == "clerk")
        browser = requests.Session()
        r = browser.post(portal + "/login", data={"staff_number": clerk, "password": password}, timeout=10)
        assert r.status_code == 200 and r.url.endswith("/clerk")
        today = browser.get(portal + "/clerk/today", timeout=30)
        assert today.status_code == 200 and "/clerk/cases/" in today.text, "the demo's cases at the clerk's window"
        # the personal-data audit of the whole run (issue 14): no unmasked number anywhere staff or logs show
        read = Counter()
        findings = audit_pii(kept[0], log_paths=[log], read=read, portal_logins={n: password for n in people})
        assert findings == [], "\n".join(map(str, findings[:20]))
        assert read["log lines"] > 1000 and read["metric samples"] and read["http lists"] > 20, read
        assert read["cases"] == 20 and read["case views"] and read["databases"] >= 10, read
        assert read["portal sign-ins"] == len(people) and read["portal pages"] > 3 * len(people), read
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, rest
        assert audit_logs([log]) == [], "nor in what the suite logged as it stopped"
    finally:
        if proc.poll() is None:
            proc.kill()
        if kept:  # what --keep kept: its data folder, its queues and broker users
            import shutil

            shutil.rmtree(kept[0], ignore_errors=True)
            base = Settings(service="t", instance="t", bus_prefix=kept[1])
            remove_bus(base.amqp_url, kept[1], host_layout(base, departments=sorted(load_catalog().departments)))
            busauth.delete_users(base.amqp_url, kept[1])
