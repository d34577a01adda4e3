"""shared.db.add_to_counters: counter rows created at their first change and added to after, dates and booleans
in the key kept as their types, on SQLite and PostgreSQL; the statement is made once per table and row count."""
from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from shared import db

metadata = sa.MetaData()
counters = sa.Table("counters_test", metadata,
                    sa.Column("key", sa.String(20), primary_key=True),
                    sa.Column("day", sa.Date, primary_key=True),
                    sa.Column("flag", sa.Boolean, primary_key=True),
                    sa.Column("value", sa.Integer, nullable=False))


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request, tmp_path, postgres):
    url = f"sqlite:///{tmp_path}/c.db" if request.param == "sqlite" else postgres.new("counters")
    e = sa.create_engine(url)
    metadata.create_all(e)
    yield e
    e.dispose()


def test_changes_add_up_per_key(engine):
    key = ("key", "day", "flag")
    monday = date(2026, 11, 2)
    with engine.begin() as conn:
        db.add_to_counters(conn, counters, key, "value", [
            {"key": "a", "day": monday, "flag": True, "value": 2}, {"key": "b", "day": monday, "flag": False,
                                                                    "value": 1}])
        db.add_to_counters(conn, counters, key, "value", [])
    with engine.begin() as conn:
        db.add_to_counters(conn, counters, key, "value", [
            {"key": "a", "day": monday, "flag": True, "value": -1}, {"key": "a", "day": monday, "flag": False,
                                                                     "value": 5}])
    with engine.connect() as conn:
        rows = sorted(tuple(r) for r in conn.execute(sa.select(counters)))
    assert rows == [("a", monday, False, 5), ("a", monday, True, 1), ("b", monday, False, 1)]
    assert db._counter_upsert(counters, key, "value", 2) is db._counter_upsert(counters, key, "value", 2)
