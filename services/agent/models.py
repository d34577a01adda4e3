"""Replies owed to villagers (回复) and the cases agents submitted: storage behind small repositories."""
from __future__ import annotations

from datetime import datetime

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
    __tablename__ = "replies"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    case_number: Mapped[str] = mapped_column(sa.String(40), nullable=False, unique=True)
    agent: Mapped[str] = mapped_column(sa.String(64), nullable=False, index=True)
    outcome: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    item_name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    status: Mapped[str] = mapped_column(sa.String(20), nullable=False)  # to_reply | replied
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)


class AgentCases:
    def __init__(self, session: Session):
        self.s = session

    def get(self, case_number: str) -> AgentCase | None:
        return self.s.get(AgentCase, case_number)

    def record(self, case: AgentCase) -> None:
        """Keep the case as first announced (a redelivered case.accepted changes nothing)."""
        dialect = self.s.get_bind().dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        elif dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:  # pragma: no cover - the suite runs on these two
            raise RuntimeError(f"no insert-or-ignore for {dialect}")
        values = {c.key: getattr(case, c.key) for c in AgentCase.__table__.columns}
        self.s.execute(insert(AgentCase).values(**values).on_conflict_do_nothing(index_elements=["case_number"]))

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

    def listed(self, agent: str | None = None, town: str | None = None) -> list[tuple[Reply, str]]:
        """Replies with their case's accepting town, oldest first; only an agent's, or a town's, if given."""
        q = (sa.select(Reply, AgentCase.accepting_town)
             .join(AgentCase, AgentCase.case_number == Reply.case_number).order_by(Reply.id))
        if agent is not None:
            q = q.where(Reply.agent == agent)
        if town is not None:
            q = q.where(AgentCase.accepting_town == town)
        return [(r, t) for r, t in self.s.execute(q).all()]

    def count(self, town: str | None = None) -> int:
        q = sa.select(sa.func.count()).select_from(Reply)
        if town is not None:
            q = q.join(AgentCase, AgentCase.case_number == Reply.case_number).where(AgentCase.accepting_town == town)
        return self.s.execute(q).scalar_one()
