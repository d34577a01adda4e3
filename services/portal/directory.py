"""The staff directory's use cases: add, list, disable, enable, reset a password, sign in; every change in
the audit log, and the token revocations published (through the outbox, into the reference stream) in the
same transaction as the change that makes them."""
from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from services.portal import directory_rules as rules
from services.portal.models import AuditEntry, StaffUser, WebSession
from shared import tokens
from shared.reference import STAFF, make_record, record_message

HASHER = PasswordHasher()  # argon2id, the library's recommended parameters
# a hash to verify against when the staff number is unknown: the answer takes as long as for a known one
_DUMMY_HASH = HASHER.hash("not-a-password-of-anyone")


def now_utc() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def audit(tx, staff_number: str, event: str, actor: str, remote: str | None = None, detail: str | None = None):
    tx.session.add(AuditEntry(at=now_utc(), staff_number=staff_number, event=event, actor=actor,
                              remote=(remote or "")[:64] or None, detail=(detail or "")[:200] or None))


def user_view(u: StaffUser) -> dict:
    locked = _aware(u.locked_until)
    return {"staff_number": u.staff_number, "name": u.name, "role": u.role, "scope": u.scope,
            "disabled": u.disabled, "locked_until": locked if locked and locked > now_utc() else None,
            "created_at": _aware(u.created_at)}


def get_user(tx, staff_number: str) -> StaffUser | None:
    return tx.session.get(StaffUser, staff_number)


def list_users(tx) -> list[dict]:
    return [user_view(u) for u in tx.session.scalars(sa.select(StaffUser).order_by(StaffUser.staff_number))]


def count_users(tx) -> int:
    return tx.session.scalar(sa.select(sa.func.count()).select_from(StaffUser))


def add_user(tx, staff_number: str, name: str, role: str, scope: str, password: str, actor: str) -> dict:
    rules.check_new_user(staff_number, name, role, scope)
    rules.check_password(password)
    if get_user(tx, staff_number) is not None:
        raise rules.DirectoryError(f"staff number {staff_number} is taken")
    at = now_utc()
    user = StaffUser(staff_number=staff_number, name=name, role=role, scope=str(tokens.Scope.parse(scope)),
                     password_hash=HASHER.hash(password), disabled=False, failed_attempts=0,
                     tokens_valid_from=at, created_at=at)
    tx.session.add(user)
    audit(tx, staff_number, "user.added", actor, detail=f"{role} {user.scope}")
    return user_view(user)


def _require(tx, staff_number: str) -> StaffUser:
    user = get_user(tx, staff_number)
    if user is None:
        raise LookupError(f"no staff number {staff_number}")
    return user


def set_disabled(tx, staff_number: str, disabled: bool, actor: str) -> dict:
    """Disable (every token and session refused at once) or enable again (tokens from before stay void)."""
    user = _require(tx, staff_number)
    user.disabled = disabled
    if not disabled:
        user.tokens_valid_from = now_utc()
        user.failed_attempts, user.locked_until = 0, None
    tx.session.execute(sa.delete(WebSession).where(WebSession.staff_number == staff_number))
    audit(tx, staff_number, "user.disabled" if disabled else "user.enabled", actor)
    publish_revocations(tx)
    return user_view(user)


def reset_password(tx, staff_number: str, password: str, actor: str) -> dict:
    """A new password; the person's sessions end and their tokens from before are void; the lock is lifted."""
    rules.check_password(password)
    user = _require(tx, staff_number)
    user.password_hash = HASHER.hash(password)
    user.tokens_valid_from = now_utc()
    user.failed_attempts, user.locked_until = 0, None
    tx.session.execute(sa.delete(WebSession).where(WebSession.staff_number == staff_number))
    audit(tx, staff_number, "user.password_reset", actor)
    publish_revocations(tx)
    return user_view(user)


def revocations(tx) -> tokens.Revocations:
    users = list(tx.session.scalars(sa.select(StaffUser)))
    return tokens.Revocations(frozenset(u.staff_number for u in users if u.disabled),
                              {u.staff_number: int(_aware(u.tokens_valid_from).timestamp()) for u in users
                               if _aware(u.tokens_valid_from) > _aware(u.created_at)})


def publish_revocations(tx) -> None:
    """The whole set, as one reference record (the stream's last one is in force), with the change."""
    tx.publish(*record_message(make_record(STAFF, revocations(tx).to_text(), loaded_by="portal")))


# --- signing in -----------------------------------------------------------------------------------

def sign_in(tx, staff_number: str, password: str, remote: str | None) -> tuple[StaffUser | None, str | None]:
    """(user, None) when the password is right and the account usable; (None, reason) otherwise. Failures
    count towards the lockout; every attempt is audited."""
    user = get_user(tx, staff_number) if isinstance(staff_number, str) and len(staff_number) <= 64 else None
    if user is None:
        _verify(_DUMMY_HASH, password)
        audit(tx, (staff_number or "?")[:64], "signin.unknown", "-", remote)
        return None, "wrong"
    ok = _verify(user.password_hash, password)
    result = rules.attempt(ok, user.disabled, user.failed_attempts, _aware(user.locked_until), now_utc())
    user.failed_attempts, user.locked_until = result.failed_attempts, result.locked_until
    if result.ok:
        audit(tx, user.staff_number, "signin.ok", user.staff_number, remote)
        return user, None
    event = {"locked": "signin.locked", "disabled": "signin.disabled"}.get(result.reason, "signin.failed")
    audit(tx, user.staff_number, event, "-", remote, detail=f"failures {result.failed_attempts}")
    return None, result.reason


def _verify(password_hash: str, password: str) -> bool:
    try:
        return HASHER.verify(password_hash, password if isinstance(password, str) else "")
    except (VerificationError, InvalidHashError):
        return False


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(tx, user: StaffUser) -> tuple[str, WebSession]:
    """A new session; the cookie's token (returned once, stored only as its hash)."""
    token = secrets.token_urlsafe(32)
    at = now_utc()
    session = WebSession(token_hash=_hash_token(token), staff_number=user.staff_number,
                         csrf_token=secrets.token_urlsafe(24), created_at=at,
                         expires_at=at + timedelta(hours=rules.SESSION_HOURS))
    tx.session.add(session)
    return token, session


def find_session(tx, token: str | None) -> tuple[WebSession, StaffUser] | None:
    """The live session of a cookie and its (enabled) user, or None."""
    if not token or len(token) > 100:
        return None
    session = tx.session.get(WebSession, _hash_token(token))
    if session is None or _aware(session.expires_at) <= now_utc():
        return None
    user = get_user(tx, session.staff_number)
    if user is None or user.disabled:
        return None
    return session, user


def close_session(tx, token: str | None) -> None:
    if token:
        tx.session.execute(sa.delete(WebSession).where(WebSession.token_hash == _hash_token(token)))


def audit_log(tx, limit: int = 200) -> list[dict]:
    rows = tx.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit))
    return [{"at": _aware(a.at), "staff_number": a.staff_number, "event": a.event, "actor": a.actor,
             "remote": a.remote, "detail": a.detail} for a in rows]
