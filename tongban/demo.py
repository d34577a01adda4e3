"""`tongban demo`: the whole suite against a simulated city, then the books reconciled.

It starts every instance of the host layout on a bus prefix and data folder of its own (so it
never touches a running `tongban up`), sends applicants to the windows, lets approvers decide,
waits until every case is closed, and checks each service's own records against the others.
"""
from __future__ import annotations

import random
import shutil
import socket
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import eventlet
import requests

from shared.auth import issue_token
from shared.catalog import load_catalog
from shared.config import Settings
from shared.logging import configure_logging
from tongban.runtime import Cluster, host_layout, remove_bus

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰涛明超秀英华平"


def fake_resident_id(rng: random.Random) -> str:
    """A well-formed 居民身份证 number for a simulated applicant (valid check digit)."""
    born = f"{rng.randint(1940, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    body = "320583" + born + f"{rng.randint(0, 999):03d}"
    check = "10X98765432"[sum(int(c) * w for c, w in zip(body, _ID_WEIGHTS)) % 11]
    return body + check


def fake_applicant(rng: random.Random) -> dict:
    return {"name": rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN),
            "id_number": fake_resident_id(rng),
            "phone": f"1{rng.choice('3456789')}{rng.randint(0, 999999999):09d}",
            "channel": rng.choice(["sms", "sms", "pickup"])}


def _free_port_block(n: int, start: int = 18100) -> int:
    for first in range(start, 60000, 50):
        ok = True
        for port in range(first, first + n):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return first
    raise RuntimeError("no free block of ports on 127.0.0.1")


class Progress:
    def __init__(self, label: str, total: int, quiet: bool):
        self.label, self.total, self.quiet = label, total, quiet
        self.tty = sys.stderr.isatty()
        self._last = 0.0

    def show(self, done: int, extra: str = "") -> None:
        if self.quiet:
            return
        now = time.monotonic()
        if done < self.total and now - self._last < (0.2 if self.tty else 2.0):
            return
        self._last = now
        width = 30
        filled = int(width * done / max(self.total, 1))
        line = f"{self.label:<10} [{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} {extra}"
        print(("\r" + line) if self.tty else line, end="" if self.tty else "\n", file=sys.stderr, flush=True)
        if self.tty and done >= self.total:
            print(file=sys.stderr)


def run_demo(cases: int = 300, as_json: bool = False, keep: bool = False, seed: int = 20261123,
             timeout: float = 600.0) -> dict:
    configure_logging("ERROR")
    rng = random.Random(seed)
    catalog = load_catalog()
    stamp = time.strftime("%Y%m%d%H%M%S")
    data_dir = Path(tempfile.mkdtemp(prefix=f"tongban-demo-{stamp}-"))
    base = Settings.from_env("tongban", instance="tongban", data_dir=data_dir, bus_prefix=f"demo{stamp}",
                             http_port=None)
    layout = host_layout(base, first_port=_free_port_block(7))
    say = (lambda *a: None) if as_json else (lambda *a: print(*a, file=sys.stderr, flush=True))
    say(f"tongban demo: a simulated city of {len(catalog.towns)} towns, {len(catalog.items)} items, "
        f"{cases} applicants")
    cluster = Cluster()
    started = time.monotonic()
    try:
        for settings in layout:
            cluster.start(settings)
        say(f"started {len(layout)} instances on bus prefix {base.bus_prefix}")
        urls = {s.instance: s.base_url for s in layout}
        towns = [s.town for s in layout if s.service == "intake"]
        ops = issue_token(base.secret, "demo-supervisor", "service", "city")

        submitted = _submit(cases, towns, catalog, base.secret, urls, rng, Progress("accept", cases, as_json))
        decided = _decide_and_wait(submitted, catalog, towns, base.secret, urls, ops, rng,
                                   Progress("complete", len(submitted), as_json), timeout)
        summary = _reconcile(submitted, decided, urls, ops, layout)
    finally:
        cluster.stop()
        if not keep:
            try:
                remove_bus(base.amqp_url, base.bus_prefix, layout)
            except Exception as exc:  # leftovers are harmless; say so rather than fail the demo
                print(f"note: could not remove the demo's queues ({exc})", file=sys.stderr)
            shutil.rmtree(data_dir, ignore_errors=True)
    summary["elapsed_seconds"] = round(time.monotonic() - started, 1)
    summary["data_dir"] = str(data_dir) if keep else None
    if not as_json:
        _print_summary(summary)
    return summary


def _submit(n, towns, catalog, secret, urls, rng, progress) -> list[dict]:
    clerks = {t: issue_token(secret, f"clerk-{t[-3:]}", "clerk", f"town:{t}") for t in towns}
    items = [i for i in catalog.items.values() if i["kind"] in ("instant", "promised")]
    jobs = []
    for k in range(n):
        town = rng.choice(towns)
        item = rng.choice(items)
        jobs.append((k, town, item, fake_applicant(rng)))
    results: list[dict] = []
    session = requests.Session()

    def submit(job):
        k, town, item, applicant = job
        body = {"item_code": item["code"], "applicant": applicant,
                "materials": [m["code"] for m in item["materials"] if m["required"]]}
        r = session.post(f"{urls['intake-' + town]}/cases", json=body, timeout=30,
                         headers={"Authorization": f"Bearer {clerks[town]}", "Idempotency-Key": f"demo-{k}"})
        if r.status_code not in (200, 201):
            raise RuntimeError(f"window refused demo case {k}: {r.status_code} {r.text}")
        return {**r.json(), "town": town}

    pool = eventlet.GreenPool(16)
    for case in pool.imap(submit, jobs):
        results.append(case)
        progress.show(len(results))
    return results


def _decide_and_wait(submitted, catalog, towns, secret, urls, ops, rng, progress, timeout) -> Counter:
    """Approvers work their lists until every submitted case is closed in its ledger."""
    session = requests.Session()
    departments = {i["department"] for i in catalog.items.values()}
    approvers = {(d, t): issue_token(secret, f"approver-{d}-{t[-3:]}", "approver", f"department:{d}@{t}")
                 for d in departments for t in towns}
    decided = Counter()
    deadline = time.monotonic() + timeout
    want = len(submitted)
    while True:
        for (dept, town), token in approvers.items():
            url = urls.get(f"approval-{dept}")
            if url is None:
                continue
            r = session.get(f"{url}/work-items", params={"status": "pending"}, timeout=30,
                            headers={"Authorization": f"Bearer {token}"})
            r.raise_for_status()
            for item in r.json()["items"]:
                refuse = rng.random() < 0.1
                body = ({"outcome": "refused", "reason": "申请材料与实际情况不符"} if refuse
                        else {"outcome": "approved"})
                d = session.post(f"{url}/work-items/{item['id']}/decision", json=body, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"})
                if d.status_code == 200:
                    decided[body["outcome"]] += 1
        done = sum(_stats(session, urls[f"intake-{t}"], ops)["completed"] for t in towns)
        notified = _stats(session, urls["notify"], ops)["result"]
        progress.show(min(done, notified), f"(closed {done}, result notices {notified})")
        if done >= want and notified >= want:
            return decided
        if time.monotonic() > deadline:
            raise RuntimeError(f"demo timed out: {done}/{want} cases closed, {notified} notified")
        eventlet.sleep(0.3)


def _stats(session, url, token) -> dict:
    r = session.get(f"{url}/stats", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    r.raise_for_status()
    return r.json()


def _reconcile(submitted, decided_by_hand, urls, ops, layout) -> dict:
    session = requests.Session()
    # every service's own books; give the last events a moment to land in evaluation and agent
    for _ in range(50):
        intake = [_stats(session, s.base_url, ops) for s in layout if s.service == "intake"]
        approval = [_stats(session, s.base_url, ops) for s in layout if s.service == "approval"]
        notify = _stats(session, urls["notify"], ops)
        evaluation = _stats(session, urls["evaluation"], ops)["cases_by_event"]
        accepted = sum(x["accepted"] for x in intake)
        books = {
            "submitted": len(submitted),
            "accepted": accepted,
            "decided": sum(x["decided"] for x in approval),
            "completed": sum(x["completed"] for x in intake),
            "notified": notify["result"],
            "evaluated": evaluation.get("case.completed", 0),
        }
        if len(set(books.values())) == 1:
            break
        eventlet.sleep(0.2)
    kinds = Counter(c["kind"] for c in submitted)
    return {
        "cases": books,
        "reconciled": len(set(books.values())) == 1,
        "by_kind": dict(kinds),
        "by_town": {x["town"]: x["accepted"] for x in intake},
        "by_department": {x["department"]: x["decided"] for x in approval},
        "outcomes": {"approved": sum(x["approved"] for x in intake), "refused": sum(x["refused"] for x in intake)},
        "decided_by_approvers": dict(decided_by_hand),
        "decided_by_rule": sum(x["decided"] for x in approval) - sum(decided_by_hand.values()),
        "acceptance_notices": notify["acceptance"],
    }


def _print_summary(s: dict) -> None:
    b = s["cases"]
    print()
    print("tongban demo — summary")
    print(f"  cases submitted     {b['submitted']}")
    print(f"  accepted (intake)   {b['accepted']}    by kind: " +
          ", ".join(f"{k} {v}" for k, v in sorted(s['by_kind'].items())))
    print("  by town             " + ", ".join(f"{t} {n}" for t, n in sorted(s["by_town"].items())))
    print(f"  decided (approval)  {b['decided']}    by rule {s['decided_by_rule']}, by approvers "
          + ", ".join(f"{k} {v}" for k, v in sorted(s['decided_by_approvers'].items())))
    print(f"  completed (ledger)  {b['completed']}    approved {s['outcomes']['approved']}, "
          f"refused {s['outcomes']['refused']}")
    print(f"  notified (notify)   {b['notified']}    result notices; {s['acceptance_notices']} acceptance notices")
    print(f"  evaluated           {b['evaluated']}    cases with a completion event")
    verdict = "RECONCILED: every service's books agree" if s["reconciled"] else "NOT RECONCILED"
    print(f"  {verdict}   ({s['elapsed_seconds']} s)")
