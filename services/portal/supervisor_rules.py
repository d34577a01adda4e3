"""The supervisor's workbench (电子监察), its plain rules: grouping the board, ordering ratings, which step a
rectification or a complaint is at, the months of the figures, the file names of the downloads. No I/O:
services/portal/supervisor_pages.py calls evaluation's API and hands the answers to these functions."""
from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date

from services.portal.forms import town_of_scope as scope_town  # noqa: F401 (the pages read it here)

# colour is never the only sign: every colour has its words (WCAG 1.4.1)
COLOUR_TEXT = {"red": "红色预警（已超期）", "yellow": "黄色预警（临近期限）", "green": "正常"}
COLOURS = ("red", "yellow", "green")

BAD_LEVELS = frozenset({4, 5})  # 不满意, 非常不满意

CHANNEL_NAMES = {"window_device": "窗口评价器", "qr_code": "二维码", "sms_link": "短信", "online": "网上",
                 "phone": "电话", "window": "窗口", "hotline": "12345热线", "letter": "信件"}
STAGE_NAMES = {"acceptance": "受理时", "completion": "办结时"}
RECT_STATE_NAMES = {"open": "待回访", "called_back": "已回访，待整改", "rectified": "已整改，待复评",
                    "closed": "已关闭"}
RECT_OVERDUE_NAMES = {"callback": "回访已超期", "rectification": "整改已超期"}
CLOSED_REASON_NAMES = {"follow_up": "申请人已复评", "declined": "申请人不再复评",
                       "appeal_upheld": "申诉成立，评价作废"}
APPEAL_STATUS_NAMES = {"pending": "待复核", "upheld": "申诉成立", "rejected": "申诉驳回"}
COMPLAINT_STATUS_NAMES = {"received": "已受理", "acknowledged": "已告知", "assigned": "已交办", "resolved": "已办结"}

# the next step of a rectification (整改) in each state, as evaluation's API takes them
RECT_STEPS = {"open": ("callback",), "called_back": ("rectify",), "rectified": ("close",), "closed": ()}
# and of a complaint: assigned again hands it on to someone else
COMPLAINT_STEPS = {"received": ("acknowledge",), "acknowledged": ("assign",), "assigned": ("assign", "resolve"),
                   "resolved": ()}

# what a successful form did, shown after the redirect (?done=<key>): fixed texts, nothing echoed from the URL
DONE = {"callback": "已记录回访。", "rectify": "已记录整改措施。", "close": "整改已关闭（申请人不再复评）。",
        "appeal": "已提出申诉复核。", "upheld": "申诉成立，该评价已作废。", "rejected": "申诉已驳回。",
        "acknowledge": "已告知投诉人正在办理。", "assign": "投诉已交办。", "resolve": "投诉已办结。"}

EXPORT_FORMATS = ("csv", "xlsx")
_MONTH = re.compile(r"(\d{4})-(\d{2})")
_TOWN = re.compile(r"\d{9}")
_DEPT = re.compile(r"[a-z][a-z0-9_]{0,31}")


def is_bad(rating: dict) -> bool:
    return int(rating.get("level") or 0) in BAD_LEVELS


def bad_first(ratings: Iterable[dict]) -> list[dict]:
    """Ratings with the bad ones (不满意/非常不满意, not voided) first, the worst level first; otherwise the
    order given (evaluation lists newest first)."""
    def key(r: dict):
        live_bad = is_bad(r) and not r.get("void")
        return (0 if live_bad else 1, -int(r.get("level") or 0) if live_bad else 0)
    return sorted(ratings, key=key)


def split_bad(ratings: Iterable[dict]) -> tuple[list[dict], list[dict]]:
    """The bad ratings still standing (the worst first), and all the others (voided bad ones among them)."""
    ordered = bad_first(ratings)
    bad = [r for r in ordered if is_bad(r) and not r.get("void")]
    return bad, [r for r in ordered if not (is_bad(r) and not r.get("void"))]


def by_rating(rectifications: Iterable[dict]) -> dict[int, dict]:
    """Rectifications keyed by the rating they belong to."""
    return {r["rating_id"]: r for r in rectifications}


def pending_first(appeals: Iterable[dict]) -> list[dict]:
    """Appeals waiting for a decision first, then decided ones, each oldest first (the order given)."""
    return sorted(appeals, key=lambda a: 0 if a.get("status") == "pending" else 1)


def parse_month(text: str | None) -> str | None:
    """`YYYY-MM` as typed (or from <input type=month>), or None if it is not a month."""
    m = _MONTH.fullmatch((text or "").strip())
    if not m or not 1 <= int(m.group(2)) <= 12 or int(m.group(1)) < 1900:
        return None
    return f"{int(m.group(1)):04d}-{int(m.group(2)):02d}"


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def previous_month(day: date) -> str:
    return f"{day.year - 1:04d}-12" if day.month == 1 else f"{day.year:04d}-{day.month - 1:02d}"


def figure_months(today: date) -> dict[str, str]:
    """The months offered at once on the figures page: last month (the one assessed) and this month."""
    return {"last": previous_month(today), "this": month_of(today)}


def valid_town(text: str | None) -> bool:
    return bool(text) and bool(_TOWN.fullmatch(text))


def valid_department(text: str | None) -> bool:
    return bool(text) and bool(_DEPT.fullmatch(text))


def board_filter(query: dict) -> tuple[dict, dict]:
    """The board's ?town=&department= narrowing as evaluation's parameters, and field problems (in Chinese)
    for what is not a code."""
    params, problems = {}, {}
    town, dept = (query.get("town") or "").strip(), (query.get("department") or "").strip()
    if town:
        if valid_town(town):
            params["town"] = town
        else:
            problems["town"] = "镇（街道）代码为 9 位数字。"
    if dept:
        if valid_department(dept):
            params["department"] = dept
        else:
            problems["department"] = "部门代码为小写字母、数字和下划线，如 minzheng。"
    return params, problems


def export_filename(month: str, fmt: str, town: str | None = None) -> str:
    """The download's name (ASCII, so every browser keeps it): tongban-monthly-<month>[-<town>].<fmt>."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"no export as {fmt}")
    return "tongban-monthly-" + "-".join(p for p in (month, town) if p) + f".{fmt}"



def field_errors(details) -> dict[str, str]:
    """A service's 400 details ({field: [messages]} from marshmallow, or {field: message}) as one text per
    field, to show next to the form's inputs; nested fields are flattened to their leaf names."""
    out: dict[str, str] = {}
    if not isinstance(details, dict):
        return out
    for name, value in details.items():
        if isinstance(value, dict):
            out.update(field_errors(value))
        elif isinstance(value, (list, tuple)):
            out[str(name)] = "；".join(str(v) for v in value)
        else:
            out[str(name)] = str(value)
    return out
