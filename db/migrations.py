"""Schema migrations (Alembic), applied under an advisory lock.

Kept apart from the pool: a serving process that does not migrate never imports
Alembic or SQLAlchemy (about 26 MB of resident memory per worker).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
from alembic.config import Config
from sqlalchemy.ext.asyncio import create_async_engine

from alembic import command
from db.url import DatabaseURL

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Any constant shared by every instance of this service; chosen once, never change it.
MIGRATION_LOCK_KEY = 0x7A5C_0DE1


def alembic_config(url: DatabaseURL | None = None) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    if url is not None:
        config.attributes["database_url"] = url
    return config


async def run_migrations(url: DatabaseURL, revision: str = "head", *, downgrade: bool = False) -> None:
    """Upgrade (or downgrade) to `revision` while holding an advisory lock, so
    instances starting together take turns and the later ones find nothing to do."""
    engine = create_async_engine(
        "postgresql+asyncpg://", async_creator=lambda: asyncpg.connect(url.asyncpg_dsn, **url.connect_args)
    )
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})")
            try:
                await conn.run_sync(_migrate, revision, downgrade)
                await conn.commit()
            finally:
                await conn.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})")
                await conn.commit()
    finally:
        await engine.dispose()


def _migrate(sync_conn: Any, revision: str, downgrade: bool) -> None:
    config = alembic_config()
    config.attributes["connection"] = sync_conn
    (command.downgrade if downgrade else command.upgrade)(config, revision)
