"""A faster executor for lists of plain objects, with the stock executor's semantics
(shortcut 1 in schema/fast/__init__.py).

graphql-core completes every field of every list item separately (build an info
object, call a resolver, complete the value): about 3 µs a field, 300 fields for a
page of 50 tasks with 6 fields. Most of those fields are plain attributes with
scalar or enum values, and for those the whole dance reduces to
`getattr` + `coerce_output_value`.

`FastListExecutor.complete_list_value` takes that shortcut when, and only when,
every selected field of the list's object type is such a field (or `__typename`),
with no directives on the selection, no arguments, no middleware and no hooks. It
builds a plan once per selection, compiles it into one small Python function (a
loop that builds each item's dict in a single expression) and applies it to the
list. If anything is out of the ordinary for an item (a null where the schema
forbids one, a value the scalar refuses, an exception), it throws the shortcut
away and completes the whole list the stock way, so errors, their paths and null
propagation are exactly graphql-core's. A differential test compares the two on
generated queries.

Plans are kept across requests when they cannot depend on the request: the
ParserCache hands every request for the same document the same AST, so a
selection with no directives anywhere (nothing a variable could switch) is
identified by its field nodes. Other selections are planned per request.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable
from contextvars import ContextVar
from enum import Enum, EnumMeta
from typing import Any, NamedTuple

from graphql import (
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLID,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLString,
    MiddlewareManager,
    Undefined,
    is_leaf_type,
    is_object_type,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.language import FieldNode, FragmentSpreadNode, InlineFragmentNode, SelectionSetNode
from graphql.pyutils import AwaitableOrValue, Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext


class _Leaf(NamedTuple):
    key: str  # the response key (alias or name)
    attribute: str | None  # the Python attribute it reads; None for __typename
    coerce: Callable[[Any], Any]  # the leaf type's coerce_output_value
    exact: type | None  # values of exactly this type need no coercion ...
    table: dict[int, Any] | None  # ... or are looked up here by id() (enum members)
    non_null: bool


class _Fallback(Exception):
    pass


Apply = Callable[[list[Any] | tuple[Any, ...]], list[dict[str, Any]]]
_NO_PLAN = None
_SHARED_PLANS_MAX = 1024
# (object type, field nodes) -> (what keeps the key's ids unique, compiled plan or None)
_shared_plans: dict[tuple[Any, ...], tuple[Any, Apply | None]] = {}


# What the root resolvers of a request already did, by response key: ("value", result)
# or ("error", exception). Set by the whole-operation path (schema/fast/operation.py)
# when it hands a request to the stock executor: those resolvers are not run again.
replayed_outcomes: ContextVar[dict[str, tuple[str, Any]] | None] = ContextVar(
    "replayed_outcomes", default=None
)


class _Replay:
    """Middleware answering the root fields with their replayed outcomes; innermost,
    so anything else wrapping resolvers sees them as the resolver's."""

    def __init__(self, outcomes: dict[str, tuple[str, Any]]) -> None:
        self.outcomes = outcomes

    def resolve(
        self, next_: Callable[..., Any], root: Any, info: GraphQLResolveInfo[Any], **args: Any
    ) -> Any:
        path = info.path
        if path.prev is None:
            outcome = self.outcomes.get(str(path.key))
            if outcome is not None:
                kind, value = outcome
                if kind == "error":
                    raise value
                return value
        return next_(root, info, **args)


class FastListExecutor(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plans: dict[tuple[GraphQLObjectType, int], tuple[FieldDetailsList, Apply | None]] = {}
        # Middleware (Strawberry turns extensions' `resolve` hooks into middleware) and
        # hooks wrap every field: no shortcut, and no shared plan either.
        self._plain = (
            self.middleware_manager is None or not self.middleware_manager.middlewares
        ) and self.hooks is None
        outcomes = replayed_outcomes.get()
        if outcomes:
            others = self.middleware_manager.middlewares if self.middleware_manager else ()
            self.middleware_manager = MiddlewareManager(_Replay(outcomes), *others)

    def complete_list_value(
        self,
        return_type: GraphQLList[GraphQLOutputType],
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo[Any],
        path: Path,
        result: Any,
        position_context: Any,
    ) -> AwaitableOrValue[list[Any]]:
        item_type = return_type.of_type
        object_type = item_type.of_type if isinstance(item_type, GraphQLNonNull) else item_type
        if self._plain and isinstance(result, list | tuple) and is_object_type(object_type):
            apply = self._plan(object_type, field_details_list)
            if apply is not None:
                try:
                    return apply(result)
                except Exception:  # any surprise: redo it the stock way, errors and all
                    pass
        return super().complete_list_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def _plan(self, object_type: GraphQLObjectType, field_details_list: FieldDetailsList) -> Apply | None:
        nodes = tuple(d.node for d in field_details_list)
        shared_key = (object_type, *map(id, nodes))
        shared = _shared_plans.get(shared_key)
        if shared is not None:
            return shared[1]
        key = (object_type, id(field_details_list))
        cached = self._plans.get(key)
        if cached is None:
            cached = (field_details_list, self._build_plan(object_type, field_details_list))
            self._plans[key] = cached  # the list is kept alive so its id stays unique
            if self._is_static(nodes):
                if len(_shared_plans) >= _SHARED_PLANS_MAX:
                    _shared_plans.clear()
                _shared_plans[shared_key] = ((object_type, nodes), cached[1])
        return cached[1]

    def _is_static(self, nodes: tuple[FieldNode, ...]) -> bool:
        """No directive on these fields or anywhere in their selections (fragments
        included): their plan cannot depend on the request's variables."""
        return all(not node.directives and self._static_selection(node.selection_set) for node in nodes)

    def _static_selection(self, selection_set: SelectionSetNode | None, depth: int = 0) -> bool:
        if selection_set is None:
            return True
        if depth > 8:
            return False
        for selection in selection_set.selections:
            if selection.directives:
                return False
            if isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments.get(selection.name.value)
                if (
                    fragment is None
                    or fragment.variable_signatures  # fragment arguments
                    or getattr(selection, "arguments", None)
                    or fragment.definition.directives
                ):
                    return False
                inner: SelectionSetNode | None = fragment.definition.selection_set
            elif isinstance(selection, InlineFragmentNode):
                inner = selection.selection_set
            else:
                continue  # a field: its own directives are checked above; leaves have no selections
            if not self._static_selection(inner, depth + 1):
                return False
        return True

    def _build_plan(
        self, object_type: GraphQLObjectType, field_details_list: FieldDetailsList
    ) -> Apply | None:
        if object_type.is_type_of is not None or any(
            d.node.directives
            for d in field_details_list  # e.g. @stream
        ):
            return _NO_PLAN
        grouped, new_defer_usages, forbidden = self.collect_subfields(object_type, field_details_list)
        if new_defer_usages or forbidden:
            return _NO_PLAN
        plan: list[_Leaf] = []
        for response_key, details in grouped.items():
            leaf = _leaf(object_type, response_key, details)
            if leaf is None:
                return _NO_PLAN
            plan.append(leaf)
        return _compile(tuple(plan), object_type.name) if plan else _NO_PLAN


def _leaf(object_type: GraphQLObjectType, key: str, details: FieldDetailsList) -> _Leaf | None:
    node = details[0].node
    if any(d.node.directives or d.node.arguments or d.fragment_variable_values for d in details):
        return None
    name = node.name.value
    if name == "__typename":
        return _Leaf(key, None, str, str, None, True)
    field = object_type.fields.get(name)
    if field is None or field.args or field.subscribe is not None:
        return None
    field_type = field.type
    non_null = isinstance(field_type, GraphQLNonNull)
    leaf_type = field_type.of_type if non_null else field_type
    if not is_leaf_type(leaf_type):
        return None
    attribute = _plain_attribute(field)
    if attribute is None:
        return None
    exact, table = _shortcut(leaf_type)
    return _Leaf(key, attribute, leaf_type.coerce_output_value, exact, table, non_null)


# Built-in scalars whose coercion returns a value of this exact type unchanged.
_UNCHANGED: dict[GraphQLLeafType, type] = {GraphQLString: str, GraphQLID: str, GraphQLBoolean: bool}


def _shortcut(leaf_type: GraphQLLeafType) -> tuple[type | None, dict[int, Any] | None]:
    """Which values skip the type's coerce_output_value: those it returns as they are
    (str for String and ID, bool for Boolean), and members of a Python enum (looked
    up in a table the type's own coercion filled; keyed by id(), as members live as
    long as their class and Enum.__hash__ is a Python call). Anything else goes to
    the type."""
    unchanged = _UNCHANGED.get(leaf_type)
    if unchanged is not None:
        return unchanged, None
    members = getattr(leaf_type, "wrapped_cls", None)  # Strawberry's enum types
    if isinstance(leaf_type, GraphQLEnumType) and isinstance(members, EnumMeta):
        enum_members: list[Enum] = list(members)
        return members, {id(member): leaf_type.coerce_output_value(member) for member in enum_members}
    return None, None


def _plain_attribute(field: Any) -> str | None:
    """The attribute the field reads, when `getattr(source, name)` is all its resolver does."""
    if not getattr(field.resolve, "_is_default", False):
        return None
    definition = (field.extensions or {}).get("strawberry-definition")
    if definition is None or definition.base_resolver or definition.extensions:
        return None
    if definition.default_resolver is not getattr:
        return None
    name = definition.python_name
    if not name.isidentifier() or keyword.iskeyword(name):
        return None
    return str(name)


def _compile(plan: tuple[_Leaf, ...], type_name: str) -> Apply:
    """One function completing a whole list by the plan; it raises _Fallback on
    anything the plan does not cover (a null item is an error or a null in the stock
    executor: let it decide; a null in a non-null field; a value the scalar refuses).

    Generated from names the schema vouches for (identifiers) and repr()'d keys."""
    namespace: dict[str, Any] = {"Undefined": Undefined, "_Fallback": _Fallback}
    lines = [
        "def apply(items):",
        "    completed = []",
        "    append = completed.append",
        "    for item in items:",
        "        if item is None or item is Undefined or isinstance(item, Exception):",
        "            raise _Fallback",
    ]
    entries = []
    for i, leaf in enumerate(plan):
        if leaf.attribute is None:
            entries.append(f"{leaf.key!r}: {type_name!r}")
            continue
        v = f"v{i}"
        namespace[f"coerce{i}"] = leaf.coerce
        lines.append(f"        {v} = item.{leaf.attribute}")
        lines.append(f"        if {v} is None or {v} is Undefined:")
        lines.append("            raise _Fallback" if leaf.non_null else f"            {v} = None")
        if leaf.exact is not None:
            namespace[f"exact{i}"] = leaf.exact
            lines.append(f"        elif type({v}) is exact{i}:")
            if leaf.table is not None:
                namespace[f"table{i}"] = leaf.table
                lines.append(f"            {v} = table{i}[id({v})]")
            else:
                lines.append("            pass")
        lines.append("        else:")
        lines.append(f"            {v} = coerce{i}({v})")
        lines.append(f"            if {v} is None or {v} is Undefined:")
        lines.append("                raise _Fallback")
        entries.append(f"{leaf.key!r}: {v}")
    lines.append("        append({" + ", ".join(entries) + "})")
    lines.append("    return completed")
    exec("\n".join(lines), namespace)
    apply: Apply = namespace["apply"]
    return apply
