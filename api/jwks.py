"""The auth server's public keys (JWKS): fetched asynchronously, cached, refreshed on demand.

- A token with an unknown `kid` triggers a refetch, at most once per
  `min_refresh_seconds`, so a flood of made-up kids cannot hammer the auth server.
- Concurrent requests that need a fetch share one in-flight request.
- Keys are trusted for `cache_seconds`; after that the next use waits for a refetch
  (shared, bounded by the timeout), so a key withdrawn while the service was idle is
  not accepted once more. If that refetch fails, the cached keys stay in use without
  further waits until a background retry succeeds (the auth server being down must
  not log everyone out); if it succeeds, keys no longer listed stop being accepted.
- A request that needs keys we cannot get fails fast with AuthUnavailable (503).
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
        self.fetch_count = 0

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
            try:
                await asyncio.shield(self._start_fetch())
            except JWKSFetchError:
                raise self._unavailable() from None
            return self._lookup(kid)
        if self._last_error is not None:
            raise self._unavailable()
        return None

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

    def _unavailable(self) -> AuthUnavailable:
        return AuthUnavailable("The sign-in service's keys could not be fetched; try again shortly.")

    async def _fetch(self) -> None:
        self._attempted_at = time.monotonic()
        self.fetch_count += 1
        try:
            keys = await asyncio.wait_for(self._download(), timeout=self._timeout)
        except JWKSFetchError as error:
            self._last_error = str(error)
            log.warning("JWKS fetch from %s failed: %s", self.url, error)
            raise
        except (TimeoutError, httpx.HTTPError) as error:
            self._last_error = f"{type(error).__name__}: {error}"
            log.warning("JWKS fetch from %s failed: %s", self.url, self._last_error)
            raise JWKSFetchError(self._last_error) from None
        self._keys = keys
        self._fetched_at = time.monotonic()
        self._last_error = None

    async def _download(self) -> dict[str | None, VerificationKey]:
        response = await self._client.get(self.url, headers={"Accept": "application/json"})
        if response.status_code == 404:
            if self._keys:
                # It did serve keys: a proxy or deploy gone wrong, not a withdrawal of them all.
                raise JWKSFetchError("HTTP 404 after serving keys")
            # A definite "no keys here", e.g. Better Auth with a custom HS256 signer
            # (its JWKS endpoint is off): asymmetric tokens get 401, not a retryable 503.
            if self._fetched_at is None:
                log.warning("JWKS at %s answers 404: no asymmetric tokens will be accepted", self.url)
            return {}
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
        for jwk in raw_keys:
            if isinstance(jwk, dict) and (key := key_from_jwk(jwk)) is not None:
                keys[key.kid] = key
        # An empty list is an answer, not a failure: Better Auth serves {"keys": []} once
        # every key is past its expiry + grace period, and those keys must stop working.
        if not keys and raw_keys:
            raise JWKSFetchError("no usable signing keys")
        return keys

    async def prefetch(self) -> None:
        """Warm the cache at start-up; failures are logged, not fatal."""
        with contextlib.suppress(JWKSFetchError):
            await self._start_fetch()
