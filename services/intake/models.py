"""The case ledger (受理台帐): storage behind a small repository."""
from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from services.intake import domain
from shared import db, s10


class Base(db.Base):
    """The intake database's tables: the shared declarative base, this database's own metadata."""

    __abstract__ = True
    metadata = db.service_metadata()


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
    applicant_type: Mapped[str] = mapped_column(sa.String(12), nullable=False, default="person")
    applicant_town: Mapped[str | None] = mapped_column(sa.String(9))
    departments: Mapped[list] = mapped_column(sa.JSON, nullable=False, default=list)
    # departments no approval instance consumed work for when the case was routed (its work waits)
    unserved_departments: Mapped[list | None] = mapped_column(sa.JSON)
    routed_version: Mapped[int | None] = mapped_column(sa.Integer)
    missing: Mapped[list] = mapped_column(sa.JSON, nullable=False, default=list)
    deferred: Mapped[list] = mapped_column(sa.JSON, nullable=False, default=list)
    deferred_due: Mapped[date | None] = mapped_column(sa.Date)
    was_supplement: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)
    clock_started_on: Mapped[date | None] = mapped_column(sa.Date)
    paused_from: Mapped[date | None] = mapped_column(sa.Date)
    pause_procedure: Mapped[str | None] = mapped_column(sa.String(20))
    extended_days: Mapped[int | None] = mapped_column(sa.Integer)
    review_of: Mapped[str | None] = mapped_column(sa.String(40))
    review_case: Mapped[str | None] = mapped_column(sa.String(40))
    advice: Mapped[str | None] = mapped_column(sa.Text)
    outcome: Mapped[str | None] = mapped_column(sa.String(20))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    result_number: Mapped[str | None] = mapped_column(sa.String(100))
    applicant_name: Mapped[str] = mapped_column(sa.String(100), nullable=False)
    applicant_id: Mapped[str] = mapped_column(sa.String(18), nullable=False)
    applicant_phone: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    contact_channel: Mapped[str] = mapped_column(sa.String(10), nullable=False)
    first_responder: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    first_responder_name: Mapped[str | None] = mapped_column(sa.String(50))  # as the notices print it
    via_agent: Mapped[str | None] = mapped_column(sa.String(64))
    accepted_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)
    accepted_on: Mapped[date] = mapped_column(sa.Date, nullable=False)
    deadline: Mapped[date | None] = mapped_column(sa.Date, nullable=True, index=True)
    deadline_provisional: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)
    completed_on: Mapped[date | None] = mapped_column(sa.Date)
    request_key: Mapped[str | None] = mapped_column(sa.String(100), unique=True)
    village: Mapped[str | None] = mapped_column(sa.String(12))  # the village station it came from
    station_submission: Mapped[str | None] = mapped_column(sa.String(40))  # the station's record number
    delivery: Mapped[str | None] = mapped_column(sa.String(10))  # the result: pickup (here) | mail (EMS)
    mail_address: Mapped[str | None] = mapped_column(sa.Text)  # kept only when the result goes by mail
    # 查询码: only its salted hash (services.intake.query_codes); the plaintext is never stored
    query_code_hash: Mapped[str | None] = mapped_column(sa.String(120))
    # the plaintext of a code issued in this request (not a column): the answer that opens the case or issues a
    # new code carries it once, to be printed on the notice
    issued_query_code = None


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


class DepartmentDecision(Base):
    """Each department's decision on a case (one for most, several for a joint case 联办件)."""

    __tablename__ = "department_decisions"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    case_number: Mapped[str] = mapped_column(sa.ForeignKey("cases.case_number"), nullable=False, index=True)
    department: Mapped[str] = mapped_column(sa.String(32), nullable=False)
    outcome: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    reason: Mapped[str | None] = mapped_column(sa.Text)
    result_number: Mapped[str | None] = mapped_column(sa.String(100))
    decided_by: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    decided_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)

    __table_args__ = (sa.UniqueConstraint("case_number", "department"),)


class Notice(Base):
    """A notice (文书) the centre issued: its data, so the PDF can be printed again at any time."""

    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    case_number: Mapped[str] = mapped_column(sa.ForeignKey("cases.case_number"), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    issued_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)
    sms_text: Mapped[str] = mapped_column(sa.Text, nullable=False)
    data: Mapped[dict] = mapped_column(sa.JSON, nullable=False)


class DailySequence(Base):
    __tablename__ = "daily_sequences"

    town: Mapped[str] = mapped_column(sa.String(9), primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    last: Mapped[int] = mapped_column(sa.Integer, nullable=False)


def _jsonable(data: dict) -> dict:
    return {k: (v.isoformat() if isinstance(v, (date, datetime)) else v) for k, v in data.items()}


class Waybill(Base):
    """An EMS waybill (邮政运单) for a result sent by mail: its tracking number is shown on the case and in the
    result notice."""

    __tablename__ = "waybills"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    case_number: Mapped[str] = mapped_column(sa.ForeignKey("cases.case_number"), nullable=False, unique=True)
    tracking_number: Mapped[str] = mapped_column(sa.String(20), nullable=False, unique=True)
    address: Mapped[str] = mapped_column(sa.Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)


class Transfer(Base):
    """全城通办 (收受分离): a case another town's centre accepted that this town's department offices handle, as
    the accepting centre last told (case.transfer). The ledger stays with the accepting centre."""

    __tablename__ = "transfers"

    case_number: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    version: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    accepting_town: Mapped[str] = mapped_column(sa.String(9), nullable=False)
    handling_town: Mapped[str] = mapped_column(sa.String(9), nullable=False, index=True)
    item_code: Mapped[str] = mapped_column(sa.String(32), nullable=False)
    item_name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    department: Mapped[str] = mapped_column(sa.String(32), nullable=False)
    kind: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    status: Mapped[str] = mapped_column(sa.String(20), nullable=False, index=True)
    deadline: Mapped[date | None] = mapped_column(sa.Date)
    accepted_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)
    first_responder: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    delivery: Mapped[str | None] = mapped_column(sa.String(10))
    outcome: Mapped[str | None] = mapped_column(sa.String(20))
    completed_on: Mapped[date | None] = mapped_column(sa.Date)
    tracking_number: Mapped[str | None] = mapped_column(sa.String(20))
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)


class Ledger:
    """Repository over the case ledger for one transaction's session."""

    def __init__(self, session: Session):
        self.s = session

    def next_case_number(self, town: str, day: date) -> str:
        """The day's next number, safe under concurrent requests: the (town, day) row is created if
        absent (a concurrent creator's row wins, no error), then counted up in one atomic UPDATE,
        which holds the row until this transaction ends, so numbers are unique and have no gaps."""
        insert = db.dialect_insert(self.s)
        self.s.execute(insert(DailySequence).values(town=town, day=day, last=0)
                       .on_conflict_do_nothing(index_elements=["town", "day"]))
        last = self.s.execute(sa.update(DailySequence)
                              .where(DailySequence.town == town, DailySequence.day == day)
                              .values(last=DailySequence.last + 1)
                              .returning(DailySequence.last)
                              .execution_options(synchronize_session=False)).scalar_one()
        return domain.case_number(town, day, last)

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
        data = _jsonable(data or {})
        record = domain.history_record(case.case_number, seq, action, actor, at, reason, data)
        entry = CaseAction(case_number=case.case_number, seq=seq, action=action, actor=actor, at=at,
                           reason=reason, data=data, idempotency_key=idempotency_key,
                           prev_hash=prev, hash=domain.action_hash(prev, record))
        self.s.add(entry)
        self.s.flush()
        return entry

    def has_action(self, idempotency_key: str) -> bool:
        return self.s.scalars(sa.select(CaseAction.id).where(CaseAction.idempotency_key == idempotency_key)
                              ).first() is not None

    def decisions(self, case_number: str) -> list[DepartmentDecision]:
        return list(self.s.scalars(sa.select(DepartmentDecision)
                                   .where(DepartmentDecision.case_number == case_number)
                                   .order_by(DepartmentDecision.id)))

    def add_decision(self, decision: DepartmentDecision) -> None:
        self.s.add(decision)
        self.s.flush()

    def add_notice(self, notice: Notice) -> Notice:
        self.s.add(notice)
        self.s.flush()
        return notice

    def notices(self, case_number: str) -> list[Notice]:
        return list(self.s.scalars(sa.select(Notice).where(Notice.case_number == case_number).order_by(Notice.id)))

    def notice(self, case_number: str, notice_id: int) -> Notice | None:
        n = self.s.get(Notice, notice_id)
        return n if n is not None and n.case_number == case_number else None

    def all_case_numbers(self) -> list[str]:
        return list(self.s.scalars(sa.select(Case.case_number).order_by(Case.case_number)))

    def provisional(self) -> list[Case]:
        return list(self.s.scalars(sa.select(Case).where(Case.deadline_provisional.is_(True),
                                                         Case.status.in_(("in_review", "paused", "initial_review")))))

    def history(self, case_number: str) -> list[CaseAction]:
        return list(self.s.scalars(sa.select(CaseAction).where(CaseAction.case_number == case_number)
                                   .order_by(CaseAction.seq)))

    def list(self, towns: set[str] | None, status: str | None = None, kind: str | None = None,
             item_code: str | None = None, limit: int = 100, offset: int = 0, due_by: date | None = None,
             overdue_on: date | None = None) -> list[Case]:
        q = sa.select(Case).order_by(Case.accepted_at.desc(), Case.case_number.desc())
        if towns is not None:
            q = q.where(Case.accepting_town.in_(towns))
        if status:
            q = q.where(Case.status == status)
        if kind:
            q = q.where(Case.kind == kind)
        if item_code:
            q = q.where(Case.item_code == item_code)
        if due_by:
            q = q.where(Case.deadline <= due_by)
        if overdue_on:
            q = q.where(Case.deadline < overdue_on, Case.status.in_(("in_review", "paused")))
        return list(self.s.scalars(q.limit(limit).offset(offset)))

    def counts(self) -> dict:
        rows = self.s.execute(sa.select(Case.status, Case.outcome, Case.kind, Case.was_supplement, sa.func.count())
                              .group_by(Case.status, Case.outcome, Case.kind, Case.was_supplement)).all()
        out = {"cases": 0, "accepted": 0, "completed": 0, "approved": 0, "refused": 0, "by_kind": {},
               "by_status": {}}
        for status, outcome, kind, was_supplement, n in rows:
            out["cases"] += n
            if status not in ("consulted", "returned"):
                out["accepted"] += n
            out["by_status"][status] = out["by_status"].get(status, 0) + n
            # the six kinds (六件): the catalogue's kind, plus supplement and returned as they happened
            for k in {kind, *(["supplement"] if was_supplement else []),
                      *(["returned"] if status == "returned" else [])}:
                out["by_kind"][k] = out["by_kind"].get(k, 0) + n
            if status == "completed":
                out["completed"] += n
            if outcome in ("approved", "refused"):
                out[outcome] += n
        out["department_decisions"] = self.s.execute(
            sa.select(sa.func.count()).select_from(DepartmentDecision)).scalar_one()
        out["late_decisions"] = self.s.execute(
            sa.select(sa.func.count()).select_from(CaseAction).where(CaseAction.action == "late_decision")
        ).scalar_one()
        out.update(self._counts_across_services())
        return out

    def _count(self, *where) -> int:
        return self.s.execute(sa.select(sa.func.count()).select_from(Case).where(*where)).scalar_one()

    def _counts_across_services(self) -> dict:
        """What the other services' books are checked against: cases from village stations, escalated cases
        that went to the town agent, and 全城通办 cases another town's office handles."""
        done = Case.status == "completed"
        village = Case.village.is_not(None)
        escalated = (Case.kind == "escalated") & Case.routed_version.is_not(None)
        elsewhere = Case.handling_town.not_in(["city"]) & (Case.handling_town != Case.accepting_town)
        return {
            "from_villages": {"cases": self._count(village), "completed": self._count(village, done),
                              "returned": self._count(village, Case.status == "returned")},
            "escalated": {"to_town_agent": self._count(escalated), "completed": self._count(escalated, done)},
            "city_wide": {
                "handled_by_other_towns": self._count(elsewhere),
                "mailed": self._count(Case.delivery == "mail", done, Case.outcome == "approved"),
                "waybills": self.s.execute(sa.select(sa.func.count()).select_from(Waybill)).scalar_one(),
                "handled_here_for_other_towns": self.s.execute(
                    sa.select(sa.func.count()).select_from(Transfer)).scalar_one(),
                "handled_here_completed": self.s.execute(
                    sa.select(sa.func.count()).select_from(Transfer).where(Transfer.status == "completed")
                ).scalar_one()},
        }


class Waybills:
    """Repository over the EMS waybills of this centre's cases (全城通办: results sent by mail)."""

    def __init__(self, session: Session):
        self.s = session

    def of(self, case_number: str) -> Waybill | None:
        return self.s.scalars(sa.select(Waybill).where(Waybill.case_number == case_number)).first()

    def add(self, waybill: Waybill) -> Waybill:
        self.s.add(waybill)
        self.s.flush()
        return waybill

    def last_issued(self, ranges: list[s10.WaybillRange]) -> str | None:
        """The highest number issued from the last of `ranges` that was used at all. Within one range the
        numbers sort as their serials (same letters, fixed width, the check digit after the serial)."""
        for r in reversed(ranges):
            low, high = f"{r.prefix}{r.first:08d}", f"{r.prefix}{r.last:08d}~"
            last = self.s.scalar(sa.select(sa.func.max(Waybill.tracking_number))
                                 .where(Waybill.tracking_number >= low, Waybill.tracking_number <= high))
            if last is not None:
                return last
        return None


class Transfers:
    """Repository over the cases other centres accepted that this town's department offices handle."""

    def __init__(self, session: Session):
        self.s = session

    def get(self, case_number: str, for_update: bool = False) -> Transfer | None:
        return self.s.get(Transfer, case_number, with_for_update=for_update)

    def add(self, transfer: Transfer) -> None:
        self.s.add(transfer)
        self.s.flush()

    def list(self, handling_town: str, status: str | None = None, limit: int = 100, offset: int = 0) -> list[Transfer]:
        q = (sa.select(Transfer).where(Transfer.handling_town == handling_town)
             .order_by(Transfer.accepted_at.desc(), Transfer.case_number.desc()))
        if status:
            q = q.where(Transfer.status == status)
        return list(self.s.scalars(q.limit(limit).offset(offset)))
