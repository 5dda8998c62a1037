"""The embedded PostgreSQL used when no DATABASE_URL is given (pgserver from PyPI)."""

from __future__ import annotations

import logging
from pathlib import Path

from db.url import DatabaseURL

log = logging.getLogger(__name__)


def start_embedded_postgres(data_dir: Path) -> DatabaseURL:
    """Start (or reuse) a PostgreSQL server whose files live in `data_dir/postgres`.

    The data survives restarts; the server process stops when this process exits.
    """
    import pgserver  # imported lazily: a configured DATABASE_URL never needs it

    path = (data_dir / "postgres").resolve()
    path.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(path, cleanup_mode="stop")  # type: ignore[attr-defined]
    return DatabaseURL.parse(server.get_uri())
