"""The GraphQL endpoint: Strawberry's ASGI view on a plain route, answering with orjson.

Strawberry's FastAPI router would run FastAPI's dependency solving for every request
(its context getter, request, response and background-task parameters): about 15% of
a list request here. The ASGI view does the same HTTP handling without it, and the
context is built once per request by get_context."""

from __future__ import annotations

import json
from typing import Any

import orjson
from cross_web import HTTPException  # Strawberry's transport errors
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from api.deps import build_context
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


class TaskGraphQL(GraphQL[RequestContext, None]):
    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> RequestContext:
        # The token is checked lazily: `{ __typename }` needs no sign-in.
        assert isinstance(request, Request)  # no subscriptions in this schema
        return build_context(request)

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


def graphql_route(path: str = "/graphql") -> Route:
    """GET (queries, GraphiQL in a browser) and POST; other methods get 405 with Allow."""
    route = Route(path, TaskGraphQL(schema, graphql_ide="graphiql"), methods=["GET", "POST"])
    route.methods = {"GET", "POST"}  # Starlette adds HEAD to GET routes; Strawberry refuses it
    return route
