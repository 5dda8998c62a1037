"""Bearer tokens for the service: HS256 with a shared secret, or EdDSA behind a JWKS server.

The EdDSA variant mimics Better Auth's JWT plugin: an Ed25519 key with a `kid`,
published as an OKP JWK at `<BETTER_AUTH_URL>/api/auth/jwks`, tokens whose
`iss` and `aud` are BETTER_AUTH_URL. The bench runs that JWKS endpoint itself
(a stdlib HTTP server on a thread).
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

JWKS_PATHS = ("/api/auth/jwks", "/.well-known/jwks.json", "/jwks")
TOKEN_TTL = 12 * 3600  # long enough for any bench run


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _claims(user: str, extra: dict[str, Any]) -> dict[str, Any]:
    now = int(time.time())
    # email/name match the seeded users row, so the service's user upsert is a no-op.
    return {
        "sub": user,
        "email": f"{user}@bench.invalid",
        "name": user,
        "iat": now,
        "exp": now + TOKEN_TTL,
        **extra,
    }


class HS256Issuer:
    def __init__(self, secret: str | None = None, issuer_url: str | None = None) -> None:
        self.secret = secret or secrets.token_urlsafe(48)
        self.issuer_url = issuer_url

    def env(self) -> dict[str, str]:
        env = {"BETTER_AUTH_SECRET": self.secret}
        if self.issuer_url:
            env["BETTER_AUTH_URL"] = self.issuer_url
        return env

    def token(self, user: str) -> str:
        extra = {"iss": self.issuer_url, "aud": self.issuer_url} if self.issuer_url else {}
        return jwt.encode(_claims(user, extra), self.secret, algorithm="HS256")


class _JWKSHandler(BaseHTTPRequestHandler):
    body = b"{}"

    def do_GET(self) -> None:
        if self.path.split("?")[0] in JWKS_PATHS:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(self.body)))
            self.end_headers()
            self.wfile.write(self.body)
        else:
            self.send_error(404)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class EdDSAIssuer:
    """An Ed25519 key, its JWKS served on 127.0.0.1, and tokens signed with it."""

    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.kid = "bench-" + secrets.token_hex(4)
        public = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.jwks = {
            "keys": [
                {
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": _b64url(public),
                    "kid": self.kid,
                    "alg": "EdDSA",
                    "use": "sig",
                }
            ]
        }
        handler = type("Handler", (_JWKSHandler,), {"body": json.dumps(self.jwks).encode()})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.jwks_url = self.base_url + JWKS_PATHS[0]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def env(self) -> dict[str, str]:
        return {"JWT_JWKS_URL": self.jwks_url, "BETTER_AUTH_URL": self.base_url}

    def token(self, user: str) -> str:
        claims = _claims(user, {"iss": self.base_url, "aud": self.base_url})
        return jwt.encode(claims, self.key, algorithm="EdDSA", headers={"kid": self.kid})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
