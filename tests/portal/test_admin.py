"""City IT's pages over HTTP: the instances' health, adding a clerk through the form, disabling them (their
sign-in fails, their session ends), a password reset shown once, the reference versions; roles and CSRF."""
import re

import requests

from services.portal import directory
from tests.portal.support import PASSWORD, add_user, csrf_of, sign_in
from tests.support import TOWN_A, wait_for


def test_city_it_adds_a_clerk_disables_and_enables_them_and_resets_a_password(city):
    city.start("portal", f"intake-{TOWN_A}")
    add_user(city, "it-1", "王工", "city_admin", "city")
    portal = city.url("portal")
    admin = sign_in(portal, "it-1")

    # the overview: the intake that runs answers its /health, the others the portal knows do not
    def overview():
        page = admin.get(portal + "/admin")
        assert page.status_code == 200
        return page.text if re.search(rf"intake-{TOWN_A}</td>.*?正常", page.text, re.S) else None
    text = wait_for(overview, timeout=15, what="the running intake healthy on the overview")
    assert re.search(r"approval-minzheng</td>.*?无响应", text, re.S)
    assert "人员 1 名" in text

    # a form without the CSRF token is refused and adds nobody
    r = admin.post(portal + "/admin/users", data={"staff_number": "clerk-1", "name": "张敏", "role": "clerk",
                                                  "scope": f"town:{TOWN_A}", "password": PASSWORD})
    assert r.status_code == 403
    with city.cluster.platform("portal").store.transaction() as tx:
        assert directory.get_user(tx, "clerk-1") is None

    # bad input: the field's problem next to it, the other values kept, nothing added
    page = admin.get(portal + "/admin/users")
    csrf = csrf_of(page.text)
    r = admin.post(portal + "/admin/users", data={"csrf_token": csrf, "staff_number": "clerk-1", "name": "张敏",
                                                  "role": "clerk", "scope": "town:123", "password": PASSWORD})
    assert r.status_code == 400
    assert 'id="new-scope-error"' in r.text and "范围格式不正确" in r.text and 'value="张敏"' in r.text
    assert 'role="alert"' in r.text

    # added through the form; the clerk signs in
    r = admin.post(portal + "/admin/users", data={"csrf_token": csrf, "staff_number": "clerk-1", "name": "张敏",
                                                  "role": "clerk", "scope": f"town:{TOWN_A}", "password": PASSWORD})
    assert r.status_code == 200 and "已添加 张敏（clerk-1）" in r.text
    assert "只显示这一次" not in r.text  # a password typed by city IT is not echoed back
    clerk = sign_in(portal, "clerk-1")
    assert clerk.get(portal + "/", allow_redirects=False).headers["Location"] == "/clerk"  # their workbench
    # the same staff number again is refused, next to the field
    r = admin.post(portal + "/admin/users", data={"csrf_token": csrf, "staff_number": "clerk-1", "name": "李四",
                                                  "role": "clerk", "scope": f"town:{TOWN_A}", "password": ""})
    assert r.status_code == 400 and "该工号已被使用" in r.text

    # a clerk may not use city IT's pages, nor post to them
    assert clerk.get(portal + "/admin/users").status_code == 403
    r = clerk.post(portal + "/admin/users/state", data={"csrf_token": csrf_of(clerk.get(portal + "/admin").text),
                                                        "staff_number": "it-1", "action": "disable"})
    assert r.status_code == 403

    # disabled through the form: their session ends at once, their sign-in fails
    r = admin.post(portal + "/admin/users/state", data={"csrf_token": csrf, "staff_number": "clerk-1",
                                                        "action": "disable"})
    assert r.status_code == 200 and "已停用" in r.text
    r = clerk.get(portal + "/", allow_redirects=False)
    assert r.status_code == 303 and r.headers["Location"].startswith("/login")
    r = requests.post(portal + "/login", data={"staff_number": "clerk-1", "password": PASSWORD},
                      allow_redirects=False)
    assert r.status_code == 401
    with city.cluster.platform("portal").store.transaction() as tx:
        assert directory.get_user(tx, "clerk-1").disabled
        events = [(a["staff_number"], a["event"], a["actor"]) for a in directory.audit_log(tx, 20)]
    assert ("clerk-1", "user.disabled", "it-1") in events and ("clerk-1", "user.added", "it-1") in events
    assert "user.disabled" in admin.get(portal + "/admin/users").text  # the audit list on the page

    # city IT cannot disable themselves (no button, and the form is refused)
    r = admin.post(portal + "/admin/users/state", data={"csrf_token": csrf, "staff_number": "it-1",
                                                        "action": "disable"})
    assert r.status_code == 400 and "不能停用自己的账号" in r.text

    # enabled again, then a reset: a new password shown once, the old one no longer works
    r = admin.post(portal + "/admin/users/state", data={"csrf_token": csrf, "staff_number": "clerk-1",
                                                        "action": "enable"})
    assert r.status_code == 200 and "已启用" in r.text
    r = admin.post(portal + "/admin/users/reset-password", data={"csrf_token": csrf, "staff_number": "clerk-1"})
    assert r.status_code == 200 and "只显示这一次" in r.text
    new_password = re.search(r'<code class="admin-secret">([^<]+)</code>', r.text).group(1)
    assert requests.post(portal + "/login", data={"staff_number": "clerk-1", "password": PASSWORD},
                         allow_redirects=False).status_code == 401
    sign_in(portal, "clerk-1", new_password)
    assert new_password not in admin.get(portal + "/admin/users").text  # shown once only
    r = admin.post(portal + "/admin/users/reset-password", data={"csrf_token": csrf, "staff_number": "nobody"})
    assert r.status_code == 404 and "没有工号 nobody" in r.text


def test_the_reference_page_shows_the_portals_replica_and_a_generated_password_once(city):
    city.start("portal")
    add_user(city, "it-1", "王工", "city_admin", "city")
    portal = city.url("portal")
    admin = sign_in(portal, "it-1")
    page = admin.get(portal + "/admin/reference")
    assert page.status_code == 200
    active = city.cluster.platform("portal").reference.catalogs.active_version()
    assert active and f"当前启用版本：<strong>{active}</strong>" in page.text
    assert "tongban catalog load FILE" in page.text and 'enctype="multipart/form-data"' in page.text
    # an empty password field: one is made and shown once
    csrf = csrf_of(admin.get(portal + "/admin/users").text)
    r = admin.post(portal + "/admin/users", data={"csrf_token": csrf, "staff_number": "sup-1", "name": "赵六",
                                                  "role": "supervisor", "scope": "city", "password": ""})
    assert r.status_code == 200 and "只显示这一次" in r.text
    generated = re.search(r'<code class="admin-secret">([^<]+)</code>', r.text).group(1)
    sign_in(portal, "sup-1", generated)
    # a non-admin gets 403 on every admin page
    add_user(city)
    clerk = sign_in(portal, "clerk-9")
    for path in ("/admin", "/admin/users", "/admin/reference"):
        assert clerk.get(portal + path).status_code == 403


def test_city_it_loads_a_catalogue_from_the_page_and_every_window_takes_it(city, tmp_path):
    from tests.service.test_reference_data import _catalogue

    city.start("portal", f"intake-{TOWN_A}")
    add_user(city, "it-2", "李工", "city_admin", "city")
    portal = city.url("portal")
    admin = sign_in(portal, "it-2")

    def load(kind: str, name: str, content: bytes, with_csrf: bool = True):
        data = {"kind": kind, **({"csrf_token": csrf_of(admin.get(portal + "/admin/reference").text)}
                                 if with_csrf else {})}
        return admin.post(portal + "/admin/reference", data=data, files={"file": (name, content)})

    new = _catalogue(tmp_path, "2026.11").read_bytes()
    assert load("catalog", "c.yaml", new, with_csrf=False).status_code == 403
    r = load("catalog", "c.yaml", new)
    assert r.status_code == 200 and "已发布事项目录 2026.11 版" in r.text, r.text
    clerk = city.token("clerk", f"town:{TOWN_A}")
    wait_for(lambda: city.call("GET", f"intake-{TOWN_A}", "/catalog", clerk).json()["version"] == "2026.11",
             what="the window's catalogue in force")
    wait_for(lambda: "当前启用版本：<strong>2026.11</strong>" in admin.get(portal + "/admin/reference").text,
             what="the page shows it active")
    # the same file again: nothing new; the same version with other content: refused; a broken file: refused
    assert "已加载过（内容相同），无变化" in load("catalog", "c.yaml", new).text
    other = _catalogue(tmp_path, "2026.11", town_name="别的镇").read_bytes()
    refused = load("catalog", "c.yaml", other)
    assert refused.status_code == 409 and "2026.11" in refused.text
    broken = load("catalog", "c.yaml", b"version: [not, a, catalogue")
    assert broken.status_code == 400 and "未通过校验" in broken.text
    assert load("calendar", "h.yaml", "年份: 不是日历\n".encode()).status_code == 400
    with city.cluster.platform("portal").store.transaction() as tx:
        assert [a["event"] for a in directory.audit_log(tx) if a["event"] == "reference.loaded"] == ["reference.loaded"]
