"""Server-rendered pages: the session cookie, CSRF on every form, Jinja2 templates, role checks.

`page(method, path, roles)` decorates `fn(self, view: View)` returning a `Page` (template + context), a
werkzeug Response (a redirect, a PDF) or a tuple (status, Page). Every POST must carry the session's CSRF
token (form field `csrf_token` or header `X-CSRF-Token`, which htmx sends): without it, 403 and nothing done.
"""
from __future__ import annotations

import hmac
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from werkzeug.wrappers import Response

from services.portal import directory
from services.portal.upstream import UpstreamDown
from shared.logging import bind_context, get_logger
from shared.pii import mask_value
from shared.web import DATABASE_UNAVAILABLE, RETRY_AFTER_SECONDS, note_database_unavailable

log = get_logger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
COOKIE = "tongban_session"
ROLE_NAMES = {"clerk": "综合窗口", "approver": "审批人员", "department_head": "部门负责人", "agent": "村级代办员",
              "town_agent": "镇级代理员", "supervisor": "电子监察", "city_admin": "市信息中心", "service": "系统"}
# where each role starts
HOME = {"clerk": "/clerk", "approver": "/approver", "department_head": "/approver", "agent": "/agent",
        "town_agent": "/town-agent", "supervisor": "/supervisor", "city_admin": "/admin"}

env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]),
                  undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
env.filters["masked"] = mask_value
env.globals["ROLE_NAMES"] = ROLE_NAMES


@dataclass
class Page:
    template: str
    context: dict = field(default_factory=dict)
    status: int = 200
    headers: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ProxyHops:
    """How many reverse proxies stand in front of the portal (TONGBAN_PROXY_HOPS; k8s: 1, the Ingress
    controller, the only peer its NetworkPolicy lets in). Each appends the address it heard from to
    X-Forwarded-For, so the client is the entry that many places from the end; whatever stands further left
    the client wrote itself. With 0 (the default: the portal faces people directly) the headers are ignored:
    a rate limit per address must count the peer, not a name the peer chose."""

    hops: int = 0

    @classmethod
    def from_text(cls, text: str | None) -> ProxyHops:
        raw = (text or "0").strip()
        if not raw.isdigit() or int(raw) > 10:
            raise ValueError(f"TONGBAN_PROXY_HOPS must be a whole number 0-10, not {raw!r}")
        return cls(int(raw))

    def _forwarded(self, request, header: str) -> str | None:
        values = [v.strip() for v in request.headers.get(header, "").split(",") if v.strip()]
        return values[-self.hops] if self.hops and len(values) >= self.hops else None

    def client(self, request) -> str:
        """The client's address: the peer, or what the outermost of the trusted proxies heard."""
        return self._forwarded(request, "X-Forwarded-For") or request.remote_addr or ""

    def secure(self, request) -> bool:
        """Reached over TLS: directly, or as the outermost trusted proxy says it was."""
        return request.scheme == "https" or self._forwarded(request, "X-Forwarded-Proto") == "https"


@dataclass
class View:
    """What a page handler gets: the request, the signed-in user and session (None on public pages), the
    form (POST) and query arguments, path parameters, and the portal's helpers."""

    request: object
    user: object
    session: object
    form: dict
    query: dict
    params: dict
    service: object

    @property
    def client(self) -> str:
        """The client's address (for rate limits and the audit log), proxies believed only where trusted."""
        return self.service.proxies.client(self.request)

    @property
    def secure(self) -> bool:
        return self.service.proxies.secure(self.request)

    def call(self, method: str, instance: str, path: str, body=None, params=None):
        """An upstream API call as this user (services.portal.upstream.Answer)."""
        return self.service.upstreams.call(self.user, method, instance, path, body=body, params=params)


def render(template: str, status: int = 200, headers: dict | None = None, **context) -> Response:
    html = env.get_template(template).render(**context)
    response = Response(html, status=status, mimetype="text/html")
    response.headers["Content-Security-Policy"] = ("default-src 'self'; img-src 'self' data:; "
                                                   "style-src 'self'; script-src 'self'; frame-ancestors 'none'")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    for k, v in (headers or {}).items():
        response.headers[k] = v
    return response


def redirect(location: str, status: int = 303) -> Response:
    response = Response("", status=status)
    response.headers["Location"] = location
    return response


def set_session_cookie(response: Response, view: View, token: str) -> None:
    response.set_cookie(COOKIE, token, httponly=True, samesite="Lax", secure=view.secure, path="/",
                        max_age=directory.rules.SESSION_HOURS * 3600)


def clear_session_cookie(response: Response, view: View) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="Lax", secure=view.secure)


def csrf_ok(request, session) -> bool:
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
    return bool(sent) and hmac.compare_digest(sent.encode(), session.csrf_token.encode())


def base_context(view: View) -> dict:
    user = view.user
    return {"user": user, "csrf_token": view.session.csrf_token if view.session else "",
            "home": HOME.get(user.role, "/") if user else "/", "role_name": ROLE_NAMES.get(user.role) if user else None}


def page(method: str, path: str, roles: tuple[str, ...] | None = None, public: bool = False):
    """A page at `path` for the signed-in `roles` (any signed-in person when None; nobody needed when
    `public`). Not signed in: to /login. Wrong role: 403 page."""
    from shared.web import http

    def decorator(fn):
        route = f"{method} {path}"

        def entry(service, request, **params):
            status = 500
            started = time.perf_counter()
            try:
                with service.platform.store.transaction() as tx:
                    found = directory.find_session(tx, request.cookies.get(COOKIE))
                    if found is not None:
                        session, user = found
                        tx.session.expunge(session)
                        tx.session.expunge(user)
                    else:
                        session = user = None
                if user is None and not public:
                    status = 303
                    return redirect(f"/login?next={quote(request.full_path.rstrip('?'))}")
                if user is not None:
                    bind_context(user=user.staff_number, role=user.role)
                view = View(request, user, session, request.form.to_dict() if method == "POST" else {},
                            request.args.to_dict(), params, service)
                if method == "POST" and (session is None or not csrf_ok(request, session)) and not public:
                    status = 403
                    return render("error.html.j2", 403, **base_context(view), title="请求被拒绝",
                                  message="表单已过期或来源不明（缺少防伪令牌），请刷新页面后重试。")
                if roles and user is not None and user.role not in roles:
                    status = 403
                    return render("error.html.j2", 403, **base_context(view), title="无权访问",
                                  message="您的岗位不能使用此页面。")
                result = fn(service, view)
                if isinstance(result, tuple):
                    status, result = result
                    if isinstance(result, Page):
                        result.status = status
                if isinstance(result, Response):
                    status = result.status_code
                    return result
                status = result.status
                return render(result.template, result.status, result.headers, **base_context(view),
                              **result.context)
            except UpstreamDown as exc:
                status = 503
                return render("error.html.j2", 503, user=None, csrf_token="", home="/", role_name=None,
                              title="服务暂不可用", message=f"{exc}。请稍后再试。")
            except DATABASE_UNAVAILABLE as exc:  # the portal's own database (the directory): as shared.web answers
                status = 503
                note_database_unavailable(route, exc)
                return render("error.html.j2", 503, {"Retry-After": str(RETRY_AFTER_SECONDS)}, user=None,
                              csrf_token="", home="/", role_name=None, title="服务暂不可用",
                              message="系统数据库暂时不可用，请稍后再试。")
            except Exception:
                log.exception("portal.page_failed", route=route)
                return render("error.html.j2", 500, user=None, csrf_token="", home="/", role_name=None,
                              title="出错了", message="页面出错，已记录，请稍后再试。")
            finally:
                service.platform.metrics.observe_request(route, status, time.perf_counter() - started)

        entry.__name__ = fn.__name__
        entry.__doc__ = fn.__doc__
        entry.page_route = (method, path, roles, public)
        return http(method, path)(entry)

    return decorator
