"""Agent: village stations (代办点) and town agents relaying escalations. Entrypoints only."""
from __future__ import annotations

from pathlib import Path

from shared.clock import Clock
from shared.config import Settings
from shared.contracts import Message
from shared.platform import Platform, consume
from shared.web import ApiCall, PlatformEndpoints, api

from services.agent.station import Station

VERSIONS = Path(__file__).parent / "migrations" / "versions"


def build_service(settings: Settings, clock: Clock | None = None):
    station = Station(clock=clock or Clock())

    class AgentService(PlatformEndpoints):
        name = settings.instance
        platform = Platform(settings, VERSIONS)

        @consume(settings, "results")
        def on_result(self, tx, message: Message):
            """An agent's case accepted (kept), then finished: the agent owes the villager a reply."""
            if message.type == "case.accepted":
                return station.on_accepted(tx, message)
            if message.type == "case.completed":
                return station.on_completed(tx, message)
            return "ignored"

        @api("GET", "/replies", roles=("agent", "supervisor", "service", "city_admin"))
        def replies(self, call: ApiCall):
            with self.platform.store.transaction() as tx:
                return {"replies": station.replies(tx, call.principal)}

        @api("GET", "/stats", roles=("supervisor", "service", "city_admin"))
        def stats(self, call: ApiCall):
            with self.platform.store.transaction() as tx:
                return station.stats(tx)

    return AgentService
