"""Drive a real Better Auth server (Node) from Python interop tests.

The server lives in ``better_auth_server.mjs`` next to this file; its npm
dependencies are installed on demand into ``tests/interop/node_modules``
(never with a lockfile). Stdlib + ``httpx`` only.

Typical use::

    reason = node_available()
    if reason:
        pytest.skip(reason)
    ensure_node_modules()
    with BetterAuthServer(alg="ES256") as ba:
        token = ba.sign_up("alice@example.com")
        jwks = ba.jwks()  # or fetch ba.jwks_url yourself
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

from tests.node import node_missing, npm_install

INTEROP_DIR = Path(__file__).resolve().parent
SERVER_SCRIPT = INTEROP_DIR / "better_auth_server.mjs"
NODE_MODULES = INTEROP_DIR / "node_modules"

DEFAULT_SECRET = "interop-test-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
DEFAULT_PASSWORD = "correct-horse-battery-staple"
SUPPORTED_ALGS = ("EdDSA", "ES256", "ES512", "RS256", "PS256")
SESSION_COOKIE = "better-auth.session_token"


class BetterAuthError(RuntimeError):
    """The Better Auth harness could not be installed, started or used."""


def node_available() -> str | None:
    """Return a reason string if node/npm are unusable, else ``None``."""
    return node_missing(20, "the Better Auth interop harness")


def _modules_installed() -> bool:
    """Every package of package.json is there, and better-auth is the version it pins
    (a node_modules left from an earlier pin is reinstalled, not silently reused)."""
    dependencies = json.loads((INTEROP_DIR / "package.json").read_text())["dependencies"]
    if not all((NODE_MODULES / name / "package.json").is_file() for name in dependencies):
        return False
    installed = NODE_MODULES / "better-auth" / "package.json"
    return bool(json.loads(installed.read_text()).get("version") == dependencies["better-auth"])


def ensure_node_modules() -> None:
    """``npm install`` the harness dependencies if they are missing (no lockfile)."""
    if _modules_installed():
        return
    reason = node_available() or npm_install(INTEROP_DIR, _modules_installed)
    if reason is not None:
        raise BetterAuthError(reason)


@dataclass(frozen=True)
class SignedUpUser:
    email: str
    password: str
    user_id: str
    session_token: str  # signed session token (value of the `set-auth-token` header)
    jwt: str  # JWT from GET /api/auth/token


class BetterAuthServer:
    """A real Better Auth server (memory DB, email+password, jwt + bearer plugins).

    ``rotation_interval`` / ``grace_period`` are seconds (jwt plugin ``jwks`` options).
    ``hs256=True`` signs tokens with HS256 using ``secret`` via the plugin's custom
    ``jwt.sign`` hook; Better Auth then disables its /jwks endpoint (404).
    """

    def __init__(
        self,
        alg: str = "EdDSA",
        secret: str = DEFAULT_SECRET,
        rotation_interval: float | None = None,
        grace_period: float | None = None,
        hs256: bool = False,
        *,
        startup_timeout: float = 30.0,
        request_timeout: float = 15.0,
    ) -> None:
        if alg not in SUPPORTED_ALGS:
            raise ValueError(f"alg must be one of {SUPPORTED_ALGS}, got {alg!r}")
        if len(secret) < 32:
            raise ValueError("Better Auth secret must be at least 32 characters")
        self.alg = alg
        self.secret = secret
        self.rotation_interval = rotation_interval
        self.grace_period = grace_period
        self.hs256 = hs256
        self.startup_timeout = startup_timeout
        self.request_timeout = request_timeout
        self._proc: subprocess.Popen[str] | None = None
        self._client: httpx.Client | None = None
        self._url: str | None = None
        self._log_file: Any = None
        self.log_path: Path | None = None
        self.last_session_token: str | None = None
        self._final_logs: str | None = None

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> Self:
        if self._proc is not None:
            raise BetterAuthError("server already started")
        ensure_node_modules()
        env = {k: v for k, v in os.environ.items() if not k.startswith("BA_")}
        env.update(
            BETTER_AUTH_SECRET=self.secret,
            BA_ALG=self.alg,
            BA_EXIT_ON_STDIN_EOF="1",
            NO_COLOR="1",
        )
        if self.rotation_interval is not None:
            env["BA_ROTATION_INTERVAL"] = _seconds(self.rotation_interval)
        if self.grace_period is not None:
            env["BA_GRACE_PERIOD"] = _seconds(self.grace_period)
        if self.hs256:
            env["BA_HS256"] = "1"
        # stderr goes to a file so it can never block the child; read it via logs().
        self._log_file = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            mode="w+", prefix="better-auth-server-", suffix=".log", delete=False
        )
        self.log_path = Path(self._log_file.name)
        self._proc = subprocess.Popen(
            ["node", str(SERVER_SCRIPT)],
            cwd=INTEROP_DIR,
            env=env,
            stdin=subprocess.PIPE,  # closing it (or our death) makes the server exit
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            text=True,
        )
        try:
            self._url = self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self._client = httpx.Client(base_url=self._url, timeout=self.request_timeout)
        return self

    def _wait_ready(self) -> str:
        assert self._proc is not None and self._proc.stdout is not None
        lines: queue.Queue[str | None] = queue.Queue()
        stdout = self._proc.stdout

        def pump() -> None:  # keeps draining stdout for the life of the process
            for line in stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, name="better-auth-stdout", daemon=True).start()
        deadline = time.monotonic() + self.startup_timeout
        seen: list[str] = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BetterAuthError(self._failure("server: no ready line in time", seen))
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                self._proc.wait(timeout=5)
                raise BetterAuthError(self._failure(f"server exited with code {self._proc.returncode}", seen))
            seen.append(line)
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if isinstance(msg, dict) and msg.get("ready") is True:
                return str(msg["url"])

    def _failure(self, what: str, stdout_lines: list[str]) -> str:
        return (
            f"Better Auth {what}.\n--- stdout ---\n{''.join(stdout_lines)[-4000:]}"
            f"\n--- stderr ({self.log_path}) ---\n{self.logs()[-8000:]}"
        )

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
            # keep the text (logs() still works after stop) but don't litter /tmp
            self._final_logs = self.logs()
            if self.log_path is not None:
                self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def logs(self) -> str:
        """The server's stderr so far (Better Auth logs, startup errors)."""
        if self._final_logs is not None:
            return self._final_logs
        if self.log_path is None:
            return ""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    # -- addresses -----------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:PORT``; also the JWT ``iss`` and ``aud``."""
        if self._url is None:
            raise BetterAuthError("server not started")
        return self._url

    @property
    def issuer(self) -> str:
        return self.url

    @property
    def audience(self) -> str:
        return self.url

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/api/auth/jwks"

    # -- API -----------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if self._client is None:
            raise BetterAuthError("server not started")
        try:
            resp = self._client.request(method, path, **kwargs)
        finally:
            self._client.cookies.clear()  # auth is always explicit (bearer), never ambient
        if resp.status_code >= 400:
            raise BetterAuthError(
                f"{method} {path} -> {resp.status_code}: {resp.text[:2000]}"
                f"\n--- server stderr ---\n{self.logs()[-4000:]}"
            )
        return resp

    def _post_json(self, path: str, body: dict[str, Any]) -> httpx.Response:
        # Origin is only enforced when a cookie is sent, but a matching one is always safe.
        return self._request("POST", path, json=body, headers={"Origin": self.url})

    @staticmethod
    def _session_token(resp: httpx.Response) -> str:
        token = resp.headers.get("set-auth-token")
        if token:
            return str(token)
        cookie = resp.cookies.get(SESSION_COOKIE)
        if cookie:
            return cookie
        body = resp.json()
        if isinstance(body, dict) and isinstance(body.get("token"), str):
            return str(body["token"])  # raw (unsigned) token; the bearer plugin accepts it too
        raise BetterAuthError(f"no session token in response: {resp.headers!r} {resp.text[:500]}")

    def sign_up_user(
        self, email: str, password: str = DEFAULT_PASSWORD, name: str | None = None
    ) -> SignedUpUser:
        resp = self._post_json(
            "/api/auth/sign-up/email",
            {"email": email, "password": password, "name": name or email.split("@")[0]},
        )
        session_token = self._session_token(resp)
        user_id = str(resp.json()["user"]["id"])
        jwt = self.token_for_session(session_token)
        return SignedUpUser(email, password, user_id, session_token, jwt)

    def sign_up(self, email: str, password: str = DEFAULT_PASSWORD, name: str | None = None) -> str:
        """Create a user and return a JWT from ``GET /api/auth/token``.

        The session token is kept in ``last_session_token`` (use ``sign_up_user`` for all of it).
        """
        user = self.sign_up_user(email, password, name)
        self.last_session_token = user.session_token
        return user.jwt

    def sign_in(self, email: str, password: str = DEFAULT_PASSWORD) -> str:
        """Sign in and return a (new) session token usable with ``token_for_session``."""
        resp = self._post_json("/api/auth/sign-in/email", {"email": email, "password": password})
        return self._session_token(resp)

    def token_for_session(self, session_token: str) -> str:
        """A freshly signed JWT for an existing session (signed with the current key)."""
        resp = self._request("GET", "/api/auth/token", headers={"Authorization": f"Bearer {session_token}"})
        return str(resp.json()["token"])

    def jwks(self) -> dict[str, Any]:
        """The current JWKS document (``{"keys": [...]}``); 404 -> error in HS256 mode."""
        data = self._request("GET", "/api/auth/jwks").json()
        assert isinstance(data, dict)
        return data


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
