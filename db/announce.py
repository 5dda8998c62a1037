"""Announcing writes after their commit, in batches (LIVE_ANNOUNCE=after_commit, the default).

Why: PostgreSQL commits transactions that called NOTIFY one at a time, cluster-wide (a
lock taken before the commit and held until its record is flushed), so a pg_notify in
every write's own transaction halves write throughput (docs/performance.md). Instead,
each write statement returns its announcement's payload as a column and commits on its
own like any write, so commits still share WAL flushes; the process then sends the
payloads of every write finished meanwhile in one NOTIFY transaction (packed into as
few notifications as fit PostgreSQL's limit: `pack`), one such transaction in flight
at a time, and answers each write once its announcement is out.
(Answering at once was measured too: the same throughput at 64 connections, 1.6-2.5x
the floor's p99 instead of 0.8-1.3x, and the ordering below lost.) That transaction writes
no data, so PostgreSQL commits it without waiting for a WAL flush (pg_stat_wal counted
2-3 syncs for 300 of them) and holds its lock only briefly.

What stays true, as with announcing inside the write (LIVE_ANNOUNCE=in_transaction):
only committed writes are announced (a payload is sent after its statement committed,
never for one that failed); a write's response comes after its announcement, so a
client's next write is announced after it, through any instance; every instance hears
the same announcements in the same order, so event ids work as resume points across
instances.

What changes, and why it is acceptable:
- A process killed between a write's commit and its announcement (SIGKILL, a crash;
  not SIGTERM, which waits for the writes in progress) loses that announcement:
  listeners learn of the change at their next refetch. The window is one round trip.
- A write takes one more round trip (the NOTIFY) before its response; under load the
  writes finished together share it.
- A failed NOTIFY (no pooled connection free in time, a stalled or lost database) is
  logged and counted; the writes stand. Their changes are not retried (later changes
  may already have gone out); instead MISSED is owed: it goes out first in the next
  NOTIFY, or alone, retried with backoff, and every instance's feed then tells all its
  streams to resync (refetch) and forgets its resume points.
- The same holds for a write whose row never reaches the process although it committed
  (the statement timed out, or the connection broke, just after the commit; the request
  was cancelled): its change is not announced and nothing is owed. Announcing inside
  the write has no such case.
- Two processes writing one task at once may announce the two changes in the opposite
  order to their commits. A task's event ids rise in commit order (the row lock orders
  the writes, and each takes its id after writing), so the feed drops an announcement
  older than one it already has for that task (db/live.py).

Only for statements that commit on their own, as every statement of Database does (no
explicit transactions on this path): inside a transaction the payload would be sent
before the commit. Code that writes inside a transaction uses the in-transaction
statements (Database.announcer None).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import orjson

from db.errors import unavailable_reason
from db.queries import CHANGES_CHANNEL, MISSED, NOTIFY_PAYLOAD_LIMIT

if TYPE_CHECKING:
    from db.engine import Database

log = logging.getLogger("api.live")

MAX_BATCH = 500  # payloads per NOTIFY transaction (each under 8000 bytes)
RETRY_MIN_SECONDS = 0.5  # an owed MISSED is retried with backoff until sent
RETRY_MAX_SECONDS = 5.0
# One statement, so one transaction through a transaction-mode pooler. pg_notify is
# volatile, so PostgreSQL calls it after the sort: the payloads go out in array order.
_NOTIFY = (
    f"SELECT count(*) FROM (SELECT pg_notify('{CHANGES_CHANNEL}', payload)"
    " FROM unnest($1::text[]) WITH ORDINALITY AS p(payload, n) ORDER BY n) AS sent"
)


def pack(payloads: list[str]) -> list[str]:
    """The payloads as few notifications, in order: each a JSON array of as many as fit
    under PostgreSQL's limit (one that cannot be wrapped goes alone, as it is).

    Why: every notification costs PostgreSQL a queue entry and a message to each
    listening connection, and each listening process a callback and a parse; packed,
    a batch of ~10-20 changes costs one of each (docs/performance.md measures it)."""
    notifications: list[str] = []
    chunk: list[str] = []
    size = 1  # "[", then each payload with the "," or "]" after it

    def close_chunk() -> None:
        nonlocal chunk, size
        if chunk:
            notifications.append("[" + ",".join(chunk) + "]")
            chunk, size = [], 1

    for payload in payloads:
        length = len(payload) if payload.isascii() else len(payload.encode())
        if length + 2 >= NOTIFY_PAYLOAD_LIMIT:
            close_chunk()
            notifications.append(payload)
            continue
        if size + length + 1 >= NOTIFY_PAYLOAD_LIMIT:
            close_chunk()
        chunk.append(payload)
        size += length + 1
    close_chunk()
    return notifications


def unpack(notification: str | bytes) -> list[Any]:
    """The announcements one notification carries: a packed array's, or the one object
    announced alone (LIVE_ANNOUNCE=in_transaction, MISSED, a payload too large to pack).
    Raises ValueError for text that is not JSON."""
    value = orjson.loads(notification)
    return value if isinstance(value, list) else [value]


class Announcer:
    """Sends announcements of committed writes in batches, one batch in flight."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._pending: list[tuple[str, asyncio.Future[None]]] = []
        self._sender: asyncio.Task[None] | None = None
        self._missed = False  # a batch was lost: MISSED is owed to every listener
        self._closing = False
        self._wake = asyncio.Event()  # set by announce(): cuts a MISSED retry's wait short
        self.sent = 0  # announcements sent
        self.lost = 0  # announcements given up on (a failed NOTIFY)
        self.batches = 0  # NOTIFY transactions tried

    async def announce(self, payload: str) -> None:
        """Queue `payload` for the next NOTIFY transaction and wait until it was sent
        (or given up on). A request cancelled meanwhile cancels only its wait: the
        payload is still sent."""
        future = asyncio.get_running_loop().create_future()
        self._pending.append((payload, future))
        self._wake.set()
        self._start()
        await future

    async def flush(self) -> None:
        """Wait until the queue is empty (what is queued meanwhile included)."""
        if self._sender is not None:
            await asyncio.shield(self._sender)

    async def close(self) -> None:
        """Send what is queued (Database.close, before the pool closes); an owed MISSED
        is tried once more, not retried."""
        self._closing = True
        self._wake.set()  # a MISSED retry waiting for its turn goes now
        await self.flush()
        if self.batches:
            log.info(
                "Live updates: announced %d change(s) in %d NOTIFY transaction(s), %d lost",
                self.sent,
                self.batches,
                self.lost,
            )

    def _start(self) -> None:
        if self._sender is None:
            self._sender = asyncio.create_task(self._send(), name="live updates: NOTIFY")

    async def _send(self) -> None:
        delay = RETRY_MIN_SECONDS
        try:
            while self._pending or self._missed:
                if not self._pending:  # only MISSED is owed: retry it with backoff
                    if self._closing:
                        await self._notify([])
                        return
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(delay):
                            await self._wake.wait()
                    delay = min(delay * 2, RETRY_MAX_SECONDS)
                    if self._pending:
                        continue  # it goes out with the next batch, at once
                    if await self._notify([]):
                        delay = RETRY_MIN_SECONDS
                    continue
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                try:
                    if await self._notify(batch):
                        delay = RETRY_MIN_SECONDS
                finally:
                    for _, future in batch:
                        if not future.done():
                            future.set_result(None)
        finally:
            # Cancelled (the loop is closing): nobody waits forever for what is left.
            for _, future in self._pending:
                if not future.done():
                    future.set_result(None)
            self.lost += len(self._pending)
            self._pending = []
            self._sender = None

    async def _notify(self, batch: list[tuple[str, asyncio.Future[None]]]) -> bool:
        """One NOTIFY transaction: an owed MISSED first, then `batch`; whether it went
        out. On failure the batch is lost and MISSED owed; the writes stand, nothing is
        raised."""
        payloads = [payload for payload, _ in batch]
        if self._missed:
            payloads.insert(0, MISSED)
        self.batches += 1
        try:
            await self._db.fetchval(_NOTIFY, pack(payloads))
        except Exception as error:  # the writes stand: report, never raise
            self.lost += len(batch)
            self._missed = True
            if batch:
                log.warning(
                    "Live updates: %d committed change(s) could not be announced (%s);"
                    " listeners are told to refetch once the database answers",
                    len(batch),
                    unavailable_reason(error) or repr(error),
                )
            return False
        self.sent += len(batch)
        self._missed = False
        return True
