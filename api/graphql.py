"""The GraphQL endpoint: Strawberry's FastAPI router, answering with orjson."""

from __future__ import annotations

from typing import Any

import orjson
from strawberry.fastapi import GraphQLRouter

from api.deps import graphql_context
from schema.context import RequestContext
from schema.schema import schema


class TaskGraphQLRouter(GraphQLRouter[RequestContext, None]):
    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)


def graphql_router(**kwargs: Any) -> TaskGraphQLRouter:
    return TaskGraphQLRouter(schema, context_getter=graphql_context, graphql_ide="graphiql", **kwargs)
