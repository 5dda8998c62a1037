"""What one GraphQL document may ask for, checked during validation (before any work).

- **Cost:** every `tasks` field costs the page it asks for (`first`, or 50 when absent,
  or 100, the maximum, when it comes from a variable) times the lists it selects
  (`nodes` and `edges` are each a list of that size). A document's cost is the sum
  over all its `tasks` fields, aliases and fragments included. Above MAX_COST the
  document is refused with `COST_LIMIT_EXCEEDED`, naming its cost and the limit. A
  frontend's page of 100 tasks with both `nodes` and `edges` costs 200; the default
  limit, 1,000, lets five such lists through in one document.
- **Literals:** an `Int` literal of more than 4,300 digits makes graphql-core's own
  literal check fail inside Python's int(); schema/errors.py reports that as the
  client's GRAPHQL_VALIDATION_FAILED, naming the limit.
- **One operation, or a name:** a document with several operations and no
  `operationName` is a request error (the GraphQL spec; graphql-core would run the
  first one). Only added to the rules when no operationName was given.

Rules are classes created once, so that the validation cache's key stays stable.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    VariableNode,
)

MAX_COST = 1000
DEFAULT_PAGE = 50
MAX_PAGE = 100
MAX_INT_LITERAL_LENGTH = 11  # "-2147483648"
_LIST_FIELDS = frozenset({"nodes", "edges"})


class SingleOperationRule(ASTValidationRule):
    def enter_document(self, node: DocumentNode, *_: Any) -> None:
        operations = [d for d in node.definitions if isinstance(d, OperationDefinitionNode)]
        if len(operations) > 1:
            self.report_error(
                GraphQLError(
                    "The document has several operations: name the one to run in `operationName`.",
                    operations,
                    extensions={"code": "GRAPHQL_VALIDATION_FAILED"},
                )
            )


class CostRule(ASTValidationRule):
    def __init__(self, context: ValidationContext) -> None:
        super().__init__(context)
        self._fragments = {
            d.name.value: d for d in context.document.definitions if isinstance(d, FragmentDefinitionNode)
        }

    def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
        cost = self._selection_cost(node.selection_set, set())
        if cost > MAX_COST:
            self.report_error(
                GraphQLError(
                    f"This query may return {cost} list items; the limit is {MAX_COST}."
                    " Ask for smaller pages (first) or fewer lists.",
                    node,
                    extensions={"code": "COST_LIMIT_EXCEEDED", "cost": cost, "limit": MAX_COST},
                )
            )

    def _selection_cost(self, selections: SelectionSetNode | None, seen: set[str]) -> int:
        return sum(
            _page_size(field) * max(1, self._lists_in(field, seen))
            if field.name.value == "tasks"
            else self._selection_cost(field.selection_set, seen)
            for field in self._fields(selections, seen)
        )

    def _lists_in(self, tasks: FieldNode, seen: set[str]) -> int:
        return sum(f.name.value in _LIST_FIELDS for f in self._fields(tasks.selection_set, seen))

    def _fields(self, selections: SelectionSetNode | None, seen: set[str]) -> list[FieldNode]:
        """The fields of a selection set, through fragments (each fragment once per path:
        fragment cycles are reported by graphql-core's own rules)."""
        found: list[FieldNode] = []
        for selection in selections.selections if selections else ():
            if isinstance(selection, FieldNode):
                found.append(selection)
            elif isinstance(selection, InlineFragmentNode):
                found += self._fields(selection.selection_set, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self._fragments.get(name)
                if fragment is not None and name not in seen:
                    found += self._fields(fragment.selection_set, seen | {name})
        return found


def _page_size(tasks: FieldNode) -> int:
    for argument in tasks.arguments or ():
        if argument.name.value == "first":
            value = argument.value
            if isinstance(value, VariableNode):
                return MAX_PAGE
            if isinstance(value, IntValueNode) and len(value.value) <= MAX_INT_LITERAL_LENGTH:
                return max(0, int(value.value))
            return DEFAULT_PAGE  # null or a wrong type: refused by other rules
    return DEFAULT_PAGE
