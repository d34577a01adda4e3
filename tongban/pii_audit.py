"""The personal-data audit (issue 14): no unmasked resident ID, unified social credit code or mainland mobile
number where staff, operators or an attacker's log reader may see it.

It scans a finished (or still running) deployment:

* log files: every line (JSON or not) of the files given, and every `*.log` under the data folder;
* metrics: every label value of every instance's `/metrics`;
* HTTP lists: every GET endpoint without path parameters that an instance's `/openapi.json` lists (the
  portal's too), read with staff tokens of each role and scope the deployment has;
* the portal's pages as staff members see them, signed in (`portal_logins`), following the links;
* notices and case views shown to staff: the GET endpoints with a `{case_number}` parameter (the case view
  with its notices, notify's deliveries, the timeline, escalations) for a sample of the cases the lists
  named; the notice PDF is left out, being the applicant's own document;
* outbox and inbox rows past their retention (shared.store's purge should have deleted them).

What counts as unmasked: an 18-character resident ID with a right check character, a credit code with a
right check character, an 11-digit mobile number standing alone (not part of a longer digit run or a
decimal fraction). A finding says where, what kind, and an excerpt masked with shared.pii.mask_text: the
audit never prints the value it found.

Python: `audit_pii(...)` (all of it) or the parts (`audit_logs`, `audit_metrics`, `audit_http`,
`audit_tables`, `scan_text`); command line: `tongban audit-pii` against a data folder (a kept demo's or
`tongban up`'s), exit 1 when something is found.
"""
from __future__ import annotations

import json
import re
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared.pii import (
    is_valid_credit_code,
    is_valid_resident_id,
    mask_credit_code,
    mask_phone,
    mask_resident_id,
    mask_text,
)

# candidates, then checked: an ID or credit code only with its check character right, so that a run of
# digits that merely looks like one (a counter, a hash) is no finding
_ID_RE = re.compile(r"(?<![0-9A-Za-z])[0-9]{17}[0-9Xx](?![0-9A-Za-z])")
_CREDIT_RE = re.compile(r"(?<![0-9A-Za-z])[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}(?![0-9A-Za-z])")
# a mobile number, +86 or 86 in front or not; not the digits of a decimal fraction (0.13912345678 s)
_MOBILE_RE = re.compile(r"(?<![0-9.])(?:\+?86)?(1[3-9][0-9]{9})(?![0-9])")
_CASE_NUMBER_RE = re.compile(r"^[0-9]{9}-[0-9]{8}-[0-9]{5}$")
EXCERPT = 40  # characters either side of a finding in its excerpt

KINDS = ("resident_id", "credit_code", "mobile")


@dataclass(frozen=True)
class Finding:
    """One unmasked number: `where` (a log file and line, an instance's metric, an HTTP GET and the token's
    role, a table row), `place` (log, metric, http, notice, outbox, inbox), `kind` (resident_id,
    credit_code, mobile) and `excerpt`, the text around it masked."""

    place: str
    where: str
    kind: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.place:7} {self.kind:12} {self.where}: …{self.excerpt}…"


def scan_text(text: str) -> list[tuple[str, int, int]]:
    """The unmasked numbers in `text`: (kind, start, end) of each."""
    found = [("resident_id", m.start(), m.end()) for m in _ID_RE.finditer(text) if is_valid_resident_id(m.group())]
    found += [("credit_code", m.start(), m.end()) for m in _CREDIT_RE.finditer(text)
              if is_valid_credit_code(m.group())]
    taken = [(s, e) for _k, s, e in found]
    found += [("mobile", m.start(1), m.end(1)) for m in _MOBILE_RE.finditer(text)
              if not any(s <= m.start(1) < e for s, e in taken)]
    return sorted(found, key=lambda f: f[1])


_MASKS = {"resident_id": mask_resident_id, "credit_code": mask_credit_code, "mobile": mask_phone}


def findings_in(text: str, place: str, where: str) -> list[Finding]:
    """A finding for each unmasked number in `text`, its excerpt cut from the masked text (masking keeps
    lengths); each found span is masked by its kind's rule too, so no excerpt shows one mask_text missed."""
    spans = scan_text(text)
    if not spans:
        return []
    masked = mask_text(text)
    for kind, s, e in spans:
        masked = masked[:s] + _MASKS[kind](text[s:e]) + masked[e:]
    return [Finding(place, where, kind, masked[max(0, s - EXCERPT):e + EXCERPT].replace("\n", " ").strip())
            for kind, s, e in spans]


# --- logs --------------------------------------------------------------------------------------------------

def log_files(paths: Iterable[str | Path]) -> list[Path]:
    """The files to read: each file given, and every `*.log` under each folder given."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*.log") if f.is_file())
        elif p.is_file():
            out.append(p)
    return out


def audit_logs(paths: Iterable[str | Path], read: Counter | None = None) -> list[Finding]:
    """Every line of the log files (and of the `*.log` files under the folders) in `paths`; `read` counts
    the lines read ("log lines")."""
    findings, read = [], read if read is not None else Counter()
    for path in log_files(paths):
        with open(path, encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                read["log lines"] += 1
                findings += findings_in(line, "log", f"{path}:{n}")
    return findings


# --- metrics -----------------------------------------------------------------------------------------------

def audit_metrics(urls: dict[str, str], http=None, timeout: float = 10.0,
                  read: Counter | None = None) -> list[Finding]:
    """Every label value (and label name) of every instance's /metrics; `read` counts "metric samples"."""
    from prometheus_client.parser import text_string_to_metric_families

    http = http or _session()
    findings, read = [], read if read is not None else Counter()
    for instance, url in sorted(urls.items()):
        r = http.get(f"{url}/metrics", timeout=timeout)
        r.raise_for_status()
        for family in text_string_to_metric_families(r.text):
            for sample in family.samples:
                read["metric samples"] += 1
                for label, value in sample.labels.items():
                    text = f"{label}={value}"
                    findings += findings_in(text, "metric", f"{instance} {sample.name}{{{label}}}")
    return findings


# --- HTTP lists, case views and notices ---------------------------------------------------------------------

def staff_tokens(signing_key, urls: dict[str, str]) -> dict[str, str]:
    """{"role@scope": token} for the staff of every role, city-wide and in each town and department the
    instance names show (intake-<town>, approval-<department>)."""
    from shared import tokens

    towns = sorted(n.split("-", 1)[1] for n in urls if n.startswith("intake-"))
    departments = sorted(n.split("-", 1)[1] for n in urls if n.startswith("approval-"))
    grants = [("supervisor", "city"), ("city_admin", "city"), ("service", "city")]
    grants += [(role, f"town:{t}") for t in towns for role in ("clerk", "supervisor", "town_agent")]
    grants += [(role, f"department:{d}") for d in departments for role in ("approver", "department_head")]
    grants += [("approver", f"department:{d}@{t}") for d in departments for t in towns]
    return {f"{role}@{scope}": tokens.issue(signing_key, f"pii-audit-{role}", role, scope) for role, scope in grants}


def _tokens_for(instance: str, tokens: dict[str, str]) -> dict[str, str]:
    """The tokens worth trying at an instance: the city's, and those scoped to its town or department (the
    singletons: every town's)."""
    kind, _, scope = instance.partition("-")

    def fits(who: str) -> bool:
        where = who.split("@", 1)[1]
        if where == "city":
            return True
        if kind == "intake":
            return where == f"town:{scope}"
        if kind == "approval":
            return where.startswith(f"department:{scope}")
        return where.startswith("town:")

    return {who: token for who, token in tokens.items() if fits(who)}


def _get_paths(http, url: str, timeout: float) -> list[str]:
    r = http.get(f"{url}/openapi.json", timeout=timeout)
    if r.status_code != 200:
        return []
    return sorted(p for p, ops in r.json().get("paths", {}).items() if "get" in ops)


def _case_numbers(value, into: set) -> None:
    if isinstance(value, dict):
        for v in value.values():
            _case_numbers(v, into)
    elif isinstance(value, list):
        for v in value:
            _case_numbers(v, into)
    elif isinstance(value, str) and _CASE_NUMBER_RE.match(value):
        into.add(value)


def audit_http(urls: dict[str, str], signing_key, http=None, case_sample: int = 20,
               timeout: float = 30.0, read: Counter | None = None) -> list[Finding]:
    """The GET lists of every instance read with every staff token (`staff_tokens`), then the case views,
    notices and deliveries of up to `case_sample` of the cases they named. A 4xx (a role that may not read
    it) is no finding; only what was answered is read. `read` counts the answers read ("http lists",
    "case views") and "cases" sampled."""
    http = http or _session()
    read = read if read is not None else Counter()
    tokens = staff_tokens(signing_key, urls)
    findings, cases = [], set()
    per_case: list[tuple[str, str]] = []
    for instance, url in sorted(urls.items()):
        for path in _get_paths(http, url, timeout):
            if path in ("/metrics", "/health", "/openapi.json") or path.endswith(".pdf"):
                continue
            params = re.findall(r"{(\w+)}", path)
            if params == ["case_number"]:
                per_case.append((instance, path))
            if params:
                continue
            for who, token in _tokens_for(instance, tokens).items():
                findings += _read(http, instance, url, path, who, token, timeout, cases, read, "http lists")
    place = lambda path: "notice" if "notice" in path or "deliver" in path else "http"  # noqa: E731
    for number in sorted(cases)[:case_sample]:
        read["cases"] += 1
        for instance, path in per_case:
            # the city's readers, and the clerk of the town whose centre accepted the case
            mine = {w: t for w, t in tokens.items() if w.endswith("@city") or w == f"clerk@town:{number[:9]}"}
            for who, token in mine.items():
                findings += [Finding(place(path), f.where, f.kind, f.excerpt) for f in
                             _read(http, instance, urls[instance], path.replace("{case_number}", number), who,
                                   token, timeout, cases, read, "case views")]
    return findings


def _read(http, instance, url, path, who, token, timeout, cases: set, read: Counter, what: str) -> list[Finding]:
    r = http.get(f"{url}{path}", headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                 timeout=timeout)
    if r.status_code != 200:
        return []
    read[what] += 1
    if r.headers.get("Content-Type", "").startswith("application/json"):
        try:
            _case_numbers(r.json(), cases)
        except ValueError:
            pass
    return findings_in(r.text, "http", f"{instance} GET {path} as {who}")


# --- the portal's pages, as the staff see them --------------------------------------------------------------

_HREF_RE = re.compile(r"""href=["'](/[^"'#]*)["']""")
_NOT_PAGES = ("/static/", "/logout", ".pdf", ".xlsx")


def audit_portal(portal_url: str, logins: dict[str, str], max_pages: int = 25, timeout: float = 30.0,
                 read: Counter | None = None) -> list[Finding]:
    """The portal's pages as each staff member sees them: sign in (`logins`: {staff number: password}) and
    read the page signed in to and the portal pages it links to, breadth first, up to `max_pages` per person
    (no PDF or spreadsheet; links with query strings are followed like any other). `read` counts "portal
    pages" and "portal sign-ins"."""
    import requests

    read = read if read is not None else Counter()
    findings = []
    for staff, password in sorted(logins.items()):
        browser = requests.Session()
        r = browser.post(f"{portal_url}/login", data={"staff_number": staff, "password": password}, timeout=timeout)
        if r.status_code != 200 or r.url.rstrip("/").endswith("/login"):
            raise RuntimeError(f"portal sign-in as {staff} failed: HTTP {r.status_code}")
        read["portal sign-ins"] += 1
        start = r.url[len(portal_url):] or "/"
        seen, todo, pages = {start}, [start], 0
        while todo and pages < max_pages:
            path = todo.pop(0)
            r = browser.get(f"{portal_url}{path}", timeout=timeout)
            if r.status_code != 200:
                continue
            pages += 1
            read["portal pages"] += 1
            findings += [Finding("portal", f"portal GET {path} as {staff}", f.kind, f.excerpt)
                         for f in findings_in(r.text, "portal", "")]
            for link in _HREF_RE.findall(r.text):
                link = link.replace("&amp;", "&")
                if link not in seen and not any(n in link for n in _NOT_PAGES):
                    seen.add(link)
                    todo.append(link)
        browser.close()
    return findings


# --- outbox and inbox past retention ---------------------------------------------------------------------------

def audit_tables(database_urls: dict[str, str], retention_days: float = 7.0, now: datetime | None = None,
                 read: Counter | None = None, **settings) -> list[Finding]:
    """Outbox rows published before the retention and inbox rows handled before the inbox's retention
    (shared.config.Settings: `outbox_retention_seconds`, `inbox_retention_seconds`; `settings` may give the
    deployment's retry_delays, delivery_limit, relay_lease) that hold an unmasked number; `read` counts the
    "databases" and the "old rows" read."""
    import sqlalchemy as sa

    from shared.config import Settings
    from shared.db import inbox_table, make_engine, outbox_table

    s = Settings(service="audit", instance="audit", outbox_retention_days=retention_days, **settings)
    now = now or datetime.now(UTC)
    outbox_before = now - timedelta(seconds=s.outbox_retention_seconds)
    inbox_before = now - timedelta(seconds=s.inbox_retention_seconds)
    findings, read = [], read if read is not None else Counter()
    for instance, db_url in sorted(database_urls.items()):
        read["databases"] += 1
        engine = make_engine(db_url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(sa.select(outbox_table).where(outbox_table.c.published_at.is_not(None))
                                    .where(outbox_table.c.published_at < outbox_before))
                for row in rows.mappings():
                    read["old rows"] += 1
                    findings += findings_in(_row_text(row), "outbox", f"{instance} outbox id={row['id']}")
                rows = conn.execute(sa.select(inbox_table).where(inbox_table.c.handled_at < inbox_before))
                for row in rows.mappings():
                    read["old rows"] += 1
                    findings += findings_in(_row_text(row), "inbox",
                                            f"{instance} inbox message_id={row['message_id']}")
        finally:
            engine.dispose()
    return findings


def _row_text(row) -> str:
    return " ".join(str(v) for v in row.values() if isinstance(v, str))


# --- all of it ----------------------------------------------------------------------------------------------

def audit_pii(data_dir: str | Path | None = None, *, urls: dict[str, str] | None = None,
              log_paths: Iterable[str | Path] = (), database_urls: dict[str, str] | None = None,
              signing_key=None, retention_days: float = 7.0, now: datetime | None = None,
              case_sample: int = 20, timeout: float = 30.0, read: Counter | None = None,
              portal_logins: dict[str, str] | None = None, **retention_settings) -> list[Finding]:
    """Scan a deployment for unmasked ID, credit-code and mobile numbers; the findings (empty: none).

    data_dir       the deployment's data folder (a kept demo's, `tongban up`'s): its instances.json names the
                   instances (unless `urls` does), its `*.log` files are read, its SQLite files
                   `<instance>.db` are the databases (unless `database_urls` names them), and in development
                   mode its keys sign the staff tokens (unless `signing_key` is given).
    urls           {instance: base URL} of the running instances (the portal's included); None and no
                   instances.json: no metrics or HTTP are read.
    log_paths      more log files, or folders whose `*.log` files are read (e.g. a process cluster's run dir,
                   a file the services' stderr went to).
    database_urls  {instance: SQLAlchemy URL} (PostgreSQL runs); default: the SQLite files in data_dir.
    signing_key    shared.tokens.SigningKey the services trust (the portal's), for the staff tokens.
    retention_days the deployment's TONGBAN_RETENTION_DAYS; with `now`, which outbox and inbox rows are past it
                   (`retention_settings`: retry_delays, delivery_limit, relay_lease as the deployment runs).
    case_sample    how many of the cases the lists named have their case views and notices read.
    portal_logins  {staff number: password} of staff to sign in at the portal as (`urls["portal"]`): the pages
                   each sees are read (see audit_portal).
    read           a Counter to fill with what was read (log lines, metric samples, http lists, case views,
                   cases, databases, old rows): an audit that read nothing proves nothing.
    """
    findings, read = [], read if read is not None else Counter()
    paths = list(log_paths) + ([data_dir] if data_dir is not None else [])
    findings += audit_logs(paths, read)
    if urls is None and data_dir is not None and (Path(data_dir) / "instances.json").exists():
        urls = json.loads((Path(data_dir) / "instances.json").read_text(encoding="utf-8"))
    if urls:
        findings += audit_metrics(urls, timeout=timeout, read=read)
        if signing_key is None and data_dir is not None:
            from shared.config import Settings

            signing_key = Settings(service="cli", instance="cli", data_dir=Path(data_dir)).signing_key()
        if signing_key is not None:
            findings += audit_http(urls, signing_key, case_sample=case_sample, timeout=timeout, read=read)
        if portal_logins and "portal" in urls:
            findings += audit_portal(urls["portal"], portal_logins, timeout=timeout, read=read)
    if database_urls is None and data_dir is not None:
        database_urls = {f.stem: f"sqlite:///{f.resolve()}" for f in sorted(Path(data_dir).glob("*.db"))}
    if database_urls:
        findings += audit_tables(database_urls, retention_days, now, read, **retention_settings)
    return findings


def _session():
    import requests

    return requests.Session()


# --- the command -----------------------------------------------------------------------------------------------

def cmd_audit_pii(args) -> int:
    from shared.config import Settings

    settings = Settings.from_env("tongban", instance="tongban",
                                 **({"data_dir": Path(args.data_dir)} if args.data_dir else {}))
    read = Counter()
    findings = audit_pii(settings.data_dir, log_paths=args.log or (), retention_days=settings.outbox_retention_days,
                         case_sample=args.cases, read=read,
                         portal_logins=dict(x.split(":", 1) for x in args.login or ()))
    if args.json:
        print(json.dumps([asdict(f) for f in findings], ensure_ascii=False))
    else:
        for f in findings:
            print(f)
        by_kind = {k: sum(1 for f in findings if f.kind == k) for k in KINDS}
        print(f"read {', '.join(f'{n} {what}' for what, n in read.items()) or 'nothing'}; {len(findings)} unmasked "
              f"number(s) found" + (f": {by_kind}" if findings else ""), file=sys.stderr)
    return 1 if findings else 0


def register(sub) -> None:
    audit = sub.add_parser("audit-pii", help="scan a deployment's logs, metrics, HTTP lists, notices and old "
                                             "outbox/inbox rows for unmasked ID, credit-code and mobile numbers; "
                                             "exit 1 when one is found")
    audit.add_argument("--data-dir", help="the deployment's data folder (default $TONGBAN_DATA_DIR or ./var): "
                                          "its instances.json, *.log files and SQLite databases")
    audit.add_argument("--log", action="append", help="a log file or a folder of *.log files (repeatable)")
    audit.add_argument("--login", action="append", metavar="STAFF:PASSWORD",
                       help="sign in at the portal as this staff member and read the pages they see (repeatable)")
    audit.add_argument("--cases", type=int, default=20, help="how many cases' views and notices to read")
    audit.add_argument("--json", action="store_true", help="print the findings as JSON")
    audit.set_defaults(func=cmd_audit_pii)
