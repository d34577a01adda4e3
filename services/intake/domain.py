"""Window rules (前台综合受理) as plain Python: no I/O, unit-tested without a broker.

The case lifecycle is data (TRANSITIONS): an action is allowed only from the statuses listed
for it. Kinds of case (六件): instant 即办件, promised 承诺件, supplement 补办件 (a case waiting in
pending_materials), joint 联办件, returned 退回件, escalated 上报件, and consultation 咨询告知件.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, date

from shared.errors import NotAllowedNow, RuleViolation
from shared.vocabulary import TERMINAL_CASE_STATUSES, CaseKind, CaseStatus, NoticeKind, Outcome
from shared.workdays import Deadline, WorkingCalendar

DEFERRED_MATERIALS_DAYS = 5  # 容缺受理: working days to bring what was promised (local rule)


class ForbiddenTransition(NotAllowedNow):
    def __init__(self, status: str, action: str):
        super().__init__(f"a case in status {status!r} does not allow {action!r}",
                         {"status": status, "allowed": allowed_actions(None if status == "new" else status)})
        self.status = status
        self.action = action


class ExtensionTaken(NotAllowedNow):
    """A case is extended at most once (the ledger's rule)."""


NEW = None
SAME = "="  # the action keeps the status it found
# action -> (allowed from, goes to). NEW is "no case yet".
TRANSITIONS: dict[str, tuple[tuple[str | None, ...], str]] = {
    "accept": ((NEW,), "in_review"),                       # instant, promised, joint: complete materials
    "accept_for_initial_review": ((NEW,), "initial_review"),  # escalated: the town reviews first (初审)
    "accept_incomplete": ((NEW,), "pending_materials"),    # supplement: one-time notice of all that is missing
    "consult": ((NEW,), "consulted"),                      # consultation: told where and with what to go
    "return": ((NEW, "pending_materials", "initial_review"), "returned"),  # 不予受理 / 退回, with the reason
    "supplement": (("pending_materials",), SAME),  # some, not all, of the missing materials
    "complete_materials": (("pending_materials",), "in_review"),  # the clock starts today
    "complete_materials_for_initial_review": (("pending_materials",), "initial_review"),
    "pass_initial_review": (("initial_review",), "in_review"),  # relayed to the city department
    "request_review": (("returned",), SAME),          # 复核: a linked case for the department head
    "deliver_deferred": (("in_review", "paused"), SAME),  # 容缺: a promised material arrives
    "request_materials": (("in_review",), "pending_materials"),  # the back office needs more: the clock stops
    "pause": (("in_review",), "paused"),                    # 特别程序 starts
    "resume": (("paused",), "in_review"),                   # and ends: the deadline moves
    "extend": (("in_review",), SAME),                # 延期, once, with reason and approver
    "record_decision": (("in_review", "paused"), SAME),  # one department of a joint case decided
    "decide": (("in_review", "paused"), "completed"),
}
STATUSES = tuple(CaseStatus)
TERMINAL = TERMINAL_CASE_STATUSES


def next_status(current: str | None, action: str) -> str:
    if action not in TRANSITIONS:
        raise KeyError(f"no action {action!r}")
    allowed_from, to = TRANSITIONS[action]
    if current not in allowed_from:
        raise ForbiddenTransition(current or "new", action)
    return current if to == SAME else to


def allowed_actions(current: str | None) -> list[str]:
    return sorted(a for a, (frm, _to) in TRANSITIONS.items() if current in frm)


def unserved(departments: list[str], served: dict[str, bool] | None) -> list[str]:
    """The departments known to have no service consuming their work (unknown counts as served)."""
    if not served:
        return []
    return [d for d in departments if served.get(d) is False]


def case_number(town: str, day: date, sequence: int) -> str:
    """Readable and unique across the city: accepting town, acceptance date, daily sequence."""
    return f"{town}-{day:%Y%m%d}-{sequence:05d}"


# --- materials ---------------------------------------------------------------------------------

def missing_materials(item: dict, provided: list[str]) -> list[dict]:
    """ALL required materials not provided that cannot be deferred, at once (一次性告知)."""
    have = set(provided)
    return [{"code": m["code"], "name": m["name"]} for m in item["materials"]
            if m["required"] and not m["deferrable"] and m["code"] not in have]


def deferred_materials(item: dict, provided: list[str]) -> list[dict]:
    """Required materials that are missing but may follow acceptance (容缺受理)."""
    have = set(provided)
    return [{"code": m["code"], "name": m["name"]} for m in item["materials"]
            if m["required"] and m["deferrable"] and m["code"] not in have]


def unknown_materials(item: dict, provided: list[str]) -> list[str]:
    known = {m["code"] for m in item["materials"]}
    return sorted(set(provided) - known)


# --- routing and kinds ----------------------------------------------------------------------------

def handling_town(item: dict, accepting_town: str, applicant_town: str | None = None) -> str:
    """Where the case is decided (收受分离): the city bureau for city-level items, else the town
    the applicant belongs to for city-wide items, else the accepting town's own office."""
    if item["level"] == "city" or item["kind"] == "escalated":
        return "city"
    if applicant_town and item["city_wide"]:
        return applicant_town
    return accepting_town


def check_city_wide(item: dict, accepting_town: str, applicant_town: str | None) -> None:
    if applicant_town and applicant_town != accepting_town and not item["city_wide"]:
        raise RuleViolation(f"item {item['code']} is not city-wide (全城通办): apply at the centre of town "
                            f"{applicant_town}", {"applicant_town": ["this item is handled only in its own town"]})


# --- 全城通办: how the result comes back, who answers for what, who else hears of the case ------------------

DELIVERY_PICKUP, DELIVERY_MAIL = "pickup", "mail"
ACCEPTING_DUTIES = ("形式审查", "身份核验", "受理", "送达")  # formal and identity checks, acceptance, delivery
HANDLING_DUTIES = ("审查决定",)  # examination and decision


def delivery_choice(item: dict, delivery: str | None, channel: str, mail_address: str | None) -> tuple[str, str | None]:
    """How the result reaches the applicant, and the address kept for it (only for mail).

    pickup (the default where offered): at the accepting centre; mail: EMS to `mail_address`. The older
    contact channels pickup and mail still say it (channel mail ⇒ delivery mail); a channel and a delivery
    that disagree are refused."""
    implied = channel if channel in (DELIVERY_PICKUP, DELIVERY_MAIL) else None
    if delivery and implied and delivery != implied:
        raise RuleViolation(f"the contact channel {channel!r} and the delivery {delivery!r} disagree",
                            {"delivery": [f"the applicant's channel {channel!r} already asks for {implied!r}"]})
    offered = list(item.get("delivery") or [DELIVERY_PICKUP])
    chosen = delivery or implied or (DELIVERY_PICKUP if DELIVERY_PICKUP in offered else offered[0])
    if chosen not in offered:
        raise RuleViolation(f"the result of {item['name']} is delivered only by {', '.join(offered)}",
                            {"delivery": [f"offered: {', '.join(offered)}"]})
    address = (mail_address or "").strip()
    if chosen == DELIVERY_MAIL and not address:
        raise RuleViolation("a result sent by EMS needs the mail address", {"mail_address": ["required for mail"]})
    return chosen, address if chosen == DELIVERY_MAIL else None


def waybill_owed(delivery: str | None, outcome: str | None) -> bool:
    """An EMS waybill once there is a result to send: mail delivery, approved."""
    return delivery == DELIVERY_MAIL and outcome == Outcome.APPROVED


def transfer_owed(accepting_town: str, handling_town: str, status: str, version: int) -> bool:
    """收受分离: the handling town's centre hears of a case another town's department office handles — not of a
    city bureau's, not of one handled here, and not of one returned or consulted at the window straight away."""
    if handling_town in ("city", accepting_town):
        return False
    return not (version == 1 and status in (CaseStatus.RETURNED, CaseStatus.CONSULTED))


def office_name(handling_town: str, department_name: str, town_name: str | None, city_name: str | None) -> str:
    """The office that decides: the town's department office (镇民政办), or the city's bureau (市民政局)."""
    if handling_town == "city":
        return f"{city_name or '市'}{department_name}局"
    return f"{town_name or handling_town}{department_name}办"


def responsibilities(*, accepting_town: str, accepting_centre: str, first_responder: str, handling_town: str,
                     department: str, office: str) -> list[dict]:
    """Each centre's share of one case (收受分离), as the ledger records and shows it."""
    scope = f"department:{department}" if handling_town == "city" else f"department:{department}@{handling_town}"
    return [{"role": "accepting", "town": accepting_town, "centre": accepting_centre,
             "first_responder": first_responder, "duties": list(ACCEPTING_DUTIES)},
            {"role": "handling", "town": handling_town, "office": office, "department": department, "scope": scope,
             "duties": list(HANDLING_DUTIES)}]


def departments(item: dict) -> list[str]:
    """Every department that must decide: the lead first, then the co-departments (联办)."""
    return [item["department"], *[d for d in item["co_departments"] if d != item["department"]]]


def escalates(kind: str) -> bool:
    """An escalated case's work (上报件) goes through the town agent to the city department; every other
    kind's, a review (复核) of an escalated item included, goes to the department directly."""
    return kind == CaseKind.ESCALATED


def opening_action(item: dict, missing: list[dict]) -> str:
    if item["kind"] == "consultation":
        return "consult"
    if missing:
        return "accept_incomplete"
    return "accept_for_initial_review" if item["kind"] == "escalated" else "accept"


def check_in_person(item: dict, via_agent: str | None, in_person: bool) -> None:
    if item["in_person"] and (via_agent or not in_person):
        raise RuleViolation(f"{item['name']} needs the applicant in person (本人到场)",
                            {"in_person": ["the applicant must come in person; an agent cannot submit this item"]})
    if via_agent and not item["agent_allowed"]:
        raise RuleViolation(f"a village agent may not submit {item['name']}",
                            {"via_agent": ["not an item village agents may submit"]})


def check_materials_known(item: dict, provided: list[str]) -> None:
    unknown = unknown_materials(item, provided)
    if unknown:
        raise RuleViolation("materials not listed for this item", {"materials": unknown})


# --- opening a case: the whole decision at once ----------------------------------------------------

@dataclass(frozen=True)
class Opening:
    """Everything the window decides when a case opens; the use case stores and publishes it as it is."""

    action: str  # accept | accept_for_initial_review | accept_incomplete | consult | return
    status: str
    kind: str
    department: str
    departments: list[str]
    handling_town: str
    missing: list[dict]
    deferred: list[dict] = field(default_factory=list)
    deferred_due: date | None = None
    clock_started_on: date | None = None
    deadline: date | None = None
    deadline_provisional: bool = False
    advice: str | None = None
    reason: str | None = None
    was_supplement: bool = False
    notices: tuple[str, ...] = ()  # the notices owed now, in order
    announces: bool = True  # case.accepted (a consultation is only an update)
    routes: bool = False  # the work goes to the departments now


def open_case(item: dict, materials: list[str], today: date, calendar: WorkingCalendar, *, accepting_town: str,
              applicant_town: str | None = None, via_agent: str | None = None, in_person: bool = True,
              return_reason: str | None = None, department_name: str | None = None,
              contact_channel: str = "sms") -> Opening:
    """Given the item, what the applicant brings and the date: accepted, incomplete, returned or consulted."""
    check_in_person(item, via_agent, in_person)
    check_city_wide(item, accepting_town, applicant_town)
    check_materials_known(item, materials)
    missing = missing_materials(item, materials)
    action = "return" if return_reason else opening_action(item, missing)
    opening = dict(action=action, status=next_status(None, action), kind=item["kind"], department=item["department"],
                   departments=departments(item), handling_town=handling_town(item, accepting_town, applicant_town),
                   missing=missing, was_supplement=bool(missing) and action != "return", reason=return_reason,
                   announces=action != "consult", routes=action == "accept")
    if action in ("accept", "accept_for_initial_review"):
        due = deadline(item, today, calendar)
        opening.update(clock_started_on=today, deadline=due.date, deadline_provisional=due.provisional)
        opening["deferred"] = deferred_materials(item, materials)
        if opening["deferred"]:
            opening["deferred_due"] = calendar.add_working_days(today, DEFERRED_MATERIALS_DAYS).date
    if action == "consult":
        opening["advice"] = advice(item, department_name or item["department"])
    opening["notices"] = tuple(notices_owed(action, item["kind"], contact_channel))
    return Opening(**opening)


def advice(item: dict, department_name: str) -> str:
    """咨询告知: where to go and what to bring."""
    where = {"city": "市级部门", "town": "镇（街道）便民服务中心", "village": "村（社区）便民服务站"}[item["level"]]
    materials = "、".join(m["name"] for m in item["materials"]) or "无需材料"
    guide = item.get("guide") or f"请到{where}（{department_name}）办理“{item['name']}”"
    return f"{guide.rstrip('。')}。需携带：{materials}。"


def notices_owed(action: str, kind: str, contact_channel: str, outcome: str | None = None) -> list[str]:
    """The notices (文书) a step owes the applicant."""
    accepted = [NoticeKind.ACCEPTANCE] if kind == CaseKind.INSTANT else [NoticeKind.PROMISE]
    return [str(k) for k in {
        "accept": accepted,
        "accept_for_initial_review": [NoticeKind.ACCEPTANCE],
        "complete_materials": accepted,
        "complete_materials_for_initial_review": [NoticeKind.ACCEPTANCE],
        "accept_incomplete": [NoticeKind.ONE_TIME_NOTICE],
        "supplement": [NoticeKind.ONE_TIME_NOTICE],
        "request_materials": [NoticeKind.ONE_TIME_NOTICE],
        "return": [NoticeKind.REJECTION],
        "decide": [NoticeKind.RESULT] + ([NoticeKind.PICKUP] if outcome == Outcome.APPROVED
                                         and contact_channel == "pickup" else []),
    }.get(action, [])]


# --- time ----------------------------------------------------------------------------------------

def deadline(item: dict, clock_start: date, calendar: WorkingCalendar) -> Deadline:
    """The promised date (承诺办结时限): promised working days after the clock starts, that day not counted."""
    return calendar.add_working_days(clock_start, item["promised_days"])


def deadline_after_pause(current: date, paused_from: date, resumed_on: date, calendar: WorkingCalendar) -> Deadline:
    """Special procedures stop the clock: the deadline moves by the working days spent paused."""
    paused_days = max(0, calendar.working_days_between(paused_from, resumed_on))
    return calendar.add_working_days(current, paused_days)


def extension_limit(statutory_days: int, promised_days: int) -> int:
    """The most working days the one extension may add: up to the statutory limit (法定时限), at least 1.

    (An item promised at its statutory limit may still be extended by up to its statutory days.)"""
    return max(max(statutory_days - promised_days, 0) or statutory_days, 1)


def extension_days_max(item: dict, already_extended: bool) -> int:
    """What the back office may still ask for: 0 once the case has had its extension."""
    return 0 if already_extended else extension_limit(item["statutory_days"], item["promised_days"])


def check_extension(already_extended: bool, days: int, statutory_days: int, promised_days: int, reason: str) -> None:
    """延期: the ledger owns this rule (approval only checks a request against what the routed work says)."""
    if already_extended:
        raise ExtensionTaken("the deadline was extended once already; a case may be extended at most once")
    if not reason or not reason.strip():
        raise RuleViolation("an extension needs a written reason", {"reason": ["required"]})
    limit = extension_limit(statutory_days, promised_days)
    if not 1 <= days <= limit:
        raise RuleViolation(f"an extension is 1 to {limit} working days for this item", {"days": [f"1..{limit}"]})


# --- decisions ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Decision:
    outcome: str
    reason: str | None
    result_number: str | None
    decided_on_version: int
    department: str = ""


def decision_is_current(case_version: int, decision: Decision) -> bool:
    """A decision made on an older version of the case than the ledger holds is stale."""
    return decision.decided_on_version == case_version


def joint_outcome(required: list[str], decided: dict[str, Decision]) -> tuple[str, str | None, str | None] | None:
    """联办: refused as soon as any department refuses (with its reason); approved when all approved."""
    for dept in required:
        d = decided.get(dept)
        if d and d.outcome == "refused":
            return "refused", f"{dept}: {d.reason}" if len(required) > 1 else d.reason, None
    if all(dept in decided for dept in required):
        numbers = [decided[d].result_number for d in required if decided[d].result_number]
        return "approved", None, ";".join(numbers) or None
    return None


# --- history ----------------------------------------------------------------------------------------

def action_hash(prev_hash: str, record: dict) -> str:
    """Hash-chain the history: each action's hash covers the previous one, so edits show."""
    canonical = json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()


GENESIS_HASH = "0" * 64


def history_record(case_number: str, seq: int, action: str, actor: str, at, reason, data: dict) -> dict:
    """What an action's hash covers. Times are UTC without an offset, as every database gives them back."""
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    return {"case_number": case_number, "seq": seq, "action": action, "actor": actor,
            "at": at.isoformat(timespec="microseconds"), "reason": reason, "data": data}


def timeline(actions: list[dict], notices: list[dict]) -> list[dict]:
    """One timeline of a case: the ledger's actions (each hop: who, when) and the notices issued, by time.

    `actions`: {seq, action, actor, at, reason, data}; `notices`: {id, kind, title, issued_at, issued_by}.
    A notice is issued in the step that owes it, just after the step is recorded: at one instant the
    actions come first. Times from another service's clock (the town agent's, the city's) sort as they are."""
    def utc(at):
        return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo is not None else at

    entries = [((utc(a["at"]), 0, a["seq"]), {"at": a["at"], "action": a["action"], "actor": a["actor"],
                                              "reason": a.get("reason"), "data": a.get("data") or {}})
               for a in actions]
    entries += [((utc(n["issued_at"]), 1, n["id"]), {"at": n["issued_at"], "action": "notice",
                                                     "actor": n["issued_by"], "notice_id": n["id"],
                                                     "notice_kind": n["kind"], "title": n["title"]})
                for n in notices]
    return [entry for _key, entry in sorted(entries, key=lambda e: e[0])]


def verify_chain(records: list[tuple[dict, str, str]]) -> int | None:
    """Given (record, prev_hash, hash) in order, the index of the first broken link, or None."""
    prev = GENESIS_HASH
    for i, (record, stored_prev, stored_hash) in enumerate(records):
        if stored_prev != prev or action_hash(prev, record) != stored_hash:
            return i
        prev = stored_hash
    return None
