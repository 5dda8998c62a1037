"""FAST_PATHS: the stock app uses nothing from the shortcuts (schema/fast, rest_shim/fast,
the collector tuning) and answers exactly as the fast one does."""

from __future__ import annotations

import gc
import inspect
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Route, WebSocketRoute

import api.cli
from api.app import create_app
from api.gc_tuning import GEN0_THRESHOLD, tune_for_serving
from db.url import DatabaseURL
from rest_shim.fast_routes import FastRoute
from rest_shim.query import list_query_from_parameters, parse_list_query
from schema.fast import releases
from schema.fast.releases import untested_releases
from tests.fast import masked
from tests.support import HS_SECRET, LiveServer, auth, hs_token, live_server, settings_for, unique_user

FAST_MODULES = ("schema.fast", "rest_shim.fast", "rest_shim.fast_routes", "api.gc_tuning")


def _app(database: DatabaseURL, fast: bool) -> FastAPI:
    return create_app(settings_for(database, BETTER_AUTH_SECRET=HS_SECRET, FAST_PATHS=str(fast).lower()))


def _from_fast_modules(objects: list[object]) -> list[str]:
    """The classes (and their bases) and functions among `objects` defined in the fast modules."""
    found = []
    for obj in objects:
        kinds = inspect.getmro(obj) if isinstance(obj, type) else (obj,)
        for kind in kinds:
            module = getattr(kind, "__module__", "") or ""
            if module.startswith(FAST_MODULES):
                found.append(f"{module}.{getattr(kind, '__qualname__', kind)}")
    return found


def _moving_parts(app: FastAPI) -> list[object]:
    """What serves a request: the GraphQL view, its schema's executor and extensions,
    the middleware, the list route's query dependency as the app resolves it, and each
    route's class and ASGI app."""
    [route] = [r for r in app.router.routes if isinstance(r, Route) and r.path == "/graphql"]
    view = route.endpoint
    schema = view.schema  # type: ignore[attr-defined]
    extensions = [factory() if not isinstance(factory, type) else factory for factory in schema.extensions]
    query_dependency = app.dependency_overrides.get(parse_list_query, parse_list_query)
    # The WebSocket side of /graphql runs subscriptions on the same app's schema.
    [socket] = [r for r in app.router.routes if isinstance(r, WebSocketRoute) and r.path == "/graphql"]
    return [
        type(view),
        schema.execution_context_class,
        socket.endpoint.schema.execution_context_class,  # type: ignore[attr-defined]
        *(type(e) if not isinstance(e, type) else e for e in extensions),
        *(m.cls for m in app.user_middleware),
        query_dependency,
        *{type(r) for r in app.router.routes},
        *(r.app for r in app.router.routes if isinstance(r, APIRoute)),
    ]


def test_the_stock_app_uses_nothing_from_the_fast_paths(database: DatabaseURL) -> None:
    stock, fast = _app(database, fast=False), _app(database, fast=True)
    assert _from_fast_modules(_moving_parts(stock)) == []
    assert stock.dependency_overrides == {parse_list_query: list_query_from_parameters}
    # The check can fail: the fast app is made of them.
    found = _from_fast_modules(_moving_parts(fast))
    assert {name.rsplit(".", 1)[0] for name in found} >= {
        "schema.fast.execution",
        "schema.fast.caches",
        "schema.fast.http",
        "schema.fast.cors",
        "schema.fast.routing",  # the routes' prefilter
        "schema.fast.dispatch",  # HotRoutes
        "rest_shim.fast.whole_query_string.<locals>",
        "rest_shim.fast_routes",  # FastRoute
        "rest_shim.fast_routes.FastRoute",  # its app
    }, found
    assert fast.dependency_overrides == {}


def test_the_fast_paths_run_only_on_the_tested_releases(
    database: DatabaseURL, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The installed releases are the tested ones (else this suite tests the stock path twice).
    assert untested_releases() == []
    assert _app(database, fast=True).state.fast_paths is True
    # A release outside the tested range: FAST_PATHS=true serves the stock paths, and says why.
    monkeypatch.setitem(releases.TESTED, "graphql-core", ("3.2", "3.3"))
    with caplog.at_level("WARNING", logger="api"):
        app = _app(database, fast=True)
    assert app.state.fast_paths is False
    assert _from_fast_modules(_moving_parts(app)) == []
    assert "graphql-core" in caplog.text and "(tested >=3.2,<3.3)" in caplog.text


@pytest.fixture(scope="module")
def both(database: DatabaseURL) -> Iterator[tuple[LiveServer, LiveServer]]:
    settings = {"BETTER_AUTH_SECRET": HS_SECRET}
    with (
        live_server(settings_for(database, FAST_PATHS="true", **settings)) as fast,
        live_server(settings_for(database, FAST_PATHS="false", **settings)) as stock,
    ):
        yield fast, stock


VOLATILE = {"id", "created_at", "updated_at", "createdAt", "updatedAt", "user_id"}
# The headers the routes set, compared too (Location with its task id masked).
COMPARED_HEADERS = (
    "content-type",
    "x-total-count",
    "link",
    "location",
    "www-authenticate",
    "allow",
    "retry-after",
    "vary",
)


def _stable(value: Any) -> Any:
    return masked(value, VOLATILE)


def _answer(response: httpx.Response, user: str) -> tuple[int, dict[str, str], Any]:
    headers = {name: response.headers.get(name, "").replace(user, "{user}") for name in COMPARED_HEADERS}
    headers["location"] = re.sub(r"/\d+$", "/*", headers["location"])
    body = _stable(response.json()) if response.content else None
    return response.status_code, headers, body


LIST = "{ tasks(first: 2) { totalCount pageInfo { hasNextPage } nodes { id title priority completed } } }"
CREATE = "mutation($t: String!) { createTask(input: {title: $t, priority: HIGH}) { id title priority } }"
JSON = {"content-type": "application/json"}
TOO_LARGE = b'{"title": "' + b"x" * (70 * 1024) + b'"}'
# Paths: {id} is the caller's first task, {other} another user's, {user} the caller.
# Options: httpx's, and `token` (none, expired, garbage) and `chunked` (a body sent
# without Content-Length).
REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/api/tasks?limit=2&sort=title:asc", {}),
    ("GET", "/api/tasks?page=2&limit=2&status=all", {}),
    ("GET", "/api/tasks", {}),
    ("GET", "/api/{user}/tasks?limit=3&sort=title&order=desc&unknown=1", {}),
    ("GET", "/api/tasks?limit=1&limit=2&search=a", {}),
    ("POST", "/api/tasks", {"json": {"title": "made", "priority": "high"}}),
    ("POST", "/api/{user}/tasks", {"json": {"title": "made", "due_date": "2030-01-02", "id": 5}}),
    ("POST", "/api/tasks", {"json": {"title": ""}}),
    ("GET", "/api/tasks?limit=abc", {}),
    ("GET", "/api/tasks?sort=title:up", {}),
    ("GET", "/api/tasks?page=1&offset=3", {}),
    ("GET", "/api/tasks?status=nope&limit=0", {}),
    ("GET", "/api/tasks/{id}", {}),
    ("GET", "/api/{user}/tasks/{id}", {}),
    ("GET", "/api/tasks/abc", {}),
    ("GET", "/api/tasks/0", {}),
    ("GET", "/api/tasks/99999999999999999999", {}),
    ("GET", "/api/tasks/{other}", {}),
    ("GET", "/api/somebody-else/tasks/{id}", {}),
    ("GET", "/api/tasks/{id}", {"token": "none"}),
    ("GET", "/api/tasks/{id}", {"token": "expired"}),
    ("GET", "/api/tasks", {"token": "garbage"}),
    ("PATCH", "/api/tasks/{id}/complete", {}),
    ("PATCH", "/api/{user}/tasks/{id}/complete", {}),
    ("PATCH", "/api/tasks/{id}/complete", {"json": {"completed": False}}),
    ("PATCH", "/api/tasks/{id}/complete", {"json": {"completed": None}}),
    ("PATCH", "/api/tasks/{id}/complete", {"json": None}),
    ("PATCH", "/api/tasks/{id}/complete", {"json": {"completed": "yes"}}),
    ("PATCH", "/api/tasks/{id}/complete", {"json": [True]}),
    ("PATCH", "/api/tasks/{id}/complete", {"content": b"{nope", "headers": JSON}),
    ("PATCH", "/api/tasks/{id}/complete", {"content": b'{"completed": true}'}),
    (
        "PATCH",
        "/api/tasks/{id}/complete",
        {"content": b'{"completed": true}', "headers": {"content-type": "text/plain"}},
    ),
    ("PATCH", "/api/tasks/{other}/complete", {}),
    ("PATCH", "/api/tasks/x1/complete", {}),
    ("PATCH", "/api/tasks/{id}/complete", {"token": "expired"}),
    ("POST", "/api/tasks", {"json": {}}),
    ("POST", "/api/tasks", {"json": {"description": "no title"}}),
    ("POST", "/api/tasks", {"json": {"title": "x", "priority": "urgent", "completed": "no"}}),
    ("POST", "/api/tasks", {"json": ["title"]}),
    ("POST", "/api/tasks", {}),
    ("POST", "/api/tasks", {"content": b'{"title": "made",', "headers": JSON}),
    ("POST", "/api/tasks", {"content": b'{"title": "made"}'}),
    ("POST", "/api/tasks", {"content": b'{"title": "made"}', "headers": {"content-type": "text/plain"}}),
    (
        "POST",
        "/api/tasks",
        {"content": b'{"title": "made"}', "headers": {"content-type": "application/json; charset=utf-8"}},
    ),
    ("POST", "/api/tasks", {"json": {"title": "made"}, "token": "none"}),
    ("POST", "/api/tasks", {"content": b"{nope", "headers": JSON, "token": "expired"}),
    ("POST", "/api/tasks", {"content": TOO_LARGE, "headers": JSON}),
    ("POST", "/api/tasks", {"chunked": TOO_LARGE, "headers": JSON}),
    ("POST", "/api/tasks", {"chunked": b'{"title": "made"}', "headers": JSON}),
    ("DELETE", "/api/tasks", {}),
    ("PUT", "/api/tasks/{id}/complete", {}),
    ("POST", "/graphql", {"json": {"query": LIST}}),
    ("POST", "/graphql", {"json": {"query": CREATE, "variables": {"t": "made"}}}),
    ("POST", "/graphql", {"json": {"query": "{ tasks { nodes { nope } } }"}}),
    ("POST", "/graphql", {"json": {"query": "{ tasks(first: 2) { nodes { title } } }", "extra": 1}}),
    ("POST", "/graphql", {"content": b"{not json", "headers": JSON}),
    ("GET", "/graphql?query=%7B%20__typename%20%7D", {}),
]


def _token(kind: str | None, user: str) -> str:
    if kind == "expired":
        return hs_token(user, ttl=-3600)
    return "not.a.jwt" if kind == "garbage" else hs_token(user)


def _chunks(body: bytes) -> Iterator[bytes]:
    for start in range(0, len(body), 4096):
        yield body[start : start + 4096]


@pytest.mark.parametrize(("method", "path", "options"), REQUESTS)
def test_both_paths_answer_alike(
    both: tuple[LiveServer, LiveServer], method: str, path: str, options: dict[str, Any]
) -> None:
    stranger = unique_user("switch")
    with httpx.Client(base_url=both[1].url, headers=auth(hs_token(stranger)), timeout=30) as c:
        other = c.post("/api/tasks", json={"title": "not yours"}).json()["id"]
    answers = []
    for server in both:  # one database; each its own user, with the same tasks
        given = dict(options)  # the parameter is shared by both servers and reruns
        user = unique_user("switch")
        token = given.pop("token", None)
        if "chunked" in given:
            given["content"] = _chunks(given.pop("chunked"))
        with httpx.Client(base_url=both[1].url, headers=auth(hs_token(user)), timeout=30) as c:
            ids = [c.post("/api/tasks", json={"title": title}).json()["id"] for title in ("b", "a", "c", "d")]
        headers = {} if token == "none" else auth(_token(token, user))
        headers |= given.pop("headers", {})
        url = path.format(id=ids[0], other=other, user=user)
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as c:
            answers.append(_answer(c.request(method, url, **given), user))
    assert answers[0] == answers[1]
    assert answers[0][0] < 500, answers[0]


def test_the_hot_routes_answer_everyday_requests_themselves(
    both: tuple[LiveServer, LiveServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The comparison above means something: FastRoute's own path answers the everyday
    requests, and FastAPI's handler only the others."""
    app = both[0]._server.config.app
    assert isinstance(app, FastAPI)
    handed_over: list[str] = []
    for route in app.router.routes:
        if isinstance(route, FastRoute) and hasattr(route, "_stock_app"):
            stock = route._stock_app

            async def recorded(scope: Any, receive: Any, send: Any, stock: Any = stock) -> None:
                handed_over.append(f"{scope['method']} {scope['path']}")
                await stock(scope, receive, send)

            monkeypatch.setattr(route, "_stock_app", recorded)
    user = unique_user("switch")
    with httpx.Client(base_url=both[0].url, headers=auth(hs_token(user)), timeout=30) as c:
        task = c.post("/api/tasks", json={"title": "a"}).json()["id"]
        everyday: list[tuple[str, str, dict[str, Any]]] = [
            ("POST", f"/api/{user}/tasks", {"json": {"title": "b", "priority": "low"}}),
            ("GET", "/api/tasks?limit=1&sort=title:asc", {}),
            ("GET", f"/api/{user}/tasks", {}),
            ("GET", f"/api/tasks/{task}", {}),
            ("GET", f"/api/{user}/tasks/{task}", {}),
            ("GET", "/api/tasks/99999999", {}),  # the endpoint's own 404
            ("PATCH", f"/api/tasks/{task}/complete", {}),
            ("PATCH", f"/api/{user}/tasks/{task}/complete", {"json": {"completed": True}}),
            ("POST", "/api/tasks", {"json": {}}),  # the resolver's own 400
        ]
        for method, path, options in everyday:
            assert c.request(method, path, **options).status_code < 500
        assert handed_over == []
        assert c.get("/api/tasks?limit=abc").status_code == 400
        assert c.post("/api/tasks", json={"title": 5}).status_code == 400
        assert c.get("/api/tasks", headers={"authorization": "Bearer nope"}).status_code == 401
    assert handed_over == ["GET /api/tasks", "POST /api/tasks", "GET /api/tasks"]


def test_serve_tunes_the_collector_only_with_fast_paths(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database: DatabaseURL
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(api.cli, "tune_for_serving", lambda: calls.append("tuned"))
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", database.url)
    for value, expected in (("false", []), ("true", ["tuned"])):
        monkeypatch.setenv("FAST_PATHS", value)
        calls.clear()
        api.cli.worker_app()
        assert calls == expected, value
    # The app factory alone never tunes: tests and embedders keep their collector.
    threshold = gc.get_threshold()
    create_app(settings_for(database, BETTER_AUTH_SECRET=HS_SECRET))
    assert gc.get_threshold() == threshold


def test_the_tuning_freezes_and_raises_the_threshold() -> None:
    threshold = gc.get_threshold()
    try:
        tune_for_serving()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] == GEN0_THRESHOLD
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
