"""Migrations: empty -> head, head -> base -> head, and no drift from the models."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from alembic import command
from db.migrations import alembic_config, run_migrations
from db.url import DatabaseURL
from tests.support import db_fetch

TABLES_SQL = "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"


def test_upgrade_downgrade_upgrade_and_no_drift(fresh_database: Callable[[], DatabaseURL]) -> None:
    url = fresh_database()
    assert db_fetch(url, TABLES_SQL) == []

    asyncio.run(run_migrations(url))
    tables = {r["tablename"] for r in db_fetch(url, TABLES_SQL)}
    assert tables == {"alembic_version", "tasks", "users"}
    command.check(alembic_config(url))  # raises when the models and the database differ

    asyncio.run(run_migrations(url, "base", downgrade=True))
    assert [r["tablename"] for r in db_fetch(url, TABLES_SQL)] == ["alembic_version"]
    assert db_fetch(url, "SELECT 1 FROM pg_type WHERE typname = 'task_priority'") == []

    asyncio.run(run_migrations(url))
    command.check(alembic_config(url))


def test_concurrent_start_ups_migrate_once(fresh_database: Callable[[], DatabaseURL]) -> None:
    url = fresh_database()

    async def many() -> None:
        await asyncio.gather(*(run_migrations(url) for _ in range(4)))

    asyncio.run(many())
    assert len(db_fetch(url, "SELECT version_num FROM alembic_version")) == 1


def test_database_enforces_title_rules(database: DatabaseURL) -> None:
    """The rules hold even for writes that bypass the API."""
    import asyncpg
    import pytest

    for title in ("   ", " padded ", "x" * 201):
        with pytest.raises((asyncpg.CheckViolationError, asyncpg.StringDataRightTruncationError)):
            db_fetch(
                database,
                "WITH u AS (INSERT INTO users (id) VALUES ('db-rules') ON CONFLICT DO NOTHING)"
                " INSERT INTO tasks (user_id, title) VALUES ('db-rules', $1)",
                title,
            )
