"""Alembic environment.

The service calls migrations with a live connection (config.attributes["connection"]);
the `alembic` command line gets its database from DATABASE_URL like the service does.
"""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from db.tables import metadata
from db.url import DatabaseURL

config = context.config


def _configure_and_run(connection: Any) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        compare_server_default=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _database_url() -> DatabaseURL:
    url = config.attributes.get("database_url")
    if url is None:
        from api.settings import load_settings

        settings = load_settings()
        if settings.database_url is None:
            raise SystemExit("DATABASE_URL is not set; `todo-api migrate` also runs migrations.")
        url = settings.database_url
    return url  # type: ignore[no-any-return]


async def _run_online() -> None:
    from db.migrations import migration_engine

    url = _database_url()
    engine = migration_engine(url, pooled=url.pooled)
    async with engine.connect() as connection:
        await connection.run_sync(_configure_and_run)
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Offline (--sql) migrations are not supported; run them against a database.")

existing = config.attributes.get("connection")
if existing is not None:
    _configure_and_run(existing)
else:
    asyncio.run(_run_online())
