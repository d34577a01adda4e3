"""The back office's and agents' workbench rules: urgency, orders, forms into request bodies."""
from datetime import date

from services.portal import workbench_rules as rules

TODAY = date(2026, 3, 10)


def item(id_, deadline, days_left, kind="promised", overdue=False, paused=False):
    return {"id": id_, "deadline": deadline, "days_left": days_left, "kind": kind, "overdue": overdue,
            "paused": paused}


def test_colour_red_when_overdue_yellow_within_threshold_instant_only_red_paused_apart():
    assert rules.colour_of(item(1, "2026-03-09", -1, overdue=True), TODAY) == rules.RED
    assert rules.colour_of(item(1, "2026-03-09", 0), TODAY) == rules.RED, "past the deadline by date"
    assert rules.colour_of(item(1, "2026-03-11", 1), TODAY) == rules.YELLOW
    assert rules.colour_of(item(1, "2026-03-10", 0), TODAY) == rules.YELLOW, "due today"
    assert rules.colour_of(item(1, "2026-03-12", 2), TODAY) == rules.GREEN
    assert rules.colour_of(item(1, "2026-03-12", 2), TODAY, yellow_days=2) == rules.YELLOW
    assert rules.colour_of(item(1, "2026-03-10", 0, kind="instant"), TODAY) == rules.GREEN
    assert rules.colour_of(item(1, "2026-03-01", -5, overdue=True, paused=True), TODAY) == rules.PAUSED


def test_worklist_by_urgency_red_then_yellow_then_by_deadline_with_words():
    items = [item(1, "2026-04-01", 15), item(2, "2026-03-11", 1), item(3, "2026-03-20", 8),
             item(4, "2026-03-05", -3, overdue=True), item(5, "2026-03-10", 0), item(6, "2026-03-02", -6,
                                                                                       overdue=True)]
    ranked = rules.by_urgency(items, TODAY)
    assert [i["id"] for i in ranked] == [6, 4, 5, 2, 3, 1]
    assert [i["colour"] for i in ranked] == ["red", "red", "yellow", "yellow", "green", "green"]
    assert ranked[0]["colour_label"] == "红牌·已超期" and ranked[2]["colour_label"] == "黄牌·临近期限"


def test_yellow_days_from_the_extras():
    assert rules.yellow_days_of({}) == 1
    assert rules.yellow_days_of({"yellow_days": "3"}) == 3
    assert rules.yellow_days_of({"yellow_days": "x"}) == 1


def test_escalations_overdue_first_and_replies_oldest_first():
    escs = [{"case_number": "A", "deadline": "2026-03-20", "overdue": False},
            {"case_number": "B", "deadline": "2026-03-05", "overdue": True},
            {"case_number": "C", "deadline": "2026-03-12", "overdue": False}]
    assert [e["case_number"] for e in rules.escalations_in_order(escs)] == ["B", "C", "A"]
    replies = [{"case_number": "X", "created_at": "2026-03-09T08:00:00+00:00"},
               {"case_number": "Y", "created_at": "2026-03-01T08:00:00+00:00"}]
    assert [r["case_number"] for r in rules.oldest_first(replies)] == ["Y", "X"]


def test_decision_refusal_needs_a_reason_and_approval_keeps_its_number():
    assert rules.decision_body({"outcome": "refused"}).problems == {"reason": "不予批准须写明理由"}
    assert "outcome" in rules.decision_body({}).problems
    ok = rules.decision_body({"outcome": "approved", "result_number": " RS-1 ", "valid_until": "2027-12-31"})
    assert ok.ok and ok.body == {"outcome": "approved", "reason": None, "result_number": "RS-1",
                                 "valid_until": "2027-12-31"}
    assert "valid_until" in rules.decision_body({"outcome": "approved", "valid_until": "soon"}).problems


def test_materials_all_at_once_from_the_checklist_and_free_lines():
    listed = [{"code": "idcard", "name": "身份证"}, {"code": "form", "name": "申请表"}]
    parsed = rules.materials_body({"material_codes": ["form", "bogus"], "other": "收入证明\n\n", "reason": "缺"},
                                  listed)
    assert parsed.ok and parsed.body["materials"] == [{"code": "form", "name": "申请表"},
                                                      {"code": None, "name": "收入证明"}]
    assert set(rules.materials_body({"material_codes": []}, listed).problems) == {"material", "reason"}


def test_extension_procedure_absence_and_post_forms():
    assert rules.extension_body({"days": "3", "reason": "需补充调查"}).body == {"days": 3, "reason": "需补充调查"}
    assert "days" in rules.extension_body({"days": "0", "reason": "x"}).problems
    assert "procedure" in rules.procedure_body({"procedure": "喝茶", "reason": "x"}).problems
    absence = rules.absence_body({"holder": "a-1", "from": "2026-11-02T00:00", "to": "2026-11-05T00:00",
                                  "reason": "请假"})
    assert absence.ok and absence.body["from"] == "2026-11-02T00:00:00"
    assert "to" in rules.absence_body({"holder": "a", "from": "2026-11-05T00:00", "to": "2026-11-02T00:00",
                                       "reason": "x"}).problems
    assert "b" in rules.post_body({"a": "x", "b": "x"}).problems


def test_submission_carries_the_authorisation_with_shanghai_time_and_help_only_its_person():
    form = {"item_code": "RS-0001", "name": "李四", "id_number": "11010519491231002X", "phone": "13812345678",
            "material_codes": ["idcard"], "auth_by": "李四", "auth_matters": "代为申请",
            "signed_at": "2026-03-10T09:30", "auth_method": "手写签名", "fee_fen": ""}
    parsed = rules.submission_body(form, "320583101")
    assert parsed.ok
    assert parsed.body["authorisation"] == {"by": "李四", "matters": "代为申请",
                                            "signed_at": "2026-03-10T09:30:00+08:00", "method": "手写签名"}
    assert parsed.body["applicant"]["town"] == "320583101" and parsed.body["fee_fen"] == 0
    assert set(rules.submission_body({}, "320583101").problems) >= {"name", "id_number", "phone", "signed_at",
                                                                   "auth_by", "item_code"}
    assert rules.help_body({"content": "问", "solution": "答", "name": "王", "phone": "13812345678"}).ok
    assert rules.reply_body({"method": "fax", "what_said": "x"}).problems == {"method": "请选择回复方式（电话或上门）"}


def test_service_problems_flatten_the_api_details():
    body = {"error": "bad_request", "message": "invalid",
            "details": {"applicant": {"phone": ["not a valid mainland mobile number"]}, "fee_fen": ["at most 0"]}}
    assert rules.service_problems(body) == {"phone": "not a valid mainland mobile number", "fee_fen": "at most 0"}
    assert rules.service_problems({"message": "x"}) == {}
    assert rules.service_problems(b"oops") == {}
