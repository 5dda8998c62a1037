"""The GraphQL endpoint: Strawberry's ASGI view on a plain route, answering with orjson.

Strawberry's FastAPI router would run FastAPI's dependency solving for every request
(its context getter, request, response and background-task parameters): about 15% of
a list request here. The ASGI view does the same HTTP handling without it, and the
context is built once per request by get_context.

Media types (GraphQL over HTTP): a client whose `Accept` prefers
`application/graphql-response+json` gets it, and then a request error (the document
does not parse or validate, or the variables do not fit: nothing was executed) is a
400 whose body has no `data`. Everyone else gets `application/json`, where every
GraphQL result is a 200 (Apollo Client 4 drops the GraphQL errors of a 4xx
`application/json` answer); a request error leaves `data` out there too. Errors met
while executing (UNAUTHENTICATED, NOT_FOUND, ...) are 200 with `data` under both.
Strawberry 0.341 answers only `application/json`, always 200, always with `data`.

In a browser (GET with `Accept: text/html`) the endpoint is GraphiQL, served with its
files from this service (api/docs.py) when GRAPHQL_IDE is on, a 404 otherwise. With
GRAPHQL_INTROSPECTION=false, `__schema` and `__type` fail validation, over WebSocket too.

With FAST_PATHS on (the default) a POST of one JSON operation takes the short path of
schema/fast/http.py; with it off, every request goes through Strawberry's run()."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import orjson
from cross_web import HTTPException  # Strawberry's transport errors
from graphql import ASTValidationRule, NoSchemaIntrospectionCustomRule
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.schema import BaseSchema, Schema
from strawberry.types import ExecutionResult

from api.docs import graphiql_page
from api.mount import ScopedRoute
from schema.context import RequestContext, build_context
from schema.errors import JSON_NUMBER_TOO_LONG, transport_error
from schema.fast.http import PlainPostShortcut
from schema.fast.operation import Operation
from schema.fast.operation import plan as plan_operation
from schema.schema import MAX_TOKENS, app_validation_rules, request_rules

JSON = "application/json"
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
_GRAPHQL_RESPONSE_CONTENT_TYPE = GRAPHQL_RESPONSE_JSON + "; charset=utf-8"


class TaskGraphQL(GraphQL[RequestContext, None]):
    # The validation rules the app's settings add; read from the first request's app
    # (one view per app).
    _app_rules: tuple[type[ASTValidationRule], ...] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rules = self._app_rules
        if rules is None:
            settings = scope["app"].state.settings
            rules = self._app_rules = (
                () if settings.graphql_introspection else (NoSchemaIntrospectionCustomRule,)
            )
        if not rules:
            return await super().__call__(scope, receive, send)
        # Operations over WebSocket run in tasks started from here: they see it too.
        token = app_validation_rules.set(rules)
        try:
            await super().__call__(scope, receive, send)
        finally:
            app_validation_rules.reset(token)

    async def render_graphql_ide(self, request: Request) -> Response:
        """Our GraphiQL page (api/docs.py) instead of Strawberry's, which loads GraphiQL,
        React and js-cookie from public CDNs. With GRAPHQL_IDE off, Strawberry's answer
        when it has no IDE: 404."""
        if not request.app.state.settings.graphql_ide:
            raise HTTPException(404, "Not Found")
        return graphiql_page(request)

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
        except json.JSONDecodeError:
            raise
        except RecursionError:
            raise HTTPException(400, "Unable to parse request body as JSON") from None
        except ValueError:
            # Python refuses to read integers of more than sys.get_int_max_str_digits()
            # digits (a guard against quadratic-time conversion).
            raise HTTPException(400, JSON_NUMBER_TOO_LONG) from None
        # Strawberry reads fields of whatever it gets: anything else would be a 500.
        if not isinstance(decoded, dict | list):
            raise HTTPException(400, "The request body must be a JSON object")
        return decoded

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        # The media type the answer will have, chosen from the request's Accept; read
        # back by create_response (the one place both paths build the answer).
        sub_response = await super().get_sub_response(request)
        sub_response.media_type = response_media_type(request.headers.get("accept"))
        return sub_response

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        response_data = await super().process_result(request, result)
        if is_request_error(result):
            # The GraphQL spec: when the request fails before execution, `data` is absent.
            del response_data["data"]
        return response_data

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Response
    ) -> Response:
        """Strawberry's create_response, with the negotiated media type: under
        application/graphql-response+json a result without `data` (a request error) is a 400."""
        if sub_response.media_type == GRAPHQL_RESPONSE_JSON:
            media_type = _GRAPHQL_RESPONSE_CONTENT_TYPE
            status = 400 if isinstance(response_data, dict) and "data" not in response_data else 200
        else:
            media_type, status = JSON, 200
        response = Response(self.encode_json(response_data), status_code=status, media_type=media_type)
        response.headers.raw.extend(sub_response.headers.raw)
        if sub_response.background:
            response.background = sub_response.background
        if sub_response.status_code:
            response.status_code = sub_response.status_code
        return response

    async def run(self, *args: Any, **kwargs: Any) -> Any:
        # Strawberry answers refused requests in plain text; this API's errors are JSON.
        try:
            return await super().run(*args, **kwargs)
        except HTTPException as error:
            return transport_error(error.status_code, error.reason)


class FastTaskGraphQL(TaskGraphQL, PlainPostShortcut):
    """TaskGraphQL, with the short path for plain JSON POSTs (schema/fast/http.py)
    between its run() and Strawberry's, and on it whole plain operations run without
    Strawberry's execute (schema/fast/operation.py)."""

    def plan_operation(self, query: str, operation_name: str | None) -> Operation | None:
        schema = self.schema
        assert isinstance(schema, Schema)
        return plan_operation(
            schema._schema, query, operation_name, request_rules(operation_name), MAX_TOKENS
        )


def is_request_error(result: ExecutionResult) -> bool:
    """The request failed before execution: parsing, validation (the cost limit and
    several operations without operationName included) or variable coercion. Those
    errors have no path; errors met while executing always have one, even when they
    null all of `data`. An internal failure outside any field is not the client's
    request error: it stays `data: null` with a 200, as before."""
    if result.data is not None or not result.errors:
        return False
    return all(
        error.path is None and (error.extensions or {}).get("code") != "INTERNAL_SERVER_ERROR"
        for error in result.errors
    )


_SPECIFICITY = {"*/*": 0, "application/*": 1}


@lru_cache(maxsize=256)
def response_media_type(accept: str | None) -> str:
    """application/graphql-response+json when Accept prefers it to application/json:
    a higher q, or the same q from a more specific range (`*/*` and `application/*`
    rank below a type named in full), or the same range earlier in the list.
    Otherwise application/json, the spec's answer for legacy clients: no Accept, `*/*`,
    `application/json`, or nothing this endpoint can produce."""
    if not accept or accept in ("*/*", JSON):
        return JSON
    # Per type: (q, specificity, -position) of the most specific range matching it (RFC 9110).
    ranks: dict[str, tuple[float, int, int]] = {}
    for position, item in enumerate(accept.split(",")):
        kind, *params = (part.strip() for part in item.split(";"))
        kind = kind.lower()
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
                if not 0.0 <= q <= 1.0:  # NaN included
                    q = 0.0
        for candidate in (GRAPHQL_RESPONSE_JSON, JSON):
            specificity = 2 if kind == candidate else _SPECIFICITY.get(kind)
            if specificity is None:
                continue
            rank = (q, specificity, -position)
            if candidate not in ranks or rank[1:] > ranks[candidate][1:]:
                ranks[candidate] = rank
    graphql_response, json_ = ranks.get(GRAPHQL_RESPONSE_JSON), ranks.get(JSON)
    if graphql_response is None or graphql_response[0] <= 0:
        return JSON
    if json_ is None or json_[0] <= 0 or graphql_response > json_:
        return GRAPHQL_RESPONSE_JSON
    return JSON


def graphql_route(schema: BaseSchema, path: str = "/graphql", *, fast_paths: bool = True) -> Route:
    """GET (queries, GraphiQL in a browser) and POST; other methods get 405 with Allow."""
    view = (FastTaskGraphQL if fast_paths else TaskGraphQL)(schema, graphql_ide="graphiql")
    route = ScopedRoute(path, view, methods=["GET", "POST"])
    route.methods = {"GET", "POST"}  # Starlette adds HEAD to GET routes; Strawberry refuses it
    return route
