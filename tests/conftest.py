"""Each run creates its own database on a real PostgreSQL and drops it afterwards.

TEST_DATABASE_URL names the server to use (CI: the machine's PostgreSQL);
without it the embedded PostgreSQL (pgserver) under .data/test-postgres is used.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from db.embedded import start_embedded_postgres
from db.migrations import run_migrations
from db.url import DatabaseURL
from tests.support import HS_SECRET, LiveServer, live_server, settings_for

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def server_url() -> DatabaseURL:
    """The PostgreSQL server tests create their databases on."""
    raw = os.environ.get("TEST_DATABASE_URL")
    if raw:
        return DatabaseURL.parse(raw)
    return start_embedded_postgres(ROOT / ".data" / "test")


async def _admin(server: DatabaseURL, sql: str) -> None:
    conn = await asyncpg.connect(server.with_database("postgres").asyncpg_dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def fresh_database(server_url: DatabaseURL) -> Iterator[Callable[[], DatabaseURL]]:
    """A factory of empty databases, all dropped at the end of the run."""
    created: list[str] = []

    def make() -> DatabaseURL:
        name = f"todo_test_{uuid.uuid4().hex[:10]}"
        asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
        created.append(name)
        return server_url.with_database(name)

    yield make
    for name in created:
        asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def database(fresh_database: Callable[[], DatabaseURL]) -> DatabaseURL:
    """The shared test database, migrated to head. Tests isolate by user id."""
    url = fresh_database()
    asyncio.run(run_migrations(url))
    return url


@pytest.fixture(scope="session")
def server(database: DatabaseURL) -> Iterator[LiveServer]:
    """The service with HS256 auth (no issuer/audience configured)."""
    with live_server(settings_for(database, BETTER_AUTH_SECRET=HS_SECRET)) as srv:
        yield srv
