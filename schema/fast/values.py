"""Variables and root arguments coerced by plan-made functions (part of shortcut 7 in
schema/fast/__init__.py), for the shapes that are common and simple: variables of a
scalar type without a default, and root arguments that are constants, bare variables
or input-object literals whose fields are constants or bare variables. Each function
does what graphql-core's get_variable_values / get_argument_values would for them, and
answers None — "ask graphql-core" — for anything else, every error included (the
caller then runs graphql-core's own function, which gives the stock outcome).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLNonNull,
    GraphQLScalarType,
    GraphQLSchema,
    ListValueNode,
    NamedTypeNode,
    NonNullTypeNode,
    ObjectValueNode,
    Undefined,
    ValueNode,
    VariableDefinitionNode,
    VariableNode,
    get_named_type,
    is_required_argument,
    is_required_input_field,
    specified_scalar_types,
)
from graphql.utilities.coerce_input_value import coerce_default_value, coerce_input_literal

Variables = Callable[[dict[str, Any]], dict[str, Any] | None]
Arguments = Callable[[dict[str, Any]], dict[str, Any] | None]


def variables_coercer(
    schema: GraphQLSchema, definitions: tuple[VariableDefinitionNode, ...]
) -> Variables | None:
    """For `$a: Scalar` / `$a: Scalar!` definitions without defaults: the coerced values
    (what get_variable_values puts in `.coerced`), or None when graphql-core must answer."""
    specs = []
    for definition in definitions:
        if definition.default_value is not None or definition.directives:
            return None
        type_node = definition.type
        non_null = isinstance(type_node, NonNullTypeNode)
        named_node = type_node.type if isinstance(type_node, NonNullTypeNode) else type_node
        if not isinstance(named_node, NamedTypeNode):
            return None
        scalar = schema.get_type(named_node.name.value)
        if not isinstance(scalar, GraphQLScalarType) or not _immutable_input(scalar):
            return None  # (a scalar taking nested values would have graphql-core's depth check)
        specs.append((definition.variable.name.value, scalar.coerce_input_value, non_null))
    plan = tuple(specs)

    def coerce(inputs: dict[str, Any]) -> dict[str, Any] | None:
        coerced: dict[str, Any] = {}
        for name, coerce_value, non_null in plan:
            value = inputs.get(name, Undefined)
            if value is Undefined or value is None:
                if non_null:
                    return None
                if value is None:
                    coerced[name] = None
                continue
            try:
                result = coerce_value(value)
            except Exception:
                return None
            if result is Undefined:
                return None
            coerced[name] = result
        return coerced

    return coerce


def arguments_coercer(field_def: GraphQLField, arguments: dict[str, ValueNode]) -> Arguments | None:
    try:
        return _arguments_coercer(field_def, arguments)
    except Exception:  # a default that does not coerce, ...: graphql-core's errors
        return None


def _arguments_coercer(field_def: GraphQLField, arguments: dict[str, ValueNode]) -> Arguments | None:
    """The root field's coerced arguments from the coerced variables (what
    get_argument_values gives), or None when graphql-core must answer. Only for
    argument types whose values are immutable or rebuilt by schema/fast/arguments.py's
    conversion (constants are shared by every request)."""
    steps: list[Callable[[dict[str, Any], dict[str, Any]], bool]] = []
    for name, arg_def in field_def.args.items():
        if arg_def.out_name is not None or not _immutable_input(arg_def.type):
            return None
        node = arguments.get(name)
        if node is None:
            if is_required_argument(arg_def):
                return None
            steps.append(_constant(name, coerce_default_value(arg_def)))
        elif isinstance(node, VariableNode):
            required = is_required_argument(arg_def)
            default = Undefined if required else coerce_default_value(arg_def)
            non_null = isinstance(arg_def.type, GraphQLNonNull)
            steps.append(_field_variable(name, node.name.value, non_null, required, default))
        elif not _has_variable(node):
            value = coerce_input_literal(node, arg_def.type)
            if value is Undefined:
                return None
            steps.append(_constant(name, value))
        else:
            step = _object(name, arg_def.type, node)
            if step is None:
                return None
            steps.append(step)
    plan = tuple(steps)

    def coerce(variables: dict[str, Any]) -> dict[str, Any] | None:
        out: dict[str, Any] = {}
        for step in plan:
            if not step(variables, out):
                return None
        return out

    if all(getattr(step, "constant", False) for step in plan):
        fixed = coerce({})
        assert fixed is not None
        return lambda variables: dict(fixed)  # no variable can change them: coerced once
    return coerce


def _constant(key: str, value: Any) -> Callable[[dict[str, Any], dict[str, Any]], bool]:
    def put(variables: dict[str, Any], out: dict[str, Any]) -> bool:
        if value is not Undefined:
            out[key] = value
        return True

    put.constant = True  # type: ignore[attr-defined]
    return put


def _object(
    key: str, type_: GraphQLInputType, node: ValueNode
) -> Callable[[dict[str, Any], dict[str, Any]], bool] | None:
    """An input-object literal whose fields are constants or bare variables."""
    inner = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
    if not isinstance(node, ObjectValueNode) or not isinstance(inner, GraphQLInputObjectType):
        return None
    if inner.is_one_of or inner.out_type is not GraphQLInputObjectType.out_type:
        return None
    nodes = {field.name.value: field.value for field in node.fields}
    if any(name not in inner.fields for name in nodes):
        return None
    fields: list[Callable[[dict[str, Any], dict[str, Any]], bool]] = []
    for name, field in inner.fields.items():
        if field.out_name is not None:
            return None
        value_node = nodes.get(name)
        required = is_required_input_field(field)
        default = Undefined if required else coerce_default_value(field)
        if value_node is None:
            if required:
                return None
            fields.append(_constant(name, default))
        elif isinstance(value_node, VariableNode):
            non_null = isinstance(field.type, GraphQLNonNull)
            fields.append(_field_variable(name, value_node.name.value, non_null, required, default))
        elif _has_variable(value_node):
            return None
        else:
            value = coerce_input_literal(value_node, field.type)
            if value is Undefined:
                return None
            fields.append(_constant(name, value))
    plan = tuple(fields)

    def put(variables: dict[str, Any], out: dict[str, Any]) -> bool:
        built: dict[str, Any] = {}
        for step in plan:
            if not step(variables, built):
                return False
        out[key] = built
        return True

    return put


def _field_variable(
    name: str, variable: str, non_null: bool, required: bool, default: Any
) -> Callable[[dict[str, Any], dict[str, Any]], bool]:
    """A bare variable, as coerce_argument / coerce_input_literal take it for an argument
    or an input-object field: left out -> the default, if any (required: an error);
    null where non-null: an error; else its coerced value. Errors: ask graphql-core."""

    def put(variables: dict[str, Any], out: dict[str, Any]) -> bool:
        value = variables.get(variable, Undefined)
        if value is Undefined:
            if required:
                return False
            if default is not Undefined:
                out[name] = default
            return True
        if value is None and non_null:
            return False
        out[name] = value
        return True

    return put


def _has_variable(value: ValueNode) -> bool:
    if isinstance(value, VariableNode):
        return True
    if isinstance(value, ListValueNode):
        return any(_has_variable(item) for item in value.values)
    if isinstance(value, ObjectValueNode):
        return any(_has_variable(field.value) for field in value.fields)
    return False


# Strawberry's own, parsed to datetime, date and time objects
_STRAWBERRY_DATE_SCALARS = frozenset({"DateTime", "Date", "Time"})


def _immutable_input(type_: GraphQLInputType, visiting: frozenset[str] = frozenset()) -> bool:
    named = get_named_type(type_)
    if isinstance(named, GraphQLEnumType):
        return True
    if isinstance(named, GraphQLScalarType):
        if named is specified_scalar_types.get(named.name):
            return True  # str, int, float, bool
        return named.name in _STRAWBERRY_DATE_SCALARS and named.coerce_input_value.__module__.startswith(
            "strawberry."
        )
    if isinstance(named, GraphQLInputObjectType):
        if named.name in visiting:
            return False
        return all(_immutable_input(f.type, visiting | {named.name}) for f in named.fields.values())
    return False
