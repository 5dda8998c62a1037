"""Server-Sent Events for REST frontends: GET /api/tasks/events (and
/api/{user_id}/tasks/events), your task changes as they are committed.

The stream (text/event-stream; README "Live updates"):

    retry: 2000

    id: r3f...                 <- a position (opaque); the Last-Event-ID to resume from
    event: ready
    data: {"event_id": "r3f...", "kind": "ready", "reason": "new", "at": "..."}

    id: 1042
    event: created             <- created | updated | completed | uncompleted | deleted
    data: {"event_id": "1042", "kind": "created", "task_id": 7, "task": {...}, "at": "..."}

    : keep-alive               <- a comment when nothing was sent for LIVE_KEEPALIVE_SECONDS

    event: token_expired       <- then the stream ends: reconnect with a fresh token
    data: {"detail": "...", "code": "token_expired"}

`task` is the task as the REST routes return it; null for `deleted` and when it was
too large to announce (fetch it by `task_id`). `ready` comes first (after what a
resume replays), with `reason` new, resumed or resume_unavailable (refetch); `resync`
(reason reconnected, missed or overflow) means changes may have been missed: refetch. After
`resync` with reason overflow the stream ends; a reconnect with Last-Event-ID then
starts from the resync's position.

Kept out of the OpenAPI document: an endless response is nothing a generated client
or a schema-driven test can use.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from db.live import Change, End, Ready, Resync, Stream, StreamRefused
from rest_shim.deps import AuthenticatedRoute, RestContext
from rest_shim.models import task_json
from schema.errors import error_response
from schema.types import Task

router = APIRouter(tags=["live updates"], route_class=AuthenticatedRoute)

RETRY_MILLISECONDS = 2000  # how long an EventSource waits before reconnecting
BATCH = 64  # queued items sent in one write
TOKEN_EXPIRED_FRAME = (
    b"event: token_expired\ndata: "
    + orjson.dumps(
        {
            "detail": "The bearer token has expired: reconnect with a fresh one (and Last-Event-ID).",
            "code": "token_expired",
        }
    )
    + b"\n\n"
)
KEEP_ALIVE_FRAME = b": keep-alive\n\n"


@router.get("/tasks/events", include_in_schema=False)
async def task_events(ctx: RestContext, request: Request) -> Response:
    viewer = await ctx.viewer()
    state = request.app.state
    last_event_id = (request.headers.get("last-event-id") or "").strip() or None
    try:
        stream = state.live.open(viewer.id, after=last_event_id)
    except StreamRefused as error:
        return error_response(
            error.status, error.code, error.message, headers={"Retry-After": str(error.retry_after)}
        )
    expires_at = state.verifier.expires_at(request.headers.get("authorization"))
    keepalive = state.settings.live_keepalive_seconds
    return EventStreamResponse(stream, _frames(stream, expires_at, keepalive))


class EventStreamResponse(StreamingResponse):
    """text/event-stream, unbuffered by proxies; the stream is closed however the
    response ends (even if it never starts)."""

    def __init__(self, stream: Stream, content: AsyncIterator[bytes]) -> None:
        super().__init__(
            content,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
        self.stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.stream.close()


async def _frames(stream: Stream, expires_at: float | None, keepalive: float) -> AsyncIterator[bytes]:
    try:
        first = True
        while True:
            timeout = keepalive
            if expires_at is not None:
                left = expires_at - time.time()
                if left <= 0:
                    yield TOKEN_EXPIRED_FRAME
                    return
                timeout = min(timeout, left)
            item = await stream.get(timeout)
            if item is None:
                if expires_at is None or time.time() < expires_at:
                    yield KEEP_ALIVE_FRAME
                continue
            chunk = [b"retry: %d\n\n" % RETRY_MILLISECONDS] if first else []
            first = False
            ended = False
            while item is not None:
                if isinstance(item, End):
                    ended = True
                    break
                chunk.append(frame(item))
                item = stream.get_nowait() if len(chunk) < BATCH else None
            if chunk:
                yield b"".join(chunk)
            if ended:
                return
    finally:
        stream.close()


def frame(item: Change | Ready | Resync) -> bytes:
    """One event of the stream."""
    if isinstance(item, Change):
        rendered: bytes | None = item.cache.get("sse")
        if rendered is None:
            data: dict[str, Any] = {
                "event_id": item.id,
                "kind": item.kind,
                "task_id": item.task_id,
                "task": None if item.task is None else task_json(Task.from_row(item.task)),
                "at": item.at,
            }
            rendered = item.cache["sse"] = _event(item.id, item.kind, data)
        return rendered
    kind = "ready" if isinstance(item, Ready) else "resync"
    return _event(item.id, kind, {"event_id": item.id, "kind": kind, "reason": item.reason, "at": item.at})


def _event(event_id: str, name: str, data: dict[str, Any]) -> bytes:
    return b"id: %s\nevent: %s\ndata: %s\n\n" % (event_id.encode(), name.encode(), orjson.dumps(data))
