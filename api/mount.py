"""Routers mounted flat: each route copied onto the app with the prefix, as FastAPI did
before 0.137.

FastAPI 0.137 keeps an included router as one nested route that is matched first and
then searched again for the route (+45 to +130 µs a request here, docs/performance.md),
and the app's route list then holds those nested routers instead of routes, so
everything that reads it (schema.errors.allowed_methods, the access log's route
template) would need FastAPI's private types. Copying each route with add_api_route
keeps one flat list of APIRoutes whose paths carry the prefix, on every FastAPI
release since 0.115, and the OpenAPI document is built from the same arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, params
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Match, Mount, Route, WebSocketRoute
from starlette.types import Scope


def include_flat(
    app: FastAPI,
    router: APIRouter,
    *,
    prefix: str = "",
    dependencies: Sequence[params.Depends] = (),
    responses: dict[int | str, dict[str, Any]] | None = None,
    route_class: type[APIRoute] | None = None,
) -> None:
    """What `app.include_router(router, prefix=..., dependencies=..., responses=...)`
    does for a router of plain APIRoutes, routes copied instead of nested; each copy
    of the class `route_class` if given (a subclass of the route's own), else of the
    route's."""
    for route in router.routes:
        if not isinstance(route, APIRoute):
            raise TypeError(f"include_flat: {route!r} is not an APIRoute")
        if route_class is not None and not issubclass(route_class, type(route)):
            raise TypeError(f"include_flat: {route_class!r} does not extend {type(route)!r}")
        app.router.add_api_route(
            prefix + route.path,
            route.endpoint,
            response_model=route.response_model,
            status_code=route.status_code,
            tags=list(route.tags),  # the router's tags included
            dependencies=[*dependencies, *route.dependencies],
            summary=route.summary,
            description=route.description,
            response_description=route.response_description,
            responses={**(responses or {}), **route.responses},
            deprecated=route.deprecated,
            methods=route.methods,
            operation_id=route.operation_id,
            response_model_include=route.response_model_include,
            response_model_exclude=route.response_model_exclude,
            response_model_by_alias=route.response_model_by_alias,
            response_model_exclude_unset=route.response_model_exclude_unset,
            response_model_exclude_defaults=route.response_model_exclude_defaults,
            response_model_exclude_none=route.response_model_exclude_none,
            include_in_schema=route.include_in_schema,
            response_class=route.response_class,
            name=route.name,
            route_class_override=route_class or type(route),
            callbacks=route.callbacks,
            openapi_extra=route.openapi_extra,
            generate_unique_id_function=route.generate_unique_id_function,
        )


# FastAPI 0.137+ routers record the matched route in scope["route"] only for its own
# APIRoutes (they do it in matches()); Starlette's router did it for every route. The
# access log and the metrics label requests by it: these Starlette routes record
# themselves, on any FastAPI release.


class _RecordsItself(BaseRoute):
    """Sets scope["route"] to itself when it matches."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            child_scope["route"] = self
        return match, child_scope


class ScopedRoute(_RecordsItself, Route):
    pass


class ScopedWebSocketRoute(_RecordsItself, WebSocketRoute):
    pass


class ScopedMount(_RecordsItself, Mount):
    pass


# Their `matches` decides as Starlette's does (schema/fast/dispatch.py relies on it).
TRUSTED_MATCHES = (_RecordsItself.matches,)
