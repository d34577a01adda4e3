"""A reference stream in memory, for broker-free tests of the CLI (the service tests use RabbitMQ's)."""
from __future__ import annotations

from dataclasses import replace

from shared.reference import Record, StreamClient


class MemoryStream(StreamClient):
    def __init__(self, prefix: str = "unit"):
        super().__init__("memory://", prefix)
        self.records: list[Record] = []

    def read(self, offset="first") -> list[Record]:
        start = 0 if offset == "first" else int(offset)
        return list(self.records[start:])

    def publish(self, record: Record) -> None:
        self.records.append(replace(record, offset=len(self.records)))
