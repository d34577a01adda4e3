"""The village station's rules (村/社区便民服务站), plain Python without I/O.

What a station may do with a villager's submission (代办): refuse it at the station (the applicant must
come in person, or the catalogue does not let an agent submit it), do it at the station the same day (a
village-level item, or a consultation: telling where to go), or relay it (报送) to the town centre. No fee
beyond the catalogue's statutory one. Then the station follows the case the town opened and owes the
villager a reply (回复) when it ends.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from shared.errors import NotAllowedNow, RuleViolation


class Mode(StrEnum):
    SUBMISSION = "submission"  # 代办: with the villager's authorisation (委托)
    HELP_ONLY = "help_only"  # 帮办: the villager declined to authorise; nothing is submitted


class ServiceStatus(StrEnum):
    """A station record's status (StationService.status)."""

    REFUSED = "refused"  # at the station: in person only, or not for agents
    HELPED = "helped"  # help only
    DONE = "done"  # at the station, the same day
    RELAYED = "relayed"  # 报送 to the town centre, no case heard of yet
    ACCEPTED = "accepted"  # a case at the town
    COMPLETED = "completed"  # the case was decided
    REJECTED = "rejected"  # the town could not open a case, or returned it (不予受理)


class ReplyStatus(StrEnum):
    TO_REPLY = "to_reply"
    REPLIED = "replied"


REPLY_METHODS = ("phone", "visit")  # 电话 or 上门
RETURNED = "returned"  # a reply's outcome when the town returned the case or refused the relay
_WHERE = {"city": "市级部门", "town": "镇（街道）便民服务中心", "village": "村（社区）便民服务站"}


@dataclass(frozen=True)
class Handling:
    """What the station does with a submission: the record's status, and why or how."""

    status: ServiceStatus
    reason: str | None = None  # why refused
    solution: str | None = None  # how solved at the station

    @property
    def relays(self) -> bool:
        return self.status == ServiceStatus.RELAYED


def check_fee(item: dict, fee_fen: int) -> None:
    """Free of charge except statutory fees: a station never charges beyond the catalogue's fee."""
    statutory = item.get("fee_fen") or 0
    if fee_fen < 0:
        raise RuleViolation("a fee cannot be negative", {"fee_fen": ["must be 0 or more"]})
    if fee_fen > statutory:
        raise RuleViolation(
            f"{item['name']}: the statutory fee is {statutory} fen; a station charges nothing beyond it",
            {"fee_fen": [f"at most {statutory}"]})


def check_materials(item: dict, materials: list[str]) -> None:
    known = {m["code"] for m in item["materials"]}
    unknown = sorted(set(materials) - known)
    if unknown:
        raise RuleViolation("materials not listed for this item", {"materials": unknown})


def handle_submission(item: dict, materials: list[str], fee_fen: int = 0, solution: str | None = None) -> Handling:
    """A submission with the villager's authorisation: refused, done at the station, or relayed.

    A fee beyond the statutory one or an unknown material is the agent's mistake (RuleViolation), not a
    service to log; a refusal is a service, logged with its reason."""
    check_fee(item, fee_fen)
    check_materials(item, materials)
    name = item["name"]
    if item.get("in_person"):
        return Handling(ServiceStatus.REFUSED, reason=f"{name}须申请人本人到场办理，不能代办")
    if not item.get("agent_allowed", True):
        return Handling(ServiceStatus.REFUSED,
                        reason=f"{name}不在代办员可代办的事项之列，请申请人到{_WHERE[item['level']]}办理")
    if item["level"] == "village":
        return Handling(ServiceStatus.DONE, solution=solution or f"在村（社区）便民服务站当场办结：{name}")
    if item["kind"] == "consultation":  # nothing to handle: the station tells where to go (咨询告知)
        return Handling(ServiceStatus.DONE, solution=solution or advice(item))
    return Handling(ServiceStatus.RELAYED)


def advice(item: dict) -> str:
    """咨询告知 at the station: where to go and what to bring."""
    materials = "、".join(m["name"] for m in item["materials"]) or "无需材料"
    guide = item.get("guide") or f"请到{_WHERE[item['level']]}办理“{item['name']}”"
    return f"{guide.rstrip('。')}。需携带：{materials}。"


def default_content(item: dict | None) -> str:
    """What the villager asked for, when the agent did not write it down."""
    return f"申请办理“{item['name']}”" if item else "咨询"


def record_number(village: str, day: date, seq: int) -> str:
    """A station record's number: readable, unique: V<village>-<yyyymmdd>-<seq> (at most 40 characters)."""
    return f"V{village}-{day:%Y%m%d}-{seq:04d}"


# --- following the town's case ---------------------------------------------------------------

def is_stale(stored_version: int | None, version: int) -> bool:
    """An older case version than the one applied changes nothing (messages may come out of order)."""
    return stored_version is not None and version < stored_version


def status_for_case(case_status: str, outcome_heard: bool = False) -> ServiceStatus:
    """The station record's status while the town holds the case. Completed only with the outcome
    (case.completed): the step that closed the case (case.updated) may come first."""
    if case_status == "completed":
        return ServiceStatus.COMPLETED if outcome_heard else ServiceStatus.ACCEPTED
    if case_status == "returned":
        return ServiceStatus.REJECTED
    return ServiceStatus.ACCEPTED



# --- replies (回复) ------------------------------------------------------------------------------

def check_reply(status: str, method: str, at: datetime, now: datetime) -> None:
    if method not in REPLY_METHODS:
        raise RuleViolation(f"a reply is made by {' or '.join(REPLY_METHODS)}", {"method": list(REPLY_METHODS)})
    if at > now:
        raise RuleViolation("a reply cannot be recorded before it was made", {"at": ["in the future"]})
    if status == ReplyStatus.REPLIED:
        raise NotAllowedNow("the reply was recorded already")


def same_reply(recorded: dict, method: str, what_said: str) -> bool:
    """The same reply sent again (poor connectivity): answered as it was, not a conflict."""
    return recorded.get("method") == method and recorded.get("what_said") == what_said


def may_reply(subject: str, village: str | None, reply_agent: str, reply_village: str | None) -> bool:
    """The agent who owes the reply, or (standing in) an agent of the same village's station."""
    return reply_agent == subject or (reply_village is not None and reply_village == village)
