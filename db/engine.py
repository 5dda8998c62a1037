"""The database the service talks to: an asyncpg pool with bounded waits.

Two rules make it safe in production:

- **Every wait is bounded.** Connecting (`connect_timeout`), waiting for a free pooled
  connection (`acquire_timeout`) and each statement (`statement_timeout`) have a
  limit (the last two kept by db/deadlines.py, to within a tenth of the shorter).
  Past it, or when the server cannot be reached at all, the caller gets
  `DatabaseUnavailable` (503 on REST, `DATABASE_UNAVAILABLE` on GraphQL), and a
  connection whose statement timed out is closed rather than reused, so the server
  rolls back whatever it had not committed.
- **Transaction-mode poolers** (PgBouncer, Neon's `-pooler` URLs, Supabase's
  Supavisor on 6543) hand each transaction to whichever server connection is free,
  so nothing may outlive one: no named prepared statements, no session settings.
  With `pooled=True` asyncpg's statement cache is off; asyncpg then sends each
  statement as one unnamed Parse/Bind/Execute/Sync batch (after a Describe that ends
  in Flush, not Sync, so the pooler cannot switch servers in between). A statement
  therefore always binds to the text it was parsed from on the same server
  connection: another client's statement can never be picked up. The price is one
  extra round trip per statement (docs/performance.md measures it).

The service sets no session state on pooled connections in either mode (no SET,
LISTEN or session advisory locks), so they need no reset on release.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg

from db.deadlines import Deadline, Deadlines
from db.errors import NO_ANSWER, DatabaseUnavailable, unavailable_reason
from db.url import DatabaseURL

if TYPE_CHECKING:
    from db.announce import Announcer

    Pool: TypeAlias = asyncpg.Pool[asyncpg.Record]
    Connection: TypeAlias = asyncpg.pool.PoolConnectionProxy[asyncpg.Record]
else:
    Pool = asyncpg.Pool
    Connection = asyncpg.pool.PoolConnectionProxy


NO_FREE_CONNECTION = "no database connection became free in time"


class Database:
    """fetch / fetchrow / fetchval on a pooled connection, with bounded waits and
    connection failures reported as DatabaseUnavailable."""

    def __init__(self, pool: Pool, *, acquire_timeout: float, statement_timeout: float, pooled: bool) -> None:
        self._pool = pool
        self._acquire_timeout = acquire_timeout
        self._statement_timeout = statement_timeout
        # Both waits of every statement, bounded by one timer (db/deadlines.py).
        self._deadlines = Deadlines(
            asyncio.get_running_loop(), tick=min(acquire_timeout, statement_timeout) / 10
        )
        self.pooled = pooled
        # Writes announce their changes for live updates (db/queries.py, db/live.py);
        # off when LIVE_UPDATES=false. With an announcer, after their commit
        # (db/announce.py); without one, inside the write's transaction.
        self.announce = True
        self.announcer: Announcer | None = None
        # Acquisitions in progress (read by the metrics): at any moment another task
        # looks, these are waiting for a free connection or for a new one to open.
        self.waiting = 0

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self._run("fetch", query, args)
        return rows

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self._run("fetchrow", query, args)
        return row

    async def fetchval(self, query: str, *args: Any) -> Any:
        return await self._run("fetchval", query, args)

    async def _run(self, method: str, query: str, args: tuple[Any, ...]) -> Any:
        """`method` of a pooled connection; a failure that means the database is
        unavailable is raised as DatabaseUnavailable, anything else as it was."""
        deadline = self._deadlines.open()
        try:
            con = await self._acquire(deadline)
            cancelled = False
            try:
                deadline.at = self._deadlines.loop.time() + self._statement_timeout
                result = await getattr(con, method)(query, *args)
                deadline.done()
                return result
            except asyncio.CancelledError:
                if not deadline.timed_out():
                    cancelled = True
                    raise
                # A timed-out statement may still be queued on a stalled server: never
                # reuse the connection (asyncpg would wait for its cancellation); closing
                # it makes the server roll back whatever it had not committed.
                con.terminate()
                raise DatabaseUnavailable(NO_ANSWER) from None
            except Exception as error:
                reason = unavailable_reason(error)
                if reason is None:
                    raise
                if isinstance(error, TimeoutError):  # as above, whoever timed it out
                    con.terminate()
                raise DatabaseUnavailable(reason) from error
            finally:
                deadline.at = 0.0
                if cancelled:
                    # Cancelled from elsewhere (a client gone, /readyz's own limit):
                    # asyncpg asks the server to cancel the statement and the release
                    # waits for that, which a frozen server never answers. Bounded; past
                    # it asyncpg closes the connection.
                    with contextlib.suppress(TimeoutError):
                        await self._pool.release(con, timeout=self._statement_timeout)
                else:
                    await self._pool.release(con)
        finally:
            self._deadlines.close(deadline)

    async def _acquire(self, deadline: Deadline) -> Connection:
        self.waiting += 1
        try:
            deadline.at = self._deadlines.loop.time() + self._acquire_timeout
            con = await self._pool.acquire()
            deadline.done()
            return con
        except asyncio.CancelledError:
            if not deadline.timed_out():
                raise
            raise DatabaseUnavailable(NO_FREE_CONNECTION) from None
        except TimeoutError:  # opening a new connection took too long (connect_timeout)
            raise DatabaseUnavailable(NO_FREE_CONNECTION) from None
        except Exception as error:
            reason = unavailable_reason(error)
            if reason is None:
                raise
            raise DatabaseUnavailable(reason) from error
        finally:
            deadline.at = 0.0
            self.waiting -= 1

    @property
    def in_use(self) -> int:
        return self._pool.get_size() - self._pool.get_idle_size()

    @property
    def size(self) -> int:
        return self._pool.get_size()

    async def close(self) -> None:
        """Send what is left to announce, then close gracefully, or at once when the
        database does not answer."""
        try:
            if self.announcer is not None:
                # Bounded: on a frozen database each NOTIFY would wait out its timeouts;
                # what is left then fails against the closed pool, counted as lost.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(2 * self._acquire_timeout):
                        await self.announcer.close()
        finally:
            try:
                async with asyncio.timeout(self._acquire_timeout):
                    await self._pool.close()
            except TimeoutError:
                self._pool.terminate()
            self._deadlines.stop()


async def create_database(
    url: DatabaseURL,
    *,
    min_size: int,
    max_size: int,
    pooled: bool,
    connect_timeout: float,
    acquire_timeout: float,
    statement_timeout: float,
) -> Database:
    """The pool, with its first `min_size` connections open (start-up fails when the
    database cannot be reached within `connect_timeout`)."""
    server_settings = {"application_name": "todo-api"}
    if not pooled:
        # Also enforced by the server, so it stops work the client gave up on. Not sent
        # through a pooler: PgBouncer refuses unknown start-up parameters.
        server_settings["statement_timeout"] = str(int(statement_timeout * 1000))
    connect_args = {"timeout": connect_timeout, **url.connect_args}
    pool = await asyncpg.create_pool(
        url.asyncpg_dsn,
        min_size=min_size,
        max_size=max_size,
        statement_cache_size=0 if pooled else 100,
        server_settings=server_settings,
        reset=_keep_session,
        **connect_args,
    )
    return Database(pool, acquire_timeout=acquire_timeout, statement_timeout=statement_timeout, pooled=pooled)


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Skip asyncpg's reset on release (RESET ALL, UNLISTEN *, …: a round trip per
    request). Nothing here changes session state: no SET, LISTEN, advisory locks or
    open cursors on pooled connections."""
