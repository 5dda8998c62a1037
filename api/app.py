"""The application factory: one FastAPI app serving GraphQL at /graphql and REST at /api.

The one api module that imports the REST shim (rest_shim/, enforced by
tests/unit/test_layers.py): it wires its routers and fills `app.state` (settings, db,
verifier, live feed, drain), which is all the layers below read of the app."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute

from api.auth import TokenVerifier
from api.body_limit import BodySizeLimit
from api.cors import CORS, FastCORS
from api.docs import install_docs
from api.drain import ConnectionCloseWhileDraining, DrainState, install_sigterm_drain
from api.graphql import graphql_route
from api.health import router as health_router
from api.jwks import JWKSCache
from api.live import end_streams_on_exit, graphql_websocket_route, start_live_feed
from api.mount import TRUSTED_MATCHES, include_flat
from api.observability import Metrics, RequestLogAndMetrics, fastapi_telemetry, record_graphql, running
from api.openapi import install_openapi
from api.settings import Settings, load_settings, with_dev_secret
from db.embedded import start_embedded_postgres
from db.engine import create_database
from rest_shim.deps import AuthenticatedRoute, user_namespace
from rest_shim.events import router as events_router
from rest_shim.fast_routes import FastRoute
from rest_shim.query import list_query_from_parameters, parse_list_query
from rest_shim.routes import router as tasks_router
from schema.errors import ErrorOut, install_error_handlers
from schema.fast.dispatch import HotRoutes, dispatched
from schema.fast.releases import untested_releases
from schema.fast.routing import prefiltered
from schema.schema import build_schema

log = logging.getLogger("api")

EXPOSED_HEADERS = ["X-Total-Count", "Link", "Location", "WWW-Authenticate", "Retry-After", "X-Request-ID"]


def _fast_paths_tested() -> bool:
    untested = untested_releases()
    if untested:
        log.warning(
            "FAST_PATHS: serving the stock paths, because these releases are not the ones the"
            " shortcuts were tested against (schema/fast/releases.py): %s",
            "; ".join(untested),
        )
    return not untested


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = with_dev_secret(settings or load_settings())
    fast = settings.fast_paths and _fast_paths_tested()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = settings.database_url
        if url is None:
            url = start_embedded_postgres(settings.data_dir)
            log.info("No DATABASE_URL: using the embedded PostgreSQL in %s", settings.data_dir)
        if settings.dev_secret_generated:
            log.warning(
                "NO AUTH CONFIGURED: accepting HS256 tokens signed with a generated development"
                " secret (%s). Set BETTER_AUTH_URL or BETTER_AUTH_SECRET before deploying.",
                settings.data_dir / "dev-jwt-secret",
            )
        if settings.migrate_on_start:
            # Imported only here: a worker that does not migrate never loads Alembic.
            from db.migrations import run_migrations

            direct, pooled = settings.migration_database(url)
            await run_migrations(direct, pooled=pooled)
        async with httpx.AsyncClient(
            timeout=settings.jwks_fetch_timeout_seconds, follow_redirects=False
        ) as http:
            jwks = None
            if settings.jwt_jwks_url is not None:
                jwks = JWKSCache(
                    settings.jwt_jwks_url,
                    http,
                    cache_seconds=settings.jwks_cache_seconds,
                    min_refresh_seconds=settings.jwks_min_refresh_seconds,
                    timeout_seconds=settings.jwks_fetch_timeout_seconds,
                )
                await jwks.prefetch()
            app.state.verifier = TokenVerifier(settings, jwks)
            app.state.jwks = jwks
            app.state.db = await create_database(
                url,
                min_size=settings.db_pool_min_size,
                max_size=settings.db_pool_max_size,
                pooled=settings.db_pooled,
                connect_timeout=settings.db_connect_timeout_seconds,
                acquire_timeout=settings.db_acquire_timeout_seconds,
                statement_timeout=settings.db_statement_timeout_seconds,
            )
            try:  # the pool is closed even when what follows fails to start
                app.state.live = await start_live_feed(settings, url, app.state.db)
                # Open event streams end when shutdown begins (after the drain, which wraps this).
                undo_live = end_streams_on_exit(app.state.live)
                undo_drain = install_sigterm_drain(drain, settings.shutdown_drain_seconds)
                try:
                    async with running(metrics):
                        yield
                finally:
                    undo_drain()
                    undo_live()
                    await app.state.live.close()
            finally:
                await app.state.db.close()

    app = FastAPI(
        title="Task API",
        version="1.0.0",
        summary="Your tasks over GraphQL (/graphql) and REST (/api). Bearer JWTs from Better Auth.",
        lifespan=lifespan,
        # /docs and /redoc without CDNs (api/docs.py), when API_DOCS is on.
        docs_url=None,
        redoc_url=None,
        # FastAPI's OpenTelemetry: off when no SDK can be configured (api/observability.py).
        telemetry=fastapi_telemetry(),
    )
    app.state.settings = settings
    app.state.fast_paths = fast  # what serve reads: FAST_PATHS, and the releases tested
    app.state.drain = drain = DrainState()
    install_error_handlers(app)
    if fast:
        # Innermost: the hot task routes and /graphql answered without FastAPI's router
        # (schema/fast/dispatch.py).
        app.add_middleware(HotRoutes, router=app.router, trusted=TRUSTED_MATCHES)
    app.add_middleware(BodySizeLimit)  # inside CORS, so a 413 still reaches the browser
    app.add_middleware(
        FastCORS if fast else CORS,
        allow_origins=list(settings.cors_origins),
        allow_credentials="*" not in settings.cors_origins,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
        expose_headers=EXPOSED_HEADERS,
        max_age=600,
    )
    metrics = Metrics(settings, app.state) if settings.metrics_enabled else None
    # Stock Strawberry execution unless FAST_PATHS (the shortcuts of schema/fast).
    schema = build_schema(fast_paths=fast)
    if metrics is not None:
        schema.observe_result = record_graphql
    if not fast:
        # FastAPI reads each query parameter; OpenAPI still comes from the routes as declared.
        app.dependency_overrides[parse_list_query] = list_query_from_parameters
    if settings.access_log or metrics is not None:
        # Outside CORS, so refused preflights (and everything else) are logged and counted.
        app.add_middleware(
            RequestLogAndMetrics,
            access_log=settings.access_log,
            observe=metrics.observe if metrics is not None else None,
        )
    app.add_middleware(ConnectionCloseWhileDraining, state=drain)  # outermost
    # Busiest first: requests are matched against the routes in this order. The event
    # streams go before the task routes, whose /tasks/{task_id} would take "events".
    # FAST_PATHS: routes skip their regex for paths they cannot match
    # (schema/fast/routing.py), and the hot task routes read their arguments without
    # FastAPI's dependency solving (rest_shim/fast_routes.py); otherwise the routes' own
    # classes.
    events_route = prefiltered(AuthenticatedRoute) if fast else None
    task_route = prefiltered(FastRoute) if fast else None
    include_flat(app, events_router, prefix="/api", route_class=events_route)
    include_flat(app, events_router, prefix="/api/{user_id}", route_class=events_route)
    include_flat(app, tasks_router, prefix="/api", route_class=task_route)
    gql = graphql_route(schema, fast_paths=fast)
    app.router.routes.append(dispatched(gql) if fast else gql)
    app.router.routes.append(graphql_websocket_route(settings, schema))
    include_flat(
        app,
        tasks_router,
        prefix="/api/{user_id}",
        dependencies=[Depends(user_namespace)],
        responses={403: {"model": ErrorOut, "description": "`{user_id}` is not the caller (`forbidden`)."}},
        route_class=task_route,
    )
    include_flat(app, health_router, route_class=prefiltered(APIRoute) if fast else None)
    if metrics is not None:
        app.router.routes.append(metrics.route())  # last: no cost to the routes above
    install_docs(app, settings)  # after the routes above: no cost to them
    install_openapi(app)
    return app
