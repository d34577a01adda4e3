"""The window's read models: a case's view, lists, statistics, the notice PDF and the ledger's verification.

Nothing here changes the ledger. Every read goes through the caller's scope (Window.visible_case,
Window.require_town_read): what they may not see answers like what does not exist.
"""
from __future__ import annotations

from datetime import UTC, date, datetime

from services.intake import domain, notice_rendering, query_codes
from services.intake.models import Case, DepartmentDecision, Ledger, Transfer, Transfers, Waybills
from services.intake.usecases import Window
from shared import auth
from shared.errors import NotVisible, RuleViolation
from shared.pii import mask_credit_code, mask_phone, mask_resident_id
from shared.store import Tx


def case_view(window: Window, tx: Tx, case: Case, with_history: bool = False) -> dict:
    out = {
        "case_number": case.case_number, "version": case.version, "status": case.status,
        "kind": case.kind, "item_code": case.item_code, "item_name": case.item_name,
        "catalog_version": case.catalog_version, "department": case.department,
        "departments": case.departments, "accepting_town": case.accepting_town,
        "handling_town": case.handling_town,
        "applicant": {"type": case.applicant_type, "name": case.applicant_name,
                      "id_number" if case.applicant_type == "person" else "credit_code":
                      mask_resident_id(case.applicant_id) if case.applicant_type == "person"
                      else mask_credit_code(case.applicant_id),
                      "phone": mask_phone(case.applicant_phone)},
        "first_responder": case.first_responder, "via_agent": case.via_agent,
        "village": case.village, "station_submission": case.station_submission, "accepted_at": case.accepted_at,
        "clock_started_on": case.clock_started_on, "deadline": case.deadline,
        "deadline_provisional": case.deadline_provisional, "days_left": _days_left(window, case),
        "missing_materials": case.missing, "deferred_materials": case.deferred, "deferred_due": case.deferred_due,
        "paused": {"since": case.paused_from, "procedure": case.pause_procedure} if case.paused_from else None,
        "extended_days": case.extended_days, "review_of": case.review_of, "review_case": case.review_case,
        "advice": case.advice, "outcome": case.outcome, "reason": case.reason,
        "result_number": case.result_number, "completed_on": case.completed_on,
        "allowed_actions": domain.allowed_actions(case.status),
        "departments_not_served": case.unserved_departments or [],
        "delivery": case.delivery,
    }
    if case.unserved_departments and case.status not in domain.TERMINAL:
        out["warning"] = (f"no service is handling the work of {', '.join(case.unserved_departments)} now: "
                          "the case is accepted and its work waits in the department's queue")
    if with_history:
        repo = Ledger(tx.session)
        out["departments_progress"] = _progress(case, repo.decisions(case.case_number))
        out["history"] = [{"seq": a.seq, "action": a.action, "actor": a.actor, "at": a.at,
                           "reason": a.reason, "data": a.data} for a in repo.history(case.case_number)]
        notices = repo.notices(case.case_number)
        out["notices"] = [{"id": n.id, "kind": n.kind, "title": notice_rendering.TITLES[n.kind],
                           "issued_at": n.issued_at, "sms_text": n.sms_text} for n in notices]
        # every hop with who and when, the notices among them: a notice's "who" is the person responsible
        # for it at the centre (首问负责人, printed on it), the centre being who issues it
        out["timeline"] = domain.timeline(
            out["history"], [{"id": n.id, "kind": n.kind, "title": notice_rendering.TITLES[n.kind],
                              "issued_at": n.issued_at,
                              "issued_by": (n.data or {}).get("responsible_person") or case.first_responder}
                             for n in notices])
        waybill = Waybills(tx.session).of(case.case_number)
        out["waybill"] = ({"tracking_number": waybill.tracking_number, "created_at": waybill.created_at}
                          if waybill else None)
        out["responsibilities"] = window.responsibilities(case)
    return out


def case_detail(window: Window, tx: Tx, principal: auth.Principal, case_number: str) -> dict:
    """A case of this centre's ledger; or one another centre accepted that this town handles (全城通办), for
    this town's users and the city's. Anyone else finds neither."""
    if Ledger(tx.session).get(case_number) is None and auth.can_see_town(principal, window.town):
        transfer = Transfers(tx.session).get(case_number)
        if transfer is not None:
            return handled_case_view(window, transfer)
    return case_view(window, tx, window.visible_case(tx, principal, case_number), with_history=True)


def handled_case_view(window: Window, t: Transfer) -> dict:
    """收受分离, at the handling town's centre: what the accepting centre told, its centre named."""
    catalog = window.catalog
    department = catalog.departments.get(t.department, {"name": t.department})["name"]
    town = catalog.towns.get(t.handling_town, {}).get("name")
    centre = window.centre_name(catalog, t.accepting_town)
    return {
        "case_number": t.case_number, "version": t.version, "responsibility": "handling", "status": t.status,
        "kind": t.kind, "item_code": t.item_code, "item_name": t.item_name, "department": t.department,
        "accepting_town": t.accepting_town, "accepting_centre": centre, "handling_town": t.handling_town,
        "first_responder": t.first_responder, "accepted_at": _utc(t.accepted_at), "deadline": t.deadline,
        "delivery": t.delivery, "outcome": t.outcome, "completed_on": t.completed_on,
        "tracking_number": t.tracking_number, "updated_at": _utc(t.updated_at),
        "responsibilities": domain.responsibilities(
            accepting_town=t.accepting_town, accepting_centre=centre, first_responder=t.first_responder,
            handling_town=t.handling_town, department=t.department,
            office=domain.office_name(t.handling_town, department, town, catalog.data.get("city", {}).get("name"))),
    }


def _utc(at: datetime) -> datetime:
    """Stored in UTC; SQLite gives it back without its zone."""
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def transfer_list(window: Window, tx: Tx, principal: auth.Principal, query: dict) -> dict:
    """Cases other centres accepted that this town's department offices handle (this town's users, the city)."""
    window.require_town_read(principal)
    try:
        limit = min(int(query.get("limit", 100)), 500)
        offset = max(int(query.get("offset", 0)), 0)
    except ValueError:
        raise RuleViolation("limit and offset must be integers") from None
    status = query.get("status")
    if status and status not in domain.STATUSES:
        raise RuleViolation(f"unknown status {status!r}", {"status": [str(s) for s in domain.STATUSES]})
    rows = Transfers(tx.session).list(window.town, status=status, limit=limit, offset=offset)
    return {"transfers": [handled_case_view(window, t) for t in rows], "limit": limit, "offset": offset}


def case_list(window: Window, tx: Tx, principal: auth.Principal, query: dict) -> dict:
    window.require_town_read(principal)
    towns = None if principal.scope.kind == "city" else {window.town}
    try:
        limit = min(int(query.get("limit", 100)), 500)
        offset = max(int(query.get("offset", 0)), 0)
        due_by = date.fromisoformat(query["due_by"]) if query.get("due_by") else None
    except ValueError:
        raise RuleViolation("limit and offset must be integers, due_by a date (YYYY-MM-DD)") from None
    status = query.get("status")
    if status and status not in domain.STATUSES:
        raise RuleViolation(f"unknown status {status!r}", {"status": [str(s) for s in domain.STATUSES]})
    overdue = query.get("overdue") in ("1", "true", "yes")
    cases = Ledger(tx.session).list(towns, status=status, kind=query.get("kind"),
                                    item_code=query.get("item_code"), limit=limit, offset=offset,
                                    due_by=due_by, overdue_on=window.clock.today() if overdue else None)
    return {"cases": [case_view(window, tx, c) for c in cases], "limit": limit, "offset": offset}


def stats(window: Window, tx: Tx, principal: auth.Principal) -> dict:
    window.require_town_read(principal)
    return {"town": window.town, **Ledger(tx.session).counts()}


def notice_pdf(window: Window, tx: Tx, principal: auth.Principal, case_number: str, notice_id: int,
               query_code: str | None = None) -> bytes:
    """The notice's PDF; a notice that opens the case carries the progress lookup (QR code), and the 查询码 when
    the caller gives the one just issued (it is checked against the case's hash: a wrong one is a 400)."""
    case = window.visible_case(tx, principal, case_number)
    notice = Ledger(tx.session).notice(case_number, notice_id)
    if notice is None:
        raise NotVisible(f"case {case_number} has no notice {notice_id}")
    if query_code is not None and not query_codes.matches(query_code, case.query_code_hash):
        raise RuleViolation("this is not the case's query code", {"query_code": ["does not match"]})
    tracking = (notice_rendering.Tracking(query_codes.track_url(window.portal_url, case_number),
                                          query_codes.normalise(query_code) if query_code else None)
                if notice.kind in query_codes.TRACKED_NOTICES else None)
    return notice_rendering.render_pdf(notice_rendering.notice_from_dict(notice.data), tracking)


def issued_query_code(window: Window, case: Case) -> dict:
    """The 查询码 issued in this request (opening the case, a new code), in the one answer that carries it."""
    if not case.issued_query_code:
        return {}
    return {"query_code": case.issued_query_code,
            "track_url": query_codes.track_url(window.portal_url, case.case_number)}


def ledger_check(window: Window, tx: Tx, principal: auth.Principal) -> dict:
    window.require_town_read(principal)
    return verify_ledger(tx.session)


def verify_ledger(session) -> dict:
    """Recompute every case's hash chain; report the first broken link of each damaged case."""
    repo = Ledger(session)
    broken = {}
    numbers = repo.all_case_numbers()
    for number in numbers:
        history = repo.history(number)
        records = [(domain.history_record(a.case_number, a.seq, a.action, a.actor, a.at, a.reason, a.data),
                    a.prev_hash, a.hash) for a in history]
        bad = domain.verify_chain(records)
        if bad is not None:
            broken[number] = history[bad].seq
    return {"cases": len(numbers), "broken": broken}


def _days_left(window: Window, case: Case) -> int | None:
    if case.deadline is None or case.status in domain.TERMINAL:
        return None
    return window.calendar.working_days_between(window.clock.today(), case.deadline)


def _progress(case: Case, decisions: list[DepartmentDecision]) -> list[dict]:
    by_dept = {d.department: d for d in decisions}
    return [{"department": dept, "lead": dept == case.department,
             "outcome": by_dept[dept].outcome if dept in by_dept else None,
             "reason": by_dept[dept].reason if dept in by_dept else None} for dept in case.departments]
