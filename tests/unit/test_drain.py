"""api/drain.py's middleware: `Connection: close` on every response that starts while
draining, whenever its request arrived."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from api.drain import ConnectionCloseWhileDraining, DrainState

SCOPE: Scope = {"type": "http", "method": "GET", "path": "/", "headers": []}


def respond(state: DrainState, *, drain_during_request: bool) -> list[Message]:
    """One request through the middleware; the drain may begin while it is served."""
    sent: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if drain_during_request:
            state.draining = True  # SIGTERM arrives while this request is in flight
        headers = [(b"connection", b"keep-alive")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"{}"})

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(ConnectionCloseWhileDraining(app, state)(SCOPE, receive, send))
    return sent


def connection(messages: list[Message]) -> list[Any]:
    return [v for k, v in messages[0]["headers"] if k == b"connection"]


def test_not_draining_leaves_the_response_alone() -> None:
    assert connection(respond(DrainState(), drain_during_request=False)) == [b"keep-alive"]


def test_draining_closes_the_connection() -> None:
    state = DrainState()
    state.draining = True
    assert connection(respond(state, drain_during_request=False)) == [b"close"]


def test_a_request_in_flight_when_the_drain_begins_closes_its_connection() -> None:
    assert connection(respond(DrainState(), drain_during_request=True)) == [b"close"]
