"""CORS at no cost to callers that are not browsers (shortcut 4 in
schema/fast/__init__.py).

Starlette's CORSMiddleware does its work for every request: it parses the headers,
wraps the response and rebuilds its headers, to add `Vary: Origin` even when the
request carries no Origin. Server-side callers (Next.js server components and
actions, mobile apps, other services) never send one, and for them that work was
~15 µs of a ~145 µs request here. Without an Origin this adds the same `Vary:
Origin` directly; with one, Starlette's middleware does everything as before."""

from __future__ import annotations

from fastapi.middleware.cors import CORSMiddleware
from starlette.types import Message, Receive, Scope, Send

_VARY_ORIGIN = (b"vary", b"Origin")


class SkipCORSWithoutOrigin(CORSMiddleware):
    """Mixed in before a CORSMiddleware: requests without an Origin skip it."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or any(name == b"origin" for name, _ in scope["headers"]):
            await super().__call__(scope, receive, send)
            return

        async def send_varying(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Caches must not hand this answer (no CORS headers) to a browser.
                message["headers"] = [*message.get("headers", ()), _VARY_ORIGIN]
            await send(message)

        await self.app(scope, receive, send_varying)
