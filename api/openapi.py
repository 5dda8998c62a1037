"""The OpenAPI document, corrected where FastAPI's defaults describe something this
service never does, and completed with what FastAPI cannot know: the bearer scheme
every /api operation requires, the `{user_id}` rule, and the links between operations
(a created task's id leads to its other operations)."""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI

from api.auth import MAX_SUBJECT_LENGTH

# FastAPI documents a 422 with its own error shape on every route with parameters;
# this service answers invalid input with 400 and ErrorOut instead.
_UNUSED_SCHEMAS = ("HTTPValidationError", "ValidationError")

BEARER_SCHEME = "bearerAuth"
_SECURITY_SCHEMES = {
    BEARER_SCHEME: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A Better Auth JWT in `Authorization: Bearer <jwt>` (EdDSA, ES256, ES512,"
        " RS256 or PS256 checked against the JWKS, or HS256 with the shared secret). Its `sub`"
        " is the caller: every task operation sees and changes only the caller's tasks.",
    }
}
_PROTECTED_PREFIX = "/api/"
_USER_ID_DESCRIPTION = "Must equal the signed-in user's id (the token's `sub`); any other is a 403."

_API_DESCRIPTION = """\
Every operation under `/api` needs `Authorization: Bearer <jwt>`. The token, and the
`{user_id}` of `/api/{user_id}/...`, are checked before anything else in the request:
without a valid token the answer is 401 (403 for another user's `{user_id}`), whatever
the parameters and body (only a body over 64 KiB is refused first). The task
operations are served twice: at `/api/tasks...` and at `/api/{user_id}/tasks...`,
where `{user_id}` must be the caller's own id.

Errors are JSON: `{"detail": "<sentence>", "code": "<code>"}`, with
`"errors": [{"field", "message"}]` on a 400. Besides the statuses listed per operation:
a method a path does not support is a 405 `method_not_allowed` with an `Allow` header
listing the ones it does; an unknown path is a 404 `not_found`. Request bodies over
64 KiB are refused with 413 `payload_too_large` on every route and method.
"""


def install_openapi(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    # FastAPI adds its /openapi.json route first, so every request would try it before
    # the API's own routes: behind them it costs them nothing (no other path is it).
    routes = app.router.routes
    if app.openapi_url:
        for route in [r for r in routes if getattr(r, "path", None) == app.openapi_url]:
            routes.remove(route)
            routes.append(route)


def complete(document: dict[str, Any]) -> dict[str, Any]:
    _without_422(document)
    _with_security(document)
    _with_user_id_rule(document)
    _with_links(document)
    document["info"].setdefault("description", _API_DESCRIPTION)
    return document


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, operations in document.get("paths", {}).items()
        for method, operation in operations.items()
    ]


def _without_422(document: dict[str, Any]) -> None:
    for _, _, operation in _operations(document):
        operation.get("responses", {}).pop("422", None)
    schemas = document.get("components", {}).get("schemas", {})
    for name in _UNUSED_SCHEMAS:
        schemas.pop(name, None)


def _with_security(document: dict[str, Any]) -> None:
    """Bearer auth on every /api operation, none on the probes."""
    components = document.setdefault("components", {})
    components.setdefault("securitySchemes", {}).update(copy.deepcopy(_SECURITY_SCHEMES))
    for path, _, operation in _operations(document):
        if path.startswith(_PROTECTED_PREFIX):
            operation["security"] = [{BEARER_SCHEME: []}]


def _with_user_id_rule(document: dict[str, Any]) -> None:
    for _, _, operation in _operations(document):
        for parameter in operation.get("parameters", ()):
            if parameter["in"] == "path" and parameter["name"] == "user_id":
                parameter["description"] = _USER_ID_DESCRIPTION
                parameter["schema"] = {
                    "type": "string",
                    "minLength": 1,
                    # The only user_id that is not a 403 is a token's `sub`.
                    "maxLength": MAX_SUBJECT_LENGTH,
                    "title": "User Id",
                }


# Which operations a task leads to, by the path below a collection and the method.
_TASK_OPERATIONS = {
    "GetTask": ("/{task_id}", "get"),
    "UpdateTask": ("/{task_id}", "put"),
    "DeleteTask": ("/{task_id}", "delete"),
    "CompleteTask": ("/{task_id}/complete", "patch"),
}
# Operations that answer a task, with the status they answer it with.
_TASK_ANSWERS = {
    ("", "post"): "201",
    ("/{task_id}", "get"): "200",
    ("/{task_id}", "put"): "200",
    ("/{task_id}/complete", "patch"): "200",
}


def _with_links(document: dict[str, Any]) -> None:
    """OpenAPI links: the `id` of a task answered by one operation is the `task_id` of the
    others on the same path form (what tools such as Schemathesis follow to test
    sequences: create, then read, change, delete; delete, then read: 404)."""
    paths = document.get("paths", {})
    for collection in ("/api/tasks", "/api/{user_id}/tasks"):
        for (suffix, method), status in _TASK_ANSWERS.items():
            response = _response(paths, collection + suffix, method, status)
            if response is not None:
                response["links"] = _links_to_task(paths, collection, "$response.body#/id")
        deleted = _response(paths, collection + "/{task_id}", "delete", "204")
        if deleted is not None:
            # The deleted task is gone: each of these answers 404 now.
            deleted["links"] = _links_to_task(paths, collection, "$request.path.task_id")


def _response(paths: dict[str, Any], path: str, method: str, status: str) -> dict[str, Any] | None:
    response: dict[str, Any] | None = paths.get(path, {}).get(method, {}).get("responses", {}).get(status)
    return response


def _links_to_task(paths: dict[str, Any], collection: str, task_id: str) -> dict[str, Any]:
    links = {}
    for name, (suffix, method) in _TASK_OPERATIONS.items():
        target = paths.get(collection + suffix, {}).get(method)
        if target is None:
            continue
        parameters = {"task_id": task_id}
        if "{user_id}" in collection:
            parameters["user_id"] = "$request.path.user_id"
        links[name] = {
            "operationId": target["operationId"],
            "parameters": parameters,
            "description": f"{target['summary']} ({method.upper()} {collection}{suffix}).",
        }
    return links
