"""api/jwks.py and api/auth.py without a server: a key's algorithms follow from its type,
never from a token's header; the Authorization header and claims are read strictly.
(The JWKS cache is replaced by a stub listing fixed keys: nothing is fetched.)"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from api.auth import MAX_SUBJECT_LENGTH, MAX_TOKEN_BYTES, TokenVerifier, bearer_token
from api.jwks import JWKSCache, VerificationKey, key_from_jwk
from api.settings import load_settings
from schema.context import Viewer
from schema.errors import Unauthenticated

ISSUER = "https://auth.example"
AUDIENCE = "https://api.example"
SECRET = "s" * 32
RSA_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
P256_KEY = ec.generate_private_key(ec.SECP256R1())
P384_KEY = ec.generate_private_key(ec.SECP384R1())
P521_KEY = ec.generate_private_key(ec.SECP521R1())
K256_KEY = ec.generate_private_key(ec.SECP256K1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()


def public_jwk(private: Any, **members: Any) -> dict[str, Any]:
    if isinstance(private, rsa.RSAPrivateKey):
        jwk = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    elif isinstance(private, ec.EllipticCurvePrivateKey):
        jwk = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    else:
        jwk = OKPAlgorithm.to_jwk(private.public_key(), as_dict=True)
    return {**jwk, **members}


def private_jwk(private: Any, **members: Any) -> dict[str, Any]:
    algorithm = ECAlgorithm if isinstance(private, ec.EllipticCurvePrivateKey) else RSAAlgorithm
    return {**algorithm.to_jwk(private, as_dict=True), **members}


# ----------------------------------------------------------------------- key_from_jwk


@pytest.mark.parametrize(
    ("jwk", "algorithms"),
    [
        (public_jwk(P256_KEY), ("ES256",)),
        (public_jwk(P384_KEY), ("ES384",)),
        (public_jwk(P521_KEY), ("ES512",)),
        (public_jwk(K256_KEY), ("ES256K",)),
        (public_jwk(ED_KEY), ("EdDSA",)),
        (public_jwk(RSA_KEY), RSA_ALGORITHMS),  # no `alg`: any RSA algorithm
        (public_jwk(RSA_KEY, alg="RS256"), ("RS256",)),  # a declared `alg` narrows it
        (public_jwk(RSA_KEY, alg="PS384"), ("PS384",)),
        (public_jwk(P256_KEY, alg="ES256", use="sig"), ("ES256",)),
        (public_jwk(ED_KEY, alg="EdDSA"), ("EdDSA",)),
    ],
)
def test_a_keys_algorithms_follow_from_its_type(jwk: dict[str, Any], algorithms: tuple[str, ...]) -> None:
    key = key_from_jwk(jwk)
    assert key is not None
    assert key.algorithms == algorithms


@pytest.mark.parametrize(
    "jwk",
    [
        {"kty": "oct", "k": base64.urlsafe_b64encode(b"secret").decode()},  # never from a JWKS
        {"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"},
        public_jwk(P256_KEY, use="enc"),
        public_jwk(P256_KEY, alg="ES384"),  # declared alg contradicts the curve
        public_jwk(P256_KEY, alg="HS256"),
        public_jwk(P256_KEY, alg="none"),
        public_jwk(RSA_KEY, alg="HS256"),
        public_jwk(RSA_KEY, alg="RSA-OAEP"),
        public_jwk(RSA_KEY, alg="none"),
        public_jwk(ED_KEY, alg="ES256"),
        {**public_jwk(P256_KEY), "crv": "P-192"},
        {**public_jwk(ED_KEY), "crv": "X25519"},  # a key-agreement curve
        {"kty": "XYZ"},
        {},
        {k: v for k, v in public_jwk(P256_KEY).items() if k != "y"},  # malformed
        {**public_jwk(RSA_KEY), "n": "not base64!"},
    ],
)
def test_keys_we_never_use_are_skipped(jwk: dict[str, Any]) -> None:
    assert key_from_jwk(jwk) is None


@pytest.mark.parametrize("private", [P256_KEY, RSA_KEY])
def test_private_members_are_ignored(private: Any) -> None:
    key = key_from_jwk(private_jwk(private, kid="k1"))
    assert key is not None
    assert not hasattr(key.key, "private_bytes")  # a public key only


@pytest.mark.parametrize(("kid", "expected"), [("k1", "k1"), (None, None), (7, None), (["k1"], None)])
def test_only_a_text_kid_is_kept(kid: object, expected: str | None) -> None:
    jwk = public_jwk(P256_KEY) if kid is None else public_jwk(P256_KEY, kid=kid)
    key = key_from_jwk(jwk)
    assert key is not None and key.kid == expected


# ---------------------------------------------------------------------- bearer_token


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer abc.def.ghi", "abc.def.ghi"),
        ("BEARER   abc.def.ghi  ", "abc.def.ghi"),
        ("  Bearer abc", "abc"),
        ("Bearer " + "a" * MAX_TOKEN_BYTES, "a" * MAX_TOKEN_BYTES),
    ],
)
def test_bearer_tokens_read(header: str, token: str) -> None:
    assert bearer_token(header) == token


@pytest.mark.parametrize(
    ("header", "message", "token_given"),
    [
        (None, "Sign in: send Authorization: Bearer <token>.", False),
        ("", "Sign in: send Authorization: Bearer <token>.", False),
        ("   ", "Sign in: send Authorization: Bearer <token>.", False),
        ("Bearer", "The Authorization header must be 'Bearer <token>'.", True),
        ("Bearer    ", "The Authorization header must be 'Bearer <token>'.", True),
        ("Basic dXNlcjpwYXNz", "The Authorization header must be 'Bearer <token>'.", True),
        ("Token abc", "The Authorization header must be 'Bearer <token>'.", True),
        ("abc.def.ghi", "The Authorization header must be 'Bearer <token>'.", True),
        (
            "Bearer " + "a" * (MAX_TOKEN_BYTES + 1),
            f"The bearer token is longer than {MAX_TOKEN_BYTES} bytes.",
            True,
        ),
    ],
)
def test_bearer_tokens_refused(header: str | None, message: str, token_given: bool) -> None:
    with pytest.raises(Unauthenticated) as refused:
        bearer_token(header)
    assert (refused.value.message, refused.value.token_given) == (message, token_given)


# ------------------------------------------------------------- TokenVerifier, no fetch


class ListedKeys(JWKSCache):
    """A JWKS cache that lists fixed keys and never fetches."""

    def __init__(self, *jwks: dict[str, Any]) -> None:
        keys = [key_from_jwk(jwk) for jwk in jwks]
        self._listed = {key.kid: key for key in keys if key is not None}

    async def get(self, kid: str | None) -> VerificationKey | None:
        return self._listed.get(kid)


def verifier(jwks: JWKSCache | None, secret: str | None = None) -> TokenVerifier:
    env = {"JWT_ISSUER": ISSUER, "JWT_AUDIENCE": AUDIENCE}
    if jwks is not None:
        env["JWT_JWKS_URL"] = f"{ISSUER}/api/auth/jwks"
    if secret is not None:
        env["BETTER_AUTH_SECRET"] = secret
    return TokenVerifier(load_settings(env, dotenv=False), jwks)


def claims(**overrides: Any) -> dict[str, Any]:
    return {"sub": "user-1", "iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 600, **overrides}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def hs256_token(secret: bytes, header: dict[str, Any], payload: dict[str, Any]) -> str:
    """Signed by hand: PyJWT refuses to use a PEM public key as an HMAC secret."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def authenticate(tokens: TokenVerifier, token: str) -> Viewer:
    return asyncio.run(tokens.authenticate(f"Bearer {token}"))


def refusal(tokens: TokenVerifier, token: str) -> str:
    with pytest.raises(Unauthenticated) as refused:
        authenticate(tokens, token)
    assert refused.value.token_given
    return refused.value.message


EC_LISTED = ListedKeys(public_jwk(P256_KEY, kid="ec"), public_jwk(RSA_KEY, kid="rsa", alg="RS256"))
MISMATCH = "The bearer token's algorithm does not match its signing key."


@pytest.mark.parametrize(
    ("key", "kid", "algorithm"),
    [(P256_KEY, "ec", "ES256"), (RSA_KEY, "rsa", "RS256")],
)
def test_a_token_signed_with_a_listed_key_is_accepted(key: Any, kid: str, algorithm: str) -> None:
    token = jwt.encode(claims(email="a@example.com"), key, algorithm=algorithm, headers={"kid": kid})
    assert authenticate(verifier(EC_LISTED), token) == Viewer(id="user-1", email="a@example.com", name=None)


@pytest.mark.parametrize(
    ("key", "kid", "algorithm"),
    [
        (P384_KEY, "ec", "ES384"),  # the header names another curve's algorithm
        (RSA_KEY, "rsa", "PS256"),  # an RSA algorithm, but not the one the key declares
        (RSA_KEY, "rsa", "RS512"),
    ],
)
def test_the_header_cannot_choose_another_algorithm(key: Any, kid: str, algorithm: str) -> None:
    token = jwt.encode(claims(), key, algorithm=algorithm, headers={"kid": kid})
    assert refusal(verifier(EC_LISTED), token) == MISMATCH


@pytest.mark.parametrize("alg", ["none", "None", "ES256K", "EdDSA"])
def test_an_unsigned_or_foreign_algorithm_is_refused(alg: str) -> None:
    header = b64(json.dumps({"alg": alg, "typ": "JWT", "kid": "ec"}).encode())
    token = f"{header}.{b64(json.dumps(claims()).encode())}."
    assert refusal(verifier(EC_LISTED), token) == MISMATCH


@pytest.mark.parametrize("kid", ["ec", "rsa"])
def test_a_public_key_used_as_an_hmac_secret_is_refused(kid: str) -> None:
    """The classic key confusion: HS256 with the listed public key's PEM as the secret."""
    private = P256_KEY if kid == "ec" else RSA_KEY
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    token = hs256_token(pem, {"alg": "HS256", "typ": "JWT", "kid": kid}, claims())
    assert refusal(verifier(EC_LISTED), token) == "HS256 tokens are not accepted by this deployment."
    # With a shared secret configured, the PEM is still not that secret.
    assert refusal(verifier(EC_LISTED, SECRET), token) == "The bearer token's signature is invalid."


def test_a_key_embedded_in_the_header_is_never_used() -> None:
    attacker = ec.generate_private_key(ec.SECP256R1())
    headers = {"kid": "ec", "jwk": public_jwk(attacker), "jku": "https://evil.example/jwks"}
    token = jwt.encode(claims(), attacker, algorithm="ES256", headers=headers)
    assert refusal(verifier(EC_LISTED), token) == "The bearer token's signature is invalid."


def test_an_unlisted_kid_is_refused() -> None:
    token = jwt.encode(claims(), P256_KEY, algorithm="ES256", headers={"kid": "unknown"})
    assert refusal(verifier(EC_LISTED), token) == (
        "The bearer token was signed by a key the auth server does not list."
    )


@pytest.mark.parametrize("kid", [7, None, ["ec"], {"kid": "ec"}])
def test_a_kid_that_is_not_text_is_refused(kid: object) -> None:
    # Built by hand: PyJWT will not encode such a header. (PyJWT 2.15 already refuses
    # it in get_unverified_header, before auth.py's own "malformed" check.)
    token = jwt.encode(claims(), P256_KEY, algorithm="ES256", headers={"kid": "ec"})
    _, payload, signature = token.split(".")
    header = b64(json.dumps({"alg": "ES256", "typ": "JWT", "kid": kid}).encode())
    assert refusal(verifier(EC_LISTED), f"{header}.{payload}.{signature}") in (
        "The bearer token is not a well-formed JWT.",
        "The bearer token's key id is malformed.",
    )


def test_without_a_jwks_only_hs256_is_accepted() -> None:
    token = jwt.encode(claims(), P256_KEY, algorithm="ES256", headers={"kid": "ec"})
    assert (
        refusal(verifier(None, SECRET), token)
        == "Only HS256 tokens signed with the shared secret are accepted."
    )
    good = jwt.encode(claims(), SECRET, algorithm="HS256")
    assert authenticate(verifier(None, SECRET), good).id == "user-1"


@pytest.mark.parametrize(
    ("make_payload", "message"),
    [
        (lambda: claims(exp="9999999999"), "The bearer token's 'exp' claim must be a number."),
        (lambda: claims(nbf=True), "The bearer token's 'nbf' claim must be a number."),
        (lambda: {k: v for k, v in claims().items() if k != "sub"}, "The bearer token has no 'sub' claim."),
        (lambda: {k: v for k, v in claims().items() if k != "exp"}, "The bearer token has no 'exp' claim."),
        (lambda: claims(exp=int(time.time()) - 3600), "The bearer token has expired."),
        (lambda: claims(sub="  "), "The bearer token's 'sub' claim must be a non-empty string."),
        (lambda: claims(sub=42), "The bearer token's 'sub' claim must be a non-empty string."),
        (
            lambda: claims(sub="user\n1"),
            f"The bearer token's 'sub' claim must be at most {MAX_SUBJECT_LENGTH} printable characters.",
        ),
        (
            lambda: claims(sub="u" * (MAX_SUBJECT_LENGTH + 1)),
            f"The bearer token's 'sub' claim must be at most {MAX_SUBJECT_LENGTH} printable characters.",
        ),
        (lambda: claims(iss="https://other.example"), "The bearer token was issued by someone else."),
        (lambda: claims(aud="https://other.example"), "The bearer token is meant for another audience."),
    ],
)
def test_claims_refused(make_payload: Callable[[], dict[str, Any]], message: str) -> None:
    # Built when the test runs: a token made at import time could expire before a slow run gets here.
    token = jwt.encode(make_payload(), P256_KEY, algorithm="ES256", headers={"kid": "ec"})
    assert refusal(verifier(EC_LISTED), token) == message


@pytest.mark.parametrize(
    ("extra", "email", "name"),
    [
        ({"email": "a@example.com", "name": "Ada"}, "a@example.com", "Ada"),
        ({"email": "", "name": None}, None, None),
        ({"email": 42, "name": ["Ada"]}, None, None),  # informational only: dropped, not refused
        ({"email": "a\x00b", "name": "n" * 321}, None, None),
    ],
)
def test_profile_claims_are_kept_only_when_storable(
    extra: dict[str, Any], email: str | None, name: str | None
) -> None:
    token = jwt.encode(claims(**extra), P256_KEY, algorithm="ES256", headers={"kid": "ec"})
    assert authenticate(verifier(EC_LISTED), token) == Viewer(id="user-1", email=email, name=name)
