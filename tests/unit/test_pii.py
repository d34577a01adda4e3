"""Unit tests for shared.pii (validation and masking of personal identifiers)."""

from __future__ import annotations

from collections import namedtuple
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.pii import (
    is_valid_credit_code,
    is_valid_mobile,
    is_valid_resident_id,
    mask_credit_code,
    mask_phone,
    mask_resident_id,
    mask_text,
    mask_value,
    normalise_resident_id,
)

# --- independent reference helpers --------------------------------------------
# Derived from the standards' definitions rather than the module's tables:
# GB 11643 weights are 2^(17-i) mod 11, GB 32100 weights are 3^i mod 31.


def ref_resident_check(first17: str) -> str:
    total = sum(int(d) * pow(2, 17 - i, 11) for i, d in enumerate(first17))
    value = (12 - total % 11) % 11
    return "X" if value == 10 else str(value)


def ref_resident_id(region: str, birth: date, seq: str) -> str:
    first17 = f"{region}{birth:%Y%m%d}{seq}"
    return first17 + ref_resident_check(first17)


CC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def ref_credit_check(first17: str) -> str:
    total = sum(CC_CHARSET.index(c) * pow(3, i, 31) for i, c in enumerate(first17))
    return CC_CHARSET[(31 - total % 31) % 31]


def ref_credit_code(first17: str) -> str:
    return first17 + ref_credit_check(first17)


TODAY = date(2024, 6, 1)


# --- resident ID validation -----------------------------------------------------


def test_reference_helpers_agree_with_published_examples():
    assert ref_resident_check("11010519491231002") == "X"
    assert ref_credit_check("91350100M000100Y4") == "3"


@pytest.mark.parametrize(
    "value",
    [
        "11010519491231002X",
        ref_resident_id("440305", date(1990, 1, 1), "123"),
        ref_resident_id("320102", date(2000, 2, 29), "456"),  # leap day
        ref_resident_id("510104", date(1900, 1, 1), "001"),  # earliest year
        ref_resident_id("330106", TODAY, "987"),  # born "today"
    ],
)
def test_valid_resident_ids(value):
    assert is_valid_resident_id(value, today=TODAY) is True


def test_generated_ids_cover_both_check_char_kinds():
    # make sure the parametrised cases above are not all digit-checked or all X
    checks = {ref_resident_id("440305", date(1990, 1, 1), f"{n:03d}")[-1] for n in range(40)}
    assert "X" in checks and any(c.isdigit() for c in checks)


def test_lowercase_x_is_accepted():
    assert is_valid_resident_id("11010519491231002x", today=TODAY) is True


def test_wrong_check_digit_rejected():
    assert is_valid_resident_id("110105194912310025", today=TODAY) is False
    assert is_valid_resident_id("110105194912310020", today=TODAY) is False
    good = ref_resident_id("440305", date(1990, 1, 1), "124")
    assert good[-1] != "X"
    bad = good[:-1] + str((int(good[-1]) + 1) % 10)
    assert is_valid_resident_id(good, today=TODAY) is True
    assert is_valid_resident_id(bad, today=TODAY) is False


@pytest.mark.parametrize(
    "birth",
    ["19900230", "19900231", "19001301", "19000100", "19000001", "19010229", "21000229"],
)
def test_impossible_birth_dates_rejected(birth):
    first17 = f"440305{birth}123"
    value = first17 + ref_resident_check(first17)  # correct check char, bad date
    assert is_valid_resident_id(value, today=TODAY) is False


def test_year_before_1900_rejected():
    first17 = "44030518991231123"
    assert is_valid_resident_id(first17 + ref_resident_check(first17), today=TODAY) is False


def test_future_birth_date_rejected_relative_to_today():
    value = ref_resident_id("440305", date(2024, 6, 2), "123")
    assert is_valid_resident_id(value, today=TODAY) is False
    assert is_valid_resident_id(value, today=date(2024, 6, 2)) is True


def test_default_today_is_the_real_date():
    assert is_valid_resident_id(ref_resident_id("440305", date(2999, 1, 1), "123")) is False
    assert is_valid_resident_id("11010519491231002X") is True


@pytest.mark.parametrize(
    "value",
    [
        "",
        "11010519491231002",  # 17 chars
        "11010519491231002XX",  # 19 chars
        " 11010519491231002X",  # unstripped
        "1101051949123100X2",  # X not last
        "11010519491231002Y",
        "１１０１０５１９４９１２３１００２Ｘ",  # full-width digits
        "110105491231002",  # 15-digit old IDs are not valid 18-char IDs
    ],
)
def test_malformed_resident_ids_rejected(value):
    assert is_valid_resident_id(value, today=TODAY) is False


def test_non_string_resident_id_rejected():
    assert is_valid_resident_id(11010519491231002, today=TODAY) is False  # type: ignore[arg-type]
    assert is_valid_resident_id(None, today=TODAY) is False  # type: ignore[arg-type]


def test_normalise_resident_id():
    assert normalise_resident_id("  11010519491231002x\n") == "11010519491231002X"
    assert normalise_resident_id("440305199001011234") == "440305199001011234"


# --- credit codes -----------------------------------------------------------------


def test_published_credit_code_is_valid():
    assert is_valid_credit_code("91350100M000100Y43") is True


@pytest.mark.parametrize(
    "first17",
    ["91110000100000000", "12100000400000001", "93440300MA5D00000", "51320100ABCDEFGHJ"],
)
def test_constructed_credit_codes_are_valid(first17):
    code = ref_credit_code(first17)
    assert is_valid_credit_code(code) is True
    # any other check char is rejected
    wrong = next(c for c in CC_CHARSET if c != code[-1])
    assert is_valid_credit_code(first17 + wrong) is False


def test_credit_code_check_of_31_maps_to_zero():
    # find a body whose weighted sum is divisible by 31, so 31 - 0 -> 31 -> "0"
    for n in range(10_000):
        first17 = f"9111000010{n:07d}"
        if ref_credit_check(first17) == "0":
            break
    else:  # pragma: no cover
        pytest.fail("no body with check char 0 found")
    assert is_valid_credit_code(first17 + "0") is True


def test_credit_code_wrong_check_rejected():
    assert is_valid_credit_code("91350100M000100Y44") is False
    assert is_valid_credit_code("91350100M000100Y4A") is False


@pytest.mark.parametrize("bad_char", ["I", "O", "Z", "S", "V"])
def test_credit_code_forbidden_chars_rejected(bad_char):
    first17 = "9135010" + bad_char + "M000100Y4"
    assert len(first17) == 17
    # the forbidden char cannot enter the reference sum, so try every check char
    assert not any(is_valid_credit_code(first17 + c) for c in CC_CHARSET)
    assert is_valid_credit_code("91350100M000100Y4" + bad_char) is False


def test_credit_code_lowercase_rejected():
    code = ref_credit_code("93440300MA5D00000")
    assert any(c.isalpha() for c in code)
    assert is_valid_credit_code(code.lower()) is False
    assert is_valid_credit_code(code.lower().upper()) is True
    assert is_valid_credit_code("91350100m000100y43") is False


@pytest.mark.parametrize("value", ["", "91350100M000100Y4", "91350100M000100Y433", None])
def test_credit_code_wrong_shape_rejected(value):
    assert is_valid_credit_code(value) is False


# --- mobile numbers -----------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["13812345678", "19912345678", "+8613812345678", "8615012345678"]
)
def test_valid_mobiles(value):
    assert is_valid_mobile(value) is True


@pytest.mark.parametrize(
    "value",
    [
        "12812345678",  # 12x is not a mobile prefix
        "10012345678",
        "1381234567",  # 10 digits
        "138123456789",  # 12 digits
        "+8512345678901",
        "+86 13812345678",
        "0086-13812345678",
        "+86",
        "",
        None,
        "1381234567a",
    ],
)
def test_invalid_mobiles(value):
    assert is_valid_mobile(value) is False


# --- single-value masking -------------------------------------------------------------


def test_mask_resident_id():
    assert mask_resident_id("11010519491231002X") == "110105********002X"
    assert mask_resident_id(" 11010519491231002x ") == "110105********002X"
    assert mask_resident_id("110105491231002") == "110105******002"


def test_mask_resident_id_short_values_fully_starred():
    assert mask_resident_id("1234567890") == "**********"
    assert mask_resident_id("") == ""


def test_mask_credit_code():
    assert mask_credit_code("91350100M000100Y43") == "9135**********0Y43"
    assert mask_credit_code("12345678") == "********"


def test_mask_phone():
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("+8613812345678") == "+86138****5678"
    assert mask_phone("8613812345678") == "86138****5678"
    assert mask_phone(" 13812345678 ") == "138****5678"


def test_mask_phone_other_shapes():
    assert mask_phone("02512345678") == "025****5678"
    assert mask_phone("1234567") == "*******"


# --- mask_text ------------------------------------------------------------------------


def test_mask_text_chinese_text_with_id_and_phone():
    text = "申请人身份证110105194912310025电话13812345678"
    assert mask_text(text) == "申请人身份证110105********0025电话138****5678"


def test_mask_text_masks_invalid_check_digit_ids():
    assert is_valid_resident_id("110105194912310025", today=TODAY) is False
    assert mask_text("id=110105194912310025.") == "id=110105********0025."


def test_mask_text_keeps_lowercase_x_and_masks_it():
    assert mask_text("证号11010519491231002x。") == "证号110105********002x。"


def test_mask_text_mobile_with_country_code():
    assert mask_text("联系+8613812345678或8613912345678") == (
        "联系+86138****5678或86139****5678"
    )
    assert mask_text("tel: +86 13812345678") == "tel: +86 138****5678"


def test_mask_text_old_15_digit_id():
    assert mask_text("旧证110105491231002号") == "旧证110105******002号"


def test_mask_text_multiple_occurrences():
    text = "a 13812345678, b 13912345678; c 11010519491231002X"
    assert mask_text(text) == "a 138****5678, b 139****5678; c 110105********002X"


@pytest.mark.parametrize(
    "text",
    [
        "快递单号12345678901234567890",  # 20 digits: longer than an ID, left alone
        "1101051949123100251",  # 19 digits
        "卡号6222021101051949123100",  # 22 digits containing an ID-like run
        "订单9913812345678901",  # 16 digits containing a mobile-like run
        "编号12813812345678",  # 14 digits
        "x12812345678y",  # 12x is not a mobile prefix
        "1234567890123456",  # 16 digits
        "12345678901234567",  # 17 digits
        "number 1381234567 short",  # 10 digits
    ],
)
def test_mask_text_leaves_other_digit_runs_alone(text):
    assert mask_text(text) == text


def test_mask_text_id_followed_by_x_after_18_digits_is_still_masked():
    # 18 digits then a letter: the digit run is exactly 18 long, so it is masked
    assert mask_text("110105194912310025X") == "110105********0025X"


def test_mask_text_no_pii():
    assert mask_text("") == ""
    assert mask_text("没有个人信息 no pii 2024-06-01") == "没有个人信息 no pii 2024-06-01"


@pytest.mark.parametrize(
    "text",
    [
        "申请人身份证110105194912310025电话13812345678",
        "+8613812345678 / 8613812345678 / 110105491231002",
        "11010519491231002x and 12345678901234567890",
        "110105********002X 138****5678",
    ],
)
def test_mask_text_is_idempotent(text):
    once = mask_text(text)
    assert mask_text(once) == once


def test_already_masked_values_unchanged():
    assert mask_text("110105********002X") == "110105********002X"
    assert mask_text("138****5678") == "138****5678"
    assert mask_text("+86138****5678") == "+86138****5678"
    assert mask_text("110105******002") == "110105******002"


# --- mask_value -----------------------------------------------------------------------


def test_mask_value_nested():
    event = {
        "event": "application submitted by 13812345678",
        "applicant": {"id_no": "11010519491231002X", "name": "张三", "age": 75},
        "phones": ["13912345678", ("+8615012345678", 42)],
        "count": 3,
        "flag": None,
    }
    masked = mask_value(event)
    assert masked == {
        "event": "application submitted by 138****5678",
        "applicant": {"id_no": "110105********002X", "name": "张三", "age": 75},
        "phones": ["139****5678", ("+86150****5678", 42)],
        "count": 3,
        "flag": None,
    }
    assert isinstance(masked["phones"][1], tuple)


def test_mask_value_does_not_mutate_input():
    event = {"items": ["13812345678"], "inner": {"id": "11010519491231002X"}}
    mask_value(event)
    assert event == {"items": ["13812345678"], "inner": {"id": "11010519491231002X"}}


def test_mask_value_keeps_keys_and_non_strings():
    obj = {"13812345678": b"13812345678", 5: 13812345678}
    assert mask_value(obj) == {"13812345678": b"13812345678", 5: 13812345678}


def test_mask_value_namedtuple_and_scalars():
    Pair = namedtuple("Pair", "phone note")
    masked = mask_value(Pair("13812345678", "ok"))
    assert masked == Pair("138****5678", "ok")
    assert type(masked) is Pair
    assert mask_value("13812345678") == "138****5678"
    assert mask_value(1.5) == 1.5


# --- property test ----------------------------------------------------------------------

_SURROUNDING = st.text(
    alphabet=st.sampled_from(
        "申请人身份证电话号码地址街道办事处全城通办，。：；（）"
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ _-:=/"
    ),
    max_size=30,
)

_RESIDENT_IDS = st.builds(
    ref_resident_id,
    region=st.from_regex(r"[1-8][0-9]{5}", fullmatch=True),
    birth=st.dates(min_value=date(1900, 1, 1), max_value=TODAY),
    seq=st.from_regex(r"[0-9]{3}", fullmatch=True),
)


@settings(max_examples=300)
@given(prefix=_SURROUNDING, resident_id=_RESIDENT_IDS, suffix=_SURROUNDING)
def test_property_valid_id_in_text_never_survives_masking(prefix, resident_id, suffix):
    assert is_valid_resident_id(resident_id, today=TODAY)
    masked = mask_text(prefix + resident_id + suffix)
    assert resident_id not in masked
    assert masked == prefix + mask_resident_id(resident_id) + suffix


# --- free text: every identifier, and nothing else -----------------------------------------


@pytest.mark.parametrize(
    "text, masked",
    [
        ("申请单位91350100M000100Y43已注销", "申请单位9135**********0Y43已注销"),
        ("code 91350100M000100Y44 (check wrong)", "code 9135**********0Y44 (check wrong)"),
        ("电话138-1234-5678", "电话138-****-5678"),
        ("电话 138 1234 5678。", "电话 138 **** 5678。"),
        ("退回：请联系13812345678补正", "退回：请联系138****5678补正"),
        ("张三11010519491231002X", "张三110105********002X"),
    ],
)
def test_mask_text_masks_identifiers_in_free_text(text, masked):
    assert mask_text(text) == masked
    assert mask_text(masked) == masked  # idempotent


@pytest.mark.parametrize(
    "text",
    [
        "320583101-20261125-00001",  # a case number
        "案件320583101-20261125-00001已受理，2026-11-25，20261125",  # dates
        "收费150000分，合计1500000000分",  # amounts in fen
        "MZ-0001 RS-0012 GA-0100",  # item codes
        "ABCDEFGHJKLMNPQRTU",  # 18 letters: not a credit code
        "91350100M000100Y43X",  # 19 characters: not a credit code
        "138-1234-56789",  # a longer number
        "notice 7 of 320583102-20270104-12345",
    ],
)
def test_mask_text_false_positives_stay_sane(text):
    assert mask_text(text) == text
