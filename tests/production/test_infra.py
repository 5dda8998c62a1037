"""Smoke tests of the production-failure infrastructure (tests/infra.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import asyncpg
import pytest

from db.url import DatabaseURL
from tests.infra import PgBouncer, PrivatePostgres


async def _value(url: DatabaseURL, sql: str, *, limit: float = 10) -> object:
    conn = await asyncpg.connect(url.asyncpg_dsn, timeout=limit)
    try:
        return await conn.fetchval(sql, timeout=limit)
    finally:
        await conn.close(timeout=limit)


def test_private_postgres_freeze_thaw_restart(private_postgres: PrivatePostgres) -> None:
    pg = private_postgres
    assert asyncio.run(_value(pg.url, "SELECT 41 + 1")) == 42
    assert pg.backend_pids()  # checkpointer, walwriter, ...

    async def frozen_then_thawed() -> None:
        conn = await asyncpg.connect(pg.url.asyncpg_dsn, timeout=5)
        try:
            pg.freeze()
            try:
                started = time.monotonic()
                # An open connection hangs ...
                with pytest.raises(TimeoutError):
                    await conn.fetchval("SELECT 1", timeout=1)
                # ... and so does a new one (the kernel accepts, nobody answers).
                with pytest.raises(TimeoutError):
                    await asyncpg.connect(pg.url.asyncpg_dsn, timeout=1)
                assert time.monotonic() - started < 5
            finally:
                pg.thaw()
            assert await _value(pg.url, "SELECT 'thawed'") == "thawed"
        finally:
            conn.terminate()  # its timed-out query left it unusable

    asyncio.run(frozen_then_thawed())

    before = pg.pid
    pg.restart()
    assert pg.pid != before
    assert asyncio.run(_value(pg.url, "SELECT 'restarted'")) == "restarted"

    pg.stop("immediate")
    assert not pg.running
    with pytest.raises(OSError):
        asyncio.run(_value(pg.url, "SELECT 1", limit=2))
    pg.start()
    pg.kill()  # the postmaster SIGKILLed: crash recovery on the next start
    assert not pg.running
    pg.start()
    url = pg.create_database("after_crash")
    assert asyncio.run(_value(url, "SELECT current_database()")) == "after_crash"


def test_private_postgres_cleans_up_even_when_frozen() -> None:
    with PrivatePostgres() as pg:
        pg.freeze()
        pid, directory = pg.pid, pg.dir
    assert pid is not None
    assert not pg.running
    assert not directory.exists()


def test_pgbouncer_concurrent_parameterized_queries(
    pooled_database: Callable[[], tuple[DatabaseURL, DatabaseURL]], pgbouncer: PgBouncer
) -> None:
    direct, pooled = pooled_database()
    assert pooled.database == direct.database
    assert pgbouncer.config_value("pool_mode") == "transaction"

    async def run() -> None:
        pool = await asyncpg.create_pool(pooled.asyncpg_dsn, min_size=10, max_size=10, statement_cache_size=0)
        try:

            async def one(i: int) -> None:
                row = await pool.fetchrow(
                    "SELECT $1::int AS n, $2::text AS s, pg_sleep(random() * 0.01)", i, f"q{i}"
                )
                assert row is not None
                assert (row["n"], row["s"]) == (i, f"q{i}")

            await asyncio.gather(*(one(i) for i in range(200)))
            assert await pool.fetchval("SELECT current_database()") == direct.database
        finally:
            await pool.close()

    asyncio.run(run())


def test_pgbouncer_is_in_transaction_mode(
    pooled_database: Callable[[], tuple[DatabaseURL, DatabaseURL]],
) -> None:
    """One client's queries run on different server connections when another client holds
    the one it used last: the pooler hands out server connections per transaction."""
    _, pooled = pooled_database()  # a fresh database: its server pool starts empty

    async def run() -> None:
        a = await asyncpg.connect(pooled.asyncpg_dsn, statement_cache_size=0)
        b = await asyncpg.connect(pooled.asyncpg_dsn, statement_cache_size=0)
        try:
            first = await a.fetchval("SELECT pg_backend_pid()")
            async with b.transaction():
                held = await b.fetchval("SELECT pg_backend_pid()")
                second = await a.fetchval("SELECT pg_backend_pid()")
            assert held == first  # B got the server connection A had released
            assert second != first  # so A, the same client connection, got another one
        finally:
            await a.close()
            await b.close()

    asyncio.run(run())


def test_pgbouncer_in_front_of_private_postgres(
    private_postgres: PrivatePostgres, make_pgbouncer: Callable[..., PgBouncer]
) -> None:
    url = private_postgres.create_database("app")
    bouncer = make_pgbouncer(private_postgres.url)
    assert asyncio.run(_value(bouncer.url_for(url.database), "SELECT current_database()")) == "app"
    private_postgres.restart()
    # Server connections died with the restart; the bouncer makes new ones.
    deadline = time.monotonic() + 10
    while True:
        try:
            assert asyncio.run(_value(bouncer.url_for("app"), "SELECT 'back'")) == "back"
            break
        except (OSError, asyncpg.PostgresError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
