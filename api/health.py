"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response

from db import queries
from schema.errors import ErrorOut, error_response
from schema.responses import FastJSONResponse

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up", response_class=FastJSONResponse)
async def healthz() -> Response:
    return FastJSONResponse({"status": "ok"})


@router.get(
    "/readyz",
    summary="The database answers",
    response_class=FastJSONResponse,
    responses={
        503: {"model": ErrorOut, "description": "`database_unavailable`, or `shutting_down` after SIGTERM"}
    },
)
async def readyz(request: Request) -> Response:
    if request.app.state.drain.draining:
        return error_response(503, "shutting_down", "The service is shutting down.")
    try:
        await asyncio.wait_for(queries.ping(request.app.state.db), timeout=2)
    except Exception:  # any failure to reach the database means not ready
        return error_response(503, "database_unavailable", "The database is not reachable.")
    return FastJSONResponse({"status": "ready"})
