"""End to end against the real Better Auth npm package (see README.md here).

A real Better Auth server (Node) signs users up over HTTP and issues JWTs from
``/api/auth/token``; this service, run by uvicorn on a real port and configured the
way a deployment would be (``BETTER_AUTH_URL``, and ``BETTER_AUTH_SECRET`` for HS256),
is driven over real HTTP with those tokens: every REST route, every GraphQL
operation, two users kept apart, key rotation without a restart, and tokens from
another Better Auth instance turned away.

One Better Auth server per setup (module scope); the service servers are cheap.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import httpx
import jwt
import pytest
from fastapi import FastAPI

from db.url import DatabaseURL
from tests.interop.better_auth import (
    SUPPORTED_ALGS,
    BetterAuthError,
    BetterAuthServer,
    SignedUpUser,
)
from tests.support import LiveServer, db_fetch, json_of, live_server, settings_for, snapshot, wait_until

HS256 = "HS256"
SETUPS = (*SUPPORTED_ALGS, HS256)
HS256_SECRET = f"interop-hs256-{uuid.uuid4().hex}{uuid.uuid4().hex}"

TASK_KEYS = {
    "id", "user_id", "title", "description", "completed", "priority", "due_date",
    "created_at", "updated_at",
}  # fmt: skip
GQL_TASK = "id title description completed priority dueDate createdAt updatedAt"

ME = "query { me { id email name } }"
TASKS = f"query {{ tasks(first: 100) {{ totalCount nodes {{ {GQL_TASK} }} }} }}"
TASK = f"query Task($id: ID!) {{ task(id: $id) {{ {GQL_TASK} }} }}"
CREATE = f"mutation Create($input: CreateTaskInput!) {{ createTask(input: $input) {{ {GQL_TASK} }} }}"
UPDATE = (
    "mutation Update($id: ID!, $input: UpdateTaskInput!) "
    f"{{ updateTask(id: $id, input: $input) {{ {GQL_TASK} }} }}"
)
TOGGLE = f"mutation Toggle($id: ID!) {{ toggleTaskCompletion(id: $id) {{ {GQL_TASK} }} }}"
DELETE = "mutation Delete($id: ID!) { deleteTask(id: $id) }"


# -- helpers ---------------------------------------------------------------------------


def unique_email(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def sign_up(ba: BetterAuthServer, prefix: str, name: str) -> SignedUpUser:
    return ba.sign_up_user(unique_email(prefix), name=name)


def claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def kid_of(token: str) -> str | None:
    kid = jwt.get_unverified_header(token).get("kid")
    return None if kid is None else str(kid)


def listed_kids(ba: BetterAuthServer) -> list[str]:
    return [str(key["kid"]) for key in ba.jwks()["keys"]]


def with_claims(token: str, **changes: Any) -> str:
    """The token with its payload changed and the original signature kept (a forgery)."""
    header, _, signature = token.split(".")
    payload = json.dumps({**claims_of(token), **changes}, separators=(",", ":")).encode()
    encoded = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    return f"{header}.{encoded}.{signature}"


def gql(client: httpx.Client, query: str, **variables: Any) -> dict[str, Any]:
    r = client.post("/graphql", json={"query": query, "variables": variables})
    assert r.status_code == 200, r.text
    body = json_of(r)
    assert isinstance(body, dict)
    return body


def gql_data(client: httpx.Client, query: str, **variables: Any) -> dict[str, Any]:
    body = gql(client, query, **variables)
    assert "errors" not in body, body
    data = body["data"]
    assert isinstance(data, dict)
    return data


def gql_codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


def status_with(service: LiveServer, token: str) -> int:
    with service.client(token) as c:
        return c.get("/api/tasks").status_code


def jwks_fetches(service: LiveServer) -> int:
    """How many times the running service has fetched the JWKS (its JWKSCache's count)."""
    app = cast(FastAPI, service._server.config.app)
    return int(app.state.jwks.fetch_count)


def assert_unauthenticated(r: httpx.Response) -> None:
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert json_of(r)["code"] == "unauthenticated"


def nothing_stored_for(database: DatabaseURL, user_id: str) -> bool:
    tasks = db_fetch(database, "SELECT id FROM tasks WHERE user_id = $1", user_id)
    users = db_fetch(database, "SELECT id FROM users WHERE id = $1", user_id)
    return tasks == [] and users == []


# -- fixtures --------------------------------------------------------------------------


@dataclass(frozen=True)
class Stack:
    """A Better Auth server, this service configured for it, and two signed-up users."""

    setup: str
    ba: BetterAuthServer
    service: LiveServer
    alice: SignedUpUser
    bob: SignedUpUser


@pytest.fixture(scope="module")
def hs256_ba() -> Iterator[BetterAuthServer]:
    """Better Auth signing HS256 with the shared secret (custom `jwt.sign`; /jwks is 404)."""
    with BetterAuthServer(secret=HS256_SECRET, hs256=True) as ba:
        yield ba


@pytest.fixture(scope="module", params=SETUPS)
def stack(request: pytest.FixtureRequest, database: DatabaseURL) -> Iterator[Stack]:
    setup: str = request.param
    with contextlib.ExitStack() as resources:
        if setup == HS256:
            ba: BetterAuthServer = request.getfixturevalue("hs256_ba")
            # The realistic frontend setup: both sides share BETTER_AUTH_URL and
            # BETTER_AUTH_SECRET, so the service also derives a JWKS URL, which is 404 here.
            env = {"BETTER_AUTH_URL": ba.url, "BETTER_AUTH_SECRET": ba.secret}
        else:
            ba = resources.enter_context(BetterAuthServer(alg=setup))
            # Only the base URL: JWKS URL, issuer and audience all follow from it.
            env = {"BETTER_AUTH_URL": ba.url}
        service = resources.enter_context(live_server(settings_for(database, **env)))
        alice = sign_up(ba, "alice", f"Alice {setup}")
        bob = sign_up(ba, "bob", f"Bob {setup}")
        yield Stack(setup, ba, service, alice, bob)


# -- the tokens are what the README says ---------------------------------------------


def test_better_auth_tokens_are_as_documented(stack: Stack) -> None:
    """The premises of the suite: real Better Auth tokens, verifiable as documented."""
    ba, alice = stack.ba, stack.alice
    header = jwt.get_unverified_header(alice.jwt)
    claims = claims_of(alice.jwt)
    assert claims["sub"] == claims["id"] == alice.user_id
    assert claims["email"] == alice.email
    assert claims["name"] == f"Alice {stack.setup}"
    assert claims["iss"] == claims["aud"] == ba.url
    assert claims["exp"] - claims["iat"] == 900
    if stack.setup == HS256:
        assert header == {"alg": "HS256", "typ": "JWT"}
        jwt.decode(alice.jwt, ba.secret, algorithms=["HS256"], audience=ba.url, issuer=ba.url)
        with pytest.raises(BetterAuthError, match="404"):
            ba.jwks()  # Better Auth disables its JWKS with a custom `jwt.sign`
    else:
        assert header["alg"] == stack.setup and "typ" not in header
        (jwk,) = [k for k in ba.jwks()["keys"] if k["kid"] == header["kid"]]
        assert jwk["alg"] == stack.setup and "use" not in jwk
        key = jwt.PyJWK(jwk).key
        jwt.decode(alice.jwt, key, algorithms=[stack.setup], audience=ba.url, issuer=ba.url)


# -- REST ------------------------------------------------------------------------------


@pytest.mark.parametrize("namespaced", [False, True], ids=["api", "api-user_id"])
def test_rest_every_endpoint(stack: Stack, database: DatabaseURL, namespaced: bool) -> None:
    alice = stack.alice
    base = f"/api/{alice.user_id}/tasks" if namespaced else "/api/tasks"
    with stack.service.client(alice.jwt) as c:
        r = c.post(
            base,
            json={
                "title": "  Ship the interop suite ",
                "description": "against real Better Auth",
                "priority": "high",
                "due_date": "2031-02-03T04:05:06Z",
            },
        )
        assert r.status_code == 201, r.text
        task = json_of(r)
        assert set(task) == TASK_KEYS
        assert task["user_id"] == alice.user_id  # the Better Auth user id (token `sub`)
        assert (task["title"], task["priority"], task["completed"]) == (
            "Ship the interop suite",
            "high",
            False,
        )
        assert task["due_date"] == "2031-02-03T04:05:06+00:00"
        url = f"{base}/{task['id']}"
        assert r.headers["location"] == url

        # The user row comes from the Better Auth claims.
        rows = db_fetch(database, "SELECT id, email, name FROM users WHERE id = $1", alice.user_id)
        assert rows == [{"id": alice.user_id, "email": alice.email, "name": f"Alice {stack.setup}"}]

        listing = c.get(base, params={"limit": 500})
        assert listing.status_code == 200
        assert task in listing.json()
        assert int(listing.headers["x-total-count"]) == len(listing.json())

        assert c.get(url).json() == task

        r = c.put(url, json={"title": "Shipped", "description": None, "priority": "low"})
        assert r.status_code == 200, r.text
        updated = r.json()
        assert (updated["title"], updated["description"], updated["priority"]) == ("Shipped", None, "low")
        assert updated["due_date"] == task["due_date"] and updated["id"] == task["id"]

        assert c.patch(f"{url}/complete").json()["completed"] is True
        assert c.patch(f"{url}/complete").json()["completed"] is False
        assert c.patch(f"{url}/complete", json={"completed": True}).json()["completed"] is True
        assert c.get(url).json()["completed"] is True

        r = c.delete(url)
        assert r.status_code == 204 and r.content == b""
        assert c.get(url).status_code == 404
        assert task["id"] not in [t["id"] for t in c.get(base, params={"limit": 500}).json()]


def test_rest_users_are_isolated(stack: Stack, database: DatabaseURL) -> None:
    alice, bob = stack.alice, stack.bob
    with stack.service.client(alice.jwt) as a:
        task = a.post("/api/tasks", json={"title": "Alice's secret", "description": "mine"}).json()
    before_alice = snapshot(database, alice.user_id)
    before_bob = snapshot(database, bob.user_id)
    assert any(row.get("title") == "Alice's secret" for row in before_alice)

    with stack.service.client(bob.jwt) as b:
        # Alice's task does not exist for Bob, on every route that names it ...
        for method, path, body in [
            ("GET", f"/api/tasks/{task['id']}", None),
            ("PUT", f"/api/tasks/{task['id']}", {"title": "Bob was here"}),
            ("PATCH", f"/api/tasks/{task['id']}/complete", None),
            ("DELETE", f"/api/tasks/{task['id']}", None),
            ("GET", f"/api/{bob.user_id}/tasks/{task['id']}", None),
            ("PUT", f"/api/{bob.user_id}/tasks/{task['id']}", {"title": "Bob was here"}),
            ("PATCH", f"/api/{bob.user_id}/tasks/{task['id']}/complete", None),
            ("DELETE", f"/api/{bob.user_id}/tasks/{task['id']}", None),
        ]:
            r = b.request(method, path, json=body)
            assert r.status_code == 404, (method, path, r.text)
            assert json_of(r) == {"detail": "Task not found.", "code": "not_found"}
        # ... nor in his listings ...
        for path in ("/api/tasks", f"/api/{bob.user_id}/tasks"):
            listing = b.get(path, params={"limit": 500})
            assert listing.status_code == 200
            assert task["id"] not in [t["id"] for t in listing.json()]
        # ... and Alice's namespace is closed to him, all six routes.
        ns = f"/api/{alice.user_id}/tasks"
        for method, path, body in [
            ("GET", ns, None),
            ("POST", ns, {"title": "planted"}),
            ("GET", f"{ns}/{task['id']}", None),
            ("PUT", f"{ns}/{task['id']}", {"title": "Bob was here"}),
            ("DELETE", f"{ns}/{task['id']}", None),
            ("PATCH", f"{ns}/{task['id']}/complete", None),
        ]:
            r = b.request(method, path, json=body)
            assert r.status_code == 403, (method, path, r.text)
            assert json_of(r)["code"] == "forbidden"

    assert snapshot(database, alice.user_id) == before_alice
    assert snapshot(database, bob.user_id) == before_bob
    with stack.service.client(alice.jwt) as a:
        assert a.get(f"/api/tasks/{task['id']}").json() == task


def test_forged_and_missing_tokens_are_401(stack: Stack, database: DatabaseURL) -> None:
    alice, bob = stack.alice, stack.bob
    before = snapshot(database, alice.user_id)
    header, payload, signature = bob.jwt.split(".")
    flipped = signature[:-4] + ("AAAA" if not signature.endswith("AAAA") else "BBBB")
    forgeries = [
        with_claims(bob.jwt, sub=alice.user_id, id=alice.user_id),  # Bob's signature, Alice's sub
        f"{header}.{payload}.{flipped}",
        f"{header}.{payload}.",
    ]
    for token in forgeries:
        with stack.service.client(token) as c:
            assert_unauthenticated(c.get("/api/tasks"))
            assert_unauthenticated(c.post(f"/api/{alice.user_id}/tasks", json={"title": "forged"}))
            assert gql_codes(gql(c, ME)) == ["UNAUTHENTICATED"]
    with stack.service.client() as c:
        r = c.get("/api/tasks")
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        body = gql(c, ME)
        assert body["data"] is None and gql_codes(body) == ["UNAUTHENTICATED"]
        # The raw Better Auth session token is not a JWT: it is no way in either.
        c.headers["Authorization"] = f"Bearer {alice.session_token}"
        assert_unauthenticated(c.get("/api/tasks"))
    assert snapshot(database, alice.user_id) == before


# -- GraphQL ---------------------------------------------------------------------------


def test_graphql_every_operation(stack: Stack) -> None:
    alice = stack.alice
    with stack.service.client(alice.jwt) as c:
        assert gql_data(c, ME)["me"] == {
            "id": alice.user_id,
            "email": alice.email,
            "name": f"Alice {stack.setup}",
        }

        created = gql_data(
            c,
            CREATE,
            input={
                "title": "GraphQL task",
                "description": "d",
                "priority": "HIGH",
                "dueDate": "2032-03-04T05:06:07Z",
            },
        )["createTask"]
        assert (created["title"], created["description"], created["priority"]) == (
            "GraphQL task",
            "d",
            "HIGH",
        )
        assert created["completed"] is False
        task_id = created["id"]

        listing = gql_data(c, TASKS)["tasks"]
        assert created in listing["nodes"]
        assert listing["totalCount"] >= 1
        assert gql_data(c, TASK, id=task_id)["task"] == created
        # Same task, same owner, over REST.
        rest = c.get(f"/api/{alice.user_id}/tasks/{task_id}").json()
        assert (str(rest["id"]), rest["user_id"], rest["title"]) == (task_id, alice.user_id, "GraphQL task")

        updated = gql_data(c, UPDATE, id=task_id, input={"title": "Renamed", "description": None})[
            "updateTask"
        ]
        assert (updated["title"], updated["description"], updated["priority"]) == ("Renamed", None, "HIGH")

        assert gql_data(c, TOGGLE, id=task_id)["toggleTaskCompletion"]["completed"] is True
        assert gql_data(c, TASK, id=task_id)["task"]["completed"] is True
        assert gql_data(c, TOGGLE, id=task_id)["toggleTaskCompletion"]["completed"] is False

        assert gql_data(c, DELETE, id=task_id)["deleteTask"] == task_id
        assert gql_data(c, TASK, id=task_id)["task"] is None
        assert task_id not in [t["id"] for t in gql_data(c, TASKS)["tasks"]["nodes"]]


def test_graphql_users_are_isolated(stack: Stack, database: DatabaseURL) -> None:
    alice, bob = stack.alice, stack.bob
    with stack.service.client(alice.jwt) as a:
        task = gql_data(a, CREATE, input={"title": "Alice only"})["createTask"]
    before_alice = snapshot(database, alice.user_id)
    before_bob = snapshot(database, bob.user_id)

    with stack.service.client(bob.jwt) as b:
        assert gql_data(b, ME)["me"] == {"id": bob.user_id, "email": bob.email, "name": f"Bob {stack.setup}"}
        assert gql_data(b, TASK, id=task["id"])["task"] is None
        assert task["id"] not in [t["id"] for t in gql_data(b, TASKS)["tasks"]["nodes"]]
        for query, variables in [
            (UPDATE, {"id": task["id"], "input": {"title": "Bob was here"}}),
            (TOGGLE, {"id": task["id"]}),
            (DELETE, {"id": task["id"]}),
        ]:
            body = gql(b, query, **variables)
            assert body["data"] is None, body
            assert gql_codes(body) == ["NOT_FOUND"], body

    assert snapshot(database, alice.user_id) == before_alice
    assert snapshot(database, bob.user_id) == before_bob
    with stack.service.client(alice.jwt) as a:
        assert gql_data(a, TASK, id=task["id"])["task"] == task


# -- tokens from somewhere else --------------------------------------------------------


def test_token_from_another_better_auth_is_rejected(stack: Stack, database: DatabaseURL) -> None:
    """Another Better Auth instance (different base URL; for HS256 even the same secret):
    its tokens are turned away with 401 and nothing is stored for their `sub`."""
    hs = stack.setup == HS256
    alg = "EdDSA" if hs else stack.setup
    with BetterAuthServer(alg=alg, secret=stack.ba.secret, hs256=hs) as other:
        assert other.url != stack.ba.url
        mallory = sign_up(other, "mallory", "Mallory")
        assert claims_of(mallory.jwt)["iss"] == other.url
        # With a JWKS, Mallory's kid is not in ours, and might be a key rotated in since the
        # service's last fetch: each request waits for the next permitted fetch (default
        # JWKS_MIN_REFRESH_SECONDS, 5 s) before its 401, at most one fetch per interval.
        fetches, started = jwks_fetches(stack.service), time.monotonic()
        with stack.service.client(mallory.jwt) as c:
            assert_unauthenticated(c.post("/api/tasks", json={"title": "from elsewhere"}))
            assert_unauthenticated(c.post(f"/api/{mallory.user_id}/tasks", json={"title": "from elsewhere"}))
            assert_unauthenticated(c.get("/api/tasks"))
            body = gql(c, CREATE, input={"title": "from elsewhere"})
            assert body["data"] is None and gql_codes(body) == ["UNAUTHENTICATED"]
            assert gql_codes(gql(c, ME)) == ["UNAUTHENTICATED"]
        elapsed = time.monotonic() - started
        assert jwks_fetches(stack.service) - fetches <= (0 if hs else 1 + elapsed // 5)
        assert nothing_stored_for(database, mallory.user_id)

        if not hs:
            # A key the service can fetch, but the wrong issuer: JWKS pointed at the other
            # instance while BETTER_AUTH_URL (issuer and audience) names ours.
            env = {"BETTER_AUTH_URL": stack.ba.url, "JWT_JWKS_URL": other.jwks_url}
            with live_server(settings_for(database, **env)) as misconfigured, misconfigured.client() as c:
                r = c.post(
                    "/api/tasks", json={"title": "x"}, headers={"Authorization": f"Bearer {mallory.jwt}"}
                )
                assert_unauthenticated(r)
                assert "issued by someone else" in r.json()["detail"]
            assert nothing_stored_for(database, mallory.user_id)
    # Our own users are unaffected.
    assert status_with(stack.service, stack.alice.jwt) == 200


@pytest.mark.parametrize(
    ("env", "detail"),
    [
        ({"JWT_ISSUER": "https://auth.elsewhere.example"}, "issued by someone else"),
        ({"JWT_AUDIENCE": "https://api.elsewhere.example"}, "another audience"),
    ],
    ids=["issuer", "audience"],
)
def test_issuer_and_audience_are_enforced(
    stack: Stack, database: DatabaseURL, env: dict[str, str], detail: str
) -> None:
    """A real token with the right key but an iss/aud the service was told not to expect."""
    base = {"BETTER_AUTH_URL": stack.ba.url}
    if stack.setup == HS256:
        base["BETTER_AUTH_SECRET"] = stack.ba.secret
    with live_server(settings_for(database, **base, **env)) as service, service.client(stack.alice.jwt) as c:
        r = c.get("/api/tasks")
        assert_unauthenticated(r)
        assert detail in r.json()["detail"]


# -- HS256 (custom `jwt.sign` hook) -----------------------------------------------------


def test_hs256_service_with_only_the_secret(hs256_ba: BetterAuthServer, database: DatabaseURL) -> None:
    """BETTER_AUTH_SECRET alone (no BETTER_AUTH_URL, so no JWKS and no iss/aud expectations)."""
    user = sign_up(hs256_ba, "secret-only", "Secret Only")
    settings = settings_for(database, BETTER_AUTH_SECRET=hs256_ba.secret)
    assert settings.jwt_jwks_url is None and settings.jwt_issuer is None
    with live_server(settings) as service, service.client(user.jwt) as c:
        r = c.post("/api/tasks", json={"title": "hs256"})
        assert r.status_code == 201, r.text
        assert r.json()["user_id"] == user.user_id
        assert gql_data(c, ME)["me"] == {"id": user.user_id, "email": user.email, "name": "Secret Only"}


def test_hs256_with_a_wrong_secret_is_rejected(hs256_ba: BetterAuthServer, database: DatabaseURL) -> None:
    user = sign_up(hs256_ba, "wrong-secret", "Wrong Secret")
    env = {"BETTER_AUTH_URL": hs256_ba.url, "BETTER_AUTH_SECRET": HS256_SECRET[::-1]}
    with live_server(settings_for(database, **env)) as service, service.client(user.jwt) as c:
        r = c.post("/api/tasks", json={"title": "x"})
        assert_unauthenticated(r)
        assert "signature is invalid" in r.json()["detail"]
    assert nothing_stored_for(database, user.user_id)


def test_hs256_service_does_not_depend_on_the_missing_jwks(
    hs256_ba: BetterAuthServer, database: DatabaseURL
) -> None:
    """/api/auth/jwks is 404 in HS256 mode. HS256 tokens never need it: the key is the
    secret. A token that would need the JWKS (alg EdDSA from another instance) is refused."""
    env = {"BETTER_AUTH_URL": hs256_ba.url, "BETTER_AUTH_SECRET": hs256_ba.secret}
    user = sign_up(hs256_ba, "no-jwks", "No JWKS")
    with (
        BetterAuthServer(alg="EdDSA") as eddsa,
        live_server(settings_for(database, **env)) as service,
    ):
        stranger = sign_up(eddsa, "stranger", "Stranger")
        with service.client(user.jwt) as c:
            for _ in range(3):  # repeatedly, past the verified-token cache
                assert c.get("/api/tasks").status_code == 200
            assert c.get("/readyz").json() == {"status": "ready"}
        with service.client(stranger.jwt) as c:
            # The derived JWKS URL answers 404 and never served keys: no JWKS, so 401.
            assert_unauthenticated(c.post("/api/tasks", json={"title": "x"}))
        with service.client(user.jwt) as c:
            assert c.get("/api/tasks").status_code == 200
    assert nothing_stored_for(database, stranger.user_id)


# -- key rotation without a restart ----------------------------------------------------

ROTATION_INTERVAL = 4.0  # seconds: a key's expiresAt = createdAt + this
GRACE_PERIOD = 4.0  # seconds: an expired key stays in the JWKS this long


def test_key_rotation_without_restart(database: DatabaseURL) -> None:
    env = {"JWKS_MIN_REFRESH_SECONDS": "0.2", "JWKS_CACHE_SECONDS": "1"}
    with (
        BetterAuthServer(rotation_interval=ROTATION_INTERVAL, grace_period=GRACE_PERIOD) as ba,
        live_server(settings_for(database, BETTER_AUTH_URL=ba.url, **env)) as service,
    ):
        user = sign_up(ba, "rotation", "Rota Tion")
        t1 = user.jwt
        kid1 = kid_of(t1)
        assert kid1 is not None and listed_kids(ba) == [kid1]
        with service.client(t1) as c:
            r = c.post("/api/tasks", json={"title": "before rotation"})
            assert r.status_code == 201, r.text
            task = r.json()

        # Rotation is lazy: the first token issued after the interval has a new kid.
        issued: list[str] = []

        def rotated() -> bool:
            issued.append(ba.token_for_session(user.session_token))
            return kid_of(issued[-1]) != kid1

        assert wait_until(rotated, timeout=ROTATION_INTERVAL + 10, step=0.25)
        t2 = issued[-1]
        kid2 = kid_of(t2)
        assert claims_of(t2)["sub"] == user.user_id
        assert listed_kids(ba) == [kid1, kid2]  # both, during the grace period

        # The running service learns the new key (unknown kid -> JWKS refetch) ...
        with service.client(t2) as c:
            assert c.get(f"/api/tasks/{task['id']}").json() == task
            assert gql_data(c, ME)["me"]["id"] == user.user_id
        # ... and still accepts the old one while Better Auth lists it.
        with service.client(t1) as c:
            assert c.get(f"/api/tasks/{task['id']}").status_code == 200
            assert c.patch(f"/api/tasks/{task['id']}/complete").json()["completed"] is True
        assert kid1 in listed_kids(ba)

        # Better Auth drops the old key after its expiry + grace period ...
        assert wait_until(lambda: kid1 not in listed_kids(ba), timeout=ROTATION_INTERVAL + GRACE_PERIOD + 10)
        dropped_at = time.monotonic()
        assert listed_kids(ba) == [kid2]
        # ... and the service stops accepting T1 within a few seconds, without a restart.
        assert wait_until(lambda: status_with(service, t1) == 401, timeout=5, step=0.1)
        assert time.monotonic() - dropped_at < 5
        with service.client(t1) as c:
            r = c.get(f"/api/tasks/{task['id']}")
            assert_unauthenticated(r)
            assert "does not list" in r.json()["detail"]
            assert gql_codes(gql(c, ME)) == ["UNAUTHENTICATED"]
        # T2 keeps working (its key is still listed).
        with service.client(t2) as c:
            assert c.get(f"/api/tasks/{task['id']}").json()["completed"] is True
            assert c.put(f"/api/tasks/{task['id']}", json={"title": "after rotation"}).status_code == 200
            assert gql_data(c, TASK, id=str(task["id"]))["task"]["title"] == "after rotation"
        assert kid2 in listed_kids(ba)


# JWKS_MIN_REFRESH_SECONDS for the rotation-after-a-fetch test: long enough for the two
# Better Auth calls between the fetch and the request that must land inside the cool-down.
MIN_REFRESH = 5.0


def test_key_rotated_in_right_after_the_service_fetched_is_accepted(database: DatabaseURL) -> None:
    """The reported case: Better Auth rotates a key in just after the service fetched the
    JWKS, and a token signed with it arrives inside JWKS_MIN_REFRESH_SECONDS. It waits
    for the next permitted fetch (at most the interval) and is accepted: no 401."""
    env = {"JWKS_MIN_REFRESH_SECONDS": str(MIN_REFRESH), "JWKS_CACHE_SECONDS": "1"}
    with BetterAuthServer(rotation_interval=ROTATION_INTERVAL, grace_period=60) as ba:
        user = sign_up(ba, "rotate-after-fetch", "Rota Fetch")
        t1 = user.jwt
        kid1 = kid_of(t1)
        with live_server(settings_for(database, BETTER_AUTH_URL=ba.url, **env)) as service:
            with service.client(t1) as c:
                assert c.get("/api/tasks").status_code == 200
            started = time.monotonic()  # any fetch for that request began before this
            # Let kid1 pass its rotation interval (no token is issued meanwhile, so Better
            # Auth has not rotated yet) and the service's min refresh interval run out.
            time.sleep(max(claims_of(t1)["iat"] + ROTATION_INTERVAL + 1.2 - time.time(), 0.0))
            time.sleep(max(started + MIN_REFRESH + 0.2 - time.monotonic(), 0.0))
            assert listed_kids(ba) == [kid1]

            # The service fetches: T1's cached keys are stale (JWKS_CACHE_SECONDS), so its
            # next use revalidates them. The JWKS it gets lists kid1 only.
            fetches = jwks_fetches(service)
            before = time.monotonic()  # the fetch begins after this: the next is due no sooner
            with service.client(t1) as c:
                assert c.get("/api/tasks").status_code == 200
            fetched = time.monotonic()  # ... and began before this: the next is due no later
            assert jwks_fetches(service) == fetches + 1

            # Right after it, Better Auth rotates: the next token it issues has a new kid.
            t2 = ba.token_for_session(user.session_token)
            kid2 = kid_of(t2)
            assert kid2 is not None and kid2 != kid1
            assert listed_kids(ba) == [kid1, kid2]
            sent = time.monotonic()
            assert sent - before < MIN_REFRESH - 1, "too slow to land inside the cool-down"

            with service.client(t2) as c:
                r = c.get("/api/tasks")
                answered = time.monotonic()  # the service runs in this process: the same clock
                assert r.status_code == 200, r.text  # not 401
                # Not before the cool-down was over (it began no sooner than `before`) ...
                early = before + MIN_REFRESH - answered
                assert early <= 0.05, f"answered {early:.2f}s before the next fetch was permitted"
                # ... and not after a second interval either.
                late = answered - fetched
                assert late <= MIN_REFRESH + 2.0, f"answered {late:.2f}s after the fetch"
                assert jwks_fetches(service) == fetches + 2  # one fetch, at the end of the cool-down
                # The key is known now: no more waits or fetches for it (a wait: MIN_REFRESH).
                started = time.monotonic()
                assert gql_data(c, ME)["me"]["id"] == user.user_id
                assert time.monotonic() - started < 2.5
            with service.client(t1) as c:  # the old key is still listed: still accepted
                assert c.get("/api/tasks").status_code == 200
            assert jwks_fetches(service) == fetches + 2


def test_all_keys_retired_empty_jwks(database: DatabaseURL) -> None:
    """README corner case: once every key is past expiresAt + gracePeriod and no token
    has been issued since, Better Auth serves ``{"keys": []}``. Tokens signed by those
    keys are no longer vouched for: 401 (sign in again), not accepted, not 503."""
    env = {"JWKS_MIN_REFRESH_SECONDS": "0.2", "JWKS_CACHE_SECONDS": "1"}
    # A key is listed for rotation_interval + grace_period (5 s) after it is made: time for
    # the service to verify a token with it (after the sign-up, and again at the end with
    # the fresh key) on a loaded machine.
    with (
        BetterAuthServer(rotation_interval=1, grace_period=4) as ba,
        live_server(settings_for(database, BETTER_AUTH_URL=ba.url, **env)) as running,
    ):
        user = sign_up(ba, "retired", "Re Tired")
        assert status_with(running, user.jwt) == 200
        assert wait_until(lambda: ba.jwks() == {"keys": []}, timeout=15, step=0.1)
        # The running service, which knew the key ...
        assert wait_until(lambda: status_with(running, user.jwt) == 401, timeout=5, step=0.1)
        # ... and a service started now, which never saw it, agree.
        fresh_settings = settings_for(database, BETTER_AUTH_URL=ba.url, **env)
        with live_server(fresh_settings) as fresh, fresh.client(user.jwt) as c:
            assert_unauthenticated(c.get("/api/tasks"))
        # The next token Better Auth issues uses a fresh key, which the running service fetches.
        assert ba.jwks() == {"keys": []}
        fresh_token = ba.token_for_session(user.session_token)
        assert kid_of(fresh_token) != kid_of(user.jwt)
        assert wait_until(lambda: status_with(running, fresh_token) == 200, timeout=4, step=0.1)
