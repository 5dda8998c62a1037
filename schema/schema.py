"""The Strawberry schema: types, fields, and the extensions every request runs through."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any

import strawberry
from graphql import ASTValidationRule, GraphQLError
from strawberry.extensions import MaxTokensLimiter, SchemaExtension
from strawberry.extensions.max_aliases import create_validator
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from schema.errors import with_code
from schema.fast.caches import BoundedParserCache, LimitedValidationCache
from schema.fast.execution import FastListExecutor
from schema.limits import CostRule, SingleOperationRule
from schema.mutation import Mutation
from schema.query import Query
from schema.subscription import Subscription

log = logging.getLogger("schema")

MAX_TOKENS = 2000
MAX_ALIASES = 20
# One rule class for the life of the process: MaxAliasesLimiter makes a new class per
# instance, which changes the validation cache's key and so defeats it on every request.
_ALIAS_RULE = create_validator(MAX_ALIASES)
_LIMIT_RULES = (_ALIAS_RULE, CostRule)
_LIMIT_RULES_UNNAMED = (*_LIMIT_RULES, SingleOperationRule)
# Rules the app serving the request adds (api/graphql.py sets them for each app, e.g.
# NoSchemaIntrospectionCustomRule when GRAPHQL_INTROSPECTION=false): they follow the
# app's settings, not the schema. Part of the validation cache's key, like the rest.
app_validation_rules: ContextVar[tuple[type[ASTValidationRule], ...]] = ContextVar(
    "app_validation_rules", default=()
)


def limit_rules(context: ExecutionContext) -> tuple[type[ASTValidationRule], ...]:
    """The rules added to graphql-core's for this request: the document limits, one
    operation unless operationName was given, and the app's own rules."""
    # Strawberry keeps the operationName the request gave only in a private attribute
    # (its public operation_name falls back to the document's first operation): read
    # on both paths, listed in schema/fast/__init__.py.
    return request_rules(context._provided_operation_name)


def request_rules(operation_name: str | None) -> tuple[type[ASTValidationRule], ...]:
    """limit_rules, for a request that gave this operationName."""
    extra = _LIMIT_RULES if operation_name else _LIMIT_RULES_UNNAMED
    return (*extra, *app_validation_rules.get())


class DocumentLimits(SchemaExtension):
    """The limit rules, as a stock extension (the fast path rides them on its
    validation cache instead: schema/fast/caches.py)."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        context.validation_rules = (*context.validation_rules, *limit_rules(context))
        yield


ResultObserver = Callable[[str | None, Sequence[str | None]], None]


class TaskSchema(strawberry.Schema):
    # Told (operation name, error codes) of every operation: the metrics, when the app
    # turns them on (api/app.py). A hook, so that schema/ never imports api/.
    observe_result: ResultObserver | None = None

    async def execute(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        # Every error leaves with a code, internals masked, in this one place: it sees
        # errors from parsing, validation and execution alike. (Strawberry's MaskErrors
        # extension did the masking for ~35 µs a request in hooks.) Domain errors carry
        # their code already.
        if "allowed_operation_types" in kwargs:
            # One result, no stream: a subscription (served over WebSocket, see
            # schema/subscription.py) is refused here as not allowed over this method.
            kwargs["allowed_operation_types"] = set(kwargs["allowed_operation_types"]) - {
                OperationType.SUBSCRIPTION
            }
        result = await super().execute(*args, **kwargs)
        if result.errors:
            result.errors = [e if (e.extensions or {}).get("code") else with_code(e) for e in result.errors]
        if self.observe_result is not None:
            codes = [(e.extensions or {}).get("code") for e in result.errors or ()]
            self.observe_result(kwargs.get("operation_name"), codes)
        return result

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Client mistakes and domain outcomes are not server errors; log only the rest.
        for error in errors:
            code = (with_code(error).extensions or {}).get("code")
            if code == "INTERNAL_SERVER_ERROR":
                log.error("GraphQL resolver failed", exc_info=error.original_error)
            elif code == "DATABASE_UNAVAILABLE":
                log.warning("DATABASE_UNAVAILABLE at %s: %s", error.path, error.original_error)


def build_schema(*, fast_paths: bool = True, **kwargs: Any) -> TaskSchema:
    """The schema; with fast_paths, run through the shortcuts of schema/fast (the
    executor and the limits riding on the caches), else through stock Strawberry."""
    if fast_paths:
        kwargs.setdefault("execution_context_class", FastListExecutor)
        # Bounded documents (tokens, aliases): one request cannot fan out into hundreds
        # of queries.
        extensions: list[Callable[[], SchemaExtension]] = [
            lambda: BoundedParserCache(max_tokens=MAX_TOKENS, maxsize=512),
            lambda: LimitedValidationCache(limit_rules, maxsize=512),
        ]
    else:
        extensions = [lambda: MaxTokensLimiter(MAX_TOKENS), DocumentLimits]
    return TaskSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        # Factories, not instances: one extension object per request.
        extensions=extensions,
        **kwargs,
    )


schema = build_schema()
