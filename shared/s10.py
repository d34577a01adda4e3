"""UPU S10 item identifiers, the tracking numbers of EMS mail (邮件号): 2 letters (service indicator, E… for
EMS), an 8-digit serial, a check digit, and the 2-letter country of origin, e.g. EA123456785CN.

python-stdnum has no S10 module, hence these few lines. A centre issues numbers from the ranges EMS assigns
it; `WaybillRanges` reads them from configuration and says which serial comes next.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)
COUNTRY = "CN"
_S10 = re.compile(r"^[A-Z]{2}\d{9}[A-Z]{2}$")
_RANGE = re.compile(r"^([A-Z]{2})(\d{8})-(\d{8})$")


def check_digit(serial: str | int) -> int:
    """The S10 check digit of an 8-digit serial: 11 − (weighted sum mod 11); 10 counts as 0, 11 as 5."""
    digits = f"{int(serial):08d}" if isinstance(serial, int) else serial
    if not re.fullmatch(r"\d{8}", digits):
        raise ValueError(f"an S10 serial is 8 digits, got {serial!r}")
    c = 11 - sum(int(d) * w for d, w in zip(digits, WEIGHTS, strict=True)) % 11
    return {10: 0, 11: 5}.get(c, c)


def tracking_number(prefix: str, serial: int, country: str = COUNTRY) -> str:
    if not re.fullmatch(r"[A-Z]{2}", prefix) or not 0 <= serial <= 99_999_999:
        raise ValueError(f"not an S10 prefix and serial: {prefix!r} {serial!r}")
    return f"{prefix}{serial:08d}{check_digit(serial)}{country}"


def is_valid(number: str) -> bool:
    """Two letters, 8 digits, the right check digit, two letters."""
    if not isinstance(number, str) or not _S10.match(number):
        return False
    return check_digit(number[2:10]) == int(number[10])


@dataclass(frozen=True)
class WaybillRange:
    """Serials `first`..`last` (inclusive) under one service indicator, as EMS assigns them to a centre."""

    prefix: str
    first: int
    last: int

    def __len__(self) -> int:
        return self.last - self.first + 1

    def number(self, serial: int) -> str:
        return tracking_number(self.prefix, serial)

    def holds(self, number: str) -> bool:
        return (is_valid(number) and number[:2] == self.prefix and number[-2:] == COUNTRY
                and self.first <= int(number[2:10]) <= self.last)


def parse_ranges(text: str) -> list[WaybillRange]:
    """`EA10100000-10199999,EB10100000-10199999`: used in that order."""
    ranges = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        m = _RANGE.match(part)
        if not m or int(m.group(2)) > int(m.group(3)):
            raise ValueError(f"a waybill range is like EA10100000-10199999 (2 letters, first and last 8-digit "
                             f"serial), got {part!r}")
        ranges.append(WaybillRange(m.group(1), int(m.group(2)), int(m.group(3))))
    if not ranges:
        raise ValueError("no waybill range given")
    return ranges


def default_ranges(town: str) -> list[WaybillRange]:
    """A development default unique per town within a city: the town's place in the city (the county's 2
    digits within the prefecture and the town's 3) leads the serial, 1,000 numbers under each of EA…EZ.
    A real deployment sets the ranges EMS assigned (TONGBAN_WAYBILL_RANGES)."""
    if not re.fullmatch(r"\d{9}", town):
        raise ValueError(f"not a town code: {town!r}")
    block = int(town[4:9]) * 1000
    return [WaybillRange(f"E{chr(c)}", block, block + 999) for c in range(ord("A"), ord("Z") + 1)]


def next_number(ranges: list[WaybillRange], last_used: str | None) -> str:
    """The number after `last_used` (the highest issued from these ranges; None: none yet)."""
    start = 0
    if last_used is not None:
        for i, r in enumerate(ranges):
            if r.holds(last_used):
                serial = int(last_used[2:10])
                if serial < r.last:
                    return r.number(serial + 1)
                start = i + 1
                break
    if start >= len(ranges):
        raise ValueError("every waybill number of this centre's ranges is used: configure a new range "
                         "(TONGBAN_WAYBILL_RANGES)")
    return ranges[start].number(ranges[start].first)
