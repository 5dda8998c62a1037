"""Shortcut 11 (schema/fast/dispatch.py): HotRoutes answers a request itself only when
FastAPI's router would have given it to that hot route, with the same path parameters,
and hands everything else to FastAPI's stack."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Match, Route, Router

from api.app import create_app
from api.mount import ScopedRoute
from db.url import DatabaseURL
from rest_shim.fast_routes import FastRoute
from schema import resolvers
from schema.fast.dispatch import KNOWN_MATCHES, HotRoutes, dispatched, plan
from schema.fast.routing import prefiltered
from tests.fast.test_routing import METHODS, _paths, _scope
from tests.support import HS_SECRET, LiveServer, auth, hs_token, live_server, settings_for, unique_user


def _hot_routes(app: FastAPI) -> HotRoutes:
    node: Any = app.middleware_stack or app.build_middleware_stack()
    while not isinstance(node, HotRoutes):
        node = node.app
    return node


class _Hot(Route):
    async def answer(self, scope: Any, receive: Any, send: Any) -> None: ...


def _router_pick(app: FastAPI, method: str, path: str) -> tuple[object, object] | None:
    """The route Starlette's router runs for the request (its first FULL match) and
    the path parameters it sets; None when it would answer otherwise."""
    for route in app.router.routes:
        match, child = route.matches(_scope(method, path))
        if match is Match.FULL:
            return route, child.get("path_params")
    return None


@pytest.fixture(scope="module")
def app(database: DatabaseURL) -> FastAPI:
    return create_app(settings_for(database, BETTER_AUTH_SECRET=HS_SECRET, FAST_PATHS="true"))


def test_hot_routes_take_only_what_the_router_gives_them(app: FastAPI) -> None:
    hot = _hot_routes(app)
    taken_by: dict[str, int] = {}
    for path, method in itertools.product(_paths(app, 300), METHODS):
        group = hot._groups.get(path.count("/"))
        taken = hot._taken(group, path, method) if group is not None else None
        if taken is None:
            continue
        entry, match = taken
        convertors = entry.route.param_convertors
        params = {key: convertors[key].convert(value) for key, value in match.groupdict().items()}
        assert _router_pick(app, method, path) == (entry.route, params), (method, path)
        key = f"{method} {entry.route.path}"
        taken_by[key] = taken_by.get(key, 0) + 1
    # The check can fail: every hot route takes requests.
    hot_routes = {
        f"{method} {r.path}"
        for r in app.router.routes
        if isinstance(r, FastRoute) and r.answer is not None
        for method in r.methods or ()
    }
    assert len(hot_routes) == 8
    hot_routes |= {"GET /graphql", "POST /graphql"}  # marked `dispatched`
    assert set(taken_by) == hot_routes, taken_by


def test_routes_it_cannot_judge_stop_the_search() -> None:
    async def endpoint() -> None: ...

    class Odd(Route):
        def matches(self, scope: Any) -> tuple[Match, Any]:
            return super().matches(scope)

    hot = _Hot("/api/{x}", endpoint, methods=["GET"])
    for before, stops in (
        (Route("/files/{rest:path}", endpoint), True),  # a path convertor: any slash count
        (Odd("/api/{x}", endpoint), True),  # a matches it does not know
        (Route("/api/{x:int}", endpoint, methods=["GET"]), False),
        (APIRoute("/other/{x}", endpoint), False),
    ):
        groups = plan([before, hot], KNOWN_MATCHES)
        assert [e.route if e else None for e in groups[2]] == ([None, hot] if stops else [before, hot])
    # A catch-all before it takes everything: the search stops there.
    catch_all = plan([Route("/{rest:path}", endpoint), hot], KNOWN_MATCHES)
    assert HotRoutes._taken(catch_all[2], "/api/a12", "GET") is None
    router = Router([Route("/api/{x:int}", endpoint, methods=["GET"]), hot])
    groups = plan(router.routes, KNOWN_MATCHES)
    assert HotRoutes._taken(groups[2], "/api/12", "GET") is None  # the int route takes it
    taken = HotRoutes._taken(groups[2], "/api/a12", "GET")
    assert taken is not None and taken[0].route is hot
    assert HotRoutes._taken(groups[2], "/api/a12", "POST") is None


@pytest.fixture(scope="module")
def server(database: DatabaseURL) -> Iterator[LiveServer]:
    with live_server(settings_for(database, BETTER_AUTH_SECRET=HS_SECRET, FAST_PATHS="true")) as running:
        yield running


def test_everyday_requests_never_reach_fastapis_stack(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = server._server.config.app
    assert isinstance(app, FastAPI)
    hot = _hot_routes(app)
    reached: list[str] = []
    inner = hot.app

    async def recorded(scope: Any, receive: Any, send: Any) -> None:
        reached.append(f"{scope['method']} {scope['path']}")
        await inner(scope, receive, send)

    monkeypatch.setattr(hot, "app", recorded)
    user = unique_user("dispatch")
    with httpx.Client(base_url=server.url, headers=auth(hs_token(user)), timeout=30) as c:
        task = c.post("/api/tasks", json={"title": "a"}).json()["id"]
        for method, path, options in (
            ("GET", "/api/tasks", {}),
            ("GET", f"/api/{user}/tasks?limit=1", {}),
            ("GET", f"/api/tasks/{task}", {}),
            ("GET", f"/api/{user}/tasks/{task}", {}),
            ("GET", "/api/tasks/99999999", {}),  # the resolver's 404, through the handlers
            ("PATCH", f"/api/tasks/{task}/complete", {}),
            ("PATCH", f"/api/{user}/tasks/{task}/complete", {"json": {"completed": True}}),
            ("POST", f"/api/{user}/tasks", {"json": {"title": "b"}}),
            ("POST", "/api/tasks", {"json": {}}),  # the resolver's 400
            ("POST", "/graphql", {"json": {"query": "{ tasks(first: 1) { totalCount } }"}}),
            ("POST", "/graphql", {"json": {"query": "{ nope }"}}),
            ("GET", "/graphql?query=%7B__typename%7D", {}),
        ):
            assert c.request(method, path, **options).status_code < 500
        assert reached == []
        # Refused before the endpoint runs: FastAPI's stack answers, the stock way.
        assert c.get("/api/tasks?limit=abc").status_code == 400
        assert c.get(f"/api/somebody-else/tasks/{task}").status_code == 403
        assert c.put(f"/api/tasks/{task}", json={"title": "c"}).status_code == 200
        assert c.delete("/api/tasks/99999999").status_code == 404
        assert c.get("/healthz").status_code == 200
    assert reached == [
        "GET /api/tasks",
        f"GET /api/somebody-else/tasks/{task}",
        f"PUT /api/tasks/{task}",
        "DELETE /api/tasks/99999999",
        "GET /healthz",
    ]


def test_an_exception_no_handler_takes_is_a_500_as_on_the_stock_stack(
    server: LiveServer, database: DatabaseURL, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(resolvers, "require_task", broken)
    user = unique_user("dispatch")
    answers = []
    with live_server(settings_for(database, BETTER_AUTH_SECRET=HS_SECRET, FAST_PATHS="false")) as stock:
        for url in (server.url, stock.url):
            with httpx.Client(base_url=url, headers=auth(hs_token(user)), timeout=30) as c:
                response = c.get("/api/tasks/1")
                answers.append((response.status_code, response.json()["code"]))
    assert answers[0] == answers[1] == (500, answers[0][1])


def _scope_seen(app_call: Any, method: str, path: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        return None

    scope = {**_scope(method, path), "query_string": b"", "app": None, "state": {}}
    seen["scope"] = scope
    asyncio.run(app_call(scope, receive, send))
    return seen


def test_the_scope_is_the_one_the_router_makes(
    database: DatabaseURL, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the hot route's `answer` sees: the scope FastAPI's stack would hand it, but
    for the keys of the two middlewares it skips."""
    captured: list[dict[str, Any]] = []

    async def recording(self: FastRoute, scope: Any, receive: Any, send: Any) -> Response:
        captured.append(dict(scope))
        return PlainTextResponse("ok")

    monkeypatch.setattr(FastRoute, "_answer", recording)
    app = create_app(settings_for(database, BETTER_AUTH_SECRET=HS_SECRET, FAST_PATHS="true"))
    hot = _hot_routes(app)
    compared = 0
    for path, method in itertools.product(_paths(app, 100), ("GET", "POST", "PATCH")):
        group = hot._groups.get(path.count("/"))
        taken = hot._taken(group, path, method) if group is not None else None
        if taken is None or taken[0].answer is None:
            continue
        captured.clear()
        _scope_seen(hot, method, path)
        _scope_seen(hot.app, method, path)  # ExceptionMiddleware, AsyncExitStack, router
        dispatched_scope, stock_scope = captured
        for key in ("starlette.exception_handlers", "fastapi_middleware_astack"):
            stock_scope.pop(key, None)
        assert dispatched_scope == stock_scope, (method, path)
        compared += 1
    assert compared > 20


def test_what_it_leaves_to_fastapi(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    hot = _hot_routes(app)
    passed_on: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        passed_on.append(scope["path"])

    monkeypatch.setattr(hot, "app", inner)
    monkeypatch.setattr(hot, "_dispatch", None)  # would raise if called
    extras: list[dict[str, object]] = [
        {"root_path": "/prefix"},
        {"fastapi.telemetry": object()},
        {"fastapi": {}},
    ]
    for extra in extras:
        scope = {**_scope("GET", "/api/tasks"), **extra}
        asyncio.run(hot(scope, None, None))  # type: ignore[arg-type]
    assert passed_on == ["/api/tasks"] * 3


def test_a_declined_request_is_tried_once(server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    app = server._server.config.app
    assert isinstance(app, FastAPI)
    for route in app.router.routes:
        if isinstance(route, FastRoute) and route.answer is not None:
            original = route._answer

            async def counted(scope: Any, receive: Any, send: Any, original: Any = original) -> Any:
                calls.append(scope["path"])
                return await original(scope, receive, send)

            monkeypatch.setattr(route, "_answer", counted)
    with httpx.Client(base_url=server.url, headers=auth(hs_token(unique_user("dispatch"))), timeout=30) as c:
        assert c.get("/api/tasks?limit=abc").status_code == 400
        assert (
            c.post("/api/tasks", content=b"{nope", headers={"content-type": "application/json"}).status_code
            == 400
        )
    # Through HotRoutes (its entries hold `answer`, bound before the patch), never again
    # through the route's own app: FastAPI's handler answered both.
    assert calls == []


def test_dispatched_takes_only_routes_that_record_themselves() -> None:
    async def endpoint(scope: Any, receive: Any, send: Any) -> None: ...

    async def handler() -> None: ...

    with pytest.raises(TypeError, match="APIRoute"):
        dispatched(APIRoute("/x", handler))
    with pytest.raises(TypeError, match="record"):
        dispatched(Route("/x", endpoint))  # Starlette's router would not set scope["route"]
    route = ScopedRoute("/x", endpoint, methods=["POST"])
    assert dispatched(route) is route


def test_a_trusted_matches_over_an_unknown_one_is_not_trusted() -> None:
    async def endpoint() -> None: ...

    class Narrow(APIRoute):
        def matches(self, scope: Any) -> tuple[Match, Any]:  # a header-restricted route, say
            return super().matches(scope)

    route = prefiltered(Narrow)("/api/{x}", endpoint)
    assert plan([route], KNOWN_MATCHES) == {}
    groups = plan([route, _Hot("/api/{x}", endpoint)], KNOWN_MATCHES)
    assert groups[2][0] is None  # a stop entry
