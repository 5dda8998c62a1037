"""Bounded waits for every statement, with one timer per process instead of two per
statement.

Each statement waits twice: for a pooled connection (DB_ACQUIRE_TIMEOUT_SECONDS) and
for its answer (DB_STATEMENT_TIMEOUT_SECONDS). An `asyncio.timeout` and asyncpg's
`command_timeout` arm and cancel a loop timer each: ~23k and ~30k instructions a
statement, of REST get-one's ~670k (callgrind, bench/README.md). Here a wait is a
Deadline the task updates as it goes, and one check every `tick` seconds, armed
while any wait is open, cancels the tasks whose current deadline has passed. The
waiter sees its own deadline's cancellation (`expired`), uncancels and reports a
timeout, as asyncio.timeout does; any other cancellation (a client gone, shutdown)
stays a CancelledError. A wait so ends at most one tick after its deadline.
"""

from __future__ import annotations

import asyncio

MAX_TICK = 0.1  # seconds


class Deadline:
    """One task's bounded wait: `at` is the loop time its current await must finish by
    (0: not in a bounded await)."""

    __slots__ = ("at", "base", "expired", "task")

    def __init__(self, task: asyncio.Task[object]) -> None:
        self.task = task
        self.at = 0.0
        self.expired = False
        self.base = task.cancelling()  # cancellations requested before this wait

    def timed_out(self) -> bool:
        """After a CancelledError: whether it was this deadline's alone. This deadline's
        cancellation is withdrawn from the task either way; when someone else cancelled
        it too (a client gone, shutdown), that one stands: False, re-raise it."""
        if not self.expired:
            return False
        self.expired = False
        return self.task.uncancel() <= self.base

    def done(self) -> None:
        """After the guarded await returned: no deadline until the next one is set, and a
        cancellation of this deadline's that the await swallowed is withdrawn."""
        self.at = 0.0
        if self.expired:
            self.expired = False
            self.task.uncancel()


class Deadlines:
    """The open waits of one event loop, checked every `tick` seconds."""

    def __init__(self, loop: asyncio.AbstractEventLoop, tick: float) -> None:
        self.loop = loop
        self.tick = min(tick, MAX_TICK)
        self._open: set[Deadline] = set()
        self._timer: asyncio.TimerHandle | None = None

    def open(self) -> Deadline:
        """A Deadline for the current task, which runs on this loop (an asyncpg pool
        serves only the loop it was made on)."""
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("Deadlines.open() outside a task")
        deadline = Deadline(task)
        self._open.add(deadline)
        if self._timer is None:
            self._timer = self.loop.call_later(self.tick, self._check)
        return deadline

    def close(self, deadline: Deadline) -> None:
        self._open.discard(deadline)

    def _check(self) -> None:
        now = self.loop.time()
        for deadline in self._open:
            if deadline.at and deadline.at <= now:
                deadline.at = 0.0
                deadline.expired = True
                deadline.task.cancel()
        self._timer = self.loop.call_later(self.tick, self._check) if self._open else None

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
