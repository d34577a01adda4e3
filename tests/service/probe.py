"""A probe service for the shared plumbing: a consumer that fails for chosen cases, on the real broker."""
from pathlib import Path

from shared.config import Settings
from shared.platform import Platform, consume
from shared.web import PlatformEndpoints

VERSIONS = Path(__file__).parent / "probe_migrations"


def build_probe(settings: Settings, handled: list, poisoned: set):
    class ProbeService(PlatformEndpoints):
        name = settings.instance
        platform = Platform(settings, VERSIONS)

        @consume(settings, "probe", ["probe.#"])
        def on_probe(self, tx, message):
            if message.case_number in poisoned:
                raise RuntimeError(f"cannot handle {message.case_number}")
            handled.append(message.case_number)

    return ProbeService
