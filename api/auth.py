"""Who is calling: bearer JWTs from Better Auth, verified by JWKS or a shared HS256 secret.

The algorithm is chosen by the key (a JWKS key's type, or HS256 for the shared
secret), never by the token's `alg` alone. Nothing in a token's header is ever
fetched (`jku`, `x5u`, embedded `jwk` are ignored).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import jwt

from api.jwks import JWKSCache, VerificationKey
from api.settings import Settings
from schema.context import Viewer
from schema.errors import Unauthenticated

MAX_TOKEN_BYTES = 8192
MAX_SUBJECT_LENGTH = 255
MAX_CLAIM_LENGTH = 320
VERIFIED_CACHE_SIZE = 10_000


def invalid(message: str) -> Unauthenticated:
    return Unauthenticated(message, token_given=True)


@dataclass(frozen=True, slots=True)
class _Verified:
    viewer: Viewer
    expires_at: float  # exp + leeway
    key: VerificationKey | None  # the JWKS key it was verified with; None for HS256


class TokenVerifier:
    def __init__(self, settings: Settings, jwks: JWKSCache | None) -> None:
        secret = settings.better_auth_secret
        self._secret = secret.encode() if secret else None
        self._jwks = jwks
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._hs_requires_iss = settings.jwt_issuer_explicit
        self._hs_requires_aud = settings.jwt_audience_explicit
        self._leeway = settings.jwt_leeway_seconds
        # Signature checks are the largest per-request cost: remember tokens already
        # verified, keyed by the whole token string, until they expire.
        self._verified: OrderedDict[str, _Verified] = OrderedDict()

    async def authenticate(self, authorization: str | None) -> Viewer:
        token = bearer_token(authorization)
        now = time.time()
        hit = self._verified.get(token)
        if hit is not None:
            if (
                hit.expires_at > now
                and (hit.key is None or await self._key_still_listed(hit.key))
                # the await may have waited on a JWKS refetch: judge expiry after it, as _verify does
                and (hit.key is None or hit.expires_at > time.time())
            ):
                if token in self._verified:  # a concurrent request may have dropped it meanwhile
                    self._verified.move_to_end(token)
                return hit.viewer
            # pop: a concurrent request with the same token may have dropped it during the await
            self._verified.pop(token, None)
        verified = await self._verify(token, now)
        self._verified[token] = verified
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return verified.viewer

    def expires_at(self, authorization: str | None) -> float | None:
        """When a token that authenticate() has just accepted stops being accepted (its
        `exp` plus the leeway, a time.time() value), without verifying it again: live
        streams end then. Only for tokens authenticate() accepted; None otherwise."""
        try:
            token = bearer_token(authorization)
        except Unauthenticated:
            return None
        hit = self._verified.get(token)
        if hit is not None:
            return hit.expires_at
        try:  # pushed out of the cache meanwhile: it was verified, its claims can be read
            claims = jwt.decode(token, options={"verify_signature": False})
            return _expiry(claims, self._leeway)
        except (jwt.PyJWTError, KeyError, TypeError, ValueError):
            return None

    async def _key_still_listed(self, key: VerificationKey) -> bool:
        # The same key object, not merely the same kid: a key without a kid, or a kid reused
        # for a new key, must not keep vouching for tokens of a withdrawn key. (Each refetch
        # builds new key objects, so cached tokens are re-verified once per refetch.)
        return self._jwks is not None and await self._jwks.get(key.kid) is key

    async def _verify(self, token: str, now: float) -> _Verified:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise invalid("The bearer token is not a well-formed JWT.") from None
        if not isinstance(header, dict):
            raise invalid("The bearer token is not a well-formed JWT.")
        if "crit" in header:
            raise invalid("The bearer token uses critical header extensions this API does not support.")
        alg = header.get("alg")
        if alg == "HS256":
            if self._secret is None:
                raise invalid("HS256 tokens are not accepted by this deployment.")
            claims = self._decode(token, self._secret, ("HS256",))
            self._check_iss_aud(claims, self._hs_requires_iss, self._hs_requires_aud)
            return _Verified(_viewer(claims), _expiry(claims, self._leeway), None)
        if self._jwks is None:
            raise invalid("Only HS256 tokens signed with the shared secret are accepted.")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise invalid("The bearer token's key id is malformed.")
        key = await self._jwks.get(kid)
        if key is None:
            raise invalid("The bearer token was signed by a key the auth server does not list.")
        if alg not in key.algorithms:
            raise invalid("The bearer token's algorithm does not match its signing key.")
        claims = self._decode(token, key.key, key.algorithms)
        self._check_iss_aud(claims, True, True)
        return _Verified(_viewer(claims), _expiry(claims, self._leeway), key)

    def _decode(self, token: str, key: Any, algorithms: tuple[str, ...]) -> dict[str, Any]:
        _check_claim_types(token)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=list(algorithms),
                leeway=self._leeway,
                options={
                    "require": ["exp", "sub"],
                    "verify_aud": False,  # checked below, with the HS256 exception
                    "verify_iss": False,
                    "verify_sub": False,  # checked in _viewer
                    "verify_jti": False,
                },
            )
        except jwt.ExpiredSignatureError:
            raise invalid("The bearer token has expired.") from None
        except jwt.ImmatureSignatureError:
            raise invalid("The bearer token is not valid yet.") from None
        except jwt.MissingRequiredClaimError as error:
            raise invalid(f"The bearer token has no {error.claim!r} claim.") from None
        except jwt.InvalidSignatureError:
            raise invalid("The bearer token's signature is invalid.") from None
        except (jwt.PyJWTError, ValueError, TypeError):
            raise invalid("The bearer token could not be verified.") from None
        return claims

    def _check_iss_aud(self, claims: dict[str, Any], require_iss: bool, require_aud: bool) -> None:
        checks_iss = self._issuer is not None and ("iss" in claims or require_iss)
        if checks_iss and claims.get("iss") != self._issuer:
            raise invalid("The bearer token was issued by someone else.")
        if self._audience is not None and ("aud" in claims or require_aud):
            aud = claims.get("aud")
            audiences = aud if isinstance(aud, list) else [aud]
            if self._audience not in audiences:
                raise invalid("The bearer token is meant for another audience.")


def bearer_token(authorization: str | None) -> str:
    if authorization is None or not authorization.strip():
        raise Unauthenticated("Sign in: send Authorization: Bearer <token>.", token_given=False)
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise invalid("The Authorization header must be 'Bearer <token>'.")
    if len(token) > MAX_TOKEN_BYTES:
        raise invalid(f"The bearer token is longer than {MAX_TOKEN_BYTES} bytes.")
    return token


def _check_claim_types(token: str) -> None:
    """PyJWT accepts numeric strings for exp/nbf/iat; a token that does is not ours."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise invalid("The bearer token's payload is not a JSON object.") from None
    for name in ("exp", "nbf", "iat"):
        if name in claims and not _is_number(claims[name]):
            raise invalid(f"The bearer token's {name!r} claim must be a number.")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _expiry(claims: dict[str, Any], leeway: int) -> float:
    return float(claims["exp"]) + leeway


def _viewer(claims: dict[str, Any]) -> Viewer:
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.strip():
        raise invalid("The bearer token's 'sub' claim must be a non-empty string.")
    if len(sub) > MAX_SUBJECT_LENGTH or not sub.isprintable():
        raise invalid(
            f"The bearer token's 'sub' claim must be at most {MAX_SUBJECT_LENGTH} printable characters."
        )
    return Viewer(id=sub, email=_optional_text(claims.get("email")), name=_optional_text(claims.get("name")))


def _optional_text(value: object) -> str | None:
    """A profile claim we can store, or None: these are informational only."""
    if not isinstance(value, str) or not value or len(value) > MAX_CLAIM_LENGTH or "\x00" in value:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return value
