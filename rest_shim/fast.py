"""The REST shortcut (shortcut 5 in schema/fast/__init__.py): a query string read whole.

FastAPI resolves each declared query parameter on its own, at several µs apiece
(for the six list parameters, 60 µs of a request's ~400 µs here); handing the whole
query string to one validation costs a few µs. With FAST_PATHS=false the app swaps
this dependency for one whose parameters FastAPI reads (rest_shim/query.py).

The other REST shortcut, the hot routes' arguments read without FastAPI's dependency
solving (shortcut 7), is rest_shim/fast_routes.py."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

from fastapi import Request

T = TypeVar("T")


def whole_query_string(read: Callable[[Mapping[str, str]], T]) -> Callable[[Request], Coroutine[Any, Any, T]]:
    """A dependency calling `read` with the query string as one mapping (the last
    value of a repeated parameter, as FastAPI reads a declared one)."""

    async def dependency(request: Request) -> T:
        return read(request.query_params)

    return dependency
