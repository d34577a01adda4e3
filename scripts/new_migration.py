"""Write a new Alembic migration for one service by comparing its models with its migrations.

    .venv/bin/python scripts/new_migration.py intake "add supplement fields"
"""
import importlib
import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config

from shared.db import make_engine, migrate

ROOT = Path(__file__).resolve().parents[1]


def main(service: str, message: str) -> None:
    models = importlib.import_module(f"services.{service}.models")
    versions = ROOT / "services" / service / "migrations" / "versions"
    versions.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/current.db")
        migrate(engine, versions)
        cfg = Config()
        cfg.set_main_option("script_location", str(ROOT / "shared" / "migrations"))
        cfg.set_main_option("version_locations", str(versions))
        cfg.set_main_option("path_separator", "os")
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            cfg.attributes["target_metadata"] = models.Base.metadata
            heads = [p for p in versions.glob("*.py")]
            rev_id = f"{len(heads) + 1:04d}"
            script = command.revision(cfg, message=message, autogenerate=True, rev_id=rev_id,
                                      version_path=str(versions))
    if rev_id == "0001":  # a service's first migration also creates the outbox and inbox
        path = Path(script.path)
        text = path.read_text()
        text = text.replace("import sqlalchemy as sa\n",
                            "import sqlalchemy as sa\n\nfrom shared.db import create_plumbing_tables\n", 1)
        text = text.replace("def upgrade():\n", "def upgrade():\n    create_plumbing_tables(op)\n", 1)
        path.write_text(text)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
