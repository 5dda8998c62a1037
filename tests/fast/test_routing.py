"""Shortcut 10 (schema/fast/routing.py): a route skips its regex only where the regex
could not have matched, so every route of the app matches every path exactly as its
stock class does."""

from __future__ import annotations

import itertools
import random

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Match

from api.app import create_app
from db.url import DatabaseURL
from schema.fast.routing import PathPrefilter, may_match, path_shape, prefiltered
from tests.support import HS_SECRET, settings_for

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD")
SEGMENTS = (
    *("api", "tasks", "events", "complete", "graphql", "healthz", "readyz"),
    *("1", "42", "u-1", "", "é", "%2F", "a.b"),
)


def _paths(app: FastAPI, count: int) -> list[str]:
    """Each route's template filled in, and near-misses: segments added, dropped or
    swapped, trailing slashes, empty segments; plus random paths."""
    rng = random.Random(10)
    paths = {"/", "", "//", "/api", "/api/", "/api/tasks/", "/api//tasks", "/api/tasks//complete"}
    for route in app.router.routes:
        template = getattr(route, "path", None)
        if not template:
            continue
        for fill in ("1", "u-1", "events", "tasks", "complete", "a/b", ""):
            path = template.replace("{user_id}", fill).replace("{task_id}", fill)
            parts = path.split("/")
            paths.update({path, path + "/", path.rstrip("/") + "/x", "/".join(parts[:-1]), "/x" + path})
            paths.update({path + "\n", path + "\n/", path + "/\n", path.replace("/", "\n/", 1)})
            for i in range(1, len(parts)):
                paths.add("/".join([*parts[:i], rng.choice(SEGMENTS), *parts[i + 1 :]]))
    for _ in range(count):
        paths.add("/" + "/".join(rng.choice(SEGMENTS) for _ in range(rng.randint(0, 6))))
    return sorted(paths)


def _scope(method: str, path: str, root_path: str = "") -> dict[str, object]:
    return {"type": "http", "method": method, "path": path, "root_path": root_path, "headers": []}


@pytest.fixture(scope="module")
def app(database: DatabaseURL) -> FastAPI:
    return create_app(settings_for(database, BETTER_AUTH_SECRET=HS_SECRET, FAST_PATHS="true"))


def test_prefiltered_routes_match_as_their_stock_class_does(app: FastAPI) -> None:
    routes = [r for r in app.router.routes if isinstance(r, PathPrefilter)]
    # The API's routes are prefiltered (so the comparison below covers them all).
    expected = {"/api/tasks", "/api/tasks/{task_id}", "/api/{user_id}/tasks/{task_id}/complete"}
    assert {r.path for r in routes} >= expected
    skipped = 0
    for route, path, method in itertools.product(routes, _paths(app, 400), METHODS):
        for root_path in ("", "/prefix"):
            scope = _scope(method, root_path + path, root_path)
            got = route.matches(dict(scope))
            stock = APIRoute.matches(route, dict(scope))  # the regex, as without the shortcut
            assert got == stock, (route.path, method, path, root_path)
            skipped += route._shape is not None and not root_path and not may_match(route._shape, path)
    assert skipped > 1000  # the regex was skipped, many times, and never wrongly


def test_shapes() -> None:
    convertors = APIRoute("/a/{x}/b/{y:int}/c", lambda: None).param_convertors
    assert path_shape("/a/{x}/b/{y:int}/c", convertors) == ("/a/", "/c", 5)
    assert path_shape("/plain/path", {}) == ("/plain/path", "/plain/path", 2)
    # A parameter that may hold slashes: no shape, always the regex.
    route = prefiltered(APIRoute)("/files/{rest:path}", lambda: None)
    assert route._shape is None  # type: ignore[attr-defined]
    assert route.matches(_scope("GET", "/files/a/b/c"))[0] is Match.FULL


def test_the_router_picks_the_same_route_on_both_paths(database: DatabaseURL, app: FastAPI) -> None:
    stock = create_app(settings_for(database, BETTER_AUTH_SECRET=HS_SECRET, FAST_PATHS="false"))

    def picked(application: FastAPI, method: str, path: str) -> tuple[str, str | None, object]:
        partial = None
        for route in application.router.routes:
            match, child = route.matches(_scope(method, path))
            if match is Match.FULL:
                return "full", getattr(route, "path", None), child.get("path_params")
            if match is Match.PARTIAL and partial is None:
                partial = ("partial", getattr(route, "path", None), child.get("path_params"))
        return partial or ("none", None, None)

    for path, method in itertools.product(_paths(app, 200), METHODS):
        assert picked(app, method, path) == picked(stock, method, path), (method, path)
