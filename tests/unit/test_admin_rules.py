"""City IT's page rules (services/portal/admin_rules.py): form problems, states, health, reference lines."""
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from services.portal import admin_rules as rules
from services.portal.directory_rules import DirectoryError, check_new_user, check_password


@pytest.mark.parametrize("call, field", [
    (lambda: check_new_user("a b", "张敏", "clerk", "city"), "staff_number"),
    (lambda: check_new_user("c1", "", "clerk", "city"), "name"),
    (lambda: check_new_user("c1", "张敏", "service", "city"), "role"),
    (lambda: check_new_user("c1", "张敏", "clerk", "town:1"), "scope"),
    (lambda: check_new_user("c1", "张敏", "agent", "city"), "scope"),
    (lambda: check_password("short"), "password"),
])
def test_every_directory_refusal_lands_next_to_its_field_in_chinese(call, field):
    with pytest.raises(DirectoryError) as info:
        call()
    found, message = rules.field_problem(str(info.value))
    assert found == field and message and message.isascii() is False


@pytest.mark.parametrize("role, scope", [
    ("agent", "city"), ("agent", "town:320583101"), ("clerk", "city"), ("clerk", "department:minzheng"),
    ("town_agent", "city"), ("approver", "town:320583101"), ("department_head", "city"),
    ("supervisor", "department:minzheng"), ("city_admin", "town:320583101")])
def test_no_one_is_added_with_a_scope_their_role_does_not_work_in(role, scope):
    """Such a person would see more than the role is for (a village agent with the city's scope: every
    village's records); the page says which scopes the role takes."""
    with pytest.raises(DirectoryError) as info:
        check_new_user("c1", "张敏", role, scope)
    field, message = rules.field_problem(str(info.value))
    assert field == "scope" and message.startswith("此岗位的范围须为"), message


@pytest.mark.parametrize("role, scope", [
    ("clerk", "town:320583101"), ("approver", "department:minzheng@320583101"), ("approver", "department:minzheng"),
    ("department_head", "department:renshe"), ("agent", "village:320583101001"), ("town_agent", "town:320583101"),
    ("supervisor", "town:320583101"), ("supervisor", "city"), ("city_admin", "city")])
def test_each_role_is_added_in_the_scopes_it_works_in(role, scope):
    check_new_user("c1", "张敏", role, scope)


def test_a_taken_staff_number_and_an_unknown_message():
    assert rules.field_problem("staff number c1 is taken") == ("staff_number", "该工号已被使用。")
    assert rules.field_problem("something else") == ("", "something else")


def test_the_form_is_stripped_but_the_password_kept_as_typed():
    values = rules.new_user_form({"staff_number": " c1 ", "name": "张敏 ", "password": " pass word "})
    assert values == {"staff_number": "c1", "name": "张敏", "role": "", "scope": "", "password": " pass word "}
    assert "service" not in rules.PERSON_ROLES and "clerk" in rules.PERSON_ROLES


def test_user_states():
    assert rules.user_state({"disabled": True, "locked_until": datetime.now(UTC)}) == ("disabled", "已停用")
    assert rules.user_state({"disabled": False, "locked_until": datetime.now(UTC)}) == ("locked", "已锁定")
    assert rules.user_state({"disabled": False, "locked_until": None}) == ("active", "正常")


def test_health_lines_and_their_order():
    ok = rules.instance_health("intake-1", "http://a", 200, {"status": "ok", "checks": {"db": "ok", "bus": "ok"}})
    bad = rules.instance_health("agent", "http://b", 503, {"checks": {"db": "ok", "bus": "error: refused"}})
    down = rules.instance_health("notify", "http://c", None, "ConnectionError")
    odd = rules.instance_health("zz", "http://d", 502, None)
    assert (ok.state, ok.label) == ("ok", "正常")
    assert (bad.state, bad.detail) == ("degraded", "bus")
    assert (down.state, down.label, down.detail) == ("down", "无响应", "ConnectionError")
    assert (odd.state, odd.detail) == ("degraded", "HTTP 502")
    assert [h.instance for h in rules.health_order([ok, odd, bad, down])] == ["notify", "agent", "zz", "intake-1"]


def test_reference_lines_newest_first_with_the_active_one_marked():
    first = SimpleNamespace(version="2026.1", loaded_at=datetime(2026, 1, 2, tzinfo=UTC), loaded_by="it@host")
    lines = rules.catalogue_lines(["2026.1", "2026.2"], "2026.2", [first])
    assert [(line.name, line.active, line.loaded_by) for line in lines] == [("2026.2", True, ""),
                                                                           ("2026.1", False, "it@host")]
    years = rules.calendar_lines({2025: None, 2026: None}, {}, 2026)
    assert [(y.name, y.active) for y in years] == [("2026", True), ("2025", False)]


