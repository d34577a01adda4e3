"""Evaluation's use cases: record every case event (the base of supervision and statistics)."""
from __future__ import annotations

from dataclasses import dataclass, field

from services.evaluation import domain
from services.evaluation.figures import Figures
from services.evaluation.models import CaseEvent, CaseView, CaseViews, Events
from shared import auth
from shared.auth import town_of_case
from shared.clock import Clock
from shared.contracts import Message
from shared.errors import NotPermitted, NotVisible
from shared.store import Tx


@dataclass
class Recorder:
    clock: Clock
    figures: Figures = field(default_factory=Figures)  # the monthly counters (figures.py)

    def record(self, tx: Tx, message: Message) -> str:
        Events(tx.session).add(CaseEvent(
            message_id=message.message_id, case_number=message.case_number, type=message.type,
            case_version=message.case_version, producer=message.producer, occurred_at=message.occurred_at,
            recorded_at=self.clock.now(), data=_jsonable(domain.kept(message.payload))))
        view = self._update_case_view(tx, message)
        self.figures.on_event(tx, message, view)
        return "ok"

    def _update_case_view(self, tx: Tx, message: Message) -> CaseView | None:
        """Move the case read model forward (same transaction as the event's record)."""
        views = CaseViews(tx.session)
        view = views.get(message.case_number, for_update=True)
        if view is None:
            if domain.case_view_changes(message.type, message.payload, message.occurred_at,
                                        message.case_version) is None:
                return None
            town = message.payload.get("accepting_town") or town_of_case(message.case_number)
            if town is None:
                return None
            # made now, or by another event of the case handled at the same moment (then decided against it)
            view = views.get_or_create(message.case_number, town, self.clock.now())
        # version 0: a row nothing was applied to yet (the case not seen before)
        known = None if view.version == 0 else {"version": view.version, "paused_since": view.paused_since,
                                                 "status": view.status}
        changes = domain.case_view_changes(message.type, message.payload, message.occurred_at,
                                           message.case_version, known)
        if changes is None:
            return view
        for name, value in changes.items():
            setattr(view, name, value)
        view.updated_at = self.clock.now()
        return view

    def timeline(self, tx: Tx, principal: auth.Principal, case_number: str) -> list[dict]:
        """A case's events; a case the caller may not see is answered like one never heard of."""
        events = Events(tx.session).for_case(case_number)
        r = domain.reach(case_number, [(e.type, e.data or {}) for e in events])
        if not events or not auth.can_see_record(principal, towns=r.towns, departments=r.departments,
                                                 agent=r.agent):
            raise NotVisible(f"no case {case_number}")
        return [{"type": e.type, "case_version": e.case_version, "producer": e.producer,
                 "occurred_at": e.occurred_at, "data": e.data} for e in events]

    def stats(self, tx: Tx, principal: auth.Principal) -> dict:
        """The city's figures, or one town's (the cases it accepted) for a town scope."""
        allowed, town = auth.visible_town(principal)
        if not allowed:
            raise NotPermitted(f"no statistics for scope {principal.scope}")
        return {"cases_by_event": Events(tx.session).cases_by_type(town)}


def _jsonable(data: dict) -> dict:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in data.items()}
