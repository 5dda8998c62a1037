"""Connections: the asyncpg pool that serves requests, and the migration runner."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg
from alembic.config import Config
from sqlalchemy.ext.asyncio import create_async_engine

from alembic import command
from db.url import DatabaseURL

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Any constant shared by every instance of this service; chosen once, never change it.
MIGRATION_LOCK_KEY = 0x7A5C_0DE1

if TYPE_CHECKING:
    Pool: TypeAlias = asyncpg.Pool[asyncpg.Record]
else:
    Pool = asyncpg.Pool


async def create_pool(url: DatabaseURL, *, min_size: int, max_size: int) -> Pool:
    return await asyncpg.create_pool(
        url.asyncpg_dsn,
        min_size=min_size,
        max_size=max_size,
        command_timeout=30,
        server_settings={"application_name": "todo-api"},
        reset=_keep_session,
    )


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Skip asyncpg's reset on release (RESET ALL, UNLISTEN *, …: a round trip per
    request). Nothing here changes session state: no SET, LISTEN, advisory locks or
    open cursors on pooled connections."""


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
        "postgresql+asyncpg://", async_creator=lambda: asyncpg.connect(url.asyncpg_dsn)
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
