"""The document limits ridden on Strawberry's parser and validation caches (shortcut 2
in schema/fast/__init__.py): two extensions' hooks per request instead of four.

The stock path (schema/schema.py) gets the same limits from MaxTokensLimiter and an
extension of its own, and no caches."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from graphql import ASTValidationRule
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.types import ExecutionContext

Rules = Callable[[ExecutionContext], tuple[type[ASTValidationRule], ...]]


class BoundedParserCache(ParserCache):
    """ParserCache that also caps the document's tokens before parsing it (what
    MaxTokensLimiter does in its own on_operation hook)."""

    def __init__(self, *, max_tokens: int, maxsize: int) -> None:
        super().__init__(maxsize=maxsize)
        self.max_tokens = max_tokens

    def on_parse(self) -> Iterator[None]:
        # ParserCache reads parse_options when it parses: set before its hook runs.
        self.execution_context.parse_options["max_tokens"] = self.max_tokens
        yield from super().on_parse()


class LimitedValidationCache(ValidationCache):
    """ValidationCache that also adds the request's limit rules (what an
    AddValidationRules extension does). The cache's key includes the rules, so they
    are added before its hook runs."""

    def __init__(self, rules: Rules, *, maxsize: int) -> None:
        super().__init__(maxsize=maxsize)
        self.rules = rules

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        context.validation_rules = (*context.validation_rules, *self.rules(context))
        yield from super().on_validate()
