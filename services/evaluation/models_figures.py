"""The monthly figures' storage: counters per month, dimension and key, moved in the transaction that records
the event; and what each case, rating and complaint was counted as, so that nothing counts twice and a void
takes back exactly what the rating added."""
from __future__ import annotations

from collections import Counter
from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from services.evaluation.models import Base, CaseView
from shared import db
from shared.vocabulary import OPEN_CASE_STATUSES


class FigureCount(Base):
    """One counter: a measure of a month for one key of a dimension, for all departments (office "") or
    for one department office. A report reads only its month's rows (the key's first column)."""

    __tablename__ = "figure_counts"

    month: Mapped[str] = mapped_column(sa.String(7), primary_key=True)  # YYYY-MM (Asia/Shanghai)
    dimension: Mapped[str] = mapped_column(sa.String(12), primary_key=True)  # village, window, staff, town, department
    town: Mapped[str] = mapped_column(sa.String(9), primary_key=True)  # whose row it is ("city": a city bureau's)
    key: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    office: Mapped[str] = mapped_column(sa.String(50), primary_key=True)  # "" all departments; <dept>@<town|city>
    measure: Mapped[str] = mapped_column(sa.String(30), primary_key=True)
    value: Mapped[int] = mapped_column(sa.BigInteger, nullable=False, default=0)


class FigureCase(Base):
    """What a case was counted as: its attribution and the months its reception and completion counted in."""

    __tablename__ = "figure_cases"

    case_number: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    window: Mapped[str] = mapped_column(sa.String(9), nullable=False)
    town: Mapped[str] = mapped_column(sa.String(9), nullable=False)
    staff: Mapped[str | None] = mapped_column(sa.String(100))
    village: Mapped[str | None] = mapped_column(sa.String(12))
    offices: Mapped[list] = mapped_column(sa.JSON, nullable=False, default=list)
    kind: Mapped[str | None] = mapped_column(sa.String(20))  # the kind it was received as
    received_month: Mapped[str | None] = mapped_column(sa.String(7))
    clock_started_on: Mapped[date | None] = mapped_column(sa.Date)
    completed_month: Mapped[str | None] = mapped_column(sa.String(7))
    completed_on: Mapped[date | None] = mapped_column(sa.Date)
    on_time: Mapped[bool | None] = mapped_column(sa.Boolean)
    finish_days: Mapped[int | None] = mapped_column(sa.Integer)


class FigureRating(Base):
    """A rating as the figures counted it (the ratings' own records are the ratings code's)."""

    __tablename__ = "figure_ratings"

    rating_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    case_number: Mapped[str | None] = mapped_column(sa.String(40))
    month: Mapped[str] = mapped_column(sa.String(7), nullable=False)
    level: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    follow_up: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)
    rows: Mapped[list] = mapped_column(sa.JSON, nullable=False, default=list)  # the counter rows it moved
    voided: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)
    rectified: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)


class FigureComplaint(Base):
    __tablename__ = "figure_complaints"

    complaint_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    case_number: Mapped[str | None] = mapped_column(sa.String(40))
    month: Mapped[str] = mapped_column(sa.String(7), nullable=False)
    rows: Mapped[list] = mapped_column(sa.JSON, nullable=False, default=list)


class Counters:
    """The counter rows: moved by atomic upserts (concurrent workers add, never overwrite)."""

    def __init__(self, session: Session):
        self.s = session

    def add(self, changes: Counter) -> None:
        """Add each change to its row, creating it at 0 first; one statement, rows in key order (two
        transactions moving the same rows lock them in the same order)."""
        key = ("month", "dimension", "town", "key", "office", "measure")
        rows = [dict(zip(key, k, strict=True), value=v) for k, v in sorted(changes.items()) if v]
        db.add_to_counters(self.s, FigureCount.__table__, key, "value", rows)

    def month(self, month: str, town: str | None = None, dept: str | None = None) -> list[tuple]:
        """(dimension, town, key, measure, value) of one month: all departments' rows (and the department
        rows) unless `dept` (a code: every office of it; `code@town|city`: that office); one town's if given."""
        C = FigureCount
        q = sa.select(C.dimension, C.town, C.key, C.measure, C.value).where(C.month == month)
        if dept is None:
            q = q.where(sa.or_(C.office == "", C.dimension == "department"))
        elif "@" in dept:
            q = q.where(C.office == dept)
        else:
            q = q.where(C.office.startswith(f"{dept}@", autoescape=True))
        if town is not None:
            q = q.where(C.town == town)
        return [tuple(r) for r in self.s.execute(q).all()]


class FigureCases:
    def __init__(self, session: Session):
        self.s = session

    def get(self, case_number: str) -> FigureCase | None:
        q = sa.select(FigureCase).where(FigureCase.case_number == case_number).with_for_update()
        return self.s.scalars(q).first()

    def add(self, row: FigureCase) -> None:
        self.s.add(row)
        self.s.flush()  # a second event of the same case in this transaction finds it


class FigureMarks:
    """Ratings and complaints as counted."""

    def __init__(self, session: Session):
        self.s = session

    def rating(self, rating_id: str) -> FigureRating | None:
        q = sa.select(FigureRating).where(FigureRating.rating_id == rating_id).with_for_update()
        return self.s.scalars(q).first()

    def complaint(self, complaint_id: str) -> FigureComplaint | None:
        return self.s.get(FigureComplaint, complaint_id)

    def add(self, row) -> None:
        self.s.add(row)
        self.s.flush()


def open_case_counts(session: Session) -> list[tuple[str, str, str, int]]:
    """(status, town, department, open cases) from the case read model, for the operators' gauge: the town
    is the one handling the case (the accepting town for a city bureau's)."""
    V = CaseView
    town = sa.case((V.handling_town.is_(None), V.accepting_town), (V.handling_town == "city", V.accepting_town),
                   else_=V.handling_town)
    q = (sa.select(V.status, town, sa.func.coalesce(V.department, ""), sa.func.count())
         .where(V.status.in_([str(s) for s in OPEN_CASE_STATUSES]))
         .group_by(V.status, town, sa.func.coalesce(V.department, "")))
    return [tuple(r) for r in session.execute(q).all()]
