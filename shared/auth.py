"""Scopes, principals and authorisation predicates shared by every Tongban service.

Every HTTP API of the suite requires ``Authorization: Bearer <token>``.  A
token names a *subject* (staff id or user name), a *role* (one of
:data:`ROLES`) and a *scope* (where that role applies: the whole city, one
town, one department office, or one village).

The tokens themselves are JWTs signed by the portal's private key and checked
with public keys only: see :mod:`shared.tokens` (``issue``, ``TokenVerifier``).
This module holds what does not depend on the token format: the roles, the
:class:`Scope` grammar, the :class:`Principal` a verified token yields, the
reasons an :class:`InvalidToken` carries, the argument checks (``_valid_*``)
:mod:`shared.tokens` shares, :func:`parse_bearer`, and the predicates every
service's read and write rules are made of.

This module is pure: no I/O, no environment access, standard library only.

Failures:

* :func:`parse_bearer` raises only :class:`InvalidToken` for bad client
  input, whatever the string; its ``reason`` is short English text suitable
  for a 401 response body.
* :func:`parse_scope` raises ``ValueError`` for bad arguments.
* :func:`require_role` raises :class:`Forbidden` (map to 403).
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass

__all__ = [
    "ROLES",
    "SCOPE_KINDS",
    "DEFAULT_TTL_SECONDS",
    "Scope",
    "Principal",
    "InvalidToken",
    "Forbidden",
    "parse_scope",
    "parse_bearer",
    "can_see_town",
    "can_act_for_department",
    "can_see_record",
    "visible_town",
    "town_of_case",
    "require_role",
    "ROLE_SCOPE_KINDS",
    "scope_fits_role",
]

#: Roles, in rough order from front line to machine:
#: clerk = window clerk (窗口工作人员); approver = department back office;
#: department_head = head of a department office; agent = village agent
#: (代办员); town_agent relays escalations; supervisor = electronic
#: supervision (电子监察); city_admin = city IT; service = machine-to-machine
#: (e.g. the demo driver).
ROLES: tuple[str, ...] = (
    "clerk",
    "approver",
    "department_head",
    "agent",
    "town_agent",
    "supervisor",
    "city_admin",
    "service",
)

SCOPE_KINDS: tuple[str, ...] = ("city", "town", "department", "village")

#: The kinds of scope each role works in. The read and write rules assume them (a village agent sees what
#: that agent submitted, but any role with the city scope sees every town), so a person outside them, e.g.
#: a village agent with a town's or the city's scope, would see far more than the role is for: the staff
#: directory adds no one outside them. Machines (service) get the scope their job needs.
ROLE_SCOPE_KINDS: dict[str, tuple[str, ...]] = {
    "clerk": ("town",),
    "approver": ("department",),
    "department_head": ("department",),
    "agent": ("village",),
    "town_agent": ("town",),
    "supervisor": ("town", "city"),
    "city_admin": ("city",),
    "service": SCOPE_KINDS,
}

DEFAULT_TTL_SECONDS = 8 * 3600

#: Tokens longer than this are rejected before any decoding work.
MAX_TOKEN_LENGTH = 4096
MAX_SUBJECT_LENGTH = 64
MAX_NAME_LENGTH = 50  # a person's name as it is printed on a notice

# Reasons carried by InvalidToken.
MALFORMED = "malformed token"
BAD_SIGNATURE = "bad signature"
EXPIRED = "token expired"
UNKNOWN_ROLE = "unknown role"
BAD_SCOPE = "bad scope"
MISSING_BEARER = "missing bearer token"

# ASCII-only patterns (\d would accept other Unicode digits); always fullmatch.
_TOWN_RE = re.compile(r"[0-9]{9}")
_VILLAGE_RE = re.compile(r"[0-9]{12}")
_DEPT_RE = re.compile(r"[a-z0-9_]{1,32}")


class InvalidToken(Exception):
    """The request's credentials are unusable (map to HTTP 401)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Forbidden(Exception):
    """The principal is authenticated but not allowed (map to HTTP 403)."""


# --------------------------------------------------------------------------
# Scopes
# --------------------------------------------------------------------------


def _is_town_code(value: object) -> bool:
    return isinstance(value, str) and _TOWN_RE.fullmatch(value) is not None


def _is_village_code(value: object) -> bool:
    return isinstance(value, str) and _VILLAGE_RE.fullmatch(value) is not None


def _is_dept_code(value: object) -> bool:
    return isinstance(value, str) and _DEPT_RE.fullmatch(value) is not None


@dataclass(frozen=True)
class Scope:
    """Where a role applies.

    ``town`` is set for ``town`` scopes, for ``department`` scopes bound to a
    town's office, and (derived from the first 9 digits) for ``village``
    scopes.  Construct with :meth:`parse`, or directly; direct construction
    is validated the same way and derives ``town`` for villages.
    """

    kind: str
    town: str | None = None
    department: str | None = None
    village: str | None = None

    def __post_init__(self) -> None:
        kind = self.kind
        if kind == "city":
            if self.town is not None or self.department is not None or self.village is not None:
                raise ValueError("city scope takes no town, department or village")
        elif kind == "town":
            if not _is_town_code(self.town):
                raise ValueError(f"town scope needs a 9-digit town code, got {self.town!r}")
            if self.department is not None or self.village is not None:
                raise ValueError("town scope takes no department or village")
        elif kind == "department":
            if not _is_dept_code(self.department):
                raise ValueError(
                    "department code must be 1-32 lowercase ascii letters, digits or "
                    f"underscores, got {self.department!r}"
                )
            if self.town is not None and not _is_town_code(self.town):
                raise ValueError(f"department town must be a 9-digit town code, got {self.town!r}")
            if self.village is not None:
                raise ValueError("department scope takes no village")
        elif kind == "village":
            if not _is_village_code(self.village):
                raise ValueError(f"village scope needs a 12-digit village code, got {self.village!r}")
            if self.department is not None:
                raise ValueError("village scope takes no department")
            derived = self.village[:9]
            if self.town is None:
                object.__setattr__(self, "town", derived)
            elif self.town != derived:
                raise ValueError(
                    f"village {self.village} lies in town {derived}, not {self.town!r}"
                )
        else:
            raise ValueError(f"unknown scope kind {kind!r}; expected one of {', '.join(SCOPE_KINDS)}")

    @classmethod
    def parse(cls, text: str) -> Scope:
        """Parse a canonical scope string; ``ValueError`` if invalid."""
        if not isinstance(text, str):
            raise ValueError(f"scope must be a string, got {type(text).__name__}")
        if text == "city":
            return cls("city")
        kind, sep, rest = text.partition(":")
        if not sep:
            raise ValueError(
                f"invalid scope {text!r}: expected 'city', 'town:<code>', "
                "'department:<dept>[@<town>]' or 'village:<code>'"
            )
        if kind == "city":
            raise ValueError(f"invalid scope {text!r}: 'city' takes no ':' argument")
        if kind == "town":
            if not _is_town_code(rest):
                raise ValueError(f"invalid scope {text!r}: town code must be exactly 9 digits")
            return cls("town", town=rest)
        if kind == "department":
            dept, at, town = rest.partition("@")
            if not _is_dept_code(dept):
                raise ValueError(
                    f"invalid scope {text!r}: department code must be 1-32 lowercase "
                    "ascii letters, digits or underscores"
                )
            if at and not _is_town_code(town):
                raise ValueError(f"invalid scope {text!r}: town code after '@' must be exactly 9 digits")
            return cls("department", department=dept, town=town if at else None)
        if kind == "village":
            if not _is_village_code(rest):
                raise ValueError(f"invalid scope {text!r}: village code must be exactly 12 digits")
            return cls("village", village=rest)
        raise ValueError(
            f"invalid scope {text!r}: unknown kind {kind!r}; expected one of {', '.join(SCOPE_KINDS)}"
        )

    def __str__(self) -> str:
        if self.kind == "city":
            return "city"
        if self.kind == "town":
            return f"town:{self.town}"
        if self.kind == "department":
            if self.town is None:
                return f"department:{self.department}"
            return f"department:{self.department}@{self.town}"
        return f"village:{self.village}"


def parse_scope(text: str) -> Scope:
    """Same as :meth:`Scope.parse`."""
    return Scope.parse(text)


# --------------------------------------------------------------------------
# Principals and tokens
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """The authenticated caller, as established by :meth:`shared.tokens.TokenVerifier.verify`."""

    subject: str
    role: str
    scope: Scope
    expires_at: int
    issued_at: int
    name: str | None = None  # the person's name (e.g. 首问负责人 on a notice), where the token carries one


def _valid_name(name: object) -> bool:
    return isinstance(name, str) and 1 <= len(name) <= MAX_NAME_LENGTH and name.isprintable() and name.strip() == name


def _valid_subject(subject: object) -> bool:
    return (
        isinstance(subject, str)
        and 1 <= len(subject) <= MAX_SUBJECT_LENGTH
        and subject.isprintable()
        and not any(ch.isspace() for ch in subject)
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _now(now: float | None) -> float:
    if now is None:
        return time.time()
    if isinstance(now, bool) or not isinstance(now, (int, float)) or not math.isfinite(now):
        raise ValueError(f"now must be a finite number of unix seconds, got {now!r}")
    return float(now)


def parse_bearer(header_value: str | None) -> str:
    """Extract the token from an ``Authorization`` header value.

    The scheme is matched case-insensitively (RFC 7235).  Raises
    ``InvalidToken("missing bearer token")`` when the header is absent, empty,
    uses another scheme or carries no token, and ``InvalidToken("malformed
    token")`` when more than one credential follows the scheme.
    """
    if not isinstance(header_value, str):
        raise InvalidToken(MISSING_BEARER)
    value = header_value.strip(" \t")
    scheme, _, rest = value.partition(" ")
    if scheme.lower() != "bearer":  # no non-ASCII character lower-cases into "bearer"
        raise InvalidToken(MISSING_BEARER)
    token = rest.strip(" \t")
    if not token:
        raise InvalidToken(MISSING_BEARER)
    if any(ch in token for ch in " \t\r\n"):
        raise InvalidToken(MALFORMED)
    return token


# --------------------------------------------------------------------------
# Authorisation predicates
# --------------------------------------------------------------------------


def scope_fits_role(role: str, scope: Scope) -> bool:
    """Whether `role` works in a scope of `scope`'s kind (ROLE_SCOPE_KINDS); False for an unknown role."""
    return scope.kind in ROLE_SCOPE_KINDS.get(role, ())


def can_see_town(principal: Principal, town_code: str) -> bool:
    """May ``principal`` read data belonging to town ``town_code``?

    * scope ``city`` sees every town (city_admin, supervisor, service, ...);
    * ``town:X`` and ``department:D@X`` see town X only;
    * city-level ``department:D`` sees no town as such (department-wide
      access is decided by :func:`can_act_for_department`);
    * ``village:V`` sees no town data: a village agent works on its own
      cases only.

    An invalid ``town_code`` is never visible.
    """
    if not _is_town_code(town_code):
        return False
    scope = principal.scope
    if scope.kind == "city":
        return True
    if scope.kind in ("town", "department"):
        return scope.town is not None and scope.town == town_code
    return False


def can_act_for_department(principal: Principal, department: str, town_code: str | None) -> bool:
    """May ``principal`` act (e.g. approve) for ``department`` in ``town_code``?

    ``town_code`` None means the city-level department.

    * role ``city_admin`` with scope ``city``: always;
    * role ``approver`` or ``department_head`` with scope
      ``department:D`` (city level) when ``department == D`` and
      ``town_code is None``, or with ``department:D@T`` when
      ``department == D`` and ``town_code == T``;
    * otherwise never.  In particular a city-level department scope does not
      act for that department's town offices, and ``city`` scope grants
      nothing to roles other than city_admin.
    """
    scope = principal.scope
    if scope.kind == "city":
        return principal.role == "city_admin"
    if principal.role not in ("approver", "department_head"):
        return False
    if scope.kind != "department" or not _is_dept_code(department):
        return False
    if town_code is not None and not _is_town_code(town_code):
        return False
    return scope.department == department and scope.town == town_code


_CASE_TOWN_RE = re.compile(r"([0-9]{9})-[0-9]{8}-[0-9]+")


def town_of_case(case_number: object) -> str | None:
    """The accepting town of a case number ``<town>-<yyyymmdd>-<sequence>``, or None."""
    if not isinstance(case_number, str):
        return None
    match = _CASE_TOWN_RE.fullmatch(case_number)
    return match.group(1) if match else None


def can_see_record(
    principal: Principal,
    *,
    towns=(),
    departments=(),
    agent: str | None = None,
) -> bool:
    """May ``principal`` read a record about a case (an event, a reply, a delivery, a work item)?

    The one place for the read-scope rules of every service:

    * scope ``city`` sees everything (city_admin, city supervisors, service);
    * ``town:X`` sees records of town X (``towns``: the towns the record
      belongs to, e.g. the accepting and the handling town);
    * ``department:D@T`` sees records whose ``departments`` (pairs
      ``(code, town or None)``) hold ``(D, T)``; a city-level
      ``department:D`` those holding ``(D, None)`` (its level only);
    * ``village:V`` sees only what that agent submitted (``agent`` equals
      the principal's subject).

    A record the caller may not see must be answered exactly like one that
    does not exist (case numbers are sequential: existence is not to be
    probeable), so callers turn False into their "not found".
    """
    scope = principal.scope
    if scope.kind == "city":
        return True
    if scope.kind == "town":
        return scope.town in set(towns)
    if scope.kind == "department":
        return (scope.department, scope.town) in {tuple(d) for d in departments}
    if scope.kind == "village":
        return agent is not None and agent == principal.subject
    return False


def visible_town(principal: Principal) -> tuple[bool, str | None]:
    """For lists and statistics: ``(True, None)`` when the caller sees every town, ``(True, X)`` when
    only town X (town scopes), ``(False, None)`` when no town's aggregate is theirs."""
    scope = principal.scope
    if scope.kind == "city":
        return True, None
    if scope.kind == "town":
        return True, scope.town
    return False, None


def require_role(principal: Principal, *roles: str, action: str = "perform this action") -> None:
    """Raise :class:`Forbidden` unless ``principal.role`` is one of ``roles``.

    ``roles`` must be non-empty members of :data:`ROLES` (a typo is a
    programming error and raises ``ValueError``).
    """
    if not roles:
        raise ValueError("require_role needs at least one role")
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise ValueError(f"unknown role(s) {unknown!r}; expected members of ROLES")
    if principal.role not in roles:
        raise Forbidden(
            f"role {principal.role} may not {action} (requires one of: {', '.join(roles)})"
        )
