"""Live updates with the real frontend stack: the graphql-ws npm client (over the `ws`
package) subscribing with a real Better Auth JWT in connection_init's payload, as a
browser app does, against this service over a real WebSocket."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import queue
import subprocess
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from db.url import DatabaseURL
from tests.interop.better_auth import INTEROP_DIR, BetterAuthServer, SignedUpUser
from tests.support import LiveServer, live_server, settings_for

CLIENT_SCRIPT = INTEROP_DIR / "graphql_ws_client.mjs"


class NodeSubscriber:
    """graphql_ws_client.mjs in a child process; its JSON lines in a queue."""

    def __init__(self, service: LiveServer, token: str | None, after: str | None = None) -> None:
        env = {
            **os.environ,
            "GQL_URL": service.url.replace("http://", "ws://") + "/graphql",
            "GQL_TOKEN": token or "",
            "GQL_AFTER": after or "",
        }
        self.process = subprocess.Popen(
            ["node", str(CLIENT_SCRIPT)],
            cwd=INTEROP_DIR,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with contextlib.suppress(ValueError):
                self.lines.put(json.loads(line))

    def expect(self, key: str, timeout: float = 15) -> Any:
        """The next line with `key` (skipping the others)."""
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(
                    f"graphql-ws client: no {key!r} within {timeout}s; {self.stderr()}"
                ) from None
            if key in line:
                return line[key]

    def change(self, timeout: float = 15) -> dict[str, Any]:
        result = self.expect("next", timeout)
        assert "errors" not in result, result
        change: dict[str, Any] = result["data"]["taskChanges"]
        return change

    def stderr(self) -> str:
        if self.process.poll() is None:
            return "(running)"
        return self.process.stderr.read() if self.process.stderr else ""

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


@contextlib.contextmanager
def subscriber(service: LiveServer, token: str | None, after: str | None = None) -> Iterator[NodeSubscriber]:
    node = NodeSubscriber(service, token, after)
    try:
        yield node
    finally:
        node.close()


@pytest.fixture(scope="module")
def better_auth() -> Iterator[BetterAuthServer]:
    with BetterAuthServer(alg="EdDSA") as ba:
        yield ba


@pytest.fixture(scope="module")
def service(better_auth: BetterAuthServer, database: DatabaseURL) -> Iterator[LiveServer]:
    # Configured as a deployment is: only BETTER_AUTH_URL (JWKS, issuer, audience follow).
    with live_server(settings_for(database, BETTER_AUTH_URL=better_auth.url)) as server:
        yield server


def sign_up(ba: BetterAuthServer, name: str) -> SignedUpUser:
    return ba.sign_up_user(f"{name}-{uuid.uuid4().hex[:10]}@example.com", name=name)


def test_graphql_ws_client_gets_its_users_changes_only(
    better_auth: BetterAuthServer, service: LiveServer
) -> None:
    alice, bob = sign_up(better_auth, "alice"), sign_up(better_auth, "bob")
    with subscriber(service, alice.jwt) as a, subscriber(service, bob.jwt) as b:
        for node in (a, b):
            ready = node.change()
            assert (ready["kind"], ready["reason"]) == ("READY", "new")
        with service.client(alice.jwt) as c:
            task = c.post("/api/tasks", json={"title": "from a Better Auth user", "priority": "high"}).json()
            c.patch(f"/api/tasks/{task['id']}/complete")
            c.delete(f"/api/tasks/{task['id']}")
        changes = [a.change() for _ in range(3)]
        assert [(ch["kind"], ch["taskId"]) for ch in changes] == [
            ("CREATED", str(task["id"])),
            ("COMPLETED", str(task["id"])),
            ("DELETED", str(task["id"])),
        ]
        assert changes[0]["task"]["title"] == "from a Better Auth user"
        assert changes[0]["task"]["priority"] == "HIGH"
        assert changes[1]["task"]["completed"] is True
        assert changes[2]["task"] is None
        # Bob's first change is his own: none of Alice's reached him.
        with service.client(bob.jwt) as c:
            marker = c.post("/api/tasks", json={"title": "bob's"}).json()
        assert b.change()["taskId"] == str(marker["id"])

    # Resuming with the last eventId seen (what a client does after a reconnect).
    with service.client(alice.jwt) as c:
        missed = c.post("/api/tasks", json={"title": "missed"}).json()
    with subscriber(service, alice.jwt, after=changes[-1]["eventId"]) as again:
        assert again.change()["taskId"] == str(missed["id"])
        assert again.change()["reason"] == "resumed"


def test_graphql_ws_client_is_refused_without_a_valid_token(
    better_auth: BetterAuthServer, service: LiveServer
) -> None:
    alice = sign_up(better_auth, "carol")
    header, payload, signature = alice.jwt.split(".")
    forged_claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged_claims["sub"] = "someone-else"
    forged_payload = base64.urlsafe_b64encode(json.dumps(forged_claims).encode()).rstrip(b"=").decode()
    forged = f"{header}.{forged_payload}.{signature}"
    with BetterAuthServer(alg="EdDSA") as elsewhere:
        foreign = sign_up(elsewhere, "mallory").jwt
    for token, code, reason in (
        (None, 4401, "Unauthorized"),
        (forged, 4403, "Forbidden: The bearer token's signature is invalid."),
        (foreign, 4403, "Forbidden"),
    ):
        with subscriber(service, token) as node:
            error = node.expect("error")
            assert error["code"] == code, error
            assert error["reason"].startswith(reason), error
