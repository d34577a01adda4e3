"""Portal pages: electronic supervision (电子监察) workbench. The board with its warnings (督办) and forecast,
好差评 ratings with their rectifications (整改) and appeals (申诉复核), complaints (有诉即办), and the monthly
figures (月度统计) with their CSV and XLSX downloads. Everything is read from and done through evaluation's
API as the signed-in supervisor, whose scope (the city or a town) evaluation checks itself."""
from __future__ import annotations

from werkzeug.wrappers import Response

from services.portal import supervisor_rules as rules
from services.portal.pages import Page, View, page, redirect
from shared.clock import Clock

EVALUATION = "evaluation"
SUPERVISOR = ("supervisor",)
_clock = Clock()


class _Reads:
    """Several GETs for one page: each answer's body, or None with the service's message kept as a problem
    (a page shows what it could read, and says what it could not)."""

    def __init__(self, view: View):
        self.view = view
        self.problems: list[str] = []

    def get(self, path: str, params: dict | None = None):
        answer = self.view.call("GET", EVALUATION, path, params=params)
        if answer.ok and isinstance(answer.body, dict):
            return answer.body
        self.problems.append(f"读取 {path} 失败：{answer.message()}")
        return None

    @property
    def problem(self) -> str | None:
        return "；".join(self.problems) or None


def _flash(view: View) -> str | None:
    return rules.DONE.get(view.query.get("done", ""))


def _failed(answer, form_id: str, values: dict) -> dict:
    """What a refused form shows: the service's message, its field problems next to the inputs, what was typed."""
    details = answer.body.get("details") if isinstance(answer.body, dict) else None
    return {"problem": answer.message() or f"操作未成功（HTTP {answer.status}）",
            "failed": {"form": form_id, "errors": rules.field_errors(details), "values": values}}


def _status_of(answer) -> int:
    # a refusal keeps its 4xx; an upstream 5xx is the service's trouble, shown as a bad gateway
    return answer.status if 400 <= answer.status < 500 else 502


class SupervisorPages:
    """Mixed into the portal service (services/portal/service.py); its @page / @api methods are entrypoints."""

    # --- the board (督办看板) -----------------------------------------------------------------------

    @page("GET", "/supervisor", roles=SUPERVISOR)
    def supervisor_board(self, view: View):
        """Open cases by office with their yellow/red warnings, the warnings (督办) and the breach forecast."""
        params, filter_errors = rules.board_filter(view.query)
        reads = _Reads(view)
        board = reads.get("/board", params) or {}
        warnings_params = {**params, **({} if view.query.get("warnings") == "all" else {"open": "1"})}
        warnings = (reads.get("/supervision/warnings", warnings_params) or {}).get("warnings", [])
        forecast = reads.get("/forecast", params) or {}
        cases = board.get("cases", [])
        return Page("supervisor/board.html.j2", {
            "title": "督办看板", "board": board, "cases": cases,
            "offices": board.get("offices", []),  # counted by evaluation over every open case, not the page
            "counts": board.get("counts", {}), "warnings": warnings,
            "all_warnings": view.query.get("warnings") == "all",
            "forecast": forecast, "filter": {"town": view.query.get("town", ""),
                                             "department": view.query.get("department", "")},
            "filter_errors": filter_errors, "problem": reads.problem, "colour_text": rules.COLOUR_TEXT,
            "city": rules.scope_town(view.user.scope) is None})

    # --- 好差评, rectifications, appeals --------------------------------------------------------------

    def _ratings_page(self, view: View, extra: dict | None = None):
        reads = _Reads(view)
        ratings = (reads.get("/ratings") or {}).get("ratings", [])
        rects = (reads.get("/rectifications", {"state": "all"}) or {}).get("rectifications", [])
        appeals = (reads.get("/appeals", {"status": "all"}) or {}).get("appeals", [])
        bad, others = rules.split_bad(ratings)
        context = {"title": "好差评", "bad": bad, "others": others, "rects": rules.by_rating(rects),
                   "appeals": rules.pending_first(appeals), "steps": rules.RECT_STEPS,
                   "names": {"channel": rules.CHANNEL_NAMES, "stage": rules.STAGE_NAMES,
                             "rect": rules.RECT_STATE_NAMES, "overdue": rules.RECT_OVERDUE_NAMES,
                             "closed": rules.CLOSED_REASON_NAMES, "appeal": rules.APPEAL_STATUS_NAMES},
                   "flash": _flash(view), "problem": reads.problem, "failed": None}
        context.update(extra or {})
        return Page("supervisor/ratings.html.j2", context)

    @page("GET", "/supervisor/ratings", roles=SUPERVISOR)
    def supervisor_ratings(self, view: View):
        """Ratings, bad ones first, each bad one with its rectification's due dates and next step; appeals."""
        return self._ratings_page(view)

    def _act(self, view: View, path: str, body: dict | None, form_id: str, done: str, back: str, again):
        """POST to evaluation; on success back to the list (303) saying what was done, else the list again with
        the service's refusal next to the form."""
        answer = view.call("POST", EVALUATION, path, body=body)
        if answer.ok:
            return redirect(f"{back}?done={done}#{form_id.rsplit('-', 1)[0]}")
        return _status_of(answer), again(view, _failed(answer, form_id, body or {}))

    @page("POST", "/supervisor/rectifications/<int:rect_id>/<string:step>", roles=SUPERVISOR)
    def supervisor_rectification_step(self, view: View):
        """回访 (callback), 整改 (rectify) or close after a declined follow-up, through evaluation."""
        rect_id, step = view.params["rect_id"], view.params["step"]
        f = view.form
        bodies = {"callback": lambda: {"by": (f.get("by") or "").strip() or view.user.name,
                                       "notes": (f.get("notes") or "").strip()},
                  "rectify": lambda: {"measures": (f.get("measures") or "").strip()},
                  "close": lambda: {"note": (f.get("note") or "").strip()}}
        if step not in bodies:
            return 404, Page("error.html.j2", {"title": "没有这个操作", "message": "整改只有回访、整改、关闭三步。"})
        return self._act(view, f"/rectifications/{rect_id}/{step}", bodies[step](), f"rect-{rect_id}-{step}", step,
                         "/supervisor/ratings", self._ratings_page)

    @page("POST", "/supervisor/ratings/<int:rating_id>/appeal", roles=SUPERVISOR)
    def supervisor_appeal(self, view: View):
        """申诉复核: the supervisor appeals a mistaken or malicious bad rating (once per rating)."""
        rating_id = view.params["rating_id"]
        return self._act(view, f"/ratings/{rating_id}/appeal", {"reason": (view.form.get("reason") or "").strip()},
                         f"rating-{rating_id}-appeal", "appeal", "/supervisor/ratings", self._ratings_page)

    @page("POST", "/supervisor/appeals/<int:appeal_id>/decision", roles=SUPERVISOR)
    def supervisor_appeal_decision(self, view: View):
        """The decision of an appeal: upheld voids the rating, rejected keeps it."""
        appeal_id = view.params["appeal_id"]
        outcome = view.form.get("outcome") or ""
        body = {"outcome": outcome, "reason": (view.form.get("reason") or "").strip()}
        done = outcome if outcome in ("upheld", "rejected") else "appeal"
        return self._act(view, f"/appeals/{appeal_id}/decision", body, f"appeal-{appeal_id}-decision", done,
                         "/supervisor/ratings", self._ratings_page)

    # --- complaints (有诉即办) ---------------------------------------------------------------------------

    def _complaints_page(self, view: View, extra: dict | None = None):
        status = view.query.get("status") if view.query.get("status") in rules.COMPLAINT_STATUS_NAMES else None
        shown = "all" if view.query.get("status") == "all" else status
        reads = _Reads(view)
        listed = reads.get("/complaints", {"status": shown} if shown else None) or {}
        context = {"title": "投诉（有诉即办）", "complaints": listed.get("complaints", []),
                   "overdue": listed.get("overdue", 0), "today": listed.get("today"), "shown": shown or "",
                   "steps": rules.COMPLAINT_STEPS, "status_names": rules.COMPLAINT_STATUS_NAMES,
                   "channel_names": rules.CHANNEL_NAMES, "flash": _flash(view), "problem": reads.problem,
                   "failed": None}
        context.update(extra or {})
        return Page("supervisor/complaints.html.j2", context)

    @page("GET", "/supervisor/complaints", roles=SUPERVISOR)
    def supervisor_complaints(self, view: View):
        """Complaints, overdue first (open ones by default; ?status= one status or all)."""
        return self._complaints_page(view)

    @page("POST", "/supervisor/complaints/<string:number>/<string:step>", roles=SUPERVISOR)
    def supervisor_complaint_step(self, view: View):
        """Acknowledge (告知), assign (交办) or resolve (办结) a complaint, through evaluation."""
        number, step = view.params["number"], view.params["step"]
        f = view.form
        bodies = {"acknowledge": lambda: None,
                  "assign": lambda: {"to": (f.get("to") or "").strip(),
                                     "department": (f.get("department") or "").strip() or None},
                  "resolve": lambda: {"resolution": (f.get("resolution") or "").strip()}}
        if step not in bodies:
            return 404, Page("error.html.j2", {"title": "没有这个操作", "message": "投诉只有告知、交办、办结三步。"})
        return self._act(view, f"/complaints/{number}/{step}", bodies[step](), f"complaint-{number}-{step}", step,
                         "/supervisor/complaints", self._complaints_page)

    # --- monthly figures (月度统计) ------------------------------------------------------------------------

    @page("GET", "/supervisor/figures", roles=SUPERVISOR)
    def supervisor_figures(self, view: View):
        """One month's figures per village, window, staff, town and department, as tables, with downloads."""
        months = rules.figure_months(_clock.today())
        asked = view.query.get("month")
        month = rules.parse_month(asked) if asked else months["this"]
        context = {"title": "月度统计", "months": months, "month": month or (asked or "")[:20], "report": None}
        if month is None:
            return 400, Page("supervisor/figures.html.j2",
                             {**context, "month_error": "月份格式为 YYYY-MM，如 2026-01。"})
        reads = _Reads(view)
        context.update(report=reads.get("/reports/monthly", {"month": month}), problem=reads.problem,
                       month_error=None)
        return Page("supervisor/figures.html.j2", context)

    @page("GET", "/supervisor/figures.csv", roles=SUPERVISOR)
    def supervisor_figures_csv(self, view: View):
        return self._figures_file(view, "csv")

    @page("GET", "/supervisor/figures.xlsx", roles=SUPERVISOR)
    def supervisor_figures_xlsx(self, view: View):
        return self._figures_file(view, "xlsx")

    def _figures_file(self, view: View, fmt: str):
        """Evaluation's own export of the month (the same table as its `tongban` report), handed on as a download."""
        asked = view.query.get("month")
        month = rules.parse_month(asked) if asked else rules.figure_months(_clock.today())["this"]
        if month is None:
            return 400, Page("error.html.j2", {"title": "月份不正确", "message": "月份格式为 YYYY-MM，如 2026-01。"})
        answer = view.call("GET", EVALUATION, "/reports/monthly", params={"month": month, "format": fmt})
        if not answer.ok or not isinstance(answer.body, bytes):
            return _status_of(answer), Page("error.html.j2", {"title": "导出失败", "message": answer.message()})
        name = rules.export_filename(month, fmt, rules.scope_town(view.user.scope))
        response = Response(answer.body, status=200, content_type=answer.content_type)
        response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response
