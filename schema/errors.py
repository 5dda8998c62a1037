"""Every error, in one place: what went wrong, how each interface says it.

- **Domain errors** (DomainError and its kinds) say what went wrong independently of
  the interface; each carries its REST status, its REST `code` and its GraphQL
  `extensions.code`. The database being unreachable is db.errors.DatabaseUnavailable
  (raised below this layer); it is treated like one.
- **REST and every other HTTP answer** (body limit, CORS, Strawberry's refusals,
  probes): `{"detail", "code"[, "errors"]}` from error_response, with the documented
  status; install_error_handlers puts the handlers on the app.
- **GraphQL**: with_code gives every error its stable code; anything that is not the
  client's or a domain outcome is a bug, masked as INTERNAL_SERVER_ERROR (details only
  in the log).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from graphql import GraphQLError, GraphQLSyntaxError
from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match

from db.errors import DatabaseUnavailable
from schema.responses import FastJSONResponse

log = logging.getLogger("errors")

NOT_JSON = "The request body is not valid JSON."
NOT_JSON_FIELD = "is not valid JSON"
JSON_NUMBER_TOO_LONG = f"Numbers in JSON are limited to {sys.get_int_max_str_digits()} digits"
INTERNAL_MESSAGE = "Internal server error."
LITERAL_TOO_LONG = f"A number literal is too long (at most {sys.get_int_max_str_digits()} digits)."
DATABASE_UNAVAILABLE_MESSAGE = "The database is unavailable; try again shortly."
RETRY_AFTER_SECONDS = "2"
MAX_VALIDATION_ERRORS = 100  # graphql-core's validate() default


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str


class DomainError(Exception):
    code: str = "error"
    graphql_code: str = "INTERNAL_SERVER_ERROR"
    status: int = 500  # on REST

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def extensions(self) -> dict[str, object]:
        return {"code": self.graphql_code}


class Unauthenticated(DomainError):
    """No token, or a token that does not prove who the caller is."""

    code = "unauthenticated"
    graphql_code = "UNAUTHENTICATED"
    status = 401

    def __init__(self, message: str, *, token_given: bool) -> None:
        super().__init__(message)
        self.token_given = token_given


class AuthUnavailable(DomainError):
    """The token may be fine, but the keys needed to check it cannot be fetched."""

    code = "auth_unavailable"
    graphql_code = "AUTH_UNAVAILABLE"
    status = 503


class Forbidden(DomainError):
    code = "forbidden"
    graphql_code = "FORBIDDEN"
    status = 403


class NotFound(DomainError):
    code = "not_found"
    graphql_code = "NOT_FOUND"
    status = 404


class ValidationFailed(DomainError):
    code = "validation_error"
    graphql_code = "BAD_USER_INPUT"
    status = 400

    def __init__(self, errors: list[FieldError]) -> None:
        summary = "; ".join(f"{e.field}: {e.message}" for e in errors)
        super().__init__(f"Invalid input: {summary}.")
        self.errors = errors

    @classmethod
    def single(cls, field: str, message: str) -> ValidationFailed:
        return cls([FieldError(field, message)])

    @property
    def extensions(self) -> dict[str, object]:
        return {
            "code": self.graphql_code,
            "field": self.errors[0].field,
            "errors": [{"field": e.field, "message": e.message} for e in self.errors],
        }


# ------------------------------------------------------------------- the HTTP error body


def _documented(description: str) -> Any:
    """Documentation of what the service answers (responses are never validated)."""
    return Field(json_schema_extra={"description": description})


class FieldErrorOut(BaseModel):
    field: str = _documented(
        "The input at fault: a body field (`title`), `id` (the path's task id),"
        " a query parameter, `body` (the body as a whole) or `input` (nothing to change)."
    )
    message: str


# The body error_response writes, as OpenAPI documents it (REST and the probes). No
# docstring: it would become the schema's description.
class ErrorOut(BaseModel):
    detail: str = _documented("A sentence for people.")
    code: str = _documented(
        "For programs: `validation_error` (400), `unauthenticated` (401), `forbidden`"
        " (403), `not_found` (404), `method_not_allowed` (405), `payload_too_large` (413),"
        " `unsupported_media_type` (415), `auth_unavailable` or `database_unavailable` (503);"
        " `shutting_down` (503, /readyz only)."
    )
    errors: list[FieldErrorOut] | SkipJsonSchema[None] = Field(
        default=None,
        description="On every 400, one entry per bad input; absent (never null) otherwise.",
    )


def error_response(
    status: int,
    code: str,
    detail: str,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {"detail": detail, "code": code}
    if errors is not None:
        body["errors"] = errors
    return FastJSONResponse(body, status_code=status, headers=headers)


def not_json_response() -> Response:
    return error_response(
        400, "validation_error", NOT_JSON, errors=[{"field": "body", "message": NOT_JSON_FIELD}]
    )


def database_unavailable_response() -> Response:
    return error_response(
        503,
        "database_unavailable",
        DATABASE_UNAVAILABLE_MESSAGE,
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


# ------------------------------------------------------- REST and HTTP exception handlers

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
    status = error.status
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
        return NOT_JSON_FIELD
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
        detail = NOT_JSON
    elif any(e.get("type") == "model_attributes_type" for e in exc.errors()):
        detail = "The request body must be a JSON object."
        fields = [{"field": "body", "message": "must be a JSON object"}]
    else:
        detail = "Invalid input: " + "; ".join(f"{f['field']}: {f['message']}" for f in fields) + "."
    return error_response(400, "validation_error", detail, errors=fields)


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
        return not_json_response()
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


# ------------------------------------------------------------- Strawberry's refusals

# Strawberry's reasons for refusing a request before it reaches the schema, by the
# part of the request they are about.
_REASON_FIELDS = (
    ("`variables`", "variables"),
    ("`extensions`", "extensions"),
    ("operation named", "operationName"),
    ("`query`", "query"),
    ("No GraphQL query", "query"),
    ("when using GET", "query"),
)


def transport_error(status: int, reason: str) -> Response:
    """Strawberry's refusal of a request as {"detail", "code"[, "errors"]}."""
    if status == 415 or reason == "Unsupported content type":
        return error_response(
            415,
            "unsupported_media_type",
            "Send GraphQL requests as JSON (Content-Type: application/json), or as a GET query.",
        )
    if status == 404:
        return error_response(404, "not_found", "No such route.")
    if status == 405:
        return error_response(405, "method_not_allowed", "This method is not allowed on this route.")
    if reason == JSON_NUMBER_TOO_LONG:
        return error_response(
            400,
            "validation_error",
            reason + ".",
            errors=[{"field": "body", "message": reason[0].lower() + reason[1:]}],
        )
    if reason == "Unable to parse request body as JSON":
        return not_json_response()
    field = next((name for marker, name in _REASON_FIELDS if marker in reason), "body")
    message = reason.rstrip(".")
    return error_response(
        400,
        "validation_error",
        message[:1].upper() + message[1:] + ".",
        errors=[{"field": field, "message": message}],
    )


# ------------------------------------------------------------------ GraphQL error codes

# graphql-core 3.3: Variable '$input' has invalid value at .dueDate: ...
_VARIABLE_ERROR_33 = re.compile(r"^Variable '\$(?P<var>\w+)' has invalid value(?: at (?P<at>[\w.\[\]]+))?:")


def with_code(error: GraphQLError) -> GraphQLError:
    """The error as the client sees it: a stable code, internals masked. Domain errors
    keep their message and gain their code; errors raised before execution (syntax,
    validation, variable coercion) are the client's and say so; anything else is a
    bug: its message is replaced, the details stay in the log."""
    original = error.original_error
    if isinstance(original, DomainError):
        return _copy(error, original.message, original.extensions)
    if isinstance(original, DatabaseUnavailable):
        return _copy(error, DATABASE_UNAVAILABLE_MESSAGE, {"code": "DATABASE_UNAVAILABLE"})
    # A variable that fails its type is the client's mistake even when the
    # coercion error carries an original exception (graphql-core 3.3 always does).
    if original is None or (error.path is None and _variable_field(error.message) is not None):
        message = error.message
        if message.endswith("Validation aborted."):  # graphql-core stops after 100 errors
            message = f"More than {MAX_VALIDATION_ERRORS} validation errors: validation stopped there."
        return _copy(error, message, {**(error.extensions or {}), **_client_code(error)})
    if error.path is None and isinstance(original, ValueError):
        # Validation's literal checks call int(): past Python's digit limit it raises.
        return _copy(error, LITERAL_TOO_LONG, {"code": "GRAPHQL_VALIDATION_FAILED"})
    return _copy(error, INTERNAL_MESSAGE, {"code": "INTERNAL_SERVER_ERROR"})


def _client_code(error: GraphQLError) -> dict[str, Any]:
    """Variables that fail their type are bad input; other early errors are
    documents that do not fit the schema."""
    if isinstance(error, GraphQLSyntaxError):
        return {"code": "GRAPHQL_PARSE_FAILED"}
    field = _variable_field(error.message)
    if field is None:
        return {"code": "GRAPHQL_VALIDATION_FAILED"}
    return {"code": "BAD_USER_INPUT", "field": field}


def _variable_field(message: str) -> str | None:
    """The input field a variable coercion error is about, or None for other errors.
    (graphql-core 3.3 says which only in its message.)"""
    match = _VARIABLE_ERROR_33.match(message)
    if match is None:
        return None
    path = match.group("at") or match.group("var")
    return _snake(path.split(".")[-1].split("[")[0] or match.group("var"))


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _copy(error: GraphQLError, message: str, extensions: dict[str, Any]) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=extensions,
    )
