"""GraphQL subscriptions over a real WebSocket at /graphql (graphql-transport-ws, and
the legacy graphql-ws): sign-in from connection_init or the upgrade header, close
codes, expiry, limits, resume, isolation."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from db.url import DatabaseURL
from tests.live.clients import SUBSCRIPTION, Closed, GraphQLSocket, SSEStream, subscribed
from tests.support import HS_SECRET, LiveServer, auth, hs_token, live_server, settings_for, unique_user

OTHER_SECRET = "another-secret-that-is-long-enough-0123456789"
CREATE = "mutation Create($input: CreateTaskInput!) { createTask(input: $input) { id title } }"


def create(server: LiveServer, token: str, title: str) -> dict[str, Any]:
    with server.client(token) as c:
        r = c.post("/api/tasks", json={"title": title})
        assert r.status_code == 201, r.text
        task: dict[str, Any] = r.json()
        return task


def test_changes_from_rest_and_graphql_reach_a_subscriber(live: LiveServer) -> None:
    user = unique_user("ws")
    token = hs_token(user)
    with subscribed(live.url, token) as socket:
        rest_task = create(live, token, "from REST")
        change = socket.next_change()
        assert change["kind"] == "CREATED"
        assert change["taskId"] == str(rest_task["id"])
        assert change["task"]["title"] == "from REST" and change["task"]["priority"] == "MEDIUM"
        assert change["eventId"].isdigit() and change["reason"] is None
        with live.client(token) as c:
            created = c.post(
                "/graphql", json={"query": CREATE, "variables": {"input": {"title": "from GraphQL"}}}
            )
            gql_id = created.json()["data"]["createTask"]["id"]
            c.patch(f"/api/tasks/{gql_id}/complete")
            c.delete(f"/api/tasks/{gql_id}")
        kinds = [socket.next_change() for _ in range(3)]
        assert [(k["kind"], k["taskId"]) for k in kinds] == [
            ("CREATED", gql_id),
            ("COMPLETED", gql_id),
            ("DELETED", gql_id),
        ]
        assert kinds[1]["task"]["completed"] is True
        assert kinds[2]["task"] is None
        # Queries work on the same connection, as the same user.
        socket.send({"id": "q", "type": "subscribe", "payload": {"query": "{ me { id } }"}})
        answer = socket.recv()
        assert answer["payload"]["data"] == {"me": {"id": user}}


def test_token_in_the_upgrade_request_header(live: LiveServer) -> None:
    user = unique_user("ws-header")
    token = hs_token(user)
    with GraphQLSocket(live.url, headers=auth(token)) as socket:
        assert socket.init()["type"] == "connection_ack"
        socket.subscribe()
        assert socket.next_change()["kind"] == "READY"
        task = create(live, token, "server client")
        assert socket.next_change()["taskId"] == str(task["id"])
    # connection_init's payload wins over the header.
    with GraphQLSocket(live.url, headers=auth(hs_token(unique_user("other")))) as socket:
        socket.sign_in(token)
        socket.send({"id": "q", "type": "subscribe", "payload": {"query": "{ me { id } }"}})
        assert socket.recv()["payload"]["data"] == {"me": {"id": user}}


@pytest.mark.parametrize(
    ("payload", "code", "reason"),
    [
        (None, 4401, "Unauthorized: send"),
        ({}, 4401, "Unauthorized: send"),
        (
            {"Authorization": "Bearer not.a.jwt"},
            4403,
            "Forbidden: The bearer token is not a well-formed JWT.",
        ),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 4403, "Forbidden: The Authorization header must be"),
        ({"Authorization": 42}, 4403, "Forbidden: connection_init's Authorization must be a string."),
        (
            {"Authorization": f"Bearer {hs_token('x', secret=OTHER_SECRET)}"},
            4403,
            "Forbidden: The bearer token's signature is invalid.",
        ),
        ({"Authorization": f"Bearer {hs_token('x', ttl=-120)}"}, 4401, "Token expired"),
    ],
)
def test_refused_connections(
    live: LiveServer, payload: dict[str, Any] | None, code: int, reason: str
) -> None:
    with GraphQLSocket(live.url) as socket:
        socket.send({"type": "connection_init", **({"payload": payload} if payload is not None else {})})
        closed = socket.closed()
        assert closed.code == code
        assert closed.reason.startswith(reason), closed.reason
        assert len(closed.reason.encode()) <= 123


def test_subscribe_before_connection_init_is_4401(live: LiveServer) -> None:
    with GraphQLSocket(live.url) as socket:
        socket.subscribe()
        assert socket.closed().code == 4401


def test_subscription_ends_when_the_token_expires(database: DatabaseURL) -> None:
    settings = settings_for(database, BETTER_AUTH_SECRET=HS_SECRET, JWT_LEEWAY_SECONDS="0")
    with live_server(settings) as server:
        started = time.time()
        # Expires 3 to 4 s from now (whole seconds): time to subscribe before it does.
        with subscribed(server.url, hs_token(unique_user("expiring"), ttl=4)) as socket:
            closed = socket.closed(timeout=12)
        assert (closed.code, closed.reason) == (4401, "Token expired")
        assert 2.9 <= time.time() - started <= 8


def test_stream_limit_closes_with_4429(database: DatabaseURL) -> None:
    env = {"LIVE_MAX_STREAMS_PER_USER": "2"}
    with live_server(settings_for(database, BETTER_AUTH_SECRET=HS_SECRET, **env)) as server:
        user = unique_user("ws-limited")
        token = hs_token(user)
        with SSEStream(server.url, token) as sse, GraphQLSocket(server.url) as socket:
            assert sse.status == 200  # SSE and WebSocket streams count together
            socket.sign_in(token)
            socket.subscribe("1")
            assert socket.next_change()["kind"] == "READY"
            socket.subscribe("2")
            closed = socket.closed()
            assert closed.code == 4429
            assert "live streams open" in closed.reason
        # The streams were freed when they closed: the server notices each close a moment
        # later (the SSE one when its disconnect arrives), so retry until a deadline.
        deadline = time.monotonic() + 10
        while True:
            try:
                with subscribed(server.url, token), subscribed(server.url, token):
                    break
            except Closed as refused:  # 4429 until the server has freed both places
                if refused.code != 4429 or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


def test_resume_after_a_reconnect(live: LiveServer) -> None:
    token = hs_token(unique_user("ws-resume"))
    with subscribed(live.url, token) as socket:
        create(live, token, "seen")
        last = socket.next_change()["eventId"]
    missed = [create(live, token, f"missed {i}")["id"] for i in range(2)]
    with GraphQLSocket(live.url) as socket:
        socket.sign_in(token)
        socket.subscribe(after=last)
        # The replay ends with READY; a change whose announcement reaches this process
        # only after the resume arrives live, just after READY. Either way, none is lost
        # and they come in order.
        received = [socket.next_change() for _ in range(3)]
        assert [c["taskId"] for c in received if c["kind"] != "READY"] == [str(i) for i in missed]
        [ready] = [c for c in received if c["kind"] == "READY"]
        assert ready["reason"] == "resumed"
    with GraphQLSocket(live.url) as socket:
        socket.sign_in(token)
        socket.subscribe(after="r0000")
        ready = socket.next_change()
        assert (ready["kind"], ready["reason"]) == ("READY", "resume_unavailable")


def test_users_only_see_their_own_changes(live: LiveServer) -> None:
    ta, tb = hs_token(unique_user("ws-a")), hs_token(unique_user("ws-b"))
    with subscribed(live.url, ta) as a, subscribed(live.url, tb) as b:
        secret = create(live, ta, "alice only")
        marker = create(live, tb, "bob's")
        assert a.next_change()["taskId"] == str(secret["id"])
        assert b.next_change()["taskId"] == str(marker["id"])  # the first he sees is his own
        with pytest.raises(AssertionError, match="no message"):
            b.recv(timeout=0.5)


def test_legacy_graphql_ws_protocol(live: LiveServer) -> None:
    token = hs_token(unique_user("legacy"))
    with GraphQLSocket(live.url, protocol="graphql-ws") as socket:
        ack = socket.init({"Authorization": f"Bearer {token}"})
        assert ack["type"] == "connection_ack"
        socket.subscribe()
        assert socket.next_change()["kind"] == "READY"
        task = create(live, token, "legacy")
        assert socket.next_change()["taskId"] == str(task["id"])
    with GraphQLSocket(live.url, protocol="graphql-ws") as socket:
        error = socket.init({"Authorization": "Bearer nope"})
        assert error["type"] == "connection_error"
        assert socket.closed().code == 4403


def test_subscriptions_are_not_served_over_http(live: LiveServer) -> None:
    r = httpx.post(
        live.url + "/graphql",
        json={"query": SUBSCRIPTION},
        headers=auth(hs_token(unique_user("http"))),
    )
    assert r.status_code == 400, r.text
    assert r.json()["detail"] == "Subscriptions are not allowed when using POST."


def test_browsers_from_the_allowed_origins_only(live: LiveServer) -> None:
    token = hs_token(unique_user("origin"))
    with GraphQLSocket(live.url, origin="http://localhost:3000") as socket:
        socket.sign_in(token)
    with pytest.raises(Exception, match="403"):
        GraphQLSocket(live.url, origin="https://evil.example")


def test_live_updates_turned_off(database: DatabaseURL) -> None:
    settings = settings_for(database, BETTER_AUTH_SECRET=HS_SECRET, LIVE_UPDATES="false")
    with live_server(settings) as server, GraphQLSocket(server.url) as socket:
        socket.sign_in(hs_token(unique_user("off")))
        socket.subscribe()
        message = socket.recv()
        assert message["type"] == "next"
        [error] = message["payload"]["errors"]
        assert error["extensions"]["code"] == "LIVE_UPDATES_UNAVAILABLE"
        assert error["message"] == "Live updates are turned off on this server."
        assert socket.recv()["type"] == "complete"


def test_errors_over_websocket_carry_codes_as_over_http(live: LiveServer) -> None:
    with GraphQLSocket(live.url) as socket:
        socket.sign_in(hs_token(unique_user("codes")))
        socket.send({"id": "a", "type": "subscribe", "payload": {"query": '{ task(id: "abc") { id } }'}})
        [error] = socket.recv()["payload"]["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert socket.recv()["type"] == "complete"
        mutation = 'mutation { toggleTaskCompletion(id: "999999999") { id } }'
        socket.send({"id": "b", "type": "subscribe", "payload": {"query": mutation}})
        [error] = socket.recv()["payload"]["errors"]
        assert error["extensions"]["code"] == "NOT_FOUND"
