"""The REST shortcut for the hot routes (shortcut 7 in schema/fast/__init__.py):
arguments read without FastAPI's dependency solving.

FastRoute is the task routes' route class when FAST_PATHS is on (api/app.py hands it to
api.mount.include_flat). It is an AuthenticatedRoute: construction, matching (and so
`scope["route"]`), the 405 and its Allow header and OpenAPI are FastAPI's. For the
four hot endpoints (list, get one, toggle, create, at /api and /api/{user_id}) its ASGI
app, for the everyday request, checks the token (rest_shim.deps.authenticated_context,
before the body, as AuthenticatedRoute does), reads the endpoint's arguments the way
FastAPI would (the query string through rest_shim.query.list_query, the path's
`task_id` as text, a JSON body through the same Pydantic model) and calls the endpoint
function of rest_shim/routes.py itself, which returns the response. FastAPI's own
handler answers anything else, whole: a refused token, an invalid query or body, a
body that is not `Content-Type: application/json`, a missing body, a body the body
limit stops, any exception while reading the arguments. The body read so far is
replayed to it, so its answer is exactly the stock one. Errors of the endpoint itself
(the resolver's 400s and 404s, the database's 503) are raised as they would be from
FastAPI's handler, to the same exception handlers; the endpoint is never run twice.

What it skips: per request, FastAPI's solve_dependencies (re-reading each parameter's
annotations), its two AsyncExitStacks, its endpoint-context extraction and FastAPI's
per-route telemetry spans (`dependencies`, `endpoint`; telemetry is not configured
here). Routes with dependencies it does not know, or an app with dependency
overrides, get FastAPI's handler.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from fastapi import Request, Response
from pydantic import BaseModel
from starlette.types import Message, Receive, Scope, Send

from rest_shim import routes
from rest_shim.deps import AuthenticatedRoute, authenticated_context, user_namespace
from rest_shim.models import CompletionBody, TaskCreateBody
from rest_shim.query import list_query, parse_list_query
from schema.context import RequestContext
from schema.fast.dispatch import DECLINED

M = TypeVar("M", bound=BaseModel)
Arguments = dict[str, Any]
ArgumentReader = Callable[[Request, RequestContext, bytes], Arguments]


class Unusual(Exception):
    """Not the everyday request: FastAPI's own handler answers it."""


def _json_body(model: type[M], request: Request, body: bytes) -> M:
    """The body as FastAPI reads it for a body parameter typed `model`: JSON (Starlette's
    json.loads) validated by the model. Only `Content-Type: application/json` (other
    JSON types, parameters and non-objects are FastAPI's to judge)."""
    if request.headers.get("content-type") != "application/json":
        raise Unusual("content type")
    value = json.loads(body)
    if not isinstance(value, dict):
        raise Unusual("not a JSON object")
    return model.model_validate(value)


def _list_arguments(request: Request, ctx: RequestContext, _: bytes) -> Arguments:
    return {"ctx": ctx, "request": request, "query": list_query(request.query_params)}


def _get_arguments(request: Request, ctx: RequestContext, _: bytes) -> Arguments:
    return {"ctx": ctx, "task_id": request.path_params["task_id"]}


def _toggle_arguments(request: Request, ctx: RequestContext, body: bytes) -> Arguments:
    # No body (FastAPI then ignores the content type): the optional body is None.
    completion = _json_body(CompletionBody, request, body) if body else None
    return {"ctx": ctx, "task_id": request.path_params["task_id"], "body": completion}


def _create_arguments(request: Request, ctx: RequestContext, body: bytes) -> Arguments:
    if not body:
        raise Unusual("no body")
    return {"ctx": ctx, "request": request, "body": _json_body(TaskCreateBody, request, body)}


# Each hot endpoint: how its arguments are read, and whether it reads a body.
READERS: dict[Callable[..., Any], tuple[ArgumentReader, bool]] = {
    routes.list_tasks: (_list_arguments, False),
    routes.get_task: (_get_arguments, False),
    routes.toggle_task_completion: (_toggle_arguments, True),
    routes.create_task: (_create_arguments, True),
}


# The dependencies a hot route may have: the readers above do their work.
KNOWN_DEPENDENCIES = {authenticated_context, parse_list_query, user_namespace}


class _Recording:
    """A receive that keeps what it hands out (an exception included), to replay it."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._messages: list[Message] = []
        self._error: Exception | None = None

    async def __call__(self) -> Message:
        try:
            message = await self._receive()
        except Exception as error:
            self._error = error
            raise
        self._messages.append(message)
        return message

    async def body(self) -> bytes:
        chunks = []
        while True:
            message = await self()
            if message["type"] != "http.request":
                raise Unusual(message["type"])
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(chunks)

    def replay(self) -> Receive:
        """What was received, again, then the rest from the original receive."""
        pending = list(self._messages)
        error, receive = self._error, self._receive

        async def replayed() -> Message:
            nonlocal error
            if pending:
                return pending.pop(0)
            if error is not None:
                raised, error = error, None
                raise raised
            return await receive()

        return replayed


def _dependency_calls(route: AuthenticatedRoute) -> set[Any]:
    calls, todo = set(), list(route.dependant.dependencies)
    while todo:
        dependant = todo.pop()
        calls.add(dependant.call)
        todo.extend(dependant.dependencies)
    return calls


class FastRoute(AuthenticatedRoute):
    """AuthenticatedRoute with the hot endpoints' arguments read directly. For those,
    `answer` is set: what schema.fast.dispatch.HotRoutes calls without the router."""

    answer: Callable[[Scope, Receive, Send], Coroutine[Any, Any, Response | Receive]] | None = None

    def __init__(self, path: str, endpoint: Callable[..., Any], **options: Any) -> None:
        super().__init__(path, endpoint, **options)
        reader = READERS.get(endpoint)
        if reader is None:
            return
        unknown = _dependency_calls(self) - KNOWN_DEPENDENCIES
        if unknown:
            raise TypeError(f"FastRoute {path}: dependencies it does not read: {unknown}")
        self._read_arguments, self._reads_body = reader
        self._endpoint_call: Callable[..., Coroutine[Any, Any, Response]] = endpoint
        self._stock_app = self.app
        self.app = self._fast_app
        self.answer = self._answer

    async def _fast_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if DECLINED in scope:  # HotRoutes tried `answer` already: FastAPI's handler answers
            await self._stock_app(scope, receive, send)
            return
        outcome = await self._answer(scope, receive, send)
        if isinstance(outcome, Response):
            await outcome(scope, receive, send)
        else:
            await self._stock_app(scope, outcome, send)

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> Response | Receive:
        """The endpoint's response to the everyday request (its exceptions raised), or,
        for anything else, the receive that hands the request to FastAPI from its start
        (the body read so far replayed; the context, with the token's verdict, kept in
        the scope)."""
        overrides = getattr(self.dependency_overrides_provider, "dependency_overrides", None)
        if overrides:
            return receive
        recording = _Recording(receive) if self._reads_body else None
        request = Request(scope, receive, send)
        try:
            ctx = await authenticated_context(request)  # the token first, as AuthenticatedRoute
            body = await recording.body() if recording is not None else b""
            arguments = self._read_arguments(request, ctx, body)
        except Exception:
            return recording.replay() if recording is not None else receive
        response = await self._endpoint_call(**arguments)
        if not isinstance(response, Response):  # told apart from a receive by its type
            raise TypeError(f"{self.path}: a hot endpoint must return a Response")
        return response
