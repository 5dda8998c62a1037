"""Root resolvers called directly (part of shortcut 7 in schema/fast/__init__.py).

Strawberry's resolver wrapper converts graphql-core's coerced arguments on every call
(`convert_arguments`: the name converter, `resolve_type` of every input field,
isinstance checks per value) and then calls the field's function. For a field whose
wrapper can do nothing else — no field extensions (permission classes are one), no
exception handlers on the schema, an argument type made only of scalars, enums,
lists, optionals and plain input classes — `direct_call` builds that conversion once
and returns a function calling the user's function as the wrapper would: the same
keyword arguments (an omitted argument left out, so its Python default applies; an
input field left out gets its default, or None when it has none; a null stays None),
the same Strawberry Info, `self`/`root`/`parent` given the root value (None).
Anything else: None, and the caller keeps calling Strawberry's resolver.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING
from typing import Any

from graphql import GraphQLField, GraphQLResolveInfo
from strawberry.relay.types import GlobalID
from strawberry.types.arguments import _is_leaf_type, _is_optional_leaf_type
from strawberry.types.base import StrawberryList, StrawberryMaybe, StrawberryOptional, has_object_definition
from strawberry.types.enum import has_enum_definition
from strawberry.types.unset import UNSET

Converter = Callable[[Any], Any]
DirectCall = Callable[[GraphQLResolveInfo[Any], dict[str, Any]], Any]


def direct_call(strawberry_schema: Any, field_def: GraphQLField) -> DirectCall | None:
    """A function (raw info, coerced arguments) -> what Strawberry's resolver for this
    root field would return (maybe an awaitable), or None when only that resolver will do."""
    definition = (field_def.extensions or {}).get("strawberry-definition")
    if strawberry_schema is None or definition is None or definition.base_resolver is None:
        return None
    if definition.extensions or getattr(definition, "permission_classes", None):
        return None
    if getattr(strawberry_schema, "exception_handlers", ()) or definition.is_subscription:
        return None
    resolve = field_def.resolve
    if resolve is None or not resolve.__qualname__.startswith("GraphQLCoreConverter.from_resolver."):
        return None
    resolver = definition.base_resolver
    function = resolver.wrapped_func
    if not callable(function) or resolver.parent_parameter is not None:
        return None
    config = strawberry_schema.config
    registry = strawberry_schema.schema_converter.scalar_registry
    specs: list[tuple[str, str, Converter]] = []
    for argument in definition.arguments:
        converter = _converter(argument.type, registry, config)
        if converter is None or not argument.python_name:
            return None
        specs.append((config.name_converter.from_argument(argument), argument.python_name, converter))
    positional = (None,) if resolver.self_parameter else ()
    fixed: dict[str, Any] = {}
    if resolver.root_parameter is not None:
        fixed[resolver.root_parameter.name] = None
    info_name = resolver.info_parameter.name if resolver.info_parameter is not None else None
    info_class = config.info_class
    arguments = tuple(specs)

    def call(info: GraphQLResolveInfo[Any], args: dict[str, Any]) -> Any:
        kwargs = {python: convert(args[name]) for name, python, convert in arguments if name in args}
        if fixed:
            kwargs.update(fixed)
        if info_name is not None:
            kwargs[info_name] = info_class(_raw_info=info, _field=definition)
        return function(*positional, **kwargs)

    return call


def _same(value: Any) -> Any:
    return value


def _converter(type_: Any, registry: Any, config: Any) -> Converter | None:
    """strawberry.types.arguments.convert_argument for this type, decided once; None for
    the types it handles otherwise (Maybe, GlobalID, lazy, from_input, unions, ...)."""
    if isinstance(type_, StrawberryMaybe):
        return None
    if isinstance(type_, StrawberryOptional):
        return _converter(type_.of_type, registry, config)
    if isinstance(type_, StrawberryList):
        item = type_.of_type
        if _is_leaf_type(item, registry, skip_classes=(GlobalID,)) or _is_optional_leaf_type(
            item, registry, skip_classes=(GlobalID,)
        ):
            return _copied_list
        convert_item = _converter(item, registry, config)
        if convert_item is None:
            return None

        def convert_list(value: Any) -> Any:
            if value is None or value is UNSET:
                return value
            return [convert_item(x) for x in value]

        return convert_list
    if type_ is GlobalID:
        return None
    if _is_leaf_type(type_, registry) or has_enum_definition(type_):
        return _same  # None and UNSET included
    if not has_object_definition(type_) or not isinstance(type_, type):
        return None
    definition = type_.__strawberry_definition__
    if definition.from_input is not None or definition.is_graphql_generic:
        return None
    defaults: dict[str, Any] = {}
    if definition.is_input:
        defaults = {
            f.python_name: None
            for f in definition.fields
            if f.default_value is MISSING and f.default_factory is MISSING
        }
    fields = []
    for f in definition.fields:
        convert_field = _converter(f.resolve_type(type_definition=definition), registry, config)
        if convert_field is None:
            return None
        fields.append((config.name_converter.from_field(f), f.python_name, convert_field))
    input_fields = tuple(fields)
    cls = type_

    def convert_object(value: Any) -> Any:
        if value is None or value is UNSET:
            return value
        kwargs = dict(defaults)
        for graphql_name, python_name, convert in input_fields:
            if graphql_name in value:
                kwargs[python_name] = convert(value[graphql_name])
        return cls(**kwargs)

    return convert_object


def _copied_list(value: Any) -> Any:
    if value is None or value is UNSET:
        return value
    return list(value)
