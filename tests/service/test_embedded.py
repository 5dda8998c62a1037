"""With no DATABASE_URL, `todo-api serve` runs on an embedded PostgreSQL and serves
requests; it says so in one line, and the embedded server stops with the service however
that is stopped (Ctrl-C, SIGTERM, or the next clean exit after a kill -9)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil  # type: ignore[import-untyped]  # pgserver's dependency
import pytest

from db.embedded import forget_dead_handles
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
SECRET = "a-secret-for-the-embedded-tests-0123456789abcdef"
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    names = ("DATABASE_URL", "DATABASE_DIRECT_URL", "BETTER_AUTH", "JWT_", "MIGRATE_ON_START", "LOG_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(names)}
    env.update({"DATA_DIR": str(data_dir), "APP_ENV": "development", "PYTHONPATH": str(ROOT)})
    return {**env, **extra}


class Service:
    """`python -m api serve` in `cwd` (so the checkout's .env cannot leak in), its
    stdout and stderr together in one file."""

    def __init__(self, cwd: Path, data_dir: Path, name: str = "serve", **env: str) -> None:
        self.port = free_port()
        self.log_path = cwd / f"{name}.log"
        with self.log_path.open("w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "api", "serve", "--port", str(self.port)],
                cwd=cwd,
                env=_env(data_dir, **env),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.base = f"http://127.0.0.1:{self.port}"

    @property
    def output(self) -> str:
        return self.log_path.read_text()

    def wait_listening(self, timeout: float = 90) -> None:
        """Until the service says it listens; it must then answer at once."""
        deadline = time.monotonic() + timeout
        while "Listening on" not in self.output:
            assert self.proc.poll() is None, self.output
            assert time.monotonic() < deadline, self.output
            time.sleep(0.1)
        assert httpx.get(f"{self.base}/healthz", timeout=5).status_code == 200

    def stop(self, signum: int) -> int:
        self.proc.send_signal(signum)
        return self.proc.wait(timeout=60)


def _postgres_processes(pgdata: Path) -> list[int]:
    """PostgreSQL processes serving `pgdata` (the postmaster and its children)."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] == "postgres" and str(pgdata) in cmdline:
            found.append(proc.pid)
    return found


def _start_up_lines(output: str) -> list[str]:
    """The output without access-log lines (wait_listening's request may have one)."""
    return [line for line in output.splitlines() if " api.access: " not in line]


def _handles(pgdata: Path) -> list[int]:
    path = pgdata / ".handle_pids.json"
    return [int(pid) for pid in json.loads(path.read_text())] if path.exists() else []


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    data_dir = tmp_path / "data"
    yield data_dir
    _stop_postgres(data_dir / "postgres")


def _stop_postgres(pgdata: Path) -> None:
    """The service stops its embedded server on exit; make sure, even if a test failed."""
    pid_file = pgdata / "postmaster.pid"
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGINT)


def test_serve_without_database_url_uses_embedded_postgres(tmp_path: Path, data_dir: Path) -> None:
    """And SIGTERM (docker stop, systemd) stops the embedded server with the service."""
    service = Service(tmp_path, data_dir)
    try:
        service.wait_listening()
        assert httpx.get(f"{service.base}/readyz", timeout=5).status_code == 200
        token = subprocess.run(
            [sys.executable, "-m", "api", "dev-token", "--user", "alice"],
            cwd=tmp_path,
            env=_env(data_dir),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        headers = {"Authorization": f"Bearer {token}"}
        created = httpx.post(f"{service.base}/api/tasks", json={"title": "embedded"}, headers=headers)
        assert created.status_code == 201, created.text
        listed = httpx.get(f"{service.base}/api/tasks", headers=headers).json()
        assert [t["title"] for t in listed] == ["embedded"]
        assert (data_dir / "postgres" / "PG_VERSION").exists()
        assert _postgres_processes((data_dir / "postgres").resolve())
    finally:
        code = service.stop(signal.SIGTERM)
    assert code == 0, service.output
    pgdata = (data_dir / "postgres").resolve()
    assert _postgres_processes(pgdata) == [], service.output
    assert not (pgdata / "postmaster.pid").exists()
    assert _handles(pgdata) == []
    assert "No DATABASE_URL set: using the embedded PostgreSQL" in service.output
    assert "NO AUTH CONFIGURED" in service.output  # the warning stays visible
    assert "Traceback" not in service.output


def test_start_up_says_the_promised_lines_and_nothing_else(tmp_path: Path, data_dir: Path) -> None:
    """At the default level: the database line (where, and that it has no TCP port),
    then "Listening" once requests are answered; Ctrl-C adds nothing and stops it all."""
    service = Service(tmp_path, data_dir, BETTER_AUTH_SECRET=SECRET)
    try:
        service.wait_listening()
    finally:
        code = service.stop(signal.SIGINT)
    assert code == 0, service.output
    lines = _start_up_lines(service.output)
    shown = re.escape(str(data_dir / "postgres"))
    assert len(lines) == 2, service.output
    assert re.fullmatch(
        f"{STAMP} INFO api: No DATABASE_URL set: using the embedded PostgreSQL in {shown}"
        f" \\(Unix socket {shown}/\\.s\\.PGSQL\\.5432, no TCP port\\)",
        lines[0],
    ), service.output
    assert re.fullmatch(f"{STAMP} INFO api: Listening on http://127\\.0\\.0\\.1:{service.port}", lines[1])
    pgdata = (data_dir / "postgres").resolve()
    assert _postgres_processes(pgdata) == []
    assert _handles(pgdata) == []


def test_a_killed_runs_postgres_is_stopped_by_the_next_clean_exit(tmp_path: Path, data_dir: Path) -> None:
    pgdata = (data_dir / "postgres").resolve()
    crashed = Service(tmp_path, data_dir, name="crashed", BETTER_AUTH_SECRET=SECRET)
    try:
        crashed.wait_listening()
    finally:
        crashed.stop(signal.SIGKILL)
    # What kill -9 leaves: the server still running, and the dead pid still holding it.
    orphans = _postgres_processes(pgdata)
    assert orphans
    assert _handles(pgdata) == [crashed.proc.pid]

    service = Service(tmp_path, data_dir, name="next", BETTER_AUTH_SECRET=SECRET)
    try:
        service.wait_listening()
        assert _handles(pgdata) == [service.proc.pid]  # the dead pid is forgotten
        assert set(orphans) <= set(_postgres_processes(pgdata))  # the server is reused
    finally:
        code = service.stop(signal.SIGINT)
    assert code == 0, service.output
    assert _postgres_processes(pgdata) == [], service.output
    assert _handles(pgdata) == []
    assert "Traceback" not in service.output


def test_forget_dead_handles_keeps_the_living(tmp_path: Path) -> None:
    pgdata = tmp_path / "postgres"
    pgdata.mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    (pgdata / ".handle_pids.json").write_text(json.dumps([os.getpid(), dead.pid]))
    # A postmaster.pid naming a process that is not PostgreSQL (the pid was reused).
    (pgdata / "postmaster.pid").write_text(f"{os.getpid()}\n{pgdata}\n")
    assert forget_dead_handles(pgdata) == [dead.pid]
    assert _handles(pgdata) == [os.getpid()]
    assert not (pgdata / "postmaster.pid").exists()


def test_production_without_auth_refuses_to_start(tmp_path: Path) -> None:
    env = {
        **_env(tmp_path),
        "APP_ENV": "production",
        "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none",
    }
    result = subprocess.run(
        [sys.executable, "-m", "api", "serve"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "refusing to start without a way to verify tokens" in result.stderr
