"""Live updates, the serving side: GraphQL subscriptions over WebSocket at /graphql, the
change feed's start (in the lifespan, after the pool), and ending open streams as soon
as the server starts shutting down. (The SSE routes are in rest_shim/events.py; the
feed itself in db/live.py.)

WebSocket connections speak graphql-transport-ws (graphql-ws's protocol) or the legacy
graphql-ws (subscriptions-transport-ws). A browser cannot set headers on a WebSocket,
so the token comes in connection_init's payload, `{"Authorization": "Bearer <jwt>"}`;
server clients may send the Authorization header on the upgrade request instead. The
connection is refused with a close code and a reason (schema/subscription.py lists the
codes): 4401 without a token, 4403 with a token that is not valid here, 4401 "Token
expired" for an expired one, and it is closed with 4401 "Token expired" when its
token expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import aclosing
from datetime import timedelta
from types import FrameType
from typing import Any, cast

import jwt
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.schema import BaseSchema
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import ConnectionInitMessage
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import (
    ConnectionInitMessage as LegacyConnectionInitMessage,
)

from api.graphql import TaskGraphQL
from api.mount import ScopedWebSocketRoute
from api.settings import Settings
from db.announce import Announcer
from db.engine import Database
from db.live import ChangeFeed
from db.url import DatabaseURL
from schema.context import RequestContext
from schema.errors import AuthUnavailable, Unauthenticated, with_code
from schema.schema import TaskSchema
from schema.subscription import (
    CLOSE_FORBIDDEN,
    CLOSE_TRY_AGAIN_LATER,
    CLOSE_UNAUTHORIZED,
    LiveContext,
)

log = logging.getLogger("api.live")

MAX_CLOSE_REASON_BYTES = 123  # RFC 6455: a close frame's reason
CONNECTION_INIT_TIMEOUT = timedelta(seconds=10)
TOKEN_EXPIRED = "Token expired"
NO_TOKEN = 'Unauthorized: send {"Authorization": "Bearer <token>"} as connection_init\'s payload.'


# -- the feed in the app's lifespan --------------------------------------------------


async def start_live_feed(settings: Settings, url: DatabaseURL, db: Database) -> ChangeFeed:
    """The process's change feed, listening on DATABASE_DIRECT_URL when set, else on
    `url` (the resolved DATABASE_URL) unless that goes through a transaction-mode
    pooler: then live updates are off here, with a warning. Writes announce their
    changes unless LIVE_UPDATES=false, after their commit unless
    LIVE_ANNOUNCE=in_transaction."""
    db.announce = settings.live_updates
    if settings.live_updates and settings.live_announce == "after_commit":
        db.announcer = Announcer(db)
    options: dict[str, Any] = {
        "max_streams": settings.live_max_streams,
        "max_streams_per_user": settings.live_max_streams_per_user,
        "queue_size": settings.live_queue_size,
        "replay_events": settings.live_replay_events,
        "connect_timeout": settings.db_connect_timeout_seconds,
    }
    if not settings.live_updates:
        log.info("Live updates are off (LIVE_UPDATES=false)")
        return ChangeFeed(None, **options)
    listen_url, pooled = settings.migration_database(url)
    if pooled:
        log.warning(
            "LIVE UPDATES DISABLED: DATABASE_URL goes through a transaction-mode pooler, where LISTEN"
            " cannot work, and DATABASE_DIRECT_URL is not set. Set DATABASE_DIRECT_URL (a direct"
            " connection to the same database) to serve GraphQL subscriptions and /api/tasks/events."
        )
        return ChangeFeed(
            None,
            disabled_reason="Live updates are unavailable on this server (it has no direct database"
            " connection to listen on).",
            **options,
        )
    feed = ChangeFeed(listen_url, **options)
    await feed.start()
    return feed


def end_streams_on_exit(feed: ChangeFeed) -> Callable[[], None]:
    """Wrap the SIGINT and SIGTERM handlers (uvicorn's) so that open streams end the
    moment the server starts shutting down: uvicorn waits for responses in progress,
    and an event stream never finishes by itself. Install it before the SIGTERM drain
    (api/drain.py), which then calls it when the drain is over. Returns an undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    installed: dict[int, tuple[Callable[[int, FrameType | None], Any], Any]] = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        current = signal.getsignal(signum)
        if not callable(current):
            continue
        previous: Callable[..., Any] = current

        def on_signal(number: int, frame: FrameType | None, previous: Callable[..., Any] = previous) -> None:
            loop.call_soon_threadsafe(feed.end_streams)
            previous(number, frame)

        signal.signal(signum, on_signal)
        installed[signum] = (on_signal, previous)

    def undo() -> None:
        for signum, (handler, previous) in installed.items():
            if signal.getsignal(signum) is handler:
                signal.signal(signum, previous)

    return undo


# -- GraphQL over WebSocket ------------------------------------------------------------


def graphql_websocket_route(settings: Settings, schema: TaskSchema, path: str = "/graphql") -> WebSocketRoute:
    """The WebSocket side of /graphql (the HTTP side is api/graphql.py's route), on the
    app's own schema (fast or stock, as FAST_PATHS says). Browsers may connect from the
    CORS_ORIGINS (and the same origin)."""
    view = LiveGraphQL(
        cast(BaseSchema, CodedErrors(schema)),
        graphql_ide=None,
        keep_alive=True,  # the legacy protocol's "ka" messages
        keep_alive_interval=settings.live_keepalive_seconds,
        connection_init_wait_timeout=CONNECTION_INIT_TIMEOUT,
        allowed_origins=settings.cors_origins,
    )
    return ScopedWebSocketRoute(path, view)


class CodedErrors:
    """The schema as the WebSocket handlers use it: every error of every result gets its
    code and internals are masked, as TaskSchema.execute does over HTTP (Strawberry's
    streaming path, which WebSocket operations take, never calls execute)."""

    def __init__(self, schema: BaseSchema) -> None:
        self._schema = schema

    def __getattr__(self, name: str) -> Any:
        return getattr(self._schema, name)

    async def stream(self, *args: Any, **kwargs: Any) -> AsyncGenerator[Any, None]:
        return _coded(await self._schema.stream(*args, **kwargs))

    async def subscribe(self, *args: Any, **kwargs: Any) -> AsyncGenerator[Any, None]:
        return _coded(await self._schema.subscribe(*args, **kwargs))


async def _coded(results: AsyncGenerator[Any, None]) -> AsyncGenerator[Any, None]:
    async with aclosing(results):
        async for result in results:
            errors = getattr(result, "errors", None)
            if errors:
                result.errors = [e if (e.extensions or {}).get("code") else with_code(e) for e in errors]
            yield result


class _WebSocketAdapter(ASGIWebSocketAdapter):
    """Messages go out as text frames, as both protocols require (TaskGraphQL encodes
    JSON to bytes, which Strawberry would send as binary frames: the graphql-ws client
    refuses those). Nothing is sent on a connection this side has closed (a
    subscription may close it, e.g. at the token's expiry, while Strawberry still has
    messages to send)."""

    async def send_json(self, message: Mapping[str, object]) -> None:
        if self.ws.application_state == WebSocketState.DISCONNECTED:
            return
        encoded = self.view.encode_json(message)
        try:
            await self.ws.send_text(encoded.decode() if isinstance(encoded, bytes) else encoded)
        except WebSocketDisconnect as error:
            raise WebSocketDisconnected from error

    async def close(self, code: int, reason: str) -> None:
        await close_websocket(self.ws, code, reason)


async def close_websocket(ws: WebSocket, code: int, reason: str) -> None:
    """Close once, with the reason cut to what a close frame holds."""
    if ws.application_state == WebSocketState.DISCONNECTED or ws.client_state == WebSocketState.DISCONNECTED:
        return
    encoded = reason.encode()
    if len(encoded) > MAX_CLOSE_REASON_BYTES:
        reason = encoded[: MAX_CLOSE_REASON_BYTES - 3].decode(errors="ignore") + "..."
    with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
        await ws.close(code, reason)


class _Connection:
    """What both protocols' handlers share: signing in from connection_init, and
    closing the connection when the token expires."""

    context: RequestContext
    websocket: Any  # the _WebSocketAdapter
    _expiry: asyncio.Task[None] | None = None

    async def sign_in(self, payload: Mapping[str, object]) -> tuple[int, str] | None:
        """Signs the connection in (replacing its context): None, or the close code and
        reason that refuse it."""
        ws: WebSocket = self.websocket.ws
        state = ws.app.state
        authorization = _payload_authorization(payload)
        if authorization is None:
            authorization = ws.headers.get("authorization")
        if isinstance(authorization, _NotText):
            return CLOSE_FORBIDDEN, "Forbidden: connection_init's Authorization must be a string."
        context = LiveContext(
            db=state.db,
            authenticate=state.verifier.authenticate,
            authorization=authorization,
            feed=state.live,
            close=lambda code, reason: close_websocket(ws, code, reason),
        )
        try:
            await context.viewer()
        except Unauthenticated as error:
            if not error.token_given:
                return CLOSE_UNAUTHORIZED, NO_TOKEN
            if _expired(authorization):
                return CLOSE_UNAUTHORIZED, TOKEN_EXPIRED
            return CLOSE_FORBIDDEN, f"Forbidden: {error.message}"
        except AuthUnavailable as error:
            return CLOSE_TRY_AGAIN_LATER, f"Try again later: {error.message}"
        self.context = context
        expires_at = state.verifier.expires_at(authorization)
        if expires_at is not None:
            self._expiry = asyncio.create_task(_close_at(ws, expires_at), name="live: token expiry")
        return None

    def stop_expiry(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()


class _NotText:
    pass


def _payload_authorization(payload: Mapping[str, object]) -> str | _NotText | None:
    """`Authorization` (any case) in connection_init's payload, or in its `headers`."""
    for source in (payload, payload.get("headers")):
        if isinstance(source, Mapping):
            for key, value in source.items():
                if isinstance(key, str) and key.lower() == "authorization":
                    return value if isinstance(value, str) else _NotText()
    return None


def _expired(authorization: str | None) -> bool:
    """Whether a token the verifier refused says it has expired (signature unchecked:
    this only chooses between two refusals)."""
    token = (authorization or "").strip().partition(" ")[2].strip()
    try:
        exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
    except jwt.PyJWTError:
        return False
    return isinstance(exp, int | float) and exp < time.time()


async def _close_at(ws: WebSocket, expires_at: float) -> None:
    await asyncio.sleep(max(0.0, expires_at - time.time()))
    await close_websocket(ws, CLOSE_UNAUTHORIZED, TOKEN_EXPIRED)


class _TransportWSHandler(_Connection, BaseGraphQLTransportWSHandler[RequestContext, None]):
    """graphql-transport-ws, signing in from connection_init (Strawberry's on_ws_connect
    can only refuse with 4403 "Forbidden")."""

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        if self.connection_timed_out:
            return
        if self.connection_init_timeout_task:
            self.connection_init_timeout_task.cancel()
        payload = message.get("payload") or {}
        if not isinstance(payload, dict):
            await self.websocket.close(code=4400, reason="Invalid connection init payload")
            return
        if self.connection_init_received:
            await self.websocket.close(code=4429, reason="Too many initialisation requests")
            return
        self.connection_init_received = True
        refusal = await self.sign_in(payload)
        if refusal is not None:
            await self.websocket.close(*refusal)
            return
        await self.send_message({"type": "connection_ack"})
        self.connection_acknowledged = True

    async def shutdown(self) -> None:
        self.stop_expiry()
        await super().shutdown()


class _LegacyWSHandler(_Connection, BaseGraphQLWSHandler[RequestContext, None]):
    """The legacy graphql-ws (subscriptions-transport-ws) protocol, signing in the same way."""

    async def handle_connection_init(self, message: LegacyConnectionInitMessage) -> None:
        payload = message.get("payload") or {}
        if not isinstance(payload, dict):
            await self.send_message({"type": "connection_error"})
            await self.websocket.close(code=4400, reason="Invalid connection init payload")
            return
        refusal = await self.sign_in(payload)
        if refusal is not None:
            await self.send_message({"type": "connection_error", "payload": {"message": refusal[1]}})
            await self.websocket.close(*refusal)
            return
        await self.send_message({"type": "connection_ack"})
        self.connection_acknowledged = True
        if self.keep_alive:
            self.keep_alive_task = asyncio.create_task(self.handle_keep_alive())

    async def handle(self) -> None:
        try:
            await super().handle()
        finally:
            self.stop_expiry()


class LiveGraphQL(TaskGraphQL):
    """TaskGraphQL for WebSocket connections: subscriptions (and queries and mutations)
    signed in by connection_init."""

    graphql_transport_ws_handler_class = _TransportWSHandler
    graphql_ws_handler_class = _LegacyWSHandler
    websocket_adapter_class = _WebSocketAdapter  # type: ignore[assignment]

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> RequestContext:
        if not isinstance(request, WebSocket):
            return await super().get_context(request, response)
        # Not signed in until connection_init (_Connection.sign_in replaces it).
        state = request.app.state
        return LiveContext(
            db=state.db,
            authenticate=_refuse,
            authorization=None,
            feed=state.live,
            close=lambda code, reason: close_websocket(request, code, reason),
        )


async def _refuse(authorization: str | None) -> Any:
    raise Unauthenticated("Send connection_init first.", token_given=False)
