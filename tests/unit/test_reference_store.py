"""A service's copy of the reference stream in its database: once per (kind, version, sha256), with the
offset to read on from; no broker."""
from dataclasses import replace

import sqlalchemy as sa

from shared.catalog import SAMPLE_CATALOG
from shared.db import load_reference, make_engine, reference_metadata, store_reference
from shared.reference import CALENDAR, CATALOG, Book, Catalogs, make_record


def test_records_are_stored_once_in_stream_order_with_the_offset_to_read_on(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'svc.db'}")
    reference_metadata.create_all(engine)
    assert load_reference(engine) == ([], None)  # nothing read yet: from the start of the stream
    sample = make_record(CATALOG, SAMPLE_CATALOG.read_text(encoding="utf-8"), "ops")
    newer = make_record(CATALOG, SAMPLE_CATALOG.read_text(encoding="utf-8").replace(
        'version: "2026.1"', 'version: "2026.2"'), "ops")
    year = make_record(CALENDAR, "year: 2027\nholidays: [2027-01-01]\n", "ops")
    assert store_reference(engine, sample, 0) is True
    assert store_reference(engine, year, 1) is True
    assert store_reference(engine, newer, 2) is True
    assert store_reference(engine, replace(sample), 3) is False  # the same file again: one version
    assert store_reference(engine, sample, 0) is False  # a redelivery moves nothing back
    records, offset = load_reference(engine)
    assert offset == 4
    assert [(r.kind, r.version, r.offset) for r in records] == [
        (CATALOG, "2026.1", 0), (CALENDAR, "2027", 1), (CATALOG, "2026.2", 2)]
    catalogs = Catalogs(Book(records))
    assert catalogs.active().version == "2026.2" and catalogs.get("2026.1").version == "2026.1"
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM reference_records")).scalar() == 3
    engine.dispose()
