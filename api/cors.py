"""CORS for browsers: Starlette's middleware, refusing preflights in this API's JSON
error shape. FastCORS (FAST_PATHS=true) also lets requests without an Origin skip it
(schema/fast/cors.py)."""

from __future__ import annotations

from fastapi.middleware.cors import CORSMiddleware
from starlette.datastructures import Headers
from starlette.responses import Response

from schema.errors import error_response
from schema.fast.cors import SkipCORSWithoutOrigin


class CORS(CORSMiddleware):
    def preflight_response(self, request_headers: Headers) -> Response:
        """Starlette's answer, but a refusal in this API's JSON error shape (it says
        "Disallowed CORS origin" etc. in plain text)."""
        response = super().preflight_response(request_headers)
        if response.status_code != 400:
            return response
        what = bytes(response.body).decode().removeprefix("Disallowed CORS ")
        headers = {
            k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-type")
        }
        return error_response(
            400,
            "cors_rejected",
            f"CORS preflight refused: this {what} is not allowed. Allowed origins are set by CORS_ORIGINS.",
            headers=headers,
        )


class FastCORS(SkipCORSWithoutOrigin, CORS):
    """CORS, skipped by requests without an Origin (which get `Vary: Origin` directly)."""
