"""Query codes (查询码): what an applicant proves, with the case number, to see their case's progress without
signing in. Pure functions, no I/O.

A code is random, short enough to type from a printed notice (8 characters of an alphabet without 0/O, 1/I/L),
and kept only as a salted SHA-256 hash: it is short, so what protects it is the rate limit on wrong attempts
(the portal's), not the hash's cost. The plaintext exists once, in the answer that opens the case (or issues
a new code), to be printed on the notice; never in the ledger, a list, an event or a log line.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets

from shared.vocabulary import CaseStatus

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
LENGTH = 8
SCHEME = "sha256"
# the notices that tell the applicant how to follow the case: they carry the code and the QR code
TRACKED_NOTICES = ("acceptance", "promise", "one_time_notice")

# what the applicant reads: the status, and what happens next (下一步)
STATUS_TEXT = {
    CaseStatus.PENDING_MATERIALS: "待补正材料",
    CaseStatus.INITIAL_REVIEW: "初审中",
    CaseStatus.IN_REVIEW: "审查办理中",
    CaseStatus.PAUSED: "特别程序中（暂停计时）",
    CaseStatus.COMPLETED: "已办结",
    CaseStatus.RETURNED: "不予受理（已退回）",
    CaseStatus.CONSULTED: "已告知",
}
NEXT_STEP = {
    CaseStatus.PENDING_MATERIALS: ("请按一次性告知书补齐全部材料，到任一便民服务中心窗口提交；"
                                   "办理时限自材料补齐之日起计算。"),
    CaseStatus.INITIAL_REVIEW: "镇（街道）便民服务中心初审中，通过后报送市级部门办理，无需您再跑腿。",
    CaseStatus.IN_REVIEW: "部门正在审查，办结后将以短信等方式通知您，请保持电话畅通。",
    CaseStatus.PAUSED: "正在进行现场勘察、听证等特别程序，所需时间不计入承诺时限，结束后继续办理。",
    CaseStatus.COMPLETED: "已办结，请按办结通知领取或签收办理结果；欢迎对本次服务作出评价。",
    CaseStatus.RETURNED: "请查阅不予受理通知书；如有异议，可向受理中心申请复核。",
    CaseStatus.CONSULTED: "请按告知的地点和材料前往办理。",
}


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def normalise(text: str | None) -> str:
    """As typed: case and spaces or dashes do not matter."""
    return "".join(ch for ch in (text or "").upper() if ch not in " -\t")


def hash_code(code: str, salt: str | None = None) -> str:
    """`sha256$<salt>$<digest>`: a per-case salt, so two cases' hashes never compare."""
    salt = salt or secrets.token_hex(8)
    digest = hashlib.sha256(f"{salt}:{normalise(code)}".encode()).hexdigest()
    return f"{SCHEME}${salt}${digest}"


def matches(code: str | None, stored: str | None) -> bool:
    """Whether `code` is the one hashed in `stored` (False for no code or no hash), in constant time."""
    if not code or not stored or stored.count("$") != 2:
        return False
    scheme, salt, _ = stored.split("$")
    if scheme != SCHEME:
        return False
    return hmac.compare_digest(hash_code(code, salt).encode(), stored.encode())


def track_url(portal_url: str | None, case_number: str) -> str:
    """Where the QR code points: the portal's progress page for the case (relative when no URL is set)."""
    return f"{(portal_url or '').rstrip('/')}/track?case={case_number}"


def public_progress(case_number: str, status: str, promised_date, completed_on=None) -> dict:
    """All the applicant's lookup answers: the status, the promised date and the next step, nothing else."""
    return {"case_number": case_number, "status": status, "status_text": STATUS_TEXT.get(status, status),
            "promised_date": promised_date, "completed_on": completed_on,
            "next_step": NEXT_STEP.get(status, "")}
