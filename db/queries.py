"""Every SQL statement the service runs. Each one filters by the owner's id.

Reads return asyncpg records (no ORM objects on the hot path); statement text is
built only from the whitelists below, so asyncpg's per-connection prepared
statement cache sees a small, fixed set of statements.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from db.engine import Database

# A task's columns (db/tables.py), in the order every statement here returns them first:
# Task.from_row (schema/types.py) pairs a row's values with these names, and
# tests/unit/test_task_shape.py checks them against the table, GraphQL and REST.
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
# The columns a client sets, in TASK_COLUMN_NAMES order; the rest the database sets.
WRITABLE_COLUMNS = ("title", "description", "completed", "priority", "due_date")

# Live updates (db/live.py): each write announces the change it made. The payload is a
# JSON object built by the writing statement itself,
#   {"id": <event id from task_change_seq>, "user_id", "kind", "at", "task_id", "task"}
# where `task` is the row after the change (without user_id), left out for deletions
# and when the whole payload would reach PostgreSQL's 8000-byte limit (subscribers are
# then told to refetch the task by its id). Each announced write has two forms
# (`Announced`): by default the statement returns the payload as its last column and
# db/announce.py sends it after the commit, batched; with Database.announcer None
# (LIVE_ANNOUNCE=in_transaction) the statement calls pg_notify itself, in the write's
# transaction: sent at commit, never for a write that rolled back. With Database.announce
# off (LIVE_UPDATES=false) the plain statements run instead.
CHANGES_CHANNEL = "task_changes"
# Not a change: announcements were lost (db/announce.py); every listener resyncs.
MISSED = '{"missed":true}'
NOTIFY_PAYLOAD_LIMIT = 8000  # bytes; pg_notify refuses 8000 and more
_EVENT_HEAD = "'id', c.event_id, 'user_id', c.user_id, 'kind', c.kind, 'at', c.at, 'task_id', c.id"
_EVENT_TASK = (
    "json_build_object("
    + ", ".join(f"'{name}', c.{name}" for name in TASK_COLUMN_NAMES if name != "user_id")
    + ")"
)


@dataclass(frozen=True, slots=True)
class Announced:
    """An announced write's two statements: `after_commit` returns the payload as the
    column `announcement`; `in_transaction` calls pg_notify with it."""

    after_commit: str
    in_transaction: str


def _announcing(write: str, kind: str, *, with_task: bool = True, ctes: str = "") -> Announced:
    """`write` (an INSERT, UPDATE or DELETE ... RETURNING the task columns, or only id
    and user_id when not `with_task`) returning the same rows, plus a last column: the
    announcement of each change, or the void result of sending it. `kind` is an SQL
    expression over the written row (`changed`). MATERIALIZED: nextval and the clock
    run once per row; nextval after the write, so one task's ids rise in commit order."""
    head = f"json_build_object({_EVENT_HEAD})::text"
    body = f"json_build_object({_EVENT_HEAD}, 'task', {_EVENT_TASK})::text" if with_task else head
    columns = ", ".join(f"c.{name}" for name in TASK_COLUMN_NAMES) if with_task else "c.id"
    payload = f"CASE WHEN octet_length(p.body) < {NOTIFY_PAYLOAD_LIMIT} THEN p.body ELSE {head} END"

    def statement(last_column: str) -> str:
        return f"""
        WITH {ctes}changed AS ({write}),
        c AS MATERIALIZED (
            SELECT changed.*, nextval('task_change_seq') AS event_id, clock_timestamp() AS at,
                   {kind} AS kind
            FROM changed
        )
        SELECT {columns}, {last_column}
        FROM c, LATERAL (SELECT {body} AS body) AS p
        """

    return Announced(
        after_commit=statement(f"{payload} AS announcement"),
        in_transaction=statement(f"pg_notify('{CHANGES_CHANNEL}', {payload}) AS announced"),
    )


async def _write(db: Database, plain: str, announced: Announced, *args: Any) -> asyncpg.Record | None:
    """Run a write: `plain` when writes are not announced, else `announced` in the
    Database's form, sending the announcement after the commit when that is the form."""
    if not db.announce:
        return await db.fetchrow(plain, *args)
    announcer = db.announcer
    if announcer is None:
        return await db.fetchrow(announced.in_transaction, *args)
    row = await db.fetchrow(announced.after_commit, *args)
    if row is not None:
        await announcer.announce(row["announcement"])
    return row


_QUALIFIED_TASK_COLUMNS = ", ".join(f"t.{name}" for name in TASK_COLUMN_NAMES)
# A write that changed `completed` is announced as completed/uncompleted (by the new
# value); any other update as updated.
_COMPLETION_KIND = (
    "CASE WHEN changed.completed IS NOT DISTINCT FROM changed.was_completed THEN 'updated'"
    " WHEN changed.completed THEN 'completed' ELSE 'uncompleted' END"
)
# The row as it was, locked first: its `completed` is the value this write changes.
_OLD_ROW = "(SELECT id, completed FROM tasks WHERE id = $1 AND user_id = $2 FOR UPDATE) AS old"

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


_OWNER_CTE = """owner AS (
            INSERT INTO users AS u (id, email, name) VALUES ($1, $2, $3)
            ON CONFLICT (id) DO UPDATE
                SET email = COALESCE(EXCLUDED.email, u.email),
                    name = COALESCE(EXCLUDED.name, u.name),
                    updated_at = now()
                WHERE (u.email, u.name) IS DISTINCT FROM
                      (COALESCE(EXCLUDED.email, u.email), COALESCE(EXCLUDED.name, u.name))
        )"""
# $1-$3 are the owner's (id, email, name); the writable columns follow from $4.
_INSERT_TASK = f"""INSERT INTO tasks (user_id, {", ".join(WRITABLE_COLUMNS)})
        VALUES ($1, {", ".join(f"${n}" for n in range(4, 4 + len(WRITABLE_COLUMNS)))})
        RETURNING {TASK_COLUMNS}"""
_INSERT = f"WITH {_OWNER_CTE}\n        {_INSERT_TASK}"
_INSERT_ANNOUNCED = _announcing(_INSERT_TASK, "'created'", ctes=f"{_OWNER_CTE},\n        ")


async def create_task(
    db: Database,
    owner: tuple[str, str | None, str | None],
    values: Mapping[str, Any],
) -> asyncpg.Record:
    """Insert a task (`values` holds every writable column), creating or refreshing its
    owner's row in the same statement."""
    values_in_order = (values[column] for column in WRITABLE_COLUMNS)
    row = await _write(db, _INSERT, _INSERT_ANNOUNCED, *owner, *values_in_order)
    assert row is not None  # INSERT ... RETURNING always returns the row
    return row


async def update_task(
    db: Database, owner_id: str, task_id: int, values: Mapping[str, Any]
) -> asyncpg.Record | None:
    columns = tuple(c for c in WRITABLE_COLUMNS if c in values)
    plain, announced = _update_statements(columns)
    return await _write(db, plain, announced, task_id, owner_id, *(values[c] for c in columns))


@functools.cache
def _update_statements(columns: tuple[str, ...]) -> tuple[str, Announced]:
    """update_task's statements for one set of columns (at most 2^5 sets: built once)."""
    assignments = ", ".join(f"{c} = ${i}" for i, c in enumerate(columns, start=3))
    plain = (
        f"UPDATE tasks SET {assignments}, updated_at = now()"
        f" WHERE id = $1 AND user_id = $2 RETURNING {TASK_COLUMNS}"
    )
    if "completed" in columns:
        announced = _announcing(
            f"UPDATE tasks AS t SET {assignments}, updated_at = now() FROM {_OLD_ROW}"
            f" WHERE t.id = old.id AND t.user_id = $2"
            f" RETURNING {_QUALIFIED_TASK_COLUMNS}, old.completed AS was_completed",
            _COMPLETION_KIND,
        )
    else:
        announced = _announcing(plain, "'updated'")
    return plain, announced


async def toggle_task_completion(
    db: Database, owner_id: str, task_id: int, completed: bool | None
) -> asyncpg.Record | None:
    """Set `completed`, or flip it when `completed` is None."""
    if completed is None:  # a flip always changes it: no need to read the old value
        return await _write(db, _TOGGLE, _TOGGLE_ANNOUNCED, task_id, owner_id)
    return await _write(db, _SET_COMPLETED, _SET_COMPLETED_ANNOUNCED, task_id, owner_id, completed)


_TOGGLE = (
    "UPDATE tasks SET completed = NOT completed, updated_at = now()"
    f" WHERE id = $1 AND user_id = $2 RETURNING {TASK_COLUMNS}"
)
_SET_COMPLETED = (
    "UPDATE tasks SET completed = $3, updated_at = now()"
    f" WHERE id = $1 AND user_id = $2 RETURNING {TASK_COLUMNS}"
)
_TOGGLE_ANNOUNCED = _announcing(
    _TOGGLE, "CASE WHEN changed.completed THEN 'completed' ELSE 'uncompleted' END"
)
_SET_COMPLETED_ANNOUNCED = _announcing(
    f"UPDATE tasks AS t SET completed = $3, updated_at = now() FROM {_OLD_ROW}"
    " WHERE t.id = old.id AND t.user_id = $2"
    f" RETURNING {_QUALIFIED_TASK_COLUMNS}, old.completed AS was_completed",
    _COMPLETION_KIND,
)


async def delete_task(db: Database, owner_id: str, task_id: int) -> bool:
    return await _write(db, _DELETE, _DELETE_ANNOUNCED, task_id, owner_id) is not None


_DELETE = "DELETE FROM tasks WHERE id = $1 AND user_id = $2 RETURNING id"
_DELETE_ANNOUNCED = _announcing(
    "DELETE FROM tasks WHERE id = $1 AND user_id = $2 RETURNING id, user_id", "'deleted'", with_task=False
)


async def get_user(db: Database, user_id: str) -> asyncpg.Record | None:
    return await db.fetchrow("SELECT id, email, name FROM users WHERE id = $1", user_id)


async def ping(db: Database) -> None:
    await db.fetchval("SELECT 1")


def list_json_statement(
    flt: TaskFilter,
    *,
    sort: str,
    descending: bool,
    limit: int,
    after: tuple[Any, int] | None = None,
    offset: int = 0,
    node: str,
    row_node: str | None,
    guard: str,
    sort_values: bool,
) -> tuple[str, list[Any]]:
    """list_statement's page (`limit` rows, the last one only counted) as one row:
    `n` (rows found), `nodes` (a JSON array of `node`, an SQL expression over a task's
    columns, for the first `limit - 1` rows in the page's order), `node_texts` (each
    row's `row_node` as text, or null), `sort_values` and `ids` (for cursors, or null)
    and `exact` (`guard` held for every row). `node`, `row_node` and `guard` come from
    schema/fast/page_json.py's whitelist only."""
    sql, args = list_statement(flt, sort=sort, descending=descending, limit=limit, after=after, offset=offset)
    args.append(limit - 1)
    size = f"${len(args)}"
    direction = "DESC" if descending else "ASC"
    order = f"{_SORT_KEYS[(sort, descending)]} {direction}, id {direction}"
    kept = f"FILTER (WHERE r <= {size})"
    texts = f"array_agg(({row_node})::text ORDER BY r) {kept}" if row_node else "NULL::text[]"
    cursors = (
        f"array_agg(sort_value ORDER BY r) {kept} AS sort_values, array_agg(id ORDER BY r) {kept} AS ids"
        if sort_values
        else "NULL AS sort_values, NULL::bigint[] AS ids"
    )
    return (
        f"SELECT count(*)::int AS n, coalesce(json_agg({node} ORDER BY r) {kept}, '[]')::text AS nodes,"
        f" {texts} AS node_texts, {cursors}, coalesce(bool_and({guard}), true) AS exact"
        f" FROM (SELECT *, row_number() OVER (ORDER BY {order}) AS r FROM ({sql}) t) t",
        args,
    )
