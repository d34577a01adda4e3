"""What the portal's tests do as a browser would, with requests: a person in the directory, signing in, the
hidden fields of a page's forms."""
from __future__ import annotations

import re

import requests

from services.portal import directory
from tests.support import TOWN_A

PASSWORD = "correct horse battery"  # every test user's (the directory wants 10 characters at least)


def add_user(city, number="clerk-9", name="张敏", role="clerk", scope=f"town:{TOWN_A}", password: str = PASSWORD):
    """A person in the portal's directory, as city IT adds one (the portal must be started)."""
    with city.cluster.platform("portal").store.transaction() as tx:
        directory.add_user(tx, number, name, role, scope, password, "test")


def hidden(html: str, name: str) -> str:
    """The value of a form field `name` on the page (a hidden token, a key)."""
    return re.search(rf'name="{name}" value="([^"]*)"', html).group(1)


def csrf_of(html: str) -> str:
    return hidden(html, "csrf_token")


def sign_in(portal: str, number: str, password: str = PASSWORD, lands: str | None = None) -> requests.Session:
    """A browser session signed in at the portal's /login; `lands`: the page it must be sent to."""
    browser = requests.Session()
    r = browser.post(portal + "/login", data={"staff_number": number, "password": password}, allow_redirects=False)
    assert r.status_code == 303 and (lands is None or r.headers["Location"] == lands), r.text
    return browser
