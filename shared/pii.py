"""Validation and masking of personal identifiers (PII).

Citizens' identifiers must not leak into logs, traces or error messages: the
个人信息保护法 (Personal Information Protection Law) treats ID numbers and phone
numbers as personal information, so everything that leaves a service passes
through :func:`mask_value` / :func:`mask_text`.

Covered identifiers:

* 居民身份证号码 (resident ID), GB 11643-1999: 17 digits + ISO 7064 MOD 11-2
  check character (0-9 or X); also the old 15-digit numbers when masking.
* 统一社会信用代码 (unified social credit code), GB 32100-2015.
* Mainland mobile numbers, optionally with a ``+86`` / ``86`` prefix.

Pure standard library, no I/O.  Only ASCII digits 0-9 count as digits.

Masking rules of :func:`mask_text` (free text):

* a run of exactly 18 characters (17 digits + digit/X/x) is masked as a
  resident ID, whether or not its check character is right;
* a run of exactly 15 digits is masked as an old-style resident ID
  (first 6 + 6 stars + last 3);
* a run of 11 digits starting with 1[3-9], optionally preceded by ``+86`` or
  ``86``, is masked as a mobile number;
* "run" means: not preceded or followed by another ASCII digit.  Digit runs of
  any other length -- in particular runs longer than 18 digits such as
  tracking or bank numbers -- are left alone;
* a mobile number written in groups, ``138-1234-5678`` or ``138 1234 5678``,
  is masked keeping its separators;
* a unified social credit code (2 characters of the code set, 6 digits,
  10 characters of the code set; not next to another ASCII letter or digit)
  is masked keeping its first and last 4 characters, whether or not its
  check character is right (an applicant organisation's code is theirs);
* what is not masked: case numbers (``320583101-20261125-00001``: runs of
  9, 8 and 5 digits), dates, amounts in fen, item codes (``MZ-0001``).

Masked output contains no run that matches again, so masking is idempotent.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

__all__ = [
    "is_valid_resident_id",
    "is_valid_credit_code",
    "is_valid_mobile",
    "normalise_resident_id",
    "mask_resident_id",
    "mask_credit_code",
    "mask_phone",
    "mask_text",
    "mask_value",
]

MASK_CHAR = "*"

# --- resident ID (GB 11643-1999) -------------------------------------------

_RESIDENT_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_RESIDENT_ID_CHECK = "10X98765432"  # indexed by weighted sum % 11
_RESIDENT_ID_RE = re.compile(r"[0-9]{17}[0-9Xx]")
_MIN_BIRTH_YEAR = 1900


def _resident_id_check_char(first17: str) -> str:
    total = sum(int(c) * w for c, w in zip(first17, _RESIDENT_ID_WEIGHTS, strict=True))
    return _RESIDENT_ID_CHECK[total % 11]


def is_valid_resident_id(value: str, today: date | None = None) -> bool:
    """Return True if ``value`` is a valid 18-char resident ID (check char and birth date)."""
    if not isinstance(value, str) or _RESIDENT_ID_RE.fullmatch(value) is None:
        return False
    if _resident_id_check_char(value[:17]) != value[17].upper():
        return False
    try:
        birth = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    if today is None:
        today = date.today()
    return _MIN_BIRTH_YEAR <= birth.year and birth <= today


def normalise_resident_id(value: str) -> str:
    """Strip surrounding whitespace and upper-case a trailing x check character."""
    return value.strip().upper()


# --- unified social credit code (GB 32100-2015) ----------------------------

_CREDIT_CODE_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I, O, S, V, Z
_CREDIT_CODE_INDEX = {c: i for i, c in enumerate(_CREDIT_CODE_CHARSET)}
_CREDIT_CODE_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_CREDIT_CODE_RE = re.compile(r"[0-9A-HJ-NPQRTUWXY]{18}")


def _credit_code_check_char(first17: str) -> str:
    total = sum(_CREDIT_CODE_INDEX[c] * w for c, w in zip(first17, _CREDIT_CODE_WEIGHTS, strict=True))
    check = 31 - total % 31
    return _CREDIT_CODE_CHARSET[0 if check == 31 else check]


def is_valid_credit_code(value: str) -> bool:
    """Return True if ``value`` is a valid upper-case 18-char unified social credit code.

    Lower-case input is rejected; callers normalise with ``value.strip().upper()`` first.
    """
    if not isinstance(value, str) or _CREDIT_CODE_RE.fullmatch(value) is None:
        return False
    return _credit_code_check_char(value[:17]) == value[17]


# --- mobile numbers ----------------------------------------------------------

_MOBILE_RE = re.compile(r"(\+86|86)?(1[3-9][0-9]{9})")


def is_valid_mobile(value: str) -> bool:
    """Return True if ``value`` is a mainland mobile number, optionally prefixed +86 or 86."""
    return isinstance(value, str) and _MOBILE_RE.fullmatch(value) is not None


# --- masking of single values -------------------------------------------------


def _keep_ends(value: str, head: int, tail: int) -> str:
    """Keep ``head`` leading and ``tail`` trailing chars, star the rest (all stars if too short)."""
    if len(value) <= head + tail:
        return MASK_CHAR * len(value)
    return value[:head] + MASK_CHAR * (len(value) - head - tail) + value[len(value) - tail:]


def mask_resident_id(value: str) -> str:
    """Mask a resident ID as 110105********002X (15-digit IDs: first 6 + stars + last 3)."""
    value = normalise_resident_id(value)
    if len(value) == 15:
        return _keep_ends(value, 6, 3)
    return _keep_ends(value, 6, 4)


def mask_credit_code(value: str) -> str:
    """Mask a credit code keeping its first 4 and last 4 characters."""
    return _keep_ends(value.strip(), 4, 4)


def mask_phone(value: str) -> str:
    """Mask a phone number as 138****5678, keeping a +86 / 86 prefix if present."""
    value = value.strip()
    match = _MOBILE_RE.fullmatch(value)
    if match is not None:
        return (match.group(1) or "") + _keep_ends(match.group(2), 3, 4)
    return _keep_ends(value, 3, 4)


# --- masking of free text -----------------------------------------------------

# Alternatives are length-disjoint and all anchored by "no ASCII digit
# before/after", so the order only matters for readability.
_PII_IN_TEXT_RE = re.compile(
    r"(?<![0-9])(?:"
    r"(?P<id18>[0-9]{17}[0-9Xx])"
    r"|(?P<id15>[0-9]{15})"
    r"|(?P<prefix>\+86|86)?(?P<mobile>1[3-9][0-9]{9})"
    r"|(?P<spaced>1[3-9][0-9](?P<sep>[- ])[0-9]{4}(?P=sep)[0-9]{4})"
    r")(?![0-9])"
)

# GB 32100: registration authority and kind (2 characters of the code set), the 6-digit division code,
# then 10 characters of the code set; a word of letters only cannot match. Bounded by no ASCII letter or
# digit on either side (an 18-digit run is masked as an ID above).
_CREDIT_CODE_IN_TEXT_RE = re.compile(
    r"(?<![0-9A-Za-z])[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}(?![0-9A-Za-z])"
)


def _mask_match(match: re.Match[str]) -> str:
    id18 = match.group("id18")
    if id18 is not None:
        return _keep_ends(id18, 6, 4)  # keep the original x/X: change nothing but the middle
    id15 = match.group("id15")
    if id15 is not None:
        return _keep_ends(id15, 6, 3)
    spaced = match.group("spaced")
    if spaced is not None:  # 138-1234-5678, 138 1234 5678: the separators stay, the middle goes
        sep = match.group("sep")
        return f"{spaced[:3]}{sep}{MASK_CHAR * 4}{sep}{spaced[-4:]}"
    return (match.group("prefix") or "") + _keep_ends(match.group("mobile"), 3, 4)


def mask_text(text: str) -> str:
    """Return ``text`` with every resident-ID-like, credit-code-like and mobile-like run masked.

    The one masking function of the suite: HTTP responses (shared.web), notices leaving notify and
    every log line (shared.logging) go through it, whatever field the text came from."""
    text = _PII_IN_TEXT_RE.sub(_mask_match, text)
    return _CREDIT_CODE_IN_TEXT_RE.sub(lambda m: _keep_ends(m.group(0), 4, 4), text)


def mask_value(obj: Any) -> Any:
    """Return a copy of ``obj`` with strings inside dicts/lists/tuples masked (dict keys kept)."""
    if isinstance(obj, str):
        return mask_text(obj)
    if isinstance(obj, dict):
        return {key: mask_value(item) for key, item in obj.items()}
    if isinstance(obj, list):
        return [mask_value(item) for item in obj]
    if isinstance(obj, tuple):
        items = [mask_value(item) for item in obj]
        if hasattr(obj, "_fields"):  # namedtuple
            return type(obj)(*items)
        return tuple(items)
    return obj
