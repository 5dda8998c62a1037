"""FastAPI dependencies of the REST routes: the caller's context, their token checked
before the body is read, and the `{user_id}` namespace of /api/{user_id}/tasks.

Built on schema/context.py's build_context (shared with the GraphQL endpoint); what
the app factory provides is read from `request.app.state`, so nothing here imports api/.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Path, Request, Response
from fastapi.routing import APIRoute

from schema.context import RequestContext, build_context

_CONTEXT_KEY = "todo_api.context"


def rest_context(request: Request) -> RequestContext:
    """The request's context; under /api/{user_id} the path's user id is the namespace
    the caller must own."""
    return build_context(request, namespace=request.path_params.get("user_id"))


async def authenticated_context(request: Request) -> RequestContext:
    """The caller's context, their token checked. AuthenticatedRoute has usually done
    it already, before the body was read; then this only picks it up."""
    context: RequestContext | None = request.scope.get(_CONTEXT_KEY)
    if context is None:
        context = request.scope[_CONTEXT_KEY] = rest_context(request)
    await context.viewer()
    return context


class AuthenticatedRoute(APIRoute):
    """Checks the token (and the {user_id} namespace) before anything else about the
    request, the body included: a caller without a valid token learns nothing, not even
    that their JSON was malformed. (FastAPI parses the body before it solves
    dependencies.)"""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def authenticated(request: Request) -> Response:
            await authenticated_context(request)
            return await handler(request)

        return authenticated


async def user_namespace(
    user_id: Annotated[str, Path(description="Must equal the signed-in user's id (token `sub`).")],
) -> None:
    """Documents the {user_id} path segment; RequestContext enforces it."""


RestContext = Annotated[RequestContext, Depends(authenticated_context)]
