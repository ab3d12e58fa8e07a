"""Alembic migrations per service, applied at start.

Each service keeps `services/<svc>/migrations/` with an `env.py` that calls `run_env(metadata)`.
The infrastructure tables of `shared.infra` are part of every service's target metadata.

    uv run python -m shared.migrate revision clients "add leads"   # autogenerate against a scratch SQLite
    uv run python -m shared.migrate upgrade clients                 # against the configured database
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import zlib
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection

from shared.db import Database, create_engine
from shared.infra import InfraBase

ROOT = Path(__file__).resolve().parents[3]


def migrations_dir(service: str) -> Path:
    return ROOT / "services" / service / "migrations"


def alembic_config(service: str, url: str = "sqlite://") -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir(service)))
    cfg.set_main_option("sqlalchemy.url", url)
    cfg.attributes["service"] = service
    return cfg


def run_env(metadata: MetaData) -> None:
    """Body of each service's migrations/env.py."""
    targets = [metadata, InfraBase.metadata]
    connection: Connection | None = context.config.attributes.get("connection")
    if connection is None:  # CLI use: build our own engine from the configured URL
        url = context.config.get_main_option("sqlalchemy.url")

        async def _run() -> None:
            engine = create_engine(url)
            async with engine.begin() as conn:
                await conn.run_sync(_configure_and_run, targets)
            await engine.dispose()

        asyncio.run(_run())
    else:
        _configure_and_run(connection, targets)


def _configure_and_run(connection: Connection, targets: list[MetaData]) -> None:
    context.configure(connection=connection, target_metadata=targets,
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def upgrade(db: Database, service: str) -> None:
    """Bring the service's database to the newest revision; replicas starting together take turns."""
    cfg = alembic_config(service, db.url)

    def _upgrade(connection: Connection) -> None:
        if connection.dialect.name == "postgresql":
            lock_id = zlib.crc32(f"zabota-migrate-{service}".encode())
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id})
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")

    async with db.engine.begin() as conn:
        await conn.run_sync(_upgrade)


def _revision(service: str, message: str) -> None:
    """Autogenerate a revision against a scratch SQLite database brought to head first."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/scratch.db"
        cfg = alembic_config(service, url)
        command.upgrade(cfg, "head")
        number = len(list((migrations_dir(service) / "versions").glob("*.py"))) + 1
        command.revision(cfg, message=message, autogenerate=True, rev_id=f"{number:04d}")


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("revision", "upgrade"):
        print(__doc__)
        return 2
    verb, service = argv[0], argv[1]
    if verb == "revision":
        _revision(service, argv[2] if len(argv) > 2 else "change")
    else:
        from shared.settings import Settings

        settings = Settings.from_env(service)

        async def _up() -> None:
            db = Database(settings.database_url)
            await upgrade(db, service)
            await db.dispose()

        asyncio.run(_up())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
