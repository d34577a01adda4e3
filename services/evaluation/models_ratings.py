"""好差评 ratings, their rectifications (整改) and appeals (申诉复核), and 有诉即办 complaints: tables behind
small repositories. The monthly figures read these tables directly (same database): a void rating stays,
marked `void`, and is left out of them."""
from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from services.evaluation.models import Base
from services.evaluation.rating_rules import ComplaintStatus, RectState


class Rating(Base):
    """One rating of a case at one stage, tied to what the case read model says: the window (the accepting
    town's centre), its staff (首问负责人), the town, the lead department and the village station."""

    __tablename__ = "ratings"
    __table_args__ = (sa.UniqueConstraint("case_number", "slot"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    request_key: Mapped[str | None] = mapped_column(sa.String(64), unique=True)  # Idempotency-Key, per sender
    case_number: Mapped[str] = mapped_column(sa.String(40), nullable=False, index=True)
    slot: Mapped[str] = mapped_column(sa.String(20), nullable=False)  # the stage, or "once" (rating_rules)
    stage: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    level: Mapped[int] = mapped_column(sa.Integer, nullable=False, index=True)  # 1 非常满意 … 5 非常不满意
    bad: Mapped[bool] = mapped_column(sa.Boolean, nullable=False)
    channel: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    comment: Mapped[str | None] = mapped_column(sa.String(1000))
    rater_name: Mapped[str | None] = mapped_column(sa.String(100))  # shown to supervisors only
    rater_phone: Mapped[str | None] = mapped_column(sa.String(20))  # shown to supervisors only, masked
    recorded_by: Mapped[str] = mapped_column(sa.String(64), nullable=False)  # the device's or service's token
    kind: Mapped[str | None] = mapped_column(sa.String(20))
    town: Mapped[str] = mapped_column(sa.String(9), nullable=False, index=True)  # the accepting town
    window: Mapped[str] = mapped_column(sa.String(40), nullable=False)  # the accepting centre's window
    handling_town: Mapped[str | None] = mapped_column(sa.String(9))  # "city" for a city bureau's case
    staff: Mapped[str | None] = mapped_column(sa.String(64), index=True)  # the first responder
    department: Mapped[str | None] = mapped_column(sa.String(40), index=True)  # the lead (deciding) department
    departments: Mapped[list] = mapped_column(sa.JSON, nullable=False, default=list)
    village: Mapped[str | None] = mapped_column(sa.String(12))
    via_agent: Mapped[str | None] = mapped_column(sa.String(64))
    rated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)
    rated_on: Mapped[date] = mapped_column(sa.Date, nullable=False, index=True)  # Asia/Shanghai
    void: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)
    voided_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    void_reason: Mapped[str | None] = mapped_column(sa.String(1000))
    follow_up_level: Mapped[int | None] = mapped_column(sa.Integer)
    follow_up_channel: Mapped[str | None] = mapped_column(sa.String(20))
    followed_up_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    follow_up_key: Mapped[str | None] = mapped_column(sa.String(64))


class Rectification(Base):
    """整改 of one bad rating: callback (回访) and rectification due in working days, then closed."""

    __tablename__ = "rectifications"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    rating_id: Mapped[int] = mapped_column(sa.ForeignKey("ratings.id"), nullable=False, unique=True)
    case_number: Mapped[str] = mapped_column(sa.String(40), nullable=False)
    state: Mapped[str] = mapped_column(sa.String(20), nullable=False, index=True)
    opened_on: Mapped[date] = mapped_column(sa.Date, nullable=False)
    callback_due: Mapped[date] = mapped_column(sa.Date, nullable=False)
    rectify_due: Mapped[date] = mapped_column(sa.Date, nullable=False, index=True)
    called_back_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    called_back_by: Mapped[str | None] = mapped_column(sa.String(100))
    callback_notes: Mapped[str | None] = mapped_column(sa.String(2000))
    callback_recorded_by: Mapped[str | None] = mapped_column(sa.String(64))
    measures: Mapped[str | None] = mapped_column(sa.String(2000))
    rectified_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    rectified_by: Mapped[str | None] = mapped_column(sa.String(64))
    closed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    closed_reason: Mapped[str | None] = mapped_column(sa.String(20))
    close_note: Mapped[str | None] = mapped_column(sa.String(1000))


class Appeal(Base):
    """申诉复核 of one bad rating, decided by a supervisor."""

    __tablename__ = "rating_appeals"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    rating_id: Mapped[int] = mapped_column(sa.ForeignKey("ratings.id"), nullable=False, unique=True)
    reason: Mapped[str] = mapped_column(sa.String(2000), nullable=False)
    appellant: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    appellant_role: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    appealed_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)
    status: Mapped[str] = mapped_column(sa.String(20), nullable=False, index=True)
    decided_by: Mapped[str | None] = mapped_column(sa.String(64))
    decided_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    decision_reason: Mapped[str | None] = mapped_column(sa.String(2000))


class Complaint(Base):
    """有诉即办: a complaint accepted at once, acknowledged, assigned and resolved by its due date."""

    __tablename__ = "complaints"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(sa.String(40), nullable=False, unique=True)
    request_key: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    town: Mapped[str] = mapped_column(sa.String(9), nullable=False, index=True)
    channel: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    subject: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    text: Mapped[str] = mapped_column(sa.String(4000), nullable=False)
    case_number: Mapped[str | None] = mapped_column(sa.String(40), index=True)
    staff: Mapped[str | None] = mapped_column(sa.String(64))
    department: Mapped[str | None] = mapped_column(sa.String(40), index=True)
    department_town: Mapped[str | None] = mapped_column(sa.String(9))  # the office's town; None: a city bureau
    complainant_name: Mapped[str] = mapped_column(sa.String(100), nullable=False)
    complainant_phone: Mapped[str] = mapped_column(sa.String(20), nullable=False)  # never listed unmasked
    status: Mapped[str] = mapped_column(sa.String(20), nullable=False, index=True)
    recorded_by: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    received_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)
    received_on: Mapped[date] = mapped_column(sa.Date, nullable=False, index=True)
    due: Mapped[date] = mapped_column(sa.Date, nullable=False, index=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    acknowledged_by: Mapped[str | None] = mapped_column(sa.String(64))
    assigned_to: Mapped[str | None] = mapped_column(sa.String(64))
    assigned_by: Mapped[str | None] = mapped_column(sa.String(64))
    assigned_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    resolution: Mapped[str | None] = mapped_column(sa.String(4000))
    resolved_by: Mapped[str | None] = mapped_column(sa.String(64))
    resolved_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    resolved_on: Mapped[date | None] = mapped_column(sa.Date)


class Ratings:
    def __init__(self, session: Session):
        self.s = session

    def add(self, rating: Rating) -> None:
        self.s.add(rating)
        self.s.flush()  # its id, and a clash of slot or key raised here, inside the transaction

    def get(self, rating_id: int, for_update: bool = False) -> Rating | None:
        q = sa.select(Rating).where(Rating.id == rating_id)
        return self.s.scalars(q.with_for_update() if for_update else q).first()

    def by_request_key(self, key: str) -> Rating | None:
        return self.s.scalars(sa.select(Rating).where(Rating.request_key == key)).first()

    def slots(self, case_number: str) -> set[str]:
        return set(self.s.scalars(sa.select(Rating.slot).where(Rating.case_number == case_number)))

    def listed(self, *, town: str | None = None, case_number: str | None = None, department: str | None = None,
               level: int | None = None, limit: int = 500) -> list[Rating]:
        q = sa.select(Rating)
        if town is not None:
            q = q.where(sa.or_(Rating.town == town, Rating.handling_town == town))
        if case_number is not None:
            q = q.where(Rating.case_number == case_number)
        if department is not None:
            q = q.where(Rating.department == department)
        if level is not None:
            q = q.where(Rating.level == level)
        return list(self.s.scalars(q.order_by(Rating.rated_at.desc(), Rating.id.desc()).limit(limit)))


class Rectifications:
    def __init__(self, session: Session):
        self.s = session

    def add(self, rect: Rectification) -> None:
        self.s.add(rect)
        self.s.flush()

    def get(self, rect_id: int, for_update: bool = False) -> Rectification | None:
        q = sa.select(Rectification).where(Rectification.id == rect_id)
        return self.s.scalars(q.with_for_update() if for_update else q).first()

    def of_rating(self, rating_id: int, for_update: bool = False) -> Rectification | None:
        q = sa.select(Rectification).where(Rectification.rating_id == rating_id)
        return self.s.scalars(q.with_for_update() if for_update else q).first()

    def of_ratings(self, rating_ids) -> dict[int, Rectification]:
        ids = list(rating_ids)
        if not ids:
            return {}
        return {r.rating_id: r for r in self.s.scalars(sa.select(Rectification)
                                                      .where(Rectification.rating_id.in_(ids)))}

    def listed(self, states) -> list[tuple[Rectification, Rating]]:
        q = (sa.select(Rectification, Rating).join(Rating, Rating.id == Rectification.rating_id)
             .where(Rectification.state.in_([str(s) for s in states])))
        return [(r, g) for r, g in self.s.execute(q).all()]

    def open_by_town(self) -> dict[tuple[str, str], int]:
        """(town, state) -> rectifications not closed yet (open, called back, rectified awaiting the follow-up)."""
        q = (sa.select(Rating.town, Rectification.state, sa.func.count()).select_from(Rectification)
             .join(Rating, Rating.id == Rectification.rating_id)
             .where(Rectification.state != RectState.CLOSED).group_by(Rating.town, Rectification.state))
        return {(t, str(s)): n for t, s, n in self.s.execute(q).all()}

    def overdue_by_town(self, today: date) -> dict[str, int]:
        """Open rectifications past a due date (the callback's while open, the rectification's until done)."""
        late = sa.or_(sa.and_(Rectification.state == RectState.OPEN, Rectification.callback_due < today),
                      sa.and_(Rectification.state.in_([RectState.OPEN, RectState.CALLED_BACK]),
                              Rectification.rectify_due < today))
        q = (sa.select(Rating.town, sa.func.count()).select_from(Rectification)
             .join(Rating, Rating.id == Rectification.rating_id)
             .where(late).group_by(Rating.town))
        return {t: n for t, n in self.s.execute(q).all()}


class Appeals:
    def __init__(self, session: Session):
        self.s = session

    def add(self, appeal: Appeal) -> None:
        self.s.add(appeal)
        self.s.flush()

    def get(self, appeal_id: int, for_update: bool = False) -> Appeal | None:
        q = sa.select(Appeal).where(Appeal.id == appeal_id)
        return self.s.scalars(q.with_for_update() if for_update else q).first()

    def of_rating(self, rating_id: int) -> Appeal | None:
        return self.s.scalars(sa.select(Appeal).where(Appeal.rating_id == rating_id)).first()

    def of_ratings(self, rating_ids) -> dict[int, Appeal]:
        ids = list(rating_ids)
        if not ids:
            return {}
        return {a.rating_id: a for a in self.s.scalars(sa.select(Appeal).where(Appeal.rating_id.in_(ids)))}

    def listed(self, status: str | None) -> list[tuple[Appeal, Rating]]:
        q = sa.select(Appeal, Rating).join(Rating, Rating.id == Appeal.rating_id)
        if status is not None:
            q = q.where(Appeal.status == status)
        return [(a, r) for a, r in self.s.execute(q.order_by(Appeal.appealed_at, Appeal.id)).all()]


class Complaints:
    def __init__(self, session: Session):
        self.s = session

    def add(self, complaint: Complaint) -> None:
        self.s.add(complaint)
        self.s.flush()

    def get(self, number: str, for_update: bool = False) -> Complaint | None:
        q = sa.select(Complaint).where(Complaint.number == number)
        return self.s.scalars(q.with_for_update() if for_update else q).first()

    def by_request_key(self, key: str) -> Complaint | None:
        return self.s.scalars(sa.select(Complaint).where(Complaint.request_key == key)).first()

    def next_seq(self, town: str, day: date) -> int:
        n = self.s.execute(sa.select(sa.func.count()).select_from(Complaint)
                           .where(Complaint.town == town, Complaint.received_on == day)).scalar_one()
        return n + 1

    def listed(self, *, town: str | None = None, status: str | None = None, open_only: bool = False,
               limit: int = 1000) -> list[Complaint]:
        q = sa.select(Complaint)
        if town is not None:
            q = q.where(Complaint.town == town)
        if status is not None:
            q = q.where(Complaint.status == status)
        if open_only:
            q = q.where(Complaint.status != ComplaintStatus.RESOLVED)
        return list(self.s.scalars(q.order_by(Complaint.due, Complaint.number).limit(limit)))

    def open_by_town(self) -> dict[tuple[str, str], int]:
        """(town, status) -> complaints not resolved yet."""
        q = (sa.select(Complaint.town, Complaint.status, sa.func.count())
             .where(Complaint.status != ComplaintStatus.RESOLVED).group_by(Complaint.town, Complaint.status))
        return {(t, str(s)): n for t, s, n in self.s.execute(q).all()}

    def overdue_by_town(self, today: date) -> dict[str, int]:
        q = (sa.select(Complaint.town, sa.func.count())
             .where(Complaint.status != ComplaintStatus.RESOLVED, Complaint.due < today).group_by(Complaint.town))
        return {t: n for t, n in self.s.execute(q).all()}
