"""A clean drain on SIGTERM, so rolling restarts lose no request.

On SIGTERM (what Kubernetes, `docker stop` and systemd send) the process first
*drains* for `SHUTDOWN_DRAIN_SECONDS`: it keeps serving, `/readyz` answers 503 so
load balancers stop sending new traffic, and every response carries
`Connection: close`, so each client finishes its current request and opens its next
one elsewhere instead of finding its keep-alive connection closed under it. Then
uvicorn's own shutdown runs: the listener closes, requests still in flight get up to
`SHUTDOWN_TIMEOUT_SECONDS` to complete, and the pool is closed. SIGINT (Ctrl-C) skips
the drain.

The handler wraps uvicorn's own (installed before the app starts), and only in the
main thread, where signals are delivered.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("api")


class DrainState:
    def __init__(self) -> None:
        self.draining = False


class ConnectionCloseWhileDraining:
    """Outermost middleware: every response that starts while draining says
    `Connection: close`, including those of requests that arrived before the drain."""

    def __init__(self, app: ASGIApp, state: DrainState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = self.state

        async def send_closing(message: Message) -> None:
            # Decided when the response starts, not when the request came in: a request
            # in flight at SIGTERM must not leave its client a keep-alive connection.
            if message["type"] == "http.response.start" and state.draining:
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, send_closing)


def install_sigterm_drain(state: DrainState, drain_seconds: float) -> Callable[[], None]:
    """Wrap the current SIGTERM handler (uvicorn's) with a drain; returns an undo."""
    if threading.current_thread() is not threading.main_thread() or drain_seconds <= 0:
        return lambda: None
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(signal.SIGTERM)
    if not callable(previous):
        return lambda: None

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        if state.draining:  # a second SIGTERM: stop now
            previous(signum, frame)
            return
        state.draining = True
        log.info("SIGTERM: draining for %gs (readiness 503, Connection: close), then stopping", drain_seconds)
        loop.call_soon_threadsafe(loop.call_later, drain_seconds, _call, previous, signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)

    def undo() -> None:
        if signal.getsignal(signal.SIGTERM) is on_sigterm:
            signal.signal(signal.SIGTERM, previous)

    return undo


def _call(handler: Callable[..., Any], signum: int, frame: FrameType | None) -> None:
    handler(signum, frame)
