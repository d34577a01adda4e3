"""Every workbench page in real Chromium, as each role reaches it from its navigation: it renders (a heading, no
error), fits the screen without sideways scrolling (1366x768; a village agent's on a 1024x768 tablet), labels
every form field, and is photographed (test-results/screenshots/test_every_roles_pages-<page>.png)."""
from __future__ import annotations

import pytest

from tests.browser import steps
from tests.browser.support import PASSWORD, add_staff
from tests.support import TOWN_A

pytestmark = pytest.mark.full  # a real Chromium: long; the portal's HTTP tests stay in CI

VILLAGE = TOWN_A + "001"
PAGES = {  # role: (staff number, scope, pages)
    "clerk": ("clerk-41", f"town:{TOWN_A}", ["/clerk", "/clerk/today", "/clerk/new/MZ-0001"]),
    "approver": ("renshe-41", f"department:renshe@{TOWN_A}", ["/approver", "/approver/posts"]),
    "town_agent": ("town-agent-41", f"town:{TOWN_A}", ["/town-agent"]),
    "supervisor": ("sup-41", "city", ["/supervisor", "/supervisor/ratings", "/supervisor/complaints",
                                      "/supervisor/figures"]),
    "city_admin": ("it-41", "city", ["/admin", "/admin/users", "/admin/reference"]),
    "agent": ("agent-41", f"village:{VILLAGE}", ["/agent", "/agent/replies", "/agent/services"]),
}


def visit(page, portal: str, paths: list[str]) -> list[dict]:
    """Each page: its state, its width against the screen's, form fields without a label."""
    seen = []
    for path in paths:
        response = page.goto(portal + path)
        steps.shot(page, path.strip("/").replace("/", "-"))
        fit = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        unlabelled = page.evaluate("""() => [...document.querySelectorAll('input, select, textarea')]
            .filter(e => e.type !== 'hidden' && !e.labels?.length && !e.getAttribute('aria-label')
                         && !e.getAttribute('aria-labelledby'))
            .map(e => e.name || e.id)""")
        seen.append({**steps.page_state(page), "path": path, "http_status": response.status, "fit": fit,
                     "unlabelled": unlabelled})
    return seen


def test_every_roles_pages(city, browser):
    city.start("portal", f"intake-{TOWN_A}", "approval-renshe", "agent", "evaluation")
    portal = city.url("portal")
    problems = []
    for role, (number, scope, paths) in PAGES.items():
        add_staff(city, number, role, scope, name="测试员")
        if role == "agent":
            browser.use_tablet()
        else:
            browser.fresh()
        landed = browser.run(steps.sign_in, portal=portal, staff_number=number, password=PASSWORD)
        if landed["path"] != paths[0]:
            problems.append(f"{role} lands on {landed['path']}, not {paths[0]}")
        for page in browser.run(visit, portal=portal, paths=paths):
            where = f"{role} {page['path']}"
            if page["http_status"] != 200 or not page["h1"] or page["alert"]:
                problems.append(f"{where}: {page['http_status']} {page['h1']!r} alert={page['alert']!r}")
            if page["fit"][0] > page["fit"][1]:
                problems.append(f"{where}: {page['fit'][0]}px wide on a {page['fit'][1]}px screen")
            if page["unlabelled"]:
                problems.append(f"{where}: fields without a label {page['unlabelled']}")
    assert not problems, "\n".join(problems)
