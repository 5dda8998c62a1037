"""FastAPI dependencies shared by the GraphQL endpoint and the REST shim."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from schema.context import RequestContext


def build_context(request: Request) -> RequestContext:
    state = request.app.state
    return RequestContext(
        pool=state.pool,
        authenticate=state.verifier.authenticate,
        authorization=request.headers.get("authorization"),
        namespace=request.path_params.get("user_id"),
    )


async def graphql_context(request: Request) -> RequestContext:
    # GraphQL checks the token lazily: `{ __typename }` needs no sign-in.
    return build_context(request)


async def authenticated_context(request: Request) -> RequestContext:
    # REST checks the token first, so a caller without one learns nothing else.
    context = build_context(request)
    await context.viewer()
    return context


async def user_namespace(
    user_id: Annotated[str, Path(description="Must equal the signed-in user's id (token `sub`).")],
) -> None:
    """Documents the {user_id} path segment; RequestContext enforces it."""


RestContext = Annotated[RequestContext, Depends(authenticated_context)]
