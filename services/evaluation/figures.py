"""Monthly figures (月度统计) kept up to date as events arrive, the monthly report, and the operators' metrics.

Every case event moves the counters of its month in the transaction that records it (`Figures.on_event`, a
hook of Recorder.record); ratings, voids, rectifications and complaints move them through `on_rating`,
`on_rating_voided`, `on_rectification_closed` and `on_complaint`, called by the ratings and complaints code
in its own transaction. A report reads one month's counter rows, however many years are stored.

What counts when (months of Asia/Shanghai dates):
- received (受理总数 and the kind): the month the case reached the window (case.accepted, or the consultation's
  case.updated), under the kind it was received as (figures_rules.reception_kind);
- completed, on time, working days to finish: the month of completion (case.completed's completed_on);
- a rating: the month it was given; its void takes it back from that month; a rectification closed counts
  for the bad rating's month (the rate is of that month's bad ratings);
- a complaint: the month it was received.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from nameko.extensions import DependencyProvider
from prometheus_client import Counter as PromCounter
from prometheus_client import Gauge
from sqlalchemy.orm import Session

from services.evaluation import figures_rules as rules
from services.evaluation.models import CaseView
from services.evaluation.models_figures import (
    Counters,
    FigureCase,
    FigureCases,
    FigureComplaint,
    FigureMarks,
    FigureRating,
    open_case_counts,
)
from shared.auth import Principal
from shared.contracts import Message
from shared.logging import get_logger
from shared.platform import Platform
from shared.store import Tx
from shared.tables import FORMATS, XlsxBook, csv_bytes, parse_format, parse_month
from shared.workdays import WorkingCalendar

log = get_logger(__name__)


# --- the facts the ratings and complaints code hands over ---------------------------------------------------

@dataclass(frozen=True)
class RatingFacts:
    """One rating (好差评) as the figures need it. Where `window`, `staff`, `town` or `department` are None,
    the rated case's attribution is used; `department_town`: the office's town (or "city"), by default the
    case's office of that department, else the rating's town."""

    rating_id: str
    level: int  # 1 非常满意 … 5 非常不满意
    rated_at: datetime | date
    case_number: str | None = None
    window: str | None = None
    staff: str | None = None
    town: str | None = None
    department: str | None = None
    department_town: str | None = None
    village: str | None = None
    follow_up: bool = False  # the rater's one follow-up after a rectification


@dataclass(frozen=True)
class ComplaintFacts:
    """One complaint (有诉即办), tied to a case and staff where there is one."""

    complaint_id: str
    received_at: datetime | date
    case_number: str | None = None
    window: str | None = None
    staff: str | None = None
    town: str | None = None
    department: str | None = None
    department_town: str | None = None
    village: str | None = None


class FiguresMetrics(DependencyProvider):
    """Operators' metrics on the instance's /metrics: open cases by status, town and department (a gauge
    refreshed from the case read model by a timer), notices by channel and outcome as evaluation hears them,
    ratings by level. The platform makes its registry in setup(); these are added at start."""

    def __init__(self, figures: Figures):
        self.figures = figures
        self.open_cases: Gauge | None = None

    def start(self):
        self.platform = next(d for d in self.container.dependencies if isinstance(d, Platform))
        r = self.platform.metrics.registry
        self.open_cases = Gauge("tongban_open_cases", "Open cases by status, handling town and lead department",
                                ["status", "town", "department"], registry=r)
        self.figures.notices = PromCounter(
            "tongban_notices_heard_total", "Notices evaluation heard were sent (notice.sent), by channel and outcome",
            ["channel", "outcome"], registry=r)
        # ratings by level and channel: tongban_ratings_total, counted where they are recorded (ratings.py)
        self.figures.ratings_voided = PromCounter(
            "tongban_ratings_voided_total", "Ratings voided on appeal (申诉复核), by level", ["level"], registry=r)

    def refresh(self) -> None:
        try:
            with self.platform.store.read() as session:
                counts = open_case_counts(session)
        except Exception as exc:  # the database away: keep the last figures
            log.warning("metrics.open_cases_refresh_failed", error=str(exc) or exc.__class__.__name__)
            return
        self.open_cases.clear()  # a status, town or department with no open case any more shows nothing
        for status, town, department, n in counts:
            self.open_cases.labels(status=status, town=town, department=department).set(n)

    def get_dependency(self, worker_ctx):
        return self


# --- the counters --------------------------------------------------------------------------------------------

@dataclass
class Figures:
    """The monthly counters; `calendar` counts working days to finish (updated in place as years arrive)."""

    calendar: WorkingCalendar = field(default_factory=WorkingCalendar)
    notices: object = None  # prometheus counters, bound by FiguresMetrics
    ratings: object = None
    ratings_voided: object = None

    # -- case events (the hook in Recorder.record) ------------------------------------------------------

    def on_event(self, tx: Tx, message: Message, view: CaseView | None = None) -> None:
        """Move the month's counters for one recorded event (inside the transaction that records it)."""
        handler = {"case.accepted": self._received, "case.updated": self._updated, "case.routed": self._routed,
                   "case.escalated": self._routed, "case.completed": self._completed}.get(message.type)
        if handler is not None:
            handler(tx, message, view)
        elif message.type == "notice.sent" and self.notices is not None:
            p = message.payload
            channel, outcome = str(p.get("channel") or "unknown"), str(p.get("outcome") or "sent")
            tx.after_commit(lambda: self.notices.labels(channel=channel, outcome=outcome).inc())

    def _received(self, tx: Tx, message: Message, view: CaseView | None) -> None:
        p = message.payload
        accepting, handling = p["accepting_town"], p.get("handling_town")
        offices = [rules.office(p["department"], handling)] if p.get("department") else []
        self._receive(tx, message, rules.Attribution(
            window=accepting, town=rules.responsible_town(accepting, handling), staff=p.get("first_responder"),
            village=p.get("village"), offices=tuple(offices)), rules.reception_kind(p.get("kind"), p.get("status")),
            p.get("status"))

    def _updated(self, tx: Tx, message: Message, view: CaseView | None) -> None:
        p = message.payload
        cases = FigureCases(tx.session)
        case = cases.get(message.case_number)
        if case is None:
            if p.get("status") == "consulted":  # 咨询: the window's record, no case.accepted before it
                town = p["accepting_town"]
                self._receive(tx, message, rules.Attribution(window=town, town=town), "consultation", "consulted")
            return
        if case.clock_started_on is None and case.received_month and rules.clock_runs(p.get("status")):
            case.clock_started_on = rules.day_of(message.occurred_at)  # 补办件: the materials are complete

    def _receive(self, tx: Tx, message: Message, attribution: rules.Attribution, kind: str, status) -> None:
        cases = FigureCases(tx.session)
        case = cases.get(message.case_number)
        if case is not None and case.received_month is not None:
            return  # counted already (a redelivery under another message id, an old version)
        if case is None:
            case = FigureCase(case_number=message.case_number, window=attribution.window, town=attribution.town,
                              offices=[])
            cases.add(case)
        known_offices = list(case.offices or [])
        case.window, case.town = attribution.window, attribution.town
        case.staff = attribution.staff or case.staff
        case.village = attribution.village or case.village
        case.offices = known_offices + [o for o in attribution.offices if o not in known_offices]
        case.kind, case.received_month = kind, rules.month_key(message.occurred_at)
        if rules.clock_runs(status):
            case.clock_started_on = rules.day_of(message.occurred_at)
        Counters(tx.session).add(rules.deltas(_attribution(case).rows(), _reception(case), case.received_month))

    def _routed(self, tx: Tx, message: Message, view: CaseView | None) -> None:
        """The departments of a joint case are known once it is routed: the new offices count it too."""
        p = message.payload
        handling = p.get("handling_town")
        offices = [rules.office(d, handling) for d in (p.get("departments") or [])]
        cases = FigureCases(tx.session)
        case = cases.get(message.case_number)
        if case is None:  # routed before we heard of the acceptance: the offices wait for it
            town = p["accepting_town"]
            cases.add(FigureCase(case_number=message.case_number, window=town,
                                 town=rules.responsible_town(town, handling), offices=offices))
            return
        new = [o for o in offices if o not in (case.offices or [])]
        if not new:
            return
        case.offices = list(case.offices or []) + new
        counters, attribution = Counters(tx.session), _attribution(case)
        if case.received_month:
            counters.add(rules.deltas(attribution.rows(new, everyone=False), _reception(case), case.received_month))
        if case.completed_month:
            counters.add(rules.deltas(attribution.rows(new, everyone=False), _completion(case), case.completed_month))

    def _completed(self, tx: Tx, message: Message, view: CaseView | None) -> None:
        p = message.payload
        cases = FigureCases(tx.session)
        case = cases.get(message.case_number)
        if case is not None and case.completed_month is not None:
            return
        if case is None:  # completed before we heard of the acceptance: counted with what we know
            accepting = p["accepting_town"]
            handling = view.handling_town if view is not None else None
            case = FigureCase(case_number=message.case_number, window=accepting,
                              town=rules.responsible_town(accepting, handling),
                              staff=view.first_responder if view is not None else None, village=p.get("village"),
                              offices=[rules.office(p["department"], handling)])
            cases.add(case)
        completed_on = p["completed_on"]
        case.completed_on, case.completed_month, case.on_time = completed_on, rules.month_key(completed_on), \
            bool(p["on_time"])
        if case.clock_started_on is not None:
            case.finish_days = rules.working_days_to_finish(self.calendar, case.clock_started_on, completed_on)
        Counters(tx.session).add(rules.deltas(_attribution(case).rows(), _completion(case), case.completed_month))

    # -- ratings and complaints (called by their code, in its transaction) ----------------------------------

    def on_rating(self, tx: Tx, facts: RatingFacts) -> bool:
        return on_rating(tx, facts, self)

    def on_rating_voided(self, tx: Tx, rating_id: str) -> bool:
        return on_rating_voided(tx, rating_id, self)

    def on_rectification_closed(self, tx: Tx, rating_id: str, rectified: bool = True) -> bool:
        return on_rectification_closed(tx, rating_id, rectified)

    def on_complaint(self, tx: Tx, facts: ComplaintFacts) -> bool:
        return on_complaint(tx, facts)


def _attribution(case: FigureCase) -> rules.Attribution:
    return rules.Attribution(window=case.window, town=case.town, staff=case.staff, village=case.village,
                             offices=tuple(case.offices or ()))


def _reception(case: FigureCase) -> dict[str, int]:
    return {"received": 1, f"received_{case.kind}": 1}


def _completion(case: FigureCase) -> dict[str, int]:
    timed = case.finish_days is not None
    return {"completed": 1, "on_time": int(bool(case.on_time)), "finish_days": case.finish_days or 0,
            "finish_counted": int(timed)}


def _marked_attribution(session: Session, facts) -> rules.Attribution | None:
    """Whom a rating or complaint counts for: what it names, else its case's attribution; its department's
    office only (a joint case's other departments were not rated)."""
    case = FigureCases(session).get(facts.case_number) if facts.case_number else None
    window = facts.window or (case.window if case else None) or facts.town
    town = facts.town or (case.town if case else None) or window
    if window is None or town is None:
        return None
    offices: tuple[str, ...] = ()
    if facts.department:
        if facts.department_town:
            offices = (rules.office(facts.department, facts.department_town),)
        else:
            of_case = [o for o in (case.offices if case else []) if o.partition("@")[0] == facts.department]
            offices = (of_case[0] if of_case else rules.office(facts.department, town),)
    elif case is not None and case.offices:
        offices = (case.offices[0],)  # the lead department's office
    return rules.Attribution(window=window, town=town, staff=facts.staff or (case.staff if case else None),
                             village=facts.village or (case.village if case else None), offices=offices)


def on_rating(tx: Tx, facts: RatingFacts, figures: Figures | None = None) -> bool:
    """Count a rating in its month (once per rating id, however often called); False if it was counted
    already or names no window or town (nothing to count it for)."""
    marks = FigureMarks(tx.session)
    rating_id = str(facts.rating_id)
    if not 1 <= int(facts.level) <= 5:
        raise ValueError(f"a rating's level is 1..5, not {facts.level!r}")
    if marks.rating(rating_id) is not None:
        return False
    attribution = _marked_attribution(tx.session, facts)
    if attribution is None:
        log.warning("figures.rating_unattributed", rating_id=rating_id, case_number=facts.case_number)
        return False
    month, rows = rules.month_key(facts.rated_at), attribution.rows()
    marks.add(FigureRating(rating_id=rating_id, case_number=facts.case_number, month=month, level=int(facts.level),
                           follow_up=bool(facts.follow_up), rows=[list(r) for r in rows]))
    Counters(tx.session).add(rules.deltas(rows, rules.rating_measures(int(facts.level), facts.follow_up), month))
    if figures is not None and figures.ratings is not None:
        tx.after_commit(lambda: figures.ratings.labels(level=str(facts.level)).inc())
    return True


def on_rating_voided(tx: Tx, rating_id: str, figures: Figures | None = None) -> bool:
    """申诉复核 voided a rating: take back what it added, from its month. Once; False if unknown or done."""
    marks = FigureMarks(tx.session)
    rating = marks.rating(str(rating_id))
    if rating is None or rating.voided:
        return False
    rating.voided = True
    rows = [tuple(r) for r in rating.rows]
    Counters(tx.session).add(rules.deltas(rows, rules.rating_measures(rating.level, rating.follow_up,
                                                                      rating.rectified), rating.month, sign=-1))
    if figures is not None and figures.ratings_voided is not None:
        level = str(rating.level)
        tx.after_commit(lambda: figures.ratings_voided.labels(level=level).inc())
    return True


def on_rectification_closed(tx: Tx, rating_id: str, rectified: bool = True) -> bool:
    """A bad rating's rectification (整改) closed: rectified, it counts for the rating's month. Once; False
    for an unknown, void, good or already rectified rating, or one closed unrectified."""
    rating = FigureMarks(tx.session).rating(str(rating_id))
    if (rating is None or rating.voided or rating.rectified or rating.follow_up or not rectified
            or rating.level not in rules.BAD_LEVELS):
        return False
    rating.rectified = True
    Counters(tx.session).add(rules.deltas([tuple(r) for r in rating.rows], {"rectified": 1}, rating.month))
    return True


def on_complaint(tx: Tx, facts: ComplaintFacts) -> bool:
    """Count a complaint in the month it was received (once per complaint id)."""
    marks = FigureMarks(tx.session)
    complaint_id = str(facts.complaint_id)
    if marks.complaint(complaint_id) is not None:
        return False
    attribution = _marked_attribution(tx.session, facts)
    if attribution is None:
        log.warning("figures.complaint_unattributed", complaint_id=complaint_id, case_number=facts.case_number)
        return False
    month, rows = rules.month_key(facts.received_at), attribution.rows()
    marks.add(FigureComplaint(complaint_id=complaint_id, case_number=facts.case_number, month=month,
                              rows=[list(r) for r in rows]))
    Counters(tx.session).add(rules.deltas(rows, {"complaints": 1}, month))
    return True


# --- the report ------------------------------------------------------------------------------------------------

def names_from(catalog) -> rules.Names:
    if catalog is None:
        return rules.Names()
    towns = catalog.towns
    return rules.Names(towns={c: t.get("name", c) for c, t in towns.items()},
                       villages={v["code"]: v["name"] for t in towns.values() for v in t.get("villages", [])},
                       departments={c: d.get("name", c) for c, d in catalog.departments.items()})


def monthly_report(session: Session, month: str, town: str | None = None, dept: str | None = None,
                   names: rules.Names | None = None) -> dict:
    """One month's figures per dimension, for one town or department (office or code) if given."""
    month = str(parse_month(month))
    town, dept = rules.parse_town(town), rules.parse_department(dept)
    return rules.assemble(month, town, dept, Counters(session).month(month, town, dept), names)


def monthly_for(session: Session, principal: Principal, query: dict, names: rules.Names | None = None):
    """The report an HTTP caller asked for (`month`, `town`, `dept`, `format`) and may see, and its format."""
    month = parse_month(query.get("month"))
    fmt = parse_format(query.get("format"))
    town, dept = rules.report_scope(principal, query.get("town") or None, query.get("dept") or None)
    return monthly_report(session, str(month), town, dept, names), fmt


def filename(report: dict, fmt: str) -> str:
    """monthly-<month>[-<town>][-<dept>].<ext>"""
    parts = [report["month"], report["town"], (report["department"] or "").replace("@", "-")]
    return "monthly-" + "-".join(p for p in parts if p) + f".{fmt}"


CSV_HEADINGS = ("月份", "维度", "代码", "名称", "镇(街道)", *rules.COLUMNS.values())


def table_rows(report: dict) -> list[list]:
    """The report as flat rows (after CSV_HEADINGS): each dimension's rows, one after the other."""
    out = []
    for d in report["dimensions"]:
        for row in d["rows"]:
            out.append([report["month"], d["heading"], row["key"], row["name"], row["town_name"],
                        *(_cell(row[k]) for k in rules.COLUMNS)])
    return out


def _cell(value):
    return "" if value is None else value


def render_csv(report: dict) -> bytes:
    return csv_bytes(CSV_HEADINGS, table_rows(report))


def render_xlsx(report: dict) -> bytes:
    """A sheet per dimension (村, 窗口, 人员, 乡镇, 部门): title, subtitle (month, town or department), the
    Chinese headings, a row per key; a rate with nothing to divide is an empty cell."""
    year, month = report["month"].split("-")
    book = XlsxBook(f"{report['title']}（{int(year)}年{int(month)}月）")
    narrowed = "    ".join(x for x in (report["town"] and f"镇(街道)：{report['town']}",
                                       report["department"] and f"部门：{report['department']}") if x)
    subtitle = f"统计月份：{report['month']}" + (f"    {narrowed}" if narrowed else "")
    for d in report["dimensions"]:
        ws = book.sheet(d["heading"], subtitle, ["代码", "名称", "镇(街道)", *rules.COLUMNS.values()],
                        [16, 22, 12] + [10] * len(rules.COLUMNS))
        for row in d["rows"]:
            book.add(ws, [row["key"], row["name"], row["town_name"], *(row[k] for k in rules.COLUMNS)])
    return book.save()


def render(report: dict, fmt: str) -> bytes:
    if fmt == "csv":
        return render_csv(report)
    if fmt == "xlsx":
        return render_xlsx(report)
    raise ValueError(f"no file rendering for {fmt}")


__all__ = ["FORMATS", "ComplaintFacts", "Figures", "FiguresMetrics", "RatingFacts", "monthly_for", "monthly_report",
           "on_complaint", "on_rating", "on_rating_voided", "on_rectification_closed", "render"]
