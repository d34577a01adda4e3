"""Back-office rules (后台分类审批) as plain Python: no I/O."""
from __future__ import annotations

from datetime import date

OUTCOMES = ("approved", "refused")


class DecisionRejected(Exception):
    """The decision cannot be taken as asked; the message says why (a 4xx to the approver)."""


class AlreadyDecided(Exception):
    def __init__(self, outcome: str):
        super().__init__(f"this work item is already decided ({outcome})")
        self.outcome = outcome


def check_decision(status: str, outcome: str, reason: str | None) -> None:
    if status == "decided":
        raise AlreadyDecided(outcome)
    if status == "withdrawn":
        raise DecisionRejected("the case was closed meanwhile (another department refused it)")
    if outcome not in OUTCOMES:
        raise DecisionRejected(f"outcome must be one of {OUTCOMES}")
    if outcome == "refused" and not (reason and reason.strip()):
        raise DecisionRejected("a refusal needs a written reason")


def result_number(department: str, case_number: str) -> str:
    """The document number of an approval issued by rule (即办件): department and case make it unique."""
    return f"{department.upper()}-{case_number}"


def urgency_key(deadline: date, received_order: int) -> tuple:
    """Work is listed by deadline first, then by arrival."""
    return (deadline, received_order)
