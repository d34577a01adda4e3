"""The clock is injected, never read ad hoc, so a simulated city can live a month in minutes."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from shared.workdays import today_in_shanghai


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def today(self) -> date:
        """Today's Asia/Shanghai date: deadlines are counted on those."""
        return today_in_shanghai(self.now())


class ManualClock(Clock):
    """A clock that moves only when told (tests, simulations)."""

    def __init__(self, start: datetime):
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, **delta) -> None:
        self._now += timedelta(**delta)
