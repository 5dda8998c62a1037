"""The service as a deployment runs it: `todo-api serve` in its own process."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from tests.support import HS_SECRET, auth, free_port

ROOT = Path(__file__).resolve().parents[2]


class ServiceProcess:
    """`python -m api serve` with the given environment; output captured to a file."""

    def __init__(self, env: dict[str, str], *, workers: int = 1, name: str = "service") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self._dir = Path(tempfile.mkdtemp(prefix=f"todo-{name}-"))
        self.log_path = self._dir / "output.log"
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", ""),
            "APP_ENV": "test",
            "BETTER_AUTH_SECRET": HS_SECRET,
            "DATA_DIR": str(self._dir / "data"),
            "DB_POOL_MAX_SIZE": "5",
            **env,
        }
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        """Start without waiting (several instances can then start together)."""
        log = self.log_path.open("wb")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "api", "serve", "--port", str(self.port), "--workers", str(self.workers)],
            cwd=self._dir,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    def wait_ready(self, timeout: float = 60) -> Self:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"service exited with {self.process.returncode}:\n{self.output()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"service not ready after {timeout}s:\n{self.output()}")

    @property
    def process(self) -> subprocess.Popen[bytes]:
        assert self._process is not None, "not started"
        return self._process

    def client(self, token: str | None = None, **options: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=auth(token) if token else {}, timeout=30, **options)  # type: ignore[arg-type]

    def signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        try:
            os.killpg(self._process.pid, signal.SIGINT)
            self._process.wait(15)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(5)

    def __enter__(self) -> Self:
        return self.start().wait_ready()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
