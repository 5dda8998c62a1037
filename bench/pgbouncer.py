"""PgBouncer in transaction pool mode in front of the bench database, for `ours_pooled`.

Debian's pgbouncer (1.18 here: no `max_prepared_statements`), started once per bench
run and stopped at its end. It refuses to run as root, so as root it runs as
`postgres` (`-u postgres`), its config and auth file in a temporary directory that user
owns; its log goes to `bench/.runs/<timestamp>/pgbouncer.log` like the servers' logs.
Clients are trusted (`auth_type = trust`); towards PostgreSQL it logs in as the bench
URL's user, with that URL's password if it has one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import asyncpg

from bench.servers import REPO_ROOT, free_port, process_tree_rss

CANDIDATES = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer", "/usr/local/bin/pgbouncer")
RUN_AS = "postgres"  # the OS user it runs as when the bench runs as root


def find_pgbouncer() -> str | None:
    found = shutil.which("pgbouncer")
    if found:
        return found
    return next((c for c in CANDIDATES if os.access(c, os.X_OK)), None)


def ensure_pgbouncer() -> str:
    """Path to pgbouncer; installs the Debian package when running as root and it is missing."""
    found = find_pgbouncer()
    if found:
        return found
    apt = shutil.which("apt-get")
    if os.geteuid() == 0 and apt:
        print("pgbouncer not found; installing it with apt-get ...", file=sys.stderr)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run([apt, "update", "-qq"], check=True, env=env)
        subprocess.run([apt, "install", "-y", "-qq", "pgbouncer"], check=True, env=env)
        found = find_pgbouncer()
        if found:
            return found
    raise RuntimeError(
        "pgbouncer is required for ours_pooled but not installed"
        " (Debian/Ubuntu: sudo apt-get install -y pgbouncer)"
    )


def pgbouncer_version(path: str) -> str:
    out = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else ""


def _server_address(url: str) -> tuple[str, int, str, str]:
    """(host or unix socket directory, port, user, password) of a bench database URL."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    host = query.get("host") or unquote(parts.hostname or "") or "/var/run/postgresql"
    port = int(query.get("port") or parts.port or 5432)
    user = unquote(parts.username or "") or query.get("user") or "postgres"
    password = unquote(parts.password or "") or query.get("password") or ""
    return host, port, user, password


def _quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


class PgBouncer:
    def __init__(self, binary: str, server_url: str, *, pool_size: int, log_path: Path) -> None:
        self.binary = binary
        self.server_url = server_url
        self.pool_size = pool_size
        self.log_path = log_path
        self.port = free_port()
        self.user = RUN_AS if os.geteuid() == 0 else None
        self.dir: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.settings: dict[str, str] = {}

    def pooled_url(self, database_url: str, *, flag: bool = True) -> str:
        """`database_url` (same user and database) through this PgBouncer, with
        `?pgbouncer=true` so the service knows it is behind a transaction-mode pooler."""
        parts = urlsplit(database_url)
        user = parts.username or _server_address(database_url)[2]
        params = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("host", "port", "password", "user")]
        if flag:
            params.append(("pgbouncer", "true"))
        netloc = f"{user}@127.0.0.1:{self.port}"
        return urlunsplit(("postgresql", netloc, parts.path, urlencode(params), ""))

    def _write_config(self) -> Path:
        host, port, user, password = _server_address(self.server_url)
        base = "/tmp" if Path("/tmp").is_dir() else None
        self.dir = Path(tempfile.mkdtemp(prefix="bench-pgbouncer-", dir=base))
        auth_file = self.dir / "userlist.txt"
        users = {"postgres": "", user: password}
        auth_file.write_text("".join(f"{_quote(u)} {_quote(p)}\n" for u, p in users.items()))
        self.settings = {
            "listen_addr": "127.0.0.1",
            "listen_port": str(self.port),
            "unix_socket_dir": "",
            "auth_type": "trust",
            "auth_file": str(auth_file),
            "pool_mode": "transaction",
            "max_client_conn": "1000",
            "default_pool_size": str(self.pool_size),
            "ignore_startup_parameters": "extra_float_digits",
            "server_reset_query": "",
            "log_connections": "0",
            "log_disconnections": "0",
        }
        ini = self.dir / "pgbouncer.ini"
        ini.write_text(
            f"[databases]\n* = host={host} port={port}\n\n[pgbouncer]\n"
            + "".join(f"{k} = {v}\n" for k, v in self.settings.items())
        )
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            for path in (self.dir, auth_file, ini):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        return ini

    def start(self, timeout: float = 30.0) -> None:
        ini = self._write_config()
        cmd = [self.binary, *(["-u", self.user] if self.user else []), str(ini)]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd,
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        probe = self.pooled_url(self.server_url, flag=False)
        deadline = time.monotonic() + timeout
        last: BaseException | None = None
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                tail = self.log_path.read_text(errors="replace").splitlines()[-15:]
                self.stop()
                raise RuntimeError(
                    f"pgbouncer exited with {code} during startup; see {self.log_path}:\n" + "\n".join(tail)
                )
            try:
                asyncio.run(_select_one(probe))
                return
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                last = exc
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"pgbouncer not ready after {timeout}s ({last!r}); see {self.log_path}")

    def rss(self) -> list[dict[str, Any]]:
        return process_tree_rss(self.proc.pid) if self.proc is not None else []

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            # SIGTERM: immediate shutdown (SIGINT would wait for clients to leave).
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


async def _select_one(dsn: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=2, statement_cache_size=0)
    try:
        await conn.fetchval("SELECT 1")
    finally:
        await conn.close()
