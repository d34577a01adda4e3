"""Notice texts and channel choice (办结通知, 受理通知): plain Python, no I/O."""
from __future__ import annotations

from datetime import date

OUTCOME_WORDS = {"approved": "已办结，准予办理", "refused": "已办结，不予办理"}


def acceptance_text(case_number: str, item_name: str, deadline: date, kind: str) -> str:
    if kind == "instant":
        return f"【全城通办】您申请的“{item_name}”已受理（受理号{case_number}），即办件当日办结。"
    return (f"【全城通办】您申请的“{item_name}”已受理（受理号{case_number}），"
            f"承诺于{deadline:%Y年%m月%d日}前办结。")


def result_text(case_number: str, item_name: str, outcome: str, reason: str | None,
                result_number: str | None) -> str:
    text = f"【全城通办】您申请的“{item_name}”（受理号{case_number}）{OUTCOME_WORDS[outcome]}"
    if outcome == "approved" and result_number:
        text += f"，证照/文书编号{result_number}"
    if outcome == "refused" and reason:
        text += f"，理由：{reason}"
    return text + "。"


def channel_for(requested: str, available: set[str]) -> str:
    """Use the channel the applicant asked for where this deployment has it, else the delivery log."""
    return requested if requested in available else "log"
