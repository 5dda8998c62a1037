"""FAST_PATHS: the stock app uses nothing from the shortcuts (schema/fast, rest_shim/fast,
the collector tuning) and answers exactly as the fast one does."""

from __future__ import annotations

import gc
import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import Route, WebSocketRoute

import api.cli
from api.app import create_app
from api.gc_tuning import GEN0_THRESHOLD, tune_for_serving
from db.url import DatabaseURL
from rest_shim.query import list_query_from_parameters, parse_list_query
from tests.support import HS_SECRET, LiveServer, auth, hs_token, live_server, settings_for, unique_user

FAST_MODULES = ("schema.fast", "rest_shim.fast", "api.gc_tuning")


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
    the middleware, and the list route's query dependency as the app resolves it."""
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
        "rest_shim.fast.whole_query_string.<locals>",
    }, found
    assert fast.dependency_overrides == {}


@pytest.fixture(scope="module")
def both(database: DatabaseURL) -> Iterator[tuple[LiveServer, LiveServer]]:
    settings = {"BETTER_AUTH_SECRET": HS_SECRET}
    with (
        live_server(settings_for(database, FAST_PATHS="true", **settings)) as fast,
        live_server(settings_for(database, FAST_PATHS="false", **settings)) as stock,
    ):
        yield fast, stock


VOLATILE = {"id", "created_at", "updated_at", "createdAt", "updatedAt"}


def _stable(value: Any) -> Any:
    """The body without what differs between two creations of the same task."""
    if isinstance(value, dict):
        return {k: "*" if k in VOLATILE else _stable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def _answer(response: httpx.Response) -> tuple[int, str, Any]:
    return response.status_code, response.headers.get("content-type", ""), _stable(response.json())


LIST = "{ tasks(first: 2) { totalCount pageInfo { hasNextPage } nodes { id title priority completed } } }"
CREATE = "mutation($t: String!) { createTask(input: {title: $t, priority: HIGH}) { id title priority } }"
REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/api/tasks?limit=2&sort=title:asc", {}),
    ("GET", "/api/tasks?page=2&limit=2&status=all", {}),
    ("POST", "/api/tasks", {"json": {"title": "made", "priority": "high"}}),
    ("POST", "/api/tasks", {"json": {"title": ""}}),
    ("GET", "/api/tasks?limit=abc", {}),
    ("GET", "/api/tasks?sort=title:up", {}),
    ("GET", "/api/tasks?page=1&offset=3", {}),
    ("POST", "/graphql", {"json": {"query": LIST}}),
    ("POST", "/graphql", {"json": {"query": CREATE, "variables": {"t": "made"}}}),
    ("POST", "/graphql", {"json": {"query": "{ tasks { nodes { nope } } }"}}),
    ("POST", "/graphql", {"json": {"query": "{ tasks(first: 2) { nodes { title } } }", "extra": 1}}),
    ("POST", "/graphql", {"content": b"{not json", "headers": {"content-type": "application/json"}}),
    ("GET", "/graphql?query=%7B%20__typename%20%7D", {}),
]


@pytest.mark.parametrize(("method", "path", "options"), REQUESTS)
def test_both_paths_answer_alike(
    both: tuple[LiveServer, LiveServer], method: str, path: str, options: dict[str, Any]
) -> None:
    options = dict(options)  # the parameter is shared by reruns
    user = unique_user("switch")
    headers = {**auth(hs_token(user)), **options.pop("headers", {})}
    with httpx.Client(base_url=both[0].url, headers=headers, timeout=30) as c:
        for title in ("b", "a", "c", "d"):  # seen by both servers: one database
            assert c.post("/api/tasks", json={"title": title}).status_code == 201
    answers = []
    for server in both:
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as c:
            answers.append(_answer(c.request(method, path, **options)))
    assert answers[0] == answers[1]
    assert answers[0][0] in (200, 201, 400), answers[0]


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
