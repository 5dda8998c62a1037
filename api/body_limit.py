"""A cap on request bodies: nothing this API accepts is anywhere near 64 KiB.

Without it a client could make a worker buffer and parse megabytes before any
validation says no. A declared Content-Length over the cap is refused before the
body is read; a chunked body is counted as it arrives.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schema.errors import error_response

MAX_BODY_BYTES = 64 * 1024
TOO_LARGE = f"The request body is larger than {MAX_BODY_BYTES // 1024} KiB."


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = next((v for n, v in scope["headers"] if n == b"content-length"), b"")
        if not length.isdigit():
            receive = self._counting(receive)
        elif int(length) > self.max_bytes:
            await error_response(413, "payload_too_large", TOO_LARGE)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _counting(self, receive: Receive) -> Receive:
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                # Raised inside the app while it reads the body: answered as a 413 by
                # the HTTP error handler.
                raise HTTPException(413, TOO_LARGE)
            return message

        return counted
