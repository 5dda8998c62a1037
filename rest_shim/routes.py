"""The six REST endpoints. Each translates HTTP to a call of the resolver of the same
name (get_task: require_task, which answers 404 for a missing task) and back; the
rules live in schema/resolvers.py. A function's name is its OpenAPI operationId's
start. Mounted at /api and at /api/{user_id}."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Body, Path, Request, Response

from rest_shim.deps import AuthenticatedRoute, RestContext
from rest_shim.models import (
    REST_MAX_LIMIT,
    CompletionBody,
    ListQuery,
    TaskCreateBody,
    TaskOut,
    TaskUpdateBody,
    task_json,
    task_json_of_row,
)
from rest_shim.query import ListParams, query_parameters
from schema import resolvers
from schema.errors import ErrorOut
from schema.responses import FastJSONResponse
from schema.validation import MAX_TASK_ID

# Read as text and parsed by the resolver (schema/validation.parse_task_id), so REST
# and GraphQL ids follow one rule: plain decimal digits, 1 to 2^63-1. Documented as
# the integer it is.
TaskIdPath = Annotated[
    str,
    Path(
        alias="task_id",
        json_schema_extra={"type": "integer", "minimum": 1, "maximum": MAX_TASK_ID},
    ),
]

router = APIRouter(tags=["tasks"], route_class=AuthenticatedRoute)

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Invalid input (`validation_error`); `errors` names each one."},
    401: {
        "model": ErrorOut,
        "description": "Missing or invalid token (`unauthenticated`). Checked before anything"
        " else in the request (only an oversized body is refused first, with 413).",
        "headers": {
            "WWW-Authenticate": {
                "description": '`Bearer`; `Bearer error="invalid_token"` when the request had an'
                " `Authorization` header.",
                "required": True,
                "schema": {"type": "string", "pattern": "^Bearer"},
            }
        },
    },
    # The body limit applies to every method, bodies a route does not read included.
    413: {"model": ErrorOut, "description": "The body is over 64 KiB (`payload_too_large`)."},
    503: {
        "model": ErrorOut,
        "description": (
            "Token keys (`auth_unavailable`) or the database (`database_unavailable`)"
            " unavailable; retry after `Retry-After` seconds."
        ),
        "headers": {
            "Retry-After": {
                "description": "Seconds to wait before retrying.",
                "required": True,
                "schema": {"type": "integer", "minimum": 1},
            }
        },
    },
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No such task of yours (`not_found`)."}
}
_NOT_JSON: dict[int | str, dict[str, Any]] = {
    415: {
        "model": ErrorOut,
        "description": "A body sent without `Content-Type: application/json` (`unsupported_media_type`).",
    },
}
_TASK: dict[int | str, dict[str, Any]] = {200: {"model": TaskOut, "description": "The task."}}
# 403 (another user's {user_id}) is documented where the namespaced routes are mounted.


@router.get(
    "/tasks",
    summary="List your tasks",
    response_class=FastJSONResponse,
    responses={
        200: {
            "model": list[TaskOut],
            "description": "One page of tasks.",
            "headers": {
                "X-Total-Count": {
                    "description": "Tasks matching the filters, all pages.",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 0},
                },
                "Link": {
                    "description": 'The next page as `<url>; rel="next"` (a relative reference:'
                    " the same path and query, `limit` and `offset` moved on), only when more remain.",
                    "schema": {"type": "string", "pattern": '^<[^>]+>; rel="next"$'},
                },
            },
        },
        **_ERRORS,
    },
    openapi_extra={"parameters": query_parameters(ListQuery)},
)
async def list_tasks(ctx: RestContext, request: Request, query: ListParams) -> Response:
    page = resolvers.PageRequest(
        size=query.limit, offset=query.offset, size_field="limit", max_size=REST_MAX_LIMIT
    )
    # The rows rendered straight to task_json's dicts (task_json_of_row): no Task per row.
    found = await resolvers.list_task_rows(ctx, page, query.status, query.sort, query.order, query.search)
    headers = {"X-Total-Count": str(await found.count_total())}
    if found.has_next:
        next_offset = query.offset + query.limit
        headers["Link"] = f'<{_next_page_url(request, next_offset, query.limit)}>; rel="next"'
    return FastJSONResponse([task_json_of_row(row) for row in found.rows], headers=headers)


def _sent_path(request: Request) -> str:
    """The path as the client sent it (still percent-encoded): a `{user_id}` holding
    spaces, slashes or non-Latin-1 characters stays a valid header value and points
    back at the same resource."""
    raw: bytes | None = request.scope.get("raw_path")
    return raw.decode("ascii", "replace") if raw else request.url.path


def _next_page_url(request: Request, offset: int, limit: int) -> str:
    """A relative reference (RFC 8288 allows them): never built from the request's
    Host header, which the client controls."""
    query = request.query_params
    params = [(k, v) for k, v in query.multi_items() if k not in ("offset", "limit", "page")]
    params.append(("limit", str(limit)))
    # The next page in the client's own terms: page=N+1 if it pages by number.
    params.append(("page", str(offset // limit + 1)) if "page" in query else ("offset", str(offset)))
    return f"{_sent_path(request)}?{urlencode(params)}"


@router.post(
    "/tasks",
    summary="Create a task",
    status_code=201,
    response_class=FastJSONResponse,
    responses={
        201: {
            "model": TaskOut,
            "description": "The new task.",
            "headers": {
                "Location": {
                    "description": "The new task's path (a relative reference): `{this path}/{id}`.",
                    "required": True,
                    "schema": {"type": "string", "format": "uri-reference"},
                }
            },
        },
        **_ERRORS,
        **_NOT_JSON,
    },
)
async def create_task(ctx: RestContext, request: Request, body: TaskCreateBody) -> Response:
    task = await resolvers.create_task(ctx, body.to_new_task())
    location = f"{_sent_path(request).rstrip('/')}/{task.id}"
    return FastJSONResponse(task_json(task), status_code=201, headers={"Location": location})


@router.get(
    "/tasks/{task_id}",
    summary="Get one task",
    response_class=FastJSONResponse,
    responses={**_TASK, **_ERRORS, **_NOT_FOUND},
)
async def get_task(ctx: RestContext, task_id: TaskIdPath) -> Response:
    return FastJSONResponse(task_json(await resolvers.require_task(ctx, task_id)))


@router.put(
    "/tasks/{task_id}",
    summary="Update a task",
    description="Changes the fields given. Read-only and unknown fields are ignored;"
    " a body with nothing to change is a 400.",
    response_class=FastJSONResponse,
    responses={**_TASK, **_ERRORS, **_NOT_FOUND, **_NOT_JSON},
)
async def update_task(ctx: RestContext, task_id: TaskIdPath, body: TaskUpdateBody) -> Response:
    return FastJSONResponse(task_json(await resolvers.update_task(ctx, task_id, body.to_changes())))


@router.delete(
    "/tasks/{task_id}",
    summary="Delete a task",
    status_code=204,
    response_class=Response,
    responses={204: {"description": "Deleted."}, **_ERRORS, **_NOT_FOUND},
)
async def delete_task(ctx: RestContext, task_id: TaskIdPath) -> Response:
    await resolvers.delete_task(ctx, task_id)
    return Response(status_code=204)


@router.patch(
    "/tasks/{task_id}/complete",
    summary="Toggle completion",
    description='Flips `completed`; a body `{"completed": true|false}` sets it instead.',
    response_class=FastJSONResponse,
    responses={**_TASK, **_ERRORS, **_NOT_FOUND, **_NOT_JSON},
)
async def toggle_task_completion(
    ctx: RestContext, task_id: TaskIdPath, body: Annotated[CompletionBody | None, Body()] = None
) -> Response:
    completed = body.completed if body is not None else None
    return FastJSONResponse(task_json(await resolvers.toggle_task_completion(ctx, task_id, completed)))
