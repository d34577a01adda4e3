"""The words every service and contract shares, once: case statuses and kinds, outcomes, notice kinds,
work item statuses. `StrEnum` members are plain strings (stored, compared and sent as such).

Reconciled from the tuples the services and contracts repeated:
- item kinds (the catalogue's five) and case kinds (those five and `review`, a 复核 case the window
  opens for a returned one) differ on purpose: `ITEM_KINDS` is the catalogue's subset of `CaseKind`;
- the window's "open" statuses (demo) are the case statuses that are not terminal (`OPEN_CASE_STATUSES`);
  approval's open statuses are its work item's (`OPEN_WORK_STATUSES`), a different record.
"""
from __future__ import annotations

from enum import StrEnum


class CaseStatus(StrEnum):
    PENDING_MATERIALS = "pending_materials"
    INITIAL_REVIEW = "initial_review"
    IN_REVIEW = "in_review"
    PAUSED = "paused"
    COMPLETED = "completed"
    RETURNED = "returned"
    CONSULTED = "consulted"


TERMINAL_CASE_STATUSES = (CaseStatus.COMPLETED, CaseStatus.RETURNED, CaseStatus.CONSULTED)
OPEN_CASE_STATUSES = tuple(s for s in CaseStatus if s not in TERMINAL_CASE_STATUSES)


class CaseKind(StrEnum):
    """六件: the kind of a case (the catalogue's item kinds, and review for a 复核 case)."""

    INSTANT = "instant"  # 即办件
    PROMISED = "promised"  # 承诺件
    JOINT = "joint"  # 联办件
    ESCALATED = "escalated"  # 上报件
    CONSULTATION = "consultation"  # 咨询告知件
    REVIEW = "review"  # 复核 of a returned case


ITEM_KINDS = tuple(k for k in CaseKind if k is not CaseKind.REVIEW)


class Outcome(StrEnum):
    APPROVED = "approved"
    REFUSED = "refused"


class NoticeKind(StrEnum):
    """The notices (文书) of a case. The window renders all but `consultation` (its advice is on the
    case itself); the contracts accept every one, so a window that issues it later breaks nobody."""

    ACCEPTANCE = "acceptance"
    ONE_TIME_NOTICE = "one_time_notice"
    REJECTION = "rejection"
    PROMISE = "promise"
    RESULT = "result"
    PICKUP = "pickup"
    CONSULTATION = "consultation"


class WorkItemStatus(StrEnum):
    PENDING = "pending"
    PAUSED = "paused"
    WAITING_MATERIALS = "waiting_materials"
    DECIDED = "decided"
    WITHDRAWN = "withdrawn"
    SUPERSEDED = "superseded"


OPEN_WORK_STATUSES = (WorkItemStatus.PENDING, WorkItemStatus.PAUSED, WorkItemStatus.WAITING_MATERIALS)
CLOCK_STOPPED_WORK_STATUSES = (WorkItemStatus.PAUSED, WorkItemStatus.WAITING_MATERIALS)
CLOSED_WORK_STATUSES = (WorkItemStatus.DECIDED, WorkItemStatus.WITHDRAWN, WorkItemStatus.SUPERSEDED)


class DepartmentStep(StrEnum):
    """What a department asks of the ledger (case.department), and what the ledger may refuse."""

    REQUEST_MATERIALS = "request_materials"
    START_PROCEDURE = "start_procedure"
    END_PROCEDURE = "end_procedure"
    EXTEND = "extend"


class ExtensionStatus(StrEnum):
    REQUESTED = "requested"  # an approver asked
    APPROVED = "approved"  # the department head approved: sent to the ledger
    REFUSED = "refused"  # the ledger refused it (its reason kept)


class ContactChannel(StrEnum):
    SMS = "sms"
    EMAIL = "email"
    PICKUP = "pickup"
    MAIL = "mail"
