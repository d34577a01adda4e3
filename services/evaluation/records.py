"""Evaluation's use cases: record every case event (the base of supervision and statistics)."""
from __future__ import annotations

from dataclasses import dataclass

from shared.clock import Clock
from shared.contracts import Message
from shared.store import Tx

from services.evaluation.models import CaseEvent, Events

# what evaluation needs to know of a payload; contact details stay with notify
_PRIVATE_FIELDS = {"contact"}


@dataclass
class Recorder:
    clock: Clock

    def record(self, tx: Tx, message: Message) -> str:
        data = {k: v for k, v in message.payload.items() if k not in _PRIVATE_FIELDS}
        Events(tx.session).add(CaseEvent(
            message_id=message.message_id, case_number=message.case_number, type=message.type,
            case_version=message.case_version, producer=message.producer, occurred_at=message.occurred_at,
            recorded_at=self.clock.now(), data=_jsonable(data)))
        return "ok"

    def timeline(self, tx: Tx, case_number: str) -> list[dict]:
        return [{"type": e.type, "case_version": e.case_version, "producer": e.producer,
                 "occurred_at": e.occurred_at, "data": e.data} for e in Events(tx.session).for_case(case_number)]

    def stats(self, tx: Tx) -> dict:
        return {"cases_by_event": Events(tx.session).cases_by_type()}


def _jsonable(data: dict) -> dict:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in data.items()}
