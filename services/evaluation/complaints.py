"""有诉即办: a complaint is accepted at once (a number and a due date in working days), acknowledged, assigned
and resolved; overdue ones are listed first and counted (tongban_complaints_overdue). Rules: rating_rules.py.

The complainant's name and phone are kept to reach them; the phone leaves masked everywhere, and the name
only for the window that takes complaints, supervisors and services: a department head (whose staff may be
the one complained of) sees the complaint without the complainant. No bus events (see ratings.py)."""
from __future__ import annotations

from dataclasses import dataclass

from services.evaluation import rating_rules as rules
from services.evaluation.figures import ComplaintFacts, Figures
from services.evaluation.models import CaseViews
from services.evaluation.models_ratings import Complaint, Complaints
from services.evaluation.rating_rules import ComplaintStatus
from services.evaluation.ratings import as_utc, once, records_for, scoped_key
from shared import auth
from shared.auth import town_of_case
from shared.clock import Clock
from shared.errors import NotPermitted, NotVisible, RuleViolation
from shared.logging import bind_context, get_logger
from shared.pii import mask_phone
from shared.store import Store, Tx
from shared.workdays import WorkingCalendar, today_in_shanghai

log = get_logger(__name__)
SEES_COMPLAINANT = ("clerk", "supervisor", "service", "city_admin")


def complaint_reach(c: Complaint) -> tuple[tuple, list]:
    return (c.town,), ([(c.department, c.department_town)] if c.department else [])


def can_see_complaint(principal: auth.Principal, c: Complaint) -> bool:
    towns, departments = complaint_reach(c)
    return auth.can_see_record(principal, towns=towns, departments=departments)


@dataclass
class ComplaintDesk:
    clock: Clock
    calendar: WorkingCalendar
    days: int = rules.COMPLAINT_DAYS
    figures: Figures | None = None  # the monthly figures, kept in the same transaction as each complaint

    def file(self, store: Store, principal: auth.Principal, body: dict, key: str | None) -> tuple[dict, bool]:
        """Accepted at once: its number and due date. The same Idempotency-Key again answers with it."""
        request_key = scoped_key(principal, key)
        town = body["town"]
        if not records_for(principal, town):
            raise NotPermitted(f"a complaint about town {town} is taken by that town's window or the city")
        number = body.get("case_number")
        if number is not None and town_of_case(number) is None:
            raise RuleViolation("case_number is not a case number", {"case_number": ["<town>-<yyyymmdd>-<n>"]})

        def step(tx: Tx):
            complaints = Complaints(tx.session)
            if request_key and (existing := complaints.by_request_key(request_key)) is not None:
                return complaint_view(existing, self.clock.today(), self.calendar, principal), False
            now = self.clock.now()
            today = today_in_shanghai(now)
            view = CaseViews(tx.session).get(number) if number else None
            department, office_town = None, None
            if view is not None and view.department:  # a complaint about a case: the case's department answers
                department = view.department
                office_town = None if view.handling_town == "city" else (view.handling_town or view.accepting_town)
            c = Complaint(
                number=rules.complaint_number(town, today, complaints.next_seq(town, today)), request_key=request_key,
                town=town, channel=body["channel"], subject=body["subject"], text=body["text"], case_number=number,
                staff=body.get("staff"), department=department, department_town=office_town,
                complainant_name=body["complainant"]["name"], complainant_phone=body["complainant"]["phone"],
                status=ComplaintStatus.RECEIVED, recorded_by=principal.subject, received_at=now, received_on=today,
                due=rules.complaint_due(today, self.calendar, self.days))
            complaints.add(c)  # two at one moment may take one number: the loser runs again with the next
            if self.figures is not None:
                self.figures.on_complaint(tx, ComplaintFacts(
                    complaint_id=c.number, received_at=now, case_number=number, staff=c.staff, town=town,
                    department=department, department_town=office_town or ("city" if department else None)))
            bind_context(complaint=c.number, town=town, case_number=number)
            log.info("complaint.received", channel=c.channel, due=c.due.isoformat())
            return complaint_view(c, today, self.calendar, principal), True

        return once(store, step)

    def _get(self, tx: Tx, principal: auth.Principal, number: str) -> Complaint:
        c = Complaints(tx.session).get(number, for_update=True)
        if c is None or not can_see_complaint(principal, c):
            raise NotVisible(f"no complaint {number}")
        bind_context(complaint=number, town=c.town, case_number=c.case_number)
        return c

    def complaint(self, tx: Tx, principal: auth.Principal, number: str) -> dict:
        return complaint_view(self._get(tx, principal, number), self.clock.today(), self.calendar, principal)

    def acknowledge(self, tx: Tx, principal: auth.Principal, number: str) -> dict:
        c = self._get(tx, principal, number)
        c.status = rules.complaint_step(c.status, "acknowledge")
        c.acknowledged_at, c.acknowledged_by = self.clock.now(), principal.subject
        log.info("complaint.acknowledged")
        return complaint_view(c, self.clock.today(), self.calendar, principal)

    def assign(self, tx: Tx, principal: auth.Principal, number: str, body: dict) -> dict:
        """To a person (and their department office in the complaint's town, unless the case's is a city
        bureau): they answer for it now."""
        c = self._get(tx, principal, number)
        c.status = rules.complaint_step(c.status, "assign")
        if body.get("department") and body["department"] != c.department:
            c.department, c.department_town = body["department"], c.town
        c.assigned_to, c.assigned_by, c.assigned_at = body["to"], principal.subject, self.clock.now()
        log.info("complaint.assigned", department=c.department)
        return complaint_view(c, self.clock.today(), self.calendar, principal)

    def resolve(self, tx: Tx, principal: auth.Principal, number: str, body: dict) -> dict:
        c = self._get(tx, principal, number)
        rules.may_resolve(principal.role, principal.subject, c.assigned_to)
        c.status = rules.complaint_step(c.status, "resolve")
        now = self.clock.now()
        c.resolution, c.resolved_by, c.resolved_at, c.resolved_on = body["resolution"], principal.subject, now, \
            today_in_shanghai(now)
        log.info("complaint.resolved", on_time=c.resolved_on <= c.due)
        return complaint_view(c, self.clock.today(), self.calendar, principal)

    def complaints(self, tx: Tx, principal: auth.Principal, query: dict) -> dict:
        """The complaints the caller may see, overdue first: ?status= (default: open; `all`), ?town=, ?overdue=1."""
        status = query.get("status") or None
        if status not in (None, "all") and status not in set(ComplaintStatus):
            raise RuleViolation(f"unknown status {status!r}", {"status": [*map(str, ComplaintStatus), "all"]})
        town = query.get("town") or None
        scope = principal.scope
        today = self.clock.today()
        if scope.kind == "village":
            raise NotPermitted(f"no complaints for scope {scope}")
        if scope.kind == "town":
            if town not in (None, scope.town):  # another town's: none the caller may see
                return {"today": today, "overdue": 0, "complaints": []}
            town = scope.town
        rows = Complaints(tx.session).listed(town=town, status=None if status in (None, "all") else status,
                                             open_only=status is None)
        views = [complaint_view(c, today, self.calendar, principal) for c in rows if can_see_complaint(principal, c)]
        if query.get("overdue") in ("1", "true"):
            views = [v for v in views if v["overdue"]]
        views.sort(key=lambda v: rules.overdue_first(v["overdue"], v["due"], v["number"]))
        return {"today": today, "overdue": sum(1 for v in views if v["overdue"]), "complaints": views}


def complaint_view(c: Complaint, today, calendar: WorkingCalendar, principal: auth.Principal) -> dict:
    resolved = c.status == ComplaintStatus.RESOLVED
    return {
        "number": c.number, "town": c.town, "channel": c.channel, "subject": c.subject, "text": c.text,
        "case_number": c.case_number, "staff": c.staff, "department": c.department, "status": c.status,
        "received_at": as_utc(c.received_at), "due": c.due,
        "days_left": None if resolved else calendar.working_days_between(today, c.due),
        "overdue": rules.complaint_overdue(c.status, c.due, today),
        "acknowledged_at": as_utc(c.acknowledged_at), "acknowledged_by": c.acknowledged_by,
        "assigned_to": c.assigned_to, "assigned_at": as_utc(c.assigned_at), "resolution": c.resolution,
        "resolved_by": c.resolved_by, "resolved_at": as_utc(c.resolved_at),
        "resolved_on_time": (c.resolved_on <= c.due) if c.resolved_on else None,
        "complainant": ({"name": c.complainant_name, "phone": mask_phone(c.complainant_phone)}
                        if principal.role in SEES_COMPLAINANT else None)}
