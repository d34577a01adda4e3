"""Steps shared by the browser tests: run in the browser worker (tests/browser/driver.py) as
`browser.run(steps.NAME, ...)`, each `step(page, **kwargs)` returning plain data. Keyboard only where a person
would use the keyboard: no clicks on form controls."""
from __future__ import annotations

from urllib.parse import urlsplit

from tests.browser.driver import shot

__all__ = ["shot", "sign_in", "tab_to", "focused", "page_state"]

MAX_TABS = 40


def focused(page) -> dict:
    """The focused element: its tag, id, name, text, and computed outline (style, width, colour)."""
    return page.evaluate("""() => {
        const el = document.activeElement;
        if (!el || el === document.body) return {tag: 'body'};
        const s = getComputedStyle(el);
        return {tag: el.tagName.toLowerCase(), id: el.id, name: el.getAttribute('name'),
                text: (el.innerText || el.value || '').trim().slice(0, 40),
                outline_style: s.outlineStyle, outline_width: parseFloat(s.outlineWidth) || 0,
                outline_color: s.outlineColor};
    }""")


def tab_to(page, selector: str, limit: int = MAX_TABS, backwards: bool = False) -> int:
    """Press Tab (Shift+Tab if `backwards`) until the element matching `selector` has the focus; how many
    presses it took (0: it had it already)."""
    target = page.locator(selector)
    for presses in range(limit + 1):
        if target.evaluate("el => el === document.activeElement"):
            return presses
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
    raise AssertionError(f"{selector} never got the focus in {limit} Tab presses")


def page_state(page) -> dict:
    """What a person sees of the page: path, title, first heading, the alert and status messages."""
    def text(selector):
        loc = page.locator(selector)
        return loc.first.inner_text().strip() if loc.count() else None

    return {"path": urlsplit(page.url).path, "title": page.title(), "h1": text("h1"),
            "alert": text("[role=alert]"), "status": text("[role=status]")}


def sign_in(page, portal: str, staff_number: str, password: str, screenshot: str | None = None) -> dict:
    """Sign in through the login page with the keyboard only (Tab to the staff number, type, Tab, type,
    Enter); the page's state after it (page_state) and the HTTP status of the page landed on."""
    page.goto(portal + "/login")
    tab_to(page, "#staff_number")
    page.keyboard.type(staff_number)
    page.keyboard.press("Tab")
    assert focused(page).get("id") == "password", "Tab from the staff number goes to the password"
    page.keyboard.type(password)
    if screenshot:
        shot(page, screenshot)
    with page.expect_navigation() as navigation:
        page.keyboard.press("Enter")
    response = navigation.value
    return {**page_state(page), "http_status": response.status if response else None}
