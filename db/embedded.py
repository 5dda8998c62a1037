"""The embedded PostgreSQL used when no DATABASE_URL is given (pgserver from PyPI).

pgserver keeps, in `<pgdata>/.handle_pids.json`, the pids of the processes using the
server, and the last one to exit stops it. A process that dies without running its
exit handlers (kill -9, a crash) stays listed for ever, and then no later run ever
stops the server: so dead pids are dropped before each start. The server listens on
a Unix socket only (pgserver starts it with `-h ""`), never on a TCP port.
"""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from db.url import DatabaseURL

log = logging.getLogger(__name__)

# pgserver logs every step at INFO (initdb's full output, pg_ctl command lines, its
# postmaster.pid dumps) and, when the server fails to start, its whole log at ERROR.
# Failures are reported here in one line that names the log file instead.
logging.getLogger("pgserver").setLevel(logging.CRITICAL)

HANDLES_FILE = ".handle_pids.json"


class EmbeddedPostgresError(Exception):
    """The embedded PostgreSQL could not be started (one line, names what to do)."""


@dataclass(frozen=True)
class EmbeddedPostgres:
    url: DatabaseURL
    pgdata: Path
    socket: Path
    _server: Any

    def stop(self) -> None:
        """Give up this process's handle; the last process to do so stops the server."""
        self._server.cleanup()


def start_embedded_postgres(data_dir: Path) -> DatabaseURL:
    """Start (or reuse) a PostgreSQL server whose files live in `data_dir/postgres`.

    The data survives restarts; the server process stops when this process exits.
    """
    return open_embedded_postgres(data_dir).url


def open_embedded_postgres(data_dir: Path) -> EmbeddedPostgres:
    """As start_embedded_postgres, with the server's whereabouts and a stop()."""
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset (servers,
        # containers) and falls back to /tmp/runtime-<uid>: only pgserver's lock file
        # lives there.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
        # Imported lazily: a configured DATABASE_URL never needs it.
        from pgserver.postgres_server import PostgresServer, get_server

    pgdata = (data_dir / "postgres").resolve()
    log_file = pgdata / "log"  # the server's log (pg_ctl -l), appended to by each start
    log_start = log_file.stat().st_size if log_file.exists() else 0
    try:
        pgdata.mkdir(parents=True, exist_ok=True)
        with PostgresServer._lock:
            forget_dead_handles(pgdata)
        server = get_server(pgdata, cleanup_mode="stop")
        info = server.get_postmaster_info()
    except (subprocess.SubprocessError, OSError, AssertionError, RuntimeError) as error:
        raise EmbeddedPostgresError(
            f"The embedded PostgreSQL in {pgdata} did not start: {_cause(error, log_file, log_start)}."
            " Set DATABASE_URL to use another PostgreSQL."
        ) from None
    socket_dir = Path(info.socket_dir) if info.socket_dir is not None else pgdata
    return EmbeddedPostgres(
        url=DatabaseURL.parse(server.get_uri()),
        pgdata=pgdata,
        socket=socket_dir / f".s.PGSQL.{info.port or 5432}",
        _server=server,
    )


def forget_dead_handles(pgdata: Path) -> list[int]:
    """Drop the pids of processes that no longer run from pgserver's handle list, and a
    postmaster.pid whose pid now belongs to a process that is not PostgreSQL (so no
    server runs on this directory). Returns the pids dropped. Call with pgserver's lock."""
    handles = pgdata / HANDLES_FILE
    dropped: list[int] = []
    with contextlib.suppress(FileNotFoundError):
        try:
            pids = [int(pid) for pid in json.loads(handles.read_text())]
        except (ValueError, TypeError):
            pids = []  # unreadable: treat as no live handle
            handles.write_text("[]")
        alive = [pid for pid in pids if _process_name(pid) is not None]
        dropped = [pid for pid in pids if pid not in alive]
        if dropped:
            handles.write_text(json.dumps(alive))
    postmaster = pgdata / "postmaster.pid"
    with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
        pid = int(postmaster.read_text().split()[0])
        name = _process_name(pid)
        if name and name != "postgres":  # "" is a process we may not inspect
            postmaster.unlink()
    return dropped


def _process_name(pid: int) -> str | None:
    """The name of running process `pid`; None when there is none (or only a zombie)."""
    import psutil  # type: ignore[import-untyped]  # pgserver's dependency

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return str(process.name())
    except psutil.NoSuchProcess:
        return None
    except psutil.AccessDenied:
        return ""  # runs, as someone else


def _cause(error: BaseException, log_file: Path, log_start: int) -> str:
    """What the server logged in this attempt (its last FATAL line), else the error."""
    with contextlib.suppress(OSError):
        with log_file.open("rb") as file:
            file.seek(log_start)
            lines = [line.strip() for line in file.read().decode(errors="replace").splitlines()]
        lines = [line for line in lines if line]
        fatal = [line for line in lines if "FATAL" in line or "PANIC" in line] or lines
        if fatal:
            return f"{fatal[-1]} (see {log_file})"
    if isinstance(error, subprocess.CalledProcessError):
        program = Path(str(error.cmd[0])).name if isinstance(error.cmd, list | tuple) else "a command"
        return f"{program} exited with status {error.returncode}"
    if isinstance(error, subprocess.TimeoutExpired):
        return f"no answer within {error.timeout:g} s"
    return str(error) or type(error).__name__
