"""The GraphQL endpoint: Strawberry's FastAPI router, answering with orjson."""

from __future__ import annotations

import json
from typing import Any

import orjson
from cross_web import HTTPException  # Strawberry's transport errors
from starlette.responses import Response
from strawberry.fastapi import GraphQLRouter

from api.deps import graphql_context
from rest_shim.responses import error_response
from schema.context import RequestContext
from schema.schema import schema

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


class TaskGraphQLRouter(GraphQLRouter[RequestContext, None]):
    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        try:
            decoded = json.loads(data)
        except RecursionError:
            raise HTTPException(400, "Unable to parse request body as JSON") from None
        # Strawberry reads fields of whatever it gets: anything else would be a 500.
        if not isinstance(decoded, dict | list):
            raise HTTPException(400, "The request body must be a JSON object")
        return decoded

    async def run(self, *args: Any, **kwargs: Any) -> Any:
        # Strawberry answers refused requests in plain text; this API's errors are JSON.
        try:
            return await super().run(*args, **kwargs)
        except HTTPException as error:
            return transport_error(error.status_code, error.reason)


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
    if reason == "Unable to parse request body as JSON":
        return error_response(
            400,
            "validation_error",
            "The request body is not valid JSON.",
            errors=[{"field": "body", "message": "is not valid JSON"}],
        )
    field = next((name for marker, name in _REASON_FIELDS if marker in reason), "body")
    message = reason.rstrip(".")
    return error_response(
        400,
        "validation_error",
        message[:1].upper() + message[1:] + ".",
        errors=[{"field": field, "message": message}],
    )


def graphql_router(**kwargs: Any) -> TaskGraphQLRouter:
    return TaskGraphQLRouter(schema, context_getter=graphql_context, graphql_ide="graphiql", **kwargs)
