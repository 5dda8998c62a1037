"""Every listing reads only its owner's rows: EXPLAIN each query shape on a seeded table.

A plan fails if it sequentially scans `tasks` or uses an index scan whose condition
is not bounded by `user_id`. This is about plan shape, not timing.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from db import queries
from db.migrations import run_migrations
from db.url import DatabaseURL

USERS = 400
TASKS_PER_USER = 60
HEAVY_TASKS = 20_000
COLUMNS = [
    "user_id", "title", "description", "completed", "priority", "due_date", "created_at", "updated_at",
]  # fmt: skip
SORTS = ["created", "updated", "title", "due_date", "priority"]
CURSOR_VALUES = {
    "created": datetime(2026, 6, 1, tzinfo=UTC),
    "updated": datetime(2026, 6, 1, tzinfo=UTC),
    "title": "task 5",
    "due_date": None,
    "priority": "medium",
}


async def _seed(url: DatabaseURL) -> None:
    rng = random.Random(7)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    conn = await asyncpg.connect(url.asyncpg_dsn)
    try:
        users = [f"plan-user-{i}" for i in range(USERS)] + ["plan-heavy"]
        await conn.copy_records_to_table("users", records=[(u,) for u in users], columns=["id"])

        def rows() -> Iterator[tuple[Any, ...]]:
            for user in users:
                for i in range(HEAVY_TASKS if user == "plan-heavy" else TASKS_PER_USER):
                    created = base + timedelta(minutes=rng.randrange(500_000))
                    due = None if rng.random() < 0.3 else created + timedelta(days=rng.randrange(60))
                    yield (user, f"task {i}", rng.choice([None, "notes"]), rng.random() < 0.4,
                           rng.choice(["low", "medium", "high"]), due, created, created)  # fmt: skip

        await conn.copy_records_to_table(
            "tasks",
            records=rows(),
            columns=COLUMNS,
        )
        await conn.execute("ANALYZE users; ANALYZE tasks")
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def seeded(fresh_database: Callable[[], DatabaseURL]) -> DatabaseURL:
    url = fresh_database()
    asyncio.run(run_migrations(url))
    asyncio.run(_seed(url))
    return url


def _shapes() -> Iterator[tuple[str, dict[str, Any]]]:
    statuses = {"all": None, "pending": False, "completed": True}
    for (status, completed), sort, desc, search, cursor, user in itertools.product(
        statuses.items(), SORTS, (False, True), (None, "task 1"), (False, True),
        ("plan-user-3", "plan-heavy"),
    ):  # fmt: skip
        flt = queries.TaskFilter(user, completed, search)
        after = (CURSOR_VALUES[sort], 12345) if cursor else None
        name = f"{user}-{status}-{sort}-{'desc' if desc else 'asc'}-{search}-{cursor}"
        yield name, {"flt": flt, "sort": sort, "descending": desc, "limit": 51, "after": after}


SHAPES = list(_shapes())


INDEX_SCANS = ("Index Scan", "Index Only Scan", "Bitmap Index Scan")


def _offending_nodes(plan: dict[str, Any]) -> Iterator[str]:
    node_type = plan.get("Node Type", "")
    if plan.get("Relation Name") == "tasks" or node_type == "Bitmap Index Scan":
        condition = plan.get("Index Cond", "")
        if node_type == "Seq Scan":
            yield "sequential scan on tasks"
        elif node_type in INDEX_SCANS and "user_id =" not in condition:
            yield f"{node_type} on {plan.get('Index Name')} not bounded by user_id: {condition!r}"
    for child in plan.get("Plans", []):
        yield from _offending_nodes(child)


async def _explain_all(url: DatabaseURL) -> dict[str, list[str]]:
    conn = await asyncpg.connect(url.asyncpg_dsn)
    problems: dict[str, list[str]] = {}
    try:
        for name, shape in SHAPES:
            for sql, args in (
                queries.list_statement(**shape),
                queries.count_statement(shape["flt"]),
            ):
                raw = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
                plan = json.loads(raw)[0]["Plan"]
                found = list(_offending_nodes(plan))
                if found:
                    problems[f"{name}: {sql}"] = found
    finally:
        await conn.close()
    return problems


def test_no_list_query_reads_other_users_rows(seeded: DatabaseURL) -> None:
    assert len(SHAPES) == 3 * 5 * 2 * 2 * 2 * 2
    problems = asyncio.run(_explain_all(seeded))
    assert problems == {}


def test_the_checker_catches_a_full_scan(seeded: DatabaseURL) -> None:
    """The check above is not vacuous: an unbounded query is flagged."""

    async def explain() -> list[str]:
        conn = await asyncpg.connect(seeded.asyncpg_dsn)
        try:
            raw = await conn.fetchval(
                "EXPLAIN (FORMAT JSON)"
                " SELECT * FROM tasks WHERE title ILIKE '%x%' ORDER BY created_at LIMIT 5"
            )
        finally:
            await conn.close()
        return list(_offending_nodes(json.loads(raw)[0]["Plan"]))

    assert asyncio.run(explain())
