"""Query strings read as one Pydantic model.

The list's parameters are validated together against ListQuery, which also
describes them in OpenAPI, so the documentation cannot drift from what is read.
The routes get the query string whole (rest_shim/fast.py); with FAST_PATHS=false,
FastAPI reads each parameter (list_query_from_parameters) and the rules are the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Depends
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from rest_shim.fast import whole_query_string
from rest_shim.models import MAX_PAGE, ListQuery


def list_query(given: Mapping[str, str]) -> ListQuery:
    """The list's query from the parameters given (unknown ones are ignored)."""
    params = dict(given)
    sort = params.get("sort")
    if sort is not None and ":" in sort:
        # `sort=created:desc`: the field and the direction in one parameter.
        field, _, direction = sort.partition(":")
        if direction not in ("asc", "desc"):
            raise _invalid("sort", "must be a field, or field:asc / field:desc")
        if params.get("order", direction) != direction:
            raise _invalid("order", f"contradicts sort={sort}")
        params["sort"], params["order"] = field, direction
    try:
        query = ListQuery.model_validate(params)
    except ValidationError as error:
        # The same error path as FastAPI's own parameters: a 400 naming each field.
        errors = error.errors(include_url=False, include_context=False)
        raise RequestValidationError([{**e, "loc": ("query", *e["loc"])} for e in errors]) from None
    if query.page is not None:
        # `page` (1-based) with `limit`: what paginated frontends send instead of offset.
        if "offset" in params:
            raise _invalid("page", "give page or offset, not both")
        if not 1 <= query.page <= MAX_PAGE:
            raise _invalid("page", f"must be between 1 and {MAX_PAGE}")
        query = query.model_copy(update={"offset": (query.page - 1) * query.limit})
    return query


# What the routes depend on: the query string read whole (rest_shim/fast.py).
parse_list_query = whole_query_string(list_query)


async def list_query_from_parameters(
    status: str | None = None,
    sort: str | None = None,
    order: str | None = None,
    search: str | None = None,
    limit: str | None = None,
    offset: str | None = None,
    page: str | None = None,
) -> ListQuery:
    """parse_list_query with each parameter read by FastAPI: what the app depends on
    instead with FAST_PATHS=false (through dependency_overrides, so that OpenAPI
    still documents the parameters from ListQuery)."""
    given = {"status": status, "sort": sort, "order": order, "search": search}
    given |= {"limit": limit, "offset": offset, "page": page}
    return list_query({name: value for name, value in given.items() if value is not None})


def _invalid(field: str, message: str) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": ("query", field), "msg": message}])


ListParams = Annotated[ListQuery, Depends(parse_list_query)]


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """OpenAPI `parameters` for a model read from the query string."""
    schema = model.model_json_schema()
    definitions = schema.get("$defs", {})
    parameters = []
    for name, prop in schema["properties"].items():
        prop = _inline_refs(prop, definitions)
        parameter = {"name": name, "in": "query", "required": False, "schema": prop}
        if "description" in prop:
            parameter["description"] = prop["description"]
        parameters.append(parameter)
    return parameters


def _inline_refs(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return {**_inline_refs(definitions[ref.removeprefix("#/$defs/")], definitions), **rest}
        return {k: _inline_refs(v, definitions) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline_refs(v, definitions) for v in node]
    return node
