"""Announcing: in the same transaction as the write, so only what committed is ever
announced; payloads within PostgreSQL's limit; where the process listens (a direct
connection, never through a transaction pooler)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, cast

import asyncpg
import pytest

from api.live import start_live_feed
from db import queries
from db.announce import Announcer, unpack
from db.engine import Database, create_database
from db.queries import NOTIFY_PAYLOAD_LIMIT
from db.url import DatabaseURL
from tests.infra import InfraError, PgBouncer, find_pgbouncer
from tests.live.clients import SSEStream
from tests.live.conftest import _unavailable
from tests.support import HS_SECRET, LiveServer, hs_token, live_server, settings_for, unique_user

NEW_TASK = {"title": "t", "description": None, "completed": False, "priority": "low", "due_date": None}


@asynccontextmanager
async def listening(url: DatabaseURL) -> AsyncIterator[list[dict[str, Any]]]:
    """Announcements on task_changes while inside, as parsed payloads (packed batches
    unpacked, as the feed does)."""
    heard: list[dict[str, Any]] = []
    conn = await asyncpg.connect(url.asyncpg_dsn)
    await conn.add_listener(queries.CHANGES_CHANNEL, lambda *args: heard.extend(unpack(args[3])))
    try:
        yield heard
    finally:
        await conn.close()


class InTransaction:
    """The Database interface on one connection inside an open transaction: announcing
    in it (an announcer would send before the commit)."""

    announce = True
    announcer = None

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        return await self.conn.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self.conn.fetchval(sql, *args)


async def hear_everything_so_far(
    url: DatabaseURL, heard: list[dict[str, Any]], db: Database | None = None
) -> None:
    """Wait (10 s at most) until `heard` holds every announcement committed so far (and
    every one `db`'s announcer has queued: it is flushed first). A marker
    write (a task of a user of its own, announced in its own statement) is made now and
    waited for: PostgreSQL delivers announcements in commit order, so all committed before
    it have arrived too. Its announcement is then taken out of `heard`."""
    if db is not None and db.announcer is not None:
        await db.announcer.flush()
    marker = unique_user("marker")
    writer = await asyncpg.connect(url.asyncpg_dsn)
    try:
        await queries.create_task(cast(Database, InTransaction(writer)), (marker, None, None), NEW_TASK)
    finally:
        await writer.close()
    deadline = time.monotonic() + 10
    while not any(h.get("user_id") == marker for h in heard):
        assert time.monotonic() < deadline, "the marker write's announcement never arrived"
        await asyncio.sleep(0.02)
    heard[:] = [h for h in heard if h.get("user_id") != marker]


async def heard_from(user: str, heard: list[dict[str, Any]]) -> None:
    """Wait (10 s at most) until `heard` holds an announcement of `user`'s."""
    deadline = time.monotonic() + 10
    while not any(h["user_id"] == user for h in heard):
        assert time.monotonic() < deadline, f"no announcement of {user}'s arrived"
        await asyncio.sleep(0.02)


def run(coro: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(coro())  # type: ignore[arg-type]


def test_a_rolled_back_write_announces_nothing(database: DatabaseURL) -> None:
    user = unique_user("rollback")

    async def go() -> None:
        async with listening(database) as heard:
            writer = await asyncpg.connect(database.asyncpg_dsn)
            try:
                db = cast(Database, InTransaction(writer))
                for commit in (False, True):
                    tx = writer.transaction()
                    await tx.start()
                    row = await queries.create_task(db, (user, None, None), NEW_TASK)
                    await queries.toggle_task_completion(db, user, row["id"], None)
                    await queries.update_task(db, user, row["id"], {"title": "u"})
                    await queries.delete_task(db, user, row["id"])
                    await asyncio.sleep(0.3)
                    assert heard == []  # nothing before commit, either
                    await (tx.commit() if commit else tx.rollback())
                    await hear_everything_so_far(database, heard)
                    kinds = [h["kind"] for h in heard if h["user_id"] == user]
                    if commit:
                        assert kinds == ["created", "completed", "updated", "deleted"]
                    else:
                        assert kinds == []
            finally:
                await writer.close()

    run(go)


async def open_database(url: DatabaseURL, mode: str, max_size: int = 2) -> Database:
    """A Database announcing as LIVE_ANNOUNCE=`mode` does."""
    db = await create_database(
        url,
        min_size=1,
        max_size=max_size,
        pooled=False,
        connect_timeout=5,
        acquire_timeout=5,
        statement_timeout=5,
    )
    if mode == "after_commit":
        db.announcer = Announcer(db)
    return db


MODES = ("after_commit", "in_transaction")


@pytest.mark.parametrize("mode", MODES)
def test_writes_refused_by_the_database_announce_nothing(database: DatabaseURL, mode: str) -> None:
    user = unique_user("refused")

    async def go() -> None:
        db = await open_database(database, mode)
        try:
            async with listening(database) as heard:
                # The title rules hold in the database itself (check constraints).
                with pytest.raises(asyncpg.CheckViolationError):
                    await queries.create_task(db, (user, None, None), {**NEW_TASK, "title": " padded "})
                row = await queries.create_task(db, (user, None, None), NEW_TASK)
                with pytest.raises(asyncpg.CheckViolationError):
                    await queries.update_task(db, user, row["id"], {"title": "   "})
                with pytest.raises(asyncpg.StringDataRightTruncationError):
                    await queries.update_task(db, user, row["id"], {"title": "x" * 201, "completed": True})
                # Not found (or not yours): nothing changed, nothing announced.
                assert await queries.update_task(db, "someone-else", row["id"], {"title": "x"}) is None
                assert await queries.toggle_task_completion(db, "someone-else", row["id"], True) is None
                assert await queries.delete_task(db, "someone-else", row["id"]) is False
                await hear_everything_so_far(database, heard, db)
                assert [(h["kind"], h["task_id"]) for h in heard] == [("created", row["id"])]
        finally:
            await db.close()

    run(go)


def test_after_commit_every_write_is_announced_once_in_order_in_few_batches(
    database: DatabaseURL,
) -> None:
    """LIVE_ANNOUNCE=after_commit: writes finished together share one NOTIFY transaction;
    each write returns once its announcement is out; each is heard exactly once, in the
    order the writes returned."""
    user = unique_user("batched")
    writes = 60

    async def go() -> None:
        db = await open_database(database, "after_commit", max_size=10)
        assert db.announcer is not None
        announcer = db.announcer
        returned: list[int] = []
        async with listening(database) as heard:
            try:

                async def create(i: int) -> None:
                    row = await queries.create_task(db, (user, None, None), {**NEW_TASK, "title": f"t{i}"})
                    returned.append(row["id"])
                    # Its announcement went out before it returned: so did every one
                    # returned so far.
                    assert announcer.sent >= len(returned)

                await asyncio.gather(*(create(i) for i in range(writes)))
            finally:
                await db.close()  # sends what is queued first
            assert announcer.sent == writes and announcer.lost == 0
            # 60 writes on 10 connections: far fewer NOTIFY transactions than writes.
            assert announcer.batches < writes, announcer.batches
            await hear_everything_so_far(database, heard)
            mine = [h for h in heard if h["user_id"] == user]
            assert [h["task_id"] for h in mine] == returned
            assert len({h["id"] for h in mine}) == writes
            assert all(h["kind"] == "created" and h["task"]["title"].startswith("t") for h in mine)

    run(go)


def test_a_failed_notify_is_logged_and_owes_missed_first_in_the_next_one(
    database: DatabaseURL, caplog: pytest.LogCaptureFixture
) -> None:
    """A failed NOTIFY (here PostgreSQL refusing a payload over its limit, which the
    statements never produce) costs that batch's announcements, never the writes: the
    caller is answered and a warning logged; the next NOTIFY starts with MISSED, so
    every listener resyncs, then carries on."""
    user = unique_user("refused-notify")

    async def go() -> None:
        db = await open_database(database, "after_commit")
        assert db.announcer is not None
        try:
            async with listening(database) as heard:
                with caplog.at_level(logging.WARNING, logger="api.live"):
                    await db.announcer.announce("x" * NOTIFY_PAYLOAD_LIMIT)
                assert db.announcer.lost == 1
                assert any("could not be announced" in r.getMessage() for r in caplog.records)
                row = await queries.create_task(db, (user, None, None), NEW_TASK)
                await hear_everything_so_far(database, heard, db)
                assert heard[0] == json.loads(queries.MISSED)
                assert [h["task_id"] for h in heard[1:]] == [row["id"]]
        finally:
            await db.close()

    run(go)


def test_missed_goes_out_alone_when_no_write_follows(database: DatabaseURL) -> None:
    async def go() -> None:
        db = await open_database(database, "after_commit")
        assert db.announcer is not None
        try:
            async with listening(database) as heard:
                await db.announcer.announce("x" * NOTIFY_PAYLOAD_LIMIT)
                assert db.announcer.lost == 1
                deadline = time.monotonic() + 10  # retried after 0.5 s, then with backoff
                while heard != [json.loads(queries.MISSED)]:
                    assert time.monotonic() < deadline, heard
                    await asyncio.sleep(0.05)
                await db.announcer.flush()  # nothing more is owed: the sender stops
        finally:
            await db.close()

    run(go)


def test_missed_makes_every_stream_resync_and_forgets_resume_points(
    live: LiveServer, database: DatabaseURL
) -> None:
    """MISSED, sent by whichever process lost announcements, reaches this server's feed
    through PostgreSQL: its streams get `resync` (`missed`); a resume from before is
    refused (the lost changes cannot be replayed)."""
    token = hs_token(unique_user("missed"))
    with live.client(token) as c, SSEStream(live.url, token) as stream:
        assert stream.get().event == "ready"
        c.post("/api/tasks", json={"title": "before"})
        before = stream.get()
        assert before.event == "created"

        async def notify_missed() -> None:
            conn = await asyncpg.connect(database.asyncpg_dsn)
            try:
                await conn.execute("SELECT pg_notify($1, $2)", queries.CHANGES_CHANNEL, queries.MISSED)
            finally:
                await conn.close()

        asyncio.run(notify_missed())
        resync = stream.get()
        assert (resync.event, resync.data["reason"]) == ("resync", "missed")
    with SSEStream(live.url, token, last_event_id=before.id) as resumed:
        ready = resumed.get()
        assert (ready.event, ready.data["reason"]) == ("ready", "resume_unavailable")


def test_task_change_seq_hands_out_ids_in_call_order(database: DatabaseURL) -> None:
    """db/live.py drops a change older than one already published for its task, relying
    on ids rising in commit order: true only with CACHE 1 (no per-session ranges)."""

    async def go() -> None:
        conn = await asyncpg.connect(database.asyncpg_dsn)
        try:
            cache = await conn.fetchval(
                "SELECT cache_size FROM pg_sequences WHERE sequencename = 'task_change_seq'"
            )
        finally:
            await conn.close()
        assert cache == 1

    run(go)


def test_a_task_too_large_to_announce_goes_out_by_id(live: LiveServer, database: DatabaseURL) -> None:
    """PostgreSQL refuses payloads of 8000 bytes and more: such a change is announced
    without the task (the client fetches it by id); the write never fails for it."""
    user = "\U0001d518" * 255  # the longest `sub`, in 4-byte characters
    token = hs_token(user)
    worst = {**NEW_TASK, "title": "\x01" * 200, "description": "\x01" * 1000}  # JSON: 6 bytes each

    async def write(values: dict[str, Any]) -> int:
        db = await create_database(
            database,
            min_size=1,
            max_size=1,
            pooled=False,
            connect_timeout=5,
            acquire_timeout=5,
            statement_timeout=5,
        )
        try:
            row = await queries.create_task(db, (user, None, None), values)
            return int(row["id"])
        finally:
            await db.close()

    with SSEStream(live.url, token) as stream:
        assert stream.get().event == "ready"
        big = asyncio.run(write(worst))
        event = stream.get()
        assert (event.event, event.data["task_id"], event.data["task"]) == ("created", big, None)
        small = asyncio.run(write(NEW_TASK))
        assert stream.get().data["task"]["id"] == small
    with live.client(token) as c:
        assert c.get(f"/api/tasks/{big}").json()["description"] == "\x01" * 1000


def test_live_updates_off_writes_announce_nothing(database: DatabaseURL) -> None:
    settings = settings_for(database, BETTER_AUTH_SECRET=HS_SECRET, LIVE_UPDATES="false")
    user = unique_user("quiet")

    async def go(server: LiveServer) -> None:
        async with listening(database) as heard:
            with server.client(hs_token(user)) as c:
                tid = c.post("/api/tasks", json={"title": "quiet"}).json()["id"]
                c.patch(f"/api/tasks/{tid}/complete")
                c.delete(f"/api/tasks/{tid}")
            await hear_everything_so_far(database, heard)
            assert [h for h in heard if h["user_id"] == user] == []

    with live_server(settings) as server:
        asyncio.run(go(server))


def test_pooled_database_url_without_a_direct_one_disables_live_updates(
    database: DatabaseURL, caplog: pytest.LogCaptureFixture
) -> None:
    """DB_POOLER=transaction says DATABASE_URL is a transaction pooler's: no LISTEN
    there. Writes still announce (another instance may be listening)."""
    settings = settings_for(database, BETTER_AUTH_SECRET=HS_SECRET, DB_POOLER="transaction")
    user = unique_user("pooled")
    with caplog.at_level(logging.WARNING, logger="api.live"), live_server(settings) as server:
        assert any("LIVE UPDATES DISABLED" in r.getMessage() for r in caplog.records)
        refused = SSEStream(server.url, hs_token(user)).open()
        assert refused.status == 503 and refused.json()["code"] == "live_updates_unavailable"

        async def go() -> None:
            async with listening(database) as heard:
                with server.client(hs_token(user)) as c:
                    assert c.post("/api/tasks", json={"title": "still announced"}).status_code == 201
                # Announced after the response (LIVE_ANNOUNCE=after_commit): wait for it,
                # then for anything else committed until now.
                await heard_from(user, heard)
                await hear_everything_so_far(database, heard)
                assert [h["kind"] for h in heard if h["user_id"] == user] == ["created"]

        asyncio.run(go())


def test_through_pgbouncer_with_a_direct_url_for_listen(
    server_url: DatabaseURL, database: DatabaseURL
) -> None:
    """The usual hosted setup: DATABASE_URL through a transaction pooler (PgBouncer here,
    no prepared statements), DATABASE_DIRECT_URL direct. Announcements made through the
    pooler reach the LISTEN on the direct connection."""
    if find_pgbouncer() is None:
        _unavailable("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
    try:
        bouncer = PgBouncer(server_url).start()
    except InfraError as error:
        _unavailable(str(error))
    try:
        pooled = bouncer.url_for(database.database, mark_pooled=True)
        settings = settings_for(pooled, BETTER_AUTH_SECRET=HS_SECRET, DATABASE_DIRECT_URL=database.url)
        assert settings.db_pooled
        user = unique_user("bounced")
        token = hs_token(user)
        with live_server(settings) as server, SSEStream(server.url, token) as stream:
            assert stream.get().event == "ready"
            with server.client(token) as c:
                task = c.post("/api/tasks", json={"title": "via the pooler"}).json()
                c.patch(f"/api/tasks/{task['id']}/complete")
            assert stream.get().data["task"] == task
            assert stream.get().event == "completed"
    finally:
        bouncer.close()


@pytest.mark.parametrize("mode", MODES)
def test_live_announce_chooses_where_writes_announce(database: DatabaseURL, mode: str) -> None:
    """LIVE_ANNOUNCE: after_commit gives the Database an announcer; in_transaction none
    (the statements then call pg_notify themselves). Both reach a stream."""
    settings = settings_for(database, BETTER_AUTH_SECRET=HS_SECRET, LIVE_ANNOUNCE=mode)

    async def wiring() -> None:
        db = await open_database(database, "in_transaction")
        feed = await start_live_feed(settings, database, db)
        try:
            assert isinstance(db.announcer, Announcer) == (mode == "after_commit")
        finally:
            await feed.close()
            await db.close()

    run(wiring)
    user = unique_user(mode)
    token = hs_token(user)
    with live_server(settings) as server, SSEStream(server.url, token) as stream:
        assert stream.get().event == "ready"
        with server.client(token) as c:
            task = c.post("/api/tasks", json={"title": mode}).json()
            c.patch(f"/api/tasks/{task['id']}/complete")
        assert stream.get().data["task"] == task
        assert stream.get().event == "completed"
