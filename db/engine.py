"""The asyncpg pool that serves requests."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

import asyncpg

from db.url import DatabaseURL

if TYPE_CHECKING:
    Pool: TypeAlias = asyncpg.Pool[asyncpg.Record]
else:
    Pool = asyncpg.Pool


async def create_pool(url: DatabaseURL, *, min_size: int, max_size: int) -> Pool:
    return await asyncpg.create_pool(
        url.asyncpg_dsn,
        min_size=min_size,
        max_size=max_size,
        command_timeout=30,
        server_settings={"application_name": "todo-api"},
        reset=_keep_session,
        **url.connect_args,
    )


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Skip asyncpg's reset on release (RESET ALL, UNLISTEN *, …: a round trip per
    request). Nothing here changes session state: no SET, LISTEN, advisory locks or
    open cursors on pooled connections."""
