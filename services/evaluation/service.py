"""Evaluation: 好差评, complaints, deadline supervision and statistics. Entrypoints only."""
from __future__ import annotations

from pathlib import Path

from nameko.timer import timer
from werkzeug.wrappers import Response

from services.evaluation import figures, rating_rules
from services.evaluation import rating_schemas as rs
from services.evaluation.complaints import ComplaintDesk
from services.evaluation.figures_rules import REPORT_ROLES
from services.evaluation.rating_metrics import RatingMetrics
from services.evaluation.ratings import RatingDesk
from services.evaluation.schemas import (
    BoardQuerySchema,
    BoardSchema,
    CaseEventsSchema,
    EvaluationStatsSchema,
    ForecastQuerySchema,
    ForecastSchema,
    MonthlyReportQuerySchema,
    MonthlyReportSchema,
    ScopeQuerySchema,
    SupervisionNoticesSchema,
    WarningsQuerySchema,
    WarningsSchema,
)
from services.evaluation.supervision import READERS, SupervisionConfig, Supervisor
from services.evaluation.usecases import Recorder
from shared.clock import Clock
from shared.config import Settings
from shared.contracts import Message
from shared.logging import get_logger
from shared.platform import Platform, consume
from shared.reference import Reference
from shared.tables import FORMATS as TABLE_FORMATS
from shared.web import ApiCall, BadRequest, PlatformEndpoints, api

log = get_logger(__name__)

VERSIONS = Path(__file__).parent / "migrations" / "versions"
IDEMPOTENCY_KEY_MAX = 200
# 好差评 and complaints: who records, who reads, who acts (see ratings.py and complaints.py for the why)
RATERS = ("service", "clerk")  # a service for the applicant (any channel); the window's rating device
RATING_READERS = ("clerk", "approver", "department_head", "supervisor", "city_admin", "service")
OVERSEERS = ("supervisor", "department_head", "city_admin", "service")
COMPLAINT_TAKERS = ("clerk", "supervisor", "service")
COMPLAINT_READERS = ("clerk", "approver", "department_head", "supervisor", "city_admin", "service")


def _days(settings: Settings, name: str, default: int, low: int, high: int) -> int:
    raw = settings.extra.get(name, default)
    try:
        value = int(raw)
    except (TypeError, ValueError):
        value = raw
    return rating_rules.check_days(name, value, low, high)


def _idempotency_key(call: ApiCall) -> str | None:
    key = call.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX:
        raise BadRequest(f"an Idempotency-Key header has 1-{IDEMPOTENCY_KEY_MAX} characters")
    return key


def build_service(settings: Settings, clock: Clock | None = None):
    clock = clock or Clock()
    # the calendar (working days of supervision, the forecast, callbacks, rectifications and complaints):
    # every year from the reference stream
    reference = Reference(settings, needs_catalog=False)
    monthly = figures.Figures(calendar=reference.calendar)  # updated in place when a year's holidays arrive
    recorder = Recorder(clock=clock, figures=monthly)
    config = SupervisionConfig.of(settings)
    supervisor = Supervisor(clock=clock, calendar=reference.calendar, config=config, instance=settings.instance)
    ratings = RatingDesk(clock=clock, calendar=reference.calendar,
                         rectify_days=_days(settings, "rectify_days", rating_rules.RECTIFY_DAYS,
                                            *rating_rules.RECTIFY_DAYS_RANGE), figures=monthly)
    complaints = ComplaintDesk(clock=clock, calendar=reference.calendar,
                               days=_days(settings, "complaint_days", rating_rules.COMPLAINT_DAYS, 1, 60),
                               figures=monthly)

    class EvaluationService(PlatformEndpoints):
        name = settings.instance
        platform = Platform(settings, VERSIONS, reference=reference)
        rating_metrics = RatingMetrics(ratings, clock)
        figures_metrics = figures.FiguresMetrics(monthly)

        @consume(settings, "events")
        def on_event(self, tx, message: Message):
            """Every case event, from every town and department."""
            return recorder.record(tx, message)

        @api("GET", "/cases/<string:case_number>/events", roles=("supervisor", "service", "city_admin"),
             response=CaseEventsSchema)
        def events(self, call: ApiCall):
            """A case's timeline, for a caller whose scope reaches the case (else 404, as for no case)."""
            number = call.params["case_number"]
            with self.platform.store.transaction() as tx:
                return CaseEventsSchema().dump({"case_number": number,
                                                "events": recorder.timeline(tx, call.principal, number)})

        @api("GET", "/stats", roles=("supervisor", "service", "city_admin"), response=EvaluationStatsSchema)
        def stats(self, call: ApiCall):
            """Cases per event type: the city's, or the caller's town's."""
            with self.platform.store.transaction() as tx:
                return EvaluationStatsSchema().dump(recorder.stats(tx, call.principal))

        # --- deadline supervision (电子监察), the board and the breach forecast ----------------------------

        @timer(interval=config.interval, eager=True)
        def watch(self):
            """The watcher: yellow and red warnings (督办), red escalated to a supervision notice, metrics."""
            try:
                supervisor.watch(self.platform.store, supervisor.metrics(self.platform.metrics.registry))
            except Exception:  # a database hiccup: the next pass tries again
                log.exception("supervision.watch_failed")

        @api("GET", "/board", roles=READERS, response=BoardSchema, query=BoardQuerySchema)
        def board(self, call: ApiCall):
            """Open cases by urgency (red, yellow, then by deadline) for the city, a town (?town=) or a department
            (?department=); counts by colour; the forecast's summary. A town's supervisor sees their town, a
            department head their department."""
            with self.platform.store.transaction() as tx:
                return BoardSchema().dump(supervisor.board(tx, call.principal, call.query))

        @api("GET", "/forecast", roles=READERS, response=ForecastSchema, query=ForecastQuerySchema)
        def forecast(self, call: ApiCall):
            """Per office (department and town): open cases that will miss their deadline in the next ?days=N
            working days at the recent decision rate, which first, and the decisions a day that would prevent it."""
            with self.platform.store.transaction() as tx:
                return ForecastSchema().dump(supervisor.forecast(tx, call.principal, call.query))

        @api("GET", "/supervision/warnings", roles=READERS, response=WarningsSchema, query=WarningsQuerySchema)
        def supervision_warnings(self, call: ApiCall):
            """The warnings (督办) in the caller's scope, newest first (?case=, ?colour=, ?open=1, ?town=,
            ?department=)."""
            with self.platform.store.transaction() as tx:
                return WarningsSchema().dump(supervisor.warnings(tx, call.principal, call.query))

        @api("GET", "/supervision/notices", roles=READERS, response=SupervisionNoticesSchema,
             query=ScopeQuerySchema)
        def supervision_notices(self, call: ApiCall):
            """Supervision notices (督办通知) of red warnings, for the department head and the supervisor."""
            with self.platform.store.transaction() as tx:
                return SupervisionNoticesSchema().dump(supervisor.notices(tx, call.principal, call.query))

        # --- 好差评 ratings, rectifications (整改), appeals (申诉复核) ----------------------------------

        @api("POST", "/ratings", roles=RATERS, schema=rs.RateSchema, response=rs.RatingViewSchema)
        def rate(self, call: ApiCall):
            """A rating of a case at acceptance or completion (201; the same Idempotency-Key again: 200)."""
            view, created = ratings.rate(self.platform.store, call.principal, call.body, _idempotency_key(call))
            return (201 if created else 200), rs.RatingViewSchema().dump(view)

        @api("GET", "/ratings", roles=RATING_READERS, response=rs.RatingsListSchema, query=rs.RatingsQuerySchema)
        def list_ratings(self, call: ApiCall):
            """Ratings the caller may see, newest first: ?case_number=&town=&department=&level=&limit=. Only a
            supervisor sees who rated (the phone masked)."""
            with self.platform.store.transaction() as tx:
                return rs.RatingsListSchema().dump({"ratings": ratings.ratings(tx, call.principal, call.query)})

        @api("GET", "/ratings/<int:rating_id>", roles=RATING_READERS, response=rs.RatingViewSchema)
        def get_rating(self, call: ApiCall):
            """One rating, with its rectification's and appeal's state."""
            with self.platform.store.transaction() as tx:
                return rs.RatingViewSchema().dump(ratings.rating(tx, call.principal, call.params["rating_id"]))

        @api("POST", "/ratings/<int:rating_id>/follow-up", roles=(*RATERS, "supervisor"), schema=rs.FollowUpSchema,
             response=rs.RatingViewSchema)
        def follow_up(self, call: ApiCall):
            """The rater's one follow-up rating after the rectification (a second: 409); closes it."""
            view, created = ratings.follow_up(self.platform.store, call.principal, call.params["rating_id"],
                                              call.body, _idempotency_key(call))
            return (201 if created else 200), rs.RatingViewSchema().dump(view)

        @api("POST", "/ratings/<int:rating_id>/appeal", roles=("department_head", "supervisor"),
             schema=rs.AppealSchema, response=rs.AppealViewSchema)
        def appeal_rating(self, call: ApiCall):
            """申诉复核: the staff's department head or the town's supervisor appeals a bad rating, once."""
            return 201, rs.AppealViewSchema().dump(ratings.appeal(self.platform.store, call.principal,
                                                                  call.params["rating_id"], call.body))

        @api("GET", "/appeals", roles=OVERSEERS, response=rs.AppealsListSchema, query=rs.AppealsQuerySchema)
        def list_appeals(self, call: ApiCall):
            """Appeals, oldest first: ?status=pending (default) | upheld | rejected | all."""
            with self.platform.store.transaction() as tx:
                return rs.AppealsListSchema().dump({"appeals": ratings.appeals(tx, call.principal, call.query)})

        @api("POST", "/appeals/<int:appeal_id>/decision", roles=("supervisor",), schema=rs.AppealDecisionSchema,
             response=rs.AppealViewSchema)
        def decide_appeal(self, call: ApiCall):
            """A supervisor decides an appeal: upheld voids the rating and closes its rectification."""
            with self.platform.store.transaction() as tx:
                return rs.AppealViewSchema().dump(ratings.decide_appeal(tx, call.principal,
                                                                        call.params["appeal_id"], call.body))

        @api("GET", "/rectifications", roles=OVERSEERS, response=rs.RectificationsListSchema,
             query=rs.RectificationsQuerySchema)
        def list_rectifications(self, call: ApiCall):
            """Rectifications of bad ratings, overdue first; ?state= (default: not closed; `all`)."""
            with self.platform.store.transaction() as tx:
                return rs.RectificationsListSchema().dump(ratings.rectifications(tx, call.principal, call.query))

        @api("POST", "/rectifications/<int:rect_id>/callback", roles=("supervisor", "department_head"),
             schema=rs.CallbackSchema, response=rs.RectificationViewSchema)
        def rectification_callback(self, call: ApiCall):
            """回访: the rater was called back (due within 1 working day)."""
            with self.platform.store.transaction() as tx:
                return rs.RectificationViewSchema().dump(ratings.callback(tx, call.principal, call.params["rect_id"],
                                                                          call.body))

        @api("POST", "/rectifications/<int:rect_id>/rectify", roles=("supervisor", "department_head"),
             schema=rs.RectifySchema, response=rs.RectificationViewSchema)
        def rectify(self, call: ApiCall):
            """整改: the measures taken, after the callback; the rater's follow-up is awaited."""
            with self.platform.store.transaction() as tx:
                return rs.RectificationViewSchema().dump(ratings.rectify(tx, call.principal, call.params["rect_id"],
                                                                         call.body))

        @api("POST", "/rectifications/<int:rect_id>/close", roles=("supervisor", "department_head"),
             schema=rs.CloseRectificationSchema, response=rs.RectificationViewSchema)
        def close_rectification(self, call: ApiCall):
            """The rater declined a follow-up rating: closed after the rectification."""
            with self.platform.store.transaction() as tx:
                return rs.RectificationViewSchema().dump(ratings.close_declined(tx, call.principal,
                                                                                call.params["rect_id"], call.body))

        # --- 有诉即办 complaints ------------------------------------------------------------------------

        @api("POST", "/complaints", roles=COMPLAINT_TAKERS, schema=rs.FileComplaintSchema,
             response=rs.ComplaintViewSchema)
        def file_complaint(self, call: ApiCall):
            """A complaint, accepted at once: 201 with its number and due date (the same Idempotency-Key: 200)."""
            view, created = complaints.file(self.platform.store, call.principal, call.body, _idempotency_key(call))
            return (201 if created else 200), rs.ComplaintViewSchema().dump(view)

        @api("GET", "/complaints", roles=COMPLAINT_READERS, response=rs.ComplaintsListSchema,
             query=rs.ComplaintsQuerySchema)
        def list_complaints(self, call: ApiCall):
            """Complaints, overdue first: ?status= (default: open; `all`), ?town=, ?overdue=1."""
            with self.platform.store.transaction() as tx:
                return rs.ComplaintsListSchema().dump(complaints.complaints(tx, call.principal, call.query))

        @api("GET", "/complaints/<string:number>", roles=COMPLAINT_READERS, response=rs.ComplaintViewSchema)
        def get_complaint(self, call: ApiCall):
            """One complaint (its complainant for the window, supervisors and services; the phone masked)."""
            with self.platform.store.transaction() as tx:
                return rs.ComplaintViewSchema().dump(complaints.complaint(tx, call.principal, call.params["number"]))

        @api("POST", "/complaints/<string:number>/acknowledge", roles=COMPLAINT_TAKERS,
             response=rs.ComplaintViewSchema)
        def acknowledge_complaint(self, call: ApiCall):
            """The complainant is told the complaint is being handled."""
            with self.platform.store.transaction() as tx:
                return rs.ComplaintViewSchema().dump(complaints.acknowledge(tx, call.principal, call.params["number"]))

        @api("POST", "/complaints/<string:number>/assign", roles=COMPLAINT_TAKERS, schema=rs.AssignComplaintSchema,
             response=rs.ComplaintViewSchema)
        def assign_complaint(self, call: ApiCall):
            """To the person (and department) who answers for it; again to hand it on."""
            with self.platform.store.transaction() as tx:
                return rs.ComplaintViewSchema().dump(complaints.assign(tx, call.principal, call.params["number"],
                                                                       call.body))

        @api("POST", "/complaints/<string:number>/resolve", roles=COMPLAINT_READERS,
             schema=rs.ResolveComplaintSchema, response=rs.ComplaintViewSchema)
        def resolve_complaint(self, call: ApiCall):
            """Resolved, by its assignee, a department head or a supervisor."""
            with self.platform.store.transaction() as tx:
                return rs.ComplaintViewSchema().dump(complaints.resolve(tx, call.principal, call.params["number"],
                                                                        call.body))

        # --- monthly figures and operators' metrics (月度统计) -------------------------------------------

        @api("GET", "/reports/monthly", roles=REPORT_ROLES, query=MonthlyReportQuerySchema,
             response=[MonthlyReportSchema, TABLE_FORMATS["csv"], TABLE_FORMATS["xlsx"]])
        def monthly_report(self, call: ApiCall):
            """The month's figures per village, window, staff, town and department: `month=YYYY-MM`,
            `town=CODE`, `dept=CODE[@TOWN|@city]`, `format=json|csv|xlsx`. The city any; a town's supervisor
            their town; a department head their office."""
            names = figures.names_from(reference.catalogs.active() if reference.catalogs.ready else None)
            with self.platform.store.transaction() as tx:
                report, fmt = figures.monthly_for(tx.session, call.principal, call.query, names)
            if fmt == "json":
                return MonthlyReportSchema().dump(report)
            return Response(figures.render(report, fmt), status=200, mimetype=figures.FORMATS[fmt],
                            headers={"Content-Disposition": f'attachment; filename="{figures.filename(report, fmt)}"'})

        @timer(interval=float(settings.extra.get("figures_refresh_seconds", 15)), eager=True)
        def refresh_figures_metrics(self):
            """Open cases by status, town and department, from the case read model."""
            self.figures_metrics.refresh()

    return EvaluationService
