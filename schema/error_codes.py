"""Error reporting for GraphQL: stable `extensions.code` on every error, masked internals."""

from __future__ import annotations

import re
import sys
from typing import Any

from graphql import GraphQLError, GraphQLSyntaxError

from db.errors import DatabaseUnavailable
from schema.errors import DomainError

INTERNAL_MESSAGE = "Internal server error."
LITERAL_TOO_LONG = f"A number literal is too long (at most {sys.get_int_max_str_digits()} digits)."
DATABASE_UNAVAILABLE_MESSAGE = "The database is unavailable; try again shortly."
# graphql-core 3.2: Variable "$input" got invalid value "x" at "input.dueDate"; ...
_VARIABLE_ERROR = re.compile(r'^Variable "\$(?P<var>\w+)" got invalid value')
_VARIABLE_PATH = re.compile(r' at "(?P<at>[\w.\[\]]+)"')
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
        return _copy(error, error.message, {**(error.extensions or {}), **_client_code(error)})
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
    """The input field a variable coercion error is about, or None for other errors."""
    match = _VARIABLE_ERROR_33.match(message)
    if match is not None:
        path = match.group("at") or match.group("var")
    else:
        match = _VARIABLE_ERROR.match(message)
        if match is None:
            return None
        at = _VARIABLE_PATH.search(message)
        path = at.group("at") if at else match.group("var")
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
