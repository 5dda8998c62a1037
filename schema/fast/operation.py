"""Whole operations run without Strawberry's execute pipeline (shortcut 7 in
schema/fast/__init__.py).

A document is "plain" when it has one operation (a query or a mutation), no
directives and no fragments anywhere, and selects only fields that need no
arguments below the root, on object types without `is_type_of`, whose values are
plain attributes or come from Strawberry resolvers taking only `self`. Such a
document is planned once (keyed by the exact query text, operationName and the
app's extra validation rules; parsed with the token cap and validated with every
rule the stock path applies) and then run by `Operation.run`: variables coerced by
graphql-core's get_variable_values, root arguments by its get_argument_values, the
root fields' own resolvers (Strawberry's, so the argument conversion and the code
of schema/query.py and schema/mutation.py run as they are) called in order, and the
response's `data` built in one pass, lists of plain objects by the list executor's
compiled functions.

Anything out of the ordinary gives up (`None`): variables that do not coerce, a
resolver that raises, a null where the schema forbids one, a value a scalar
refuses. The caller then runs the same request through Strawberry, with what the
root resolvers already did *replayed* (`replaying`, honoured by
schema/fast/execution.py's FastListExecutor): no resolver runs twice, so a mutation
is never repeated, and errors, paths, codes and null propagation are the stock ones.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeGuard

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    Undefined,
    is_leaf_type,
    parse,
    specified_rules,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from graphql.pyutils import Path
from strawberry.schema.schema import validate_document

from db.errors import DatabaseUnavailable
from schema.fast.arguments import DirectCall, direct_call
from schema.fast.execution import _compile, _Fallback, _Leaf, _plain_attribute, _shortcut, replayed_outcomes
from schema.fast.page_json import PagePlan, page_plan
from schema.fast.values import Arguments, arguments_coercer, variables_coercer
from schema.query import Query

# What the root resolvers did, by response key: ("value", result) or ("error", exception).
Outcome = tuple[str, Any]


@contextmanager
def replaying(outcomes: dict[str, Outcome] | None) -> Iterator[None]:
    """Within: the executor (FastListExecutor) reuses these outcomes of root fields."""
    token = replayed_outcomes.set(outcomes or None)
    try:
        yield
    finally:
        replayed_outcomes.reset(token)


@dataclass(frozen=True, slots=True)
class _Field:
    key: str
    name: str
    non_null: bool
    # how the value is read: an attribute name, or a callable of the source (maybe async)
    attribute: str | None
    resolver: Callable[[Any], Any] | None
    # what is done with it: a leaf, an object, or a list (of leaves or objects)
    leaf: _Leaf | None
    children: tuple[_Field, ...] | None  # object fields, for objects and lists of objects
    type_name: str | None  # for __typename
    is_list: bool
    item_non_null: bool
    apply_list: Callable[[Any], list[dict[str, Any]]] | None  # compiled, for plain objects

    async def complete_child(self, key: str, source: Any) -> Any:
        """The value of child `key` of this object field on `source`."""
        assert self.children is not None
        [child] = [c for c in self.children if c.key == key]
        return (await _object((child,), source))[key]


@dataclass(frozen=True, slots=True)
class _Root:
    key: str
    field_def: GraphQLField
    nodes: list[FieldNode]
    field: _Field | None  # None for __typename
    call: DirectCall | None  # the resolver's function called directly (schema/fast/arguments.py)
    # its arguments from the coerced variables (schema/fast/values.py; only with `call`,
    # which reads them without changing them): None when graphql-core must coerce them
    arguments: Arguments | None
    # Query.tasks whose page PostgreSQL renders as JSON (schema/fast/page_json.py)
    page: PagePlan | None = None


class Operation:
    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        root_type: GraphQLObjectType,
        roots: tuple[_Root, ...],
    ) -> None:
        self.schema = schema
        self.document = document
        self.operation = operation
        self.root_type = root_type
        self.roots = roots
        self.variable_definitions = operation.variable_definitions
        self.coerce_variables = variables_coercer(schema, tuple(self.variable_definitions or ()))

    async def run(
        self, context: Any, variables: dict[str, Any] | None, outcomes: dict[str, Outcome]
    ) -> dict[str, Any] | None:
        """The response's `data`, or None to have the stock executor answer (after
        `outcomes` has been filled with what the root resolvers did)."""
        coerced: VariableValues | None = None
        if not self.variable_definitions:
            variable_values: dict[str, Any] = {}
        elif (
            self.coerce_variables is not None and (fast := self.coerce_variables(variables or {})) is not None
        ):
            variable_values = fast
        else:
            coerced = self._coerce_variables(variables)
            if coerced is None:
                return None
            variable_values = coerced.coerced
        data: dict[str, Any] = {}
        for root in self.roots:
            if root.field is None:
                data[root.key] = self.root_type.name
                continue
            args = root.arguments(variable_values) if root.arguments is not None else None
            if args is None:
                if coerced is None:
                    coerced = self._coerce_variables(variables)
                    if coerced is None:
                        return None
                try:
                    args = (
                        get_argument_values(root.field_def, root.nodes[0], coerced)
                        if root.field_def.args or root.nodes[0].arguments
                        else {}
                    )
                except Exception:
                    return None
            if root.page is not None:
                try:
                    page = await root.page.run(context, args, root.field.complete_child)
                except DatabaseUnavailable as error:
                    # Replayed, not retried: a down or frozen database would make the
                    # stock path wait out the same bounded timeouts a second time.
                    outcomes[root.key] = ("error", error)
                    return None
                except Exception:
                    return None  # the stock path runs list_tasks (a read) and answers
                if page is not None:
                    data[root.key] = page
                    continue
            info = GraphQLResolveInfo(
                root.nodes[0].name.value,
                root.nodes,
                root.field_def.type,
                self.root_type,
                Path(None, root.key, self.root_type.name),
                self.schema,
                {},
                None,
                self.operation,
                # As Strawberry's executor gives its resolvers: the coerced dict.
                variable_values,  # type: ignore[arg-type]
                context,
                _is_awaitable,
                None,
                None,  # type: ignore[arg-type]  # no async helpers: our resolvers use none
            )
            try:
                if root.call is not None:
                    value = root.call(info, args)
                else:
                    resolve = root.field_def.resolve
                    assert resolve is not None
                    value = resolve(None, info, **args)
                if inspect.isawaitable(value):
                    value = await value
            except Exception as error:
                outcomes[root.key] = ("error", error)
                return None
            outcomes[root.key] = ("value", value)
            try:
                data[root.key] = await _complete(root.field, value)
            except Exception:
                return None
        return data

    def _coerce_variables(self, variables: dict[str, Any] | None) -> VariableValues | None:
        """graphql-core's coercion of the variables; None when they do not coerce."""
        if not self.variable_definitions:
            return VariableValues({}, {})
        coerced = get_variable_values(self.schema, self.variable_definitions, variables or {})
        return None if isinstance(coerced, list) else coerced


async def _complete(field: _Field, value: Any) -> Any:
    if value is None or value is Undefined or isinstance(value, Exception):
        if field.non_null or value is not None:
            raise _Fallback
        return None
    if field.is_list:
        if not isinstance(value, list | tuple):
            raise _Fallback
        if field.apply_list is not None:
            return field.apply_list(value)
        items: list[Any] = []
        for item in value:
            if item is None:
                if field.item_non_null:
                    raise _Fallback
                items.append(None)
            elif field.leaf is not None:
                items.append(_coerce(field.leaf, item))
            else:
                assert field.children is not None
                items.append(await _object(field.children, item))
        return items
    if field.leaf is not None:
        return _coerce(field.leaf, value)
    assert field.children is not None
    return await _object(field.children, value)


def _coerce(leaf: _Leaf, value: Any) -> Any:
    if leaf.exact is not None and type(value) is leaf.exact:
        return value if leaf.table is None else leaf.table[id(value)]
    coerced = leaf.coerce(value)
    if coerced is None or coerced is Undefined:
        raise _Fallback
    return coerced


async def _object(children: tuple[_Field, ...], source: Any) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for child in children:
        if child.type_name is not None:
            result[child.key] = child.type_name
            continue
        if child.attribute is not None:
            value = getattr(source, child.attribute)
        else:
            assert child.resolver is not None
            value = child.resolver(source)
            if inspect.isawaitable(value):
                value = await value
        result[child.key] = await _complete(child, value)
    return result


def _is_awaitable(value: Any) -> TypeGuard[Awaitable[Any]]:
    return inspect.isawaitable(value)


# --- planning ------------------------------------------------------------------------

Rules = tuple[type[ASTValidationRule], ...]
_PLANS_MAX = 512
_plans: dict[tuple[Any, ...], Operation | None] = {}


def plan(
    schema: GraphQLSchema,
    query: str,
    operation_name: str | None,
    rules: Rules,
    max_tokens: int,
) -> Operation | None:
    """The operation planned for this document, or None when it is not plain (or does
    not parse or validate: the stock path answers it). `rules` are those added to
    graphql-core's specified rules for this request (schema.schema.limit_rules)."""
    key = (id(schema), query, operation_name, rules)
    try:
        return _plans[key]
    except KeyError:
        pass
    try:
        planned = _plan(schema, query, operation_name, rules, max_tokens)
    except Exception:
        planned = None
    if len(_plans) >= _PLANS_MAX:
        _plans.clear()
    _plans[key] = planned
    return planned


def _plan(
    schema: GraphQLSchema, query: str, operation_name: str | None, rules: Rules, max_tokens: int
) -> Operation | None:
    try:
        document = parse(query, max_tokens=max_tokens)
    except GraphQLError:
        return None
    if len(document.definitions) != 1:
        return None
    [operation] = document.definitions
    if not isinstance(operation, OperationDefinitionNode):
        return None
    if operation_name is not None and (operation.name is None or operation.name.value != operation_name):
        return None
    if validate_document(schema, document, (*specified_rules, *rules)):
        return None
    if operation.directives or any(d.directives for d in operation.variable_definitions or ()):
        return None
    if operation.operation is OperationType.QUERY:
        root_type = schema.query_type
    elif operation.operation is OperationType.MUTATION:
        root_type = schema.mutation_type
    else:
        return None
    if root_type is None:
        return None
    grouped = _collect(operation.selection_set)
    if grouped is None:
        return None
    roots = []
    for key, nodes in grouped.items():
        name = nodes[0].name.value
        if name == "__typename":
            roots.append(_Root(key, None, nodes, None, None, None))  # type: ignore[arg-type]
            continue
        field_def = root_type.fields.get(name)
        if field_def is None or field_def.resolve is None or name.startswith("__"):
            return None
        field = _field(key, field_def.type, nodes, None, None)
        if field is None:
            return None
        call = direct_call(getattr(schema, "_strawberry_schema", None), field_def)
        coerce_arguments = None
        if call is not None and len(nodes) == 1:
            given = {argument.name.value: argument.value for argument in nodes[0].arguments or ()}
            coerce_arguments = arguments_coercer(field_def, given)
        page = None
        if root_type is schema.query_type and name == "tasks" and _is_query_tasks(field_def):
            page = page_plan(nodes)
        roots.append(_Root(key, field_def, nodes, field, call, coerce_arguments, page))
    return Operation(schema, document, operation, root_type, tuple(roots))


def _is_query_tasks(field_def: GraphQLField) -> bool:
    definition = (field_def.extensions or {}).get("strawberry-definition")
    resolver = getattr(definition, "base_resolver", None)
    return resolver is not None and resolver.wrapped_func is Query.tasks


def _collect(selection_set: SelectionSetNode | None) -> dict[str, list[FieldNode]] | None:
    """Fields by response key, in order; None when there are fragments or directives."""
    if selection_set is None:
        return None
    grouped: dict[str, list[FieldNode]] = {}
    for selection in selection_set.selections:
        if not isinstance(selection, FieldNode) or selection.directives:
            return None
        key = selection.alias.value if selection.alias else selection.name.value
        grouped.setdefault(key, []).append(selection)
    return grouped


def _field(
    key: str,
    field_type: GraphQLOutputType,
    nodes: list[FieldNode],
    attribute: str | None,
    resolver: Callable[[Any], Any] | None,
) -> _Field | None:
    non_null = isinstance(field_type, GraphQLNonNull)
    inner = field_type.of_type if isinstance(field_type, GraphQLNonNull) else field_type
    is_list = isinstance(inner, GraphQLList)
    item_non_null = False
    if isinstance(inner, GraphQLList):
        item = inner.of_type
        item_non_null = isinstance(item, GraphQLNonNull)
        inner = item.of_type if isinstance(item, GraphQLNonNull) else item
        if isinstance(inner, GraphQLList):
            return None
    if is_leaf_type(inner):
        if any(node.selection_set for node in nodes):
            return None
        exact, table = _shortcut(inner)
        leaf = _Leaf(key, attribute, inner.coerce_output_value, exact, table, non_null)
        return _Field(key, "", non_null, attribute, resolver, leaf, None, None, is_list, item_non_null, None)
    if not isinstance(inner, GraphQLObjectType) or inner.is_type_of is not None:
        return None
    merged: dict[str, list[FieldNode]] = {}
    for node in nodes:
        grouped = _collect(node.selection_set)
        if grouped is None:
            return None
        for sub_key, sub_nodes in grouped.items():
            merged.setdefault(sub_key, []).extend(sub_nodes)
    children = []
    for sub_key, sub_nodes in merged.items():
        child = _child(inner, sub_key, sub_nodes)
        if child is None:
            return None
        children.append(child)
    apply_list = None
    if is_list and item_non_null and all(_plain_leaf(c) for c in children):
        leaves = tuple(
            _Leaf(c.key, None, str, str, None, True) if c.leaf is None else c.leaf for c in children
        )
        apply_list = _compile(leaves, inner.name)
    return _Field(
        key,
        "",
        non_null,
        attribute,
        resolver,
        None,
        tuple(children),
        None,
        is_list,
        item_non_null,
        apply_list,
    )


def _plain_leaf(field: _Field) -> bool:
    """__typename, or a scalar or enum attribute: what the compiled list functions cover."""
    if field.type_name is not None:
        return True
    return field.leaf is not None and not field.is_list and field.attribute is not None


def _child(object_type: GraphQLObjectType, key: str, nodes: list[FieldNode]) -> _Field | None:
    name = nodes[0].name.value
    if any(node.arguments for node in nodes):
        return None
    if name == "__typename":
        return _Field(key, name, True, None, None, None, None, object_type.name, False, False, None)
    field_def = object_type.fields.get(name)
    if field_def is None or field_def.args or field_def.subscribe is not None:
        return None
    attribute = _plain_attribute(field_def)
    resolver = None if attribute is not None else _self_only_resolver(field_def)
    if attribute is None and resolver is None:
        return None
    return _field(key, field_def.type, nodes, attribute, resolver)


def _self_only_resolver(field_def: GraphQLField) -> Callable[[Any], Awaitable[Any] | Any] | None:
    """The method behind a Strawberry field whose resolver takes only `self` (no info,
    no arguments, no field extensions or permissions): called with the source."""
    definition = (field_def.extensions or {}).get("strawberry-definition")
    if definition is None or definition.extensions or definition.base_resolver is None:
        return None
    if getattr(definition, "permission_classes", None):
        return None
    resolver = definition.base_resolver
    if resolver.arguments or resolver.info_parameter or resolver.root_parameter:
        return None
    if not resolver.self_parameter:
        return None
    function: Callable[[Any], Any] = resolver.wrapped_func
    return function
