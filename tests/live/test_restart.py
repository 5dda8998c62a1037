"""The LISTEN connection lost (a database restart, a crash, a killed backend): the
feed reconnects by itself, every open stream is told to resync, and changes flow again.
Resume points from before the gap are refused (refetch), never silently honoured."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from db.migrations import run_migrations
from db.url import DatabaseURL
from tests.infra import PrivatePostgres, run_sync
from tests.live.clients import SSEEvent, SSEStream, subscribed
from tests.support import HS_SECRET, LiveServer, db_fetch, hs_token, live_server, settings_for, unique_user

FAST_TIMEOUTS = {
    "DB_CONNECT_TIMEOUT_SECONDS": "1",
    "DB_ACQUIRE_TIMEOUT_SECONDS": "1",
    "DB_STATEMENT_TIMEOUT_SECONDS": "2",
}


@pytest.fixture
def owned(private_postgres: PrivatePostgres) -> Iterator[tuple[PrivatePostgres, LiveServer]]:
    url = private_postgres.create_database("live")
    run_sync(run_migrations(url))
    with live_server(settings_for(url, BETTER_AUTH_SECRET=HS_SECRET, **FAST_TIMEOUTS)) as server:
        yield private_postgres, server


def create_when_possible(
    server: LiveServer, token: str, title: str, timeout: float = 30
) -> dict[str, object]:
    """POST a task, retrying while the database is still coming back (503)."""
    deadline = time.monotonic() + timeout
    with server.client(token) as c:
        while True:
            try:
                r = c.post("/api/tasks", json={"title": title})
            except httpx.TransportError:
                r = None
            if r is not None and r.status_code == 201:
                task: dict[str, object] = r.json()
                return task
            if time.monotonic() > deadline:
                raise AssertionError(f"no successful write after the restart: {r and r.text}")
            time.sleep(0.2)


@pytest.mark.parametrize("how", ["restart", "crash"])
def test_database_restart_then_resync(owned: tuple[PrivatePostgres, LiveServer], how: str) -> None:
    pg, server = owned
    token = hs_token(unique_user("restart"))
    with SSEStream(server.url, token) as sse, subscribed(server.url, token) as ws:
        assert sse.get().event == "ready"
        before = create_when_possible(server, token, "before")
        seen_before = sse.get()
        assert seen_before.data["task"] == before
        assert ws.next_change()["kind"] == "CREATED"

        if how == "restart":
            pg.restart("fast")
        else:
            pg.kill()  # the postmaster SIGKILLed: crash recovery on start
            pg.start()

        resync = sse.get(timeout=30)
        assert (resync.event, resync.data["reason"]) == ("resync", "reconnected")
        change = ws.next_change(timeout=30)
        assert (change["kind"], change["reason"]) == ("RESYNC", "reconnected")

        after = create_when_possible(server, token, "after")
        assert sse.get(timeout=10).data["task"] == after
        assert ws.next_change(timeout=10)["taskId"] == str(after["id"])
        resync_id = resync.id

    # A resume point from before the restart cannot be honoured: refetch.
    with SSEStream(server.url, token, last_event_id=seen_before.id) as stream:
        assert stream.get().data["reason"] == "resume_unavailable"
    # The resync's position is good: nothing after it is missed.
    with SSEStream(server.url, token, last_event_id=resync_id) as stream:
        assert stream.get().data["task"] == after
        assert stream.get().data["reason"] == "resumed"


def test_a_killed_listen_connection_is_replaced_and_streams_resync(
    live: LiveServer, database: DatabaseURL
) -> None:
    """Only the LISTEN connection dies (the database stays up, writes go on): what was
    committed while nobody listened is not known, so clients are told to refetch."""
    token = hs_token(unique_user("killed"))
    with SSEStream(live.url, token) as sse:
        assert sse.get().event == "ready"
        terminated = db_fetch(
            database,
            "SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity"
            " WHERE application_name = 'todo-api live updates' AND datname = $1",
            database.database,
        )
        assert terminated and all(r["done"] for r in terminated)
        during = create_when_possible(live, token, "while nobody listened")
        events: list[SSEEvent] = []
        while not any(e.event == "resync" for e in events):
            events.append(sse.get(timeout=15))
        # The write may or may not have been heard (it raced the reconnect); either way
        # the client was told to refetch, which shows it.
        assert all(e.data["task"] == during for e in events if e.event == "created")
        after = create_when_possible(live, token, "after")
        while (event := sse.get()).event != "created" or event.data["task"] != after:
            pass
