"""With no DATABASE_URL, `todo-api serve` runs on an embedded PostgreSQL and serves requests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support import free_port

ROOT = Path(__file__).resolve().parent.parent


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "BETTER_AUTH", "JWT_"))}
    env.update({"DATA_DIR": str(data_dir), "APP_ENV": "development"})
    return env


def test_serve_without_database_url_uses_embedded_postgres(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    env = _env(data_dir)
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "api", "serve", "--port", str(port)],
            cwd=tmp_path,  # .env of the checkout must not leak in
            env={**env, "PYTHONPATH": str(ROOT)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, log_path.read_text()
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.3)

        token = subprocess.run(
            [sys.executable, "-m", "api", "dev-token", "--user", "alice"],
            cwd=tmp_path,
            env={**env, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        headers = {"Authorization": f"Bearer {token}"}
        created = httpx.post(f"{base}/api/tasks", json={"title": "embedded"}, headers=headers)
        assert created.status_code == 201, created.text
        listed = httpx.get(f"{base}/api/tasks", headers=headers).json()
        assert [t["title"] for t in listed] == ["embedded"]
        assert (data_dir / "postgres" / "PG_VERSION").exists()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        _stop_postgres(data_dir / "postgres")
    log_text = log_path.read_text()
    assert "No DATABASE_URL set: using the embedded PostgreSQL" in log_text
    assert "NO AUTH CONFIGURED" in log_text


def _stop_postgres(pgdata: Path) -> None:
    """The service stops its embedded server on exit; make sure, even if it crashed."""
    pid_file = pgdata / "postmaster.pid"
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGINT)


def test_production_without_auth_refuses_to_start(tmp_path: Path) -> None:
    env = {**_env(tmp_path), "APP_ENV": "production", "PYTHONPATH": str(ROOT),
           "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none"}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "api", "serve"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "refusing to start without a way to verify tokens" in result.stderr
