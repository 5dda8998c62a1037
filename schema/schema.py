"""The Strawberry schema: types, fields, and the extensions every request runs through."""

from __future__ import annotations

import logging
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.types import ExecutionContext

from schema.extensions import ErrorCodes, is_domain_error
from schema.fast_execution import FastListExecutor
from schema.mutation import Mutation
from schema.query import Query

log = logging.getLogger("schema")


class TaskSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Client mistakes and domain outcomes are not server errors; log only the rest.
        for error in errors:
            if error.original_error is not None and not is_domain_error(error):
                log.error("GraphQL resolver failed", exc_info=error.original_error)


def build_schema(**kwargs: Any) -> TaskSchema:
    kwargs.setdefault("execution_context_class", FastListExecutor)
    return TaskSchema(
        query=Query,
        mutation=Mutation,
        # Factories, not instances: one extension object per request.
        extensions=[
            lambda: ParserCache(maxsize=512),
            lambda: ValidationCache(maxsize=512),
            ErrorCodes,
        ],
        **kwargs,
    )


schema = build_schema()
