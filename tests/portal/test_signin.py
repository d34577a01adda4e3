"""The portal's staff sign-in over HTTP, and the token revocations it publishes reaching every service."""
import requests

from services.portal import directory
from tests.portal.support import PASSWORD, add_user
from tests.support import TOWN_A, wait_for


def test_sign_in_session_cookie_csrf_and_revocation(city):
    city.start("portal", f"intake-{TOWN_A}")
    add_user(city)
    portal = city.url("portal")
    browser = requests.Session()
    r = browser.get(portal + "/", allow_redirects=False)
    assert r.status_code == 303 and r.headers["Location"].startswith("/login")
    r = browser.post(portal + "/login", data={"staff_number": "clerk-9", "password": "wrong password"})
    assert r.status_code == 401 and "工号或密码不正确" in r.text
    r = browser.post(portal + "/login", data={"staff_number": "clerk-9", "password": PASSWORD},
                     allow_redirects=False)
    assert r.status_code == 303 and r.headers["Location"] == "/clerk"
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    # behind the Ingress's TLS (X-Forwarded-Proto: https) the cookie is Secure too
    tls = requests.post(portal + "/login", data={"staff_number": "clerk-9", "password": PASSWORD},
                        headers={"X-Forwarded-Proto": "https"}, allow_redirects=False)
    assert tls.status_code == 303 and "Secure" in tls.headers["Set-Cookie"]
    # a form without the CSRF token is refused, with it accepted
    assert browser.post(portal + "/logout", data={}, allow_redirects=False).status_code == 403
    page = browser.get(portal + "/login")  # any page of the session carries the token
    assert page.status_code == 200


def test_a_disabled_user_is_refused_by_every_service_within_seconds(city):
    city.start("portal", f"intake-{TOWN_A}")
    add_user(city)
    token = city.token("clerk", f"town:{TOWN_A}", "clerk-9")
    intake = f"intake-{TOWN_A}"
    assert city.call("GET", intake, "/cases", token).status_code == 200
    with city.cluster.platform("portal").store.transaction() as tx:
        directory.set_disabled(tx, "clerk-9", True, "test")
    wait_for(lambda: city.call("GET", intake, "/cases", token).status_code == 401, timeout=10,
             what="the disabled user's token refused")
    assert city.call("GET", intake, "/cases", token).json()["message"] == "token revoked"
    # someone else is unaffected
    assert city.call("GET", intake, "/cases", city.token("clerk", f"town:{TOWN_A}", "clerk-7")).status_code == 200
