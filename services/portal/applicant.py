"""Portal pages: the applicant's own lookup, rating and complaint (no sign-in).

    GET  /track[?case=<n>]     the lookup form (the notice's QR code opens it with the case number filled in)
    POST /track                case number + 查询码 -> the status, the promised date, the next step
    POST /track/rate           好差评 after completion (evaluation's POST /ratings, stage completion)
    POST /track/complain       有诉即办 (evaluation's POST /complaints, channel online)

The portal asks the other services as itself (role service, scope city, a short token): the accepting town's
intake answers the lookup (POST /public/lookup), evaluation records ratings and complaints.

Protection of these public forms (the plumbing's CSRF check needs a session, which applicants do not have):
- every form carries a token bound to a random cookie of this browser (HMAC, services.portal.applicant_rules
  .Signer): a form posted from another site lacks it;
- rating and complaining need the proof of a successful lookup (a token over the case number, 30 minutes),
  so nobody rates or complains about a case without its query code;
- wrong lookups are limited per client address and per case number (5 in 10 minutes, then 429), in this
  process's memory: right for one portal instance (several would share a store for it).
"""
from __future__ import annotations

import hashlib
import secrets
from types import SimpleNamespace

from services.portal import applicant_rules as rules
from services.portal.pages import Page, View, page
from shared.logging import get_logger

log = get_logger(__name__)

PORTAL = SimpleNamespace(staff_number="portal", role="service", scope="city", name=None)
FORM_COOKIE = "tongban_track"
TEMPLATE_FORM = "applicant/track.html.j2"
TEMPLATE_STATUS = "applicant/status.html.j2"
TEMPLATE_DONE = "applicant/done.html.j2"


class ApplicantPages:
    """Mixed into the portal service (services/portal/service.py); its @page / @api methods are entrypoints."""

    # --- per-service state: the limiter and the signer (one per built service class, not per worker) ------

    def _track_state(self) -> SimpleNamespace:
        cls = type(self)
        state = cls.__dict__.get("_track_state_")
        if state is None:
            key = self.upstreams.key
            state = SimpleNamespace(limiter=rules.AttemptLimiter(),
                                    signer=rules.Signer(rules.secret_from(key.to_pem().encode() if key else None)))
            cls._track_state_ = state
        return state

    def _form(self, view: View, template: str, context: dict, status: int = 200) -> Page:
        """A page of this area: its forms carry the token of this browser's cookie (set when missing)."""
        nonce = view.request.cookies.get(FORM_COOKIE) or ""
        headers = {}
        if len(nonce) < 16:
            nonce = secrets.token_urlsafe(18)
            secure = "; Secure" if view.secure else ""
            headers["Set-Cookie"] = f"{FORM_COOKIE}={nonce}; Path=/track; HttpOnly; SameSite=Lax{secure}"
        token = self._track_state().signer.sign("form", nonce, rules.FORM_SECONDS)
        return Page(template, {"title": "办件查询", "form_token": token, "levels": rules.LEVELS, **context},
                    status=status, headers=headers)

    def _form_ok(self, view: View) -> bool:
        nonce = view.request.cookies.get(FORM_COOKIE) or ""
        return bool(nonce) and self._track_state().signer.check("form", nonce, view.form.get("form_token"))

    def _expired(self, view: View) -> Page:
        return self._form(view, TEMPLATE_FORM, {"case_number": "", "via": "",
                                                "problem": "页面已过期，请重新输入受理号和查询码查询。"}, 403)

    # --- the lookup -------------------------------------------------------------------------------------

    @page("GET", "/track", public=True)
    def track_form(self, view: View):
        """The lookup form; from the notice's QR code the case number is already there."""
        case = rules.clean_case_number(view.query.get("case"))
        return self._form(view, TEMPLATE_FORM, {"case_number": case, "via": "qr" if case else ""})

    @page("POST", "/track", public=True)
    def track(self, view: View):
        """Case number + query code: the status page, or one "not found" for any wrong input."""
        if not self._form_ok(view):
            return self._expired(view)
        state = self._track_state()
        case = rules.clean_case_number(view.form.get("case_number"))
        via = "qr" if view.form.get("via") == "qr" else ""
        client = f"addr:{view.client}"
        keys = (client, f"case:{case}")
        if state.limiter.blocked(*keys):
            log.warning("track.rate_limited")
            return self._form(view, TEMPLATE_FORM, {"case_number": case, "via": via, "problem": rules.TOO_MANY},
                              429)
        progress = self._lookup(case, (view.form.get("query_code") or "").strip()[:20])
        if progress is None:
            state.limiter.fail(*keys)
            return self._form(view, TEMPLATE_FORM, {"case_number": case, "via": via, "problem": rules.NOT_FOUND},
                              404)
        proof = state.signer.sign("proof", progress["case_number"], rules.PROOF_SECONDS)
        return self._form(view, TEMPLATE_STATUS, {"progress": progress, "case_number": progress["case_number"],
                                                  "proof": proof, "via": via, "errors": {}, "values": {},
                                                  "rateable": progress["status"] == "completed"})

    def _lookup(self, case: str, code: str) -> dict | None:
        town = rules.town_of(case)
        window = f"intake-{town}"
        if town is None or not code or window not in self.upstreams.urls:
            return None
        answer = self.upstreams.call(PORTAL, "POST", window, "/public/lookup",
                                     body={"case_number": case, "query_code": code})
        if answer.ok:
            return answer.body
        if answer.status not in (400, 404):  # the window is not well: say so rather than "not found"
            log.warning("track.lookup_failed", status=answer.status)
            raise_down(window, answer.status)
        return None

    # --- rating and complaining: the proof of a lookup, then evaluation -----------------------------------

    def _proven(self, view: View) -> str | None:
        case = rules.clean_case_number(view.form.get("case_number"))
        if rules.town_of(case) and self._track_state().signer.check("proof", case, view.form.get("proof")):
            return case
        return None

    @page("POST", "/track/rate", public=True)
    def track_rate(self, view: View):
        """好差评 of a completed case (five levels and a comment): once, as evaluation's rules say."""
        case = self._proven(view) if self._form_ok(view) else None
        if case is None:
            return self._expired(view)
        via = "qr" if view.form.get("via") == "qr" else ""
        body, problems = rules.rating_from_form(view.form, case, rules.rating_channel(via))
        if problems:
            return self._again(view, case, via, problems, 400)
        # the same form sent twice is one rating (evaluation's Idempotency-Key)
        key = hashlib.sha256(f"track:{case}:{view.form.get('proof')}:{body['level']}:{body['comment']}"
                             .encode()).hexdigest()[:40]
        answer = self.upstreams.call(PORTAL, "POST", "evaluation", "/ratings", body=body,
                                     headers={"Idempotency-Key": key})
        if answer.ok:
            return self._form(view, TEMPLATE_DONE, {"case_number": case,
                                                    "flash": f"感谢您的评价（{rules.LEVELS[body['level']]}）。"})
        if answer.status == 409:
            message = "本次服务已评价过（办结后只能评价一次），感谢您的反馈。"
        elif answer.status == 404:
            message = "评价系统尚未收到该办件的信息，请稍后再试。"
        else:
            message = f"评价未能提交：{answer.message()}"
        return self._again(view, case, via, {"form": message}, answer.status if answer.status < 500 else 503)

    @page("POST", "/track/complain", public=True)
    def track_complain(self, view: View):
        """有诉即办: a complaint about the case, accepted at once, with a name and a mobile for the reply."""
        case = self._proven(view) if self._form_ok(view) else None
        if case is None:
            return self._expired(view)
        via = "qr" if view.form.get("via") == "qr" else ""
        body, problems = rules.complaint_from_form(view.form, case)
        if problems:
            return self._again(view, case, via, problems, 400)
        answer = self.upstreams.call(PORTAL, "POST", "evaluation", "/complaints", body=body)
        if answer.ok:
            number = answer.body.get("number") if isinstance(answer.body, dict) else None
            return self._form(view, TEMPLATE_DONE, {
                "case_number": case,
                "flash": "您的投诉已受理" + (f"（编号{number}）" if number else "") + "，我们将尽快处理并回复您。"})
        return self._again(view, case, via, {"form": f"投诉未能提交：{answer.message()}"},
                           answer.status if answer.status < 500 else 503)

    def _again(self, view: View, case: str, via: str, errors: dict, status: int) -> Page:
        """The rating and complaint forms again, with what was wrong next to each field."""
        values = {k: (view.form.get(k) or "")[:4000] for k in ("level", "comment", "text", "name", "phone")}
        return self._form(view, TEMPLATE_STATUS, {
            "progress": None, "case_number": case, "proof": view.form.get("proof"), "via": via, "errors": errors,
            "rateable": view.form.get("rateable") == "1",
            "values": values, "problem": errors.get("form") or "请按提示修改后重新提交。"}, status)


def raise_down(window: str, status: int):
    from services.portal.upstream import UpstreamDown

    raise UpstreamDown(f"{window} answered {status}")
