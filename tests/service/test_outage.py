"""The database going away: readiness says so, requests get 503 database_unavailable
(DATABASE_UNAVAILABLE on GraphQL), and the process stays up."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg

from db.migrations import run_migrations
from db.url import DatabaseURL
from tests.support import HS_SECRET, hs_token, json_of, live_server, settings_for, unique_user

LEAKS = ("Traceback", "asyncpg", "does not exist", "terminat", "todo_test_", "SELECT", ".py")


async def _drop(url: DatabaseURL) -> None:
    conn = await asyncpg.connect(url.with_database("postgres").asyncpg_dsn)
    try:
        await conn.execute(f'DROP DATABASE "{url.database}" WITH (FORCE)')
    finally:
        await conn.close()


def test_database_outage(fresh_database: Callable[[], DatabaseURL]) -> None:
    url = fresh_database()
    asyncio.run(run_migrations(url))
    settings = settings_for(url, BETTER_AUTH_SECRET=HS_SECRET)
    # One keep-alive client throughout, as a frontend's would be.
    with live_server(settings) as server, server.client(hs_token(unique_user("outage"))) as c:
        assert c.get("/readyz").json() == {"status": "ready"}
        assert c.post("/api/tasks", json={"title": "before"}).status_code == 201

        asyncio.run(_drop(url))

        r = c.get("/readyz")
        assert r.status_code == 503
        assert json_of(r) == {"detail": "The database is not reachable.", "code": "database_unavailable"}

        r = c.get("/api/tasks")
        assert r.status_code == 503
        assert json_of(r) == {
            "detail": "The database is unavailable; try again shortly.",
            "code": "database_unavailable",
        }
        assert r.headers["retry-after"] == "2"

        r = c.post("/graphql", json={"query": "{ tasks { totalCount } }"})
        assert r.status_code == 200
        [error] = json_of(r)["errors"]
        assert error["message"] == "The database is unavailable; try again shortly."
        assert error["extensions"] == {"code": "DATABASE_UNAVAILABLE"}
        assert c.post("/graphql", json={"query": "{ __typename }"}).json() == {
            "data": {"__typename": "Query"}
        }

        for text in (c.get("/api/tasks").text, r.text):
            for leak in LEAKS:
                assert leak not in text, (leak, text)
        assert c.get("/healthz").json() == {"status": "ok"}
