"""GET /api/tasks/events over real HTTP: what a fetch-based EventSource client gets."""

from __future__ import annotations

import time
from typing import Any

import httpx

from db.url import DatabaseURL
from tests.live.clients import SSEStream
from tests.support import HS_SECRET, LiveServer, hs_token, live_server, settings_for, unique_user

TASK_KEYS = {
    "id", "user_id", "title", "description", "completed", "priority", "due_date", "created_at",
    "updated_at",
}  # fmt: skip


def create(server: LiveServer, token: str, title: str, **fields: Any) -> dict[str, Any]:
    with server.client(token) as c:
        r = c.post("/api/tasks", json={"title": title, **fields})
        assert r.status_code == 201, r.text
        task: dict[str, Any] = r.json()
        return task


def test_every_kind_of_change_with_the_task_as_rest_returns_it(live: LiveServer) -> None:
    user = unique_user("sse")
    token = hs_token(user)
    with SSEStream(live.url, token) as stream:
        assert stream.status == 200
        assert stream.response_headers is not None
        assert stream.response_headers["content-type"] == "text/event-stream; charset=utf-8"
        assert stream.response_headers["cache-control"] == "no-store"
        ready = stream.get()
        assert ready.event == "ready" and ready.data["reason"] == "new" and ready.id == ready.data["event_id"]
        assert stream.retry == 2000

        with live.client(token) as c:
            created = c.post("/api/tasks", json={"title": "watch me", "priority": "high"}).json()
            tid = created["id"]
            updated = c.put(f"/api/tasks/{tid}", json={"title": "watched"}).json()
            completed = c.patch(f"/api/tasks/{tid}/complete").json()
            uncompleted = c.patch(f"/api/tasks/{tid}/complete", json={"completed": False}).json()
            same = c.patch(f"/api/tasks/{tid}/complete", json={"completed": False}).json()
            via_put = c.put(f"/api/tasks/{tid}", json={"completed": True}).json()
            assert c.delete(f"/api/tasks/{tid}").status_code == 204

        expected = [
            ("created", created),
            ("updated", updated),
            ("completed", completed),
            ("uncompleted", uncompleted),
            ("updated", same),  # asked to complete a task already in that state: no completion
            ("completed", via_put),
            ("deleted", None),
        ]
        ids = []
        for kind, task in expected:
            event = stream.get()
            assert event.event == kind, (event, kind)
            assert event.data["kind"] == kind
            assert event.data["task_id"] == tid
            assert event.data["task"] == task  # byte for byte what REST answered
            assert event.id == event.data["event_id"]
            assert event.data["at"] >= created["created_at"]
            ids.append(int(event.id or 0))
        assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_both_paths_and_refusals(live: LiveServer) -> None:
    user, other = unique_user("sse"), unique_user("sse")
    token = hs_token(user)
    with SSEStream(live.url, token, path=f"/api/{user}/tasks/events") as stream:
        assert stream.status == 200
        assert stream.get().event == "ready"
        task = create(live, token, "namespaced")
        assert stream.get().data["task"] == task

    refused = SSEStream(live.url, token, path=f"/api/{other}/tasks/events").open()
    assert refused.status == 403 and refused.json()["code"] == "forbidden"
    missing = SSEStream(live.url, None).open()
    assert missing.status == 401 and missing.json()["code"] == "unauthenticated"
    assert missing.response_headers is not None
    assert missing.response_headers["www-authenticate"] == "Bearer"
    bad = SSEStream(live.url, "not-a-jwt").open()
    assert bad.status == 401 and bad.json()["code"] == "unauthenticated"
    expired = SSEStream(live.url, hs_token(user, ttl=-120)).open()
    assert expired.status == 401


def test_users_only_see_their_own_changes(live: LiveServer) -> None:
    alice, bob = unique_user("alice"), unique_user("bob")
    ta, tb = hs_token(alice), hs_token(bob)
    with SSEStream(live.url, ta) as a, SSEStream(live.url, tb) as b:
        assert a.get().event == "ready" and b.get().event == "ready"
        secret = create(live, ta, "alice's secret", description="for alice only")
        with live.client(ta) as c:
            c.patch(f"/api/tasks/{secret['id']}/complete")
            c.delete(f"/api/tasks/{secret['id']}")
        # Bob cannot reach Alice's task through his own paths either.
        with live.client(tb) as c:
            assert c.put(f"/api/tasks/{secret['id']}", json={"title": "mine"}).status_code == 404
        marker = create(live, tb, "bob's marker")
        assert [e.event for e in (a.get(), a.get(), a.get())] == ["created", "completed", "deleted"]
        # Bob's first event is his own marker: Alice's three changes never reached him.
        first = b.get()
        assert first.event == "created" and first.data["task"] == marker
        assert b.quiet(0.5) == []
        assert a.quiet(0.5) == []


def test_keep_alive_comments_on_an_idle_stream(live: LiveServer) -> None:
    with SSEStream(live.url, hs_token(unique_user("idle"))) as stream:
        assert stream.get().event == "ready"
        deadline = time.monotonic() + 5
        while "keep-alive" not in stream.comments and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "keep-alive" in stream.comments


def test_resume_with_last_event_id(live: LiveServer) -> None:
    user = unique_user("resume")
    token = hs_token(user)
    with SSEStream(live.url, token) as stream:
        stream.get()
        first = create(live, token, "seen")
        seen = stream.get()
        assert seen.data["task"] == first
    # Disconnected: these happen meanwhile (and another user's, which must not be replayed).
    missed = [create(live, token, f"missed {i}") for i in range(3)]
    create(live, hs_token(unique_user("someone-else")), "not yours")
    with SSEStream(live.url, token, last_event_id=seen.id) as resumed:
        replayed = [resumed.get() for _ in range(3)]
        assert [e.data["task"] for e in replayed] == missed
        ready = resumed.get()
        assert ready.event == "ready" and ready.data["reason"] == "resumed"
        # The ready's id is a position: resuming from it misses nothing later.
        later = create(live, token, "later")
        assert resumed.get().data["task"] == later
    with SSEStream(live.url, token, last_event_id=ready.id) as again:
        assert again.get().data["task"] == later
        assert again.get().data["reason"] == "resumed"
    for unknown in ("999999999999", "r-made-up", "x" * 500):
        with SSEStream(live.url, token, last_event_id=unknown) as stream:
            ready = stream.get()
            assert ready.event == "ready" and ready.data["reason"] == "resume_unavailable"


def test_token_expiry_ends_the_stream(database: DatabaseURL) -> None:
    settings = settings_for(database, BETTER_AUTH_SECRET=HS_SECRET, JWT_LEEWAY_SECONDS="0")
    with live_server(settings) as server:
        user = unique_user("expiring")
        started = time.time()
        # Expires 3 to 4 s from now (whole seconds): time to open the stream before it does.
        with SSEStream(server.url, hs_token(user, ttl=4)) as stream:
            assert stream.get().event == "ready"
            events = stream.ended(timeout=12)
        elapsed = time.time() - started
        assert [e.event for e in events] == ["token_expired"]
        assert events[0].data["code"] == "token_expired"
        assert 2.9 <= elapsed <= 8, elapsed


def test_stream_limits_are_enforced_and_freed(database: DatabaseURL) -> None:
    env = {"LIVE_MAX_STREAMS_PER_USER": "2", "LIVE_MAX_STREAMS": "3"}
    with live_server(settings_for(database, BETTER_AUTH_SECRET=HS_SECRET, **env)) as server:
        user = unique_user("limited")
        token = hs_token(user)
        first, second = SSEStream(server.url, token).open(), SSEStream(server.url, token).open()
        assert first.status == second.status == 200
        third = SSEStream(server.url, token).open()
        assert third.status == 429
        assert third.json()["code"] == "too_many_streams"
        assert set(third.json()) == {"detail", "code"}
        assert third.response_headers is not None and int(third.response_headers["retry-after"]) >= 1
        # Another user still gets one, then the process limit (3) is reached.
        other = SSEStream(server.url, hs_token(unique_user("other"))).open()
        assert other.status == 200
        assert SSEStream(server.url, hs_token(unique_user("more"))).open().status == 429
        # Closing a stream frees its place at once.
        first.close()
        deadline = time.monotonic() + 5
        while True:
            retry = SSEStream(server.url, token).open()
            if retry.status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert retry.status == 200
        for stream in (second, other, retry):
            stream.close()


def test_preflight_allows_the_headers_a_reconnecting_client_sends(live: LiveServer) -> None:
    r = httpx.options(
        live.url + "/api/tasks/events",
        headers={
            "Origin": "http://localhost:3000",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization, last-event-id",
        },
    )
    assert r.status_code == 200, r.text
    allowed = r.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "last-event-id" in allowed


def test_live_updates_turned_off(database: DatabaseURL) -> None:
    settings = settings_for(database, BETTER_AUTH_SECRET=HS_SECRET, LIVE_UPDATES="false")
    with live_server(settings) as server:
        stream = SSEStream(server.url, hs_token(unique_user("off"))).open()
        assert stream.status == 503
        assert stream.json()["code"] == "live_updates_unavailable"
        assert stream.json()["detail"] == "Live updates are turned off on this server."
        # Writes still work, and announce nothing.
        with server.client(hs_token(unique_user("off"))) as c:
            assert c.post("/api/tasks", json={"title": "quiet"}).status_code == 201
