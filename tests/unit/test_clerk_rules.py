"""The clerk's workbench rules (services/portal/clerk_rules.py): no broker, no service."""
from datetime import date

from services.portal import clerk_rules as rules

VALID_ID = "11010519491231002X"
TOWN, OTHER = "320583101", "320583102"
TOWNS = [{"code": TOWN, "name": "玉山镇"}, {"code": OTHER, "name": "巴城镇"}]
ITEM = {"code": "MZ-0002", "name": "最低生活保障申请", "kind": "promised", "delivery": ["pickup", "mail"],
        "materials": [
            {"code": "idcard", "name": "身份证", "form": "copy", "required": True, "deferrable": False},
            {"code": "apply", "name": "申请书", "form": "original", "required": True, "deferrable": False},
            {"code": "bank", "name": "银行账户", "form": "copy", "required": True, "deferrable": True},
            {"code": "medical", "name": "病历", "form": "copy", "required": False, "deferrable": False}]}


def form(**changes):
    base = {"applicant_type": "person", "name": "王秀英", "id_number": VALID_ID.lower(), "phone": "138 1234 5678",
            "town": TOWN, "delivery": "pickup", "material-idcard": "copy", "material-apply": "original",
            "material-bank": "original", "material-medical": "none"}
    base.update(changes)
    return base


def test_search_finds_by_code_or_name_exact_code_first():
    items = [{"code": "MZ-0010", "name": "老年人补贴"}, {"code": "MZ-0001", "name": "老年人优待证办理"},
             {"code": "RS-0001", "name": "社保卡"}]
    assert [i["code"] for i in rules.search_items(items, "mz-0001")] == ["MZ-0001"]
    assert [i["code"] for i in rules.search_items(items, "老年人")] == ["MZ-0001", "MZ-0010"]
    assert [i["code"] for i in rules.search_items(items, "MZ-00")] == ["MZ-0001", "MZ-0010"]
    assert rules.search_items(items, "  ") == []


def test_material_states_follow_the_catalogue():
    rows = {r["code"]: r for r in rules.material_rows(ITEM)}
    assert [o for o, _ in rows["bank"]["options"]] == ["original", "copy", "deferred"]  # 容缺
    assert [o for o, _ in rows["apply"]["options"]] == ["original", "copy", "none"]
    # not chosen yet: not brought (the safe default: nothing is accepted that was not seen)
    assert rows["apply"]["chosen"] == "none" and rows["bank"]["chosen"] == "deferred"
    assert rules.material_rows(ITEM, {"apply": "original"})[1]["chosen"] == "original"


def test_materials_brought_a_copy_is_not_the_original():
    codes, problems = rules.materials_brought(ITEM, {"idcard": "copy", "apply": "copy", "bank": "deferred",
                                                     "medical": "original"})
    assert codes == ["idcard", "medical"] and problems == {}
    _, problems = rules.materials_brought(ITEM, {"apply": "deferred", "idcard": "bogus"})
    assert problems == {"material-apply": "此材料不可容缺后补", "material-idcard": "请选择材料的提交情况"}


def test_check_field_messages():
    assert rules.check_field("id_number", VALID_ID.lower()) is None
    assert "校验位" in rules.check_field("id_number", "110105194912310021")
    assert rules.check_field("phone", "13812345678") is None
    assert "手机号码" in rules.check_field("phone", "12345")
    assert "统一社会信用代码" in rules.check_field("credit_code", "91320583MA1XXXXX")
    assert rules.check_field("email", "a@b.cn") is None and rules.check_field("email", "a@b") is not None
    assert rules.check_field("phone", "") is None  # required-ness is the submit's


def test_build_submission_body():
    body, problems, values = rules.build_submission(ITEM, form(), TOWN, TOWNS)
    assert problems == {}
    assert body == {"item_code": "MZ-0002", "materials": ["idcard", "apply", "bank"], "delivery": "pickup",
                    "applicant": {"type": "person", "name": "王秀英", "id_number": VALID_ID,
                                  "phone": "13812345678", "channel": "sms"}}
    # 全城通办: another town's resident; mail with its address; e-mail notices
    body, problems, _ = rules.build_submission(ITEM, form(town=OTHER, delivery="mail", mail_address="巴城镇湖滨路1号",
                                                          email="w@example.cn", notify="email"), TOWN, TOWNS)
    assert problems == {} and body["applicant"]["town"] == OTHER and body["mail_address"] == "巴城镇湖滨路1号"
    assert body["applicant"]["email"] == "w@example.cn" and body["applicant"]["channel"] == "email"


def test_build_submission_problems_keep_what_was_typed():
    body, problems, values = rules.build_submission(
        ITEM, form(id_number="110105194912310021", phone="", delivery="mail", town="999999999",
                   notify="email"), TOWN, TOWNS)
    assert body is None
    assert set(problems) == {"id_number", "phone", "mail_address", "town", "email"}
    assert values["id_number"] == "110105194912310021" and values["name"] == "王秀英"
    _, problems, _ = rules.build_submission({**ITEM, "delivery": ["pickup"]}, form(delivery="mail"), TOWN, TOWNS)
    assert "delivery" in problems


def test_service_problems_land_by_the_fields():
    by_field, rest = rules.service_problems({"applicant": {"id_number": ["not valid"], "phone": ["bad"]},
                                             "materials": ["zzz"]})
    assert by_field == {"id_number": "not valid", "phone": "bad"} and rest == ["materials: zzz"]
    assert rules.service_problems({"applicant_town": ["only its own town"]})[0] == {"town": "only its own town"}
    assert rules.service_problems(None) == ({}, [])


def case(**changes):
    base = {"case_number": f"{TOWN}-20260105-00001", "accepting_town": TOWN, "status": "in_review",
            "allowed_actions": [], "missing_materials": [], "deferred_materials": []}
    base.update(changes)
    return base


def steps_of(c):
    return [(s["kind"], s.get("step") or s["title"]) for s in rules.next_steps(c, TOWN)]


def test_next_steps_by_state():
    pending = case(status="pending_materials", allowed_actions=["complete_materials", "return", "supplement"],
                   missing_materials=[{"code": "photo", "name": "照片"}])
    assert steps_of(pending) == [("action", "supplement"), ("action", "return")]
    assert rules.next_steps(pending, TOWN)[0]["materials"] == [{"code": "photo", "name": "照片"}]
    review = case(allowed_actions=["decide", "deliver_deferred", "extend", "pause", "record_decision",
                                   "request_materials"], deferred_materials=[{"code": "bank", "name": "银行账户"}])
    assert steps_of(review) == [("action", "deferred"), ("action", "pause"), ("text", "延期"), ("text", "审批")]
    assert steps_of(case(status="paused", allowed_actions=["resume", "decide"])) == [("action", "resume"),
                                                                                   ("text", "审批")]
    assert steps_of(case(status="returned", allowed_actions=["request_review"])) == [("action", "review")]
    assert steps_of(case(status="returned", allowed_actions=["request_review"], review_case="x")) == [
        ("text", "复核")]
    assert steps_of(case(status="completed", delivery="mail")) == [("text", "送达")]
    # another centre's case: only said, not done here
    assert all(k == "text" for k, _ in steps_of(case(accepting_town=OTHER, allowed_actions=["pause"])))


def test_todays_cases_in_shanghai_newest_first():
    cases = [{"case_number": "a", "accepted_at": "2026-01-04T15:59:00+00:00"},  # 23:59 on the 4th in Shanghai
             {"case_number": "b", "accepted_at": "2026-01-04T16:01:00+00:00"},  # 00:01 on the 5th
             {"case_number": "c", "accepted_at": "2026-01-05T02:00:00Z"}]
    assert [c["case_number"] for c in rules.todays_cases(cases, date(2026, 1, 5))] == ["c", "b"]
    assert rules.local_time("2026-01-05T02:00:00+00:00") == "2026-01-05 10:00"
    assert rules.local_time("2026-01-05T02:00:00", with_date=False) == "10:00"


def test_handed_codes_are_kept_per_desk_and_forgotten_after_their_time():
    now = [1000.0]
    codes = rules.HandedCodes(ttl=60, clock=lambda: now[0])
    codes.keep("desk-a", "320583101-20261207-00001", "ABCD2345")
    codes.keep("desk-a", "320583101-20261207-00002", None)  # a case without a code (a consultation)
    assert codes.get("desk-a", "320583101-20261207-00001") == "ABCD2345"
    assert codes.get("desk-b", "320583101-20261207-00001") is None, "another desk never prints this one's code"
    assert codes.get("desk-a", "320583101-20261207-00002") is None
    now[0] += 61
    assert codes.get("desk-a", "320583101-20261207-00001") is None
