"""db/deadlines.py: every statement's two waits (a free connection, the answer) are
bounded by the shared check, a timeout becomes DatabaseUnavailable with the connection
discarded, and a cancellation from elsewhere stays a cancellation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from db.engine import Database, create_database
from db.errors import DatabaseUnavailable
from db.url import DatabaseURL

# Far above the timeouts below, far below the sleeps: a wait that was not bounded
# takes the whole sleep.
BOUND = 3.0
SLEEP = "SELECT pg_sleep(20)"


@asynccontextmanager
async def opened(
    url: DatabaseURL, *, acquire: float = 5, statement: float = 5, size: int = 2
) -> AsyncIterator[Database]:
    # pooled=True: no server-side statement_timeout, so only the client bounds the wait.
    db = await create_database(
        url,
        min_size=1,
        max_size=size,
        pooled=True,
        connect_timeout=5,
        acquire_timeout=acquire,
        statement_timeout=statement,
    )
    try:
        yield db
    finally:
        await db.close()


async def _timed(call: Callable[[], object]) -> tuple[BaseException | None, float]:
    started = time.monotonic()
    try:
        await call()  # type: ignore[misc]
    except BaseException as error:  # the test inspects it
        return error, time.monotonic() - started
    return None, time.monotonic() - started


def test_a_statement_past_its_timeout_is_unavailable_and_its_connection_closed(database: DatabaseURL) -> None:
    async def run() -> None:
        async with opened(database, statement=0.3, size=1) as db:
            error, elapsed = await _timed(lambda: db.fetchval(SLEEP))
            assert isinstance(error, DatabaseUnavailable), error
            assert error.reason == "the database did not answer in time"
            assert 0.3 <= elapsed < BOUND, elapsed
            # The one connection was replaced, not handed back busy: the next statement runs.
            assert await db.fetchval("SELECT 41 + 1") == 42

    asyncio.run(run())


def test_waiting_for_a_free_connection_is_bounded(database: DatabaseURL) -> None:
    async def run() -> None:
        async with opened(database, acquire=0.3, statement=10, size=1) as db:
            busy = asyncio.create_task(db.fetchval("SELECT pg_sleep(2)"))
            await asyncio.sleep(0.2)  # it holds the only connection
            error, elapsed = await _timed(lambda: db.fetchval("SELECT 1"))
            assert isinstance(error, DatabaseUnavailable), error
            assert error.reason == "no database connection became free in time"
            assert 0.3 <= elapsed < 1.9, elapsed  # before the busy statement ends
            assert db.waiting == 0
            await busy  # unharmed by the other's timeout

    asyncio.run(run())


def test_a_cancellation_from_elsewhere_stays_a_cancellation(database: DatabaseURL) -> None:
    async def run() -> None:
        async with opened(database, statement=5, size=1) as db:
            holder = asyncio.create_task(db.fetchval(SLEEP))  # in its statement
            await asyncio.sleep(0.2)
            waiter = asyncio.create_task(db.fetchval("SELECT 1"))  # waiting for the connection
            await asyncio.sleep(0.2)
            for task in (waiter, holder):
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            assert db.waiting == 0
            assert await db.fetchval("SELECT 2") == 2

    asyncio.run(run())


def test_deadlines_are_per_wait_not_per_task(database: DatabaseURL) -> None:
    """Statements one after another in one task, together longer than either timeout:
    each wait gets its own deadline, so none times out."""

    async def run() -> None:
        async with opened(database, acquire=0.5, statement=0.5, size=2) as db:
            started = time.monotonic()
            count = 0
            while time.monotonic() - started < 1.5:
                assert await db.fetchval("SELECT 1 FROM pg_sleep(0.02)") == 1
                count += 1
            assert count >= 3
        # Many at once on a pool of two: each waits its turn within its own bound.
        async with opened(database, acquire=5, statement=5, size=2) as db:
            values = await asyncio.gather(*(db.fetchval("SELECT $1::int", i) for i in range(200)))
            assert values == list(range(200))

    asyncio.run(run())
