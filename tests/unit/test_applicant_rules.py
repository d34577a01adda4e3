"""The applicant's lookup, rating and complaint rules (portal), the query codes (intake) and the Open311
mapping: no broker, no database."""
import re

import pytest

from services.intake import query_codes
from services.intake.notice_rendering import Tracking, render_pdf
from services.portal import applicant_rules as rules
from services.portal import open311_rules as o311
from tests.unit.test_notices import make, pdf_text, squeeze

ITEM = {"code": "MZ-0002", "name": "最低生活保障申请", "category": "民生保障", "item_type": "行政给付",
        "department": "minzheng", "kind": "promised", "promised_days": 20, "city_wide": True, "in_person": False,
        "materials": [{"code": "idcard", "name": "居民身份证", "form": "copy"},
                      {"code": "medical", "name": "病历", "form": "copy", "required": False, "deferrable": True}]}


# --- query codes ----------------------------------------------------------------------------------------

def test_query_codes_are_random_unambiguous_and_kept_only_as_salted_hashes():
    codes = {query_codes.new_code() for _ in range(200)}
    assert len(codes) == 200
    assert all(len(c) == 8 and not set(c) & set("01ILO") for c in codes)
    code = codes.pop()
    stored = query_codes.hash_code(code)
    assert code not in stored and stored.startswith("sha256$")
    assert stored != query_codes.hash_code(code)  # a salt per case
    assert query_codes.matches(code, stored)
    assert query_codes.matches(f" {code[:4].lower()}-{code[4:]} ", stored)  # as typed
    assert not query_codes.matches(query_codes.new_code(), stored)
    assert not query_codes.matches("", stored) and not query_codes.matches(code, None)
    assert not query_codes.matches(code, "md5$x$y")


def test_the_public_progress_says_status_promised_date_and_next_step_only():
    p = query_codes.public_progress("320583101-20260105-00001", "in_review", "2026-02-01")
    assert set(p) == {"case_number", "status", "status_text", "promised_date", "completed_on", "next_step"}
    assert p["status_text"] == "审查办理中" and "短信" in p["next_step"]
    assert query_codes.track_url("http://portal:8100/", "N-1") == "http://portal:8100/track?case=N-1"
    assert query_codes.track_url(None, "N-1") == "/track?case=N-1"


def test_the_acceptance_notice_prints_the_code_and_the_qr_link(tmp_path):
    data = make("acceptance")
    text = squeeze(pdf_text(render_pdf(data, Tracking("http://portal.example/track?case=X", "ABCD2345")), tmp_path))
    assert "查询码：ABCD2345" in text and "http://portal.example/track?case=X" in text
    without = squeeze(pdf_text(render_pdf(data, Tracking("/track?case=X")), tmp_path))
    assert "ABCD2345" not in without and "重新获取" in without
    assert "进度查询" not in squeeze(pdf_text(render_pdf(data), tmp_path))


# --- the portal's limits and tokens -------------------------------------------------------------------------

def test_wrong_attempts_are_limited_per_key_in_a_sliding_window():
    now = [1000.0]
    limiter = rules.AttemptLimiter(limit=5, window=600, clock=lambda: now[0])
    for _ in range(5):
        assert not limiter.blocked("addr:1", "case:A")
        limiter.fail("addr:1", "case:A")
    assert limiter.blocked("addr:1") and limiter.blocked("addr:2", "case:A") and not limiter.blocked("addr:2")
    now[0] += 601
    assert not limiter.blocked("addr:1", "case:A")


def test_the_limiter_keeps_a_bounded_number_of_keys():
    limiter = rules.AttemptLimiter(max_keys=3)
    for i in range(10):
        limiter.fail(f"k{i}")
    assert len(limiter._failures) == 3


def test_signed_tokens_are_bound_to_purpose_subject_and_time():
    now = [1_000_000.0]
    signer = rules.Signer(b"secret", clock=lambda: now[0])
    token = signer.sign("proof", "N-1", 60)
    assert signer.check("proof", "N-1", token)
    assert not signer.check("proof", "N-2", token) and not signer.check("form", "N-1", token)
    assert not rules.Signer(b"other").check("proof", "N-1", token)
    assert not signer.check("proof", "N-1", None) and not signer.check("proof", "N-1", "x.y")
    now[0] += 61
    assert not signer.check("proof", "N-1", token)


def test_rating_and_complaint_forms():
    body, problems = rules.rating_from_form({"level": "2", "comment": " 很好 "}, "N-1", rules.rating_channel("qr"))
    assert problems == {} and body == {"case_number": "N-1", "level": 2, "channel": "qr_code",
                                       "stage": "completion", "comment": "很好"}
    assert rules.rating_from_form({"level": "7"}, "N-1", "online")[1].keys() == {"level"}
    assert rules.rating_from_form({}, "N-1", "online")[0] is None
    body, problems = rules.complaint_from_form({"text": "等太久", "name": "张三", "phone": "13812345678"},
                                               "320583101-20260105-00001")
    assert problems == {} and body["town"] == "320583101" and body["channel"] == "online"
    assert set(rules.complaint_from_form({"text": "", "name": "", "phone": "123"}, "N")[1]) == {"text", "name",
                                                                                               "phone"}
    assert rules.town_of("320583101-20260105-00001") == "320583101" and rules.town_of("../x") is None


# --- Open311 ---------------------------------------------------------------------------------------------------

def test_an_item_as_a_service_and_its_definition():
    service = o311.service_of(ITEM, {"minzheng": "民政"})
    assert service["service_code"] == "MZ-0002" and service["group"] == "民政" and service["type"] == "realtime"
    assert service["metadata"] is True and "全城通办" in service["keywords"]
    definition = o311.definition_of(ITEM)
    codes = [a["code"] for a in definition["attributes"]]
    assert codes == ["id_number", "applicant_town", "materials"]
    materials = definition["attributes"][-1]
    assert materials["datatype"] == "multivaluelist" and [v["key"] for v in materials["values"]] == ["idcard",
                                                                                                      "medical"]
    assert [a["order"] for a in definition["attributes"]] == [1, 2, 3]
    assert not o311.offered({**ITEM, "in_person": True})


def test_a_request_becomes_the_windows_case_body():
    plain, attributes = o311.request_fields({
        "service_code": ["MZ-0002"], "first_name": ["三"], "last_name": ["张"], "phone": ["13812345678"],
        "attribute[id_number]": ["11010519491231002X"], "attribute[materials][]": ["idcard", "medical"],
        "attribute[applicant_town]": ["320583102"]})
    body = o311.case_body(plain, attributes, ITEM)
    assert body == {"item_code": "MZ-0002", "materials": ["idcard", "medical"], "in_person": False,
                    "applicant": {"type": "person", "name": "张三", "id_number": "11010519491231002X",
                                  "phone": "13812345678", "channel": "sms", "town": "320583102"}}
    assert o311.json_request_fields({"attribute": {"materials": ["idcard"]}, "phone": "1"}) == {
        "attribute[materials]": ["idcard"], "phone": ["1"]}
    with pytest.raises(o311.Open311Error) as missing:
        o311.case_body({"first_name": "三"}, {}, ITEM)
    assert missing.value.status == 400 and "phone" in missing.value.description
    assert missing.value.body() == [{"code": 400, "description": missing.value.description}]
    with pytest.raises(o311.Open311Error, match="not materials"):
        o311.case_body(plain, {**attributes, "materials": ["passport"]}, ITEM)


def test_a_case_as_a_request_has_nothing_personal():
    case = {"case_number": "N-1", "status": "completed", "item_code": "MZ-0002", "item_name": "最低生活保障申请",
            "department": "minzheng", "accepted_at": "2026-01-05T01:00:00+00:00", "deadline": "2026-02-01",
            "applicant": {"name": "张三", "phone": "138****5678"},
            "history": [{"at": "2026-01-05T01:00:00+00:00"}, {"at": "2026-01-06T02:00:00+00:00"}]}
    r = o311.request_of(case, {"minzheng": "民政"})
    assert r["status"] == "closed" and r["updated_datetime"] == "2026-01-06T02:00:00+00:00"
    assert r["agency_responsible"] == "民政" and r["expected_datetime"] is None
    assert "张三" not in str(r) and "138" not in str(r)
    assert o311.request_of({**case, "status": "in_review"})["status"] == "open"
    notice = o311.service_notice({"case_number": "N-1", "status": "in_review", "deadline": "2026-02-01",
                                  "query_code": "ABCD2345", "track_url": "/track?case=N-1"})
    assert re.search("受理号N-1.*承诺办结日期2026-02-01.*查询码ABCD2345", notice)
