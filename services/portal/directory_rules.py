"""The staff directory's rules, without I/O: who may be added, lockout after repeated failures, passwords."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared import auth

MAX_FAILURES = 5  # wrong passwords in a row before the account locks
LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD = 10
SESSION_HOURS = 10  # a working day, then sign in again


class DirectoryError(ValueError):
    """Bad input for the directory (a clear message for city IT)."""


def check_new_user(staff_number: str, name: str, role: str, scope: str) -> None:
    if not auth._valid_subject(staff_number):
        raise DirectoryError("staff number: 1-64 printable characters without spaces")
    if not auth._valid_name(name):
        raise DirectoryError("name: 1-50 printable characters")
    if role not in auth.ROLES or role == "service":
        raise DirectoryError(f"role: one of {', '.join(r for r in auth.ROLES if r != 'service')}")
    try:
        parsed = auth.Scope.parse(scope)
    except ValueError as exc:
        raise DirectoryError(f"scope: {exc}") from None
    if not auth.scope_fits_role(role, parsed):
        kinds = " or ".join(auth.ROLE_SCOPE_KINDS[role])
        raise DirectoryError(f"scope: the role {role} works in a {kinds} scope, not {parsed.kind}")


def check_password(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise DirectoryError(f"password: at least {MIN_PASSWORD} characters")


def new_password() -> str:
    """A password to hand over once (city IT's first sign-in, a reset without one given)."""
    return secrets.token_urlsafe(12)


@dataclass(frozen=True)
class Attempt:
    """What a sign-in attempt comes to: ok, or why not, and the account's counters after it."""

    ok: bool
    reason: str | None  # "locked" | "disabled" | "wrong" (the page says the same to all but "locked")
    failed_attempts: int
    locked_until: datetime | None


def attempt(password_ok: bool, disabled: bool, failed_attempts: int, locked_until: datetime | None,
            now: datetime) -> Attempt:
    """The lockout rule: MAX_FAILURES wrong passwords in a row lock the account for LOCKOUT; while locked
    even the right password is refused; a success clears the count."""
    if locked_until is not None and locked_until > now:
        return Attempt(False, "locked", failed_attempts, locked_until)
    if disabled:
        return Attempt(False, "disabled", failed_attempts, None)
    if password_ok:
        return Attempt(True, None, 0, None)
    failures = failed_attempts + 1
    if failures >= MAX_FAILURES:
        return Attempt(False, "locked", 0, now + LOCKOUT)
    return Attempt(False, "wrong", failures, None)
