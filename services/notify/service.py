"""Notify: notices and results to applicants (SMS, e-mail, EMS, pickup). Entrypoints only."""
from __future__ import annotations

from pathlib import Path

from nameko.timer import timer

from services.notify.channels import channel_set
from services.notify.schemas import DeliveriesSchema, NotifyStatsSchema
from services.notify.usecases import Notifier
from shared.clock import Clock
from shared.config import Settings
from shared.contracts import Message
from shared.platform import Platform, consume
from shared.web import ApiCall, PlatformEndpoints, api

VERSIONS = Path(__file__).parent / "migrations" / "versions"
SWEEP_SECONDS = 30.0


def build_service(settings: Settings, clock: Clock | None = None, channels=None):
    """`channels`: a dict name -> channel (or channels carrying their `name`) beside the delivery log."""
    notifier = Notifier(instance=settings.instance, clock=clock or Clock(), channels=channel_set(channels))

    class NotifyService(PlatformEndpoints):
        name = settings.instance
        platform = Platform(settings, VERSIONS)

        # no generic inbox: the delivery log is the record that makes a redelivery harmless
        @consume(settings, "notices", inbox=False)
        def on_notice_issued(self, tx, message: Message):
            """Every notice a centre issues for a case it opened reaches its applicant, at most once."""
            if message.type in ("case.accepted", "case.updated"):
                return notifier.on_case_event(tx, message)
            if message.type != "notice.issued":
                return "ignored"
            return notifier.on_notice_issued(tx, message, self.platform)

        @timer(interval=float(settings.extra.get("notify_sweep_seconds", SWEEP_SECONDS)))
        def sweep(self):
            """Record sends whose record failed; a send nobody can finish recording is in doubt."""
            notifier.sweep(self.platform)

        @api("GET", "/cases/<string:case_number>/deliveries", roles=("clerk", "supervisor", "service", "city_admin"),
             response=DeliveriesSchema)
        def deliveries(self, call: ApiCall):
            """A case's notices and how each went out (404 for a case outside the caller's scope, as for none)."""
            number = call.params["case_number"]
            with self.platform.store.transaction() as tx:
                return DeliveriesSchema().dump({"case_number": number,
                                                "deliveries": notifier.deliveries(tx, call.principal, number)})

        @api("GET", "/stats", roles=("supervisor", "service", "city_admin"), response=NotifyStatsSchema)
        def stats(self, call: ApiCall):
            """Notices sent and deliveries by status: the city's, or the caller's town's."""
            with self.platform.store.transaction() as tx:
                return NotifyStatsSchema().dump(notifier.stats(tx, call.principal))

    return NotifyService
