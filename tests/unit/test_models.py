"""One declarative base for every service's models, and still one database per service: each service's
migrations make exactly its own models' tables (plus the plumbing shared.db defines), on SQLite and
PostgreSQL. No broker."""
from __future__ import annotations

import importlib
from itertools import combinations
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.orm import Mapped, mapped_column

import services
from shared import db

SERVICES = ["agent", "approval", "evaluation", "intake", "notify"]


def models(service: str):
    return importlib.import_module(f"services.{service}.models")


def versions(service: str) -> Path:
    return Path(services.__file__).parent / service / "migrations" / "versions"


def plumbing_tables() -> set[str]:
    """The tables shared.db itself defines for every database (outbox, inbox …), outside any models."""
    return {name for md in vars(db).values() if isinstance(md, sa.MetaData) for name in md.tables}


def test_every_model_is_mapped_on_the_one_base_with_its_services_metadata():
    for service in SERVICES:
        base = models(service).Base
        assert issubclass(base, db.Base) and base.__dict__.get("__abstract__") is True
        assert base.metadata is not db.Base.metadata
        assert base.metadata.naming_convention == db.NAMING_CONVENTION
        # a service's models: models.py and the models_<part>.py modules it imports
        mapped = [m.class_ for m in db.Base.registry.mappers
                  if m.class_.__module__.startswith(f"services.{service}.models")]
        assert mapped and all(issubclass(cls, base) for cls in mapped)
        assert {cls.__table__.name for cls in mapped} == set(base.metadata.tables)
    assert not db.Base.metadata.tables


def test_each_service_metadata_holds_only_its_own_tables():
    tables = {service: set(models(service).Base.metadata.tables) for service in SERVICES}
    for a, b in combinations(SERVICES, 2):
        assert not tables[a] & tables[b], (a, b)
    assert not plumbing_tables() & set().union(*tables.values())


def test_a_model_on_the_shared_base_itself_is_refused():
    with pytest.raises(TypeError, match="own abstract base"):
        class Stray(db.Base):
            __tablename__ = "stray"
            id: Mapped[int] = mapped_column(primary_key=True)
    assert "stray" not in db.Base.metadata.tables


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
@pytest.mark.parametrize("service", SERVICES)
def test_migrations_make_the_models_tables_and_no_other_services(service, backend, tmp_path, request):
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / service}.db"
    else:
        url = request.getfixturevalue("postgres").new(service)
    metadata, shared = models(service).Base.metadata, plumbing_tables()
    engine = db.make_engine(url)
    try:
        db.migrate(engine, versions(service))
        with engine.connect() as conn:
            present = set(sa.inspect(conn).get_table_names()) - {"alembic_version"}
            assert set(metadata.tables) <= present and present - set(metadata.tables) <= shared

            def own(obj, name, type_, reflected, compare_to):
                table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
                return table not in shared

            context = MigrationContext.configure(conn, opts={"include_object": own})
            assert compare_metadata(context, metadata) == [], "models.py and the migrations differ"
    finally:
        engine.dispose()
