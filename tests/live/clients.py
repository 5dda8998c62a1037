"""Real clients for live updates: an SSE client over real HTTP (httpx streaming, parsed
as the EventSource spec says) and a GraphQL client over a real WebSocket (the
`websockets` package, speaking graphql-transport-ws or the legacy graphql-ws)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin, Subprotocol

from tests.support import auth

TASK_FIELDS = "id title description completed priority dueDate createdAt updatedAt"
SUBSCRIPTION = (
    "subscription Changes($after: ID) { taskChanges(after: $after) {"
    f" eventId kind taskId at reason task {{ {TASK_FIELDS} }} }} }}"
)


# -- SSE -------------------------------------------------------------------------------


@dataclass
class SSEEvent:
    event: str
    data: Any
    id: str | None
    received_at: float = field(default_factory=time.time)


END = object()  # the server ended the stream


class _Loop:
    """One event loop in a daemon thread, shared by every SSE client of the run."""

    _loop: asyncio.AbstractEventLoop | None = None
    _lock = threading.Lock()

    @classmethod
    def get(cls) -> asyncio.AbstractEventLoop:
        with cls._lock:
            if cls._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="sse-clients", daemon=True).start()
                cls._loop = loop
            return cls._loop


OPEN_STREAMS: set[SSEStream] = set()


class SSEStream:
    """GET an event stream (bearer header, Last-Event-ID as a reconnecting client sends
    it); events are read in the background into a queue."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        path: str = "/api/tasks/events",
        last_event_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.url = base_url + path
        self.headers = {**(auth(token) if token else {}), **(headers or {})}
        if last_event_id is not None:
            self.headers["Last-Event-ID"] = last_event_id
        self.status: int | None = None
        self.response_headers: httpx.Headers | None = None
        self.body = b""  # of a refusal
        self.comments: list[str] = []
        self.retry: int | None = None
        self.events: queue.Queue[Any] = queue.Queue()
        self._opened = threading.Event()
        self._future: Future[None] | None = None
        self.error: BaseException | None = None

    def open(self, timeout: float = 10) -> SSEStream:
        self._future = asyncio.run_coroutine_threadsafe(self._read(), _Loop.get())
        OPEN_STREAMS.add(self)
        if not self._opened.wait(timeout):
            raise AssertionError(f"no response from {self.url} in {timeout}s")
        if self.error is not None:
            raise self.error
        return self

    async def _read(self) -> None:
        try:
            async with (
                httpx.AsyncClient(timeout=httpx.Timeout(30, read=None)) as client,
                client.stream("GET", self.url, headers=self.headers) as response,
            ):
                self.status, self.response_headers = response.status_code, response.headers
                if response.status_code != 200:
                    self.body = await response.aread()
                    self._opened.set()
                    return
                self._opened.set()
                fields: dict[str, str] = {}
                data: list[str] = []
                async for line in response.aiter_lines():
                    if line == "":
                        if data:
                            text = "\n".join(data)
                            try:
                                parsed = json.loads(text)
                            except ValueError:
                                parsed = text
                            self.events.put(
                                SSEEvent(fields.get("event", "message"), parsed, fields.get("id"))
                            )
                        fields, data = {}, []
                        continue
                    if line.startswith(":"):
                        self.comments.append(line[1:].strip())
                        continue
                    name, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if name == "data":
                        data.append(value)
                    elif name == "retry":
                        self.retry = int(value)
                    else:
                        fields[name] = value
        except (asyncio.CancelledError, httpx.HTTPError) as error:
            if not isinstance(error, asyncio.CancelledError):
                self.error = error
        except BaseException as error:
            self.error = error
        finally:
            self._opened.set()
            self.events.put(END)

    def get(self, timeout: float = 10) -> SSEEvent:
        """The next event; fails when the stream ends or nothing comes in time."""
        try:
            item = self.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no event within {timeout}s") from None
        if item is END:
            self.events.put(END)
            raise AssertionError(f"the stream ended (error: {self.error!r})")
        assert isinstance(item, SSEEvent)
        return item

    def get_change(self, timeout: float = 10) -> SSEEvent:
        """The next event that is a task change (skipping ready/resync)."""
        while True:
            event = self.get(timeout)
            if event.event not in ("ready", "resync"):
                return event

    def ended(self, timeout: float = 10) -> list[SSEEvent]:
        """Waits for the end of the stream; returns the events before it."""
        seen: list[SSEEvent] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                item = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"the stream did not end within {timeout}s (saw {seen})") from None
            if item is END:
                self.events.put(END)
                return seen
            seen.append(item)

    def quiet(self, seconds: float) -> list[SSEEvent]:
        """Events (not comments) arriving within `seconds`."""
        seen: list[SSEEvent] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                item = self.events.get(timeout=left)
            except queue.Empty:
                break
            if item is END:
                self.events.put(END)
                break
            seen.append(item)
        return seen

    def json(self) -> Any:
        return json.loads(self.body)

    def close(self) -> None:
        OPEN_STREAMS.discard(self)
        future = self._future
        if future is not None and not future.done():
            future.cancel()
            with contextlib.suppress(Exception):
                future.result(timeout=5)

    def __enter__(self) -> SSEStream:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()


def close_all_streams() -> None:
    for stream in list(OPEN_STREAMS):
        stream.close()


# -- GraphQL over WebSocket -----------------------------------------------------------


class Closed(Exception):
    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"closed {code}: {reason}")
        self.code = code
        self.reason = reason


class GraphQLSocket:
    """A WebSocket at /graphql speaking graphql-transport-ws (or the legacy graphql-ws)."""

    def __init__(
        self,
        base_url: str,
        *,
        protocol: str = "graphql-transport-ws",
        headers: dict[str, str] | None = None,
        origin: str | None = None,
    ) -> None:
        self.protocol = protocol
        connection = connect(
            base_url.replace("http://", "ws://") + "/graphql",
            subprotocols=[Subprotocol(protocol)],
            additional_headers=headers,
            origin=None if origin is None else Origin(origin),
            open_timeout=10,
            proxy=None,
            legacy=True,  # a plain connection (no automatic reconnection)
        )
        assert isinstance(connection, ClientConnection)
        self.ws = connection

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send(json.dumps(message))

    def recv(self, timeout: float = 10) -> dict[str, Any]:
        try:
            raw = self.ws.recv(timeout=timeout)
        except TimeoutError:
            raise AssertionError(f"no message within {timeout}s") from None
        except ConnectionClosed as closed:
            raise Closed(
                closed.rcvd.code if closed.rcvd else None, closed.rcvd.reason if closed.rcvd else ""
            ) from None
        assert isinstance(raw, str), "a binary frame: both protocols send text frames"
        message: dict[str, Any] = json.loads(raw)
        return message

    def init(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        message: dict[str, Any] = {"type": "connection_init"}
        if payload is not None:
            message["payload"] = payload
        self.send(message)
        return self.recv()

    def sign_in(self, token: str) -> None:
        ack = self.init({"Authorization": f"Bearer {token}"})
        assert ack["type"] == "connection_ack", ack

    def subscribe(self, op_id: str = "1", after: str | None = None, query: str = SUBSCRIPTION) -> None:
        payload = {"query": query, "variables": {"after": after}}
        kind = "subscribe" if self.protocol == "graphql-transport-ws" else "start"
        self.send({"id": op_id, "type": kind, "payload": payload})

    def next_change(self, timeout: float = 10) -> dict[str, Any]:
        """The next taskChanges item (skipping the legacy protocol's keep-alives)."""
        while True:
            message = self.recv(timeout)
            if message["type"] == "ka":
                continue
            assert message["type"] in ("next", "data"), message
            assert "errors" not in message["payload"], message
            change: dict[str, Any] = message["payload"]["data"]["taskChanges"]
            return change

    def closed(self, timeout: float = 10) -> Closed:
        """Waits for the server to close the connection; returns how."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.recv(max(0.01, deadline - time.monotonic()))
            except Closed as closed:
                return closed
            if time.monotonic() > deadline:
                raise AssertionError("the connection stayed open")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ws.close()

    def __enter__(self) -> GraphQLSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def subscribed(base_url: str, token: str, **options: Any) -> Iterator[GraphQLSocket]:
    """A signed-in connection with one taskChanges subscription, past its READY."""
    with GraphQLSocket(base_url, **options) as socket:
        socket.sign_in(token)
        socket.subscribe()
        ready = socket.next_change()
        assert ready["kind"] == "READY", ready
        yield socket
