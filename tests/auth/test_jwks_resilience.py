"""The JWKS cache under a slow, down or broken auth server, under load, and across key rotation.

Each test runs its own JWKS endpoint and its own service, so the cache state is known.
Elapsed-time bounds are hang checks (generous), not performance assertions.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from jwt.algorithms import OKPAlgorithm

from db.url import DatabaseURL
from tests.support import (
    JWKSServer,
    auth,
    json_of,
    live_server,
    settings_for,
    snapshot,
    unique_user,
    wait_until,
)

ISSUER = "http://auth.test"
FETCH_TIMEOUT = 0.5  # JWKS_FETCH_TIMEOUT_SECONDS
FLOOD_FETCH_TIMEOUT = 2.0  # the flood tests': they count fetches, not fetch timeouts
SLOW = 6.0  # a JWKS response delay well beyond every fetch timeout used here, and FAIL_FAST
# Upper bound for a request that needed a fetch which failed: below the slow answer (a
# request that waited for it took SLOW at least), with room above the fetch timeouts
# (0.5 s; 2 s in the outage test) for a loaded machine.
FAIL_FAST = SLOW - 1.0
MODES = ["slow", "down", "http_500", "invalid_json"]

T = TypeVar("T")


@dataclass(frozen=True)
class Key:
    kid: str | None
    private: ed25519.Ed25519PrivateKey
    jwk: dict[str, Any]

    def token(self, sub: str, **claims: Any) -> str:
        now = int(time.time())
        payload = {"sub": sub, "iss": ISSUER, "aud": ISSUER, "iat": now, "exp": now + 600, **claims}
        headers = {"kid": self.kid} if self.kid is not None else None
        return jwt.encode(payload, self.private, algorithm="EdDSA", headers=headers)


def make_key(*, with_kid: bool = True) -> Key:
    private = ed25519.Ed25519PrivateKey.generate()
    jwk = OKPAlgorithm.to_jwk(private.public_key(), as_dict=True)
    kid = f"key-{uuid.uuid4().hex[:8]}" if with_kid else None
    if kid is not None:
        jwk["kid"] = kid
    return Key(kid, private, {**jwk, "use": "sig", "alg": "EdDSA"})


@contextmanager
def jwks_server(*keys: Key) -> Iterator[JWKSServer]:
    server = JWKSServer(keys=[k.jwk for k in keys]).start()
    try:
        yield server
    finally:
        server.stop()  # also fine after a test stopped it itself


@contextmanager
def service(
    database: DatabaseURL,
    jwks: JWKSServer,
    *,
    cache: str = "300",
    min_refresh: str = "0.2",
    timeout: float = FETCH_TIMEOUT,
    **env: str,
) -> Iterator[httpx.Client]:
    settings = settings_for(
        database,
        BETTER_AUTH_URL=ISSUER,
        JWT_JWKS_URL=jwks.url,
        JWKS_CACHE_SECONDS=cache,
        JWKS_MIN_REFRESH_SECONDS=min_refresh,
        JWKS_FETCH_TIMEOUT_SECONDS=str(timeout),
        **env,
    )
    with live_server(settings) as srv, httpx.Client(base_url=srv.url, timeout=30) as client:
        yield client


def break_jwks(jwks: JWKSServer, mode: str) -> None:
    if mode == "slow":
        jwks.delay = SLOW
    elif mode == "down":
        jwks.stop()  # connection refused from now on
    elif mode == "http_500":
        jwks.status = 500
    elif mode == "invalid_json":
        jwks.body = b'{"keys": [ not json'
    else:
        raise AssertionError(mode)


def repair_jwks(jwks: JWKSServer) -> None:
    jwks.delay, jwks.status, jwks.body = 0.0, 200, None


def timed(call: Callable[..., T], *args: Any) -> tuple[T, float]:
    start = time.monotonic()
    result = call(*args)
    return result, time.monotonic() - start


def list_tasks(client: httpx.Client, token: str) -> httpx.Response:
    return client.get("/api/tasks", headers=auth(token))


def assert_auth_unavailable(r: httpx.Response, elapsed: float) -> None:
    assert r.status_code == 503, r.text
    assert json_of(r)["code"] == "auth_unavailable"
    assert elapsed < FAIL_FAST, f"took {elapsed:.2f}s: the request waited on the JWKS endpoint"


def assert_unauthenticated(r: httpx.Response) -> None:
    assert r.status_code == 401, r.text
    assert json_of(r)["code"] == "unauthenticated"


def made_up_kid_token(sub: str) -> str:
    """A token of the right key type naming a random kid no JWKS lists."""
    return Key(f"made-up-{uuid.uuid4().hex}", ed25519.Ed25519PrivateKey.generate(), {}).token(sub)


def fetch_now(client: httpx.Client, jwks: JWKSServer) -> float:
    """Make the service fetch the JWKS now (a made-up kid, past the min refresh interval);
    returns the monotonic time the request was sent. The refresh cool-down starts when the
    fetch begins, which is no earlier than this, so `sent + interval` is a lower bound for
    the next permitted fetch that a loaded machine cannot make too late."""
    hits, sent = jwks.hits, time.monotonic()
    assert_unauthenticated(list_tasks(client, made_up_kid_token(unique_user())))
    assert jwks.hits == hits + 1, "no fetch: still inside the min refresh interval?"
    return sent


def answered_at(call: Callable[..., T], *args: Any) -> tuple[T, float]:
    """call(*args) and the monotonic time its answer arrived."""
    result = call(*args)
    return result, time.monotonic()


def concurrently(n: int, call: Callable[[int], T]) -> list[T]:
    """Run call(0..n-1) on n threads released together."""
    barrier = threading.Barrier(n)

    def run(i: int) -> T:
        barrier.wait()
        return call(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


# --- outages ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_outage_keeps_cached_keys_working_and_fails_fast_for_new_ones(
    database: DatabaseURL, mode: str
) -> None:
    # A fetch timeout (2 s) well above the bound for a request that must not wait (1 s): a
    # cached key that did wait on a fetch (slow mode: the whole timeout) cannot pass it.
    timeout = 2.0
    key = make_key()
    user = unique_user()
    with jwks_server(key) as jwks, service(database, jwks, cache="1", timeout=timeout) as client:
        seen = key.token(user)
        assert list_tasks(client, seen).status_code == 200
        hits = jwks.hits
        break_jwks(jwks, mode)
        time.sleep(1.1)  # past JWKS_CACHE_SECONDS: the next use of the key revalidates first

        # The first use waits for that refetch, at most the fetch timeout, then keeps the key.
        r, elapsed = timed(list_tasks, client, seen)
        assert r.status_code == 200, r.text
        assert elapsed < FAIL_FAST, f"took {elapsed:.2f}s: the revalidation outlived its timeout"
        # From then on no request waits: retries (min refresh 0.2 s) run in the background.
        deadline = time.monotonic() + 0.7
        while time.monotonic() < deadline:
            for token in (seen, key.token(user, jti=uuid.uuid4().hex)):  # cached result / new token
                r, elapsed = timed(list_tasks, client, token)
                assert r.status_code == 200, r.text
                assert elapsed < timeout / 2, f"took {elapsed:.2f}s: a cached key waited on a fetch"
            time.sleep(0.1)
        if mode != "down":
            assert jwks.hits > hits, "the stale cache never tried to revalidate: outage not exercised"

        # A key id not in the cache needs a fetch, which cannot succeed: 503, quickly.
        for _ in range(2):
            other = make_key()
            r, elapsed = timed(list_tasks, client, other.token(user))
            assert_auth_unavailable(r, elapsed)
            time.sleep(0.25)  # also past the min refresh interval: a new attempt each time

        if mode != "down":
            new = make_key()
            jwks.keys = [key.jwk, new.jwk]
            repair_jwks(jwks)
            assert wait_until(lambda: list_tasks(client, new.token(user)).status_code == 200, timeout=5)
            assert list_tasks(client, key.token(user)).status_code == 200


@pytest.mark.parametrize("mode", MODES)
def test_no_cached_keys_fails_fast_and_writes_nothing(database: DatabaseURL, mode: str) -> None:
    key = make_key()
    with jwks_server(key) as jwks:
        break_jwks(jwks, mode)  # before the service starts: its start-up fetch fails
        with service(database, jwks) as client:
            user = unique_user()
            token = key.token(user)
            for attempt in range(3):  # within and past the min refresh interval after a failure
                r, elapsed = timed(
                    lambda: client.post("/api/tasks", json={"title": "t"}, headers=auth(token))
                )
                assert_auth_unavailable(r, elapsed)
                if mode == "slow" and attempt == 2:
                    # A fetch of its own (past the min refresh interval): it waited for the
                    # configured timeout, not less, and not for the slow answer.
                    assert elapsed >= FETCH_TIMEOUT * 0.9, f"gave up after {elapsed:.2f}s"
                assert r.headers.get("www-authenticate") is None
                time.sleep(0.25)
            assert snapshot(database, user) == []

            query = {"query": "{ me { id } }"}
            r, elapsed = timed(lambda: client.post("/graphql", json=query, headers=auth(token)))
            assert elapsed < FAIL_FAST
            assert r.status_code == 200
            assert r.json()["errors"][0]["extensions"]["code"] == "AUTH_UNAVAILABLE"

            if mode != "down":
                repair_jwks(jwks)
                assert wait_until(lambda: list_tasks(client, token).status_code == 200, timeout=5)
                r = client.post("/api/tasks", json={"title": "t"}, headers=auth(token))
                assert r.status_code == 201, r.text


def test_jwks_answering_404_means_no_keys_not_an_outage(database: DatabaseURL) -> None:
    """Better Auth with a custom HS256 signer turns /api/auth/jwks off (404): an asymmetric
    token is then simply not trusted (401, so clients sign in again), not 'retry later'."""
    key = make_key()
    with jwks_server(key) as jwks:
        jwks.status = 404
        with service(database, jwks) as client:
            user = unique_user()
            r = client.post("/api/tasks", json={"title": "t"}, headers=auth(key.token(user)))
            assert_unauthenticated(r)
            assert snapshot(database, user) == []
            jwks.status = 200  # the endpoint comes back: its keys are used again
            assert wait_until(lambda: list_tasks(client, key.token(user)).status_code == 200, timeout=5)


# --- concurrency and floods ------------------------------------------------------------------


def test_concurrent_requests_for_a_new_key_share_one_fetch(database: DatabaseURL) -> None:
    old, new = make_key(), make_key()
    # No min refresh interval: only the sharing of the in-flight fetch limits fetches here.
    with jwks_server(old) as jwks, service(database, jwks, min_refresh="0", timeout=5) as client:
        jwks.keys = [old.jwk, new.jwk]
        jwks.delay = 1.0  # every request below arrives while the fetch is in flight
        hits = jwks.hits
        results = concurrently(20, lambda _: list_tasks(client, new.token(unique_user())).status_code)
        assert results == [200] * 20
        assert jwks.hits - hits == 1


def test_concurrent_requests_on_an_empty_cache_share_one_fetch(database: DatabaseURL) -> None:
    key = make_key()
    with jwks_server(key) as jwks:
        jwks.status = 500  # the start-up fetch fails: nothing cached
        with service(database, jwks, min_refresh="0", timeout=5) as client:
            repair_jwks(jwks)
            jwks.delay = 1.0
            hits = jwks.hits
            results = concurrently(20, lambda _: list_tasks(client, key.token(unique_user())).status_code)
            assert results == [200] * 20
            assert jwks.hits - hits == 1


def test_concurrent_unknown_kids_share_one_fetch(database: DatabaseURL) -> None:
    key = make_key()
    with jwks_server(key) as jwks, service(database, jwks, min_refresh="0", timeout=5) as client:
        jwks.delay = 3.0  # every request below arrives while the fetch is in flight
        hits = jwks.hits
        results = concurrently(20, lambda _: list_tasks(client, make_key().token(unique_user())))
        for r in results:
            assert_unauthenticated(r)
        assert jwks.hits - hits == 1


def test_unknown_kid_flood_is_rate_limited(database: DatabaseURL) -> None:
    key = make_key()
    # A fetch timeout of their own, well above the local JWKS server's answer: under a busy
    # suite a 0.5 s fetch can time out (a 503), which is not what these tests are about.
    with (
        jwks_server(key) as jwks,
        service(database, jwks, min_refresh="2", timeout=FLOOD_FETCH_TIMEOUT) as client,
    ):
        time.sleep(2.1)  # past the interval since the start-up fetch: one refetch is allowed
        hits = jwks.hits
        forged = make_key()  # right key type, not listed; each request names a random kid

        def attempt(_: int) -> tuple[httpx.Response, float]:
            token = jwt.encode(
                {"sub": unique_user(), "iss": ISSUER, "aud": ISSUER, "exp": int(time.time()) + 600},
                forged.private,
                algorithm="EdDSA",
                headers={"kid": uuid.uuid4().hex},
            )
            return timed(list_tasks, client, token)

        # A sustained flood, 10 at a time: the first request fetches at once; every later
        # one arrives inside a cool-down and waits for the fetch at its end (shared), so
        # the flood advances one 2 s interval, and one fetch, per round.
        with ThreadPoolExecutor(max_workers=10) as pool:
            results, elapsed = timed(lambda: list(pool.map(attempt, range(50))))
        for r, waited in results:
            assert_unauthenticated(r)  # an unknown key, not an outage
            # At most one 2 s interval and the fetch (a wait into a second interval: 4 s).
            assert waited < 3.7, f"a request waited {waited:.2f}s"
        fetches = jwks.hits - hits
        # At most one fetch per 2 s interval.
        assert 1 <= fetches <= 1 + int(elapsed // 2), (
            f"{fetches} fetches for 50 unknown kids in {elapsed:.1f}s"
        )
        assert list_tasks(client, key.token(unique_user())).status_code == 200


def test_unknown_kid_flood_inside_the_cool_down_costs_one_fetch_per_interval(
    database: DatabaseURL,
) -> None:
    # 50 requests at once, each with its own made-up kid, right after a fetch: they all
    # wait for the one fetch at the end of the cool-down, then get 401. A second flood
    # straight after waits a whole interval for the next one. One fetch per interval.
    # (3 s: every one of the 50 threads must have sent its request before the fetch is due.)
    interval = 3.0
    key = make_key()
    with (
        jwks_server(key) as jwks,
        service(database, jwks, min_refresh=str(interval), timeout=FLOOD_FETCH_TIMEOUT) as client,
    ):
        time.sleep(interval + 0.1)
        fetched = fetch_now(client, jwks)
        for wave in range(2):
            hits, started = jwks.hits, time.monotonic()
            results = concurrently(
                50, lambda _: answered_at(list_tasks, client, made_up_kid_token(unique_user()))
            )
            for r, _ in results:
                assert_unauthenticated(r)
            answers = sorted(at for _, at in results)
            assert jwks.hits == hits + 1, f"wave {wave}: {jwks.hits - hits} fetches for 50 kids"
            # None was answered before the cool-down was over (absolute times: the threads'
            # own start-up on a loaded machine must not count as waiting), and all were
            # answered within the interval (the fetch is due at most that long after
            # `started`), the fetch and 2 s for 50 answers: not after a second interval.
            due = fetched + interval
            early = due - answers[0]
            assert early <= 0.1, f"wave {wave}: answered {early:.2f}s before the fetch was due"
            assert answers[-1] - started < interval + 2.0, f"wave {wave}: waited {answers[-1] - started:.2f}s"
            fetched = due  # the shared fetch began no earlier: the next one is due an interval later
        assert list_tasks(client, key.token(unique_user())).status_code == 200


# --- rotation --------------------------------------------------------------------------------


def test_key_rotation_without_restart(database: DatabaseURL) -> None:
    old, new = make_key(), make_key()
    user = unique_user()
    with jwks_server(old) as jwks, service(database, jwks, cache="1", timeout=2) as client:
        old_token = old.token(user)
        assert list_tasks(client, old_token).status_code == 200
        assert list_tasks(client, old_token).status_code == 200  # now a cached verification

        # A new key is published: tokens naming it work at once (past the min refresh interval).
        jwks.keys = [old.jwk, new.jwk]
        time.sleep(0.3)
        new_token = new.token(user)
        assert list_tasks(client, new_token).status_code == 200

        # The old key is still listed: its tokens keep working across cache refreshes.
        hits = jwks.hits
        time.sleep(1.1)
        for _ in range(3):
            assert list_tasks(client, old_token).status_code == 200
            assert list_tasks(client, old.token(user, jti=uuid.uuid4().hex)).status_code == 200
            time.sleep(0.3)
        assert jwks.hits > hits, "the cache was never revalidated"

        # The old key is withdrawn: within a few seconds its tokens, even the one verified
        # and cached before, are refused; the new key's tokens still work.
        jwks.keys = [new.jwk]
        assert wait_until(lambda: list_tasks(client, old_token).status_code == 401, timeout=5)
        assert_unauthenticated(list_tasks(client, old_token))
        assert_unauthenticated(list_tasks(client, old.token(user, jti=uuid.uuid4().hex)))
        assert list_tasks(client, new_token).status_code == 200
        assert list_tasks(client, new.token(user, jti=uuid.uuid4().hex)).status_code == 200


def test_key_rotated_in_right_after_a_fetch_is_accepted_not_refused(database: DatabaseURL) -> None:
    # The reported case: the auth server rotates a key in just after the service fetched
    # the JWKS, and a token naming it arrives a second later, inside the refresh cool-down.
    # It waits for the next permitted fetch (no sooner: that is the flood limit) and gets
    # in, rather than a 401 that would sign the user out.
    interval = 2.0
    old, new = make_key(), make_key()
    user = unique_user()
    with jwks_server(old) as jwks, service(database, jwks, min_refresh=str(interval)) as client:
        assert list_tasks(client, old.token(user)).status_code == 200
        time.sleep(interval + 0.1)
        fetched = fetch_now(client, jwks)
        jwks.keys = [old.jwk, new.jwk]
        time.sleep(1.0)
        hits, sent = jwks.hits, time.monotonic()
        r, waited = timed(list_tasks, client, new.token(user))
        assert r.status_code == 200, r.text
        assert jwks.hits == hits + 1
        due = fetched + interval - sent  # when the next fetch is permitted, from the send (~1 s)
        assert waited >= due - 0.3, f"answered after {waited:.2f}s: fetched before the interval was up"
        assert waited < interval + 0.5, f"waited {waited:.2f}s"
        # From now on the new key is cached: no wait, no fetch.
        r, elapsed = timed(list_tasks, client, new.token(user, jti=uuid.uuid4().hex))
        # (A wait for another fetch would be a whole 2 s interval.)
        assert r.status_code == 200 and elapsed < 1.5 and jwks.hits == hits + 1
        assert list_tasks(client, old.token(user, jti=uuid.uuid4().hex)).status_code == 200


@pytest.mark.parametrize("mode", MODES)
def test_scheduled_fetch_that_fails_is_auth_unavailable_not_401(database: DatabaseURL, mode: str) -> None:
    # A new kid inside the cool-down waits for the next fetch; if that fetch fails, the
    # answer is 503 (retry), not 401 (sign-out). Requests waiting together share it, and
    # after it failed the next new kid inside the cool-down fails fast, without a wait.
    interval = 2.0
    key, new = make_key(), make_key()
    user = unique_user()
    with jwks_server(key) as jwks, service(database, jwks, min_refresh=str(interval)) as client:
        time.sleep(interval + 0.1)
        fetch_now(client, jwks)
        fetched = time.monotonic()  # that fetch began before now: the next one is due by now + interval
        jwks.keys = [key.jwk, new.jwk]
        hits = jwks.hits
        break_jwks(jwks, mode)
        results = concurrently(5, lambda _: answered_at(list_tasks, client, new.token(unique_user())))
        for r, answered in results:
            assert r.status_code == 503, r.text
            assert json_of(r)["code"] == "auth_unavailable"
            # Absolute times: a thread slow to start on a loaded machine does not count.
            waited = answered - fetched
            assert waited < interval + FETCH_TIMEOUT + 1.5, f"answered {waited:.2f}s after the fetch"
        if mode != "down":
            assert jwks.hits == hits + 1
        r, elapsed = timed(list_tasks, client, new.token(user))
        assert_auth_unavailable(r, elapsed)
        # (A wait for the next fetch would last most of a 2 s interval.)
        assert elapsed < 1.0, f"took {elapsed:.2f}s: waited although the last fetch failed"
        assert list_tasks(client, key.token(user)).status_code == 200  # cached key: unaffected
        if mode != "down":
            repair_jwks(jwks)
            assert wait_until(lambda: list_tasks(client, new.token(user)).status_code == 200, timeout=5)


def test_no_wait_when_the_next_fetch_is_far_off(database: DatabaseURL) -> None:
    # JWKS_MIN_REFRESH_SECONDS at its maximum (3600): the next permitted fetch is beyond
    # the longest wait (MAX_COOL_DOWN_WAIT_SECONDS), so a new kid is refused at once, as
    # before: the documented limit of a long interval.
    old, new = make_key(), make_key()
    with jwks_server(old) as jwks, service(database, jwks, min_refresh="3600") as client:
        hits = jwks.hits
        jwks.keys = [old.jwk, new.jwk]
        r, elapsed = timed(list_tasks, client, new.token(unique_user()))
        assert_unauthenticated(r)
        assert elapsed < 5.0, f"took {elapsed:.2f}s"  # a wait would last until the fetch, an hour away
        assert jwks.hits == hits


def test_withdrawn_or_unusable_kids_do_not_wait(database: DatabaseURL) -> None:
    # Only a kid the service has not seen listed may be a key rotated in. One the last
    # fetch no longer lists (withdrawn), or lists with a key never used (here "use": "enc"),
    # is refused inside the cool-down at once, as before, without another fetch.
    interval = 3.0
    old, new, enc = make_key(), make_key(), make_key()
    user = unique_user()
    with (
        jwks_server(old, new) as jwks,
        service(database, jwks, min_refresh=str(interval)) as client,
    ):
        cached = old.token(user)
        assert list_tasks(client, cached).status_code == 200
        jwks.keys = [new.jwk, {**enc.jwk, "use": "enc"}]
        time.sleep(interval + 0.1)
        fetch_now(client, jwks)  # learns that `old` is gone and `enc` is not for signatures
        hits = jwks.hits
        for token in (cached, old.token(user, jti=uuid.uuid4().hex), enc.token(user)):
            r, elapsed = timed(list_tasks, client, token)
            assert_unauthenticated(r)
            assert elapsed < 1.5, f"took {elapsed:.2f}s"  # a wait for the next fetch: about 3 s
        assert jwks.hits == hits
        assert list_tasks(client, new.token(user)).status_code == 200


def test_rotation_of_a_key_without_kid_revokes_its_cached_tokens(database: DatabaseURL) -> None:
    # A JWKS with a single key that has no "kid": tokens without a kid use that key.
    old, new = make_key(with_kid=False), make_key(with_kid=False)
    user = unique_user()
    with jwks_server(old) as jwks, service(database, jwks, cache="1", timeout=2) as client:
        old_token = old.token(user)
        assert "kid" not in jwt.get_unverified_header(old_token)
        assert list_tasks(client, old_token).status_code == 200
        assert list_tasks(client, old_token).status_code == 200  # now a cached verification

        jwks.keys = [new.jwk]
        new_token = new.token(user)
        assert wait_until(lambda: list_tasks(client, new_token).status_code == 200, timeout=5)
        assert wait_until(lambda: list_tasks(client, old_token).status_code == 401, timeout=5)
        assert_unauthenticated(list_tasks(client, old.token(user, jti=uuid.uuid4().hex)))


def test_concurrent_reuse_of_a_cached_token_after_its_key_is_withdrawn(database: DatabaseURL) -> None:
    # Several requests carrying the same already-verified token while the cache refetches
    # to find out whether its key is still listed: every one of them gets a clean 401.
    old, new = make_key(), make_key()
    user = unique_user()
    with jwks_server(old, new) as jwks, service(database, jwks, cache="1", timeout=3) as client:
        old_token = old.token(user)
        assert list_tasks(client, old_token).status_code == 200
        jwks.keys = [new.jwk]
        jwks.delay = 0.5
        time.sleep(1.1)  # the cache is stale
        assert list_tasks(client, new.token(user)).status_code == 200  # starts a background refetch
        time.sleep(0.8)  # refetch done: the old key is gone, and another fetch is allowed
        responses = concurrently(10, lambda _: list_tasks(client, old_token))
        assert [r.status_code for r in responses] == [401] * 10, [r.text for r in responses]


@pytest.mark.parametrize("first_use", ["cached_token", "new_token"])
def test_key_withdrawn_while_idle_is_refused_at_first_use(database: DatabaseURL, first_use: str) -> None:
    # Nobody calls while the cache lifetime runs out: the first request afterwards must not
    # be let in on the stale keys (it waits for the refetch, which no longer lists the key).
    old, new = make_key(), make_key()
    user = unique_user()
    with jwks_server(old, new) as jwks, service(database, jwks, cache="1") as client:
        cached = old.token(user)
        assert list_tasks(client, cached).status_code == 200  # verified and remembered
        jwks.keys = [new.jwk]
        time.sleep(1.2)
        hits = jwks.hits
        first = cached if first_use == "cached_token" else old.token(user, jti=uuid.uuid4().hex)
        assert_unauthenticated(list_tasks(client, first))
        assert jwks.hits == hits + 1
        assert_unauthenticated(list_tasks(client, cached))
        assert list_tasks(client, new.token(user)).status_code == 200


def test_cached_token_that_expires_while_its_key_is_revalidated(database: DatabaseURL) -> None:
    # Request A carries an already-verified token shortly before its exp and waits on a slow
    # revalidation; B, with the same token just after exp, drops it from the cache. Both get
    # a clean 401: A's wait ends after exp (no token is let in after exp, and no 500).
    key = make_key()
    user = unique_user()
    with (
        jwks_server(key) as jwks,
        service(database, jwks, cache="1", timeout=1.5, JWT_LEEWAY_SECONDS="0") as client,
    ):
        exp = math.ceil(time.time()) + 3
        token = key.token(user, exp=exp)
        assert list_tasks(client, token).status_code == 200
        assert list_tasks(client, token).status_code == 200  # a cached verification
        jwks.delay = SLOW
        time.sleep(max(0.0, exp - 0.4 - time.time()))  # the cache is stale by now
        with ThreadPoolExecutor(max_workers=1) as pool:
            a = pool.submit(list_tasks, client, token)
            time.sleep(max(0.0, exp + 0.3 - time.time()))
            b = list_tasks(client, token)
            ra = a.result()
        assert_unauthenticated(b)
        assert_unauthenticated(ra)
        assert "expired" in ra.json()["detail"]


def test_jwks_answering_404_after_serving_keys_is_an_outage(database: DatabaseURL) -> None:
    # A 404 from an endpoint that did serve keys (a proxy or a deploy gone wrong) is trouble,
    # not a withdrawal of every key: cached keys keep working, new ones are 503.
    key = make_key()
    user = unique_user()
    with jwks_server(key) as jwks, service(database, jwks, cache="1") as client:
        assert list_tasks(client, key.token(user)).status_code == 200
        jwks.status = 404
        time.sleep(1.1)  # stale: the next use revalidates and gets the 404
        hits = jwks.hits
        assert list_tasks(client, key.token(user)).status_code == 200
        assert list_tasks(client, key.token(user, jti=uuid.uuid4().hex)).status_code == 200
        assert jwks.hits > hits
        time.sleep(0.25)
        r, elapsed = timed(list_tasks, client, make_key().token(user))
        assert_auth_unavailable(r, elapsed)


# --- tokens without a kid --------------------------------------------------------------------


def test_token_without_kid_uses_the_only_key(database: DatabaseURL) -> None:
    key = make_key()  # listed with a kid
    unkeyed = Key(None, key.private, key.jwk)  # the same key, tokens without a kid
    user = unique_user()
    with jwks_server(key) as jwks, service(database, jwks) as client:
        token = unkeyed.token(user)
        assert "kid" not in jwt.get_unverified_header(token)
        assert list_tasks(client, token).status_code == 200
        r = client.post("/api/tasks", json={"title": "t"}, headers=auth(token))
        assert r.status_code == 201 and r.json()["user_id"] == user


def test_token_without_kid_is_refused_when_several_keys_are_listed(database: DatabaseURL) -> None:
    first, second = make_key(), make_key()
    user = unique_user()
    with jwks_server(first, second) as jwks, service(database, jwks, min_refresh="2") as client:
        for signer in (first, second):
            token = Key(None, signer.private, signer.jwk).token(user)
            assert "kid" not in jwt.get_unverified_header(token)
            # Inside the 2 s cool-down, so it waits for the next fetch (the JWKS might have
            # changed) and is refused after it: at most one fetch per interval.
            hits, sent = jwks.hits, time.monotonic()
            r = client.post("/api/tasks", json={"title": "t"}, headers=auth(token))
            assert_unauthenticated(r)
            # At most the 2 s interval and the fetch (a wait into a second interval: 4 s).
            assert time.monotonic() - sent < 3.5 and jwks.hits == hits + 1
        assert snapshot(database, user) == []
        assert list_tasks(client, second.token(user)).status_code == 200  # with its kid: fine
