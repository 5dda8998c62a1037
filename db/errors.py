"""When the database, not the request, is the problem."""

from __future__ import annotations

import asyncpg


class DatabaseUnavailable(Exception):
    """The database cannot be reached, refuses connections, or did not answer in time.
    The request did nothing or its single statement was rolled back or committed whole;
    the client may retry shortly (503 on REST, DATABASE_UNAVAILABLE on GraphQL)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# SQLSTATE classes that mean "not now" rather than "bad statement": 08 connection
# exception (PgBouncer reports its own failures as 08P01), 53 insufficient resources
# (too many connections), 57 operator intervention (shutdown, start-up, statement_timeout).
_UNAVAILABLE_CLASSES = ("08", "53", "57")
# 3D000: the database does not exist (dropped, or not created yet).
_UNAVAILABLE_STATES = frozenset({"3D000"})


NO_ANSWER = "the database did not answer in time"


def unavailable_reason(error: BaseException) -> str | None:
    """Why `error` means the database is unavailable, or None when it means something
    else (a bug, a constraint violation, ...)."""
    if isinstance(error, TimeoutError):
        return NO_ANSWER
    if isinstance(error, OSError):
        return f"cannot reach the database ({type(error).__name__})"
    if isinstance(error, asyncpg.PostgresError):
        state = str(getattr(error, "sqlstate", "") or "")
        if state[:2] in _UNAVAILABLE_CLASSES or state in _UNAVAILABLE_STATES:
            return f"the database refused the request ({state})"
        return None
    if isinstance(error, asyncpg.InterfaceError) and ("closed" in str(error) or "closing" in str(error)):
        return "the database connection was closed"
    return None
