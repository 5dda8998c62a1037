"""The short path for the everyday GraphQL request (shortcut 3 in schema/fast/__init__.py):
a POST of one JSON operation, run through Strawberry's own steps without the rest of
its view's run()."""

from __future__ import annotations

from typing import Any

from cross_web import HTTPException  # Strawberry's transport errors
from starlette.requests import Request
from starlette.responses import Response
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLRequestData

from schema.context import RequestContext
from schema.fast.operation import Operation, Outcome, replaying

_OPERATION_KEYS = frozenset({"query", "variables", "operationName", "extensions"})
_STREAMING_ACCEPTS = ("multipart/", "text/event-stream")


class PlainPostShortcut(GraphQL[RequestContext, None]):
    """Mixed into a view before Strawberry's GraphQL: its run() takes the short path for
    a plain JSON POST and hands everything else to Strawberry's run()."""

    async def run(self, *args: Any, **kwargs: Any) -> Any:
        request = args[0] if args else kwargs.get("request")
        if isinstance(request, Request) and plain_json_post(request) and len(args) + len(kwargs) == 1:
            return await self._run_plain_post(request)
        return await super().run(*args, **kwargs)

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
        context = await self.get_context(request, response=sub_response)
        outcomes: dict[str, Outcome] = {}
        operation = None if extensions else self.plan_operation(query, operation_name)
        if operation is not None:
            data = await operation.run(context, variables, outcomes)
            if data is not None:
                observe = getattr(self.schema, "observe_result", None)
                if observe is not None:
                    observe(operation_name, [])
                return self.create_response({"data": data}, sub_response)
        with replaying(outcomes):
            result = await self.execute_single(
                request=request,
                request_adapter=self.request_adapter_class(request),
                sub_response=sub_response,
                context=context,
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

    def plan_operation(self, query: str, operation_name: str | None) -> Operation | None:
        """The whole-operation plan of this document (schema/fast/operation.py), or None
        to run it through Strawberry; the view supplies the validation rules."""
        return None


def plain_json_post(request: Request) -> bool:
    """POST, Content-Type exactly application/json, no streaming response asked for."""
    if request.method != "POST" or request.headers.get("content-type") != "application/json":
        return False
    accept = request.headers.get("accept", "")
    return not any(kind in accept for kind in _STREAMING_ACCEPTS)
