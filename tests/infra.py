"""Infrastructure for production-failure tests: servers the test owns and can break.

`PrivatePostgres` is a PostgreSQL 15 server of one test's own (frozen, restarted or
stopped at will; the machine's shared server is never touched). `PgBouncer` is Debian's
pgbouncer in transaction pool mode in front of any server (TCP or a unix socket
directory), without `max_prepared_statements` (1.18 has none): the hard case for
asyncpg. Both are context managers whose exit always cleans up, even when the test
failed: thaw, stop, remove the files.

PostgreSQL and PgBouncer both refuse to run as root: as root they run as another OS user
(`postgres`, or for PgBouncer the owner of the server's socket directory), directly
otherwise.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import csv
import io
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Coroutine, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

import asyncpg

from db.url import DatabaseURL

T = TypeVar("T")

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
PGBOUNCER_CANDIDATES = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer", "/usr/local/bin/pgbouncer")
SERVICE_USER = "postgres"  # the OS user PostgreSQL / PgBouncer run as when we are root

StopMode = Literal["smart", "fast", "immediate"]


class InfraError(RuntimeError):
    """A piece of test infrastructure could not be set up or operated."""


# --- helpers ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run(coro), also when called from inside a running event loop (then in a
    helper thread; the calling loop is blocked meanwhile)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def postgres_binaries_missing() -> str | None:
    """Why PrivatePostgres cannot run here, or None."""
    for name in ("initdb", "pg_ctl", "postgres"):
        if not (PG_BIN / name).is_file():
            return f"{PG_BIN / name} not found (install Debian's postgresql-15)"
    return None


def find_pgbouncer() -> str | None:
    found = shutil.which("pgbouncer")
    if found:
        return found
    return next((c for c in PGBOUNCER_CANDIDATES if os.access(c, os.X_OK)), None)


def find_psql() -> str | None:
    candidate = PG_BIN / "psql"
    return str(candidate) if candidate.is_file() else shutil.which("psql")


def _service_user(preferred: str = SERVICE_USER) -> str | None:
    """The OS user to run a server as: None (ourselves) unless we are root."""
    return preferred if os.geteuid() == 0 else None


def _user_kwargs(user: str | None) -> dict[str, Any]:
    """subprocess keyword arguments that run the child as `user` (None: as ourselves)."""
    if user is None:
        return {}
    entry = pwd.getpwnam(user)
    return {
        "user": entry.pw_uid,
        "group": entry.pw_gid,
        "extra_groups": os.getgrouplist(user, entry.pw_gid),
    }


def _clean_env(user: str | None) -> dict[str, str]:
    """Our environment without libpq's PG* variables (they would redirect initdb/psql)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C.UTF-8"
    if user is not None:
        entry = pwd.getpwnam(user)
        env["HOME"] = entry.pw_dir
        env["USER"] = env["LOGNAME"] = user
    return env


def _chown(path: Path, user: str | None) -> None:
    if user is None:
        return
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def _owned_tempdir(prefix: str, user: str | None) -> Path:
    # Short paths: a unix socket path must fit in 107 bytes.
    base = "/tmp" if Path("/tmp").is_dir() else None
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    _chown(path, user)
    return path


def _run(argv: list[str], user: str | None, *, cwd: Path, timeout: float = 60) -> str:
    result = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=_clean_env(user),
        timeout=timeout,
        check=False,
        **_user_kwargs(user),
    )
    if result.returncode != 0:
        raise InfraError(
            f"{' '.join(argv)} exited with {result.returncode}:\n{result.stdout}\n{result.stderr}".rstrip()
        )
    return str(result.stdout)


def _parent_pids() -> dict[int, int]:
    """pid -> ppid for every process, from /proc/*/stat."""
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:  # exited meanwhile
            continue
        # "pid (comm) state ppid ...": comm may contain spaces and parentheses.
        fields = stat[stat.rindex(b")") + 2 :].split()
        parents[int(entry.name)] = int(fields[1])
    return parents


def descendants(pid: int) -> list[int]:
    """All processes below `pid` (children, grandchildren, ...)."""
    children: dict[int, list[int]] = {}
    for child, parent in _parent_pids().items():
        children.setdefault(parent, []).append(child)
    found: list[int] = []
    todo = list(children.get(pid, []))
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def _signal(pids: Iterable[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) is not alive for our purposes.
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(b")") + 2 :].split()[0] != b"Z"


def host_and_port(url: DatabaseURL) -> tuple[str, int]:
    """Where `url`'s server listens: (host or unix socket directory, port)."""
    parts = urlsplit(url.asyncpg_dsn)
    query = dict(parse_qsl(parts.query))
    host = query.get("host") or unquote(parts.hostname or "") or "/var/run/postgresql"
    port = int(query.get("port") or parts.port or 5432)
    if "," in host:
        raise InfraError(f"multiple hosts are not supported: {url.redacted}")
    return host, port


async def _wait_connectable(dsn: str, deadline: float, what: str) -> None:
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            conn = await asyncpg.connect(dsn, timeout=2, statement_cache_size=0)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            last = error
            await asyncio.sleep(0.05)
            continue
        try:
            await conn.fetchval("SELECT 1")
        finally:
            await conn.close()
        return
    raise InfraError(f"{what} did not accept connections in time: {last!r}")


# --- PostgreSQL ------------------------------------------------------------------------

_template_lock = threading.Lock()
_template: Path | None = None


def _template_cluster(user: str | None) -> Path:
    """An initdb'd data directory, made once per process and copied for each server."""
    global _template
    with _template_lock:
        if _template is None or not (_template / "data" / "PG_VERSION").exists():
            root = _owned_tempdir("pgtpl-", user)
            atexit.register(shutil.rmtree, root, True)
            _run(
                [
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(root / "data"),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                    "--no-instructions",
                ],
                user,
                cwd=root,
            )
            _template = root / "data"
        return _template


class PrivatePostgres:
    """A PostgreSQL 15 server of the test's own, on 127.0.0.1:<free port>, trust auth.

    The port stays the same across restarts, so clients can reconnect to `url`.
    Use as a context manager (`with PrivatePostgres() as pg:`, started on entry) or call
    start()/close() yourself; close() thaws, stops and deletes everything.
    """

    def __init__(self, *, settings: Mapping[str, str | int] | None = None, user: str | None = None) -> None:
        missing = postgres_binaries_missing()
        if missing:
            raise InfraError(missing)
        self.user = user if user is not None else _service_user()
        self.port = free_port()
        self.dir = _owned_tempdir("pgpriv-", self.user)
        self.data_dir = self.dir / "data"
        self.log_path = self.dir / "postgres.log"
        self._settings: dict[str, str | int] = {
            "listen_addresses": "127.0.0.1",
            "port": self.port,
            "unix_socket_directories": str(self.dir),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": 100,
            "shared_buffers": "32MB",
            **(settings or {}),
        }
        self._pid: int | None = None
        self._frozen: list[int] = []
        self._initialized = False
        self._closed = False
        atexit.register(self.close)

    # -- lifecycle --

    def _initialize(self) -> None:
        template = _template_cluster(self.user)
        _run(["cp", "-a", str(template), str(self.data_dir)], self.user, cwd=self.dir)
        lines = [f"{key} = '{value}'" for key, value in self._settings.items()]
        with open(self.data_dir / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write("\n# tests/infra.py PrivatePostgres\n" + "\n".join(lines) + "\n")
        self._initialized = True

    def _pg_ctl(self, *args: str, timeout: float = 60) -> str:
        argv = [str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir), *args]
        return _run(argv, self.user, cwd=self.dir, timeout=timeout)

    def start(self) -> Self:
        if self._closed:
            raise InfraError("this PrivatePostgres was closed")
        if self.running:
            return self
        first = not self._initialized
        if first:
            self._initialize()
        try:
            self._pg_ctl("-l", str(self.log_path), "-w", "-t", "30", "start")
        except InfraError as error:
            if first and "could not bind" in self.log_text():
                # Someone took the free port meanwhile; nobody has seen it yet: pick another.
                self.port = self._settings["port"] = free_port()
                with open(self.data_dir / "postgresql.conf", "a", encoding="utf-8") as conf:
                    conf.write(f"port = '{self.port}'\n")
                return self.start()
            raise InfraError(f"{error}\n--- postgres.log ---\n{self.log_text()}") from None
        self._pid = int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        return self

    def stop(self, mode: StopMode = "fast") -> None:
        """Stop the server (thawing it first); `immediate` is a crash without checkpoint."""
        if self._pid is None:
            return
        self.thaw()
        pid, self._pid = self._pid, None
        try:
            self._pg_ctl("-m", mode, "-w", "-t", "30", "stop")
        except (InfraError, subprocess.TimeoutExpired):
            self._sigkill(pid, everything=True)
            return
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)

    def restart(self, mode: StopMode = "fast") -> Self:
        self.stop(mode)
        return self.start()

    def kill(self) -> None:
        """SIGKILL the postmaster alone (its backends notice and exit): an OOM-killer crash.
        start() then runs crash recovery."""
        if self._pid is None:
            return
        self.thaw()
        pid, self._pid = self._pid, None
        self._sigkill(pid, everything=False)

    def _sigkill(self, pid: int, *, everything: bool) -> None:
        children = descendants(pid)  # orphaned once it dies: remember them now
        _signal([pid, *children] if everything else [pid], signal.SIGKILL)
        deadline = time.monotonic() + 10
        # A new postmaster refuses to start while old backends still hold shared memory.
        while any(_alive(p) for p in [pid, *children]) and time.monotonic() < deadline:
            time.sleep(0.02)
        # Its lock files name its pid, which may linger as an unreaped zombie that a new
        # postmaster would take for alive.
        for stale in (self.data_dir / "postmaster.pid", self.dir / f".s.PGSQL.{self.port}.lock"):
            stale.unlink(missing_ok=True)

    def freeze(self) -> None:
        """SIGSTOP the postmaster and every backend: connections hang, connects time out
        (the kernel still completes the TCP handshake), nothing answers."""
        if self._pid is None:
            raise InfraError("the server is not running")
        os.kill(self._pid, signal.SIGSTOP)  # first: a stopped postmaster forks nothing new
        frozen = [self._pid]
        for _ in range(2):  # again, for a child forked just before the postmaster stopped
            found = [p for p in descendants(self._pid) if p not in frozen]
            _signal(found, signal.SIGSTOP)
            frozen.extend(found)
        self._frozen = frozen

    def thaw(self) -> None:
        """SIGCONT everything freeze() stopped."""
        pids = list(self._frozen)
        if self._pid is not None:
            pids.extend(p for p in descendants(self._pid) if p not in pids)
        _signal(reversed(pids), signal.SIGCONT)  # the postmaster last
        self._frozen = []

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- state and access --

    @property
    def running(self) -> bool:
        return self._pid is not None and _alive(self._pid)

    @property
    def frozen(self) -> bool:
        return bool(self._frozen)

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while running."""
        return self._pid

    @property
    def url(self) -> DatabaseURL:
        """The `postgres` database, over TCP."""
        return DatabaseURL.parse(f"postgresql://postgres@127.0.0.1:{self.port}/postgres")

    def backend_pids(self) -> list[int]:
        """The postmaster's current children (backends and auxiliary processes)."""
        return [] if self._pid is None else descendants(self._pid)

    def execute(self, sql: str, database: str = "postgres") -> None:
        """Run `sql` (no parameters) on a fresh connection."""

        async def go() -> None:
            conn = await asyncpg.connect(self.url.with_database(database).asyncpg_dsn, timeout=10)
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        run_sync(go())

    def create_database(self, name: str) -> DatabaseURL:
        self.execute(f'CREATE DATABASE "{name}"')
        return self.url.with_database(name)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


# --- PgBouncer -------------------------------------------------------------------------


def _connstr_value(value: str) -> str:
    if value and all(c not in value for c in " '\\"):
        return value
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


class PgBouncer:
    """pgbouncer (transaction pool mode unless told otherwise) in front of `server`,
    listening on 127.0.0.1:<free port>, trust auth for the user `postgres`.

    Every database name passes through to the server (`* = host=... port=...`). The
    admin console is the database `pgbouncer` (see admin()). Started on __enter__ /
    start(); stop() shuts it down (SIGTERM, then SIGKILL).
    """

    def __init__(
        self,
        server: DatabaseURL,
        *,
        pool_mode: Literal["session", "transaction", "statement"] = "transaction",
        max_client_conn: int = 500,
        default_pool_size: int = 20,
        ignore_startup_parameters: Iterable[str] = ("extra_float_digits",),
        settings: Mapping[str, str | int] | None = None,
        user: str | None = None,
    ) -> None:
        binary = find_pgbouncer()
        if binary is None:
            raise InfraError("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
        self.binary = binary
        self.server = server
        self.server_host, self.server_port = host_and_port(server)
        if user is None and os.geteuid() == 0:
            user = self._user_for(self.server_host)
        self.user = user
        self.port = free_port()
        self.dir = _owned_tempdir("pgbouncer-", self.user)
        self.config_path = self.dir / "pgbouncer.ini"
        self.log_path = self.dir / "pgbouncer.log"
        self._settings: dict[str, str | int] = {
            "listen_addr": "127.0.0.1",
            "listen_port": self.port,
            "unix_socket_dir": str(self.dir),
            "auth_type": "trust",
            "auth_file": str(self.dir / "userlist.txt"),
            "admin_users": "postgres",
            "stats_users": "postgres",
            "pool_mode": pool_mode,
            "max_client_conn": max_client_conn,
            "default_pool_size": default_pool_size,
            "ignore_startup_parameters": ",".join(ignore_startup_parameters),
            "server_reset_query": "",
            "logfile": str(self.log_path),
            "pidfile": str(self.dir / "pgbouncer.pid"),
            "log_connections": 0,
            "log_disconnections": 0,
            **(settings or {}),
        }
        self._process: subprocess.Popen[bytes] | None = None
        self._closed = False
        atexit.register(self.close)

    @staticmethod
    def _user_for(server_host: str) -> str:
        """As root: a unix socket's directory may be private to its owner (pgserver's data
        directory is 0700), so run as that owner; otherwise as `postgres`."""
        if server_host.startswith("/"):
            with contextlib.suppress(OSError, KeyError):
                owner = pwd.getpwuid(os.stat(server_host).st_uid).pw_name
                if owner != "root":
                    return owner
        return SERVICE_USER

    def _write_config(self) -> None:
        target = f"host={_connstr_value(self.server_host)} port={self.server_port}"
        lines = ["[databases]", f"* = {target}", "", "[pgbouncer]"]
        lines += [f"{key} = {value}" for key, value in self._settings.items()]
        self.config_path.write_text("\n".join(lines) + "\n")
        (self.dir / "userlist.txt").write_text('"postgres" ""\n')
        for path in (self.config_path, self.dir / "userlist.txt"):
            _chown(path, self.user)

    def start(self, timeout: float = 15) -> Self:
        if self._closed:
            raise InfraError("this PgBouncer was closed")
        if self.running:
            return self
        self._write_config()
        self._process = subprocess.Popen(
            [self.binary, str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.dir,
            env=_clean_env(self.user),
            **_user_kwargs(self.user),
        )
        deadline = time.monotonic() + timeout
        # Ready when it listens; then make sure it reaches the server, too.
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise InfraError(f"pgbouncer exited with {self._process.returncode}:\n{self.log_text()}")
            with socket.socket() as s:
                s.settimeout(0.5)
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            time.sleep(0.02)
        try:
            run_sync(
                _wait_connectable(
                    self.url_for(self.server.database or "postgres").asyncpg_dsn, deadline, "pgbouncer"
                )
            )
        except InfraError as error:
            self.stop()
            raise InfraError(f"{error}\n--- pgbouncer.log ---\n{self.log_text()}") from None
        return self

    def stop(self, timeout: float = 5) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)  # 1.18: immediate shutdown
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def url_for(self, database: str, *, mark_pooled: bool = False) -> DatabaseURL:
        """`database` through the bouncer. mark_pooled adds Prisma's `pgbouncer=true`
        (DatabaseURL.pooled): the app is told it is behind a transaction pooler."""
        raw = f"postgresql://postgres@127.0.0.1:{self.port}/{database}"
        return DatabaseURL.parse(raw + ("?pgbouncer=true" if mark_pooled else ""))

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def admin(self, command: str) -> list[dict[str, str]]:
        """Run an admin console command (`SHOW POOLS`, `SHOW CONFIG`, `RECONNECT`, ...)
        with psql (the console speaks only the simple query protocol); rows as dicts."""
        psql = find_psql()
        if psql is None:
            raise InfraError("psql is needed for the pgbouncer admin console")
        argv = [psql, "-X", "--csv", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
        argv += ["-d", "pgbouncer", "-c", command]
        result = subprocess.run(
            argv, capture_output=True, text=True, env=_clean_env(None), timeout=30, check=False
        )
        if result.returncode != 0:
            raise InfraError(f"pgbouncer admin {command!r} failed: {result.stderr.strip()}")
        return list(csv.DictReader(io.StringIO(result.stdout)))

    def config_value(self, key: str) -> str:
        """A setting as the running pgbouncer has it (`SHOW CONFIG`)."""
        for row in self.admin("SHOW CONFIG"):
            if row.get("key") == key:
                return row["value"]
        raise KeyError(key)
