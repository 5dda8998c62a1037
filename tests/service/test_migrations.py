"""Migrations: empty -> head, head -> base -> head, and no drift from the models."""

from __future__ import annotations

import asyncio
import uuid
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


COLUMNS_SQL = """
SELECT column_name, data_type, udt_name, character_maximum_length AS length,
       is_nullable = 'YES' AS nullable, is_identity = 'YES' AS identity, column_default
FROM information_schema.columns
WHERE table_schema = 'public' AND table_name = $1
ORDER BY ordinal_position
"""


def _columns(database: DatabaseURL, table: str) -> dict[str, tuple[object, ...]]:
    return {
        r["column_name"]: (r["udt_name"], r["length"], r["nullable"], r["identity"], r["column_default"])
        for r in db_fetch(database, COLUMNS_SQL, table)
    }


def test_tables_are_as_specified(database: DatabaseURL) -> None:
    assert _columns(database, "users") == {
        "id": ("text", None, False, False, None),
        "email": ("text", None, True, False, None),
        "name": ("text", None, True, False, None),
        "created_at": ("timestamptz", None, False, False, "now()"),
        "updated_at": ("timestamptz", None, False, False, "now()"),
    }
    assert _columns(database, "tasks") == {
        "id": ("int8", None, False, True, None),
        "user_id": ("text", None, False, False, None),
        "title": ("varchar", 200, False, False, None),
        "description": ("varchar", 1000, True, False, None),
        "completed": ("bool", None, False, False, "false"),
        "priority": ("task_priority", None, False, False, "'medium'::task_priority"),
        "due_date": ("timestamptz", None, True, False, None),
        "created_at": ("timestamptz", None, False, False, "now()"),
        "updated_at": ("timestamptz", None, False, False, "now()"),
    }
    labels = db_fetch(
        database,
        "SELECT enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid"
        " WHERE t.typname = 'task_priority' ORDER BY e.enumsortorder",
    )
    assert [r["enumlabel"] for r in labels] == ["low", "medium", "high"]
    keys = db_fetch(
        database,
        "SELECT tc.table_name, kcu.column_name FROM information_schema.table_constraints tc"
        " JOIN information_schema.key_column_usage kcu USING (constraint_schema, constraint_name)"
        " WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = 'public'"
        " AND tc.table_name IN ('users', 'tasks') ORDER BY tc.table_name",
    )
    assert keys == [
        {"table_name": "tasks", "column_name": "id"},
        {"table_name": "users", "column_name": "id"},
    ]
    [fk] = db_fetch(
        database,
        "SELECT confrelid::regclass::text AS target, confdeltype::text FROM pg_constraint"
        " WHERE conrelid = 'tasks'::regclass AND contype = 'f'",
    )
    assert fk == {"target": "users", "confdeltype": "c"}  # ON DELETE CASCADE


def test_deleting_a_user_deletes_their_tasks(database: DatabaseURL) -> None:
    user = f"cascade-{uuid.uuid4().hex[:8]}"
    db_fetch(
        database,
        "WITH u AS (INSERT INTO users (id) VALUES ($1)) INSERT INTO tasks (user_id, title) VALUES ($1, 't')",
        user,
    )
    assert len(db_fetch(database, "SELECT id FROM tasks WHERE user_id = $1", user)) == 1
    db_fetch(database, "DELETE FROM users WHERE id = $1", user)
    assert db_fetch(database, "SELECT id FROM tasks WHERE user_id = $1", user) == []
