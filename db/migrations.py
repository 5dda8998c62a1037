"""Schema migrations (Alembic), applied in one transaction under a transaction-scoped
advisory lock: instances starting together take turns, the later ones find nothing to
do, and a lock that ends with its transaction is safe behind a transaction-mode pooler
(a session-level lock would stay with whichever server connection the pooler chose).

Behind such a pooler, SQLAlchemy's asyncpg dialect still prepares named statements;
they get unique names so that two instances can never collide on one server
connection. DATABASE_DIRECT_URL, when set, bypasses the pooler altogether.

Kept apart from the pool: a serving process that does not migrate never imports
Alembic or SQLAlchemy (about 26 MB of resident memory per worker).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import asyncpg
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

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


def migration_engine(url: DatabaseURL, *, pooled: bool) -> AsyncEngine:
    """A SQLAlchemy engine on `url`; pooler-safe when `pooled`."""
    statement_cache = 0 if pooled else 100

    async def connect() -> asyncpg.Connection:
        return await asyncpg.connect(
            url.asyncpg_dsn, statement_cache_size=statement_cache, **url.connect_args
        )

    def creator() -> Any:
        # As create_async_engine(async_creator=...) does, plus the dialect's options.
        options: dict[str, Any] = {"async_creator_fn": connect}
        if pooled:
            options["prepared_statement_cache_size"] = 0
            options["prepared_statement_name_func"] = lambda: f"__todo_api_{uuid.uuid4().hex}__"
        return engine.sync_engine.dialect.dbapi.connect(**options)  # type: ignore[union-attr]

    engine = create_async_engine("postgresql+asyncpg://", creator=creator)
    return engine


async def run_migrations(
    url: DatabaseURL, revision: str = "head", *, downgrade: bool = False, pooled: bool | None = None
) -> None:
    """Upgrade (or downgrade) to `revision` in one transaction under the lock."""
    engine = migration_engine(url, pooled=url.pooled if pooled is None else pooled)
    try:
        async with engine.connect() as conn:
            # Begins the transaction that Alembic then runs in (it sees an external one).
            await conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
            await conn.run_sync(_migrate, revision, downgrade)
            await conn.commit()
    finally:
        await engine.dispose()


def _migrate(sync_conn: Any, revision: str, downgrade: bool) -> None:
    config = alembic_config()
    config.attributes["connection"] = sync_conn
    (command.downgrade if downgrade else command.upgrade)(config, revision)
