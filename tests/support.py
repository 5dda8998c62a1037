"""Test helpers: a real PostgreSQL, the real app served over real HTTP, real tokens."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import asyncpg
import httpx
import jwt
import uvicorn

from api.app import create_app
from api.settings import Settings, load_settings
from db.url import DatabaseURL

HS_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unique_user(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def hs_token(
    sub: str | None,
    *,
    secret: str = HS_SECRET,
    ttl: int = 600,
    headers: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    now = int(time.time())
    payload: dict[str, Any] = {"iat": now, "exp": now + ttl, **claims}
    if sub is not None:
        payload["sub"] = sub
    return jwt.encode(payload, secret, algorithm="HS256", headers=headers)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def settings_for(database: DatabaseURL, **env: str) -> Settings:
    base = {"APP_ENV": "test", "DB_POOL_MAX_SIZE": "5", "MIGRATE_ON_START": "false"}
    # FAST_PATHS=false in the environment: the suite runs against the stock paths.
    base["FAST_PATHS"] = os.environ.get("FAST_PATHS", "true")
    return load_settings({**base, **env}).model_copy(update={"database_url": database})


class LiveServer:
    """The app on a real port, run by uvicorn in a background thread."""

    def __init__(self, settings: Settings) -> None:
        # Bound here and handed to uvicorn, so no other process (a parallel test worker)
        # can take the port between choosing it and listening on it.
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.port = int(self._socket.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def start(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._socket.close()

    def client(self, token: str | None = None) -> httpx.Client:
        headers = auth(token) if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@contextmanager
def live_server(settings: Settings) -> Iterator[LiveServer]:
    server = LiveServer(settings)
    try:
        yield server.start()
    finally:
        server.stop()


def db_fetch(database: DatabaseURL, sql: str, *args: Any) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(database.asyncpg_dsn)
        try:
            return [dict(r) for r in await conn.fetch(sql, *args)]
        finally:
            await conn.close()

    return asyncio.run(run())


def snapshot(database: DatabaseURL, user_id: str) -> list[dict[str, Any]]:
    """Everything stored for a user, to prove that a request changed nothing."""
    return db_fetch(database, "SELECT * FROM tasks WHERE user_id = $1 ORDER BY id", user_id) + db_fetch(
        database, "SELECT * FROM users WHERE id = $1", user_id
    )


@dataclass
class JWKSServer:
    """A JWKS endpoint the test controls: keys, delay, status, or garbage."""

    keys: list[dict[str, Any]] = field(default_factory=list)
    delay: float = 0.0
    status: int = 200
    body: bytes | None = None  # overrides the JSON document when set
    hits: int = 0
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/auth/jwks"

    def start(self) -> JWKSServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.hits += 1
                if owner.delay:
                    time.sleep(owner.delay)
                body = owner.body if owner.body is not None else json.dumps({"keys": owner.keys}).encode()
                try:
                    self.send_response(owner.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def json_of(response: httpx.Response) -> Any:
    assert response.headers.get("content-type", "").startswith("application/json"), response.text
    return response.json()
