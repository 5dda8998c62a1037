"""Bearer tokens: which ones open the API and which are refused, over REST and GraphQL.

Every refused write is also checked in the database: no task and no user row for the
token's subject (nor any task with the request's unique title).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import math
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm, get_default_algorithms

from db.url import DatabaseURL
from tests.support import (
    HS_SECRET,
    JWKSServer,
    LiveServer,
    auth,
    db_fetch,
    hs_token,
    json_of,
    live_server,
    settings_for,
    snapshot,
    unique_user,
)

ISSUER = "http://auth.test"  # BETTER_AUTH_URL, hence the default issuer and audience
LEEWAY = 30
MAX_TOKEN = 8192
OCT_SECRET = b"a-symmetric-key-published-in-the-jwks-0123456789"
CREATE_TASK = "mutation($title: String!) { createTask(input: {title: $title}) { id title } }"
DROP = object()  # a claim to leave out


# --- keys and tokens -------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    alg: str
    kid: str
    private: Any
    jwk: dict[str, Any]  # the public JWK as published

    def sign(self, claims: dict[str, Any], **headers: Any) -> str:
        return jwt.encode(claims, self.private, algorithm=self.alg, headers={"kid": self.kid, **headers})

    def sign_raw(self, signing_input: bytes) -> bytes:
        return get_default_algorithms()[self.alg].sign(signing_input, self.private)


def make_key(alg: str, *, declare_alg: bool = True) -> SigningKey:
    private: Any
    if alg == "EdDSA":
        private = ed25519.Ed25519PrivateKey.generate()
        jwk = OKPAlgorithm.to_jwk(private.public_key(), as_dict=True)
    elif alg in ("ES256", "ES512"):
        private = ec.generate_private_key(ec.SECP256R1() if alg == "ES256" else ec.SECP521R1())
        jwk = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    else:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    kid = f"{alg.lower()}-{uuid.uuid4().hex[:8]}"
    jwk = {**jwk, "kid": kid, "use": "sig", **({"alg": alg} if declare_alg else {})}
    return SigningKey(alg, kid, private, jwk)


def claims_for(sub: Any, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub, "iss": ISSUER, "aud": ISSUER, "iat": now, "exp": now + 600}
    for name, value in overrides.items():
        if value is DROP:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def segment(value: Any) -> str:
    return b64url(value if isinstance(value, bytes) else json.dumps(value).encode())


def raw_token(header: Any, payload: Any, sign: Callable[[bytes], bytes] | None) -> str:
    """A compact JWS built by hand, for headers and payloads PyJWT will not produce."""
    signing_input = f"{segment(header)}.{segment(payload)}"
    signature = b"" if sign is None else sign(signing_input.encode())
    return f"{signing_input}.{b64url(signature)}"


def padded_token(
    key: SigningKey, sub: str, *, longest_within: int | None = None, over: int | None = None
) -> str:
    """A correctly signed token: the longest of at most `longest_within` characters, or the
    shortest of more than `over` characters."""
    limit = longest_within if longest_within is not None else over
    assert limit is not None
    base = len(key.sign(claims_for(sub, pad="")))
    pad = max(0, (limit - base) * 3 // 4 - 8)
    previous = key.sign(claims_for(sub, pad="x" * pad))
    assert len(previous) <= limit
    while True:
        pad += 1
        token = key.sign(claims_for(sub, pad="x" * pad))
        if len(token) > limit:
            return previous if longest_within is not None else token
        previous = token


# --- fixtures --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Keys:
    by_alg: dict[str, SigningKey]
    attacker: SigningKey  # the right type (Ed25519), never published by the auth server
    attacker_jwks: JWKSServer

    @property
    def ed(self) -> SigningKey:
        return self.by_alg["EdDSA"]

    @property
    def rsa(self) -> SigningKey:
        return self.by_alg["RS256"]


@pytest.fixture(scope="module")
def keys() -> Iterator[Keys]:
    by_alg = {alg: make_key(alg) for alg in ("EdDSA", "ES256", "ES512", "PS256")}
    by_alg["RS256"] = make_key("RS256", declare_alg=False)  # RSA JWK without "alg"
    attacker = make_key("EdDSA")
    attacker_jwks = JWKSServer(keys=[attacker.jwk]).start()
    try:
        yield Keys(by_alg, attacker, attacker_jwks)
    finally:
        attacker_jwks.stop()


@pytest.fixture(scope="module")
def jwks(keys: Keys) -> Iterator[JWKSServer]:
    oct_key = {"kty": "oct", "kid": "oct-key", "k": b64url(OCT_SECRET), "alg": "HS256"}
    server = JWKSServer(keys=[k.jwk for k in keys.by_alg.values()] + [oct_key]).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def srv(database: DatabaseURL, jwks: JWKSServer) -> Iterator[LiveServer]:
    """JWKS and the HS256 secret both configured; issuer/audience defaulted from BETTER_AUTH_URL."""
    settings = settings_for(
        database,
        BETTER_AUTH_URL=ISSUER,
        BETTER_AUTH_SECRET=HS_SECRET,
        JWT_JWKS_URL=jwks.url,
        JWKS_MIN_REFRESH_SECONDS="0.2",
        JWKS_CACHE_SECONDS="300",
    )
    with live_server(settings) as server:
        yield server


@pytest.fixture(scope="module")
def explicit_srv(database: DatabaseURL) -> Iterator[LiveServer]:
    """HS256 only, with JWT_ISSUER and JWT_AUDIENCE set explicitly."""
    settings = settings_for(
        database,
        BETTER_AUTH_SECRET=HS_SECRET,
        JWT_ISSUER="http://issuer.test",
        JWT_AUDIENCE="tasks-api",
    )
    with live_server(settings) as server:
        yield server


# --- assertions ------------------------------------------------------------------------------


def create_task(server: LiveServer, token: str | None, title: str = "t") -> httpx.Response:
    headers = auth(token) if token is not None else {}
    with httpx.Client(base_url=server.url, timeout=30) as c:
        return c.post("/api/tasks", json={"title": title}, headers=headers)


def graphql(server: LiveServer, query: str, token: str | None = None, **variables: Any) -> httpx.Response:
    headers = auth(token) if token is not None else {}
    with httpx.Client(base_url=server.url, timeout=30) as c:
        return c.post("/graphql", json={"query": query, "variables": variables}, headers=headers)


def assert_unauthenticated(r: httpx.Response, *, token_given: bool = True) -> None:
    assert r.status_code == 401, r.text
    body = json_of(r)
    assert set(body) == {"detail", "code"}, body
    assert body["code"] == "unauthenticated"
    assert isinstance(body["detail"], str) and body["detail"]
    expected = 'Bearer error="invalid_token"' if token_given else "Bearer"
    assert r.headers.get("www-authenticate") == expected


def assert_graphql_unauthenticated(r: httpx.Response) -> None:
    assert r.status_code == 200, r.text
    body = json_of(r)
    assert body.get("errors"), body
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", body
    assert not (body.get("data") or {}).get("createTask"), body


def assert_nothing_written(database: DatabaseURL, sub: str, title: str) -> None:
    """No user row and no task for `sub`, and no task with the request's title (whoever's)."""
    rows = db_fetch(
        database,
        "SELECT 'task' AS kind, user_id AS id FROM tasks WHERE user_id = $1 OR title = $2"
        " UNION ALL SELECT 'user', id FROM users WHERE id = $1",
        sub,
        title,
    )
    assert rows == []


def database_state(database: DatabaseURL) -> dict[str, Any]:
    """Row counts, latest changes and the task id sequence: any write, even one rolled back
    after taking an id, or one for a subject other than the token's, changes this."""
    (row,) = db_fetch(
        database,
        """
        SELECT (SELECT count(*) FROM users) AS users,
               (SELECT max(updated_at) FROM users) AS users_updated,
               (SELECT count(*) FROM tasks) AS tasks,
               (SELECT max(updated_at) FROM tasks) AS tasks_updated,
               pg_sequence_last_value(pg_get_serial_sequence('tasks', 'id')) AS task_ids
        """,
    )
    return row


def assert_created(database: DatabaseURL, r: httpx.Response, sub: str) -> None:
    assert r.status_code == 201, r.text
    assert r.json()["user_id"] == sub
    assert db_fetch(database, "SELECT id FROM users WHERE id = $1", sub) == [{"id": sub}]


# --- what is accepted ------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "ES512", "RS256", "PS256"])
def test_jwks_token_of_each_key_type_is_accepted(
    srv: LiveServer, database: DatabaseURL, keys: Keys, alg: str
) -> None:
    key = keys.by_alg[alg]
    sub = unique_user(alg.lower())
    token = key.sign(claims_for(sub, email=f"{sub}@example.com", name="Kim"))
    assert jwt.get_unverified_header(token)["alg"] == alg
    assert_created(database, create_task(srv, token), sub)
    with srv.client(token) as c:
        listed = c.get("/api/tasks")
        assert listed.status_code == 200 and [t["user_id"] for t in listed.json()] == [sub]
    me = graphql(srv, "{ me { id email } }", token).json()
    assert me == {"data": {"me": {"id": sub, "email": f"{sub}@example.com"}}}
    created = graphql(srv, CREATE_TASK, token, title="via graphql").json()
    assert created["data"]["createTask"]["title"] == "via graphql", created


def test_audience_list_containing_ours_is_accepted(
    srv: LiveServer, database: DatabaseURL, keys: Keys
) -> None:
    sub = unique_user()
    token = keys.ed.sign(claims_for(sub, aud=["another-api", ISSUER]))
    assert_created(database, create_task(srv, token), sub)


def test_expiry_within_the_leeway_is_accepted(srv: LiveServer, database: DatabaseURL, keys: Keys) -> None:
    sub = unique_user()
    token = keys.ed.sign(claims_for(sub, exp=int(time.time()) - LEEWAY // 3))
    assert_created(database, create_task(srv, token), sub)


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_nbf_and_iat_within_the_leeway_are_accepted(
    srv: LiveServer, database: DatabaseURL, keys: Keys, claim: str
) -> None:
    sub = unique_user()
    token = keys.ed.sign(claims_for(sub, **{claim: int(time.time()) + LEEWAY // 3}))
    assert_created(database, create_task(srv, token), sub)


def test_token_just_under_the_size_limit_is_accepted(
    srv: LiveServer, database: DatabaseURL, keys: Keys
) -> None:
    sub = unique_user()
    token = padded_token(keys.ed, sub, longest_within=MAX_TOKEN)
    assert MAX_TOKEN - 4 <= len(token) <= MAX_TOKEN
    assert_created(database, create_task(srv, token), sub)


def test_subject_of_255_characters_is_accepted(srv: LiveServer, database: DatabaseURL, keys: Keys) -> None:
    sub = unique_user().ljust(255, "s")
    assert_created(database, create_task(srv, keys.ed.sign(claims_for(sub))), sub)


def test_hs256_without_iss_and_aud_is_accepted_when_they_are_only_defaulted(
    srv: LiveServer, database: DatabaseURL
) -> None:
    sub = unique_user()
    token = hs_token(sub)
    assert "iss" not in jwt.decode(token, options={"verify_signature": False})
    assert_created(database, create_task(srv, token), sub)


def test_hs256_with_the_right_iss_and_aud_is_accepted(srv: LiveServer, database: DatabaseURL) -> None:
    sub = unique_user()
    assert_created(database, create_task(srv, hs_token(sub, iss=ISSUER, aud=ISSUER)), sub)


def test_hs256_ignores_a_kid_header(srv: LiveServer, database: DatabaseURL, keys: Keys) -> None:
    # HS256 is always checked with the shared secret, whatever key id the header names.
    sub = unique_user()
    token = hs_token(sub, headers={"kid": keys.rsa.kid})
    assert_created(database, create_task(srv, token), sub)


# --- no token / not a bearer token -----------------------------------------------------------


def test_no_token_is_401_with_a_plain_bearer_challenge(srv: LiveServer) -> None:
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        for r in (c.get("/api/tasks"), c.post("/api/tasks", json={"title": "t"}), c.get("/api/tasks/1")):
            assert_unauthenticated(r, token_given=False)


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer not-a-jwt", "Bearer a.b.c", "Token abc"])
def test_malformed_authorization_is_401_invalid_token(srv: LiveServer, header: str) -> None:
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        assert_unauthenticated(c.get("/api/tasks", headers={"Authorization": header}))


def test_graphql_typename_needs_no_token(srv: LiveServer) -> None:
    r = graphql(srv, "{ __typename }")
    assert r.status_code == 200
    assert r.json() == {"data": {"__typename": "Query"}}


def test_graphql_without_token_is_unauthenticated(srv: LiveServer, database: DatabaseURL) -> None:
    title = f"no-token-{uuid.uuid4().hex}"
    r = graphql(srv, CREATE_TASK, title=title)
    assert_graphql_unauthenticated(r)
    assert db_fetch(database, "SELECT id FROM tasks WHERE title = $1", title) == []
    me = graphql(srv, "{ me { id } }")
    assert me.status_code == 200
    assert me.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


# --- refused tokens --------------------------------------------------------------------------
# Each case returns (token, subject the token claims, as stored if it were accepted).

Case = Callable[[Keys, str], tuple[str, str]]


def _expired(k: Keys, sub: str) -> tuple[str, str]:
    return k.ed.sign(claims_for(sub, exp=int(time.time()) - LEEWAY - 60)), sub


def _not_yet_valid(k: Keys, sub: str) -> tuple[str, str]:
    return k.ed.sign(claims_for(sub, nbf=int(time.time()) + LEEWAY + 300)), sub


def _issued_in_the_future(k: Keys, sub: str) -> tuple[str, str]:
    return k.ed.sign(claims_for(sub, iat=int(time.time()) + LEEWAY + 300)), sub


def _hs256_not_yet_valid(k: Keys, sub: str) -> tuple[str, str]:
    return hs_token(sub, nbf=int(time.time()) + LEEWAY + 300), sub


def _tampered(k: Keys, sub: str) -> tuple[str, str]:
    header, _, signature = k.ed.sign(claims_for(unique_user("signed-for"))).split(".")
    return f"{header}.{segment(claims_for(sub))}.{signature}", sub


def _alg_none(k: Keys, sub: str) -> tuple[str, str]:
    return raw_token({"alg": "none", "typ": "JWT", "kid": k.ed.kid}, claims_for(sub), None), sub


def _alg_none_without_kid(k: Keys, sub: str) -> tuple[str, str]:
    return raw_token({"alg": "none", "typ": "JWT"}, claims_for(sub), None), sub


def _hmac_with(secret: bytes, digest: Any) -> Callable[[bytes], bytes]:
    return lambda data: hmac.new(secret, data, digest).digest()


def _rsa_public_pem(k: Keys) -> bytes:
    pem: bytes = k.rsa.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem


def _alg_confusion_hs256(k: Keys, sub: str) -> tuple[str, str]:
    header = {"alg": "HS256", "typ": "JWT", "kid": k.rsa.kid}
    return raw_token(header, claims_for(sub), _hmac_with(_rsa_public_pem(k), hashlib.sha256)), sub


def _alg_confusion_hs512(k: Keys, sub: str) -> tuple[str, str]:
    header = {"alg": "HS512", "typ": "JWT", "kid": k.rsa.kid}
    return raw_token(header, claims_for(sub), _hmac_with(_rsa_public_pem(k), hashlib.sha512)), sub


def _hs256_with_published_oct_key(k: Keys, sub: str) -> tuple[str, str]:
    header = {"alg": "HS256", "typ": "JWT", "kid": "oct-key"}
    return raw_token(header, claims_for(sub), _hmac_with(OCT_SECRET, hashlib.sha256)), sub


def _hs512_with_published_oct_key(k: Keys, sub: str) -> tuple[str, str]:
    header = {"alg": "HS512", "typ": "JWT", "kid": "oct-key"}
    return raw_token(header, claims_for(sub), _hmac_with(OCT_SECRET, hashlib.sha512)), sub


def _hs256_wrong_secret(k: Keys, sub: str) -> tuple[str, str]:
    return hs_token(sub, secret="another-secret-that-is-also-long-enough-0123456789"), sub


def _wrong_alg_for_key(k: Keys, sub: str) -> tuple[str, str]:
    # An ES256 signature presented under the Ed25519 key's kid.
    forged = make_key("ES256")
    return jwt.encode(claims_for(sub), forged.private, "ES256", headers={"kid": k.ed.kid}), sub


def _rs256_under_a_ps256_only_key(k: Keys, sub: str) -> tuple[str, str]:
    ps = k.by_alg["PS256"]  # its JWK declares "alg": "PS256"
    return jwt.encode(claims_for(sub), ps.private, "RS256", headers={"kid": ps.kid}), sub


def _unknown_kid(k: Keys, sub: str) -> tuple[str, str]:
    return k.ed.sign(claims_for(sub), kid=f"unknown-{uuid.uuid4().hex}"), sub


def _kid_path(k: Keys, sub: str) -> tuple[str, str]:
    return k.ed.sign(claims_for(sub), kid="../../etc/passwd"), sub


def _kid_sql(k: Keys, sub: str) -> tuple[str, str]:
    return k.ed.sign(claims_for(sub), kid="' OR 1=1 --"), sub


def _kid_not_a_string(k: Keys, sub: str) -> tuple[str, str]:
    header = {"alg": "EdDSA", "typ": "JWT", "kid": 1}
    return raw_token(header, claims_for(sub), k.ed.sign_raw), sub


def _unlisted_key_own_kid(k: Keys, sub: str) -> tuple[str, str]:
    return k.attacker.sign(claims_for(sub)), sub


def _unlisted_key_listed_kid(k: Keys, sub: str) -> tuple[str, str]:
    return k.attacker.sign(claims_for(sub), kid=k.ed.kid), sub


def _jku(k: Keys, sub: str) -> tuple[str, str]:
    return k.attacker.sign(claims_for(sub), jku=k.attacker_jwks.url), sub


def _jku_with_listed_kid(k: Keys, sub: str) -> tuple[str, str]:
    return k.attacker.sign(claims_for(sub), kid=k.ed.kid, jku=k.attacker_jwks.url), sub


def _x5u(k: Keys, sub: str) -> tuple[str, str]:
    return k.attacker.sign(claims_for(sub), x5u=k.attacker_jwks.url), sub


def _x5c(k: Keys, sub: str) -> tuple[str, str]:
    return k.attacker.sign(claims_for(sub), x5c=[self_signed_cert(k.attacker.private)]), sub


def _embedded_jwk(k: Keys, sub: str) -> tuple[str, str]:
    return k.attacker.sign(claims_for(sub), jwk=k.attacker.jwk), sub


def _embedded_jwk_with_listed_kid(k: Keys, sub: str) -> tuple[str, str]:
    return k.attacker.sign(claims_for(sub), kid=k.ed.kid, jwk=k.attacker.jwk), sub


def _crit(k: Keys, sub: str) -> tuple[str, str]:
    header = {"alg": "EdDSA", "typ": "JWT", "kid": k.ed.kid, "crit": ["urn:x:policy"], "urn:x:policy": 1}
    return raw_token(header, claims_for(sub), k.ed.sign_raw), sub


def _crit_b64_false(k: Keys, sub: str) -> tuple[str, str]:
    # RFC 7797 unencoded payload: the payload segment would be ignored by a b64-aware verifier.
    header = {"alg": "EdDSA", "kid": k.ed.kid, "b64": False, "crit": ["b64"]}
    return raw_token(header, claims_for(sub), k.ed.sign_raw), sub


def _header_not_json(k: Keys, sub: str) -> tuple[str, str]:
    return raw_token(b"{not json", claims_for(sub), k.ed.sign_raw), sub


def _header_not_object(k: Keys, sub: str) -> tuple[str, str]:
    return raw_token(["EdDSA", k.ed.kid], claims_for(sub), k.ed.sign_raw), sub


def _payload_not_json(k: Keys, sub: str) -> tuple[str, str]:
    header = {"alg": "EdDSA", "typ": "JWT", "kid": k.ed.kid}
    return raw_token(header, f'{{"sub": "{sub}", '.encode(), k.ed.sign_raw), sub


def _payload_not_object(k: Keys, sub: str) -> tuple[str, str]:
    header = {"alg": "EdDSA", "typ": "JWT", "kid": k.ed.kid}
    return raw_token(header, [claims_for(sub)], k.ed.sign_raw), sub


def _wrong_issuer(k: Keys, sub: str) -> tuple[str, str]:
    return k.ed.sign(claims_for(sub, iss="http://evil.test")), sub


def _wrong_audience(k: Keys, sub: str) -> tuple[str, str]:
    return k.ed.sign(claims_for(sub, aud="another-api")), sub


def _missing_issuer(k: Keys, sub: str) -> tuple[str, str]:
    return k.ed.sign(claims_for(sub, iss=DROP)), sub


def _missing_audience(k: Keys, sub: str) -> tuple[str, str]:
    return k.ed.sign(claims_for(sub, aud=DROP)), sub


def _hs256_wrong_issuer(k: Keys, sub: str) -> tuple[str, str]:
    return hs_token(sub, iss="http://evil.test"), sub


def _hs256_wrong_audience(k: Keys, sub: str) -> tuple[str, str]:
    return hs_token(sub, aud="another-api"), sub


def _hs256_expired(k: Keys, sub: str) -> tuple[str, str]:
    return hs_token(sub, ttl=-(LEEWAY + 60)), sub


def _missing_sub(k: Keys, sub: str) -> tuple[str, str]:
    claims = {**claims_for(sub), "user_id": sub, "id": sub}
    del claims["sub"]
    return k.ed.sign(claims), sub


def _null_sub(k: Keys, sub: str) -> tuple[str, str]:
    return k.ed.sign(claims_for(None)), sub


def _empty_sub(k: Keys, sub: str) -> tuple[str, str]:
    return k.ed.sign(claims_for("")), ""


def _blank_sub(k: Keys, sub: str) -> tuple[str, str]:
    return k.ed.sign(claims_for("   ")), "   "


def _numeric_sub(k: Keys, sub: str) -> tuple[str, str]:
    number = int(uuid.uuid4().int % 10**15)
    return k.ed.sign(claims_for(number)), str(number)


def _list_sub(k: Keys, sub: str) -> tuple[str, str]:
    return k.ed.sign(claims_for([sub])), sub


def _long_sub(k: Keys, sub: str) -> tuple[str, str]:
    long_sub = sub.ljust(256, "s")
    return k.ed.sign(claims_for(long_sub)), long_sub


def _missing_exp(k: Keys, sub: str) -> tuple[str, str]:
    return k.ed.sign(claims_for(sub, exp=DROP)), sub


def _string_exp(k: Keys, sub: str) -> tuple[str, str]:
    return k.ed.sign(claims_for(sub, exp=str(int(time.time()) + 600))), sub


def _boolean_exp(k: Keys, sub: str) -> tuple[str, str]:
    return k.ed.sign(claims_for(sub, exp=True)), sub


def _string_nbf(k: Keys, sub: str) -> tuple[str, str]:
    return k.ed.sign(claims_for(sub, nbf=str(int(time.time()) - 60))), sub


def _oversized(k: Keys, sub: str) -> tuple[str, str]:
    return padded_token(k.ed, sub, over=MAX_TOKEN), sub


def _much_oversized(k: Keys, sub: str) -> tuple[str, str]:
    return padded_token(k.ed, sub, over=12_000), sub


REFUSED: dict[str, Case] = {
    "expired": _expired,
    "not_yet_valid": _not_yet_valid,
    "issued_in_the_future": _issued_in_the_future,
    "hs256_not_yet_valid": _hs256_not_yet_valid,
    "wrong_issuer": _wrong_issuer,
    "wrong_audience": _wrong_audience,
    "missing_issuer": _missing_issuer,
    "missing_audience": _missing_audience,
    "tampered_payload": _tampered,
    "alg_none": _alg_none,
    "alg_none_without_kid": _alg_none_without_kid,
    "alg_confusion_hs256_rsa_pem": _alg_confusion_hs256,
    "alg_confusion_hs512_rsa_pem": _alg_confusion_hs512,
    "hs256_with_published_oct_key": _hs256_with_published_oct_key,
    "hs512_with_published_oct_key": _hs512_with_published_oct_key,
    "hs256_wrong_secret": _hs256_wrong_secret,
    "hs256_wrong_issuer": _hs256_wrong_issuer,
    "hs256_wrong_audience": _hs256_wrong_audience,
    "hs256_expired": _hs256_expired,
    "wrong_alg_for_key": _wrong_alg_for_key,
    "rs256_under_ps256_key": _rs256_under_a_ps256_only_key,
    "unknown_kid": _unknown_kid,
    "kid_path": _kid_path,
    "kid_sql": _kid_sql,
    "kid_not_a_string": _kid_not_a_string,
    "unlisted_key_own_kid": _unlisted_key_own_kid,
    "unlisted_key_listed_kid": _unlisted_key_listed_kid,
    "jku": _jku,
    "jku_with_listed_kid": _jku_with_listed_kid,
    "x5u": _x5u,
    "x5c": _x5c,
    "embedded_jwk": _embedded_jwk,
    "embedded_jwk_with_listed_kid": _embedded_jwk_with_listed_kid,
    "crit": _crit,
    "crit_b64_false": _crit_b64_false,
    "header_not_json": _header_not_json,
    "header_not_object": _header_not_object,
    "payload_not_json": _payload_not_json,
    "payload_not_object": _payload_not_object,
    "missing_sub": _missing_sub,
    "null_sub": _null_sub,
    "empty_sub": _empty_sub,
    "blank_sub": _blank_sub,
    "numeric_sub": _numeric_sub,
    "list_sub": _list_sub,
    "sub_256_chars": _long_sub,
    "missing_exp": _missing_exp,
    "string_exp": _string_exp,
    "boolean_exp": _boolean_exp,
    "string_nbf": _string_nbf,
    "oversized": _oversized,
    "much_oversized": _much_oversized,
}


@pytest.mark.parametrize("case", REFUSED)
def test_refused_token_on_rest_writes_nothing(
    srv: LiveServer, database: DatabaseURL, keys: Keys, case: str
) -> None:
    token, sub = REFUSED[case](keys, unique_user(case))
    title = f"{case}-{uuid.uuid4().hex}"
    before = database_state(database)
    assert_unauthenticated(create_task(srv, token, title))
    with srv.client(token) as c:
        assert_unauthenticated(c.get("/api/tasks"))
    assert_nothing_written(database, sub, title)
    assert database_state(database) == before
    assert keys.attacker_jwks.hits == 0, "a URL from a token header was fetched"


@pytest.mark.parametrize("case", REFUSED)
def test_refused_token_on_graphql_writes_nothing(
    srv: LiveServer, database: DatabaseURL, keys: Keys, case: str
) -> None:
    token, sub = REFUSED[case](keys, unique_user(case))
    title = f"{case}-{uuid.uuid4().hex}"
    before = database_state(database)
    assert_graphql_unauthenticated(graphql(srv, CREATE_TASK, token, title=title))
    assert_nothing_written(database, sub, title)
    assert database_state(database) == before
    assert keys.attacker_jwks.hits == 0, "a URL from a token header was fetched"


def test_a_refused_token_stays_refused(srv: LiveServer, database: DatabaseURL, keys: Keys) -> None:
    # Repeats must not be served from any cache of earlier results.
    token, sub = _tampered(keys, unique_user())
    for _ in range(3):
        assert_unauthenticated(create_task(srv, token))
    assert snapshot(database, sub) == []


def test_oversized_token_is_refused_before_any_key_lookup(
    srv: LiveServer, jwks: JWKSServer, keys: Keys
) -> None:
    # A kid the service has not seen makes it refetch the JWKS, once it gets that far.
    unlisted_kid = SigningKey("EdDSA", f"unknown-{uuid.uuid4().hex}", keys.ed.private, keys.ed.jwk)
    sub = unique_user()
    time.sleep(0.3)  # past JWKS_MIN_REFRESH_SECONDS
    hits = jwks.hits
    r = create_task(srv, padded_token(unlisted_kid, sub, over=MAX_TOKEN))
    assert_unauthenticated(r)
    assert "longer than 8192" in r.json()["detail"]
    assert jwks.hits == hits
    # The same token within the limit does get as far as the key lookup.
    assert_unauthenticated(create_task(srv, padded_token(unlisted_kid, sub, longest_within=MAX_TOKEN)))
    assert jwks.hits == hits + 1


def test_a_remembered_token_vouches_only_for_itself(
    srv: LiveServer, database: DatabaseURL, keys: Keys
) -> None:
    # Verified tokens are remembered by their whole string: nothing that merely shares
    # its header, payload or a prefix of its signature rides on that.
    sub, other = unique_user(), unique_user("other")
    good = keys.ed.sign(claims_for(sub))
    assert_created(database, create_task(srv, good), sub)
    header, payload, signature = good.split(".")
    flipped = signature[:-4] + ("AAAA" if not signature.endswith("AAAA") else "BBBB")
    for variant in (
        f"{header}.{payload}.",
        f"{header}.{payload}.{signature[:-8]}",
        f"{header}.{payload}.{flipped}",
        f"{header}.{segment(claims_for(other))}.{signature}",
        f"{header}.{payload}.{signature}.{signature}",
    ):
        assert_unauthenticated(create_task(srv, variant))
    assert snapshot(database, other) == []
    assert len(db_fetch(database, "SELECT id FROM tasks WHERE user_id = $1", sub)) == 1
    with srv.client(good) as c:
        assert c.get("/api/tasks").status_code == 200


def test_remembered_tokens_are_refused_once_they_expire(
    database: DatabaseURL, jwks: JWKSServer, keys: Keys
) -> None:
    settings = settings_for(
        database,
        BETTER_AUTH_URL=ISSUER,
        BETTER_AUTH_SECRET=HS_SECRET,
        JWT_JWKS_URL=jwks.url,
        JWT_LEEWAY_SECONDS="0",
    )
    sub = unique_user()
    with live_server(settings) as server, httpx.Client(base_url=server.url, timeout=30) as c:
        # Made once the server is up (its start-up must not eat into their life): valid for
        # 3 to 4 s, time for the four requests below before they expire (no leeway).
        exp = math.ceil(time.time()) + 3
        tokens = [keys.ed.sign(claims_for(sub, exp=exp)), hs_token(sub, exp=exp)]  # JWKS and HS256
        for token in tokens:
            for _ in range(2):  # the second time from the verified-token cache
                assert c.get("/api/tasks", headers=auth(token)).status_code == 200
        time.sleep(max(0.0, exp + 0.2 - time.time()))
        for token in tokens:
            r = c.get("/api/tasks", headers=auth(token))
            assert_unauthenticated(r)
            assert "expired" in r.json()["detail"]


def test_a_valid_token_next_to_refused_ones_still_works(
    srv: LiveServer, database: DatabaseURL, keys: Keys
) -> None:
    # Guards the refusal tests against a server that refuses everything.
    sub = unique_user()
    good = keys.ed.sign(claims_for(sub))
    assert_unauthenticated(create_task(srv, _expired(keys, sub)[0]))
    assert_created(database, create_task(srv, good), sub)
    assert_unauthenticated(create_task(srv, _jku_with_listed_kid(keys, sub)[0]))
    assert len(db_fetch(database, "SELECT id FROM tasks WHERE user_id = $1", sub)) == 1


# --- what the JWKS lists ---------------------------------------------------------------------


def self_signed_cert(private: Any) -> str:
    """A DER certificate for `private`'s public key, base64 as in a JWK's x5c."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "attacker")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(private, None)
    )
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


@dataclass(frozen=True)
class OddJWKS:
    server: LiveServer
    refused: dict[str, SigningKey]  # listed, but never to be used for verification
    with_extras: dict[str, tuple[SigningKey, SigningKey]]  # (listed key, key its extras belong to)


@pytest.fixture(scope="module")
def odd_jwks(database: DatabaseURL) -> Iterator[OddJWKS]:
    enc = make_key("EdDSA")
    okp_says_es256, ec_says_es512, rsa_says_eddsa = make_key("EdDSA"), make_key("ES256"), make_key("RS256")
    refused = {
        "use_enc": (enc, {**enc.jwk, "use": "enc"}),
        "okp_alg_es256": (okp_says_es256, {**okp_says_es256.jwk, "alg": "ES256"}),
        "p256_alg_es512": (ec_says_es512, {**ec_says_es512.jwk, "alg": "ES512"}),
        "rsa_alg_eddsa": (rsa_says_eddsa, {**rsa_says_eddsa.jwk, "alg": "EdDSA"}),
    }
    pairs = {
        "x5c_of_another_key": (make_key("EdDSA"), make_key("EdDSA")),
        "okp_private_d_of_another_key": (make_key("EdDSA"), make_key("EdDSA")),
        "rsa_private_members_of_another_key": (make_key("RS256"), make_key("RS256")),
    }
    listed = [jwk for _, jwk in refused.values()]
    for case, (key, other) in pairs.items():
        if case.startswith("x5c"):
            listed.append({**key.jwk, "x5c": [self_signed_cert(other.private)]})
        else:
            private_jwk = get_default_algorithms()[other.alg].to_jwk(other.private, as_dict=True)
            secret = {k: v for k, v in private_jwk.items() if k in ("d", "p", "q", "dp", "dq", "qi")}
            listed.append({**key.jwk, **secret})
    jwks_server = JWKSServer(keys=listed).start()
    settings = settings_for(database, BETTER_AUTH_URL=ISSUER, JWT_JWKS_URL=jwks_server.url)
    try:
        with live_server(settings) as server:
            yield OddJWKS(server, {case: key for case, (key, _) in refused.items()}, pairs)
    finally:
        jwks_server.stop()


@pytest.mark.parametrize("case", ["use_enc", "okp_alg_es256", "p256_alg_es512", "rsa_alg_eddsa"])
def test_jwks_keys_not_for_signatures_are_ignored(
    odd_jwks: OddJWKS, database: DatabaseURL, case: str
) -> None:
    # An encryption key, or a key whose declared alg does not fit its type, is never used.
    key = odd_jwks.refused[case]
    sub, title = unique_user(case), f"{case}-{uuid.uuid4().hex}"
    assert_unauthenticated(create_task(odd_jwks.server, key.sign(claims_for(sub)), title))
    assert_nothing_written(database, sub, title)


@pytest.mark.parametrize(
    "case", ["x5c_of_another_key", "okp_private_d_of_another_key", "rsa_private_members_of_another_key"]
)
def test_jwks_certificate_and_private_members_are_ignored(
    odd_jwks: OddJWKS, database: DatabaseURL, case: str
) -> None:
    # The key is its public members: an x5c certificate or private-key members in the JWK,
    # here belonging to another key, neither change it nor make it unusable.
    listed, other = odd_jwks.with_extras[case]
    sub = unique_user(case)
    assert_created(database, create_task(odd_jwks.server, listed.sign(claims_for(sub))), sub)
    intruder, title = unique_user("intruder"), f"{case}-{uuid.uuid4().hex}"
    forged = jwt.encode(claims_for(intruder), other.private, algorithm=other.alg, headers={"kid": listed.kid})
    assert_unauthenticated(create_task(odd_jwks.server, forged, title))
    assert_nothing_written(database, intruder, title)


# --- HS256 with explicitly configured issuer/audience ---------------------------------------


@pytest.mark.parametrize(
    ("claims", "accepted"),
    [
        ({"iss": "http://issuer.test", "aud": "tasks-api"}, True),
        ({"iss": "http://issuer.test", "aud": ["other", "tasks-api"]}, True),
        ({}, False),
        ({"aud": "tasks-api"}, False),
        ({"iss": "http://issuer.test"}, False),
        ({"iss": "http://evil.test", "aud": "tasks-api"}, False),
        ({"iss": "http://issuer.test", "aud": "other"}, False),
    ],
    ids=["both", "aud_list", "neither", "no_iss", "no_aud", "wrong_iss", "wrong_aud"],
)
def test_hs256_with_explicit_issuer_and_audience(
    explicit_srv: LiveServer, database: DatabaseURL, claims: dict[str, Any], accepted: bool
) -> None:
    sub = unique_user()
    title = f"explicit-{uuid.uuid4().hex}"
    r = create_task(explicit_srv, hs_token(sub, **claims), title)
    if accepted:
        assert_created(database, r, sub)
    else:
        assert_unauthenticated(r)
        assert_nothing_written(database, sub, title)


# --- HS256-only deployment -------------------------------------------------------------------


def test_hs256_only_server_refuses_asymmetric_and_unsigned_tokens(
    server: LiveServer, database: DatabaseURL, keys: Keys
) -> None:
    sub = unique_user()
    for token in (
        keys.ed.sign(claims_for(sub)),
        keys.rsa.sign(claims_for(sub)),
        raw_token({"alg": "none", "typ": "JWT"}, claims_for(sub), None),
        hs_token(sub, ttl=-(LEEWAY + 60)),
        hs_token(sub, secret="another-secret-that-is-also-long-enough-0123456789"),
    ):
        assert_unauthenticated(create_task(server, token))
    assert snapshot(database, sub) == []
    assert_created(database, create_task(server, hs_token(sub)), sub)
