"""Replies owed to villagers (回复): storage behind a small repository."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from shared.db import NAMING_CONVENTION
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class Reply(Base):
    __tablename__ = "replies"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    case_number: Mapped[str] = mapped_column(sa.String(40), nullable=False, unique=True)
    agent: Mapped[str] = mapped_column(sa.String(64), nullable=False, index=True)
    outcome: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    item_name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    status: Mapped[str] = mapped_column(sa.String(20), nullable=False)  # to_reply | replied
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)


class Replies:
    def __init__(self, session: Session):
        self.s = session

    def add(self, reply: Reply) -> None:
        self.s.add(reply)

    def exists(self, case_number: str) -> bool:
        return self.s.scalars(sa.select(Reply.id).where(Reply.case_number == case_number)).first() is not None

    def for_agent(self, agent: str | None) -> list[Reply]:
        q = sa.select(Reply).order_by(Reply.id)
        if agent is not None:
            q = q.where(Reply.agent == agent)
        return list(self.s.scalars(q))

    def count(self) -> int:
        return self.s.execute(sa.select(sa.func.count()).select_from(Reply)).scalar_one()
