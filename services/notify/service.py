"""Notify: notices and results to applicants (SMS, e-mail, EMS, pickup). Entrypoints only."""
from __future__ import annotations

from pathlib import Path

from nameko.timer import timer

from services.notify.channels import channel_set
from services.notify.config import configured_channels, fallback_orders
from services.notify.schemas import DeliveriesSchema, NotifyStatsSchema
from services.notify.templating import Templates
from services.notify.usecases import Notifier
from shared.bus import MessageAttempt
from shared.clock import Clock
from shared.config import Settings
from shared.contracts import Message
from shared.platform import Platform, consume
from shared.web import ApiCall, PlatformEndpoints, api

VERSIONS = Path(__file__).parent / "migrations" / "versions"
SWEEP_SECONDS = 30.0


def build_service(settings: Settings, clock: Clock | None = None, channels=None):
    """`channels`: a dict name -> channel (or channels carrying their `name`) beside the delivery log and the
    window, replacing the SMS and e-mail channels the settings configure. The templates are loaded and
    rendered once here: a broken one stops the start, naming its file (templating.TemplateProblem)."""
    channels = channels if isinstance(channels, dict) else {c.name: c for c in channels or ()}
    notifier = Notifier(instance=settings.instance, clock=clock or Clock(),
                        channels=channel_set({**configured_channels(settings), **channels}),
                        templates=Templates(settings.extra.get("notify_templates")),
                        fallback=fallback_orders(settings))
    tries = len(settings.retry_delays)  # the waits of the bus's retries: the try after the last is the last

    class NotifyService(PlatformEndpoints):
        name = settings.instance
        platform = Platform(settings, VERSIONS)
        attempt = MessageAttempt()  # how many tries of this message failed before

        # no generic inbox: the delivery log is the record that makes a redelivery harmless
        @consume(settings, "notices", inbox=False)
        def on_notice_issued(self, tx, message: Message):
            """Every notice a centre issues for a case it opened reaches its applicant, at most once per
            channel; a channel that fails for good hands it to the next (notice.fallback)."""
            if message.type in ("case.accepted", "case.updated"):
                return notifier.on_case_event(tx, message)
            last_try = self.attempt >= tries
            if message.type == "notice.issued":
                return notifier.on_notice_issued(tx, message, self.platform, last_try)
            if message.type == "notice.fallback":
                return notifier.on_fallback(tx, message, self.platform, last_try)
            if message.type == "case.completed":
                return notifier.on_completed(tx, message, self.platform)
            return "ignored"

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
