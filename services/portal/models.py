"""The portal's storage: the staff directory (工作人员名录), web sign-in sessions and the audit log."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from shared import db


class Base(db.Base):
    __abstract__ = True
    metadata = db.service_metadata()


class StaffUser(Base):
    """A person (or a script's account) who may sign in: staff number, name, role and scope."""

    __tablename__ = "staff_users"

    staff_number: Mapped[str] = mapped_column(sa.String(64), primary_key=True)  # the tokens' `sub`
    name: Mapped[str] = mapped_column(sa.String(50), nullable=False)
    role: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    scope: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    password_hash: Mapped[str] = mapped_column(sa.String(200), nullable=False)  # argon2id
    disabled: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)
    failed_attempts: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    # tokens issued before this are void (a password reset, a re-enabled account): shared.tokens.Revocations
    tokens_valid_from: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)


class WebSession(Base):
    """A browser's sign-in: the cookie holds a random token, the database only its hash."""

    __tablename__ = "web_sessions"

    token_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    staff_number: Mapped[str] = mapped_column(sa.String(64), nullable=False, index=True)
    csrf_token: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)


class AuditEntry(Base):
    """Sign-ins, failures, lockouts and every change to the directory: who, what, when, from where."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False, index=True)
    staff_number: Mapped[str] = mapped_column(sa.String(64), nullable=False, index=True)
    event: Mapped[str] = mapped_column(sa.String(40), nullable=False)
    actor: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    remote: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    detail: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
