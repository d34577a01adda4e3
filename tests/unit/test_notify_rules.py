"""Notify's rules without a broker: SMS segments, the fallback order, templates checked at load time."""
import pytest

from services.notify import domain
from services.notify.config import ConfigProblem, fallback_orders, sms_channel
from services.notify.templating import KINDS, TemplateProblem, Templates
from shared.config import Settings


def test_a_chinese_text_is_one_segment_up_to_70_then_67_per_part():
    assert domain.sms_segments("办" * 70).count == 1
    long = domain.sms_segments("办" * 71)
    assert long.encoding == "ucs2" and long.count == 2 and [len(p) for p in long.parts] == [67, 4]
    assert domain.sms_segments("办" * 134).count == 2 and domain.sms_segments("办" * 135).count == 3
    assert domain.sms_segments("a" * 69 + "办").encoding == "ucs2", "one Chinese character makes it UCS-2"


def test_a_gsm7_text_is_one_segment_up_to_160_then_153_per_part():
    assert domain.sms_segments("a" * 160) == domain.Segments("gsm7", ("a" * 160,))
    assert [len(p) for p in domain.sms_segments("a" * 161).parts] == [153, 8]
    assert domain.sms_segments("€" * 80).count == 1 and domain.sms_segments("€" * 81).count == 2, "escape: 2 each"
    parts = domain.sms_segments("a" * 152 + "€" + "b" * 10).parts
    assert parts[0] == "a" * 152 and parts[1].startswith("€"), "an escape pair is never cut"


def test_a_character_outside_the_bmp_is_never_cut():
    parts = domain.sms_segments("办" * 66 + "𠀀" + "办" * 10).parts
    assert parts[0] == "办" * 66 and parts[1].startswith("𠀀")
    assert domain.sms_segments("").count == 0


def test_the_sign_is_the_operators():
    assert domain.signed("【全城通办】受理号1", "玉山镇") == "【玉山镇】受理号1"
    assert domain.signed("受理号1", "玉山镇") == "【玉山镇】受理号1"
    assert domain.signed("【全城通办】受理号1", None) == "【全城通办】受理号1"


def test_the_fallback_order_starts_with_the_chosen_channel():
    orders = domain.parse_fallback("sms,email,pickup;result=email,pickup", KINDS)
    assert domain.fallback_chain("email", "acceptance", orders) == ["email", "sms", "pickup"]
    assert domain.fallback_chain("sms", "result", orders) == ["sms", "email", "pickup"]
    usable = {"sms", "email", "pickup", "log"}
    assert domain.next_channel("sms", "acceptance", orders, {"sms"}, usable) == "email"
    assert domain.next_channel("sms", "acceptance", orders, {"sms"}, usable - {"email"}) == "pickup"
    assert domain.next_channel("sms", "acceptance", orders, {"sms", "email", "pickup"}, usable) is None
    assert domain.usable_channels({"sms", "email"}, has_email=False) == {"sms"}


def test_a_fallback_setting_that_does_not_parse_stops_the_start():
    with pytest.raises(ValueError, match="unknown notice kind 'resullt'"):
        domain.parse_fallback("resullt=sms", KINDS)
    with pytest.raises(ValueError, match="channels must be"):
        domain.parse_fallback("sms,fax", KINDS)
    settings = Settings(service="notify", instance="notify", extra={"notify_fallback": "sms,pigeon"})
    with pytest.raises(ConfigProblem, match="TONGBAN_NOTIFY_FALLBACK"):
        fallback_orders(settings)
    with pytest.raises(ConfigProblem, match="TONGBAN_SMS_KEY"):
        sms_channel({"sms_url": "http://gw", "sms_account": "a"})
    with pytest.raises(ConfigProblem, match="without 【】"):
        sms_channel({"sms_url": "http://gw", "sms_account": "a", "sms_key": "k", "sms_sign": "【全城通办】"})


def test_the_shipped_templates_render_every_kind():
    templates = Templates()
    values = {"name": "张三", "case_number": "320583101-20260105-00001", "title": "办结通知", "kind": "result",
              "text": "【全城通办】已办结。", "town": "320583101", "sign": ""}
    for kind in KINDS:
        assert templates.render(kind, "sms", **values) == "【全城通办】已办结。"
        subject = templates.render(kind, "email_subject", **values)
        assert "\n" not in subject and "320583101-20260105-00001" in subject
        assert templates.render(kind, "email_body", **values).startswith("张三：")


def test_a_copy_in_the_override_folder_replaces_the_shipped_one(tmp_path):
    (tmp_path / "sms").mkdir()
    (tmp_path / "sms" / "result.txt.j2").write_text("{{ name }}您好，{{ text }}回复TD退订", encoding="utf-8")
    templates = Templates(tmp_path)
    values = {"name": "张三", "case_number": "n", "title": "t", "kind": "result", "text": "已办结。", "town": "",
              "sign": ""}
    assert templates.render("result", "sms", **values) == "张三您好，已办结。回复TD退订"
    assert templates.render("acceptance", "sms", **values) == "已办结。", "the others stay the shipped ones"


@pytest.mark.parametrize("source, problem", [
    ("{{ applicant_phone }}", "does not render: UndefinedError"),  # a name templates do not get
    ("{% if name %}unclosed", "line 1"),  # a syntax error
    ("{{ name | no_such_filter }}", "no_such_filter"),
])
def test_a_template_that_does_not_render_is_an_error_at_load_naming_the_file(tmp_path, source, problem):
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "pickup.body.j2").write_text(source, encoding="utf-8")
    with pytest.raises(TemplateProblem, match=problem) as failed:
        Templates(tmp_path)
    assert "pickup.body.j2" in str(failed.value)


def test_a_missing_override_folder_is_an_error():
    with pytest.raises(TemplateProblem, match="no such folder"):
        Templates("/nonexistent/templates")
