"""Notify: notices and results to applicants (SMS, e-mail, EMS, pickup). Entrypoints only."""
from __future__ import annotations

from pathlib import Path

from shared.clock import Clock
from shared.config import Settings
from shared.contracts import Message
from shared.platform import Platform, consume
from shared.web import ApiCall, PlatformEndpoints, api

from services.notify.notices import Notifier

VERSIONS = Path(__file__).parent / "migrations" / "versions"


def build_service(settings: Settings, clock: Clock | None = None):
    notifier = Notifier(instance=settings.instance, clock=clock or Clock())

    class NotifyService(PlatformEndpoints):
        name = settings.instance
        platform = Platform(settings, VERSIONS)

        @consume(settings, "notices")
        def on_notice_issued(self, tx, message: Message):
            """Every notice a centre issues reaches its applicant."""
            if message.type != "notice.issued":
                return "ignored"
            return notifier.on_notice_issued(tx, message)

        @api("GET", "/cases/<string:case_number>/deliveries", roles=("clerk", "supervisor", "service", "city_admin"))
        def deliveries(self, call: ApiCall):
            with self.platform.store.transaction() as tx:
                return {"case_number": call.params["case_number"],
                        "deliveries": notifier.deliveries(tx, call.principal, call.params["case_number"])}

        @api("GET", "/stats", roles=("supervisor", "service", "city_admin"))
        def stats(self, call: ApiCall):
            with self.platform.store.transaction() as tx:
                return notifier.stats(tx)

    return NotifyService
