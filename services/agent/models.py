"""The agent service's storage behind small repositories: the village stations' service log (服务台账) and
submissions, the cases agents submitted, replies owed to villagers (回复), and the town agents' escalations."""
from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from shared import db


class Base(db.Base):
    """The agent database's tables: the shared declarative base, this database's own metadata."""

    __abstract__ = True
    metadata = db.service_metadata()


class AgentCase(Base):
    """A case a village agent submitted, as the centre announced it (case.accepted with via_agent)."""

    __tablename__ = "agent_cases"

    case_number: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    agent: Mapped[str] = mapped_column(sa.String(64), nullable=False, index=True)
    accepting_town: Mapped[str] = mapped_column(sa.String(9), nullable=False)
    item_name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    accepted_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)


class Reply(Base):
    """A reply owed to a villager (回复) once their case is finished, and, when made, how, when and what."""

    __tablename__ = "replies"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    case_number: Mapped[str] = mapped_column(sa.String(40), nullable=False, unique=True)
    agent: Mapped[str] = mapped_column(sa.String(64), nullable=False, index=True)
    outcome: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    item_name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    status: Mapped[str] = mapped_column(sa.String(20), nullable=False)  # to_reply | replied
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)
    village: Mapped[str | None] = mapped_column(sa.String(12), index=True)
    service_id: Mapped[int | None] = mapped_column(sa.Integer)  # the station service (submission) it answers
    method: Mapped[str | None] = mapped_column(sa.String(10))  # phone | visit
    replied_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    replied_on: Mapped[date | None] = mapped_column(sa.Date)  # Asia/Shanghai date (monthly table)
    replied_by: Mapped[str | None] = mapped_column(sa.String(64))
    what_said: Mapped[str | None] = mapped_column(sa.Text)


class StationService(Base):
    """One service at a village station (村/社区便民服务站), as the regulations want it logged: time, person,
    content, solution, status. A submission (代办, with the villager's authorisation), help only (帮办, nothing
    submitted), an item refused at the station (in person only, not for agents), an item done at the station
    (village level), or one relayed (报送) to the town centre, where it becomes a case.

    The applicant's ID number is never kept here (masked only): it travels once, in the relayed message."""

    __tablename__ = "station_services"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(sa.String(40), nullable=False, unique=True)  # the station's record number
    request_key: Mapped[str | None] = mapped_column(sa.String(100), unique=True)  # the client's, scoped to the agent
    village: Mapped[str] = mapped_column(sa.String(12), nullable=False, index=True)
    town: Mapped[str] = mapped_column(sa.String(9), nullable=False, index=True)
    agent: Mapped[str] = mapped_column(sa.String(64), nullable=False, index=True)
    mode: Mapped[str] = mapped_column(sa.String(20), nullable=False)  # submission | help_only
    # refused | helped | done (at the station) | relayed | accepted (a case at the town) | completed | rejected
    status: Mapped[str] = mapped_column(sa.String(20), nullable=False, index=True)
    item_code: Mapped[str] = mapped_column(sa.String(32), nullable=False)
    item_name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    item_category: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    item_level: Mapped[str] = mapped_column(sa.String(10), nullable=False)
    catalog_version: Mapped[str] = mapped_column(sa.String(32), nullable=False)
    applicant_name: Mapped[str] = mapped_column(sa.String(100), nullable=False)
    applicant_id_masked: Mapped[str] = mapped_column(sa.String(18), nullable=False)
    applicant_phone: Mapped[str] = mapped_column(sa.String(20), nullable=False)  # for the reply by phone
    content: Mapped[str] = mapped_column(sa.Text, nullable=False)  # what the villager asked for
    solution: Mapped[str | None] = mapped_column(sa.Text)  # how it was solved
    reason: Mapped[str | None] = mapped_column(sa.Text)  # why refused (at the station or by the town)
    authorisation: Mapped[dict | None] = mapped_column(sa.JSON)  # 委托: by, matters, signed_at, method
    materials: Mapped[list] = mapped_column(sa.JSON, nullable=False, default=list)
    fee_fen: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)  # never beyond the statutory fee
    served_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)
    served_on: Mapped[date] = mapped_column(sa.Date, nullable=False, index=True)  # Asia/Shanghai date
    case_number: Mapped[str | None] = mapped_column(sa.String(40), index=True)
    case_status: Mapped[str | None] = mapped_column(sa.String(20))
    case_version: Mapped[int | None] = mapped_column(sa.Integer)
    outcome: Mapped[str | None] = mapped_column(sa.String(20))
    completed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    completed_on: Mapped[date | None] = mapped_column(sa.Date)


class Escalation(Base):
    """An escalated case (上报件/代理件) in the town agent's hands: after the town's 初审 until the city's
    decision is back at the town's ledger. The work to relay is kept as the ledger sent it."""

    __tablename__ = "escalations"

    case_number: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    accepting_town: Mapped[str] = mapped_column(sa.String(9), nullable=False, index=True)
    item_code: Mapped[str] = mapped_column(sa.String(32), nullable=False)
    item_name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    lead_department: Mapped[str] = mapped_column(sa.String(32), nullable=False)
    departments: Mapped[list] = mapped_column(sa.JSON, nullable=False)
    case_version: Mapped[int] = mapped_column(sa.Integer, nullable=False)  # the routed version
    deadline: Mapped[date] = mapped_column(sa.Date, nullable=False, index=True)  # the city's deadline
    # awaiting_relay | relayed | decided (back from the city, to return) | returned | closed (elsewhere)
    status: Mapped[str] = mapped_column(sa.String(20), nullable=False, index=True)
    work: Mapped[dict] = mapped_column(sa.JSON, nullable=False)  # the case.escalated payload to relay
    reviewed_by: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    escalated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)
    relayed_by: Mapped[str | None] = mapped_column(sa.String(64))
    relayed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    decisions: Mapped[dict] = mapped_column(sa.JSON, nullable=False, default=dict)  # department -> decision
    decided_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    returned_by: Mapped[str | None] = mapped_column(sa.String(64))
    returned_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))


class AgentCases:
    def __init__(self, session: Session):
        self.s = session

    def get(self, case_number: str) -> AgentCase | None:
        return self.s.get(AgentCase, case_number)

    def record(self, case: AgentCase) -> None:
        """Keep the case as first announced (a redelivered case.accepted changes nothing)."""
        values = {c.key: getattr(case, c.key) for c in AgentCase.__table__.columns}
        self.s.execute(db.dialect_insert(self.s)(AgentCase).values(**values).on_conflict_do_nothing(index_elements=["case_number"]))

    def count(self, town: str | None = None) -> int:
        q = sa.select(sa.func.count()).select_from(AgentCase)
        if town is not None:
            q = q.where(AgentCase.accepting_town == town)
        return self.s.execute(q).scalar_one()


class Replies:
    def __init__(self, session: Session):
        self.s = session

    def add(self, reply: Reply) -> None:
        self.s.add(reply)

    def exists(self, case_number: str) -> bool:
        return self.s.scalars(sa.select(Reply.id).where(Reply.case_number == case_number)).first() is not None

    def get(self, case_number: str, for_update: bool = False) -> Reply | None:
        q = sa.select(Reply).where(Reply.case_number == case_number)
        return self.s.scalars(q.with_for_update() if for_update else q).first()

    def of_service(self, service_id: int) -> Reply | None:
        return self.s.scalars(sa.select(Reply).where(Reply.service_id == service_id).order_by(Reply.id)).first()

    @staticmethod
    def _town():
        # the case's accepting town; a relay the town refused has no case: its village's town
        return sa.func.coalesce(AgentCase.accepting_town, sa.func.substr(Reply.village, 1, 9))

    def listed(self, agent: str | None = None, town: str | None = None, village: str | None = None,
               status: str | None = None) -> list[tuple[Reply, str]]:
        """Replies with their town, oldest first; only an agent's (or their village's), or a town's, if given."""
        town_of = self._town()
        q = (sa.select(Reply, town_of)
             .join(AgentCase, AgentCase.case_number == Reply.case_number, isouter=True).order_by(Reply.id))
        if agent is not None:
            q = q.where(sa.or_(Reply.agent == agent, Reply.village == village) if village else Reply.agent == agent)
        if town is not None:
            q = q.where(town_of == town)
        if status is not None:
            q = q.where(Reply.status == status)
        return [(r, t) for r, t in self.s.execute(q).all()]

    def count(self, town: str | None = None, status: str | None = None) -> int:
        q = (sa.select(sa.func.count()).select_from(Reply)
             .join(AgentCase, AgentCase.case_number == Reply.case_number, isouter=True))
        if town is not None:
            q = q.where(self._town() == town)
        if status is not None:
            q = q.where(Reply.status == status)
        return self.s.execute(q).scalar_one()


class Escalations:
    """The town agents' escalated cases (上报件)."""

    def __init__(self, session: Session):
        self.s = session

    def get(self, case_number: str, for_update: bool = False) -> Escalation | None:
        q = sa.select(Escalation).where(Escalation.case_number == case_number)
        return self.s.scalars(q.with_for_update() if for_update else q).first()

    def add(self, escalation: Escalation) -> None:
        self.s.add(escalation)

    def listed(self, statuses: tuple[str, ...], town: str | None = None) -> list[Escalation]:
        """Of these statuses, one town's if given, by the city's deadline (the caller ranks overdue first)."""
        q = sa.select(Escalation).where(Escalation.status.in_(statuses))
        if town is not None:
            q = q.where(Escalation.accepting_town == town)
        return list(self.s.scalars(q.order_by(Escalation.deadline, Escalation.case_number)))

    def count_by_status(self, town: str | None = None) -> dict[str, int]:
        q = sa.select(Escalation.status, sa.func.count()).group_by(Escalation.status)
        if town is not None:
            q = q.where(Escalation.accepting_town == town)
        return {status: n for status, n in self.s.execute(q).all()}


class StationServices:
    """The service log (服务台账) of the village stations."""

    def __init__(self, session: Session):
        self.s = session

    def add(self, record: StationService) -> None:
        self.s.add(record)
        self.s.flush()  # the unique number and request key are checked now, inside the caller's retry

    def by_request_key(self, key: str) -> StationService | None:
        return self.s.scalars(sa.select(StationService).where(StationService.request_key == key)).first()

    def by_number(self, number: str, for_update: bool = False) -> StationService | None:
        q = sa.select(StationService).where(StationService.number == number)
        return self.s.scalars(q.with_for_update() if for_update else q).first()

    def by_case(self, case_number: str, for_update: bool = False) -> StationService | None:
        q = sa.select(StationService).where(StationService.case_number == case_number)
        return self.s.scalars(q.with_for_update() if for_update else q).first()

    def next_seq(self, village: str, day: date) -> int:
        """The village's next number of the day. Two at once may pick the same: the unique number
        refuses the second, which tries again (Station.submit_once)."""
        q = (sa.select(sa.func.count()).select_from(StationService)
             .where(StationService.village == village, StationService.served_on == day))
        return self.s.execute(q).scalar_one() + 1

    def listed(self, *, agent: str | None = None, village: str | None = None, town: str | None = None,
               month: tuple[date, date] | None = None, status: str | None = None) -> list[StationService]:
        """The log, oldest first (the order it was kept in)."""
        q = sa.select(StationService).order_by(StationService.served_at, StationService.id)
        if agent is not None:
            q = q.where(StationService.agent == agent)
        if village is not None:
            q = q.where(StationService.village == village)
        if town is not None:
            q = q.where(StationService.town == town)
        if month is not None:
            q = q.where(StationService.served_on >= month[0], StationService.served_on < month[1])
        if status is not None:
            q = q.where(StationService.status == status)
        return list(self.s.scalars(q))

    def count_by(self, town: str | None = None) -> dict[str, dict[str, int]]:
        """The log's figures: services by status and by mode (submission, help only)."""
        q = sa.select(StationService.mode, StationService.status, sa.func.count()).group_by(
            StationService.mode, StationService.status)
        if town is not None:
            q = q.where(StationService.town == town)
        out: dict[str, dict[str, int]] = {"by_status": {}, "by_mode": {}}
        for mode, status, n in self.s.execute(q).all():
            out["by_status"][status] = out["by_status"].get(status, 0) + n
            out["by_mode"][mode] = out["by_mode"].get(mode, 0) + n
        return out
