"""Intake: the window at one town centre (前台综合受理), owner of the case ledger. Entrypoints only."""
from __future__ import annotations

from pathlib import Path

from shared.catalog import Catalog, load_catalog
from shared.clock import Clock
from shared.config import Settings
from shared.contracts import Message, rk_decided
from shared.platform import Platform, consume
from shared.web import ApiCall, PlatformEndpoints, api
from shared.workdays import WorkingCalendar

from services.intake.window import DEFAULT_CATALOG, Window
from services.intake.schemas import SubmitCaseSchema

VERSIONS = Path(__file__).parent / "migrations" / "versions"


def build_service(settings: Settings, catalog: Catalog | None = None, calendar: WorkingCalendar | None = None,
                  clock: Clock | None = None):
    if not settings.town:
        raise ValueError("intake needs its town code (TONGBAN_TOWN)")
    window = Window(
        town=settings.town, instance=settings.instance,
        catalog=catalog or load_catalog(settings.extra.get("catalog_path") or DEFAULT_CATALOG),
        calendar=calendar or WorkingCalendar.from_directory(Path(settings.data_dir) / "calendar"),
        clock=clock or Clock(),
    )

    class IntakeService(PlatformEndpoints):
        name = settings.instance
        platform = Platform(settings, VERSIONS)

        @api("POST", "/cases", roles=("clerk", "service"), schema=SubmitCaseSchema)
        def submit_case(self, call: ApiCall):
            window.require_town_scope(call.principal)
            with self.platform.store.transaction() as tx:
                case, created = window.accept(tx, call.body, call.principal,
                                              request_key=call.headers.get("Idempotency-Key"))
                view = window.view(tx, case)
            return (201 if created else 200), view

        @api("GET", "/cases/<string:case_number>", roles=("clerk", "supervisor", "service", "city_admin"))
        def get_case(self, call: ApiCall):
            with self.platform.store.transaction() as tx:
                return window.view(tx, window.visible_case(tx, call.principal, call.params["case_number"]),
                                   with_history=True)

        @api("GET", "/cases", roles=("clerk", "supervisor", "service", "city_admin"))
        def list_cases(self, call: ApiCall):
            with self.platform.store.transaction() as tx:
                return window.list(tx, call.principal, call.query)

        @api("GET", "/stats", roles=("supervisor", "service", "city_admin"))
        def stats(self, call: ApiCall):
            with self.platform.store.transaction() as tx:
                return window.stats(tx)

        @consume(settings, "decisions", [rk_decided("*", settings.town)])
        def on_decision(self, tx, message: Message):
            """A department decided: close the case in the ledger and tell everyone."""
            return window.apply_decision(tx, message)

    IntakeService.window = window
    return IntakeService
