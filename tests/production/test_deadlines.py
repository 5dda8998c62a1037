"""db/deadlines.py: every statement's two waits (a free connection, the answer) are
bounded by the shared check, a timeout becomes DatabaseUnavailable with the connection
discarded, and a cancellation from elsewhere stays a cancellation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from db.deadlines import Deadlines
from db.engine import Database, create_database
from db.errors import DatabaseUnavailable
from db.url import DatabaseURL
from tests.infra import PrivatePostgres

# Far above the timeouts below, far below the sleeps: a wait that was not bounded
# takes the whole sleep.
BOUND = 3.0
SLEEP = "SELECT pg_sleep(6)"


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


def _cancelling() -> int:
    task = asyncio.current_task()
    assert task is not None
    return task.cancelling()


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
            assert _cancelling() == 0  # the deadline's cancellation was withdrawn
            # The one connection was closed, not handed back busy: the next statement
            # runs, on a new backend.
            assert await db.fetchval("SELECT 41 + 1") == 42

    asyncio.run(run())


def test_waiting_for_a_free_connection_is_bounded(database: DatabaseURL) -> None:
    async def run() -> None:
        async with opened(database, acquire=0.3, statement=10, size=1) as db:
            busy = asyncio.create_task(db.fetchval("SELECT pg_sleep(5)"))
            await asyncio.sleep(0.2)  # it holds the only connection
            error, elapsed = await _timed(lambda: db.fetchval("SELECT 1"))
            assert isinstance(error, DatabaseUnavailable), error
            assert error.reason == "no database connection became free in time"
            assert 0.3 <= elapsed < 4.5, elapsed  # before the busy statement ends
            assert _cancelling() == 0
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
        async with opened(database, acquire=2, statement=2, size=2) as db:
            started = time.monotonic()
            count = 0
            while time.monotonic() - started < 4:
                assert await db.fetchval("SELECT 1 FROM pg_sleep(0.02)") == 1
                count += 1
            assert count >= 3
        # Many at once on a pool of two: each waits its turn within its own bound.
        async with opened(database, acquire=5, statement=5, size=2) as db:
            values = await asyncio.gather(*(db.fetchval("SELECT $1::int", i) for i in range(200)))
            assert values == list(range(200))

    asyncio.run(run())


def test_a_cancellation_from_elsewhere_is_not_swallowed_by_a_deadline_expiring_with_it() -> None:
    """The deadline's check and someone else's cancel land before the task runs again:
    the task sees one CancelledError, which must stay a cancellation (the deadline's own
    is withdrawn). Alone, the deadline's is reported as a timeout."""

    async def run(also_cancelled: bool) -> tuple[bool, int]:
        loop = asyncio.get_running_loop()
        deadlines = Deadlines(loop, tick=0.05)
        seen: dict[str, object] = {}

        async def waiting() -> None:
            deadline = deadlines.open()
            deadline.at = loop.time() - 1  # already past
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                seen["timed_out"] = deadline.timed_out()
                seen["cancelling"] = _cancelling()
                raise
            finally:
                deadlines.close(deadline)

        task = asyncio.create_task(waiting())
        await asyncio.sleep(0)  # it is in its sleep now
        deadlines._check()
        if also_cancelled:
            task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        deadlines.stop()
        return bool(seen["timed_out"]), int(seen["cancelling"])  # type: ignore[call-overload]

    assert asyncio.run(run(also_cancelled=False)) == (True, 0)
    assert asyncio.run(run(also_cancelled=True)) == (False, 1)


def test_a_statement_cancelled_from_elsewhere_on_a_frozen_database_ends_in_bounded_time(
    private_postgres: PrivatePostgres,
) -> None:
    """As /readyz's own 2 s limit cancels its ping: asyncpg asks the server to cancel the
    statement and the release waits for it; a frozen server never answers, so the
    release is bounded by the statement timeout (then the connection is closed)."""
    pg = private_postgres

    async def run() -> float:
        async with opened(pg.url, acquire=2, statement=2, size=1) as db:
            assert await db.fetchval("SELECT 1") == 1
            pg.freeze()
            try:
                started = time.monotonic()
                async with asyncio.timeout(20):  # the test's own guard: fail, never hang
                    with pytest.raises(TimeoutError):
                        await asyncio.wait_for(db.fetchval("SELECT 1"), 0.5)
                return time.monotonic() - started
            finally:
                pg.thaw()

    elapsed = asyncio.run(run())
    assert elapsed < 10, elapsed  # 0.5 s, then at most the 2 s release bound
