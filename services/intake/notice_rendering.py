"""Notices (文书) the centre issues, rendered as SMS text and as a printable A4 PDF.

Pure rendering: no database, no network.  The caller collects everything a notice
needs into a :class:`NoticeData`; :func:`render_sms` and :func:`render_pdf` turn it
into what is sent or printed at the window.

Kinds (:data:`NOTICE_KINDS`):

==================  ===============================================================
acceptance          受理通知书: accepted, with the promised completion date
one_time_notice     一次性告知书 (补正通知书): ALL missing materials, told at once
rejection           不予受理通知书 (退回件通知书): the reason, and how to ask for 复核
promise             承诺办理通知书: accepted as a promised case, with the promised date
result              办结通知: approved (certificate/document number) or refused (reason)
pickup              领取通知: where and when to collect the result
==================  ===============================================================

Every notice carries the public elements (八公开) relevant to it: 设定依据, 办理条件,
申请材料, 承诺时限, 收费, the responsible window and first responder (首问责任人), and
the supervision phone (监督电话); see :data:`PUBLIC_ELEMENTS`.

Personal data: ``applicant_id_masked`` must already be masked, and every text that
goes into an SMS or a PDF passes through :func:`shared.pii.mask_text` as a safety
net, so an ID or mobile number typed by mistake into a free-text field (a reason, a
place) comes out masked.  Consequently the supervision phone should be a landline or
a hotline (0512-57xxxxxx, 12345) as it is in practice: a mobile number there would
be masked like any other.

The PDF embeds a CJK TrueType font found on the system (see :func:`find_cjk_font`);
reportlab cannot use CFF-flavoured OpenType (Noto CJK), so those are not looked for.
When none is found :class:`FontMissing` names the Debian package to install.
"""
from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any
from xml.sax.saxutils import escape

from shared.pii import mask_text

__all__ = [
    "ALSO_KNOWN_AS",
    "FONT_CANDIDATES",
    "NOTICE_KINDS",
    "OUTCOMES",
    "PROVISIONAL_NOTE",
    "PUBLIC_ELEMENTS",
    "SMS_MAX_CHARS",
    "SMS_PREFIX",
    "FontMissing",
    "NoticeData",
    "Tracking",
    "cjk_font_name",
    "document_number",
    "find_cjk_font",
    "format_date",
    "format_fee",
    "render_pdf",
    "render_sms",
]

# --------------------------------------------------------------------------- kinds ---

NOTICE_KINDS: dict[str, str] = {
    "acceptance": "受理通知书",
    "one_time_notice": "一次性告知书",
    "rejection": "不予受理通知书",
    "promise": "承诺办理通知书",
    "result": "办结通知",
    "pickup": "领取通知",
}

#: Other names under which the same notice is known (printed as a sub-title).
ALSO_KNOWN_AS: dict[str, str] = {
    "one_time_notice": "补正通知书",
    "rejection": "退回件通知书",
}

#: The word in the document number: 〔2026〕受字第 ... 号.
_DOC_WORD: dict[str, str] = {
    "acceptance": "受字",
    "one_time_notice": "告字",
    "rejection": "不受字",
    "promise": "诺字",
    "result": "结字",
    "pickup": "领字",
}

OUTCOMES = ("approved", "refused")

#: The public elements (八公开) each notice shows, in print order.
PUBLIC_ELEMENTS: dict[str, tuple[str, ...]] = {
    "acceptance": ("item", "department", "basis", "promised_date", "fee", "window",
                   "responsible_person", "supervision_phone"),
    "one_time_notice": ("item", "department", "basis", "conditions", "fee", "window",
                        "responsible_person", "supervision_phone"),
    "rejection": ("item", "department", "basis", "conditions", "window",
                  "responsible_person", "supervision_phone"),
    "promise": ("item", "department", "basis", "conditions", "promised_date", "fee", "window",
                "responsible_person", "supervision_phone"),
    "result": ("item", "department", "basis", "window", "responsible_person", "supervision_phone"),
    "pickup": ("item", "department", "fee", "window", "responsible_person", "supervision_phone"),
}

#: Kinds whose PDF lists the item's materials in a table.
_MATERIALS_TABLE_KINDS = frozenset({"acceptance", "one_time_notice", "promise"})

#: How a material is handed in, as the printed notice says it (the catalogue's `form`).
MATERIAL_FORMS: dict[str, str] = {"original": "原件", "copy": "复印件", "both": "原件及复印件"}

PROVISIONAL_NOTE = "（暂定，待节假日安排公布后确认）"
SMS_PREFIX = "【全城通办】"
SMS_MAX_CHARS = 300
DEFAULT_PICKUP_HOURS = "工作日办公时间"


# ------------------------------------------------------------------------- helpers ---


def format_date(day: date) -> str:
    """2026年11月24日 (no zero padding, as in official documents)."""
    return f"{day.year}年{day.month}月{day.day}日"


def format_fee(fee_fen: int) -> str:
    """Fee in fen as yuan with two decimals ("12.50元"), or "免费" for 0."""
    if isinstance(fee_fen, bool) or not isinstance(fee_fen, int):
        raise TypeError(f"fee_fen must be an int number of fen, got {fee_fen!r}")
    if fee_fen < 0:
        raise ValueError(f"fee_fen must not be negative, got {fee_fen}")
    if fee_fen == 0:
        return "免费"
    return f"{fee_fen // 100}.{fee_fen % 100:02d}元"


def document_number(data: NoticeData) -> str:
    """玉山镇便民服务中心〔2026〕受字第 320583101-20261124-00001 号."""
    return (f"{data.accepting_centre}〔{data.issued_on.year}〕{_DOC_WORD[data.kind]}"
            f"第 {data.case_number} 号")


def _material_required(material: Mapping[str, Any]) -> bool:
    return bool(material.get("required", True))


# ------------------------------------------------------------------------ the data ---


@dataclass(frozen=True)
class NoticeData:
    """Everything one notice shows.  Validated on construction: a notice lacking its
    key content (the promised date of an acceptance, the missing materials of a
    one-time notice, the reason of a rejection ...) cannot be built."""

    case_number: str
    kind: str
    issued_on: date
    applicant_name: str
    applicant_id_masked: str
    item_name: str
    item_code: str
    department_name: str
    accepting_centre: str
    window: str
    responsible_person: str
    supervision_phone: str
    basis: str | None = None
    conditions: str | None = None
    materials: Sequence[Mapping[str, Any]] = field(default_factory=tuple)
    missing_materials: Sequence[str] = field(default_factory=tuple)
    promised_date: date | None = None
    provisional: bool = False
    reason: str | None = None
    result_number: str | None = None
    outcome: str | None = None
    pickup_place: str | None = None
    fee_fen: int = 0
    pickup_hours: str | None = None  # e.g. "工作日 9:00—12:00、13:30—17:00"; default 工作日办公时间
    delivery: str | None = None  # how the result comes back: pickup (at the accepting centre) | mail (EMS)
    tracking_number: str | None = None  # the EMS waybill of a result sent by mail (EMS运单号)
    # the first responder's name, where known (the staff directory comes with issue 11); their staff number
    # (工号) is `responsible_person`, the token's subject
    responsible_person_name: str | None = None

    def __post_init__(self) -> None:
        # Freeze the sequences so a frozen notice really does not change.
        object.__setattr__(self, "materials", tuple(dict(m) for m in self.materials))
        object.__setattr__(self, "missing_materials", tuple(self.missing_materials))
        self._validate()

    def _validate(self) -> None:
        if self.kind not in NOTICE_KINDS:
            raise ValueError(f"unknown notice kind {self.kind!r}; one of {sorted(NOTICE_KINDS)}")
        if not isinstance(self.issued_on, date):
            raise TypeError("issued_on must be a date")
        for name in ("case_number", "applicant_name", "applicant_id_masked", "item_name",
                     "item_code", "department_name", "accepting_centre", "window",
                     "responsible_person", "supervision_phone"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{name} must be a non-empty string")
        format_fee(self.fee_fen)  # type and sign
        for material in self.materials:
            if not str(material.get("name") or "").strip():
                raise ValueError("every material needs a name")
        if self.outcome is not None and self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES} or None, got {self.outcome!r}")
        if self.promised_date is not None and not isinstance(self.promised_date, date):
            raise TypeError("promised_date must be a date or None")

        kind = self.kind
        if kind in ("acceptance", "promise") and self.promised_date is None:
            raise ValueError(f"a {kind} notice needs promised_date")
        if kind == "one_time_notice" and not [m for m in self.missing_materials if str(m).strip()]:
            raise ValueError("a one_time_notice needs the missing materials (all of them)")
        if kind == "rejection" and not (self.reason or "").strip():
            raise ValueError("a rejection needs the written reason")
        if kind == "result":
            if self.outcome is None:
                raise ValueError("a result notice needs outcome 'approved' or 'refused'")
            if self.outcome == "approved" and not (self.result_number or "").strip():
                raise ValueError("an approved result needs result_number (证照/文书编号)")
            if self.outcome == "refused" and not (self.reason or "").strip():
                raise ValueError("a refused result needs the reason")
        if kind == "pickup" and not (self.pickup_place or "").strip():
            raise ValueError("a pickup notice needs pickup_place")
        if self.delivery not in (None, "pickup", "mail"):
            raise ValueError(f"delivery must be pickup, mail or None, got {self.delivery!r}")

    @property
    def delivery_text(self) -> str | None:
        """Where an approved result goes: the EMS waybill, or the accepting centre's window."""
        if self.tracking_number:
            return f"办理结果已通过EMS寄出，EMS运单号{self.tracking_number}"
        if self.delivery == "pickup" and (self.pickup_place or "").strip():
            return f"请到{self.pickup_place.strip()}领取办理结果"
        return None

    # -- derived texts --------------------------------------------------------------

    @property
    def title(self) -> str:
        return NOTICE_KINDS[self.kind]

    @property
    def promised_text(self) -> str | None:
        if self.promised_date is None:
            return None
        text = format_date(self.promised_date)
        return text + PROVISIONAL_NOTE if self.provisional else text

    @property
    def hours_text(self) -> str:
        return (self.pickup_hours or "").strip() or DEFAULT_PICKUP_HOURS

    @property
    def responsible_text(self) -> str:
        """首问责任人 as printed: 张三（工号 clerk-1）, or the staff number alone."""
        number = self.responsible_person.strip()
        name = (self.responsible_person_name or "").strip()
        return f"{name}（工号 {number}）" if name else f"工号 {number}"

    @property
    def refused(self) -> bool:
        return self.kind == "rejection" or (self.kind == "result" and self.outcome == "refused")


# ----------------------------------------------------------------------------- SMS ---


@dataclass
class _Seg:
    text: str
    drop_rank: int | None = None  # droppable when too long: lowest rank dropped first
    shrink: Callable[[int], str] | None = None  # returns a version of at most n chars


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + "…"


def _shrinkable(text: str, minimum: int = 12) -> Callable[[int], str]:
    return lambda n: _cut(text, max(n, minimum))


def _missing_list_segment(names: Sequence[str]) -> _Seg:
    names = [mask_text(str(n).strip()) for n in names if str(n).strip()]
    total = len(names)

    def listed(k: int) -> str:
        body = "；".join(f"{i}.{n}" for i, n in enumerate(names[:k], 1))
        if k < total:
            body += f"等共{total}项（详见一次性告知书）"
        return body

    def shrink(limit: int) -> str:
        for k in range(total, 0, -1):
            text = listed(k)
            if len(text) <= limit:
                return text
        return f"共{total}项（详见一次性告知书）"

    return _Seg(listed(total), shrink=shrink)


def _fit(segments: list[_Seg], limit: int = SMS_MAX_CHARS) -> str:
    segs = [(_Seg(mask_text(s.text), s.drop_rank, s.shrink)) for s in segments]

    def total() -> int:
        return sum(len(s.text) for s in segs)

    for seg in sorted((s for s in segs if s.drop_rank is not None), key=lambda s: s.drop_rank):
        if total() <= limit:
            break
        seg.text = ""
    while total() > limit:
        candidates = [s for s in segs if s.shrink is not None and s.text]
        if not candidates:
            break
        seg = max(candidates, key=lambda s: len(s.text))
        wanted = len(seg.text) - (total() - limit)
        shrunk = mask_text(seg.shrink(max(wanted, 0)))
        if len(shrunk) >= len(seg.text):
            seg.shrink = None  # cannot get shorter
            continue
        seg.text = shrunk
    text = mask_text("".join(s.text for s in segs))
    return _cut(text, limit)


def render_sms(data: NoticeData) -> str:
    """One short SMS (at most :data:`SMS_MAX_CHARS` characters) starting with 【全城通办】."""
    item = f"“{data.item_name}”"
    head = _Seg(f"{SMS_PREFIX}{data.applicant_name}您好，您申请的")
    item_seg = _Seg(item, shrink=lambda n: "“" + _cut(data.item_name, max(n - 2, 6)) + "”")
    case = _Seg(f"（受理号{data.case_number}）")
    contact = _Seg(f"咨询：{data.accepting_centre}{data.window}。", drop_rank=1)
    phone = _Seg(f"监督电话{data.supervision_phone}。", drop_rank=None if data.refused else 2)
    review = _Seg("如有异议，可向受理中心申请复核，")
    fee = _Seg(f"收费：{format_fee(data.fee_fen)}。", drop_rank=0)
    kind = data.kind
    body: list[_Seg]

    if kind == "acceptance":
        body = [_Seg(f"已于{format_date(data.issued_on)}受理，承诺于{data.promised_text}前办结。"), fee]
    elif kind == "promise":
        body = [_Seg(f"已作为承诺件受理，承诺于{data.promised_text}前办结，"
                     "请在承诺时限内等候办理结果通知。"), fee]
    elif kind == "one_time_notice":
        body = [_Seg(f"材料不全，请一次性补齐以下{len(data.missing_materials)}项材料："),
                _missing_list_segment(data.missing_materials),
                _Seg("。办理时限自材料补齐之日起计算。")]
    elif kind == "rejection":
        body = [_Seg("不予受理，理由："), _Seg((data.reason or "").strip(),
                                               shrink=_shrinkable((data.reason or "").strip())),
                _Seg("。"), review]
    elif kind == "result" and data.outcome == "approved":
        body = [_Seg(f"已办结，准予办理，证照/文书编号{data.result_number}。")]
        if data.delivery_text:
            body.append(_Seg(f"{data.delivery_text}。"))
    elif kind == "result":
        body = [_Seg("已办结，不予办理，理由："),
                _Seg((data.reason or "").strip(), shrink=_shrinkable((data.reason or "").strip())),
                _Seg("。"), review]
    else:  # pickup
        place = (data.pickup_place or "").strip()
        body = [_Seg("办理结果已可领取，请于"), _Seg(data.hours_text, shrink=_shrinkable(data.hours_text, 6)),
                _Seg("携带本人身份证件原件到"), _Seg(place, shrink=_shrinkable(place)), _Seg("领取"),
                _Seg(f"（证照/文书编号{data.result_number}）" if data.result_number else "", drop_rank=3),
                _Seg("。")]
        if data.fee_fen:
            body.append(_Seg(f"应缴费用{format_fee(data.fee_fen)}。"))

    tail = [phone] if data.refused else [contact, phone]
    return _fit([head, item_seg, case, *body, *tail])


# ---------------------------------------------------------------------------- font ---


class FontMissing(RuntimeError):
    """No usable CJK TrueType font: the PDF would show empty boxes instead of Chinese."""


#: (path, subfont index, Debian package), in order of preference.  TrueType outlines
#: only: reportlab cannot embed CFF-flavoured OpenType such as fonts-noto-cjk.
FONT_CANDIDATES: tuple[tuple[str, int, str], ...] = (
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0, "fonts-wqy-microhei"),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0, "fonts-wqy-zenhei"),
    ("/usr/share/fonts/truetype/arphic/uming.ttc", 0, "fonts-arphic-uming"),
    ("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf", 0, "fonts-droid-fallback"),
)
FONT_ENV = "TONGBAN_CJK_FONT"
_FONT_NAME = "TongbanCJK"
#: Characters every notice prints; a font lacking any of them is not a CJK font for us.
_PROBE_CHARS = "受理通知书一次性告不予承诺办结领取号年月日〔〕（）：；，。"
_INSTALL_HINT = ("install a CJK TrueType font, as root: apt-get install -y fonts-wqy-microhei "
                 f"(or set {FONT_ENV} to the path of a TrueType .ttf/.ttc CJK font)")

_font_lock = threading.Lock()
_registered: tuple[str, str] | None = None  # (font name, path) once registered


def _load_ttf(path: str, index: int):
    from reportlab.pdfbase.ttfonts import TTFError, TTFont

    try:
        font = TTFont(_FONT_NAME, path, subfontIndex=index)
    except (TTFError, OSError, ValueError, KeyError, IndexError) as exc:
        raise FontMissing(f"cannot use {path} as a PDF font ({exc}); {_INSTALL_HINT}") from exc
    cmap = font.face.charToGlyph
    lacking = sorted({c for c in _PROBE_CHARS if ord(c) not in cmap})
    if lacking:
        raise FontMissing(f"{path} has no glyphs for {''.join(lacking)} (not a CJK font); "
                          f"{_INSTALL_HINT}")
    return font


def find_cjk_font(environ: Mapping[str, str] | None = None,
                  candidates: Iterable[tuple[str, int, str]] = FONT_CANDIDATES) -> tuple[str, int]:
    """Return (path, subfont index) of the CJK TrueType font to embed.

    ``$TONGBAN_CJK_FONT`` wins when set (and must then be usable: a wrong setting is an
    error, not a reason to quietly pick another font); otherwise the first existing
    Debian font of :data:`FONT_CANDIDATES`.  Raises :class:`FontMissing` if none.
    """
    env = os.environ if environ is None else environ
    configured = (env.get(FONT_ENV) or "").strip()
    if configured:
        if not os.path.isfile(configured):
            raise FontMissing(f"{FONT_ENV}={configured} does not exist; {_INSTALL_HINT}")
        return configured, 0
    for path, index, _package in candidates:
        if os.path.isfile(path):
            return path, index
    raise FontMissing(f"no CJK TrueType font found for the PDF notices; {_INSTALL_HINT}")


def cjk_font_name() -> str:
    """Register the CJK font with reportlab once (per process) and return its name."""
    global _registered
    if _registered is not None:
        return _registered[0]
    with _font_lock:
        if _registered is None:
            from reportlab.lib.fonts import addMapping
            from reportlab.pdfbase import pdfmetrics

            path, index = find_cjk_font()
            font = _load_ttf(path, index)
            pdfmetrics.registerFont(font)
            # One face for all styles: <b> in a paragraph must not switch to Helvetica.
            for bold in (0, 1):
                for italic in (0, 1):
                    addMapping(_FONT_NAME, bold, italic, _FONT_NAME)
            _allow_chinese_hanging_punctuation()
            _registered = (_FONT_NAME, path)
    return _registered[0]


#: Chinese punctuation that must not start a line (标点禁则); reportlab knows only the
#: Japanese set, so without these a line may begin with "，" or "：".
_CANNOT_START_ZH = "，、。：；！？）》」』】〕〉”’….,:;!?)]}"


def _allow_chinese_hanging_punctuation() -> None:
    from reportlab.lib import textsplit
    from reportlab.platypus import paragraph

    for module in (textsplit, paragraph):  # paragraph holds its own copy of the name
        extra = "".join(c for c in _CANNOT_START_ZH if c not in module.ALL_CANNOT_START)
        if extra:
            module.ALL_CANNOT_START = module.ALL_CANNOT_START + extra


def cjk_font_path() -> str:
    """Path of the registered CJK font (registers it if needed)."""
    cjk_font_name()
    assert _registered is not None
    return _registered[1]


# ----------------------------------------------------------------------------- PDF ---


@dataclass(frozen=True)
class Tracking:
    """How the applicant follows the case (进度查询), printed on the notices that open it: the portal's progress
    page (also as a QR code) and the 查询码. Not part of the stored notice: the code exists in plaintext only
    in the request that prints it; without it the notice says where to get a new one."""

    url: str
    query_code: str | None = None


def _tracking_flowables(tracking: Tracking, case_number: str, para, width: float) -> list:
    from reportlab.graphics.barcode.qr import QrCodeWidget
    from reportlab.graphics.shapes import Drawing
    from reportlab.lib.units import mm
    from reportlab.platypus import Table, TableStyle

    size = 30 * mm
    widget = QrCodeWidget(tracking.url, barLevel="M")
    x0, y0, x1, y1 = widget.getBounds()
    qr = Drawing(size, size, transform=[size / (x1 - x0), 0, 0, size / (y1 - y0), 0, 0])
    qr.add(widget)
    code = (f"查询码：{tracking.query_code}（请妥善保管，凭受理号和查询码查询进度、评价服务）" if tracking.query_code
            else "查询码：见受理时出具的通知书；遗失的，可凭身份证件到受理窗口重新获取。")
    text = [para(f"受理号：{case_number}", "cell"), para(code, "cell"),
            para(f"扫描二维码或访问 {tracking.url} 查询办理进度。", "cell")]
    table = Table([[text, qr]], colWidths=[width - size - 8 * mm, size + 8 * mm])
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "MIDDLE"), ("BOX", (0, 0), (-1, -1), 0.6, "black")]))
    return [para("进度查询", "heading"), table]


def _t(text: Any) -> str:
    """Every text into the PDF: masked (PII safety net), then escaped for reportlab markup."""
    return escape(mask_text(str(text)))


def _body_paragraphs(data: NoticeData) -> list[str]:
    """The body in plain text (masked and escaped later)."""
    item = f"“{data.item_name}”（事项编码：{data.item_code}）"
    applied = f"您于{format_date(data.issued_on)}向本中心申请办理{item}"
    case = f"（受理号{data.case_number}）"
    review = (f"如您对本决定有异议，可在收到本通知书之日起向本中心或{data.department_name}申请复核，"
              f"也可拨打监督电话{data.supervision_phone}反映；依法属于行政许可等具体行政行为的，"
              "您还可以依法申请行政复议或者提起行政诉讼。")
    kind = data.kind
    if kind == "acceptance":
        return [
            f"{applied}，经审查，申请材料齐全、符合法定形式，本中心决定予以受理，受理号为{data.case_number}。",
            (f"本事项由{data.department_name}办理，承诺于{data.promised_text}前办结。"
             "办结后将以短信等方式通知您，请保持联系方式畅通。"),
            "本中心已收取的申请材料见下表。",
        ]
    if kind == "promise":
        return [
            f"{applied}，该事项属于承诺件，本中心已予受理，受理号为{data.case_number}。",
            (f"本事项由{data.department_name}办理，本中心承诺于{data.promised_text}前办结；"
             "需要现场勘察、听证、检验、检测、鉴定或专家评审的，所需时间不计入承诺时限，届时另行告知。"),
            "办结后将以短信等方式通知您领取或邮寄办理结果。",
        ]
    if kind == "one_time_notice":
        names = [str(n).strip() for n in data.missing_materials if str(n).strip()]
        listed = "；".join(f"{i}. {n}" for i, n in enumerate(names, 1))
        return [
            (f"{applied}{case}。经审查，您提交的申请材料不齐全或者不符合法定形式，"
             f"现一次性告知您需要补正的全部材料，共{len(names)}项：{listed}。"),
            ("请您补齐上述全部材料后，到本中心或任一便民服务中心窗口提交。"
             "办理时限自材料补齐之日起计算；除上述材料外，本中心不再要求补充其他材料。"),
            "本事项所需的全部材料见下表。",
        ]
    if kind == "rejection":
        return [
            f"{applied}{case}。经审查，本中心决定不予受理（退回），理由如下：",
            (data.reason or "").strip(),
            review,
        ]
    if kind == "result":
        if data.outcome == "approved":
            return [
                f"{applied}{case}，经{data.department_name}审查，准予办理，现已办结。",
                f"证照/文书编号：{data.result_number}。"
                + (f"{data.delivery_text}。" if data.delivery_text else "请按您选择的方式领取或签收办理结果。"),
            ]
        return [
            f"{applied}{case}，经{data.department_name}审查，决定不予办理，现已办结。理由如下：",
            (data.reason or "").strip(),
            review,
        ]
    # pickup
    number = f"（证照/文书编号：{data.result_number}）" if data.result_number else ""
    fee = f"领取时请缴纳费用{format_fee(data.fee_fen)}。" if data.fee_fen else "本事项不收取费用。"
    return [
        f"{applied}{case}已办结，办理结果{number}已可领取。",
        f"领取地点：{(data.pickup_place or '').strip()}。",
        f"领取时间：自{format_date(data.issued_on)}起，{data.hours_text}。",
        f"领取时请携带本通知书及本人身份证件原件；委托他人代领的，请同时提供委托书及代领人身份证件原件。{fee}",
    ]


def _public_rows(data: NoticeData) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for element in PUBLIC_ELEMENTS[data.kind]:
        if element == "item":
            rows.append(("事项名称", f"{data.item_name}（{data.item_code}）"))
        elif element == "department":
            rows.append(("实施部门", data.department_name))
        elif element == "basis" and data.basis:
            rows.append(("设定依据", data.basis))
        elif element == "conditions" and data.conditions:
            rows.append(("办理条件", data.conditions))
        elif element == "promised_date" and data.promised_text:
            rows.append(("承诺办结时限", data.promised_text))
        elif element == "fee":
            rows.append(("收费标准", format_fee(data.fee_fen)))
        elif element == "window":
            rows.append(("受理窗口", f"{data.accepting_centre}{data.window}"))
        elif element == "responsible_person":
            rows.append(("首问责任人", data.responsible_text))
        elif element == "supervision_phone":
            rows.append(("监督电话", data.supervision_phone))
    return rows


def render_pdf(data: NoticeData, tracking: Tracking | None = None) -> bytes:
    """An A4 printable PDF of the notice, with an embedded CJK TrueType font; with `tracking`, the progress
    lookup (query code, QR code) after the body."""
    from reportlab.lib import colors
    from reportlab.lib.enums import TA_CENTER, TA_JUSTIFY, TA_RIGHT
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import (
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    font = cjk_font_name()
    base = ParagraphStyle("tb-body", fontName=font, fontSize=11.5, leading=19,
                          wordWrap="CJK", alignment=TA_JUSTIFY)
    styles = {
        "title": ParagraphStyle("tb-title", parent=base, fontSize=22, leading=28, alignment=TA_CENTER),
        "aka": ParagraphStyle("tb-aka", parent=base, fontSize=12, leading=16, alignment=TA_CENTER),
        "docno": ParagraphStyle("tb-docno", parent=base, fontSize=10.5, leading=15, alignment=TA_CENTER),
        "body": ParagraphStyle("tb-para", parent=base, firstLineIndent=23, spaceAfter=4),
        "plain": base,
        "heading": ParagraphStyle("tb-heading", parent=base, fontSize=12, leading=18, spaceBefore=6,
                                  spaceAfter=3),
        "cell": ParagraphStyle("tb-cell", parent=base, fontSize=10, leading=14, alignment=0),
        "cellc": ParagraphStyle("tb-cellc", parent=base, fontSize=10, leading=14, alignment=TA_CENTER),
        "sign": ParagraphStyle("tb-sign", parent=base, alignment=TA_RIGHT),
        "note": ParagraphStyle("tb-note", parent=base, fontSize=9.5, leading=14, textColor=colors.grey),
    }

    def para(text: Any, style: str = "body") -> Paragraph:
        return Paragraph(_t(text), styles[style])

    grid = TableStyle([
        ("GRID", (0, 0), (-1, -1), 0.6, colors.black),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("TOPPADDING", (0, 0), (-1, -1), 3),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
    ])
    width = A4[0] - 2 * 20 * mm
    story: list[Any] = [para(data.title, "title")]
    if data.kind in ALSO_KNOWN_AS:
        story.append(para(f"（{ALSO_KNOWN_AS[data.kind]}）", "aka"))
    story += [Spacer(1, 2 * mm), para(document_number(data), "docno"), Spacer(1, 5 * mm),
              para(f"{data.applicant_name}（证件号码：{data.applicant_id_masked}）：", "plain")]
    story += [para(text) for text in _body_paragraphs(data)]

    if data.kind in _MATERIALS_TABLE_KINDS and data.materials:
        missing = {str(n).strip() for n in data.missing_materials}
        header = ["序号", "材料名称", "形式", "是否必需"]
        if data.kind == "one_time_notice":
            header.append("需补正")
        rows: list[list[Paragraph]] = [[para(h, "cellc") for h in header]]
        for i, material in enumerate(data.materials, 1):
            name = str(material.get("name", "")).strip()
            form = material.get("form")
            row = [para(i, "cellc"), para(name, "cell"), para(MATERIAL_FORMS.get(form, form or "—"), "cellc"),
                   para("是" if _material_required(material) else "否", "cellc")]
            if data.kind == "one_time_notice":
                row.append(para("是" if name in missing else "", "cellc"))
            rows.append(row)
        widths = ([0.09, 0.55, 0.2, 0.16] if len(header) == 4 else [0.08, 0.5, 0.16, 0.13, 0.13])
        table = Table(rows, colWidths=[w * width for w in widths], repeatRows=1)
        table.setStyle(grid)
        story += [para("申请材料", "heading"), table]

    if tracking is not None:
        story += _tracking_flowables(tracking, data.case_number, para, width)

    public = _public_rows(data)
    table = Table([[para(k, "cellc"), para(v, "cell")] for k, v in public],
                  colWidths=[0.22 * width, 0.78 * width])
    table.setStyle(grid)
    story += [para("办事公开信息", "heading"), table, Spacer(1, 10 * mm),
              para(data.accepting_centre, "sign"), para("（印章）", "sign"),
              para(format_date(data.issued_on), "sign"), Spacer(1, 8 * mm),
              para("本通知书一式两份，一份交申请人，一份由本中心存档。", "note")]

    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer, pagesize=A4, leftMargin=20 * mm, rightMargin=20 * mm, topMargin=18 * mm,
        bottomMargin=18 * mm, title=mask_text(f"{data.title} {data.case_number}"),
        author=mask_text(data.accepting_centre), subject=mask_text(data.item_name),
        creator="Tongban 全城通办", invariant=1,
    )
    doc.build(story)
    return buffer.getvalue()


# ----------------------------------------------------------------- stored notices ---

TITLES = NOTICE_KINDS


def notice_to_dict(data: NoticeData) -> dict:
    """JSON-safe copy of a notice's data, kept with the case so the PDF can be printed again."""
    out = {}
    for f in fields(NoticeData):
        value = getattr(data, f.name)
        if isinstance(value, date):
            value = value.isoformat()
        elif isinstance(value, tuple):
            value = [dict(v) if isinstance(v, Mapping) else v for v in value]
        out[f.name] = value
    return out


def notice_from_dict(stored: dict) -> NoticeData:
    values = dict(stored)
    for name in ("issued_on", "promised_date"):
        if values.get(name):
            values[name] = date.fromisoformat(values[name])
    return NoticeData(**values)
