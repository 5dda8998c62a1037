"""The auth server's public keys (JWKS): fetched asynchronously, cached, refreshed on demand.

- A token with an unknown `kid` triggers a refetch, at most once per
  `min_refresh_seconds`, so a flood of made-up kids cannot hammer the auth server.
- An unknown `kid` that arrives inside that cool-down (Better Auth rotated a key in just
  after our last fetch) is not refused: the request waits for the next permitted fetch,
  one fetch scheduled for the end of the cool-down and shared by every request waiting
  for it, then looks the kid up again. The wait is at most `min_refresh_seconds` plus the
  fetch timeout, and never starts when the next fetch is more than
  MAX_COOL_DOWN_WAIT_SECONDS away (a large `min_refresh_seconds`): such a kid is refused
  (401) as before. So is, without a wait, a kid the auth server has stopped listing (a
  withdrawn key, not a new one) or lists with a key we never use. A made-up kid costs
  its request that wait, not an extra fetch.
- Concurrent requests that need a fetch share one in-flight request.
- Keys are trusted for `cache_seconds`; after that the next use waits for a refetch
  (shared, bounded by the timeout), so a key withdrawn while the service was idle is
  not accepted once more. If that refetch fails, the cached keys stay in use without
  further waits until a background retry succeeds (the auth server being down must
  not log everyone out); if it succeeds, keys no longer listed stop being accepted.
- A request that needs keys we cannot get fails fast with AuthUnavailable (503); so does
  a request whose scheduled fetch fails, and an unknown kid inside the cool-down after a
  failed fetch does not wait at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from schema.errors import AuthUnavailable

log = logging.getLogger(__name__)

MAX_JWKS_BYTES = 256 * 1024
# The longest an unknown kid waits for the end of the refresh cool-down; further away
# (JWKS_MIN_REFRESH_SECONDS above this) it is refused at once, as it would be anyway.
MAX_COOL_DOWN_WAIT_SECONDS = 10.0
_MAX_WITHDRAWN = 1024  # kids remembered as withdrawn (beyond it, only the latest fetch's)
# Algorithms allowed for a key follow from its type, never from the token.
_EC_CURVES = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512", "secp256k1": "ES256K"}
_RSA_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
# Private-key members: a verification key is built from the public ones only.
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


@dataclass(frozen=True, slots=True)
class VerificationKey:
    kid: str | None
    key: Any
    algorithms: tuple[str, ...]


class JWKSFetchError(Exception):
    pass


def key_from_jwk(jwk: dict[str, Any]) -> VerificationKey | None:
    """A verification key and its permitted algorithms, or None for keys we never use.

    Only the public members count: certificates (`x5c`, `x5u`) are never consulted.
    """
    if jwk.get("use", "sig") != "sig":
        return None
    kty, crv, declared = jwk.get("kty"), jwk.get("crv"), jwk.get("alg")
    if kty == "OKP" and crv in ("Ed25519", "Ed448"):
        algorithms: tuple[str, ...] = ("EdDSA",)
    elif kty == "EC" and crv in _EC_CURVES:
        algorithms = (_EC_CURVES[crv],)
    elif kty == "RSA":
        algorithms = (declared,) if declared in _RSA_ALGS else _RSA_ALGS
    else:
        return None  # symmetric ("oct") or unknown keys are never accepted from a JWKS
    if declared is not None and declared not in algorithms:
        return None
    public = {name: value for name, value in jwk.items() if name not in _PRIVATE_MEMBERS}
    if len(public) != len(jwk):
        log.warning("JWKS key %r publishes private-key members: they are ignored", jwk.get("kid"))
    try:
        key = jwt.PyJWK(public, algorithm=algorithms[0]).key
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError, KeyError):
        return None
    kid = jwk.get("kid")
    return VerificationKey(kid=kid if isinstance(kid, str) else None, key=key, algorithms=algorithms)


class JWKSCache:
    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient,
        *,
        cache_seconds: float = 300,
        min_refresh_seconds: float = 5,
        timeout_seconds: float = 3,
    ) -> None:
        self.url = url
        self._client = client
        self._cache_seconds = cache_seconds
        self._min_refresh = min_refresh_seconds
        self._timeout = timeout_seconds
        self._keys: dict[str | None, VerificationKey] = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last attempt, successful or not
        self._last_error: str | None = None
        self._inflight: asyncio.Task[None] | None = None
        # The fetch at the end of the cool-down (when it is due, the task) that requests for
        # an unknown kid wait for.
        self._scheduled: tuple[float, asyncio.Task[None]] | None = None
        # Kids that a fetch settled, so no wait for another: listed once, no longer
        # (withdrawn), or listed with a key we never use (unusable, as of the last fetch).
        self._withdrawn: frozenset[str | None] = frozenset()
        self._unusable: frozenset[str | None] = frozenset()
        self.fetch_count = 0
        self.failure_count = 0  # fetches that failed (read by the metrics)

    async def get(self, kid: str | None) -> VerificationKey | None:
        """The key for `kid`; None when the auth server does not list it."""
        now = time.monotonic()
        may_fetch = self._attempted_at is None or now - self._attempted_at >= self._min_refresh
        key = self._lookup(kid)
        if key is not None:
            stale = self._fetched_at is not None and now - self._fetched_at >= self._cache_seconds
            if not stale:
                return key
            if self._last_error is not None or not (may_fetch or self._inflight is not None):
                # The auth server is already known to be in trouble: no request waits on it.
                if may_fetch:
                    self._start_fetch()
                return key
            with contextlib.suppress(JWKSFetchError):
                await asyncio.shield(self._start_fetch())
                return self._lookup(kid)
            return key  # the auth server cannot answer now: the cached key keeps working
        if may_fetch or self._inflight is not None:
            fetch = self._start_fetch()
        elif self._last_error is not None:
            raise self._unavailable()  # the last attempt failed: no request waits on the next
        else:
            # Inside the cool-down: the key may have been rotated in since our last fetch.
            assert self._attempted_at is not None  # not may_fetch
            due = self._attempted_at + self._min_refresh
            settled = kid in self._withdrawn or kid in self._unusable
            if settled or due - now > MAX_COOL_DOWN_WAIT_SECONDS:
                return None
            fetch = self._schedule_fetch(due)
        try:
            await asyncio.shield(fetch)
        except JWKSFetchError:
            raise self._unavailable() from None
        return self._lookup(kid)

    def _lookup(self, kid: str | None) -> VerificationKey | None:
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        return self._keys.get(kid)

    def _start_fetch(self) -> asyncio.Task[None]:
        if self._inflight is None:
            self._inflight = asyncio.create_task(self._fetch())
            self._inflight.add_done_callback(self._clear_inflight)
        return self._inflight

    def _clear_inflight(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled():
            task.exception()  # retrieved here so asyncio does not log it as unhandled
        self._inflight = None

    def _schedule_fetch(self, due: float) -> asyncio.Task[None]:
        """The one fetch at `due` (the end of the cool-down), shared by all its waiters."""
        if self._scheduled is None or self._scheduled[0] != due:
            # (A task for an earlier `due` may still be finishing: its fetch began before
            # this request arrived, so it is not the one to wait for.)
            task = asyncio.create_task(self._fetch_at(due, self._attempted_at))
            task.add_done_callback(self._clear_scheduled)
            self._scheduled = (due, task)
        return self._scheduled[1]

    def _clear_scheduled(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled():
            task.exception()
        if self._scheduled is not None and self._scheduled[1] is task:
            self._scheduled = None

    async def _fetch_at(self, due: float, attempted_at: float | None) -> None:
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        if self._inflight is None and self._attempted_at != attempted_at:
            # A fetch started (at or after `due`) and ended while this task was waking up:
            # its outcome is the answer, and a second fetch now would break the interval.
            if self._last_error is not None:
                raise JWKSFetchError(self._last_error)
            return
        await self._start_fetch()  # or joins the one a request started at `due`

    def _unavailable(self) -> AuthUnavailable:
        return AuthUnavailable("The sign-in service's keys could not be fetched; try again shortly.")

    async def _fetch(self) -> None:
        self._attempted_at = time.monotonic()
        self.fetch_count += 1
        try:
            keys, unusable = await asyncio.wait_for(self._download(), timeout=self._timeout)
        except JWKSFetchError as error:
            self.failure_count += 1
            self._last_error = str(error)
            log.warning("JWKS fetch from %s failed: %s", self.url, error)
            raise
        except (TimeoutError, httpx.HTTPError) as error:
            self.failure_count += 1
            self._last_error = f"{type(error).__name__}: {error}"
            log.warning("JWKS fetch from %s failed: %s", self.url, self._last_error)
            raise JWKSFetchError(self._last_error) from None
        withdrawn = self._keys.keys() - keys.keys()
        if len(self._withdrawn) + len(withdrawn) <= _MAX_WITHDRAWN:
            withdrawn |= self._withdrawn - keys.keys()
        self._withdrawn = frozenset(withdrawn)
        self._unusable = unusable
        self._keys = keys
        self._fetched_at = time.monotonic()
        self._last_error = None

    async def _download(self) -> tuple[dict[str | None, VerificationKey], frozenset[str | None]]:
        """The usable keys by kid, and the kids listed with keys we never use."""
        response = await self._client.get(self.url, headers={"Accept": "application/json"})
        if response.status_code == 404:
            if self._keys:
                # It did serve keys: a proxy or deploy gone wrong, not a withdrawal of them all.
                raise JWKSFetchError("HTTP 404 after serving keys")
            # A definite "no keys here", e.g. Better Auth with a custom HS256 signer
            # (its JWKS endpoint is off): asymmetric tokens get 401, not a retryable 503.
            if self._fetched_at is None:
                log.warning("JWKS at %s answers 404: no asymmetric tokens will be accepted", self.url)
            return {}, frozenset()
        if response.status_code != 200:
            raise JWKSFetchError(f"HTTP {response.status_code}")
        if len(response.content) > MAX_JWKS_BYTES:
            raise JWKSFetchError("response too large")
        try:
            document = response.json()
        except ValueError:
            raise JWKSFetchError("response is not JSON") from None
        raw_keys = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(raw_keys, list):
            raise JWKSFetchError('response has no "keys" list')
        keys: dict[str | None, VerificationKey] = {}
        unusable: set[str | None] = set()
        for jwk in raw_keys:
            if not isinstance(jwk, dict):
                continue
            if (key := key_from_jwk(jwk)) is not None:
                keys[key.kid] = key
            elif isinstance(kid := jwk.get("kid"), str):
                unusable.add(kid)
        # An empty list is an answer, not a failure: Better Auth serves {"keys": []} once
        # every key is past its expiry + grace period, and those keys must stop working.
        if not keys and raw_keys:
            raise JWKSFetchError("no usable signing keys")
        return keys, frozenset(unusable - keys.keys())

    async def prefetch(self) -> None:
        """Warm the cache at start-up; failures are logged, not fatal."""
        with contextlib.suppress(JWKSFetchError):
            await self._start_fetch()
