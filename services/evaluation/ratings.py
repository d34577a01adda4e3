"""好差评: ratings of cases, the rectification (整改) a bad one opens, the rater's follow-up rating, and the
appeal (申诉复核) a supervisor decides. Rules: rating_rules.py; tables: models_ratings.py.

Who rates (the choice, until the portal's pages exist): the applicant, through a channel that records the
rating for them -- a `service` token (the portal, the QR-code and SMS-link pages, the phone survey) for any
channel, or the counter's rating device, signed in as a `clerk` of the accepting town (`window_device`).
Each rating is tied to what the case read model (case_views) knows: window, staff, towns, department.

No bus events: the monthly figures read ratings from this database, and no other service needs them."""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prometheus_client import Counter
from sqlalchemy.exc import IntegrityError

from services.evaluation import rating_rules as rules
from services.evaluation.figures import Figures, RatingFacts
from services.evaluation.models import CaseView, CaseViews
from services.evaluation.models_ratings import (
    Appeal,
    Appeals,
    Rating,
    Ratings,
    Rectification,
    Rectifications,
)
from services.evaluation.rating_rules import AppealStatus, CloseReason, RectState
from shared import auth
from shared.clock import Clock
from shared.errors import NotPermitted, NotVisible, RuleViolation
from shared.logging import bind_context, get_logger
from shared.pii import mask_phone
from shared.store import Store, Tx
from shared.workdays import WorkingCalendar, today_in_shanghai

log = get_logger(__name__)
TRIES = 3  # two requests at one moment (one key, one slot): the loser runs again and finds the winner's record
LIST_LIMIT = 500


def once(store: Store, step: Callable[[Tx], tuple]):
    """`step(tx)` in its own transaction; when the database refuses a clash with a record another request
    wrote at the same moment (a unique key), run it again: it now finds that record and answers from it."""
    for attempt in range(TRIES):
        try:
            with store.transaction() as tx:
                return step(tx)
        except IntegrityError:
            if attempt == TRIES - 1:
                raise
            log.info("ratings.same_moment", attempt=attempt + 1)
    raise AssertionError("unreachable")  # pragma: no cover


def scoped_key(principal: auth.Principal, key: str | None) -> str | None:
    # keys are the client's: scoped to the sender, so two clients' keys never collide
    return hashlib.sha256(f"{principal.subject}:{key}".encode()).hexdigest() if key else None


def rating_reach(r: Rating) -> tuple[set, list]:
    """The towns and department offices (code, town or None for a city bureau) a rating belongs to."""
    towns = {r.town} | ({r.handling_town} if r.handling_town and r.handling_town != "city" else set())
    office_town = None if r.handling_town == "city" else (r.handling_town or r.town)
    departments = r.departments or ([r.department] if r.department else [])
    return towns, [(d, office_town) for d in departments]


def can_see_rating(principal: auth.Principal, r: Rating) -> bool:
    towns, departments = rating_reach(r)
    return auth.can_see_record(principal, towns=towns, departments=departments)


def records_for(principal: auth.Principal, accepting_town: str) -> bool:
    """May the caller record a rating for the applicant of a case accepted in `accepting_town`? A city-wide
    service any; a town's token (the window's device) only its own centre's cases."""
    sees_all_or_one, town = auth.visible_town(principal)
    return sees_all_or_one and town in (None, accepting_town)


@dataclass
class RatingDesk:
    clock: Clock
    calendar: WorkingCalendar  # the city's working days (the reference stream's, updated in place)
    rectify_days: int = rules.RECTIFY_DAYS
    rated: Counter | None = field(default=None, repr=False)
    figures: Figures | None = None  # the monthly figures, kept in the same transaction as each rating

    def bind_metrics(self, registry) -> None:
        self.rated = Counter("tongban_ratings_total", "Ratings recorded (好差评), by level (1 非常满意 … "
                             "5 非常不满意) and channel", ["level", "channel"], registry=registry)

    # --- rating ---------------------------------------------------------------------------------

    def rate(self, store: Store, principal: auth.Principal, body: dict, key: str | None) -> tuple[dict, bool]:
        """A rating of a case at a stage; a bad one opens its rectification in the same transaction. The same
        Idempotency-Key again answers with the rating it made (False: nothing new)."""
        request_key = scoped_key(principal, key)

        def step(tx: Tx):
            ratings = Ratings(tx.session)
            if request_key and (existing := ratings.by_request_key(request_key)) is not None:
                return self.rating_view(tx, principal, existing), False
            number = body["case_number"]
            view = CaseViews(tx.session).get(number)
            if view is None or not records_for(principal, view.accepting_town):
                raise NotVisible(f"no case {number}")  # not heard of yet, or another town's
            bind_context(case_number=number, town=view.accepting_town)
            rules.check_rater(principal.role, body["channel"])
            slot = rules.check_rating(view.kind, view.status, body["stage"], ratings.slots(number))
            rating = self._new_rating(view, body, slot, principal, request_key)
            ratings.add(rating)
            if rating.bad:
                self._open_rectification(tx, rating)
            if self.figures is not None:
                self.figures.on_rating(tx, RatingFacts(rating_id=str(rating.id), level=rating.level,
                                                       rated_at=rating.rated_at, case_number=rating.case_number))
            tx.after_commit(lambda: self._count(rating))
            log.info("rating.recorded", level=rating.level, channel=rating.channel, stage=rating.stage,
                     bad=rating.bad)
            return self.rating_view(tx, principal, rating), True

        return once(store, step)

    def _new_rating(self, view: CaseView, body: dict, slot: str, principal: auth.Principal,
                    request_key: str | None) -> Rating:
        now = self.clock.now()
        rater = body.get("rater") or {}
        return Rating(
            request_key=request_key, case_number=view.case_number, slot=slot, stage=body["stage"],
            level=body["level"], bad=rules.is_bad(body["level"]), channel=body["channel"], comment=body.get("comment"),
            rater_name=rater.get("name"), rater_phone=rater.get("phone"), recorded_by=principal.subject,
            kind=view.kind, town=view.accepting_town, window=view.accepting_town, handling_town=view.handling_town,
            staff=view.first_responder, department=view.department,
            departments=list(view.departments or ([view.department] if view.department else [])),
            village=view.village, via_agent=view.via_agent, rated_at=now, rated_on=today_in_shanghai(now),
            void=False)

    def _open_rectification(self, tx: Tx, rating: Rating) -> Rectification:
        callback_due, rectify_due = rules.rectification_dues(rating.rated_on, self.calendar, self.rectify_days)
        rect = Rectification(rating_id=rating.id, case_number=rating.case_number, state=RectState.OPEN,
                             opened_on=rating.rated_on, callback_due=callback_due, rectify_due=rectify_due)
        Rectifications(tx.session).add(rect)
        log.info("rectification.opened", callback_due=callback_due.isoformat(), rectify_due=rectify_due.isoformat())
        return rect

    def _count(self, rating: Rating) -> None:
        if self.rated is not None:
            self.rated.labels(level=str(rating.level), channel=rating.channel).inc()

    def follow_up(self, store: Store, principal: auth.Principal, rating_id: int, body: dict,
                  key: str | None) -> tuple[dict, bool]:
        """The rater's one follow-up rating, once the rectification is done; it closes the rectification."""
        request_key = scoped_key(principal, key)

        def step(tx: Tx):
            rating = Ratings(tx.session).get(rating_id, for_update=True)
            if rating is None or not self._records_follow_up(principal, rating):
                raise NotVisible(f"no rating {rating_id}")
            bind_context(case_number=rating.case_number, town=rating.town)
            rules.check_rater(principal.role, body["channel"], follow_up=True)
            if request_key and rating.follow_up_key == request_key:
                return self.rating_view(tx, principal, rating), False  # the same follow-up sent again
            rect = Rectifications(tx.session).of_rating(rating.id, for_update=True)
            to = rules.check_follow_up(rating.void, rating.bad, rect.state if rect else None,
                                       rating.follow_up_level is not None)
            now = self.clock.now()
            rating.follow_up_level, rating.follow_up_channel = body["level"], body["channel"]
            rating.followed_up_at, rating.follow_up_key = now, request_key
            rect.state, rect.closed_at, rect.closed_reason = to, now, CloseReason.FOLLOW_UP
            if self.figures is not None:  # counted apart: out of the satisfaction rate
                self.figures.on_rating(tx, RatingFacts(rating_id=f"{rating.id}-follow-up", level=body["level"],
                                                       rated_at=now, case_number=rating.case_number,
                                                       follow_up=True))
            log.info("rating.followed_up", level=body["level"], first_level=rating.level)
            return self.rating_view(tx, principal, rating), True

        return once(store, step)

    @staticmethod
    def _records_follow_up(principal: auth.Principal, rating: Rating) -> bool:
        if principal.role == "supervisor":  # at the callback, by phone
            return can_see_rating(principal, rating)
        return records_for(principal, rating.town)

    # --- reading ratings ----------------------------------------------------------------------------

    def rating(self, tx: Tx, principal: auth.Principal, rating_id: int) -> dict:
        r = Ratings(tx.session).get(rating_id)
        if r is None or not can_see_rating(principal, r):
            raise NotVisible(f"no rating {rating_id}")
        return self.rating_view(tx, principal, r)

    def ratings(self, tx: Tx, principal: auth.Principal, query: dict) -> list[dict]:
        """Ratings the caller may see, newest first: ?case_number=&town=&department=&level="""
        level = _int_query(query, "level", 1, 5)
        limit = _int_query(query, "limit", 1, LIST_LIMIT) or LIST_LIMIT
        town, department = query.get("town") or None, query.get("department") or None
        scope = principal.scope
        if scope.kind == "town":
            if town not in (None, scope.town):
                return []
            town = scope.town
        elif scope.kind == "department":
            if department not in (None, scope.department):
                return []
            department = scope.department
        elif scope.kind != "city":
            raise NotPermitted(f"no ratings for scope {scope}")
        rows = [r for r in Ratings(tx.session).listed(town=town, case_number=query.get("case_number") or None,
                                                      department=department, level=level, limit=limit)
                if can_see_rating(principal, r)]
        rects = Rectifications(tx.session).of_ratings(r.id for r in rows)
        appeals = Appeals(tx.session).of_ratings(r.id for r in rows)
        return [rating_view(r, rects.get(r.id), appeals.get(r.id), principal.role == "supervisor") for r in rows]

    def rating_view(self, tx: Tx, principal: auth.Principal, r: Rating) -> dict:
        return rating_view(r, Rectifications(tx.session).of_rating(r.id), Appeals(tx.session).of_rating(r.id),
                           principal.role == "supervisor")

    # --- rectifications (整改) ---------------------------------------------------------------------

    def rectifications(self, tx: Tx, principal: auth.Principal, query: dict) -> dict:
        """Rectifications the caller may see, overdue first; ?state= one state, or `all` (default: not closed)."""
        wanted = query.get("state") or None
        if wanted == "all":
            states = list(RectState)
        elif wanted is None:
            states = [s for s in RectState if s != RectState.CLOSED]
        elif wanted in set(RectState):
            states = [RectState(wanted)]
        else:
            raise RuleViolation(f"unknown state {wanted!r}", {"state": [*map(str, RectState), "all"]})
        today = self.clock.today()
        views = [rect_view(rect, rating, today, self.calendar)
                 for rect, rating in Rectifications(tx.session).listed(states) if can_see_rating(principal, rating)]
        views.sort(key=lambda v: rules.overdue_first(v["overdue"] is not None, v["next_due"], v["id"]))
        return {"today": today, "rectifications": views}

    def _rect(self, tx: Tx, principal: auth.Principal, rect_id: int) -> tuple[Rectification, Rating]:
        rect = Rectifications(tx.session).get(rect_id, for_update=True)
        rating = rect and Ratings(tx.session).get(rect.rating_id)
        if rect is None or not can_see_rating(principal, rating):
            raise NotVisible(f"no rectification {rect_id}")
        bind_context(case_number=rect.case_number, town=rating.town)
        return rect, rating

    def callback(self, tx: Tx, principal: auth.Principal, rect_id: int, body: dict) -> dict:
        """回访: the rater called back (due within 1 working day of the rating)."""
        rect, rating = self._rect(tx, principal, rect_id)
        to = rules.rect_step(rect.state, "callback")
        now = self.clock.now()
        at = body.get("at") or now
        rules.check_callback_time(at, as_utc(rating.rated_at), now)
        rect.state, rect.called_back_at, rect.called_back_by = to, at, body["by"]
        rect.callback_notes, rect.callback_recorded_by = body["notes"], principal.subject
        log.info("rectification.called_back", on_time=today_in_shanghai(at) <= rect.callback_due)
        return rect_view(rect, rating, self.clock.today(), self.calendar)

    def rectify(self, tx: Tx, principal: auth.Principal, rect_id: int, body: dict) -> dict:
        """整改: the measures taken (after the callback); the rater's follow-up is awaited."""
        rect, rating = self._rect(tx, principal, rect_id)
        rect.state = rules.rect_step(rect.state, "rectify")
        rect.measures, rect.rectified_at, rect.rectified_by = body["measures"], self.clock.now(), principal.subject
        if self.figures is not None:  # the bad rating's rectification rate counts it in the rating's month
            self.figures.on_rectification_closed(tx, str(rating.id), rectified=True)
        log.info("rectification.rectified", on_time=self.clock.today() <= rect.rectify_due)
        return rect_view(rect, rating, self.clock.today(), self.calendar)

    def close_declined(self, tx: Tx, principal: auth.Principal, rect_id: int, body: dict) -> dict:
        """The rater declined to rate again: closed after the rectification, without a follow-up."""
        rect, rating = self._rect(tx, principal, rect_id)
        rect.state = rules.rect_step(rect.state, "decline")
        rect.closed_at, rect.closed_reason, rect.close_note = self.clock.now(), CloseReason.DECLINED, body["note"]
        log.info("rectification.closed", reason=rect.closed_reason)
        return rect_view(rect, rating, self.clock.today(), self.calendar)

    # --- appeals (申诉复核) ------------------------------------------------------------------------

    def appeal(self, store: Store, principal: auth.Principal, rating_id: int, body: dict) -> dict:
        def step(tx: Tx):
            rating = Ratings(tx.session).get(rating_id, for_update=True)
            if rating is None or not can_see_rating(principal, rating):
                raise NotVisible(f"no rating {rating_id}")
            bind_context(case_number=rating.case_number, town=rating.town)
            rules.check_appeal(principal.role, principal.scope.kind, rating.bad, rating.void,
                               Appeals(tx.session).of_rating(rating.id) is not None)
            appeal = Appeal(rating_id=rating.id, reason=body["reason"], appellant=principal.subject,
                            appellant_role=principal.role, appealed_at=self.clock.now(), status=AppealStatus.PENDING)
            Appeals(tx.session).add(appeal)
            log.info("rating.appealed", rating_id=rating.id)
            return appeal_view(appeal, rating)

        return once(store, step)

    def decide_appeal(self, tx: Tx, principal: auth.Principal, appeal_id: int, body: dict) -> dict:
        """A supervisor decides: upheld voids the rating (kept, marked, out of the figures) and closes its
        rectification; rejected leaves both as they are."""
        appeal = Appeals(tx.session).get(appeal_id, for_update=True)
        rating = appeal and Ratings(tx.session).get(appeal.rating_id, for_update=True)
        if appeal is None or not can_see_rating(principal, rating):
            raise NotVisible(f"no appeal {appeal_id}")
        bind_context(case_number=rating.case_number, town=rating.town)
        rules.check_appeal_decision(appeal.status, appeal.appellant, principal.subject)
        now = self.clock.now()
        appeal.status, appeal.decision_reason = AppealStatus(body["outcome"]), body["reason"]
        appeal.decided_by, appeal.decided_at = principal.subject, now
        if appeal.status == AppealStatus.UPHELD:
            rating.void, rating.voided_at, rating.void_reason = True, now, body["reason"]
            if self.figures is not None:
                self.figures.on_rating_voided(tx, str(rating.id))
            rect = Rectifications(tx.session).of_rating(rating.id, for_update=True)
            if rect is not None and rect.state != RectState.CLOSED:
                rect.state = rules.rect_step(rect.state, "void")
                rect.closed_at, rect.closed_reason = now, CloseReason.APPEAL_UPHELD
        log.info("rating.appeal_decided", outcome=appeal.status)
        return appeal_view(appeal, rating)

    def appeals(self, tx: Tx, principal: auth.Principal, query: dict) -> list[dict]:
        """Appeals the caller may see, oldest first; ?status=pending (default) | upheld | rejected | all."""
        status = query.get("status") or AppealStatus.PENDING
        if status != "all" and status not in set(AppealStatus):
            raise RuleViolation(f"unknown status {status!r}", {"status": [*map(str, AppealStatus), "all"]})
        return [appeal_view(a, r) for a, r in Appeals(tx.session).listed(None if status == "all" else status)
                if can_see_rating(principal, r)]


# --- views --------------------------------------------------------------------------------------------

def rating_view(r: Rating, rect: Rectification | None, appeal: Appeal | None, show_rater: bool) -> dict:
    """A rating as the caller may see it: the rater (and the device or service that recorded it) only for a
    supervisor, with the phone masked; the staff rated and their department heads never see who rated."""
    out = {
        "id": r.id, "case_number": r.case_number, "stage": r.stage, "level": r.level,
        "level_name": rules.LEVELS[r.level], "bad": r.bad, "channel": r.channel, "comment": r.comment,
        "kind": r.kind, "town": r.town, "window": r.window, "handling_town": r.handling_town, "staff": r.staff,
        "department": r.department, "departments": r.departments or [], "village": r.village,
        "rated_at": as_utc(r.rated_at), "rated_on": r.rated_on, "void": r.void, "voided_at": as_utc(r.voided_at),
        "void_reason": r.void_reason,
        "follow_up": None if r.follow_up_level is None else {
            "level": r.follow_up_level, "level_name": rules.LEVELS[r.follow_up_level], "channel": r.follow_up_channel,
            "at": as_utc(r.followed_up_at)},
        "rectification_id": rect.id if rect else None, "rectification_state": rect.state if rect else None,
        "appeal_id": appeal.id if appeal else None, "appeal_status": appeal.status if appeal else None}
    if show_rater:
        out["rater"] = ({"name": r.rater_name, "phone": mask_phone(r.rater_phone) if r.rater_phone else None}
                        if r.rater_name or r.rater_phone else None)
        out["recorded_by"] = r.recorded_by
    return out


def rect_view(rect: Rectification, rating: Rating, today, calendar: WorkingCalendar) -> dict:
    due = rules.next_due(rect.state, rect.callback_due, rect.rectify_due)
    return {
        "id": rect.id, "rating_id": rect.rating_id, "case_number": rect.case_number, "level": rating.level,
        "town": rating.town, "department": rating.department, "staff": rating.staff, "state": rect.state,
        "opened_on": rect.opened_on, "callback_due": rect.callback_due, "rectify_due": rect.rectify_due,
        "next_due": due, "days_left": calendar.working_days_between(today, due) if due else None,
        "overdue": rules.rectification_overdue(rect.state, rect.callback_due, rect.rectify_due, today),
        "called_back_at": as_utc(rect.called_back_at), "called_back_by": rect.called_back_by,
        "callback_notes": rect.callback_notes, "measures": rect.measures, "rectified_at": as_utc(rect.rectified_at),
        "rectified_by": rect.rectified_by, "closed_at": as_utc(rect.closed_at), "closed_reason": rect.closed_reason,
        "close_note": rect.close_note, "follow_up_level": rating.follow_up_level}


def appeal_view(a: Appeal, r: Rating) -> dict:
    return {"id": a.id, "rating_id": a.rating_id, "case_number": r.case_number, "level": r.level,
            "reason": a.reason, "appellant": a.appellant, "appealed_at": as_utc(a.appealed_at), "status": a.status,
            "decided_by": a.decided_by, "decided_at": as_utc(a.decided_at), "decision_reason": a.decision_reason}


def as_utc(at: datetime | None) -> datetime | None:
    # SQLite gives stored times back without their zone: they are UTC (shared.db stores UTC)
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


def _int_query(query: dict, name: str, low: int, high: int) -> int | None:
    raw = query.get(name)
    if raw in (None, ""):
        return None
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise RuleViolation(f"{name} must be a whole number from {low} to {high}", {name: [raw]})
    return value
