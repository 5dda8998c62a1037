"""Subscription fields: your task changes as they are committed, over WebSocket.

api/live.py serves them at /graphql (graphql-transport-ws, and the legacy graphql-ws)
and signs the connection in from connection_init's payload; db/live.py delivers the
changes. What a client sees:

- READY first (after the changes a resume replays): the subscription is live. Its
  `reason` is `new` (no `after` given: fetch now if you have not), `resumed` (every
  change you missed since `after` came before it) or `resume_unavailable` (`after` is
  too old or unknown here: refetch).
- CREATED, UPDATED, COMPLETED, UNCOMPLETED, DELETED: one change each; one task's in
  commit order (a change overtaken by a newer one of the same task is skipped).
- RESYNC: changes may have been missed (`reconnected`: the server lost its database
  connection and listens again; `missed`: a server could not announce some changes;
  `overflow`: you fell too far behind, and the subscription then completes): refetch.

Every item has an `eventId`: subscribe again with `after: <the last eventId you saw>`
to resume.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from db.engine import Database
from db.live import Change, ChangeFeed, End, Item, LiveUnavailable, Ready, Resync, StreamRefused
from schema.context import Authenticator, RequestContext
from schema.types import Task

# WebSocket close codes of this API (README "Live updates").
CLOSE_SERVICE_RESTART = 1012  # this instance is stopping: reconnect (graphql-ws retries)
CLOSE_TRY_AGAIN_LATER = 1013  # token keys unavailable for now: retry (graphql-ws retries)
CLOSE_UNAUTHORIZED = 4401  # no token, or it expired (then the reason says "Token expired")
CLOSE_FORBIDDEN = 4403  # a token that is not valid here
CLOSE_TOO_MANY_STREAMS = 4429  # the per-user or per-server limit of open streams


@strawberry.enum(description="What happened. READY and RESYNC are about the subscription itself.")
class TaskChangeKind(Enum):
    CREATED = "created"
    UPDATED = "updated"
    COMPLETED = "completed"
    UNCOMPLETED = "uncompleted"
    DELETED = "deleted"
    READY = "ready"
    RESYNC = "resync"


@strawberry.type(description="One change to one of your tasks, or READY / RESYNC.")
class TaskChange:
    event_id: strawberry.ID = strawberry.field(
        description="A resume point: subscribe again with `after` set to the last one you saw."
    )
    kind: TaskChangeKind
    task_id: strawberry.ID | None = strawberry.field(
        description="The task changed; null for READY and RESYNC."
    )
    task: Task | None = strawberry.field(
        description="The task after the change. Null for DELETED, READY and RESYNC, and when"
        " the task was too large to announce: then fetch it by `taskId`."
    )
    at: datetime = strawberry.field(description="When the change was committed (READY, RESYNC: sent).")
    reason: str | None = strawberry.field(
        description="READY: `new`, `resumed` or `resume_unavailable` (refetch);"
        " RESYNC: `reconnected`, `missed` or `overflow` (refetch; after `overflow` the"
        " subscription completes)."
    )


class LiveContext(RequestContext):
    """The context of one WebSocket connection: signed in by its connection_init (or
    the upgrade request's Authorization header), with the process's change feed and a
    way to close the connection."""

    def __init__(
        self,
        *,
        db: Database,
        authenticate: Authenticator,
        authorization: str | None,
        feed: ChangeFeed,
        close: Callable[[int, str], Awaitable[None]],
    ) -> None:
        super().__init__(db=db, authenticate=authenticate, authorization=authorization)
        self.feed = feed
        self.close = close
        # Set by graphql-transport-ws / graphql-ws on connection_init.
        self.connection_params: dict[str, Any] | None = None


def task_change(item: Change | Ready | Resync) -> TaskChange:
    if isinstance(item, Change):
        change: TaskChange | None = item.cache.get("graphql")
        if change is None:
            change = item.cache["graphql"] = TaskChange(
                event_id=strawberry.ID(item.id),
                kind=TaskChangeKind(item.kind),
                task_id=strawberry.ID(str(item.task_id)),
                task=None if item.task is None else Task.from_row(item.task),
                at=item.at,
                reason=None,
            )
        return change
    kind = TaskChangeKind.READY if isinstance(item, Ready) else TaskChangeKind.RESYNC
    return TaskChange(
        event_id=strawberry.ID(item.id), kind=kind, task_id=None, task=None, at=item.at, reason=item.reason
    )


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Your task changes as they are committed, from any instance of the service."
        " Starts with READY; RESYNC means refetch. `after`: resume after this eventId."
        " Over WebSocket at /graphql (graphql-transport-ws), signed in by connection_init's"
        ' payload {"Authorization": "Bearer <token>"}.'
    )
    async def task_changes(
        self, info: Info[RequestContext, None], after: strawberry.ID | None = None
    ) -> AsyncGenerator[TaskChange, None]:
        ctx = info.context
        if not isinstance(ctx, LiveContext):
            raise GraphQLError(
                "Subscriptions are served over WebSocket at /graphql (graphql-transport-ws).",
                extensions={"code": "BAD_REQUEST"},
            )
        viewer = await ctx.viewer()
        try:
            stream = ctx.feed.open(viewer.id, after=None if after is None else str(after))
        except LiveUnavailable as error:
            raise GraphQLError(error.message, extensions={"code": "LIVE_UPDATES_UNAVAILABLE"}) from None
        except StreamRefused as error:
            await ctx.close(CLOSE_TOO_MANY_STREAMS, error.message)
            return
        try:
            while True:
                item: Item | None = await stream.get()
                if isinstance(item, End):
                    if item.reason == "shutdown":
                        await ctx.close(CLOSE_SERVICE_RESTART, "The server is restarting: reconnect.")
                    return
                if item is not None:
                    yield task_change(item)
        finally:
            stream.close()
