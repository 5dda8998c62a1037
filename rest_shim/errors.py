"""Every error leaves as {"detail", "code"[, "errors"]} with its documented status."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match

from db.errors import DatabaseUnavailable
from rest_shim.responses import error_response
from schema.errors import (
    AuthUnavailable,
    DomainError,
    Forbidden,
    NotFound,
    Unauthenticated,
    ValidationFailed,
)

log = logging.getLogger("rest_shim")

STATUS_OF: dict[type[DomainError], int] = {
    ValidationFailed: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    AuthUnavailable: 503,
}
_HTTP_CODES = {
    400: "validation_error",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}
_PATH_FIELDS = {"task_id": "id"}


def domain_error_response(error: DomainError) -> Response:
    status = STATUS_OF.get(type(error), 500)
    headers = None
    if isinstance(error, Unauthenticated):
        # RFC 6750: say why only when a token was offered.
        challenge = 'Bearer error="invalid_token"' if error.token_given else "Bearer"
        headers = {"WWW-Authenticate": challenge}
    if isinstance(error, AuthUnavailable):
        headers = {"Retry-After": "5"}
    errors = None
    if isinstance(error, ValidationFailed):
        errors = [{"field": e.field, "message": e.message} for e in error.errors]
    return error_response(status, error.code, error.message, errors=errors, headers=headers)


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc[1:] if not isinstance(p, int)] if len(loc) > 1 else []
    if not parts:
        return "body" if loc and loc[0] == "body" else str(loc[-1]) if loc else "request"
    name = ".".join(parts)
    return _PATH_FIELDS.get(name, name)


def _message(error: dict[str, Any]) -> str:
    if error.get("type") == "json_invalid":
        return "is not valid JSON"
    if error.get("type") == "missing" and error.get("loc", ("",))[0] == "body":
        return "is required"
    message = str(error.get("msg", "is invalid"))
    return message[0].lower() + message[1:] if message else "is invalid"


def _unread_body(error: dict[str, Any]) -> bool:
    """FastAPI hands a body it does not read as JSON (its Content-Type is not JSON) to
    validation as raw bytes; a JSON body is never bytes."""
    return tuple(error.get("loc", ()))[:1] == ("body",) and isinstance(error.get("input"), bytes | bytearray)


async def _validation_handler(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if any(_unread_body(e) for e in exc.errors()):
        return error_response(
            415, "unsupported_media_type", "Send the body as JSON, with Content-Type: application/json."
        )
    fields = [{"field": _field_name(tuple(e["loc"])), "message": _message(e)} for e in exc.errors()]
    if any(e.get("type") == "json_invalid" for e in exc.errors()):
        detail = "The request body is not valid JSON."
    elif any(e.get("type") == "model_attributes_type" for e in exc.errors()):
        detail = "The request body must be a JSON object."
        fields = [{"field": "body", "message": "must be a JSON object"}]
    else:
        detail = "Invalid input: " + "; ".join(f"{f['field']}: {f['message']}" for f in fields) + "."
    return error_response(400, "validation_error", detail, errors=fields)


DATABASE_UNAVAILABLE_MESSAGE = "The database is unavailable; try again shortly."
RETRY_AFTER_SECONDS = "2"


def database_unavailable_response() -> Response:
    return error_response(
        503,
        "database_unavailable",
        DATABASE_UNAVAILABLE_MESSAGE,
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


async def _database_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DatabaseUnavailable)
    log.warning("503 on %s %s: %s", request.method, request.url.path, exc.reason)
    return database_unavailable_response()


async def _domain_handler(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    return domain_error_response(exc)


def allowed_methods(request: Request) -> str:
    """Every method some route accepts at this path (Starlette names only the first
    route that matches the path, and FastAPI makes one route per method)."""
    methods: set[str] = set()
    for route in request.app.routes:
        match, _ = route.matches({**request.scope, "method": "_"})
        if match is not Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


async def _http_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error" if exc.status_code < 500 else "internal_error")
    detail = exc.detail if isinstance(exc.detail, str) else "Request failed."
    if exc.status_code == 400:
        # FastAPI's only 400: a JSON body it could not parse (e.g. nested too deeply).
        return error_response(
            400,
            "validation_error",
            "The request body could not be parsed as JSON.",
            errors=[{"field": "body", "message": "could not be parsed as JSON"}],
        )
    if exc.status_code == 404 and detail == "Not Found":
        detail = "No such route."
    elif exc.status_code == 405:
        detail = "This method is not allowed on this route."
        return error_response(405, code, detail, headers={"Allow": allowed_methods(request)})
    return error_response(exc.status_code, code, detail, headers=exc.headers)


async def _unexpected_handler(request: Request, exc: Exception) -> Response:
    log.error("Unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    # Starlette re-raises after sending this, and uvicorn then drops the connection:
    # say so, or a keep-alive client's next request fails on the closed socket.
    return error_response(500, "internal_error", "Internal server error.", headers={"Connection": "close"})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(DomainError, _domain_handler)
    app.add_exception_handler(DatabaseUnavailable, _database_handler)
    app.add_exception_handler(HTTPException, _http_handler)
    app.add_exception_handler(Exception, _unexpected_handler)
