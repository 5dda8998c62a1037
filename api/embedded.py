"""The embedded PostgreSQL used when no DATABASE_URL is given (pgserver from PyPI)."""

from __future__ import annotations

import logging
from pathlib import Path

from db.url import DatabaseURL

log = logging.getLogger(__name__)


def start_embedded_postgres(data_dir: Path) -> DatabaseURL:
    """Start (or reuse) a PostgreSQL server whose files live in `data_dir/postgres`.

    It keeps running after this process exits so the next start is instant;
    `todo-api` reuses it, and stopping it is `pg_ctl stop -D <dir>`.
    """
    import pgserver  # imported lazily: a configured DATABASE_URL never needs it

    path = (data_dir / "postgres").resolve()
    path.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(path, cleanup_mode=None)  # type: ignore[attr-defined]
    return DatabaseURL.parse(server.get_uri())
