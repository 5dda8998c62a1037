"""The hot routes dispatched before FastAPI's router (shortcut 11 in
schema/fast/__init__.py).

Below the app's own middleware, a request passes FastAPI's ExceptionMiddleware, its
AsyncExitStackMiddleware and its router (form limits, each route's `matches` with
FastAPI's scope bookkeeping, `_update_scope`, telemetry's `_route_selected`, two
`handle`s) before a route's app runs: ~100k instructions of a REST get-one's ~630k
(bench/layers.py). HotRoutes sits innermost among the app's middleware (so CORS, the
drain, the body limit, the access log and the metrics see every request as before)
and, for a request one of the *hot routes* would take, calls that route's `answer`
itself.

Which route takes a request is decided as Starlette's router decides it: the first
route in order whose `matches` is FULL. At construction every route becomes an entry
holding what its `matches` reads (PathPrefilter's shape, the regex, the methods), in
the router's order and grouped by the number of slashes a path it matches has. Per
request the entries with the path's slash count are tried in order: the shape, then
the regex and the method, as Route.matches does. A route this cannot judge (a Mount,
a `path` convertor, a class whose `matches` is not one of the known ones) stops the
search, and so does a FULL match of a route that is not hot: the request goes on to
FastAPI as always. So does anything under a root_path, with FastAPI telemetry on, or
on an app with router-wide form limits. Routes appended after construction come after
every entry, and the router would never reach them for a request a hot route takes;
routes inserted, removed or reordered after that are not seen (the app factory builds
the route list once, before the first request).

A hot route is either
- one with `answer(scope, receive, send)` (rest_shim.fast_routes.FastRoute for the
  everyday request): it returns the Response to send, or, for anything unusual, the
  receive to hand FastAPI (the body it read, replayed), and this passes the request to
  the rest of the stack, whose router matches it again and answers it the stock way.
  An exception from the endpoint goes to the app's exception handlers through
  Starlette's own wrap_app_handling_exceptions, with the handlers ExceptionMiddleware
  holds: the same lookup, the same response; one no handler takes is raised, to
  ServerErrorMiddleware, as from ExceptionMiddleware. (Sending the response is not
  wrapped: the hot endpoints return rendered responses, with no background tasks, and
  an exception while sending goes to ServerErrorMiddleware as it is.) A request passed
  on is marked DECLINED, so the route's own app hands it straight to FastAPI's
  handler instead of trying `answer` again;
- or a plain Route marked `dispatched` (the GraphQL endpoint, whose view answers
  every request itself): its app runs inside that same wrap_app_handling_exceptions,
  as ExceptionMiddleware runs the router.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol, TypeVar

from fastapi.routing import APIRoute
from starlette._exception_handler import wrap_app_handling_exceptions
from starlette.convertors import StringConvertor
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, Router, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from schema.fast.routing import PathPrefilter, Shape, may_match, path_shape

log = logging.getLogger("api")
R = TypeVar("R", bound=Route)


class Answer(Protocol):
    """A route's `answer`: the request answered without FastAPI's machinery."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Response | Receive:
        """The Response to send, or the receive to hand FastAPI's stack instead."""
        ...


_WHOLE = "_dispatched_whole"
# Set on a request HotRoutes passed on: FastAPI's handler answers it (FastRoute).
DECLINED = "todo_api.hot_declined"


def dispatched(route: R) -> R:
    """`route` (a plain Route whose app answers every request itself, and whose
    `matches` records it as `scope["route"]`, as the router's would) marked for
    HotRoutes. Not an APIRoute: its handler needs FastAPI's AsyncExitStack."""
    if isinstance(route, APIRoute):
        raise TypeError(f"dispatched: {route.path} is an APIRoute")
    method = next(iter(route.methods or ("GET",)))
    _, child = route.matches({"type": "http", "path": route.path, "method": method, "root_path": ""})
    if child.get("route") is not route:
        raise TypeError(f"dispatched: {route.path} does not record itself as scope['route']")
    setattr(route, _WHOLE, True)
    return route


# The `matches` that decide FULL exactly as Route.matches does (by the path regex and
# the methods; APIRoute's extra bookkeeping applies only under FastAPI's included
# routers, which a flat app does not have).
KNOWN_MATCHES: tuple[Callable[..., Any], ...] = (Route.matches, APIRoute.matches, PathPrefilter.matches)


@dataclass(frozen=True, slots=True)
class _Entry:
    """What a route's `matches` reads, and the route."""

    shape: Shape
    regex: re.Pattern[str]
    methods: Collection[str] | None
    route: Route
    answer: Answer | None  # the route's `answer`
    whole: ASGIApp | None  # the route's app, for a route marked `dispatched`
    convert: bool  # a parameter's convertor changes its text (int, float, uuid)

    @property
    def hot(self) -> bool:
        return self.answer is not None or self.whole is not None


_STOP = None  # an entry for a route this cannot judge: the search ends there
Group = tuple[_Entry | None, ...]
Taken = tuple[_Entry, re.Match[str]]


def _trusted(route: BaseRoute, trusted: Collection[Callable[..., Any]]) -> bool:
    """Every `matches` the route's class defines or inherits (each calls the next, up
    to Route's or WebSocketRoute's) is one known to decide as Starlette's does."""
    defined = [cls.__dict__["matches"] for cls in type(route).__mro__ if "matches" in cls.__dict__]
    return all(matches in trusted for matches in defined if matches is not BaseRoute.matches)


def _entry(route: BaseRoute, trusted: Collection[Callable[..., Any]]) -> tuple[int, _Entry]:
    if not isinstance(route, Route) or not _trusted(route, trusted):
        raise LookupError(route)
    shape = path_shape(route.path, route.param_convertors)
    if shape is None:
        raise LookupError(route)
    slashes = shape[2]
    convert = any(type(c) is not StringConvertor for c in route.param_convertors.values())
    answer = getattr(route, "answer", None)  # FastRoute's, for its hot endpoints
    whole = route.app if getattr(route, _WHOLE, False) else None
    entry = _Entry(shape, route.path_regex, route.methods, route, answer, whole, convert)
    return slashes, entry


def plan(routes: list[BaseRoute], trusted: Collection[Callable[..., Any]]) -> dict[int, Group]:
    """The router's routes as entries, grouped by slash count, in the router's order,
    each group ending after its last hot route (nothing later can take a request that
    one takes); groups without a hot route left out. A route this cannot judge is a
    stop entry in every group."""
    ordered: list[tuple[int | None, _Entry | None]] = []
    for route in routes:
        if isinstance(route, WebSocketRoute) and _trusted(route, (WebSocketRoute.matches, *trusted)):
            continue  # never matches an HTTP request
        try:
            ordered.append(_entry(route, trusted))
        except LookupError:
            ordered.append((None, _STOP))
    groups: dict[int, Group] = {}
    for slashes in {s for s, e in ordered if s is not None and e is not None and e.hot}:
        group = [e for s, e in ordered if s is None or s == slashes]
        last_hot = max(i for i, e in enumerate(group) if e is not None and e.hot)
        groups[slashes] = tuple(group[: last_hot + 1])
    return groups


class HotRoutes:
    """ASGI middleware: the hot routes answered without FastAPI's ExceptionMiddleware,
    AsyncExitStackMiddleware and router. Innermost of the app's middleware: its inner
    app must be FastAPI's ExceptionMiddleware (otherwise it passes every request on)."""

    def __init__(self, app: ASGIApp, router: Router, trusted: Collection[Callable[..., Any]] = ()) -> None:
        self.app = app
        self._router = router
        self._groups: dict[int, Group] = {}
        if not isinstance(app, ExceptionMiddleware):
            log.warning("FAST_PATHS: HotRoutes is not directly above ExceptionMiddleware; not dispatching")
            return
        if router.__dict__.get("form_limits"):
            log.warning("FAST_PATHS: the router has form limits; HotRoutes is not dispatching")
            return
        # Starlette's own wrapper reads the handlers from the scope, as ExceptionMiddleware sets them.
        self._handlers = (app._exception_handlers, app._status_handlers)
        self._groups = plan(router.routes, (*KNOWN_MATCHES, *trusted))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path") and "fastapi" not in scope:
            path: str = scope["path"]
            group = self._groups.get(path.count("/"))
            if group is not None and scope.get("fastapi.telemetry") is None:
                taken = self._taken(group, path, scope["method"])
                if taken is not None:
                    await self._dispatch(taken, scope, receive, send)
                    return
        await self.app(scope, receive, send)

    @staticmethod
    def _taken(group: Group, path: str, method: str) -> Taken | None:
        """The hot route Starlette's router would take, with its regex's match; None if
        it would take another (or this cannot tell)."""
        for entry in group:
            if entry is None:
                return None
            if not may_match(entry.shape, path):
                continue
            match = entry.regex.match(path)
            if match is None:
                continue
            if entry.methods and method not in entry.methods:
                continue  # PARTIAL: the router looks on for a FULL match
            return (entry, match) if entry.hot else None
        return None

    async def _dispatch(self, taken: Taken, scope: Scope, receive: Receive, send: Send) -> None:
        entry, match = taken
        route = entry.route
        params = match.groupdict()
        if entry.convert:
            convertors = route.param_convertors
            params = {key: convertors[key].convert(value) for key, value in params.items()}
        # What the router and the route's `matches` put in the scope.
        scope.setdefault("router", self._router)
        path_params = scope.get("path_params")
        scope["endpoint"] = route.endpoint
        scope["path_params"] = {**path_params, **params} if path_params else params
        scope["route"] = route
        if entry.answer is None:  # a `dispatched` route: its app answers, as under the router
            assert entry.whole is not None
            await self._handling_exceptions(entry.whole, scope, receive, send)
            return
        try:
            outcome = await entry.answer(scope, receive, send)
        except Exception as error:  # the endpoint's: answered as ExceptionMiddleware would
            await self._handling_exceptions(_raising(error), scope, receive, send)
            return
        if isinstance(outcome, Response):
            await outcome(scope, receive, send)
        else:  # unusual: FastAPI's stack answers it, from its start
            scope[DECLINED] = True
            await self.app(scope, outcome, send)

    async def _handling_exceptions(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        """`app` run as ExceptionMiddleware runs the router: its exceptions to the app's
        handlers (Starlette's own wrapper, which reads them from the scope)."""
        scope["starlette.exception_handlers"] = self._handlers
        await wrap_app_handling_exceptions(app, Request(scope, receive, send))(scope, receive, send)


def _raising(error: Exception) -> ASGIApp:
    """An app that raises `error`: what the endpoint raised, handed to the wrapper."""

    async def app(scope: Scope, receive: Receive, send: Send) -> NoReturn:
        raise error

    return app
