"""Live updates: committed task changes, from PostgreSQL to the streams open in this process.

Every write announces its change with NOTIFY once it has committed, batched with the
other writes its process finished meanwhile (db/announce.py), or inside its own
transaction with LIVE_ANNOUNCE=in_transaction (db/queries.py); never for a write that
failed or rolled back. Each process keeps one LISTEN connection (`ChangeFeed`). It must
be a direct connection: through a transaction-mode pooler, LISTEN would register on
whichever server connection the pooler lent for that one transaction, soon someone
else's.

The feed

- hands each change to the open streams of the task's owner only, each through a
  bounded queue: a stream more than `queue_size` changes behind is dropped with a
  resync (its client refetches and reconnects) instead of slowing anyone down;
- keeps the last `replay_events` changes (of all users together) so that a stream can
  resume (SSE Last-Event-ID, GraphQL `after`): resumed from a change still kept, it
  gets every later change of its user, in the order announced. PostgreSQL delivers
  notifications in the order their NOTIFY transactions committed, the same on every
  instance, so a resume point from one instance is good on another that was listening
  at the time;
- delivers one task's changes in commit order: announced after the commit, two of them
  can arrive the other way round (two processes, or two requests of one process whose
  results came back crosswise); a task's event ids rise in commit order (the row lock
  orders its writes, each takes its id after writing, and task_change_seq has CACHE 1,
  checked by tests/live/test_announce.py), so a change older than one already published
  for its task is dropped: its client gets the newer state, not the older kind;
- on MISSED (a process could not announce some changes) tells every open stream to
  resync and forgets its resume points, as after a reconnect;
- reconnects by itself when the connection is lost (a restart or failover: noticed
  at once when the server closes it; a silent network cut: within PING_SECONDS +
  PING_TIMEOUT), with backoff. Changes committed while nobody listened are not known,
  so once it listens again every open stream gets a resync (refetch), and resume
  points from before the gap are refused (the client refetches instead);
- limits the open streams per user and per process.

Positions: every change has the id of its announcement (task_change_seq). A stream also
gets position ids when it starts (`Ready`) and on a resync; they are the newest entry
kept, a change of anyone's or a mark the feed placed when it (re)started listening.
Clients treat ids as opaque resume tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any, TypeAlias

import asyncpg
import orjson

from db.announce import unpack
from db.errors import unavailable_reason
from db.queries import CHANGES_CHANNEL, MISSED, TASK_COLUMN_NAMES
from db.url import DatabaseURL

log = logging.getLogger("api.live")

KINDS = frozenset({"created", "updated", "completed", "uncompleted", "deleted"})
PING_SECONDS = 10.0  # how often an idle LISTEN connection is checked
PING_TIMEOUT = 5.0
RECONNECT_MIN_SECONDS = 0.1
RECONNECT_MAX_SECONDS = 5.0
RENDER_CACHE_SPAN = 512  # the newest changes keep their renderings (SSE frame, GraphQL object)
MAX_POSITION_LENGTH = 64  # longer resume points are not ours: treated as unknown
_TIME_COLUMNS = frozenset({"due_date", "created_at", "updated_at"})
MISSED_VALUE = orjson.loads(MISSED)


@dataclass(frozen=True, slots=True, eq=False)
class Change:
    """One committed change to one task, as announced."""

    id: str  # the event id (task_change_seq)
    user_id: str
    kind: str  # one of KINDS
    at: datetime  # when the writing statement ran (its commit follows at once)
    task_id: int
    # The task after the change as a row in db.queries.TASK_COLUMN_NAMES order; None for
    # a deletion, and when it was too large to announce (the client refetches it).
    task: tuple[Any, ...] | None
    # Renderings of this change, made once however many streams send it.
    cache: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Ready:
    """First on every stream (after what a resume replays). reason: `new` (no resume
    point given), `resumed` (every missed change was replayed before this), or
    `resume_unavailable` (the resume point is not kept: refetch)."""

    id: str
    reason: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Resync:
    """Changes may have been missed: refetch. reason: `reconnected` (the feed lost its
    database connection and listens again), `missed` (a process could not announce
    some changes) or `overflow` (this stream fell too far behind; an End follows)."""

    id: str
    reason: str
    at: datetime


@dataclass(frozen=True, slots=True)
class End:
    """The stream is over: `shutdown` (this process is stopping: reconnect, to
    another instance) or `overflow` (after a Resync)."""

    reason: str


@dataclass(frozen=True, slots=True)
class _Mark:
    """A position without a change: where listening (re)started."""

    id: str


Item: TypeAlias = Change | Ready | Resync | End
_Entry: TypeAlias = Change | _Mark


class StreamRefused(Exception):
    """A stream cannot be opened (REST: the status; WebSocket: the close code)."""

    status = 503
    code = "live_updates_unavailable"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class TooManyStreams(StreamRefused):
    status = 429
    code = "too_many_streams"


class LiveUnavailable(StreamRefused):
    pass


class Stream:
    """One subscriber's bounded queue of items. Read with get(); close() when done."""

    __slots__ = ("_feed", "_items", "_limit", "_waiter", "user_id")

    def __init__(self, feed: ChangeFeed, user_id: str, limit: int) -> None:
        self._feed = feed
        self.user_id = user_id
        self._items: deque[Item] = deque()
        self._limit = limit
        self._waiter: asyncio.Future[None] | None = None

    async def get(self, wait: float | None = None) -> Item | None:
        """The next item, or None when `wait` seconds pass first (None: no limit)."""
        if not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(wait):
                    await self._waiter
            except TimeoutError:
                return None
            finally:
                self._waiter = None
        return self._items.popleft()

    def get_nowait(self) -> Item | None:
        """The next item if one is queued, else None."""
        return self._items.popleft() if self._items else None

    def close(self) -> None:
        """Stop receiving (idempotent): frees this stream's place in the limits."""
        self._feed._remove(self)

    def _put(self, item: Item) -> bool:
        """Queue an item; False when the queue is full."""
        if len(self._items) >= self._limit:
            return False
        self._items.append(item)
        self._wake()
        return True

    def _end(self, *items: Item, keep: bool) -> None:
        """The last items, beyond the bound (keep: after what is queued; else instead)."""
        if not keep:
            self._items.clear()
        self._items.extend(items)
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class ChangeFeed:
    """The process's LISTEN connection and the live streams it feeds (see the module).

    `url` None: live updates are off here (`disabled_reason` says why) and open()
    refuses every stream."""

    def __init__(
        self,
        url: DatabaseURL | None,
        *,
        disabled_reason: str = "Live updates are turned off on this server.",
        max_streams: int = 1000,
        max_streams_per_user: int = 10,
        queue_size: int = 256,
        replay_events: int = 10_000,
        connect_timeout: float = 3.0,
    ) -> None:
        self._url = url
        self.disabled_reason = disabled_reason
        self.max_streams = max_streams
        self.max_streams_per_user = max_streams_per_user
        self.queue_size = queue_size
        self._replay_events = max(1, replay_events)
        self._connect_timeout = connect_timeout
        self._by_user: dict[str, set[Stream]] = {}
        self._count = 0
        # The newest entries, oldest first; entry i has the ordinal _first + i.
        self._buffer: deque[_Entry] = deque()
        self._ordinals: dict[str, int] = {}
        # Each kept task's newest event id (db/announce.py: announcements of one task
        # from two processes may arrive out of commit order; its ids rise in it).
        self._newest: dict[int, int] = {}
        self._first = 0
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._stopping = False
        self._new_epoch()

    # -- state ---------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        return self._url is not None

    @property
    def listening(self) -> bool:
        return self._listening.is_set()

    @property
    def open_streams(self) -> int:
        return self._count

    @property
    def position(self) -> str:
        """The newest position: a stream resumed from it misses nothing after now."""
        return self._buffer[-1].id

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Start listening; waits up to the connect timeout for the first LISTEN (a
        slower database is retried in the background, its streams told to resync)."""
        if self._url is None or self._task is not None:
            return
        self._task = asyncio.create_task(self._listen_forever(), name="live updates: LISTEN")
        try:
            async with asyncio.timeout(self._connect_timeout + 1):
                await self._listening.wait()
        except TimeoutError:
            log.warning("Live updates: not listening yet (the database is slow to answer); retrying")

    def end_streams(self) -> int:
        """Shutdown: end every open stream (after what it has queued) and refuse new
        ones, so that open streams never hold up the process's exit. Returns how many."""
        self._stopping = True
        streams = [s for streams in self._by_user.values() for s in streams]
        self._by_user.clear()
        self._count = 0
        for stream in streams:
            stream._end(End("shutdown"), keep=True)
        return len(streams)

    async def close(self) -> None:
        ended = self.end_streams()
        if ended:
            log.info("Live updates: ended %d open streams", ended)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- streams -------------------------------------------------------------------

    def open(self, user_id: str, after: str | None = None) -> Stream:
        """A new stream of `user_id`'s changes, starting with Ready (after the changes
        since `after`, when that position is still kept). Raises StreamRefused."""
        if self._url is None:
            raise LiveUnavailable(self.disabled_reason, retry_after=60)
        if self._stopping:
            raise LiveUnavailable("This server is shutting down; reconnect.", retry_after=1)
        streams = self._by_user.get(user_id)
        if streams is not None and len(streams) >= self.max_streams_per_user:
            raise TooManyStreams(
                f"You have {len(streams)} live streams open, the most one user may have on a server;"
                " close one first.",
                retry_after=5,
            )
        if self._count >= self.max_streams:
            raise TooManyStreams(
                f"This server has {self._count} live streams open, its limit; try again shortly.",
                retry_after=5,
            )
        stream = Stream(self, user_id, self.queue_size)
        reason = "new"
        if after is not None:
            reason = "resume_unavailable"
            ordinal = self._ordinals.get(after) if len(after) <= MAX_POSITION_LENGTH else None
            if ordinal is not None:
                missed = [
                    entry
                    for entry in islice(self._buffer, ordinal - self._first + 1, None)
                    if isinstance(entry, Change) and entry.user_id == user_id
                ]
                if len(missed) < self.queue_size:
                    stream._items.extend(missed)
                    reason = "resumed"
        stream._items.append(Ready(self.position, reason, _now()))
        if streams is None:
            streams = self._by_user[user_id] = set()
        streams.add(stream)
        self._count += 1
        return stream

    def _remove(self, stream: Stream) -> None:
        streams = self._by_user.get(stream.user_id)
        if streams is None or stream not in streams:
            return
        streams.discard(stream)
        if not streams:
            del self._by_user[stream.user_id]
        self._count -= 1

    def _drop(self, stream: Stream) -> None:
        """A stream that fell a whole queue behind: told to resync, then ended."""
        self._remove(stream)
        stream._end(Resync(self.position, "overflow", _now()), End("overflow"), keep=False)

    def _all_streams(self) -> list[Stream]:
        return [s for streams in self._by_user.values() for s in streams]

    # -- announcements -------------------------------------------------------------

    def _on_notify(self, connection: object, pid: int, channel: str, payload: object) -> None:
        try:
            if not isinstance(payload, str | bytes):
                raise TypeError("the payload is not text")
            announcements = unpack(payload)  # one, or a packed batch (db/announce.py)
        except (ValueError, TypeError):
            log.warning("Live updates: ignored a malformed announcement: %.200r", payload)
            return
        for data in announcements:
            if data == MISSED_VALUE:  # some process lost announcements (db/announce.py)
                self._new_epoch()
                told = self._resync_all("missed")
                log.warning("Live updates: announcements were lost; %d open streams told to resync", told)
                continue
            try:
                change = change_from(data)
            except Exception:  # one bad entry must not cost the rest of its batch
                log.warning("Live updates: ignored a malformed announcement: %.200r", data, exc_info=True)
                continue
            self.publish(change)

    def publish(self, change: Change) -> None:
        """Keep `change` for resumes and queue it on its owner's streams."""
        if change.id in self._ordinals:  # never twice
            return
        newest = self._newest.get(change.task_id)
        event = int(change.id)
        if newest is not None and event < newest:
            return  # older than a change already published: a stale state of the task
        self._newest[change.task_id] = event
        self._append(change)
        streams = self._by_user.get(change.user_id)
        if not streams:
            return
        for stream in tuple(streams):
            if not stream._put(change):
                self._drop(stream)

    def _append(self, entry: _Entry) -> None:
        self._ordinals[entry.id] = self._first + len(self._buffer)
        self._buffer.append(entry)
        if len(self._buffer) > self._replay_events:
            oldest = self._buffer.popleft()
            del self._ordinals[oldest.id]
            if isinstance(oldest, Change) and self._newest.get(oldest.task_id) == int(oldest.id):
                del self._newest[oldest.task_id]
            self._first += 1
        if len(self._buffer) > RENDER_CACHE_SPAN:
            # Its streams have long sent it: keep the change (for resumes), not its
            # renderings (about 1 KB each), which a resume makes again.
            older = self._buffer[-RENDER_CACHE_SPAN - 1]
            if isinstance(older, Change):
                older.cache.clear()

    def _new_epoch(self) -> None:
        """Forget every position: changes may be missed from here until LISTEN runs."""
        self._buffer.clear()
        self._ordinals.clear()
        self._newest.clear()
        self._first = 0
        self._append(_Mark(f"r{secrets.token_hex(8)}"))

    def _resync_all(self, reason: str) -> int:
        streams = self._all_streams()
        resync = Resync(self.position, reason, _now())
        for stream in streams:
            if not stream._put(resync):
                self._drop(stream)
        return len(streams)

    # -- the LISTEN connection -----------------------------------------------------

    async def _listen_forever(self) -> None:
        assert self._url is not None
        loop = asyncio.get_running_loop()
        delay = RECONNECT_MIN_SECONDS
        lost_at: float | None = None
        first = True
        while True:
            try:
                connection = await self._connect()
            except Exception as error:  # whatever it is: try again
                if lost_at is None:
                    lost_at = loop.time()
                    log.warning(
                        "Live updates: cannot LISTEN (%s); retrying", unavailable_reason(error) or error
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)
                continue
            try:
                lost = asyncio.Event()
                connection.add_termination_listener(lambda _, lost=lost: lost.set())
                # Positions from before are no good now: changes committed until LISTEN
                # runs are never heard of.
                self._new_epoch()
                await connection.add_listener(CHANGES_CHANNEL, self._on_notify)
                self._listening.set()
                delay = RECONNECT_MIN_SECONDS
                told = self._resync_all("reconnected")
                if first:  # not INFO: start-up promises two lines (tests/service/test_embedded.py)
                    log.debug("Live updates: listening for task changes")
                elif lost_at is not None:
                    log.warning(
                        "Live updates: listening again after %.1fs; %d open streams told to resync",
                        loop.time() - lost_at,
                        told,
                    )
                first, lost_at = False, None
                await self._watch(connection, lost)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning("Live updates: the LISTEN connection failed: %s", error)
            except Exception:  # a bug must not end live updates for the life of the process
                log.exception("Live updates: unexpected failure of the LISTEN connection")
            finally:
                self._listening.clear()
                connection.terminate()
            lost_at = loop.time()
            log.warning("Live updates: lost the LISTEN connection; reconnecting")
            await asyncio.sleep(delay)

    async def _connect(self) -> asyncpg.Connection:
        assert self._url is not None
        options: dict[str, Any] = {"timeout": self._connect_timeout, **self._url.connect_args}
        return await asyncpg.connect(
            self._url.asyncpg_dsn,
            statement_cache_size=0,
            server_settings={"application_name": "todo-api live updates"},
            # LISTEN itself must not wait forever on a frozen server.
            command_timeout=PING_TIMEOUT,
            **options,
        )

    @staticmethod
    async def _watch(connection: asyncpg.Connection, lost: asyncio.Event) -> None:
        """Returns when the connection is lost, or stops answering."""
        while not connection.is_closed():
            try:
                async with asyncio.timeout(PING_SECONDS):
                    await lost.wait()
                return
            except TimeoutError:
                pass
            try:
                async with asyncio.timeout(PING_TIMEOUT):
                    await connection.execute("SELECT 1")
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                return


def parse_change(payload: object) -> Change:
    """A Change from an announcement's JSON text (db/queries.py writes them)."""
    if not isinstance(payload, str | bytes):
        raise TypeError("the payload is not text")
    return change_from(orjson.loads(payload))


def change_from(data: object) -> Change:
    """A Change from an announcement, decoded."""
    if not isinstance(data, dict):
        raise TypeError("an announcement is a JSON object")
    event_id, user_id, kind, task_id = data["id"], data["user_id"], data["kind"], data["task_id"]
    if not (
        isinstance(event_id, int)
        and isinstance(user_id, str)
        and kind in KINDS
        and isinstance(task_id, int)
        and not isinstance(task_id, bool)
    ):
        raise ValueError("unexpected fields")
    task = data.get("task")
    row = None
    if isinstance(task, dict) and kind != "deleted":
        try:
            row = tuple(
                _column(name, user_id if name == "user_id" else task[name]) for name in TASK_COLUMN_NAMES
            )
        except (KeyError, ValueError, TypeError):
            row = None  # announced, but not readable here: the client refetches it
    return Change(str(event_id), user_id, kind, _time(data["at"]), task_id, row)


def _column(name: str, value: Any) -> Any:
    if name in _TIME_COLUMNS and value is not None:
        return _time(value)
    return value


def _time(value: object) -> datetime:
    """PostgreSQL's JSON rendering of a timestamptz (in the writer's TimeZone), as UTC."""
    if not isinstance(value, str):
        raise TypeError("a time must be a string")
    return datetime.fromisoformat(value).astimezone(UTC)


def _now() -> datetime:
    return datetime.now(UTC)
