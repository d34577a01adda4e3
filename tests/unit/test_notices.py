"""Unit tests for services.intake.notices: SMS texts and printable PDF notices (文书).

The PDF tests use poppler-utils (pdftotext, pdftoppm) to prove the Chinese is real,
extractable text in an embedded CJK font, and that glyphs are actually drawn.  Those
tools and the font are installed by the set-up (`./run setup`, which sources
scripts/fonts.sh): when they are missing these tests FAIL, they do not skip.
"""
from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from services.intake import notice_rendering as notices
from services.intake.notice_rendering import (
    FONT_CANDIDATES,
    NOTICE_KINDS,
    PROVISIONAL_NOTE,
    SMS_MAX_CHARS,
    FontMissing,
    NoticeData,
    document_number,
    find_cjk_font,
    format_fee,
    render_pdf,
    render_sms,
)
from shared.pii import mask_text

CASE = "320583101-20261124-00001"
PHONE = "13812345678"
PHONE_MASKED = "138****5678"
RAW_ID = "11010519491231002X"
RAW_ID_MASKED = "110105********002X"

BASE = {
    "case_number": CASE,
    "issued_on": date(2026, 11, 24),
    "applicant_name": "张三",
    "applicant_id_masked": RAW_ID_MASKED,
    "item_name": "城乡居民基本医疗保险参保登记",
    "item_code": "320583-YB-001",
    "department_name": "玉山镇社会事业局",
    "accepting_centre": "玉山镇便民服务中心",
    "window": "3号综合窗口",
    "responsible_person": "王秀英",
    "supervision_phone": "0512-57301234",
    "basis": "《中华人民共和国社会保险法》第二十五条",
    "conditions": "具有本市户籍且未参加职工医保的城乡居民",
    "materials": (
        {"name": "居民身份证", "form": "原件", "required": True},
        {"name": "居民户口簿", "form": "复印件", "required": True},
        {"name": "一寸免冠照片", "form": "原件", "required": False},
    ),
    "fee_fen": 1250,
}

# The key content of each kind, as (extra fields, texts the SMS must contain).
KINDS = {
    "acceptance": ({"promised_date": date(2026, 12, 8)}, ["2026年12月8日", "受理"]),
    "one_time_notice": ({"missing_materials": ("居民户口簿", "一寸免冠照片")},
                        ["居民户口簿", "一寸免冠照片", "一次性"]),
    "rejection": ({"reason": "申请人户籍不在本市，不属于本事项受理范围"},
                  ["不予受理", "申请人户籍不在本市，不属于本事项受理范围", "复核", "0512-57301234"]),
    "promise": ({"promised_date": date(2026, 12, 30)}, ["2026年12月30日", "承诺"]),
    "result": ({"outcome": "approved", "result_number": "YB2026-000123"}, ["准予办理", "YB2026-000123"]),
    "pickup": ({"pickup_place": "玉山镇便民服务中心1号出件窗口", "result_number": "YB2026-000123",
                "pickup_hours": "工作日9:00—17:00"},
               ["玉山镇便民服务中心1号出件窗口", "工作日9:00—17:00", "领取"]),
}

# A free-text field each kind prints in its SMS, to smuggle a raw phone/ID into.
FREE_TEXT_FIELD = {
    "acceptance": "window",
    "one_time_notice": "missing_materials",
    "rejection": "reason",
    "promise": "window",
    "result": "result_number",
    "pickup": "pickup_place",
}


def make(kind: str, **overrides) -> NoticeData:
    fields = {**BASE, **KINDS[kind][0], "kind": kind, **overrides}
    return NoticeData(**fields)


def with_pii(kind: str) -> NoticeData:
    """A notice where a raw mobile number and a raw ID were typed into a free-text field."""
    name = FREE_TEXT_FIELD[kind]
    dirty = f"联系人电话{PHONE}，身份证{RAW_ID}"
    if name == "missing_materials":
        return make(kind, missing_materials=("居民户口簿", dirty))
    value = getattr(make(kind), name)
    return make(kind, **{name: f"{value}（{dirty}）"})


def assert_no_raw_pii(text: str) -> None:
    assert PHONE not in text and RAW_ID not in text
    assert PHONE_MASKED in text and RAW_ID_MASKED in text
    assert mask_text(text) == text, "a maskable ID/phone run is left in the text"


# ---------------------------------------------------------------- tools ---

SETUP_HINT = ("run the set-up: ./run setup (or, as root: source scripts/fonts.sh; "
              "ensure_cjk_font; ensure_poppler)")


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} (Debian package poppler-utils) is not installed; {SETUP_HINT}")
    return path


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    source = tmp_path / "notice.pdf"
    source.write_bytes(pdf)
    done = subprocess.run([tool("pdftotext"), "-enc", "UTF-8", str(source), "-"],
                          capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout.decode("utf-8")


def squeeze(text: str) -> str:
    """Text without any white space: robust to where the PDF wrapped lines."""
    return re.sub(r"\s+", "", text)


def read_png(path: Path) -> tuple[int, int, list[bytes]]:
    """Minimal PNG decoder for what pdftoppm writes: 8-bit gray/RGB, not interlaced.

    Returns (width, height, rows) with each row as gray bytes (RGB averaged)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, bytearray(), None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        ctype = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if ctype == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif ctype == b"IDAT":
            idat += body
        elif ctype == b"IEND":
            break
    assert header is not None, "PNG without IHDR"
    width, height, depth, color, _comp, _filter, interlace = header
    assert depth == 8 and interlace == 0 and color in (0, 2), f"unsupported PNG {header}"
    channels = 3 if color == 2 else 1
    raw = zlib.decompress(bytes(idat))
    stride = width * channels
    rows: list[bytes] = []
    prev = bytearray(stride)
    i = 0
    for _ in range(height):
        ftype, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - channels] if x >= channels else 0
            b = prev[x]
            c = prev[x - channels] if x >= channels else 0
            if ftype == 1:
                line[x] = (line[x] + a) & 0xFF
            elif ftype == 2:
                line[x] = (line[x] + b) & 0xFF
            elif ftype == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[x] = (line[x] + pred) & 0xFF
            else:
                assert ftype == 0, f"bad PNG filter {ftype}"
        prev = line
        if channels == 3:
            rows.append(bytes((line[k] + line[k + 1] + line[k + 2]) // 3 for k in range(0, stride, 3)))
        else:
            rows.append(bytes(line))
    return width, height, rows


# ------------------------------------------------------------------ kinds ---


def test_every_kind_has_its_chinese_title():
    assert NOTICE_KINDS == {
        "acceptance": "受理通知书",
        "one_time_notice": "一次性告知书",
        "rejection": "不予受理通知书",
        "promise": "承诺办理通知书",
        "result": "办结通知",
        "pickup": "领取通知",
    }
    assert set(KINDS) == set(NOTICE_KINDS)


@pytest.mark.parametrize("kind, fields", [
    ("acceptance", {"promised_date": None}),
    ("promise", {"promised_date": None}),
    ("one_time_notice", {"missing_materials": ()}),
    ("rejection", {"reason": None}),
    ("rejection", {"reason": "  "}),
    ("result", {"outcome": None}),
    ("result", {"outcome": "approved", "result_number": None}),
    ("result", {"outcome": "refused", "reason": None}),
    ("result", {"outcome": "maybe"}),
    ("pickup", {"pickup_place": None}),
    ("acceptance", {"fee_fen": -1}),
    ("acceptance", {"supervision_phone": ""}),
])
def test_a_notice_without_its_key_content_cannot_be_built(kind, fields):
    with pytest.raises((ValueError, TypeError)):
        make(kind, **fields)


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown notice kind"):
        NoticeData(**{**BASE, "kind": "letter"})


def test_notice_data_is_frozen():
    data = make("one_time_notice", missing_materials=["户口簿"])
    with pytest.raises(AttributeError):
        data.case_number = "x"  # type: ignore[misc]
    assert data.missing_materials == ("户口簿",)


def test_document_number():
    assert document_number(make("acceptance")) == f"玉山镇便民服务中心〔2026〕受字第 {CASE} 号"
    assert "〔2026〕不受字第" in document_number(make("rejection"))


# -------------------------------------------------------------------- fee ---


@pytest.mark.parametrize("fen, text", [
    (0, "免费"), (1, "0.01元"), (5, "0.05元"), (100, "1.00元"), (1250, "12.50元"), (100000, "1000.00元"),
])
def test_fee_is_printed_as_yuan_with_two_decimals(fen, text):
    assert format_fee(fen) == text


@pytest.mark.parametrize("bad", [-1, 1.5, True, "12"])
def test_fee_must_be_whole_non_negative_fen(bad):
    with pytest.raises((ValueError, TypeError)):
        format_fee(bad)


def test_fee_in_sms_and_pdf(tmp_path):
    assert "收费：12.50元" in render_sms(make("acceptance"))
    assert "收费：免费" in render_sms(make("acceptance", fee_fen=0))
    assert "12.50元" in squeeze(pdf_text(render_pdf(make("acceptance")), tmp_path))
    assert "免费" in squeeze(pdf_text(render_pdf(make("promise", fee_fen=0)), tmp_path))
    pickup = render_sms(make("pickup", fee_fen=800))
    assert "应缴费用8.00元" in pickup


# -------------------------------------------------------------------- SMS ---


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_sms_has_case_number_and_key_content(kind):
    sms = render_sms(make(kind))
    assert sms.startswith("【全城通办】")
    assert CASE in sms
    assert BASE["item_name"] in sms
    for text in KINDS[kind][1]:
        assert text in sms, (text, sms)
    assert len(sms) <= SMS_MAX_CHARS


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_sms_masks_id_and_phone_typed_into_free_text(kind):
    assert_no_raw_pii(render_sms(with_pii(kind)))


def test_sms_masks_an_unmasked_applicant_field():
    sms = render_sms(make("acceptance", applicant_name=f"张三{PHONE}"))
    assert PHONE not in sms and PHONE_MASKED in sms


def test_sms_refused_result_has_reason_review_and_supervision_phone():
    sms = render_sms(make("result", outcome="refused", result_number=None, reason="年龄不符合参保条件"))
    for text in ("不予办理", "年龄不符合参保条件", "复核", "0512-57301234", CASE):
        assert text in sms


def test_sms_one_time_notice_lists_all_missing_materials():
    missing = ("居民户口簿", "一寸免冠照片", "结婚证", "村委会证明", "委托书")
    sms = render_sms(make("one_time_notice", missing_materials=missing))
    assert "5项" in sms
    for i, name in enumerate(missing, 1):
        assert f"{i}.{name}" in sms
    assert len(sms) <= SMS_MAX_CHARS


def test_sms_too_long_list_is_shortened_but_keeps_case_and_count():
    long_name = "份需要由户籍所在地村民委员会出具并加盖公章的家庭经济状况证明材料"
    missing = tuple(f"第{i}{long_name}" for i in range(1, 31))
    sms = render_sms(make("one_time_notice", missing_materials=missing))
    assert len(sms) <= SMS_MAX_CHARS
    assert CASE in sms and "共30项" in sms and "一次性告知书" in sms
    assert missing[0] in sms


def test_sms_long_rejection_reason_keeps_review_and_supervision_phone():
    reason = "经核查，申请人提交的材料显示其不符合本事项的办理条件。" * 20
    sms = render_sms(make("rejection", reason=reason))
    assert len(sms) <= SMS_MAX_CHARS
    for text in (CASE, "复核", "监督电话0512-57301234", "经核查"):
        assert text in sms


def test_sms_long_reason_with_pii_is_masked_before_it_is_cut():
    # The ID sits where the cut would fall: cutting first would leave a partial raw run.
    reason = "甲" * 120 + RAW_ID + "乙" * 200
    sms = render_sms(make("rejection", reason=reason))
    assert len(sms) <= SMS_MAX_CHARS
    assert "1101051949" not in sms
    assert mask_text(sms) == sms


@pytest.mark.parametrize("kind", ["acceptance", "promise"])
def test_provisional_date_is_flagged(kind, tmp_path):
    provisional = make(kind, provisional=True)
    assert PROVISIONAL_NOTE == "（暂定，待节假日安排公布后确认）"
    assert PROVISIONAL_NOTE in render_sms(provisional)
    assert PROVISIONAL_NOTE not in render_sms(make(kind))
    assert squeeze(PROVISIONAL_NOTE) in squeeze(pdf_text(render_pdf(provisional), tmp_path))
    assert squeeze(PROVISIONAL_NOTE) not in squeeze(pdf_text(render_pdf(make(kind)), tmp_path))


# -------------------------------------------------------------------- PDF ---


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_pdf_is_real_text_with_title_case_number_and_public_elements(kind, tmp_path):
    data = make(kind)
    pdf = render_pdf(data)
    assert pdf.startswith(b"%PDF-")
    text = squeeze(pdf_text(pdf, tmp_path))
    assert NOTICE_KINDS[kind] in text  # Chinese extracts: embedded CJK font with ToUnicode
    assert CASE in text
    assert squeeze(document_number(data)) in text
    assert f"{BASE['applicant_name']}（证件号码：{RAW_ID_MASKED}）" in text
    for public in ("玉山镇便民服务中心3号综合窗口", "首问责任人", "王秀英", "监督电话", "0512-57301234",
                   BASE["item_code"], BASE["department_name"]):
        assert public in text, public
    if "basis" in notices.PUBLIC_ELEMENTS[kind]:
        assert BASE["basis"] in text
    if "conditions" in notices.PUBLIC_ELEMENTS[kind]:
        assert BASE["conditions"] in text
    for needed in KINDS[kind][1]:
        assert squeeze(needed) in text, needed
    assert "本通知书一式两份" in text
    assert text.rfind("2026年11月24日") > text.find("办事公开信息")  # issuing date at the bottom


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_pdf_masks_pii_typed_into_free_text_and_an_unmasked_id(kind, tmp_path):
    data = replace(with_pii(kind), applicant_id_masked=RAW_ID)  # wrongly unmasked
    text = squeeze(pdf_text(render_pdf(data), tmp_path))
    assert_no_raw_pii(text)


def test_pdf_one_time_notice_lists_all_missing_materials(tmp_path):
    missing = ("居民户口簿", "一寸免冠照片", "结婚证", "村委会证明", "委托书", "银行卡复印件")
    text = squeeze(pdf_text(render_pdf(make("one_time_notice", missing_materials=missing)), tmp_path))
    assert "一次性告知" in text and "补正通知书" in text and "共6项" in text
    for i, name in enumerate(missing, 1):
        assert f"{i}.{name}" in text
    for material in BASE["materials"]:  # the full materials table
        assert material["name"] in text
    assert "材料补齐之日起" in text


def test_pdf_rejection_has_reason_and_review(tmp_path):
    text = squeeze(pdf_text(render_pdf(make("rejection")), tmp_path))
    assert "退回件通知书" in text
    assert "申请人户籍不在本市，不属于本事项受理范围" in text
    assert "申请复核" in text and "行政复议" in text


def test_pdf_results(tmp_path):
    approved = squeeze(pdf_text(render_pdf(make("result")), tmp_path))
    assert "准予办理" in approved and "YB2026-000123" in approved
    refused = squeeze(pdf_text(render_pdf(
        make("result", outcome="refused", result_number=None, reason="年龄不符合参保条件")), tmp_path))
    assert "不予办理" in refused and "年龄不符合参保条件" in refused and "复核" in refused


def test_pdf_acceptance_has_materials_table(tmp_path):
    text = squeeze(pdf_text(render_pdf(make("acceptance")), tmp_path))
    for header in ("序号", "材料名称", "形式", "是否必需"):
        assert header in text
    assert "居民户口簿" in text and "复印件" in text


def test_pdf_escapes_markup_in_free_text(tmp_path):
    text = squeeze(pdf_text(render_pdf(make("rejection", reason="材料<b>不全</b> & 过期")), tmp_path))
    assert "材料<b>不全</b>&过期" in text


def test_pdf_is_a4_and_title_glyphs_are_drawn(tmp_path):
    source = tmp_path / "notice.pdf"
    source.write_bytes(render_pdf(make("one_time_notice")))
    done = subprocess.run([tool("pdftoppm"), "-r", "60", "-png", "-f", "1", "-l", "1", str(source),
                           str(tmp_path / "page")], capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    pngs = sorted(tmp_path.glob("page*.png"))
    assert len(pngs) == 1, pngs
    width, height, rows = read_png(pngs[0])
    # A4 at 60 dpi: 8.27 x 11.69 in -> 496 x 702 px
    assert abs(width - 496) <= 2 and abs(height - 702) <= 2, (width, height)

    dark = [sum(1 for v in row if v < 128) for row in rows]
    band = int(height * 0.15)
    title_dark = sum(dark[:band])
    assert title_dark > 400, f"title area looks blank: {title_dark} dark pixels"
    total_dark = sum(dark)
    assert total_dark < 0.25 * width * height, "page is mostly dark"
    assert total_dark > 5 * title_dark  # the body is drawn too

    # The first line of ink is the 22 pt title: taller than any body line (about 17 px
    # at 60 dpi against 8-9 px), inside the top 15 %, with many dark pixels, centred.
    top = next(y for y, count in enumerate(dark) if count)
    bottom = next(y for y in range(top, height) if not dark[y])
    assert bottom <= band, f"first line of ink at rows {top}-{bottom}, not in the title area"
    assert bottom - top >= 13, f"first line is {bottom - top} px tall: no large title drawn"
    assert sum(dark[top:bottom]) > 250
    xs = [x for row in rows[top:bottom] for x, v in enumerate(row) if v < 128]
    assert abs(sum(xs) / len(xs) - width / 2) < width * 0.05, "title is not centred"


# ------------------------------------------------------------------- font ---


def test_the_set_up_installed_a_cjk_truetype_font():
    path, index = find_cjk_font(environ={})
    assert path in {c[0] for c in FONT_CANDIDATES}, path
    assert index == 0
    assert os.path.isfile(path), f"{path}; {SETUP_HINT}"


def test_no_font_names_the_debian_package():
    with pytest.raises(FontMissing, match="fonts-wqy-microhei"):
        find_cjk_font(environ={}, candidates=())


def test_configured_font_must_exist(tmp_path):
    missing = str(tmp_path / "nope.ttf")
    with pytest.raises(FontMissing, match="TONGBAN_CJK_FONT"):
        find_cjk_font(environ={"TONGBAN_CJK_FONT": missing})


def test_configured_font_wins(tmp_path):
    font = tmp_path / "my.ttf"
    font.write_bytes(b"x")
    assert find_cjk_font(environ={"TONGBAN_CJK_FONT": str(font)}) == (str(font), 0)


def test_a_font_without_cjk_glyphs_is_refused():
    import reportlab

    vera = Path(reportlab.__file__).parent / "fonts" / "Vera.ttf"  # Latin only, ships with reportlab
    assert vera.is_file()
    with pytest.raises(FontMissing, match="no glyphs"):
        notices._load_ttf(str(vera), 0)


def test_a_file_that_is_no_font_is_refused(tmp_path):
    junk = tmp_path / "junk.ttf"
    junk.write_bytes(b"not a font at all" * 10)
    with pytest.raises(FontMissing, match="fonts-wqy-microhei"):
        notices._load_ttf(str(junk), 0)
