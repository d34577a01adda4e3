"""Staff sign-in in real Chromium: keyboard only, lockout, CSRF, visible focus (steps run in the browser worker,
the checks of the portal's store here)."""
from __future__ import annotations

import pytest

from services.portal.directory_rules import MAX_FAILURES
from services.portal.pages import HOME
from tests.browser import steps
from tests.browser.support import PASSWORD, add_staff, audit_events
from tests.support import TOWN_A

pytestmark = pytest.mark.full  # a real Chromium: long; the portal's HTTP tests stay in CI

WRONG = "not the password"
LOCKED = "账号已锁定"


# --- steps (run in the browser worker) -------------------------------------------------------------

def sign_in_attempts(page, portal: str, staff_number: str, passwords: list[str]) -> list[dict]:
    """Sign in once per password, keyboard only; what each attempt showed. The last one is photographed."""
    seen = [steps.sign_in(page, portal, staff_number, p) for p in passwords]
    steps.shot(page, "lockout")
    return seen


def post_without_csrf(page, portal: str) -> dict:
    """Sign-out (a form POST in the header of every page) with its CSRF field removed, submitted with the
    keyboard: the page it gives, and where "/" leads afterwards."""
    page.goto(portal + "/login")  # a page with the header (signed in) that exists before the workbenches
    removed = page.evaluate("""() => {
        const field = document.querySelector('form[action="/logout"] input[name=csrf_token]');
        if (field) field.remove();
        return !!field;
    }""")
    assert removed, "the sign-out form carries a csrf_token field"
    steps.tab_to(page, 'form[action="/logout"] button')
    with page.expect_navigation() as navigation:
        page.keyboard.press("Enter")
    steps.shot(page, "csrf-403")
    state = {**steps.page_state(page), "http_status": navigation.value.status}
    page.goto(portal + "/")  # still signed in? (nothing was done)
    return {"refused": state, "after": steps.page_state(page)}


def focus_walk(page, portal: str, tabs: int = 6) -> dict:
    """The login page from its first tab stop (the skip link, reached backwards from the autofocused staff
    number) onwards: every element that gets the focus, with its computed outline; and any positive tabindex
    (which would break the reading order)."""
    page.goto(portal + "/login")
    steps.tab_to(page, "a.skip", limit=5, backwards=True)
    steps.shot(page, "focus-skip-link")
    skip_box = page.locator("a.skip").bounding_box()
    seen = [steps.focused(page)]
    for _ in range(tabs):
        page.keyboard.press("Tab")
        seen.append(steps.focused(page))
    positive = page.evaluate("() => [...document.querySelectorAll('[tabindex]')].filter(e => e.tabIndex > 0).length")
    return {"stops": seen, "skip_box": skip_box, "positive_tabindex": positive}


def login_page_fits(page, portal: str, name: str = "login") -> dict:
    """The login page's width and its content's (no horizontal scrolling), photographed as `name`."""
    page.goto(portal + "/login")
    steps.shot(page, name)
    return page.evaluate("() => ({scroll: document.documentElement.scrollWidth, "
                         "width: document.documentElement.clientWidth})")


# --- tests ------------------------------------------------------------------------------------------

def test_keyboard_sign_in_lands_on_the_roles_page(city, browser):
    city.start("portal")
    add_staff(city, "clerk-9", "clerk", f"town:{TOWN_A}")
    portal = city.url("portal")
    fits = browser.run(login_page_fits, portal=portal)
    assert fits["scroll"] <= fits["width"], fits
    landed = browser.run(steps.sign_in, portal=portal, staff_number="clerk-9", password=PASSWORD,
                         screenshot="login-filled")
    assert landed["path"] == HOME["clerk"] == "/clerk", landed
    assert [e for e, _ in audit_events(city, "clerk-9")] == ["user.added", "signin.ok"]
    # the same on a tablet: a fresh page, signed out, the login page fits
    browser.use_tablet()
    fits = browser.run(login_page_fits, portal=portal, name="login-tablet")
    assert fits["scroll"] <= fits["width"] == 1024, fits
    landed = browser.run(steps.sign_in, portal=portal, staff_number="clerk-9", password=PASSWORD)
    assert landed["path"] == "/clerk", landed


def test_five_wrong_passwords_lock_the_account_even_for_the_right_one(city, browser):
    city.start("portal")
    add_staff(city, "clerk-5", "clerk", f"town:{TOWN_A}")
    tries = browser.run(sign_in_attempts, portal=city.url("portal"), staff_number="clerk-5",
                        passwords=[WRONG] * MAX_FAILURES + [PASSWORD])
    for n, seen in enumerate(tries, start=1):
        assert seen["path"] == "/login" and seen["http_status"] == 401, (n, seen)
        if n < MAX_FAILURES:
            assert seen["alert"] == "工号或密码不正确。", (n, seen)
        else:  # the fifth wrong password locks; the sixth try, with the right one, is refused all the same
            assert LOCKED in seen["alert"], (n, seen)
    events = audit_events(city, "clerk-5")
    assert events == ([("user.added", f"clerk town:{TOWN_A}")] + [("signin.failed", f"failures {n}") for n in
                                                                    range(1, MAX_FAILURES)]
                      + [("signin.locked", "failures 0")] * 2), events


def test_a_form_posted_without_its_csrf_token_is_refused(city, browser):
    city.start("portal")
    add_staff(city, "clerk-7", "clerk", f"town:{TOWN_A}")
    portal = city.url("portal")
    assert browser.run(steps.sign_in, portal=portal, staff_number="clerk-7", password=PASSWORD)["path"] == "/clerk"
    seen = browser.run(post_without_csrf, portal=portal)
    refused = seen["refused"]
    assert refused["http_status"] == 403 and refused["h1"] == "请求被拒绝" and refused["alert"], refused
    # nothing was done: still signed in, no sign-out in the audit log
    assert seen["after"]["path"] == "/clerk", seen
    assert "signout" not in [e for e, _ in audit_events(city, "clerk-7")]


def test_the_focus_is_always_visible(city, browser):
    city.start("portal")
    walk = browser.run(focus_walk, portal=city.url("portal"))
    stops = walk["stops"]
    assert {s.get("id") for s in stops} >= {"staff_number", "password"}, stops
    assert any(s["tag"] == "button" for s in stops), stops
    for stop in stops:
        if stop["tag"] == "body":  # past the last control the focus leaves the page
            continue
        assert stop["outline_style"] not in ("none", "") and stop["outline_width"] >= 2, stop
    assert walk["positive_tabindex"] == 0
    assert walk["stops"][0]["text"] == "跳到正文", "the first stop is the skip link"
    box = walk["skip_box"]
    assert box is not None and box["x"] >= 0 and box["y"] >= 0, "the skip link shows when it has the focus"
