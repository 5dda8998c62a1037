"""Every SQL statement the service runs. Each one filters by the owner's id.

Reads return asyncpg records (no ORM objects on the hot path); statement text is
built only from the whitelists below, so asyncpg's per-connection prepared
statement cache sees a small, fixed set of statements.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from db.engine import Database

# Rows of tasks start with these columns, in this order (schema.types.Task.from_row reads
# them by position).
TASK_COLUMN_NAMES = (
    "id",
    "user_id",
    "title",
    "description",
    "completed",
    "priority",
    "due_date",
    "created_at",
    "updated_at",
)
TASK_COLUMNS = ", ".join(TASK_COLUMN_NAMES)
WRITABLE_COLUMNS = ("title", "description", "completed", "priority", "due_date")

# Sort name -> (key expression, its ascending/descending direction words).
# Tasks without a due date sort last in both orders, via the COALESCE sentinels;
# each expression matches an index in db/tables.py.
_SORT_KEYS: dict[tuple[str, bool], str] = {
    ("created", False): "created_at",
    ("created", True): "created_at",
    ("updated", False): "updated_at",
    ("updated", True): "updated_at",
    ("title", False): "lower(title)",
    ("title", True): "lower(title)",
    ("priority", False): "priority",
    ("priority", True): "priority",
    ("due_date", False): "COALESCE(due_date, 'infinity'::timestamptz)",
    ("due_date", True): "COALESCE(due_date, '-infinity'::timestamptz)",
}
# The cursor stores the raw value; compare it through the same expression.
_CURSOR_KEYS: dict[tuple[str, bool], str] = {
    ("due_date", False): "COALESCE($%d::timestamptz, 'infinity'::timestamptz)",
    ("due_date", True): "COALESCE($%d::timestamptz, '-infinity'::timestamptz)",
}
_RAW_SORT_VALUES = {
    "created": "created_at",
    "updated": "updated_at",
    "title": "lower(title)",
    "priority": "priority::text",
    "due_date": "due_date",
}


@dataclass(frozen=True, slots=True)
class TaskFilter:
    owner_id: str
    completed: bool | None = None
    search: str | None = None


def _where(flt: TaskFilter, args: list[Any]) -> str:
    args.append(flt.owner_id)
    clauses = [f"user_id = ${len(args)}"]
    if flt.completed is not None:
        args.append(flt.completed)
        clauses.append(f"completed = ${len(args)}")
    if flt.search:
        args.append("%" + _escape_like(flt.search) + "%")
        n = len(args)
        # title's column collation is "C" (for a locale-independent sort), under which ILIKE
        # folds only ASCII; the database's default collation folds the rest of Unicode.
        clauses.append(f'(title COLLATE "default" ILIKE ${n} OR description ILIKE ${n})')
    return " AND ".join(clauses)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_statement(
    flt: TaskFilter,
    *,
    sort: str,
    descending: bool,
    limit: int,
    after: tuple[Any, int] | None = None,
    offset: int = 0,
) -> tuple[str, list[Any]]:
    """The SQL and arguments of one page, with a `sort_value` column for cursors."""
    args: list[Any] = []
    where = _where(flt, args)
    key = _SORT_KEYS[(sort, descending)]
    if after is not None:
        value, task_id = after
        args.extend((value, task_id))
        cursor_key = _CURSOR_KEYS.get((sort, descending), "$%d") % (len(args) - 1)
        op = "<" if descending else ">"
        where += f" AND ({key}, id) {op} ({cursor_key}, ${len(args)})"
    direction = "DESC" if descending else "ASC"
    args.extend((limit, offset))
    sql = (
        f"SELECT {TASK_COLUMNS}, {_RAW_SORT_VALUES[sort]} AS sort_value FROM tasks"
        f" WHERE {where} ORDER BY {key} {direction}, id {direction}"
        f" LIMIT ${len(args) - 1} OFFSET ${len(args)}"
    )
    return sql, args


def count_statement(flt: TaskFilter) -> tuple[str, list[Any]]:
    args: list[Any] = []
    return f"SELECT count(*) FROM tasks WHERE {_where(flt, args)}", args


async def list_tasks(
    db: Database,
    flt: TaskFilter,
    *,
    sort: str,
    descending: bool,
    limit: int,
    after: tuple[Any, int] | None = None,
    offset: int = 0,
) -> list[asyncpg.Record]:
    sql, args = list_statement(flt, sort=sort, descending=descending, limit=limit, after=after, offset=offset)
    return await db.fetch(sql, *args)


async def count_tasks(db: Database, flt: TaskFilter) -> int:
    sql, args = count_statement(flt)
    count: int = await db.fetchval(sql, *args)
    return count


async def get_task(db: Database, owner_id: str, task_id: int) -> asyncpg.Record | None:
    return await db.fetchrow(
        f"SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1 AND user_id = $2", task_id, owner_id
    )


async def insert_task(
    db: Database,
    owner: tuple[str, str | None, str | None],
    values: Mapping[str, Any],
) -> asyncpg.Record:
    """Insert a task, creating or refreshing its owner's row in the same statement."""
    owner_id, email, name = owner
    row = await db.fetchrow(
        f"""
        WITH owner AS (
            INSERT INTO users AS u (id, email, name) VALUES ($1, $2, $3)
            ON CONFLICT (id) DO UPDATE
                SET email = COALESCE(EXCLUDED.email, u.email),
                    name = COALESCE(EXCLUDED.name, u.name),
                    updated_at = now()
                WHERE (u.email, u.name) IS DISTINCT FROM
                      (COALESCE(EXCLUDED.email, u.email), COALESCE(EXCLUDED.name, u.name))
        )
        INSERT INTO tasks (user_id, title, description, completed, priority, due_date)
        VALUES ($1, $4, $5, $6, $7, $8)
        RETURNING {TASK_COLUMNS}
        """,
        owner_id,
        email,
        name,
        values["title"],
        values["description"],
        values["completed"],
        values["priority"],
        values["due_date"],
    )
    assert row is not None  # INSERT ... RETURNING always returns the row
    return row


async def update_task(
    db: Database, owner_id: str, task_id: int, values: Mapping[str, Any]
) -> asyncpg.Record | None:
    columns: Sequence[str] = [c for c in WRITABLE_COLUMNS if c in values]
    assignments = ", ".join(f"{c} = ${i}" for i, c in enumerate(columns, start=3))
    return await db.fetchrow(
        f"UPDATE tasks SET {assignments}, updated_at = now()"
        f" WHERE id = $1 AND user_id = $2 RETURNING {TASK_COLUMNS}",
        task_id,
        owner_id,
        *(values[c] for c in columns),
    )


async def set_completed(
    db: Database, owner_id: str, task_id: int, completed: bool | None
) -> asyncpg.Record | None:
    """Set `completed`, or flip it when `completed` is None."""
    return await db.fetchrow(
        "UPDATE tasks SET completed = COALESCE($3, NOT completed), updated_at = now()"
        f" WHERE id = $1 AND user_id = $2 RETURNING {TASK_COLUMNS}",
        task_id,
        owner_id,
        completed,
    )


async def delete_task(db: Database, owner_id: str, task_id: int) -> bool:
    deleted = await db.fetchval(
        "DELETE FROM tasks WHERE id = $1 AND user_id = $2 RETURNING id", task_id, owner_id
    )
    return deleted is not None


async def get_user(db: Database, user_id: str) -> asyncpg.Record | None:
    return await db.fetchrow("SELECT id, email, name FROM users WHERE id = $1", user_id)


async def ping(db: Database) -> None:
    await db.fetchval("SELECT 1")
