"""The case ledger (受理台帐): storage behind a small repository."""
from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from services.intake import domain


class Base(DeclarativeBase):
    pass


class Case(Base):
    __tablename__ = "cases"

    case_number: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    version: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    accepting_town: Mapped[str] = mapped_column(sa.String(9), nullable=False, index=True)
    handling_town: Mapped[str] = mapped_column(sa.String(9), nullable=False)
    item_code: Mapped[str] = mapped_column(sa.String(32), nullable=False, index=True)
    item_name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    catalog_version: Mapped[str] = mapped_column(sa.String(32), nullable=False)
    kind: Mapped[str] = mapped_column(sa.String(20), nullable=False, index=True)
    department: Mapped[str] = mapped_column(sa.String(32), nullable=False)
    status: Mapped[str] = mapped_column(sa.String(20), nullable=False, index=True)
    outcome: Mapped[str | None] = mapped_column(sa.String(20))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    result_number: Mapped[str | None] = mapped_column(sa.String(100))
    applicant_name: Mapped[str] = mapped_column(sa.String(100), nullable=False)
    applicant_id: Mapped[str] = mapped_column(sa.String(18), nullable=False)
    applicant_phone: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    contact_channel: Mapped[str] = mapped_column(sa.String(10), nullable=False)
    first_responder: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    via_agent: Mapped[str | None] = mapped_column(sa.String(64))
    accepted_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)
    accepted_on: Mapped[date] = mapped_column(sa.Date, nullable=False)
    deadline: Mapped[date] = mapped_column(sa.Date, nullable=False, index=True)
    deadline_provisional: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)
    completed_on: Mapped[date | None] = mapped_column(sa.Date)
    request_key: Mapped[str | None] = mapped_column(sa.String(100), unique=True)


class CaseAction(Base):
    """Append-only history: who did what, when and why; hash-chained per case."""

    __tablename__ = "case_actions"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    case_number: Mapped[str] = mapped_column(sa.ForeignKey("cases.case_number"), nullable=False, index=True)
    seq: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    action: Mapped[str] = mapped_column(sa.String(40), nullable=False)
    actor: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)
    reason: Mapped[str | None] = mapped_column(sa.Text)
    data: Mapped[dict] = mapped_column(sa.JSON, nullable=False, default=dict)
    idempotency_key: Mapped[str] = mapped_column(sa.String(100), nullable=False, unique=True)
    prev_hash: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    hash: Mapped[str] = mapped_column(sa.String(64), nullable=False)

    __table_args__ = (sa.UniqueConstraint("case_number", "seq"),)


class DailySequence(Base):
    __tablename__ = "daily_sequences"

    town: Mapped[str] = mapped_column(sa.String(9), primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    last: Mapped[int] = mapped_column(sa.Integer, nullable=False)


class Ledger:
    """Repository over the case ledger for one transaction's session."""

    def __init__(self, session: Session):
        self.s = session

    def next_case_number(self, town: str, day: date) -> str:
        seq = self.s.get(DailySequence, (town, day), with_for_update=True)
        if seq is None:
            seq = DailySequence(town=town, day=day, last=0)
            self.s.add(seq)
        seq.last += 1
        self.s.flush()
        return domain.case_number(town, day, seq.last)

    def get(self, case_number: str, for_update: bool = False) -> Case | None:
        return self.s.get(Case, case_number, with_for_update=for_update)

    def by_request_key(self, key: str) -> Case | None:
        return self.s.scalars(sa.select(Case).where(Case.request_key == key)).first()

    def add(self, case: Case) -> None:
        self.s.add(case)
        self.s.flush()

    def append(self, case: Case, action: str, actor: str, at: datetime, idempotency_key: str,
               reason: str | None = None, data: dict | None = None) -> CaseAction:
        last = self.s.scalars(sa.select(CaseAction).where(CaseAction.case_number == case.case_number)
                              .order_by(CaseAction.seq.desc()).limit(1)).first()
        seq = (last.seq + 1) if last else 1
        prev = last.hash if last else domain.GENESIS_HASH
        record = {"case_number": case.case_number, "seq": seq, "action": action, "actor": actor,
                  "at": at.isoformat(), "reason": reason, "data": data or {}}
        entry = CaseAction(case_number=case.case_number, seq=seq, action=action, actor=actor, at=at,
                           reason=reason, data=data or {}, idempotency_key=idempotency_key,
                           prev_hash=prev, hash=domain.action_hash(prev, record))
        self.s.add(entry)
        self.s.flush()
        return entry

    def history(self, case_number: str) -> list[CaseAction]:
        return list(self.s.scalars(sa.select(CaseAction).where(CaseAction.case_number == case_number)
                                   .order_by(CaseAction.seq)))

    def list(self, towns: set[str] | None, status: str | None = None, kind: str | None = None,
             item_code: str | None = None, limit: int = 100, offset: int = 0) -> list[Case]:
        q = sa.select(Case).order_by(Case.accepted_at.desc(), Case.case_number.desc())
        if towns is not None:
            q = q.where(Case.accepting_town.in_(towns))
        if status:
            q = q.where(Case.status == status)
        if kind:
            q = q.where(Case.kind == kind)
        if item_code:
            q = q.where(Case.item_code == item_code)
        return list(self.s.scalars(q.limit(limit).offset(offset)))

    def counts(self) -> dict:
        rows = self.s.execute(sa.select(Case.status, Case.outcome, Case.kind, sa.func.count())
                              .group_by(Case.status, Case.outcome, Case.kind)).all()
        out = {"accepted": 0, "completed": 0, "approved": 0, "refused": 0, "by_kind": {}}
        for status, outcome, kind, n in rows:
            out["accepted"] += n
            out["by_kind"][kind] = out["by_kind"].get(kind, 0) + n
            if status == "completed":
                out["completed"] += n
            if outcome in ("approved", "refused"):
                out[outcome] += n
        return out
