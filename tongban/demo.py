"""`tongban demo`: the whole suite against a simulated city, then the books reconciled.

It starts every instance (windows for a few towns, an approval service for every department of
the catalogue, agent, notify, evaluation) on a bus prefix and data folder of its own, so it never
touches a running `tongban up`. Applicants come with complete or incomplete materials, some are
returned and ask for review, some only ask; escalated cases pass the town's initial review;
special procedures pause the clock; approvers decide. Villagers go to their village stations: the agent
submits with their authorisation (the client resends some, as a poor connection would), refuses what needs
the applicant in person, only helps those who decline to authorise, does village-level items at once and
relays the rest to the town, and calls the villager back when the case is done. Escalated cases go from the
town's 初审 through the town agent to the city department and back. Residents of other towns apply under
全城通办: their town's department office decides, the result goes back by EMS mail or for pickup. When every
case is closed, each service's own records are checked against the others.
"""
from __future__ import annotations

import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import eventlet
import requests

from shared import busauth, tokens
from shared.catalog import load_catalog
from shared.config import Settings
from shared.logging import configure_logging
from shared.vocabulary import OPEN_CASE_STATUSES
from shared.workdays import SHANGHAI
from tongban import bus_cmd
from tongban.local_outlets import LocalOutlets
from tongban.runtime import Cluster, free_port_block, host_layout, remove_bus, wait_for_stop_signal

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰涛明超秀英华平"
DEMO_TOWNS = 3  # windows: the first towns of the catalogue; applicants come from every town
VILLAGE_SHARE = 0.2  # of the applicants, those who go to their village station instead of a town window
IN_FLIGHT = ("awaiting_relay", "relayed", "decided")  # an escalation the town agent still has to move
OPEN_STATUSES = tuple(str(s) for s in OPEN_CASE_STATUSES)


CLERK_NAMES = ("张敏", "李娜", "王磊", "陈静", "刘洋", "周婷")


def fake_resident_id(rng: random.Random) -> str:
    """A well-formed 居民身份证 number for a simulated applicant (valid check digit)."""
    born = f"{rng.randint(1940, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    body = "320583" + born + f"{rng.randint(0, 999):03d}"
    check = "10X98765432"[sum(int(c) * w for c, w in zip(body, _ID_WEIGHTS, strict=True)) % 11]
    return body + check


def fake_applicant(rng: random.Random, towns: list[str]) -> dict:
    return {"name": rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN),
            "id_number": fake_resident_id(rng),
            "phone": f"1{rng.choice('3456789')}{rng.randint(0, 999999999):09d}",
            "channel": rng.choice(["sms", "sms", "sms", "email", "pickup"]), "town": rng.choice(towns)}


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
        filled = int(width * min(done, self.total) / max(self.total, 1))
        line = f"{self.label:<10} [{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} {extra}"
        print(("\r" + line) if self.tty else line, end="" if self.tty else "\n", file=sys.stderr, flush=True)
        if self.tty and done >= self.total:
            print(file=sys.stderr)


class Http:
    """The demo's HTTP client: every call must succeed (a failure is a demo failure, said plainly)."""

    def __init__(self):
        self.session = requests.Session()

    def __call__(self, method: str, url: str, token: str, body=None, expect=(200, 201), **params):
        r = self.session.request(method, url, json=body, params=params or None, timeout=60,
                                 headers={"Authorization": f"Bearer {token}"})
        if r.status_code not in expect:
            raise RuntimeError(f"{method} {url} answered {r.status_code}: {r.text[:300]}")
        return r.json()


def run_demo(cases: int = 300, as_json: bool = False, keep: bool = False, seed: int = 20261123,
             timeout: float = 900.0) -> dict:
    # the services log to stderr: errors only, unless TONGBAN_LOG_LEVEL asks for more (the personal-data
    # audit reads every line of work)
    configure_logging(os.environ.get("TONGBAN_LOG_LEVEL", "ERROR"))
    rng = random.Random(seed)
    catalog = load_catalog()
    stamp = time.strftime("%Y%m%d%H%M%S")
    data_dir = Path(tempfile.mkdtemp(prefix=f"tongban-demo-{stamp}-"))
    base = Settings.from_env("tongban", instance="tongban", data_dir=data_dir, bus_prefix=f"demo{stamp}",
                             http_port=None)
    towns = list(catalog.towns)[:DEMO_TOWNS]
    departments = sorted(catalog.departments)
    layout = host_layout(base, towns=towns, departments=departments,
                         first_port=free_port_block(1 + len(towns) + len(departments) + 3))
    say = (lambda *a: None) if as_json else (lambda *a: print(*a, file=sys.stderr, flush=True))
    say(f"tongban demo: a simulated city of {len(catalog.towns)} towns, {len(catalog.departments)} departments, "
        f"{len(catalog.items)} items; {cases} applicants at {len(towns)} windows")
    cluster = Cluster()
    started = time.monotonic()
    # notices reach real servers of ours: the SMS gateway and an SMTP server (tongban/local_outlets.py)
    outlets = LocalOutlets(data_dir / "outlets").start()
    layout = [s.with_(extra={**s.extra, **outlets.notify_extra()}) if s.service == "notify"
              else s.with_(extra={**s.extra, "supervision_interval": 1, "figures_refresh_seconds": 1})
              if s.service == "evaluation" else s for s in layout]
    try:
        bus_cmd.prepare(base)  # the services' broker users, every queue of the registry, the policy
        cluster.start_all(layout)
        say(f"started {len(layout)} instances on bus prefix {base.bus_prefix}")
        city = DemoCity(base.with_(service="cli").signing_key(), {s.instance: s.base_url for s in layout}, towns,
                        departments, catalog, rng)
        city.staff_posts()
        city.submit_all(cases, Progress("submit", cases, as_json))
        city.work_until_closed(Progress("close", cases, as_json), timeout)
        summary = city.reconcile(layout)
        say("rating, complaining, supervising …")
        summary.update(city.how_the_city_serves(outlets))
        summary["reconciled"] = summary["reconciled"] and _served_balanced(summary["service_books"])
        if keep:  # the suite stays up to look around in, as the people the demo played
            from tongban.status_cmd import write_instances_file

            # `tongban status` finds the instances here, as after `tongban up` (TONGBAN_DATA_DIR=data_dir)
            write_instances_file(data_dir, {s.instance: s.base_url for s in layout})
            portal = next(s for s in layout if s.service == "portal")
            summary["portal"] = {"url": f"{portal.base_url}/",
                                 "sign_ins": city.sign_ins(cluster.platform("portal").store)}
            if not as_json:
                summary["elapsed_seconds"] = round(time.monotonic() - started, 1)
                _print_summary(summary)
                _print_sign_ins(summary["portal"])
                print(f"the suite keeps running for you to look around; Ctrl-C stops it (data stays in {data_dir}, "
                      f"queues under bus prefix {base.bus_prefix}; `TONGBAN_DATA_DIR={data_dir} "
                      f"TONGBAN_BUS_PREFIX={base.bus_prefix} tongban status` shows how it runs).", flush=True)
                try:
                    wait_for_stop_signal()
                except KeyboardInterrupt:
                    pass
                summary["printed"] = True
    finally:
        cluster.stop()
        outlets.stop()
        if not keep:
            try:
                remove_bus(base.amqp_url, base.bus_prefix, layout)
                if base.bus_users:
                    busauth.delete_users(base.amqp_url, base.bus_users)
            except Exception as exc:  # leftovers are harmless; say so rather than fail the demo
                print(f"note: could not remove the demo's queues ({exc})", file=sys.stderr)
            shutil.rmtree(data_dir, ignore_errors=True)
    summary["elapsed_seconds"] = round(time.monotonic() - started, 1)
    summary["data_dir"] = str(data_dir) if keep else None
    if not as_json and not summary.pop("printed", False):
        _print_summary(summary)
    return summary


class DemoCity:
    def __init__(self, key, urls, towns, departments, catalog, rng):
        self.key, self.urls, self.towns, self.departments = key, urls, towns, departments
        self.catalog, self.rng, self.http = catalog, rng, Http()
        self.ops = tokens.issue(key, "demo-supervisor", "service", "city")
        self.supervisor = tokens.issue(key, "demo-supervisor", "supervisor", "city")
        # the window clerks sign the notices as 首问负责人 by name and staff number
        self.clerks = {t: tokens.issue(key, f"clerk-{t[-3:]}", "clerk", f"town:{t}",
                                      name=CLERK_NAMES[i % len(CLERK_NAMES)]) for i, t in enumerate(towns)}
        self.town_agents = {t: tokens.issue(key, f"town-agent-{t[-3:]}", "town_agent", f"town:{t}") for t in towns}
        self.villages = [v["code"] for t in towns for v in catalog.towns[t]["villages"]]
        self.village_agents = {v: tokens.issue(key, f"agent-{v[-6:]}", "agent", f"village:{v}")
                               for v in self.villages}
        self.opened: list[dict] = []  # (case view, town) of every case the windows opened
        self.actions = Counter()
        self.village = Counter()  # what the village stations did
        self.station_records: dict[str, dict] = {}  # number -> the station's record (one per service)

    def sign_ins(self, store) -> list[dict]:
        """The people the demo played, in the portal's directory with one password, to look around as them:
        a clerk per window, an approver and a department head, a village agent, a town agent, the city's
        supervisor and city IT."""
        from services.portal import directory
        from services.portal.directory_rules import new_password

        town, dept = self.towns[0], self.departments[0]
        office = f"{dept}-{town[-3:]}"
        people = [(f"clerk-{t[-3:]}", CLERK_NAMES[i % len(CLERK_NAMES)], "clerk", f"town:{t}")
                  for i, t in enumerate(self.towns)]
        people += [(f"{office}-a", "赵刚", "approver", f"department:{dept}@{town}"),
                   (f"{office}-head", "孙丽", "department_head", f"department:{dept}@{town}"),
                   (f"agent-{self.villages[0][-6:]}", "吴强", "agent", f"village:{self.villages[0]}"),
                   (f"town-agent-{town[-3:]}", "郑华", "town_agent", f"town:{town}"),
                   ("demo-supervisor", "钱敏", "supervisor", "city"), ("city-it", "冯军", "city_admin", "city")]
        password = new_password()
        with store.transaction() as tx:
            for number, name, role, scope in people:
                directory.add_user(tx, number, name, role, scope, password, "tongban demo")
        return [{"staff_number": n, "name": name, "role": r, "scope": sc, "password": password}
                for n, name, r, sc in people]

    def _token_for(self, department: str, handling_town: str, holder: str | None = None) -> str:
        """The token of whoever holds the work (a post holder, the head), or of anyone in that office."""
        scope = f"department:{department}" if handling_town == "city" else f"department:{department}@{handling_town}"
        subject = holder or f"{department}-{handling_town[-3:]}-staff"
        role = "department_head" if subject.endswith("-head") else "approver"
        return tokens.issue(self.key, subject, role, scope)

    def staff_posts(self) -> None:
        """AB岗: every office has an A and a B holder; some A holders are on leave, a few offices have both away."""
        admin = tokens.issue(self.key, "city-it", "city_admin", "city")
        now = time.time()
        since = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now - 86400))
        until = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now + 30 * 86400))
        for dept in self.departments:
            url = self.urls[f"approval-{dept}"]
            for office in [*self.catalog.towns, "city"]:
                tag = f"{dept}-{office[-3:]}"
                self.http("PUT", f"{url}/posts/{office}", admin,
                          {"a": f"{tag}-a", "b": f"{tag}-b", "head": f"{tag}-head"})
                luck = self.rng.random()
                away = [f"{tag}-a"] if luck < 0.25 else [f"{tag}-a", f"{tag}-b"] if luck < 0.32 else []
                for holder in away:
                    self.http("POST", f"{url}/posts/{office}/absences", admin,
                              {"holder": holder, "from": since, "to": until, "reason": "年休假"})
                    self.actions["absences"] += 1

    # --- the windows -----------------------------------------------------------------------------

    def submit_all(self, n: int, progress: Progress) -> None:
        """The applicants come to the windows and to their village stations, a dozen at a time."""
        items = list(self.catalog.items.values())
        at_villages = int(n * VILLAGE_SHARE) if self.villages else 0
        jobs = [(self._one_applicant, (k, self.rng.choice(self.towns), self.rng.choice(items), self.rng.random(),
                                       fake_applicant(self.rng, list(self.catalog.towns))))
                for k in range(n - at_villages)]
        jobs += [(self._one_villager, (self.rng.choice(self.villages), self.rng.random(), self.rng.random(),
                                       fake_applicant(self.rng, self.towns)))
                 for _ in range(at_villages)]
        self.rng.shuffle(jobs)
        pool = eventlet.GreenPool(12)
        for done, _ in enumerate(pool.imap(lambda job: job[0](job[1]), jobs), start=1):
            progress.show(done)

    def _one_applicant(self, job) -> None:
        k, town, item, luck, applicant = job
        url = f"{self.urls['intake-' + town]}/cases"
        # 全城通办: a resident of another town (most of them of a town with a window here, so both centres'
        # books can be checked) applies for a city-wide item; the others apply in their own town
        elsewhere = item["city_wide"] and self.rng.random() < 0.4
        applicant["town"] = (self.rng.choice([t for t in self.towns if t != town] if self.rng.random() < 0.75
                                             else list(self.catalog.towns))) if elsewhere else town
        if applicant["channel"] == "pickup":
            applicant["channel"] = "sms"  # the result's way back is `delivery`; notices go by SMS
        if applicant["channel"] == "email":  # notices by e-mail, with the PDF attached
            applicant["email"] = f"applicant{k}@example.com"
        required = [m["code"] for m in item["materials"] if m["required"]]
        body = {"item_code": item["code"], "applicant": applicant, "materials": required}
        if "mail" in item["delivery"] and self.rng.random() < (0.6 if applicant["town"] != town else 0.15):
            body.update(delivery="mail", mail_address=f"{self.catalog.towns[applicant['town']]['name']}"
                                                      f"幸福路{self.rng.randint(1, 300)}号")
        optional_missing = [m for m in item["materials"] if m["required"] and not m["deferrable"]]
        if item["kind"] != "consultation" and luck < 0.12 and optional_missing:
            # incomplete: the applicant forgot up to two materials (补办件)
            forgotten = {m["code"] for m in optional_missing[:2]}
            body["materials"] = [c for c in required if c not in forgotten]
        elif item["kind"] != "consultation" and luck > 0.95:
            body["return_reason"] = "申请事项不属于受理范围"  # 退回件
        case = self.http("POST", url, self.clerks[town], body)
        self.opened.append(case)
        self.actions[f"opened_{case['status']}"] += 1
        self._follow_up(case, town)

    def _follow_up(self, case: dict, town: str) -> None:
        base, token, number = self.urls["intake-" + town], self.clerks[town], case["case_number"]
        while case["status"] == "pending_materials":  # the applicant brings them one at a time
            first = case["missing_materials"][0]["code"]
            case = self.http("POST", f"{base}/cases/{number}/supplement", token, {"materials": [first]})
            self.actions["supplement"] += 1
        if case["status"] == "initial_review":  # 初审 at the town, then up to the city department
            case = self.http("POST", f"{base}/cases/{number}/initial-review", token)
            self.actions["initial_review"] += 1
        if case["status"] == "returned" and self.rng.random() < 0.5:  # 复核
            case = self.http("POST", f"{base}/cases/{number}/review", token, {"reason": "申请人认为符合条件"})
            self.opened.append(self.http("GET", f"{base}/cases/{case['review_case']}", token))
            self.actions["review"] += 1
        if case["status"] == "in_review" and case["kind"] == "promised":
            luck = self.rng.random()
            if luck < 0.06:  # 特别程序: a site survey pauses the clock
                self.http("POST", f"{base}/cases/{number}/pause", token,
                          {"procedure": "现场勘察", "reason": "需现场核实"})
                self.http("POST", f"{base}/cases/{number}/resume", token)
                self.actions["pause_resume"] += 1
            elif luck < 0.09:  # 延期, approved by a supervisor
                self.http("POST", f"{base}/cases/{number}/extension", self.supervisor,
                          {"days": 3, "reason": "需征求相关部门意见"}, expect=(200, 400))
                self.actions["extension"] += 1


    # --- the village stations (村/社区便民服务站) ---------------------------------------------------------

    def _station_items(self) -> dict[str, list[dict]]:
        items = list(self.catalog.items.values())
        return {"in_person": [i for i in items if i["in_person"]],
                "village": [i for i in items if i["level"] == "village" and i["kind"] != "consultation"],
                "relay": [i for i in items if i["agent_allowed"] and not i["in_person"] and i["level"] != "village"
                          and i["kind"] != "consultation"]}

    def _one_villager(self, job) -> None:
        """A villager at the station: refused (in person only), helped only, done at once, or relayed to the town
        (some of these sent again with the same Idempotency-Key, some at the same moment, as a poor line does)."""
        village, luck, resend, applicant = job
        url, token, town = self.urls["agent"], self.village_agents[village], village[:9]
        kinds = self._station_items()
        applicant = {**applicant, "town": town, "channel": "sms"}
        if luck < 0.12:
            item = self.rng.choice(kinds["in_person"])
        elif luck < 0.24:
            body = {"content": "咨询养老保险缴费档次", "solution": "讲解政策并协助填写表格，村民决定自行到镇中心办理",
                    "applicant": {"name": applicant["name"], "phone": applicant["phone"]}}
            record = self._station_post(f"{url}/station/help", token, body)
            self.station_records[record["number"]] = record
            self.village["help_only"] += 1
            return
        elif luck < 0.32 and kinds["village"]:
            item = self.rng.choice(kinds["village"])
        else:
            item = self.rng.choice(kinds["relay"])
        body = {"item_code": item["code"], "applicant": applicant,
                "materials": [m["code"] for m in item["materials"] if m["required"]],
                "authorisation": {"by": applicant["name"], "matters": f"代为申请{item['name']}",
                                  "signed_at": datetime.now(UTC).isoformat(), "method": "手写签名"}}
        key = uuid.uuid4().hex
        sends = 1 + (self.rng.randint(1, 4) if resend < 0.3 else 0)
        if sends > 1:  # a poor connection: the client sends again, some at the same moment
            pool = eventlet.GreenPool(sends)
            answers = list(pool.imap(lambda _: self._station_post(f"{url}/station/submissions", token, body, key),
                                     range(sends)))
            self.village["sent_again"] += sends - 1
        else:
            answers = [self._station_post(f"{url}/station/submissions", token, body, key)]
        if len({a["number"] for a in answers}) != 1:
            raise RuntimeError(f"one Idempotency-Key made {len({a['number'] for a in answers})} station records")
        record = answers[0]
        self.station_records[record["number"]] = record
        self.village[{"refused": "refused_at_station", "done": "done_at_station"}.get(record["status"],
                                                                                       "relayed")] += 1

    def _station_post(self, url: str, token: str, body: dict, key: str | None = None) -> dict:
        r = self.http.session.post(url, json=body, timeout=60, headers={
            "Authorization": f"Bearer {token}", "Idempotency-Key": key or uuid.uuid4().hex})
        if r.status_code not in (200, 201):
            raise RuntimeError(f"POST {url} answered {r.status_code}: {r.text[:300]}")
        return r.json()

    def _village_replies(self) -> int:
        """Each village agent calls back the villagers whose cases are done (回复); the replies still owed."""
        owed = 0
        for village, token in self.village_agents.items():
            for reply in self.http("GET", f"{self.urls['agent']}/replies", token)["replies"]:
                if reply["village"] != village:
                    continue
                self.http("POST", f"{self.urls['agent']}/replies/{reply['case_number']}", token,
                          {"method": self.rng.choice(["phone", "phone", "visit"]),
                           "what_said": "告知办理结果及领取方式" if reply["outcome"] == "approved"
                           else "告知未获批准的原因及后续途径"}, expect=(200, 409))
                owed += 1
        return owed

    def _initial_reviews(self, town: str) -> None:
        """初审 at the town for escalated cases the village stations relayed (the window's own pass at once)."""
        base, token = self.urls["intake-" + town], self.clerks[town]
        for case in self.http("GET", f"{base}/cases", token, status="initial_review", limit=500)["cases"]:
            self.http("POST", f"{base}/cases/{case['case_number']}/initial-review", token, expect=(200, 409))
            self.actions["initial_review"] += 1

    # --- the back office -----------------------------------------------------------------------------

    def work_until_closed(self, progress: Progress, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        total = len(self.opened)
        progress.total = total
        while True:
            in_flight = self._town_agents()  # escalated cases: relayed to the city after 初审, decisions back
            for dept in self.departments:
                self._work_the_list(dept)
            for town in self.towns:  # cases the back office sent back for more materials; stations' escalations
                self._supplement_requested(town)
                self._initial_reviews(town)
            owed = self._village_replies()
            open_cases = sum(sum(self._intake_stats(t)["by_status"].get(s, 0) for s in OPEN_STATUSES)
                             for t in self.towns)
            unlinked = self.http("GET", f"{self.urls['agent']}/stats", self.ops)["station"]["by_status"].get(
                "relayed", 0)  # relayed by a station, no case heard of yet
            progress.total = total + sum(1 for r in self.station_records.values() if r["status"] == "relayed")
            progress.show(progress.total - open_cases - unlinked, f"(open {open_cases})")
            if open_cases == 0 and unlinked == 0 and in_flight == 0 and owed == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"demo timed out with {open_cases} cases still open")
            eventlet.sleep(0.3)

    def _work_the_list(self, dept: str) -> None:
        url = self.urls[f"approval-{dept}"]
        worklist = self.http("GET", f"{url}/work-items", self.ops, limit=500)
        for item in worklist["paused"]:
            if item["status"] == "paused":  # the special procedure is over by the next round
                token = self._token_for(dept, item["handling_town"], item["assignee"])
                self.http("POST", f"{url}/work-items/{item['id']}/procedure/end", token, {"reason": "勘察完毕"},
                          expect=(200, 409))
        for item in worklist["items"]:
            token = self._token_for(dept, item["handling_town"], item["assignee"])
            base = f"{url}/work-items/{item['id']}"
            luck = self.rng.random()
            if item["kind"] == "promised" and luck < 0.04 and not item.get("requested_materials"):
                self.http("POST", f"{base}/materials", token,
                          {"materials": [{"name": "补充说明材料"}], "reason": "需补充说明"}, expect=(200, 409))
                self.actions["back_office_materials"] += 1
                continue
            if item["kind"] == "promised" and luck < 0.07 and not item.get("procedure"):
                self.http("POST", f"{base}/procedure", token, {"procedure": "现场勘察", "reason": "需现场核实"},
                          expect=(200, 409))
                self.actions["back_office_procedure"] += 1
                continue
            refuse = luck > 0.93
            body = {"outcome": "refused", "reason": "申请材料与实际情况不符"} if refuse else {"outcome": "approved"}
            self.http("POST", f"{base}/decision", token, body, expect=(200, 409))

    def _town_agents(self) -> int:
        """Each town's agent relays what waits for relay and returns what the city decided; how many are still
        in the town agents' hands."""
        url, in_flight = self.urls["agent"], 0
        for town in self.towns:
            token = self.town_agents[town]
            for esc in self.http("GET", f"{url}/escalations", token)["escalations"]:
                in_flight += esc["status"] in IN_FLIGHT
                step = {"awaiting_relay": "relay", "decided": "return"}.get(esc["status"])
                if step:
                    self.http("POST", f"{url}/escalations/{esc['case_number']}/{step}", token, expect=(200, 409))
                    self.actions[f"escalation_{step}"] += 1
        return in_flight

    def _supplement_requested(self, town: str) -> None:
        base, token = self.urls["intake-" + town], self.clerks[town]
        for case in self.http("GET", f"{base}/cases", token, status="pending_materials", limit=500)["cases"]:
            codes = [m["code"] for m in case["missing_materials"]]
            self.http("POST", f"{base}/cases/{case['case_number']}/supplement", token, {"materials": codes},
                      expect=(200, 409))
            self.actions["supplement_for_back_office"] += 1

    def _intake_stats(self, town: str) -> dict:
        return self.http("GET", f"{self.urls['intake-' + town]}/stats", self.ops)

    # --- the books -----------------------------------------------------------------------------------

    def reconcile(self, layout) -> dict:
        books = {}
        for _ in range(100):  # the last events may still be on their way to notify and evaluation
            intake = [self._intake_stats(t) for t in self.towns]
            approval = [self.http("GET", f"{self.urls[f'approval-{d}']}/stats", self.ops) for d in self.departments]
            notify = self.http("GET", f"{self.urls['notify']}/stats", self.ops)
            evaluation = self.http("GET", f"{self.urls['evaluation']}/stats", self.ops)["cases_by_event"]
            completed = sum(x["completed"] for x in intake)
            books = {
                "opened": {"windows": sum(x["cases"] for x in intake),
                           "demo": len(self.opened) + self.village["relayed"]},
                "completed": {"intake": completed, "result_notices": notify["by_kind"].get("result", 0),
                              "evaluation": evaluation.get("case.completed", 0)},
                "decisions": {"approval": sum(x["decided"] for x in approval),
                              "intake": sum(x["department_decisions"] + x["late_decisions"] for x in intake)},
                "work_items": {"received": sum(x["received"] for x in approval),
                               "decided+withdrawn+superseded": sum(x["decided"] + x["withdrawn"] + x["superseded"]
                                                                   for x in approval)},
                "open": {"cases": sum(sum(x["by_status"].get(s, 0) for s in OPEN_STATUSES) for x in intake),
                         "work_items": sum(x["pending"] for x in approval)},
            }
            agent = self.http("GET", f"{self.urls['agent']}/stats", self.ops)
            books.update(self._village_books(intake, agent), **self._escalation_books(intake, agent),
                         **self._city_wide_books(intake))
            if _balanced(books):
                break
            eventlet.sleep(0.2)
        by_kind, by_status = Counter(), Counter()
        for x in intake:
            by_kind.update(x["by_kind"])
            by_status.update(x["by_status"])
        return {
            "reconciled": _balanced(books),
            "books": books,
            "cases": {"submitted": sum(1 for c in self.opened if c["kind"] != "review") + len(self.station_records),
                      "opened": books["opened"]["windows"], "completed": books["completed"]["intake"]},
            "by_kind": dict(sorted(by_kind.items())),
            "by_status": dict(sorted(by_status.items())),
            "outcomes": {"approved": sum(x["approved"] for x in intake), "refused": sum(x["refused"] for x in intake)},
            "by_department": {d: x["decided"] for d, x in zip(self.departments, approval, strict=True) if x["decided"]},
            "window_actions": dict(sorted(self.actions.items())),
            "notices": notify["by_kind"],
            "ab_posts": {"handovers": sum(x["handovers"] for x in approval),
                         "head_fallbacks": sum(x["head_fallbacks"] for x in approval),
                         "absences": self.actions["absences"]},
            "back_office": {"materials_requested": self.actions["back_office_materials"],
                            "special_procedures": self.actions["back_office_procedure"],
                            "superseded_work_items": sum(x["superseded"] for x in approval)},
            "deadlines": self._deadlines(),
            "village_stations": {**{k: self.village[k] for k in (
                "relayed", "refused_at_station", "done_at_station", "help_only", "sent_again")},
                "services_logged": len(self.station_records),
                "cases_at_towns": books["village_submissions"]["cases_at_towns"],
                "completed": books["village_submissions"]["completed_at_towns"],
                "replies_made": books["village_submissions"]["replies_made"]},
            "escalations": {"to_town_agents": books["escalations"]["to_town_agents"],
                            "relayed": self.actions["escalation_relay"],
                            "returned": books["escalations"]["returned_by_town_agents"]},
            "city_wide": {"accepted_for_other_towns": sum(x["city_wide"]["handled_by_other_towns"] for x in intake),
                          "seen_by_handling_centres": books["city_wide_cases"]["seen_by_handling_centres"],
                          "mailed_by_ems": books["city_wide_cases"]["waybills"]},
        }

    # --- how the city serves: ratings, complaints, supervision, forecast, monthly figures, deliveries --------

    def how_the_city_serves(self, outlets) -> dict:
        """After the day's cases: applicants rate them (好差评) and a few complain (有诉即办); bad ratings go
        through callback, rectification and the follow-up, one through an appeal; a backlog nobody works
        shows the board's warnings and the breach forecast; the month's figures; deliveries by channel,
        counted at our SMS gateway and SMTP server too."""
        ratings = self._rate()
        complaints = self._complain()
        supervision = self._backlog_and_board()
        monthly = self._monthly()
        deliveries = self._deliveries(outlets)
        books = {
            "ratings": {"posted_by_demo": ratings["posted"],
                        "at_evaluation": len(self._all(f"{self.urls['evaluation']}/ratings", "ratings"))},
            "rectifications": {"opened": ratings["bad"],
                               "closed": ratings["followed_up"] + ratings["appeals_upheld"]},
            "monthly_figures": {"completed_at_intakes": self._completed_count(),
                                "completed_in_report": monthly["completed"],
                                "ratings_in_report": monthly["ratings"] + ratings["appeals_upheld"],
                                "ratings_posted": ratings["posted"]},
            "deliveries": {"sms_sent": deliveries["sms_sent"], "sms_at_gateway": deliveries["sms_at_gateway"],
                           "email_sent": deliveries["email_sent"], "mail_at_smtp": deliveries["mail_at_smtp"]},
        }
        return {"ratings": ratings, "complaints": complaints, "supervision": supervision, "monthly": monthly,
                "deliveries": deliveries, "service_books": books}

    def _completed_cases(self) -> list[dict]:
        return [c for t in self.towns
                for c in self._all(f"{self.urls['intake-' + t]}/cases?status=completed", "cases")]

    def _completed_count(self) -> int:
        return sum(self._intake_stats(t)["completed"] for t in self.towns)

    def _rate(self) -> dict:
        ev = self.urls["evaluation"]
        posted, levels, bad_ids = 0, Counter(), []
        for case in self._completed_cases():
            if self.rng.random() > 0.7:
                continue  # not everyone rates
            stages = ["completion"] if case["kind"] in ("instant", "consultation") else ["acceptance", "completion"]
            for stage in stages:
                level = self.rng.choices([1, 2, 3, 4, 5], weights=[50, 25, 12, 8, 5])[0]
                channel = self.rng.choice(["window_device", "qr_code", "sms_link", "online", "phone"])
                r = self.http("POST", f"{ev}/ratings", self.ops, {"case_number": case["case_number"], "level": level,
                                                                  "channel": channel, "stage": stage})
                posted += 1
                levels[level] += 1
                if r["bad"]:
                    bad_ids.append((r["id"], r["town"]))
        followed, upheld = 0, 0
        rects = {r["rating_id"]: r for r in self.http("GET", f"{ev}/rectifications", self.supervisor,
                                                      state="all", limit=500)["rectifications"]}
        for i, (rating_id, town) in enumerate(bad_ids):
            rect = rects[rating_id]
            if i == 0:  # 申诉复核: the town's supervisor appeals a malicious rating, the city's upholds it
                town_supervisor = tokens.issue(self.key, f"supervisor-{town[-3:]}", "supervisor", f"town:{town}")
                appeal = self.http("POST", f"{ev}/ratings/{rating_id}/appeal", town_supervisor,
                                   {"reason": "评价人与本件无关，系恶意差评"})
                self.http("POST", f"{ev}/appeals/{appeal['id']}/decision", self.supervisor,
                          {"outcome": "upheld", "reason": "核实为误评"})
                upheld += 1
                continue
            self.http("POST", f"{ev}/rectifications/{rect['id']}/callback", self.supervisor,
                      {"by": "回访专员", "notes": "已电话回访，了解不满意原因"})
            self.http("POST", f"{ev}/rectifications/{rect['id']}/rectify", self.supervisor,
                      {"measures": "窗口人员服务规范培训，一次性告知材料清单"})
            self.http("POST", f"{ev}/ratings/{rating_id}/follow-up", self.ops,
                      {"level": self.rng.choice([1, 2, 3]), "channel": "phone"})
            followed += 1
        return {"posted": posted, "by_level": {str(k): levels[k] for k in sorted(levels)}, "bad": len(bad_ids),
                "followed_up": followed, "appeals_upheld": upheld}

    def _complain(self) -> dict:
        ev, filed, resolved = self.urls["evaluation"], 0, 0
        for i, town in enumerate(self.towns):
            c = self.http("POST", f"{ev}/complaints", self.ops, {
                "subject": "窗口等候时间过长", "text": "上午排队一个多小时才办理", "town": town, "channel": "hotline",
                "complainant": {"name": "王先生", "phone": f"139{self.rng.randint(0, 99999999):08d}"}})
            filed += 1
            if i == len(self.towns) - 1:
                continue  # one stays open, within its deadline
            self.http("POST", f"{ev}/complaints/{c['number']}/acknowledge", self.supervisor)
            self.http("POST", f"{ev}/complaints/{c['number']}/assign", self.supervisor, {"to": f"clerk-{town[-3:]}"})
            self.http("POST", f"{ev}/complaints/{c['number']}/resolve", self.supervisor,
                      {"resolution": "增开综合窗口，高峰时段预约分流"})
            resolved += 1
        return {"filed": filed, "resolved": resolved, "open": filed - resolved}

    def _backlog_and_board(self) -> dict:
        """A few promised cases at the first window that nobody works today: those due tomorrow go yellow."""
        town = self.towns[0]
        items = sorted((i for i in self.catalog.items.values() if i["kind"] == "promised" and not i["in_person"]
                        and i["promised_days"] <= 5 and i["level"] == "town"), key=lambda i: i["promised_days"])
        numbers = []
        for item in items[:8]:
            body = {"item_code": item["code"], "applicant": {**fake_applicant(self.rng, self.towns), "town": town,
                                                            "channel": "sms"},
                    "materials": [m["code"] for m in item["materials"] if m["required"]]}
            numbers.append(self.http("POST", f"{self.urls['intake-' + town]}/cases", self.clerks[town],
                                     body)["case_number"])
        ev = self.urls["evaluation"]
        board, warnings = {}, []
        for _ in range(100):  # the watcher runs every second in the demo: wait for its records of the board
            board = self.http("GET", f"{ev}/board", self.supervisor)
            warnings = self.http("GET", f"{ev}/supervision/warnings", self.supervisor, open=1)["warnings"]
            seen = {c["case_number"] for c in board["cases"]}
            warned = {(w["case_number"], w["colour"]) for w in warnings}
            if set(numbers) <= seen and all((c["case_number"], c["colour"]) in warned
                                            for c in board["cases"] if c["colour"] != "green"):
                break
            eventlet.sleep(0.2)
        forecast = self.http("GET", f"{ev}/forecast", self.supervisor, days=5)
        return {"backlog": len(numbers), "board": board.get("counts", {}),
                "warnings": dict(Counter(w["colour"] for w in warnings)),
                "forecast": {"horizon_days": forecast["horizon_days"], "breaches": forecast["breaches"],
                             "offices": [{k: o[k] for k in ("department", "town", "open_cases", "rate", "breaches",
                                                            "needed_per_day")}
                                         for o in forecast["offices"] if o["open_cases"]]}}

    def _monthly(self) -> dict:
        month = datetime.now(SHANGHAI).strftime("%Y-%m")
        report = self.http("GET", f"{self.urls['evaluation']}/reports/monthly", self.supervisor, month=month)
        rows = next(d["rows"] for d in report["dimensions"] if d["dimension"] == "window")
        total = Counter()
        for row in rows:
            total.update({k: row[k] or 0 for k in ("received", "completed", "on_time", "ratings", "satisfied",
                                                    "bad", "rectified", "complaints")})
        def rate(part, whole):
            return round(100 * part / whole, 1) if whole else None

        return {"month": month, "windows": len(rows), **dict(total),
                "on_time_rate": rate(total["on_time"], total["completed"]),
                "satisfaction_rate": rate(total["satisfied"], total["ratings"]),
                "rectification_rate": rate(total["rectified"], total["bad"])}

    def _deliveries(self, outlets) -> dict:
        for _ in range(100):  # the last notices may still be on their way
            by_channel = self.http("GET", f"{self.urls['notify']}/stats", self.ops)["by_channel"]
            sms_sent = by_channel.get("sms", {}).get("sent", 0)
            email_sent = by_channel.get("email", {}).get("sent", 0)
            at_gateway = len({m.get("idempotency_key") for m in outlets.sms()})
            at_smtp = len(outlets.mail())
            if sms_sent == at_gateway and email_sent == at_smtp:
                break
            eventlet.sleep(0.2)
        return {"by_channel": by_channel, "sms_sent": sms_sent, "sms_at_gateway": at_gateway,
                "email_sent": email_sent, "mail_at_smtp": at_smtp}

    def _village_books(self, intake: list[dict], agent: dict) -> dict:
        """Every relayed station record became one case at a town; every finished one owes a reply, made."""
        station = agent["station"]["by_status"]
        relayed = sum(station.get(s, 0) for s in ("relayed", "accepted", "completed", "rejected"))
        return {"village_submissions": {
            "relayed_by_stations": relayed, "relayed_by_demo": self.village["relayed"],
            "cases_at_towns": sum(x["from_villages"]["cases"] for x in intake),
            "completed_at_towns": sum(x["from_villages"]["completed"] for x in intake),
            "completed_at_stations": station.get("completed", 0),
            "finished_at_towns": sum(x["from_villages"]["completed"] + x["from_villages"]["returned"]
                                     for x in intake),
            "replies_made": agent["replies_made"], "replies_owed": agent["replies_owed"]}}

    def _escalation_books(self, intake: list[dict], agent: dict) -> dict:
        """Every escalated case after 初审 went through a town agent and came back."""
        held = agent["escalations"]["by_status"]
        return {"escalations": {
            "to_town_agents": sum(x["escalated"]["to_town_agent"] for x in intake),
            "held_by_town_agents": sum(held.values()),
            "completed_at_towns": sum(x["escalated"]["completed"] for x in intake),
            "returned_by_town_agents": held.get("returned", 0),
            "still_in_flight": sum(held.get(s, 0) for s in IN_FLIGHT)}}

    def _city_wide_books(self, intake: list[dict]) -> dict:
        """全城通办: each case accepted here for a town with a window here is known there, in the same state;
        every approved case sent by mail has its EMS waybill."""
        accepted = [c for t in self.towns for c in self._all(f"{self.urls['intake-' + t]}/cases", "cases")]
        expected = {(c["case_number"], c["status"]) for c in accepted
                    if c["handling_town"] in self.towns and c["handling_town"] != c["accepting_town"]
                    and not (c["status"] in ("returned", "consulted") and c["version"] == 1)}
        seen = {(c["case_number"], c["status"]) for t in self.towns
                for c in self._all(f"{self.urls['intake-' + t]}/transfers", "transfers")}
        return {"city_wide_cases": {
            "expected_at_handling_centres": len(expected), "seen_by_handling_centres": len(seen & expected),
            "seen_in_another_state": len(seen - expected),
            "mailed": sum(x["city_wide"]["mailed"] for x in intake),
            "waybills": sum(x["city_wide"]["waybills"] for x in intake)}}

    def _all(self, url: str, key: str) -> list[dict]:
        out, offset = [], 0
        while True:
            page = self.http("GET", url, self.ops, limit=500, offset=offset)[key]
            out += page
            if len(page) < 500:
                return out
            offset += 500

    def _deadlines(self) -> dict:
        late = on_time = provisional = 0
        for t in self.towns:
            for c in self.http("GET", f"{self.urls['intake-' + t]}/cases", self.ops, status="completed",
                               limit=500)["cases"]:
                provisional += bool(c["deadline_provisional"])
                if c["deadline"] and c["completed_on"] and c["completed_on"] > c["deadline"]:
                    late += 1
                else:
                    on_time += 1
        return {"on_time": on_time, "late": late, "provisional": provisional}


def _balanced(b: dict) -> bool:
    v, e, c = b.get("village_submissions"), b.get("escalations"), b.get("city_wide_cases")
    return (len(set(b["opened"].values())) == 1 and len(set(b["completed"].values())) == 1
            and len(set(b["decisions"].values())) == 1 and len(set(b["work_items"].values())) == 1
            and b["open"] == {"cases": 0, "work_items": 0}
            and v is not None and v["relayed_by_stations"] == v["relayed_by_demo"] == v["cases_at_towns"]
            and v["completed_at_towns"] == v["completed_at_stations"]
            and v["replies_made"] == v["finished_at_towns"] and v["replies_owed"] == 0
            and e is not None and e["to_town_agents"] == e["held_by_town_agents"]
            and e["completed_at_towns"] == e["returned_by_town_agents"] and e["still_in_flight"] == 0
            and c is not None and c["expected_at_handling_centres"] == c["seen_by_handling_centres"]
            and c["seen_in_another_state"] == 0 and c["mailed"] == c["waybills"])


def _served_balanced(b: dict) -> bool:
    r, m, d = b["rectifications"], b["monthly_figures"], b["deliveries"]
    return (b["ratings"]["posted_by_demo"] == b["ratings"]["at_evaluation"] and r["opened"] == r["closed"]
            and m["completed_at_intakes"] == m["completed_in_report"] and m["ratings_in_report"] == m["ratings_posted"]
            and d["sms_sent"] == d["sms_at_gateway"] and d["email_sent"] == d["mail_at_smtp"])


def _print_sign_ins(portal: dict) -> None:
    print(f"\nportal: {portal['url']}   sign in as (password {portal['sign_ins'][0]['password']} for all):")
    for u in portal["sign_ins"]:
        print(f"  {u['staff_number']:<24} {u['name']:<8} {u['role']:<16} {u['scope']}")


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _print_summary(s: dict) -> None:
    b = s["books"]
    print()
    print("tongban demo — summary")
    print(f"  applicants          {s['cases']['submitted']} (at windows and village stations)   cases opened "
          f"{s['cases']['opened']} "
          f"(incl. review cases)")
    print("  the six kinds       " + ", ".join(f"{k} {v}" for k, v in s["by_kind"].items()))
    print("  final status        " + ", ".join(f"{k} {v}" for k, v in s["by_status"].items()))
    print("  actions             " + ", ".join(f"{k} {v}" for k, v in s["window_actions"].items()))
    print(f"  completed           intake {b['completed']['intake']}, "
          f"result notices {b['completed']['result_notices']}, "
          f"evaluation {b['completed']['evaluation']}   (approved {s['outcomes']['approved']}, "
          f"refused {s['outcomes']['refused']})")
    print(f"  decisions           approval {b['decisions']['approval']}, "
          f"recorded in ledgers {b['decisions']['intake']}")
    print(f"  work items          received {b['work_items']['received']}, decided, withdrawn or superseded "
          f"{b['work_items']['decided+withdrawn+superseded']}, still open {b['open']['work_items']}")
    ab, bo = s["ab_posts"], s["back_office"]
    print(f"  AB posts            {ab['absences']} absences; {ab['handovers']} handovers to a present holder, "
          f"{ab['head_fallbacks']} to the department head (both away)")
    print(f"  back office         more materials asked {bo['materials_requested']}, special procedures "
          f"{bo['special_procedures']}, work items superseded {bo['superseded_work_items']}")
    print("  by department       " + ", ".join(f"{d} {n}" for d, n in s["by_department"].items()))
    v, e, c = s["village_stations"], s["escalations"], s["city_wide"]
    print(f"  village stations    {v['services_logged']} services: relayed {v['relayed']} (cases at the towns "
          f"{v['cases_at_towns']}, completed {v['completed']}, replies made {v['replies_made']}), refused at the "
          f"station {v['refused_at_station']}, done there {v['done_at_station']}, help only {v['help_only']}; "
          f"{v['sent_again']} requests sent again (same key, one record)")
    print(f"  escalations         {e['to_town_agents']} to the town agents, relayed {e['relayed']}, "
          f"returned {e['returned']}")
    print(f"  全城通办            {c['accepted_for_other_towns']} cases decided by another town's office "
          f"({c['seen_by_handling_centres']} of them by a town with a window here, each known to that centre "
          f"in the same state); {c['mailed_by_ems']} results sent by EMS with a waybill")
    d = s["deadlines"]
    print(f"  deadlines           on time {d['on_time']}, late {d['late']}, provisional {d['provisional']}")
    print("  notices sent        " + ", ".join(f"{k} {v}" for k, v in sorted(s["notices"].items())))
    dl = s["deliveries"]
    print("  deliveries          " + "; ".join(f"{ch}: " + ", ".join(f"{k} {v}" for k, v in sorted(st.items()))
                                           for ch, st in sorted(dl["by_channel"].items()))
          + f"   (SMS at our gateway {dl['sms_at_gateway']}, e-mails at the SMTP server {dl['mail_at_smtp']})")
    r, cp = s["ratings"], s["complaints"]
    levels = ", ".join(f"level {k}: {v}" for k, v in r["by_level"].items())
    print(f"  好差评              {r['posted']} ratings ({levels}"
          + f"); {r['bad']} bad: {r['followed_up']} called back, rectified and rated again, "
          f"{r['appeals_upheld']} voided on appeal")
    print(f"  有诉即办            {cp['filed']} complaints: {cp['resolved']} resolved, {cp['open']} open within "
          "its deadline")
    sv = s["supervision"]
    fc = sv["forecast"]
    print(f"  supervision         a backlog of {sv['backlog']} nobody works today: board "
          + ", ".join(f"{k} {v}" for k, v in sorted(sv["board"].items())) + "; open warnings "
          + (", ".join(f"{k} {v}" for k, v in sorted(sv["warnings"].items())) or "none"))
    print(f"  forecast            {_count(fc['breaches'], 'case')} will miss the deadline in the next "
          f"{fc['horizon_days']} working days at the recent decision rates"
          + "".join(f"; {o['department']}@{o['town']}: {o['open_cases']} open at {o['rate']}/day, "
                    + (f"{_count(o['breaches'], 'breach', 'breaches')}, {o['needed_per_day']}/day would prevent "
                       "them" if o["breaches"] else "none late")
                    for o in fc["offices"]))
    m = s["monthly"]
    print(f"  monthly figures     {m['month']}: {m['windows']} windows, received {m['received']}, completed "
          f"{m['completed']} (on time {m['on_time_rate']}%), ratings {m['ratings']} (satisfied "
          f"{m['satisfaction_rate']}%), bad {m['bad']} (rectified {m['rectification_rate']}%), complaints "
          f"{m['complaints']}")
    verdict = "RECONCILED: every service's books agree" if s["reconciled"] else "NOT RECONCILED"
    print(f"  {verdict}   ({s['elapsed_seconds']} s)")
