"""The applicant's lookup (办件查询), rating (好差评) and complaint (投诉) at the portal: the rules, without I/O.

- `AttemptLimiter`: wrong lookups per client address and per case number in a sliding window (5 in 10
  minutes); in this process's memory, which is enough for one portal instance (several instances would need a
  shared store).
- `Signer`: short HMAC tokens with an expiry, for the public forms: the form token bound to a browser cookie
  (the public forms' CSRF protection) and the proof of a successful lookup that rating and complaining need
  (the applicant proves the query code once, not on every form).
- Reading the rating and complaint forms into the evaluation service's bodies.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections import deque

from shared.pii import is_valid_mobile

CASE_NUMBER = re.compile(r"^(\d{9})-\d{8}-\d{5}$")
MAX_WRONG = 5
WINDOW_SECONDS = 600
PROOF_SECONDS = 1800  # after a lookup, how long the applicant may rate or complain without the code again
FORM_SECONDS = 3600 * 4
LEVELS = {1: "非常满意", 2: "满意", 3: "基本满意", 4: "不满意", 5: "非常不满意"}
COMMENT_MAX = 1000
COMPLAINT_MAX = 4000
NOT_FOUND = "未找到与该受理号和查询码相符的办件，请核对受理通知书后重试。"
TOO_MANY = "查询码错误次数过多，请10分钟后再试。"


def town_of(case_number: str) -> str | None:
    """The accepting town of a case number (`<town>-<date>-<sequence>`), or None when it is not one."""
    m = CASE_NUMBER.match(case_number or "")
    return m.group(1) if m else None


def clean_case_number(text: str | None) -> str:
    return (text or "").strip()[:40]


class AttemptLimiter:
    """Wrong attempts per key (a client address, a case number) within `window` seconds; a key with `limit`
    of them is refused until the oldest ages out. Memory stays bounded: old entries are dropped as they age,
    and at most `max_keys` keys are kept (the oldest first out)."""

    def __init__(self, limit: int = MAX_WRONG, window: float = WINDOW_SECONDS, clock=time.monotonic,
                 max_keys: int = 100_000):
        self.limit, self.window, self.clock, self.max_keys = limit, window, clock, max_keys
        self._failures: dict[str, deque] = {}

    def _recent(self, key: str, now: float) -> deque | None:
        q = self._failures.get(key)
        if q is None:
            return None
        while q and q[0] <= now - self.window:
            q.popleft()
        if not q:
            del self._failures[key]
            return None
        return q

    def blocked(self, *keys: str) -> bool:
        now = self.clock()
        return any(len(q) >= self.limit for q in (self._recent(k, now) for k in keys if k) if q is not None)

    def fail(self, *keys: str) -> None:
        now = self.clock()
        for key in (k for k in keys if k):
            q = self._recent(key, now)
            if q is None:
                if len(self._failures) >= self.max_keys:
                    self._failures.pop(next(iter(self._failures)))
                q = self._failures[key] = deque(maxlen=self.limit)
            q.append(now)


class Signer:
    """`<expiry>.<hmac>` tokens over a purpose and a subject: a token for one purpose or subject is worthless
    for another, and stops working at its expiry."""

    def __init__(self, secret: bytes, clock=time.time):
        self.secret, self.clock = secret, clock

    def _mac(self, purpose: str, subject: str, expiry: int) -> str:
        digest = hmac.new(self.secret, f"{purpose}\n{subject}\n{expiry}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:18]).decode()

    def sign(self, purpose: str, subject: str, ttl: int) -> str:
        expiry = int(self.clock()) + ttl
        return f"{expiry}.{self._mac(purpose, subject, expiry)}"

    def check(self, purpose: str, subject: str, token: str | None) -> bool:
        expiry, _, mac = (token or "").partition(".")
        if not expiry.isdigit() or int(expiry) < self.clock():
            return False
        return hmac.compare_digest(mac.encode(), self._mac(purpose, subject, int(expiry)).encode())


def secret_from(key_material: bytes | None) -> bytes:
    """The forms' HMAC secret: derived from the portal's signing key (the same for every instance sharing the
    key), or random for this process when there is none."""
    import os

    if not key_material:
        return os.urandom(32)
    return hashlib.sha256(b"tongban-portal-public-forms\n" + key_material).digest()


def rating_from_form(form: dict, case_number: str, channel: str) -> tuple[dict | None, dict]:
    """The evaluation service's rating body (stage completion), or the field problems in Chinese."""
    problems = {}
    try:
        level = int(form.get("level") or 0)
    except ValueError:
        level = 0
    if level not in LEVELS:
        problems["level"] = "请选择一个评价等级。"
    comment = (form.get("comment") or "").strip()
    if len(comment) > COMMENT_MAX:
        problems["comment"] = f"意见建议请勿超过{COMMENT_MAX}字。"
    if problems:
        return None, problems
    return {"case_number": case_number, "level": level, "channel": channel, "stage": "completion",
            "comment": comment or None}, {}


def complaint_from_form(form: dict, case_number: str) -> tuple[dict | None, dict]:
    """The evaluation service's complaint body (有诉即办, channel online), or the field problems."""
    problems = {}
    text = (form.get("text") or "").strip()
    name = (form.get("name") or "").strip()
    phone = (form.get("phone") or "").strip()
    if not text:
        problems["text"] = "请填写投诉内容。"
    elif len(text) > COMPLAINT_MAX:
        problems["text"] = f"投诉内容请勿超过{COMPLAINT_MAX}字。"
    if not name or len(name) > 100:
        problems["name"] = "请填写您的姓名。"
    if not is_valid_mobile(phone):
        problems["phone"] = "请填写正确的11位手机号码，以便回复您。"
    if problems:
        return None, problems
    return {"subject": f"办件{case_number}的投诉", "text": text, "case_number": case_number,
            "town": town_of(case_number), "channel": "online", "complainant": {"name": name, "phone": phone}}, {}


def rating_channel(via: str | None) -> str:
    """The 好差评 channel: the QR code on the notice, or the portal online."""
    return "qr_code" if via == "qr" else "online"
