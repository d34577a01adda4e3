"""Deadline supervision (电子监察), the board and the breach forecast: evaluation's use cases.

The watcher (a timer) reads the case read model (case_views), raises each warning once per case, colour
and deadline (a unique key: restarts and two watchers at once raise nothing twice), publishes it through
the outbox in the same transaction (`supervision.warned.<accepting town>`), escalates a red one by itself to
a supervision notice (督办通知) for the department head and the town's or city's supervisor, closes the
warnings that are over, and sets the metrics. The rules are in supervision_rules.py and forecast.py.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Gauge

from services.evaluation import forecast as fc
from services.evaluation import supervision_rules as rules
from services.evaluation.models import CaseEvent, CaseView, CaseViews
from services.evaluation.models_board import BoardCounts, BoardPage, CountRow
from services.evaluation.models_supervision import (
    SupervisionNotice,
    SupervisionNotices,
    SupervisionWarning,
    Warnings,
    Where,
)
from shared import auth
from shared.clock import Clock
from shared.contracts import make_message, rk_supervision_warned
from shared.errors import NotPermitted, NotVisible, RuleViolation
from shared.logging import get_logger
from shared.store import Store, Tx
from shared.workdays import SHANGHAI, WorkingCalendar

log = get_logger(__name__)

READERS = ("supervisor", "department_head", "city_admin", "service")
_TOWN = re.compile(r"^[0-9]{9}$")
_DEPT = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_HORIZON_DAYS = 60
BOARD_PAGE, BOARD_PAGE_MAX = 100, 1000  # open cases listed on the board, most urgent first


def _limit(value: str | None) -> int:
    if value is None:
        return BOARD_PAGE
    if not value.isdigit() or not 1 <= int(value) <= BOARD_PAGE_MAX:
        raise RuleViolation(f"limit must be a whole number from 1 to {BOARD_PAGE_MAX}", {"limit": value})
    return int(value)


def _setting(settings, key: str, env: str, default, cast):
    """A number from the settings' extras (where Settings.from_env puts `env`: shared.config.EXTRA_VARIABLES)."""
    raw = settings.extra.get(key, default)
    try:
        value = cast(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{env} (or extra {key}) must be a number, got {raw!r}") from None
    if value < 0 or (cast is float and value == 0):
        raise ValueError(f"{env} (or extra {key}) must be positive, got {raw!r}")
    return value


@dataclass(frozen=True)
class SupervisionConfig:
    interval: float = 60.0  # seconds between the watcher's passes
    yellow_days: int = rules.DEFAULT_YELLOW_DAYS
    horizon_days: int = fc.DEFAULT_HORIZON_DAYS  # the forecast's N
    window_days: int = fc.DEFAULT_WINDOW_DAYS  # the decision rate's M

    @classmethod
    def of(cls, settings) -> SupervisionConfig:
        return cls(interval=_setting(settings, "supervision_interval", "TONGBAN_SUPERVISION_INTERVAL", 60.0, float),
                   yellow_days=_setting(settings, "yellow_days", "TONGBAN_YELLOW_DAYS", rules.DEFAULT_YELLOW_DAYS,
                                        int),
                   horizon_days=max(1, _setting(settings, "forecast_days", "TONGBAN_FORECAST_DAYS",
                                                fc.DEFAULT_HORIZON_DAYS, int)),
                   window_days=max(1, _setting(settings, "forecast_window_days", "TONGBAN_FORECAST_WINDOW_DAYS",
                                               fc.DEFAULT_WINDOW_DAYS, int)))


class SupervisionMetrics:
    """Supervision's figures, on the instance's registry."""

    def __init__(self, registry: CollectorRegistry):
        self.warnings = Counter("tongban_warnings_total", "Deadline warnings (督办) raised, by colour", ["colour"],
                                registry=registry)
        self.open_warnings = Gauge(
            "tongban_open_warnings", "Warnings whose case is still open and whose deadline stands, by colour, "
            "office town (a town code, or city for a city bureau) and lead department",
            ["colour", "town", "department"], registry=registry)
        self.forecast_breaches = Gauge(
            "tongban_forecast_breaches", "Open cases forecast to miss their deadline in the next N working days at "
            "the office's recent decision rate, by office town and department", ["town", "department"],
            registry=registry)
        for colour in rules.WARNED:  # a series from the start: an alert can say "none yet"
            self.warnings.labels(colour=colour)


@dataclass
class Supervisor:
    clock: Clock
    calendar: WorkingCalendar
    config: SupervisionConfig
    instance: str
    _metrics: SupervisionMetrics | None = None

    def metrics(self, registry: CollectorRegistry) -> SupervisionMetrics:
        if self._metrics is None:
            self._metrics = SupervisionMetrics(registry)
        return self._metrics

    # --- the watcher ---------------------------------------------------------------------------------

    def watch(self, store: Store, metrics: SupervisionMetrics | None = None) -> dict:
        """One pass over the open cases: warnings raised (each in its own short transaction), warnings over
        closed, metrics set. Returns what it did."""
        today, now = self.clock.today(), self.clock.now()
        due = []
        closed = 0
        with store.transaction() as tx:
            views = {v.case_number: v for v in CaseViews(tx.session).open_cases()}
            standings = {n: self._standing(v, today) for n, v in views.items()}
            warnings = Warnings(tx.session)
            for w in warnings.unresolved():
                v = views.get(w.case_number)
                why = rules.resolution(w.colour, w.deadline, v is not None, v and v.deadline,
                                       standings.get(w.case_number))
                if why:
                    w.resolved_at, w.resolution = now, why
                    closed += 1
            raised_already = warnings.keys_of_open_cases()
            for number, s in standings.items():
                colour = rules.warning_due(s)
                if colour and (number, colour, views[number].deadline) not in raised_already:
                    due.append((number, colour))
        raised = [w for number, colour in due if (w := self._raise(store, number, colour, today, metrics))]
        offices = self.refresh_metrics(store, metrics) if metrics is not None else None
        return {"raised": raised, "closed": closed, "forecast_offices": offices}

    def _standing(self, v: CaseView, today: date) -> rules.Standing:
        return rules.standing(self.calendar, today, deadline=v.deadline, status=v.status,
                              paused_since=v.paused_since, kind=v.kind, yellow_days=self.config.yellow_days)

    def _raise(self, store: Store, number: str, colour: str, today: date,
               metrics: SupervisionMetrics | None) -> dict | None:
        """Raise one warning, its event and (red) its supervision notice in one transaction; None if it was
        there already (another watcher) or the case moved on meanwhile."""
        now = self.clock.now()
        with store.transaction() as tx:
            view = CaseViews(tx.session).get(number, for_update=True)
            if view is None or view.deadline is None:
                return None
            s = self._standing(view, today)
            if rules.warning_due(s) != colour:
                return None
            w = Warnings(tx.session).raise_once(
                case_number=number, colour=colour, deadline=view.deadline,
                rule=rules.rule_of(colour, self.config.yellow_days), working_days_left=s.working_days_left,
                accepting_town=view.accepting_town, handling_town=view.handling_town, department=view.department,
                first_responder=view.first_responder, item_name=view.item_name, raised_at=now)
            if w is None:
                return None
            if colour == rules.RED:
                self._escalate(tx, w, view, now)
                for earlier in Warnings(tx.session).unresolved():
                    if earlier.case_number == number and earlier.colour == rules.YELLOW:
                        earlier.resolved_at, earlier.resolution = now, "turned_red"
            tx.publish(make_message("supervision.warned", number, view.version, {
                "warning_id": w.id, "colour": colour, "rule": w.rule, "accepting_town": w.accepting_town,
                "handling_town": w.handling_town, "department": w.department,
                "first_responder": w.first_responder, "deadline": w.deadline,
                "working_days_left": w.working_days_left, "raised_at": now}, producer=self.instance,
                occurred_at=now), rk_supervision_warned(w.accepting_town))
            if metrics is not None:
                tx.after_commit(lambda: metrics.warnings.labels(colour=colour).inc())
            log.info("supervision.warned", case_number=number, colour=colour, deadline=w.deadline.isoformat(),
                     department=w.department, working_days_left=w.working_days_left)
            return warning_view(w)

    def _escalate(self, tx: Tx, w: SupervisionWarning, view: CaseView, now: datetime) -> None:
        """Red escalates by itself: a supervision notice for the department head and the supervisor."""
        to = rules.addressees(w.department, w.accepting_town, w.handling_town)
        SupervisionNotices(tx.session).add(SupervisionNotice(
            warning_id=w.id, case_number=w.case_number, accepting_town=w.accepting_town,
            handling_town=w.handling_town, department=w.department, department_head=to.department_head,
            supervisor=to.supervisor, issued_at=now,
            text=rules.notice_text(w.case_number, view.item_name, w.department, w.deadline, w.working_days_left,
                                   w.first_responder)))

    def refresh_metrics(self, store: Store, metrics: SupervisionMetrics) -> int:
        """The open warnings and forecast gauges, from the database (any instance sets the same figures)."""
        with store.transaction() as tx:
            counts = Warnings(tx.session).open_counts()
            offices = [f for f, _ in self._forecasts(tx, Where(), self.config.horizon_days)]
        metrics.open_warnings.clear()
        for colour, accepting, handling, department, n in counts:
            metrics.open_warnings.labels(colour=colour, town=rules.office_town(accepting, handling),
                                         department=department or "").inc(n)
        metrics.forecast_breaches.clear()
        for f in offices:
            metrics.forecast_breaches.labels(town=f.town, department=f.department).set(f.breach_count)
        return len(offices)

    # --- the board, the forecast, the lists --------------------------------------------------------------

    def board(self, tx: Tx, principal: auth.Principal, query: dict) -> dict:
        """Counts by colour and by office from the board's counts; the most urgent open cases, a page of them
        (?limit=, default BOARD_PAGE, at most BOARD_PAGE_MAX); the forecast's summary."""
        where = scope_where(principal, query)
        limit = _limit(query.get("limit"))
        today = self.clock.today()
        yellow_last = rules.yellow_until(self.calendar, today, self.config.yellow_days)
        counts = {c: 0 for c in rules.COLOURS} | {"paused": 0}
        offices: dict[tuple[str, str], dict] = {}
        count_rows = BoardCounts(tx.session).rows(where)
        for r in count_rows:
            colour = rules.bucket_colour(deadline=r.deadline, instant=r.instant, stopped=r.stopped, today=today,
                                         yellow_last=yellow_last)
            office = offices.setdefault((r.office, r.department), {
                "town": r.office, "department": r.department, "red": 0, "yellow": 0, "green": 0, "paused": 0,
                "total": 0})
            for tally in (counts, office):
                tally[colour] += r.cases
                tally["paused"] += r.cases if r.stopped else 0
            office["total"] += r.cases
        rows = []
        for v in BoardPage(tx.session).cases(where, today, yellow_last, limit):
            s = self._standing(v, today)
            rows.append({"case_number": v.case_number, "item_code": v.item_code, "item_name": v.item_name,
                         "kind": v.kind, "status": v.status, "accepting_town": v.accepting_town,
                         "handling_town": v.handling_town, "department": v.department,
                         "first_responder": v.first_responder, "deadline": v.deadline,
                         "working_days_left": s.working_days_left, "colour": s.colour, "paused": s.clock_stopped})
        forecasts = self._forecasts(tx, where, self.config.horizon_days, count_rows)
        return {"as_of": today, "town": where.town or where.office, "department": where.department,
                "counts": counts, "open_cases": sum(o["total"] for o in offices.values()), "cases": rows,
                "offices": sorted(offices.values(),
                                  key=lambda o: (-o["red"], -o["yellow"], o["town"], o["department"])),
                "forecast": {"horizon_days": self.config.horizon_days, "window_days": self.config.window_days,
                             "breaches": sum(f.breach_count for f, _ in forecasts),
                             "offices": [f.summary() for f, _ in forecasts if f.breach_count or f.overdue]}}

    def forecast(self, tx: Tx, principal: auth.Principal, query: dict) -> dict:
        where = scope_where(principal, query)
        days = query.get("days", str(self.config.horizon_days))
        if not days.isdigit() or not 1 <= int(days) <= MAX_HORIZON_DAYS:
            raise RuleViolation(f"days must be a whole number of working days from 1 to {MAX_HORIZON_DAYS}",
                                {"days": days})
        today = self.clock.today()
        forecasts = self._forecasts(tx, where, int(days))
        for f, spans in forecasts:
            self._name_breaches(tx, f, spans, today)
        return {"as_of": today, "horizon_days": int(days), "window_days": self.config.window_days,
                "breaches": sum(f.breach_count for f, _ in forecasts),
                "offices": [f.detail() for f, _ in forecasts]}

    def _forecasts(self, tx: Tx, where: Where, horizon_days: int, count_rows: list[CountRow] | None = None
                   ) -> list[tuple[fc.OfficeForecast, list[fc.BreachSpan]]]:
        """Every office's forecast (those with open cases or recent decisions) within `where`, from the board's
        counts (`count_rows`: those of `where`, already read): a case queues at its lead department's office
        while its clock runs."""
        today = self.clock.today()
        # an office's whole queue, or none of it: a town's forecast is that of the offices in the town (a case
        # it accepted for another town's office counts there)
        only = where.office or where.town
        if count_rows is None:
            count_rows = BoardCounts(tx.session).rows(Where(office=only, department=where.department))
        queues: dict[tuple[str, str], list[tuple[date, int]]] = defaultdict(list)
        for r in count_rows:
            if not r.lead or r.stopped or r.deadline == rules.NO_DEADLINE or not r.department:
                continue  # a stopped clock: not decidable now, and its deadline moves when it runs again
            if only is not None and r.office != only:
                continue  # a town's board also counts cases it accepted for another town's office
            queues[(r.office, r.department)].append((r.deadline, r.cases))
        decisions = self._decisions(tx, today)
        keys = set(queues) | {k for k in decisions if (only is None or k[0] == only)
                              and (where.department is None or k[1] == where.department)}
        available: dict[date, int] = {}  # working days each deadline has: the same for every office
        return [fc.forecast_counts(self.calendar, today, town, dept, queues.get((town, dept), []),
                                   decisions.get((town, dept), 0), window_days=self.config.window_days,
                                   horizon_days=horizon_days, available=available) for town, dept in sorted(keys)]

    def _name_breaches(self, tx: Tx, f: fc.OfficeForecast, spans: list[fc.BreachSpan], today: date) -> None:
        """The cases behind the breach spans, by their positions in the office's queue."""
        for span in spans:
            numbers = BoardPage(tx.session).queued(f.town, f.department, span.deadline,
                                                   offset=span.first - span.group_start - 1,
                                                   limit=span.last - span.first + 1)
            for k, number in enumerate(numbers, start=span.first):
                f.breaches.append(fc.Breach(number, span.deadline, k, span.working_days_available,
                                            fc.expected_decision(self.calendar, today, k, f.rate)))

    def _decisions(self, tx: Tx, today: date) -> dict[tuple[str, str], int]:
        """Decisions by people per office (handling town, department) in the rate window; rule decisions of
        instant cases take no one's time and are left out."""
        start = fc.window_start(self.calendar, today, self.config.window_days)
        since = datetime.combine(start, time(0), tzinfo=SHANGHAI).astimezone(UTC)
        until = datetime.combine(today + timedelta(days=1), time(0), tzinfo=SHANGHAI).astimezone(UTC)
        rows = tx.session.execute(sa.select(CaseEvent.data).where(
            CaseEvent.type == "case.decided", CaseEvent.occurred_at >= since, CaseEvent.occurred_at < until)).all()
        counts: dict[tuple[str, str], int] = defaultdict(int)
        for (data,) in rows:
            data = data or {}
            if str(data.get("decided_by", "")).startswith("rule:") or not data.get("department"):
                continue
            counts[(data.get("handling_town") or data.get("accepting_town"), data["department"])] += 1
        return counts

    def warnings(self, tx: Tx, principal: auth.Principal, query: dict) -> dict:
        where = scope_where(principal, query)
        colour = query.get("colour")
        if colour not in (None, *rules.WARNED):
            raise RuleViolation("colour must be yellow or red", {"colour": colour})
        rows = Warnings(tx.session).listed(where, case_number=query.get("case"), colour=colour,
                                           open_only=query.get("open") in ("1", "true"))
        return {"warnings": [warning_view(w) for w in rows]}

    def notices(self, tx: Tx, principal: auth.Principal, query: dict) -> dict:
        where = scope_where(principal, query)
        return {"notices": [notice_view(n) for n in SupervisionNotices(tx.session).listed(where)]}


def scope_where(principal: auth.Principal, query: dict) -> Where:
    """What the caller may look at, narrowed by ?town= and ?department=. Another town's or department's
    records are not found (404), as if they did not exist."""
    town, department = query.get("town") or None, query.get("department") or None
    if town is not None and not _TOWN.match(town):
        raise RuleViolation("town must be a 9-digit town code", {"town": town})
    if department is not None and not _DEPT.match(department):
        raise RuleViolation("department must be a department code", {"department": department})
    scope = principal.scope
    if principal.role in ("supervisor", "city_admin", "service") and scope.kind == "city":
        return Where(town=town, department=department)
    if principal.role == "supervisor" and scope.kind == "town":
        if town not in (None, scope.town):
            raise NotVisible(f"no board for town {town}")
        return Where(town=scope.town, department=department)
    if principal.role == "department_head" and scope.kind == "department":
        office = scope.town or "city"
        if department not in (None, scope.department) or town not in (None, scope.town):
            raise NotVisible("no board for that department or town")
        return Where(department=scope.department, office=office)
    raise NotPermitted(f"no supervision board for {principal.role} of scope {scope}")


def warning_view(w: SupervisionWarning) -> dict:
    return {"id": w.id, "case_number": w.case_number, "colour": w.colour, "rule": w.rule, "deadline": w.deadline,
            "working_days_left": w.working_days_left, "accepting_town": w.accepting_town,
            "handling_town": w.handling_town, "department": w.department, "first_responder": w.first_responder,
            "item_name": w.item_name, "raised_at": w.raised_at, "resolved_at": w.resolved_at,
            "resolution": w.resolution}


def notice_view(n: SupervisionNotice) -> dict:
    return {"id": n.id, "warning_id": n.warning_id, "case_number": n.case_number, "accepting_town": n.accepting_town,
            "handling_town": n.handling_town, "department": n.department, "department_head": n.department_head,
            "supervisor": n.supervisor, "text": n.text, "issued_at": n.issued_at}
