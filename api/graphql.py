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
from strawberry.http import GraphQLRequestData

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
            request = args[0] if args else kwargs.get("request")
            if isinstance(request, Request) and _plain_json_post(request) and len(args) + len(kwargs) == 1:
                return await self._run_plain_post(request)
            return await super().run(*args, **kwargs)
        except HTTPException as error:
            return transport_error(error.status_code, error.reason)

    async def _run_plain_post(self, request: Request) -> Response:
        """The everyday request (a POST of one JSON operation) through Strawberry's own
        steps: its execute_single, process_result and create_response. It skips what
        cannot apply to such a request in this schema (WebSocket and GraphiQL checks,
        content-type parsing, streaming and batching, which has no subscriptions or
        incremental delivery): ~15 µs of a ~410 µs list request. Anything out of the
        ordinary goes to Strawberry's full run(), which reads the same cached body."""
        body = await request.body()  # its failures (a body over the limit) propagate as before
        try:
            data = self.decode_json(body)
        except HTTPException:
            raise
        except Exception:  # not JSON, not UTF-8, ...: Strawberry's own answer
            return await super().run(request)
        if not isinstance(data, dict) or not data.keys() <= _OPERATION_KEYS:
            return await super().run(request)
        query, variables, extensions = data.get("query"), data.get("variables"), data.get("extensions")
        operation_name = data.get("operationName")
        if not (
            isinstance(query, str)
            and isinstance(variables, dict | None)
            and isinstance(extensions, dict | None)
            and isinstance(operation_name, str | None)
        ):
            return await super().run(request)
        sub_response = await self.get_sub_response(request)
        result = await self.execute_single(
            request=request,
            request_adapter=self.request_adapter_class(request),
            sub_response=sub_response,
            context=await self.get_context(request, response=sub_response),
            root_value=None,
            request_data=GraphQLRequestData(
                query=query,
                variables=variables,
                operation_name=operation_name,
                extensions=extensions,
                protocol="http",
            ),
        )
        response_data = await self.process_result(request, result)
        if result.errors:
            self._handle_errors(result.errors, response_data)
        return self.create_response(response_data, sub_response)


_OPERATION_KEYS = frozenset({"query", "variables", "operationName", "extensions"})
_STREAMING_ACCEPTS = ("multipart/", "text/event-stream")


def _plain_json_post(request: Request) -> bool:
    """POST, Content-Type exactly application/json, no streaming response asked for."""
    if request.method != "POST" or request.headers.get("content-type") != "application/json":
        return False
    accept = request.headers.get("accept", "")
    return not any(kind in accept for kind in _STREAMING_ACCEPTS)


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
