"""The agent service's read models: the monthly village table (村(社区)便民服务办理情况统计表).

Counted from the stations' service log (`StationService`) and the replies made (`Reply`), per village
and item category, with a subtotal per village, a total per town (合计) and one for the city. A month
is one of Asia/Shanghai dates: the log keeps each service's, each completion's and each reply's
Shanghai date, so the bounds are plain dates. Nothing here writes.

What each column counts (of the services served in the month, unless said otherwise):
- services (服务总数): every service logged;
- submissions (代办受理): submissions accepted at the station (done there or relayed), refused ones apart;
- refused (不予代办): refused at the station (in person only, not for agents);
- help_only (帮办): the villager declined the authorisation, the agent helped only;
- done_at_station (站内办结): village-level items done at the station;
- relayed (报送): relayed to the town centre (whatever became of them since);
- completed (办结): relayed cases the town finished in the month (by completion date, whatever the
  outcome: a refusal is a finished case too; a submission the town could not open is not);
- replies (回复): replies to villagers made in the month.
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from services.agent.models import Reply, StationService
from shared import auth
from shared.catalog import CATEGORIES, Catalog
from shared.errors import NotPermitted, RuleViolation
from shared.tables import FORMATS, Month, XlsxBook, csv_bytes, parse_format, parse_month  # noqa: F401 (FORMATS: the route)

TITLE = "村(社区)便民服务办理情况统计表"
COLUMNS: dict[str, str] = {
    "services": "服务总数",
    "submissions": "代办受理",
    "refused": "不予代办",
    "help_only": "帮办",
    "done_at_station": "站内办结",
    "relayed": "报送",
    "completed": "办结",
    "replies": "回复",
}
UNCLASSIFIED = "未分类"  # a reply whose station service is not in the log (made before stations kept one)
SUBTOTAL, TOWN_TOTAL, CITY_TOTAL = "小计", "合计", "全市合计"
# a relayed submission keeps its station status as the town's case moves on
RELAYED_STATUSES = ("relayed", "accepted", "completed", "rejected")
REPORT_ROLES = ("clerk", "town_agent", "agent", "supervisor", "city_admin", "service")

_TOWN_RE = re.compile(r"\d{9}")


def report_scope(principal: auth.Principal, town: str | None) -> tuple[str | None, str | None]:
    """The (town, village) a caller's table covers: the city sees any town or all; town-scope staff their
    own town; a village agent its own village (the table is the village's own monthly return, counts
    only, no one's data). Any other scope has no table: 403 (it is a route, not a record to hide)."""
    scope = principal.scope
    if scope.kind == "city":
        return town, None
    if scope.kind == "town":
        if town is not None and town != scope.town:
            raise NotPermitted(f"scope {scope} may not see the village table of town {town}")
        return scope.town, None
    if scope.kind == "village" and principal.role == "agent":
        own = scope.village[:9]
        if town is not None and town != own:
            raise NotPermitted(f"scope {scope} may not see the village table of town {town}")
        return own, scope.village
    raise NotPermitted(f"no village table for role {principal.role} with scope {scope}")


# --- the table ---------------------------------------------------------------------------------

def _tally(mode: str, status: str) -> tuple[str, ...]:
    """The columns one service served in the month counts in."""
    cols = ["services"]
    if mode == "submission" and status != "refused":
        cols.append("submissions")
    if status == "refused":
        cols.append("refused")
    if mode == "help_only":
        cols.append("help_only")
    if status == "done":
        cols.append("done_at_station")
    if status in RELAYED_STATUSES:
        cols.append("relayed")
    return tuple(cols)


def _counts(counter: Counter | None = None) -> dict[str, int]:
    counter = counter or Counter()
    return {k: int(counter.get(k, 0)) for k in COLUMNS}


def _gather(session: Session, month: Month, town: str | None, village: str | None) -> dict:
    """(town, village, category) -> Counter of the columns."""
    S = StationService
    got: dict[tuple[str, str, str], Counter] = defaultdict(Counter)

    def narrowed(q, town_col, village_col):
        if village is not None:
            q = q.where(village_col == village)
        elif town is not None:
            q = q.where(town_col == town) if town_col is not None else q.where(village_col.like(f"{town}%"))
        return q

    served = narrowed(
        sa.select(S.town, S.village, S.item_category, S.mode, S.status, sa.func.count())
        .where(S.served_on >= month.first, S.served_on < month.end)
        .group_by(S.town, S.village, S.item_category, S.mode, S.status), S.town, S.village)
    for t, v, category, mode, status, n in session.execute(served).all():
        for col in _tally(mode, status):
            got[(t, v, category)][col] += n

    completed = narrowed(
        sa.select(S.town, S.village, S.item_category, sa.func.count())
        .where(S.status == "completed", S.completed_on >= month.first, S.completed_on < month.end)
        .group_by(S.town, S.village, S.item_category), S.town, S.village)
    for t, v, category, n in session.execute(completed).all():
        got[(t, v, category)]["completed"] += n

    # a reply names the station service it answers; one made before that, only its case
    by_id, by_case = aliased(StationService), aliased(StationService)
    category = sa.func.coalesce(by_id.item_category, by_case.item_category)
    replies = narrowed(
        sa.select(Reply.village, category, sa.func.count())
        .outerjoin(by_id, by_id.id == Reply.service_id)
        .outerjoin(by_case, sa.and_(Reply.service_id.is_(None), by_case.case_number == Reply.case_number))
        .where(Reply.status == "replied", Reply.village.is_not(None),
               Reply.replied_on >= month.first, Reply.replied_on < month.end)
        .group_by(Reply.village, category), None, Reply.village)
    for v, cat, n in session.execute(replies).all():
        got[(v[:9], v, cat or UNCLASSIFIED)]["replies"] += n
    return got


def village_report(session: Session, catalog: Catalog, month: Month, town: str | None = None,
                   village: str | None = None) -> dict:
    """The table for a month: every village of the catalogue's towns (or of one town, or one village),
    each item category, even with nothing that month; a village or town the catalogue no longer has
    still shows when the month has services of it, so nothing counted goes missing."""
    if town is not None and not _TOWN_RE.fullmatch(town):
        raise RuleViolation(f"town must be a 9-digit town code, not {town!r}", {"town": ["a 9-digit code"]})
    got = _gather(session, month, town, village)
    towns = catalog.towns
    if town is not None and town not in towns and not any(t == town for t, _, _ in got):
        raise RuleViolation(f"town {town} is not in the catalogue (version {catalog.version})",
                            {"town": ["a town of the catalogue"]})
    categories = list(CATEGORIES) + sorted({c for _, _, c in got} - set(CATEGORIES))
    town_codes = [town] if town is not None else list(towns) + sorted({t for t, _, _ in got} - set(towns))

    out_towns, city = [], Counter()
    for t in town_codes:
        listed = [(v["code"], v["name"]) for v in towns.get(t, {}).get("villages", [])]
        known = {code for code, _ in listed}
        listed += [(v, v) for v in sorted({v for tt, v, _ in got if tt == t} - known)]
        if village is not None:
            listed = [(code, name) for code, name in listed if code == village] or [(village, village)]
        town_total, town_by_category = Counter(), defaultdict(Counter)
        villages = []
        for code, name in listed:
            subtotal, rows = Counter(), []
            for c in categories:
                counter = got.get((t, code, c), Counter())
                subtotal.update(counter)
                town_by_category[c].update(counter)
                rows.append({"category": c, **_counts(counter)})
            town_total.update(subtotal)
            villages.append({"village": code, "name": name, "categories": rows, "subtotal": _counts(subtotal)})
        city.update(town_total)
        out_towns.append({"town": t, "name": towns.get(t, {}).get("name", t), "villages": villages,
                          "by_category": [{"category": c, **_counts(town_by_category[c])} for c in categories],
                          "total": _counts(town_total)})
    return {"title": TITLE, "month": str(month), "town": town, "village": village,
            "catalog_version": catalog.version, "columns": [{"key": k, "heading": h} for k, h in COLUMNS.items()],
            "categories": categories, "towns": out_towns,
            "total": _counts(city) if town is None else None}


def village_table(session: Session, catalog: Catalog, principal: auth.Principal, query: dict) -> tuple[dict, str]:
    """The table an HTTP caller asked for (`month`, `town`, `format`) and may see, and its format."""
    month = parse_month(query.get("month"))
    fmt = parse_format(query.get("format"))
    town, village = report_scope(principal, query.get("town") or None)
    return village_report(session, catalog, month, town, village), fmt


# --- renderings --------------------------------------------------------------------------------

def filename(report: dict, fmt: str) -> str:
    """village-<month>[-<town>].<ext>"""
    return f"village-{report['month']}{'-' + report['town'] if report['town'] else ''}.{fmt}"


CSV_HEADINGS = ("月份", "镇(街道)代码", "镇(街道)", "村(社区)代码", "村(社区)", "事项类别", *COLUMNS.values())


def table_rows(report: dict) -> list[list]:
    """The table as flat rows (after CSV_HEADINGS): per village its categories and a 小计, per town a 合计,
    and the city's 全市合计 when the table covers the city."""
    month, rows = report["month"], []

    def values(counts):
        return [counts[k] for k in COLUMNS]

    for t in report["towns"]:
        for v in t["villages"]:
            for row in v["categories"]:
                rows.append([month, t["town"], t["name"], v["village"], v["name"], row["category"], *values(row)])
            rows.append([month, t["town"], t["name"], v["village"], v["name"], SUBTOTAL, *values(v["subtotal"])])
        rows.append([month, t["town"], t["name"], "", TOWN_TOTAL, "", *values(t["total"])])
    if report["total"] is not None:
        rows.append([month, "", CITY_TOTAL, "", "", "", *values(report["total"])])
    return rows


def render_csv(report: dict) -> bytes:
    """UTF-8 with a byte-order mark: Excel opens the Chinese headings right only with it."""
    return csv_bytes(CSV_HEADINGS, table_rows(report))


def render_xlsx(report: dict) -> bytes:
    """One sheet per town (named after it): the title row with the month, the headings (bold, frozen),
    per village its categories and a 小计, and the 合计 row; for the city, a last sheet 全市合计 with
    each town's total."""
    year, month = report["month"].split("-")
    book = XlsxBook(f"{TITLE}（{int(year)}年{int(month)}月）")
    counts_headings = list(COLUMNS.values())
    for t in report["towns"]:
        ws = book.sheet(t["name"],
                        f"镇(街道)：{t['name']}（{t['town']}）    统计月份：{report['month']}    "
                        f"事项目录版本：{report['catalog_version']}",
                        ["村(社区)", "村(社区)代码", "事项类别", *counts_headings], [16, 15, 11] + [10] * len(COLUMNS))
        for v in t["villages"]:
            for row in v["categories"]:
                book.add(ws, [v["name"], v["village"], row["category"], *(row[k] for k in COLUMNS)])
            book.add(ws, [v["name"], v["village"], SUBTOTAL, *(v["subtotal"][k] for k in COLUMNS)], "subtotal")
        book.add(ws, [TOWN_TOTAL, "", "", *(t["total"][k] for k in COLUMNS)], "total")
    if report["total"] is not None:
        ws = book.sheet(CITY_TOTAL, f"统计月份：{report['month']}    事项目录版本：{report['catalog_version']}",
                        ["镇(街道)", "镇(街道)代码", *counts_headings], [16, 13] + [10] * len(COLUMNS))
        for t in report["towns"]:
            book.add(ws, [t["name"], t["town"], *(t["total"][k] for k in COLUMNS)])
        book.add(ws, [CITY_TOTAL, "", *(report["total"][k] for k in COLUMNS)], "total")
    return book.save()


def render(report: dict, fmt: str) -> bytes:
    """The CSV or XLSX file of a table (JSON goes out as the response schema dumps it)."""
    if fmt == "csv":
        return render_csv(report)
    if fmt == "xlsx":
        return render_xlsx(report)
    raise ValueError(f"no file rendering for {fmt}")
