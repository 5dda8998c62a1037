"""The floor: the least code that can serve the REST endpoints over the same SQL.

A raw ASGI app (no framework, no auth, no validation) on an asyncpg pool,
serialising rows with orjson. The owner is whatever the `X-User-Id` header (or
the `user` query parameter) says. It exists only as the practical lower bound
the real service is measured against; never expose it.

Run it the way the bench does:

    FLOOR_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/todo_bench \\
        uv run uvicorn bench.floor_app:app --port 8100 --workers 2 --no-access-log

The statements mirror db/queries.py (list, get, insert, toggle), so the
database does the same work for both targets.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qs

import asyncpg
import orjson

TASK_COLUMNS = "id, user_id, title, description, completed, priority, due_date, created_at, updated_at"
LIST_SQL = (
    f"SELECT {TASK_COLUMNS}, created_at AS sort_value FROM tasks"
    " WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
)
COUNT_SQL = "SELECT count(*) FROM tasks WHERE user_id = $1"
GET_SQL = f"SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1 AND user_id = $2"
INSERT_SQL = f"""
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
        """
TOGGLE_SQL = (
    "UPDATE tasks SET completed = COALESCE($3, NOT completed), updated_at = now()"
    f" WHERE id = $1 AND user_id = $2 RETURNING {TASK_COLUMNS}"
)

JSON_HEADERS = [(b"content-type", b"application/json")]
_pool: asyncpg.Pool | None = None


def _row(record: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": record["id"],
        "user_id": record["user_id"],
        "title": record["title"],
        "description": record["description"],
        "completed": record["completed"],
        "priority": record["priority"],
        "due_date": record["due_date"],
        "created_at": record["created_at"],
        "updated_at": record["updated_at"],
    }


async def _send(send: Any, status: int, payload: Any, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = orjson.dumps(payload)
    headers = [*JSON_HEADERS, (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_row(send: Any, status: int, row: asyncpg.Record | None) -> None:
    if row is None:
        await _send(send, 404, {"detail": "task not found"})
    else:
        await _send(send, status, _row(row))


async def _body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _user(scope: dict[str, Any], query: dict[str, list[str]]) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-user-id":
            return str(value.decode())
    users = query.get("user")
    return users[0] if users else None


async def _no_reset(connection: Any) -> None:
    """The same pool setting as the service: no reset query on release."""


async def _lifespan(receive: Any, send: Any) -> None:
    global _pool
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            size = int(os.environ.get("FLOOR_POOL_SIZE", "10"))
            _pool = await asyncpg.create_pool(
                os.environ["FLOOR_DATABASE_URL"], min_size=size, max_size=size, reset=_no_reset
            )
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if _pool is not None:
                await _pool.close()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    pool = _pool
    assert pool is not None
    method: str = scope["method"]
    parts = scope["path"].strip("/").split("/")
    if parts == ["healthz"]:
        await pool.fetchval("SELECT 1")
        await _send(send, 200, {"status": "ok"})
        return
    if len(parts) < 2 or parts[:2] != ["api", "tasks"]:
        await _send(send, 404, {"detail": "not found"})
        return
    query = parse_qs(scope["query_string"].decode()) if scope["query_string"] else {}
    user = _user(scope, query)
    if user is None:
        await _send(send, 401, {"detail": "X-User-Id header missing"})
        return
    rest = parts[2:]
    if not rest and method == "GET":
        limit = int(query.get("limit", ["50"])[0])
        offset = int(query.get("offset", ["0"])[0])
        # Like the service: one row more to know whether a next page exists, and the
        # total (X-Total-Count) counted only when this page does not reach the end.
        rows = await pool.fetch(LIST_SQL, user, limit + 1, offset)
        has_next = len(rows) > limit
        rows = rows[:limit]
        if not has_next and (rows or offset == 0):
            total = offset + len(rows)
        else:
            total = await pool.fetchval(COUNT_SQL, user)
        await _send(send, 200, [_row(r) for r in rows], [(b"x-total-count", str(total).encode())])
    elif not rest and method == "POST":
        data = orjson.loads(await _body(receive))
        row = await pool.fetchrow(
            INSERT_SQL,
            user,
            None,
            None,
            data["title"],
            data.get("description"),
            data.get("completed", False),
            data.get("priority", "medium"),
            None,
        )
        await _send_row(send, 201, row)
    elif len(rest) == 1 and method == "GET":
        row = await pool.fetchrow(GET_SQL, int(rest[0]), user)
        await _send_row(send, 200, row)
    elif len(rest) == 2 and rest[1] == "complete" and method == "PATCH":
        row = await pool.fetchrow(TOGGLE_SQL, int(rest[0]), user, None)
        await _send_row(send, 200, row)
    else:
        await _send(send, 405, {"detail": "method not allowed"})
