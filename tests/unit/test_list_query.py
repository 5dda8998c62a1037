"""rest_shim/query.py alone: GET /tasks's query string read as one ListQuery (no server;
parse_list_query gets a Starlette Request built from a scope)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi.exceptions import RequestValidationError
from starlette.requests import Request

from rest_shim.models import MAX_PAGE, ListQuery
from rest_shim.query import list_query, list_query_from_parameters, parse_list_query
from schema.types import SortOrder, TaskSortField, TaskStatusFilter

DEFAULTS = ListQuery()


def problems(params: dict[str, str]) -> list[tuple[tuple[Any, ...], str]]:
    """(loc, type) of each error, as FastAPI's handler would report them."""
    with pytest.raises(RequestValidationError) as refused:
        list_query(params)
    return [(tuple(e["loc"]), e["type"]) for e in refused.value.errors()]


def message(params: dict[str, str]) -> tuple[tuple[Any, ...], str]:
    with pytest.raises(RequestValidationError) as refused:
        list_query(params)
    (only,) = refused.value.errors()
    return tuple(only["loc"]), only["msg"]


def test_no_parameters_is_the_default_listing() -> None:
    query = list_query({})
    assert query == DEFAULTS
    assert (query.status, query.sort, query.order) == (TaskStatusFilter.ALL, TaskSortField.CREATED, None)
    assert (query.search, query.limit, query.offset, query.page) == (None, 100, 0, None)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "pending"}, {"status": TaskStatusFilter.PENDING}),
        ({"status": "completed"}, {"status": TaskStatusFilter.COMPLETED}),
        ({"status": "all"}, {"status": TaskStatusFilter.ALL}),
        ({"sort": "title"}, {"sort": TaskSortField.TITLE}),
        ({"sort": "due_date", "order": "desc"}, {"sort": TaskSortField.DUE_DATE, "order": SortOrder.DESC}),
        # field:direction in one parameter
        ({"sort": "created:asc"}, {"sort": TaskSortField.CREATED, "order": SortOrder.ASC}),
        ({"sort": "priority:desc"}, {"sort": TaskSortField.PRIORITY, "order": SortOrder.DESC}),
        # ...with an order that agrees
        ({"sort": "title:asc", "order": "asc"}, {"sort": TaskSortField.TITLE, "order": SortOrder.ASC}),
        ({"search": "milk"}, {"search": "milk"}),
        ({"limit": "25", "offset": "50"}, {"limit": 25, "offset": 50}),
        # page is offset in pages of limit
        ({"page": "1"}, {"page": 1, "offset": 0}),
        ({"page": "3", "limit": "20"}, {"page": 3, "limit": 20, "offset": 40}),
        ({"page": "2"}, {"page": 2, "offset": 100}),  # the default limit
        (
            {"page": str(MAX_PAGE), "limit": "500"},
            {"page": MAX_PAGE, "limit": 500, "offset": (MAX_PAGE - 1) * 500},
        ),
        # unknown parameters are ignored
        ({"foo": "bar", "_": "1712345678", "cursor": "x"}, {}),
    ],
)
def test_queries_read(params: dict[str, str], expected: dict[str, Any]) -> None:
    assert list_query(params) == DEFAULTS.model_copy(update=expected)


@pytest.mark.parametrize(
    ("params", "limit", "offset"),
    [
        ({"limit": "0"}, 0, 0),
        ({"limit": "100000"}, 100000, 0),
        ({"offset": "-1"}, 100, -1),
    ],
)
def test_ranges_are_left_to_the_resolver(params: dict[str, str], limit: int, offset: int) -> None:
    """ListQuery documents limit/offset bounds in OpenAPI, but checking them is the
    resolver's job (schema/validation.py check_page_size / check_offset)."""
    query = list_query(params)
    assert (query.limit, query.offset) == (limit, offset)


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"status": "done"}, ("query", "status")),
        ({"status": "PENDING"}, ("query", "status")),
        ({"sort": "name"}, ("query", "sort")),
        ({"sort": ":asc"}, ("query", "sort")),  # no field
        ({"order": "up"}, ("query", "order")),
        ({"limit": "ten"}, ("query", "limit")),
        ({"limit": "1.5"}, ("query", "limit")),
        ({"offset": ""}, ("query", "offset")),
        ({"page": "first"}, ("query", "page")),
    ],
)
def test_values_of_the_wrong_kind_are_refused_by_name(params: dict[str, str], loc: tuple[str, str]) -> None:
    assert [found for found, _ in problems(params)] == [loc]


def test_every_bad_parameter_is_reported_at_once() -> None:
    locs = [loc for loc, _ in problems({"status": "done", "limit": "x", "order": "sideways"})]
    assert sorted(locs) == [("query", "limit"), ("query", "order"), ("query", "status")]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"sort": "created:up"}, (("query", "sort"), "must be a field, or field:asc / field:desc")),
        ({"sort": "title:"}, (("query", "sort"), "must be a field, or field:asc / field:desc")),
        ({"sort": "title:ASC"}, (("query", "sort"), "must be a field, or field:asc / field:desc")),
        ({"sort": "title:asc:desc"}, (("query", "sort"), "must be a field, or field:asc / field:desc")),
        ({"sort": "title:asc", "order": "desc"}, (("query", "order"), "contradicts sort=title:asc")),
        ({"page": "2", "offset": "0"}, (("query", "page"), "give page or offset, not both")),
        ({"page": "0"}, (("query", "page"), f"must be between 1 and {MAX_PAGE}")),
        ({"page": "-1"}, (("query", "page"), f"must be between 1 and {MAX_PAGE}")),
        ({"page": str(MAX_PAGE + 1)}, (("query", "page"), f"must be between 1 and {MAX_PAGE}")),
    ],
)
def test_combinations_refused_with_their_message(
    params: dict[str, str], expected: tuple[tuple[str, str], str]
) -> None:
    assert message(params) == expected


# ------------------------------------------------------ the routes' dependencies agree


def request(query_string: bytes) -> Request:
    return Request(
        {"type": "http", "method": "GET", "path": "/tasks", "headers": [], "query_string": query_string}
    )


@pytest.mark.parametrize(
    ("query_string", "expected"),
    [
        (b"", {}),
        (
            b"sort=title%3Adesc&status=pending",
            {"sort": TaskSortField.TITLE, "order": SortOrder.DESC, "status": TaskStatusFilter.PENDING},
        ),
        (b"search=buy+milk%21", {"search": "buy milk!"}),
        (b"limit=5&limit=7", {"limit": 7}),  # a repeated parameter: its last value, as FastAPI reads it
        (b"page=2&limit=10&unknown=1", {"page": 2, "limit": 10, "offset": 10}),
    ],
)
def test_the_whole_query_string_dependency(query_string: bytes, expected: dict[str, Any]) -> None:
    assert asyncio.run(parse_list_query(request(query_string))) == DEFAULTS.model_copy(update=expected)


def test_the_whole_query_string_dependency_refuses_like_list_query() -> None:
    with pytest.raises(RequestValidationError) as refused:
        asyncio.run(parse_list_query(request(b"sort=title:asc&order=desc")))
    assert [e["loc"] for e in refused.value.errors()] == [("query", "order")]


@pytest.mark.parametrize(
    "params",
    [{}, {"sort": "due_date:asc", "limit": "3"}, {"page": "4", "status": "completed", "search": "x"}],
)
def test_the_per_parameter_dependency_reads_the_same(params: dict[str, str]) -> None:
    assert asyncio.run(list_query_from_parameters(**params)) == list_query(params)
