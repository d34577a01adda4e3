"""A probe service for the shared plumbing: a consumer that fails for chosen cases, on the real broker."""
import time
from pathlib import Path

from shared.config import Settings
from shared.contracts import Unacceptable
from shared.platform import Platform, consume
from shared.web import PlatformEndpoints

VERSIONS = Path(__file__).parent / "probe_migrations"


def build_probe(settings: Settings, handled: list, poisoned: set, failures: dict | None = None,
                tries: list | None = None, refused: set = frozenset()):
    """`poisoned` cases fail every time, `failures[case]` fails that many times first, `refused` cases are
    Unacceptable; `tries` records (case, monotonic time) of every attempt."""
    failures = failures if failures is not None else {}

    class ProbeService(PlatformEndpoints):
        name = settings.instance
        platform = Platform(settings, VERSIONS)

        @consume(settings, "probe", ["probe.#"])
        def on_probe(self, tx, message):
            if tries is not None:
                tries.append((message.case_number, time.monotonic()))
            if message.case_number in refused:
                raise Unacceptable(f"{message.case_number} is none of the probe's business")
            if message.case_number in poisoned:
                raise RuntimeError(f"cannot handle {message.case_number}")
            if failures.get(message.case_number, 0) > 0:
                failures[message.case_number] -= 1
                raise RuntimeError(f"not yet: {message.case_number}")
            handled.append(message.case_number)

    return ProbeService
