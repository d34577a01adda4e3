"""Portal: the one front door for people (门户). Staff sign-in and the workbench pages, which call the
other services' APIs on the signed-in person's behalf. Entrypoints only."""
from __future__ import annotations

import json
import mimetypes
from pathlib import Path
from urllib.parse import urlsplit

from kombu import Connection
from werkzeug.wrappers import Response

from services.portal import directory
from services.portal.admin import AdminPages
from services.portal.agents import AgentPages
from services.portal.applicant import ApplicantPages
from services.portal.backoffice import BackOfficePages
from services.portal.clerk import ClerkPages
from services.portal.open311 import Open311Api
from services.portal.open311 import routing_error as open311_routing_error
from services.portal.pages import (
    COOKIE,
    HOME,
    Page,
    ProxyHops,
    View,
    clear_session_cookie,
    page,
    redirect,
    set_session_cookie,
)
from services.portal.supervisor_pages import SupervisorPages
from services.portal.upstream import Upstreams
from shared.config import Settings
from shared.platform import Platform
from shared.reference import bind_staff_records
from shared.web import PlatformEndpoints, http

VERSIONS = Path(__file__).parent / "migrations" / "versions"
# one mixin per workbench; their names must not clash (tests/unit/test_portal_mixins.py)
WORKBENCHES = (ClerkPages, BackOfficePages, AgentPages, SupervisorPages, AdminPages, ApplicantPages,
                        Open311Api)
STATIC = Path(__file__).parent / "static"
# what /static serves: our stylesheet, and htmx from the npm package (services/portal/static/package.json)
STATIC_FILES = {"portal.css": STATIC / "portal.css",
                "htmx.min.js": STATIC / "node_modules" / "htmx.org" / "dist" / "htmx.min.js"}


class PortalPlatform(Platform):
    """The platform, plus the binding that routes the portal's staff records into the reference stream
    (only the portal's broker user may make it)."""

    def setup(self):
        super().setup()
        with Connection(self.settings.service_amqp_url, connect_timeout=10) as conn:
            bind_staff_records(conn, self.settings.bus_prefix)


def _safe_next(target: str | None, fallback: str) -> str:
    """Only a path on this site (no open redirect to another host)."""
    if not target or not target.startswith("/") or target.startswith("//") or urlsplit(target).netloc:
        return fallback
    return target


def upstream_urls(settings: Settings) -> dict[str, str]:
    """{instance: base URL} of the services the portal calls: a dict (tongban up) or JSON text (the
    environment, TONGBAN_PORTAL_UPSTREAMS); a bad value stops the start with a clear message."""
    raw = settings.extra.get("upstreams") or {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise ValueError(f"TONGBAN_PORTAL_UPSTREAMS must be JSON {{instance: URL}}: {exc}") from None
    if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        raise ValueError("TONGBAN_PORTAL_UPSTREAMS must be a JSON object of instance names to URLs")
    return raw


def build_service(settings: Settings, clock=None):
    upstreams = Upstreams(upstream_urls(settings), settings.signing_key())

    proxies = ProxyHops.from_text(settings.extra.get("proxy_hops"))

    class PortalService(*WORKBENCHES, PlatformEndpoints):
        name = settings.instance
        platform = PortalPlatform(settings, VERSIONS)

        # --- signing in -----------------------------------------------------------------------------

        @page("GET", "/", public=True)
        def home(self, view: View):
            """Where each person starts: their workbench, or the sign-in page."""
            if view.user is None:
                return redirect("/login")
            return redirect(HOME.get(view.user.role, "/login"))

        @page("GET", "/login", public=True)
        def login_form(self, view: View):
            return Page("login.html.j2", {"next": _safe_next(view.query.get("next"), ""), "staff_number": ""})

        @page("POST", "/login", public=True)
        def login(self, view: View):
            """Sign in: a session cookie (HttpOnly, SameSite=Lax, Secure over TLS); lockout after
            MAX_FAILURES wrong passwords in a row; every attempt in the audit log."""
            number = (view.form.get("staff_number") or "").strip()
            with self.platform.store.transaction() as tx:
                user, reason = directory.sign_in(tx, number, view.form.get("password") or "",
                                                 view.client)
                if user is not None:
                    token, _ = directory.open_session(tx, user)
                    target = _safe_next(view.form.get("next"), HOME.get(user.role, "/"))
            if user is None:
                problem = ("连续输错密码次数过多，账号已锁定，请 15 分钟后再试或联系市信息中心。" if reason == "locked"
                           else "工号或密码不正确。")
                return 401, Page("login.html.j2", {"next": _safe_next(view.form.get("next"), ""),
                                                   "staff_number": number[:64], "problem": problem})
            response = redirect(target)
            set_session_cookie(response, view, token)
            return response

        @page("POST", "/logout")
        def logout(self, view: View):
            with self.platform.store.transaction() as tx:
                directory.close_session(tx, view.request.cookies.get(COOKIE))
                directory.audit(tx, view.user.staff_number, "signout", view.user.staff_number,
                                view.client)
            response = redirect("/login")
            clear_session_cookie(response, view)
            return response

        @http("GET", "/static/<string:name>")
        def static(self, request, name):
            path = STATIC_FILES.get(name)
            if path is None or not path.exists():
                return Response("not found", status=404, mimetype="text/plain")
            response = Response(path.read_bytes(), mimetype=mimetypes.guess_type(name)[0] or "text/plain")
            response.headers["Cache-Control"] = "public, max-age=3600"
            return response

        static.page_route = ("GET", "/static/<string:name>", None, True)  # a file, not an API operation

        @classmethod
        def routing_error(cls, path, exc):
            """An address no route takes: Open311's clients get its error format; a person werkzeug's page."""
            return open311_routing_error(path, exc)

    PortalService.upstreams = upstreams
    PortalService.proxies = proxies
    return PortalService

