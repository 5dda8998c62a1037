"""The listing suite's data: tasks with ties on every sort key, inserted in bulk, and the
order the contract promises, computed here from what the database holds."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from db.url import DatabaseURL
from tests.graphql.operations import create
from tests.support import LiveServer, db_fetch, hs_token, unique_user

SORTS = ("CREATED", "UPDATED", "TITLE", "DUE_DATE", "PRIORITY")
ORDERS = ("ASC", "DESC")
DEFAULT_ORDER = {"CREATED": "DESC", "UPDATED": "DESC", "TITLE": "ASC", "DUE_DATE": "ASC", "PRIORITY": "ASC"}
PRIORITY_RANK = {"low": 0, "medium": 1, "high": 2}

# A user's token and tasks: id -> (title, description, completed).
FilterUser = tuple[str, dict[int, tuple[str, str | None, bool]]]


def expected_order(rows: list[dict[str, Any]], sort: str, order: str) -> list[int]:
    """The contract's order, ties broken by id in the same direction."""
    desc = order == "DESC"
    if sort == "DUE_DATE":  # tasks without a due date come last in both orders
        dated = sorted(
            (r for r in rows if r["due_date"] is not None),
            key=lambda r: (r["due_date"], r["id"]),
            reverse=desc,
        )
        undated = sorted((r for r in rows if r["due_date"] is None), key=lambda r: r["id"], reverse=desc)
        return [r["id"] for r in dated + undated]
    keys: dict[str, Callable[[dict[str, Any]], Any]] = {
        "CREATED": lambda r: r["created_at"],
        "UPDATED": lambda r: r["updated_at"],
        "TITLE": lambda r: r["title"].lower().encode(),  # ASCII titles: byte-wise, case-insensitive
        "PRIORITY": lambda r: PRIORITY_RANK[r["priority"]],
    }
    key = keys[sort]
    return [r["id"] for r in sorted(rows, key=lambda r: (key(r), r["id"]), reverse=desc)]


# Titles whose lower-cased forms tie, and punctuation a locale-aware collation would ignore.
TITLES = ("alpha", "Alpha", "ALPHA", "beta", "Beta", "a_b", "a-b", "A b", "zeta", "Zeta", "100", "_u", "~t")
BASE = datetime(2024, 1, 1, tzinfo=UTC)


def spec(i: int) -> dict[str, Any]:
    """A task with many ties on every sort key."""
    return {
        "title": TITLES[i % len(TITLES)],
        "description": f"note {i}" if i % 3 == 0 else None,
        "completed": i % 4 == 0,
        "priority": ("low", "medium", "high")[(i // 2) % 3],
        "due_date": None if i % 5 == 0 else BASE + timedelta(days=i % 6),
        "created_at": BASE - timedelta(minutes=i // 3),
        "updated_at": BASE - timedelta(minutes=(i * 7) % 40),
    }


def insert_tasks(database: DatabaseURL, user_id: str, specs: list[dict[str, Any]]) -> list[int]:
    """Insert straight into the database (the user's row must exist already)."""
    columns = ("title", "description", "completed", "priority", "due_date", "created_at", "updated_at")
    rows = db_fetch(
        database,
        """
        INSERT INTO tasks (user_id, title, description, completed, priority, due_date, created_at, updated_at)
        SELECT $1, t.title, t.description, t.completed, t.priority::task_priority,
               t.due_date, t.created_at, t.updated_at
        FROM unnest($2::text[], $3::text[], $4::bool[], $5::text[],
                    $6::timestamptz[], $7::timestamptz[], $8::timestamptz[])
             AS t(title, description, completed, priority, due_date, created_at, updated_at)
        RETURNING id
        """,
        user_id,
        *([s[c] for s in specs] for c in columns),
    )
    return [r["id"] for r in rows]


def user_with_tasks(server: LiveServer, database: DatabaseURL, count: int, prefix: str) -> tuple[str, str]:
    """A fresh user with `count` tasks: one created through the API (so the users
    row exists), the rest inserted directly with tie-heavy values."""
    user = unique_user(prefix)
    token = hs_token(user)
    with server.client(token) as c:
        create(c, title="Seed", priority="HIGH", dueDate="2024-01-03T00:00:00+00:00")
    insert_tasks(database, user, [spec(i) for i in range(count - 1)])
    return user, token
