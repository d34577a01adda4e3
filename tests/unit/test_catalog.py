"""The item catalogue: the shipped sample, validation, the versioned store and `tongban catalog`."""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import re
from dataclasses import replace
from datetime import date, datetime

import pytest
import yaml

from shared.catalog import (
    CASE_KINDS,
    CATEGORIES,
    SAMPLE_CATALOG,
    CatalogError,
    load_catalog,
    parse_catalog,
)
from shared.reference import (
    CALENDAR,
    CATALOG,
    Book,
    Catalogs,
    Conflict,
    NoCatalog,
    Record,
    RecordError,
    calendar_of,
    decode,
    make_record,
)
from tests.unit.streams import MemoryStream
from tongban import catalog_cmd

SAMPLE = load_catalog()
ITEMS = list(SAMPLE.data["items"])
_SAMPLE_RAW = yaml.load(SAMPLE_CATALOG.read_text(encoding="utf-8"),
                        Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))

# ---------------------------------------------------------------------------------------------
# the shipped sample


def test_sample_city_has_enough_towns_villages_and_departments():
    assert SAMPLE.version == "2026.1"
    assert SAMPLE.data["city"] == {"code": "320583", "name": "昆山市"}
    towns = SAMPLE.data["towns"]
    assert len(towns) >= 12
    for town in towns:
        assert re.fullmatch(r"320583\d{3}", town["code"]), town
        assert len(town["villages"]) >= 3, town["name"]
        for village in town["villages"]:
            assert re.fullmatch(r"\d{12}", village["code"]) and village["code"].startswith(town["code"])
    assert len({t["code"] for t in towns}) == len(towns)
    assert {"玉山镇", "巴城镇", "周庄镇", "千灯镇", "亭林街道"} <= {t["name"] for t in towns}
    assert len(SAMPLE.departments) >= 10
    assert {"minzheng", "weijian", "renshe", "yibao", "gongan", "shichang", "zhujian", "nongye", "tuiyi",
            "canlian", "ziran", "sifa"} <= set(SAMPLE.departments)


def test_sample_keeps_the_towns_and_villages_other_tests_use():
    towns = SAMPLE.towns
    assert towns["320583101"]["name"] == "玉山镇" and towns["320583102"]["name"] == "巴城镇"
    assert {"320583101001": "城北社区", "320583101002": "城南社区"}.items() <= \
        {v["code"]: v["name"] for v in towns["320583101"]["villages"]}.items()
    assert {"320583102001": "湖滨村", "320583102002": "绰墩山村"}.items() <= \
        {v["code"]: v["name"] for v in towns["320583102"]["villages"]}.items()


def test_sample_keeps_mz_0001_and_rs_0001_unchanged():
    mz, rs = SAMPLE.item("MZ-0001"), SAMPLE.item("RS-0001")
    assert (mz["name"], mz["department"], mz["kind"], mz["level"], mz["promised_days"], mz["auto_decide"]) == \
        ("老年人优待证办理", "minzheng", "instant", "town", 0, True)
    assert [(m["code"], m["name"]) for m in mz["materials"]] == [("idcard", "居民身份证"), ("photo", "一寸免冠照片")]
    assert (rs["name"], rs["department"], rs["kind"], rs["statutory_days"], rs["promised_days"], rs["delivery"]) == \
        ("灵活就业人员社会保险登记", "renshe", "promised", 20, 5, ["pickup", "mail"])
    assert [(m["code"], m["issuer"]) for m in rs["materials"]] == [("idcard", "申请人"), ("form", "人社部门")]


def test_sample_covers_every_category_and_kind():
    assert len(ITEMS) >= 60
    assert {i["category"] for i in ITEMS} == set(CATEGORIES)
    assert {i["kind"] for i in ITEMS} == set(CASE_KINDS)
    assert {i["level"] for i in ITEMS} >= {"town", "city"}
    instant = [i for i in ITEMS if i["kind"] == "instant"]
    assert all(i["promised_days"] == 0 for i in instant)
    assert any(i["auto_decide"] for i in instant) and not all(i["auto_decide"] for i in instant)
    assert all(i["statutory_days"] >= i["promised_days"] for i in ITEMS)


def test_sample_item_codes_carry_their_department_prefix():
    prefix = {"minzheng": "MZ", "weijian": "WJ", "renshe": "RS", "yibao": "YB", "gongan": "GA", "shichang": "SC",
              "zhujian": "ZJ", "nongye": "NY", "tuiyi": "TY", "canlian": "CL", "ziran": "ZR", "sifa": "SF",
              "linye": "LY", "dangjian": "DJ"}
    for item in ITEMS:
        assert re.fullmatch(r"[A-Z0-9-]{2,32}", item["code"])
        assert item["code"].split("-")[0] == prefix[item["department"]], item["code"]
    assert len({i["code"] for i in ITEMS}) == len(ITEMS)


def test_marriage_divorce_and_adoption_need_the_applicant_in_person():
    by_name = {i["name"]: i for i in ITEMS}
    for name in ("结婚登记", "离婚登记", "收养登记"):
        item = by_name[name]
        assert item["in_person"] is True and item["agent_allowed"] is False, name
    assert all(not i["agent_allowed"] for i in ITEMS if i["in_person"])
    assert any(i["agent_allowed"] for i in ITEMS)
    assert any(not i["agent_allowed"] and not i["in_person"] for i in ITEMS)


def test_escalated_items_are_decided_at_city_level():
    escalated = [i for i in ITEMS if i["kind"] == "escalated"]
    assert escalated and all(i["level"] == "city" for i in escalated)
    assert {"残疾人证办理", "再生育审批", "林木采伐许可", "法律援助申请", "特困人员救助供养申请",
            "退役军人优待证申领"} <= {i["name"] for i in escalated}


def test_joint_items_name_real_co_departments_other_than_the_lead():
    joint = [i for i in ITEMS if i["kind"] == "joint"]
    assert len(joint) >= 3
    for item in joint:
        assert item["co_departments"], item["code"]
        assert set(item["co_departments"]) <= set(SAMPLE.departments), item["code"]
        assert item["department"] not in item["co_departments"], item["code"]
    assert SAMPLE.item("NY-0001")["name"] == "农村宅基地和建房(规划许可)审批"


def test_consultations_say_where_to_go():
    consult = [i for i in ITEMS if i["kind"] == "consultation"]
    assert len(consult) >= 3
    assert all(i["guide"] and i["promised_days"] == 0 for i in consult)
    assert any(not i["materials"] for i in consult)


def test_materials_fees_and_delivery_are_realistic():
    materials = [m for i in ITEMS for m in i["materials"]]
    assert any(m["deferrable"] for m in materials)
    assert any(not m["required"] for m in materials)
    assert {m["form"] for m in materials} >= {"original", "copy"}
    assert any(m["issuer"] != "申请人" for m in materials)
    paid = [i for i in ITEMS if i["fee_fen"] > 0]
    assert paid and all(i["fee_basis"] for i in paid)
    assert SAMPLE.item("GA-0001")["fee_fen"] == 2000
    assert sum(1 for i in ITEMS if i["fee_fen"] == 0) > len(ITEMS) * 0.8  # most are free
    assert any("mail" in i["delivery"] for i in ITEMS) and any(i["delivery"] == ["pickup"] for i in ITEMS)
    assert any(i["city_wide"] for i in ITEMS) and any(not i["city_wide"] for i in ITEMS)
    names = {i["name"] for i in ITEMS}
    assert {"城乡居民基本养老保险参保登记", "城乡居民基本医疗保险参保登记", "临时救助申请", "最低生活保障申请",
            "生育登记", "高龄津贴申请", "个体工商户设立登记", "食品小经营店登记"} <= names


def test_summary_counts_items():
    s = SAMPLE.summary()
    assert s["items"] == len(ITEMS) and s["towns"] == len(SAMPLE.towns)
    assert s["villages"] == sum(len(t["villages"]) for t in SAMPLE.data["towns"])
    assert sum(s["by_kind"].values()) == sum(s["by_category"].values()) == sum(s["by_department"].values()) == \
        len(ITEMS)
    assert s["by_kind"]["joint"] == sum(1 for i in ITEMS if i["kind"] == "joint")
    assert s["by_department"]["minzheng"] == sum(1 for i in ITEMS if i["department"] == "minzheng")
    assert s["with_fee"] == sum(1 for i in ITEMS if i["fee_fen"])
    assert SAMPLE.summary_line() == (f"version 2026.1, {len(ITEMS)} items, {len(SAMPLE.towns)} towns, "
                                     f"{len(SAMPLE.departments)} departments")


# ---------------------------------------------------------------------------------------------
# invalid catalogues give clear errors

MINIMAL = {
    "version": "t1",
    "city": {"code": "320583", "name": "昆山市"},
    "towns": [{"code": "320583101", "name": "玉山镇", "villages": [{"code": "320583101001", "name": "城北社区"}]},
              {"code": "320583102", "name": "巴城镇", "villages": [{"code": "320583102001", "name": "湖滨村"}]}],
    "departments": [{"code": "minzheng", "name": "民政"}, {"code": "canlian", "name": "残联"}],
    "items": [
        {"code": "MZ-1", "name": "临时救助申请", "category": "民生保障", "item_type": "行政给付",
         "department": "minzheng", "level": "town", "kind": "promised", "statutory_days": 15, "promised_days": 5,
         "materials": [{"code": "idcard", "name": "居民身份证"}]},
        {"code": "MZ-2", "name": "结婚登记", "category": "行政政务", "item_type": "行政确认",
         "department": "minzheng", "level": "city", "kind": "instant", "statutory_days": 0, "promised_days": 0,
         "in_person": True, "agent_allowed": False},
    ],
}


def _text(data) -> str:
    return yaml.dump(data, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), allow_unicode=True, sort_keys=False)


def _broken(change) -> str:
    data = copy.deepcopy(MINIMAL)
    change(data)
    return _text(data)


def test_the_minimal_catalogue_is_valid():
    assert parse_catalog(_text(MINIMAL)).summary_line() == "version t1, 2 items, 2 towns, 2 departments"


def _set(path, value):
    def change(data):
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


def _append_item(**item):
    return lambda data: data["items"].append({**copy.deepcopy(MINIMAL["items"][0]), **item})


@pytest.mark.parametrize("change, expected", [
    (_set(["items", 0, "department"], "nobody"), r"items\[0\] \(MZ-1\): unknown department nobody"),
    (_append_item(), r"items\[2\] \(MZ-1\): item code MZ-1 repeats"),
    (_set(["items", 0, "promised_days"], 20),
     r"items\[0\] \(MZ-1\)\.promised_days: promised limit cannot exceed the statutory limit"),
    (_set(["towns", 0, "villages", 0, "code"], "320583102009"),
     r"towns\[0\] \(320583101\)\.villages\[0\] \(320583102009\): village is not inside town 320583101"),
    (_set(["items", 0, "kind"], "joint"), r"items\[0\] \(MZ-1\)\.co_departments: a joint item names its co-dep"),
    (_append_item(code="MZ-3", kind="joint", co_departments=["minzheng"]),
     r"items\[2\] \(MZ-3\)\.co_departments: the lead department cannot also be a co-department"),
    (_append_item(code="MZ-3", kind="joint", co_departments=["weijian"]),
     r"items\[2\] \(MZ-3\): unknown department weijian"),
    (_set(["items", 1, "agent_allowed"], True),
     r"items\[1\] \(MZ-2\)\.agent_allowed: an item that needs the applicant in person cannot be submitted"),
    (_set(["items", 0, "kind"], "escalated"), r"items\[0\] \(MZ-1\)\.level: an escalated item .* its level is city"),
    (_set(["items", 0, "fee_fen"], 2000), r"items\[0\] \(MZ-1\)\.fee_basis: a fee names its basis"),
    (_set(["items", 0, "auto_decide"], True), r"items\[0\] \(MZ-1\)\.auto_decide: only an instant item"),
    (_append_item(code="MZ-3", kind="consultation", promised_days=0, statutory_days=0),
     r"items\[2\] \(MZ-3\)\.guide: a consultation item tells the applicant where to go"),
    (_set(["items", 1, "promised_days"], 3), r"items\[1\] \(MZ-2\)\.promised_days: an instant item is finished"),
    (_set(["items", 0, "code"], "mz 1"), r"items\[0\] \(mz 1\)\.code: String does not match"),
    (_set(["items", 0, "category"], "党建"), r"items\[0\] \(MZ-1\)\.category: Must be one of"),
    (_set(["departments", 1, "code"], "minzheng"), r"departments\[1\] \(minzheng\): department code minzheng repeats"),
    (_set(["towns", 1, "code"], "320583101"), r"towns\[1\] \(320583101\): town code 320583101 repeats"),
    (_set(["towns", 1, "code"], "320584102"), r"towns\[1\] \(320584102\): town 320584102 is not inside city 320583"),
    (_set(["version"], "2026/1"), r"version: version must be 1-32 letters"),
    (_set(["items", 0, "surprise"], 1), r"items\[0\] \(MZ-1\)\.surprise: Unknown field"),
])
def test_invalid_catalogues_name_the_problem(change, expected):
    with pytest.raises(CatalogError) as caught:
        parse_catalog(_broken(change))
    assert any(re.search(expected, line) for line in caught.value.problems), caught.value.problems
    assert re.search(expected, str(caught.value))


def test_every_problem_is_reported_in_one_pass():
    def change(data):
        data["items"][0]["category"] = "党建"  # a field error ...
        data["items"][0]["department"] = "nobody"  # ... does not hide a reference error
        data["items"][1]["agent_allowed"] = True  # ... nor an item rule
    with pytest.raises(CatalogError) as caught:
        parse_catalog(_broken(change))
    text = "\n".join(caught.value.problems)
    assert "category: Must be one of" in text and "unknown department nobody" in text and "in person" in text


def test_an_unquoted_decimal_version_is_refused_before_it_changes_meaning():
    text = _text(MINIMAL).replace("version: t1", "version: 2026.10")
    with pytest.raises(CatalogError, match="quotes"):
        parse_catalog(text)
    assert parse_catalog(text.replace("2026.10", '"2026.10"')).version == "2026.10"


def test_not_yaml_and_not_a_mapping():
    with pytest.raises(CatalogError, match="not valid YAML"):
        parse_catalog("version: [")
    with pytest.raises(CatalogError, match="YAML mapping"):
        parse_catalog("- a\n- b\n")


# ---------------------------------------------------------------------------------------------
# the versioned store


def _version(version: str, **rename) -> str:
    """The sample under another version; rename={code: new name} changes item names."""
    data = copy.deepcopy(_SAMPLE_RAW)
    data["version"] = version
    for item in data["items"]:
        item["name"] = rename.get(item["code"].replace("-", "_"), item["name"])
    return _text(data)


def _record(text: str, offset: int | None = None, when: str = "2026-11-25T08:00:00+00:00") -> Record:
    return replace(make_record(CATALOG, text, "city-it@test", datetime.fromisoformat(when)), offset=offset)


def test_a_record_goes_over_the_wire_and_back():
    record = _record(_version("2026.2"))
    assert record.version == "2026.2" and record.sha256 == hashlib.sha256(record.text.encode()).hexdigest()
    back = decode(record.to_wire(), offset=7)
    assert back == replace(record, offset=7)
    wire = json.loads(record.to_wire())
    assert set(wire) == {"kind", "version", "sha256", "text", "loaded_at", "loaded_by"}
    # a tolerant reader: a field added by a newer CLI is ignored
    assert decode(json.dumps({**wire, "signed_by": "someone"})).version == "2026.2"


@pytest.mark.parametrize("change, message", [
    (lambda w: {**w, "kind": "weather"}, "kind"),
    (lambda w: {k: v for k, v in w.items() if k != "text"}, "text"),
    (lambda w: {**w, "text": w["text"] + "# tampered\n"}, "sha256 does not match"),
    (lambda w: {**w, "loaded_at": "yesterday"}, "loaded_at"),
])
def test_an_unreadable_record_is_refused(change, message):
    wire = json.loads(_record(_version("2026.2")).to_wire())
    with pytest.raises(RecordError, match=message):
        decode(json.dumps(change(wire)))
    with pytest.raises(RecordError):
        decode(b"\xff not json")


def test_a_record_is_validated_as_its_kind():
    with pytest.raises(CatalogError, match="unknown department"):
        make_record(CATALOG, _version("2026.2").replace("department: canlian", "department: nobody"))
    cal = make_record(CALENDAR, "year: 2027\nholidays: [2027-01-01]\n")
    assert (cal.kind, cal.version) == (CALENDAR, "2027")


def test_the_active_catalogue_is_the_last_in_stream_order():
    book = Book()
    assert Catalogs(book).ready is False
    with pytest.raises(NoCatalog, match="no catalogue has been loaded"):
        Catalogs(book).active()
    for offset, version in enumerate(("2026.10", "2026.9", "2026.2")):
        assert book.add(_record(_version(version), offset)) is True
    catalogs = Catalogs(book)
    assert catalogs.versions() == ["2026.10", "2026.9", "2026.2"]  # load order
    assert catalogs.active().version == "2026.2"  # the last loaded, not the highest


def test_the_same_file_twice_is_one_version():
    book = Book([_record(_version("2026.2"), 0)])
    again = _record(_version("2026.2"), when="2026-12-01T08:00:00+00:00")
    assert book.check(again) is False  # the CLI publishes nothing
    assert book.add(replace(again, offset=5)) is False  # a reader stores it once
    assert Catalogs(book).versions() == ["2026.2"]


def test_the_same_version_with_other_content_is_refused():
    book = Book([_record(_version("2026.2"), 0), _record(_version("2026.3"), 1)])
    with pytest.raises(Conflict, match="catalogue version 2026.2 is already loaded with other content"):
        book.check(_record(_version("2026.2", MZ_0005="高龄津贴发放")))
    assert Catalogs(book).active().version == "2026.3"


def test_a_new_version_never_changes_an_old_one():
    book = Book([_record(_version("2026.2"), 0), _record(_version("2026.3", MZ_0005="高龄津贴发放"), 1)])
    catalogs = Catalogs(book)
    assert catalogs.active().item("MZ-0005")["name"] == "高龄津贴发放"
    assert catalogs.get("2026.2").item("MZ-0005")["name"] == "高龄津贴申请"  # a case accepted under 2026.2
    with pytest.raises(CatalogError, match="unknown catalogue version 2026.9"):
        catalogs.get("2026.9")  # never the active one in its place


def test_a_years_calendar_is_its_last_record():
    first = make_record(CALENDAR, "year: 2027\nholidays: [2027-01-01]\n")
    corrected = make_record(CALENDAR, "year: 2027\nholidays: [2027-01-01, 2027-01-04]\n")
    book = Book([replace(first, offset=0), replace(corrected, offset=1)])
    assert book.calendar_years()[2027].sha256 == corrected.sha256
    cal = calendar_of(book)
    assert cal.knows_year(2027) and not cal.is_working_day(date(2027, 1, 4))
    # updated in place: a service's Window keeps the same calendar object
    same = calendar_of(Book([first]), cal)
    assert same is cal and cal.is_working_day(date(2027, 1, 4))


# ---------------------------------------------------------------------------------------------
# `tongban catalog …`


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    stream = MemoryStream()
    stream.load(CATALOG, SAMPLE_CATALOG.read_text(encoding="utf-8"), "tongban bus declare")  # as bus declare does
    monkeypatch.setattr(catalog_cmd, "open_stream", lambda: stream)
    parser = argparse.ArgumentParser(prog="tongban")
    catalog_cmd.register(parser.add_subparsers(dest="command", required=True))

    def run(*argv):
        args = parser.parse_args(["catalog", *argv])
        code = args.func(args)
        out, err = capsys.readouterr()
        return code, out, err
    run.stream = stream
    run.tmp = tmp_path
    return run


def _file(cli, name, text):
    path = cli.tmp / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_cli_list_prints_the_active_items(cli):
    code, out, _ = cli("list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["code", "name", "kind", "department", "level", "days(promised/statutory)", "fee"]
    assert len(lines) == len(ITEMS) + 2
    assert lines[-1] == f"{len(ITEMS)} of {len(ITEMS)} items, catalogue version 2026.1"
    ga = next(line for line in lines if line.startswith("GA-0001"))
    assert ga.split() == ["GA-0001", "居民身份证申领", "promised", "承诺件", "gongan", "town", "20/60", "20.00元"]


def test_cli_list_filters(cli):
    code, out, _ = cli("list", "--kind", "joint", "--json")
    assert code == 0
    listed = json.loads(out)
    assert listed["version"] == "2026.1"
    assert [i["code"] for i in listed["items"]] == [i["code"] for i in ITEMS if i["kind"] == "joint"]
    code, out, _ = cli("list", "--department", "canlian", "--category", "民生保障", "--json")
    assert {i["code"] for i in json.loads(out)["items"]} == \
        {i["code"] for i in ITEMS if i["department"] == "canlian" and i["category"] == "民生保障"}
    code, out, err = cli("list", "--department", "nobody")
    assert code == 2 and out == "" and "no department 'nobody'" in err and "minzheng" in err
    with pytest.raises(SystemExit):
        cli("list", "--kind", "sometimes")


def test_cli_show_prints_one_item(cli):
    code, out, _ = cli("show", "GA-0001")
    assert code == 0
    assert out.splitlines()[0] == "GA-0001  居民身份证申领   (catalogue version 2026.1)"
    assert "20.00元  basis: 居民身份证工本费每证20元" in out
    assert "promised 20 working days, statutory 60" in out
    assert "yes, the applicant must come in person" in out and "may not submit" in out
    assert "- hukou: 居民户口簿  [required, 原件]  issued by 公安机关" in out
    code, out, _ = cli("show", "NY-0001")
    assert "co-departments  自然资源 (ziran), 住建 (zhujian)" in out
    assert "[required, 复印件, may follow later (容缺)]" in out
    code, out, _ = cli("show", "SF-0003")
    assert "where to go     到昆山市公证处" in out and "materials       none" in out
    code, out, _ = cli("show", "MZ-0001", "--json")
    shown = json.loads(out)
    assert code == 0 and shown["version"] == "2026.1" and shown["item"] == SAMPLE.item("MZ-0001")


def test_cli_show_unknown_item_or_version(cli):
    code, out, err = cli("show", "XX-9999")
    assert code == 2 and out == "" and "no item 'XX-9999' in catalogue version 2026.1" in err
    code, out, err = cli("show", "MZ-0001", "--version", "2026.9")
    assert code == 2 and "unknown catalogue version 2026.9" in err


def test_cli_validate(cli):
    code, out, err = cli("validate", str(SAMPLE_CATALOG))
    assert (code, err) == (0, "")
    assert out == (f"valid: version 2026.1, {len(ITEMS)} items, {len(SAMPLE.towns)} towns, "
                   f"{len(SAMPLE.departments)} departments\n")
    bad = _file(cli, "bad.yaml", SAMPLE_CATALOG.read_text(encoding="utf-8")
                .replace("promised_days: 5\n    materials:\n      - {code: idcard, name: 居民身份证, form: original}",
                         "promised_days: 25\n    materials:\n      - {code: idcard, name: 居民身份证, form: original}")
                .replace("department: canlian", "department: nobody"))
    code, out, err = cli("validate", bad)
    assert code == 2 and out == ""
    lines = err.splitlines()
    assert lines[0] == f"tongban catalog validate: {bad} is not a valid catalogue: catalogue is invalid"
    assert any(re.fullmatch(r"  - items\[\d+\] \(RS-0001\)\.promised_days: promised limit cannot exceed the "
                            r"statutory limit", line) for line in lines)
    assert any(re.fullmatch(r"  - items\[\d+\] \(CL-0001\): unknown department nobody", line) for line in lines)
    assert len(cli.stream.records) == 1  # validate publishes nothing
    code, _, err = cli("validate", str(cli.tmp / "nope.yaml"))
    assert code == 2 and "cannot read" in err
    code, _, err = cli("validate", _file(cli, "notyaml.yaml", "version: ["))
    assert code == 2 and "not valid YAML" in err


def test_cli_load_and_versions(cli):
    code, out, _ = cli("versions")
    assert code == 0 and out.splitlines() == [f"* 2026.1  {len(ITEMS)} items  (active)"]
    v2 = _file(cli, "v2.yaml", _version("2026.2"))
    code, out, err = cli("load", v2)
    assert (code, err) == (0, "")
    assert out.startswith("2026.2: loaded, now active")
    assert cli.stream.records[-1].version == "2026.2"
    code, out, _ = cli("load", v2)
    assert code == 0 and out.startswith("2026.2: already loaded (same content), nothing published")
    assert len(cli.stream.records) == 2
    code, out, _ = cli("load", _file(cli, "v3.yaml", _version("2026.3", MZ_0005="高龄津贴发放")))
    assert code == 0 and out.startswith("2026.3: loaded")
    code, out, _ = cli("versions")
    assert out.splitlines() == [f"  2026.1  {len(ITEMS)} items", f"  2026.2  {len(ITEMS)} items",
                                f"* 2026.3  {len(ITEMS)} items  (active)"]
    code, out, _ = cli("versions", "--json")
    assert [(r["version"], r["active"]) for r in json.loads(out)] == [("2026.1", False), ("2026.2", False),
                                                                      ("2026.3", True)]
    # the active version answers list and show; an old one is still there with --version
    assert "高龄津贴发放" in cli("show", "MZ-0005")[1]
    assert "高龄津贴申请" in cli("show", "MZ-0005", "--version", "2026.2")[1]
    assert cli("list")[1].splitlines()[-1].endswith("catalogue version 2026.3")


def test_cli_load_refuses_clearly(cli):
    cli("load", _file(cli, "v2.yaml", _version("2026.2")))
    code, out, err = cli("load", _file(cli, "v2b.yaml", _version("2026.2", MZ_0005="高龄津贴发放")))
    assert code == 2 and out == ""
    assert err.startswith("tongban catalog load: catalogue version 2026.2 is already loaded with other content")
    assert err.strip().endswith("give the new catalogue a new version")
    bad = _file(cli, "bad.yaml", _version("2026.4").replace("department: canlian", "department: nobody"))
    code, out, err = cli("load", bad)
    assert code == 2 and "is not a valid catalogue" in err and "unknown department nobody" in err
    code, _, err = cli("load", str(cli.tmp / "nope.yaml"))
    assert code == 2 and "cannot read" in err
    assert [r.version for r in cli.stream.records] == ["2026.1", "2026.2"]  # nothing refused was published
