"""Per-request context, built once per request and shared by GraphQL and REST: the
database and the caller, whose token is checked once, when first needed.

build_context builds it for an HTTP request from what the app factory puts on
`app.state`; the GraphQL endpoint (api/graphql.py) and the REST shim
(rest_shim/deps.py, which adds the path's `{user_id}`) both use it, so it lives here,
below both.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import HTTPConnection

from db.engine import Database
from schema.errors import DomainError, Forbidden


@dataclass(frozen=True, slots=True)
class Viewer:
    """The caller, as proven by their token."""

    id: str
    email: str | None = None
    name: str | None = None


Authenticator = Callable[[str | None], Awaitable[Viewer]]


class RequestContext:
    def __init__(
        self,
        *,
        db: Database,
        authenticate: Authenticator,
        authorization: str | None,
        namespace: str | None = None,
    ) -> None:
        self.db = db
        self._authenticate = authenticate
        self._authorization = authorization
        # The REST form /api/{user_id}/tasks names whose tasks the caller means.
        self.namespace = namespace
        self._viewer: Viewer | None = None
        self._failure: DomainError | None = None

    async def viewer(self) -> Viewer:
        """The authenticated caller; checks the token once per request.

        Raises Unauthenticated (or AuthUnavailable) without a valid token, and
        Forbidden when the request names another user's namespace.
        """
        if self._viewer is None:
            if self._failure is not None:
                raise self._failure
            try:
                viewer = await self._authenticate(self._authorization)
            except DomainError as error:
                self._failure = error
                raise
            if self.namespace is not None and self.namespace != viewer.id:
                self._failure = Forbidden("You can only access your own tasks.")
                raise self._failure
            self._viewer = viewer
        return self._viewer


def build_context(request: HTTPConnection, *, namespace: str | None = None) -> RequestContext:
    """The context of one HTTP request: `app.state.db`, `app.state.verifier` and the
    request's Authorization header; the token is not checked yet."""
    state = request.app.state
    return RequestContext(
        db=state.db,
        authenticate=state.verifier.authenticate,
        authorization=request.headers.get("authorization"),
        namespace=namespace,
    )
