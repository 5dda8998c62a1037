"""api/graphql.py alone: the Accept negotiation of the GraphQL endpoint, and which results
are request errors (no server)."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import GraphQLError
from hypothesis import given
from hypothesis import strategies as st
from strawberry.types import ExecutionResult

from api.graphql import GRAPHQL_RESPONSE_JSON, JSON, is_request_error, response_media_type

GRJ = GRAPHQL_RESPONSE_JSON


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        # legacy clients: application/json
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        ("application/json", JSON),
        ("text/html", JSON),  # nothing this endpoint produces: the spec's legacy answer
        ("text/plain, image/*", JSON),
        ("application/*", JSON),  # both match equally: the legacy type
        ("application/json, */*", JSON),
        # asked for by name
        (GRJ, GRJ),
        (f"{GRJ}; charset=utf-8", GRJ),
        ("Application/GraphQL-Response+JSON", GRJ),  # media types are case-insensitive
        (f"  {GRJ}  ", GRJ),
        # the same q: the earlier of two full names
        (f"{GRJ}, {JSON}", GRJ),
        (f"{JSON}, {GRJ}", JSON),
        (f"{GRJ};q=0.5, {JSON};q=0.5", GRJ),
        (f"{JSON};q=0.5, {GRJ};q=0.5", JSON),
        # a higher q wins, whatever the order
        (f"{JSON};q=0.9, {GRJ}", GRJ),
        (f"{GRJ};q=0.9, {JSON}", JSON),
        (f"{JSON};q=0.1, {GRJ};q=0.2", GRJ),
        (f"{GRJ};q=0.8, {JSON};q=0.9", JSON),
        (f"{GRJ} ; Q=0.9 , {JSON}", JSON),  # parameter names are case-insensitive, spaces allowed
        # the same q: a type named in full beats a range, wherever it is
        (f"*/*, {GRJ}", GRJ),
        (f"application/*, {GRJ}", GRJ),
        (f"{GRJ}, application/*", GRJ),
        (f"{GRJ};q=0.5, */*;q=0.5", GRJ),
        # ...but a range at a higher q still wins over a lower named one
        (f"{GRJ};q=0.5, */*", JSON),
        # the most specific range decides a type's q (RFC 9110): q=0 refuses it
        (f"{GRJ};q=0, */*", JSON),
        (f"*/*, {GRJ};q=0", JSON),
        # application/json refused by name, GRJ reached through a range
        (f"{JSON};q=0, */*", GRJ),
        (f"{JSON};q=0, application/*;q=0.1", GRJ),
        # nothing acceptable at all: the legacy answer
        (f"{GRJ};q=0, {JSON};q=0", JSON),
        (f"{GRJ};q=0", JSON),
        # q values that are not q values count as 0
        (f"{GRJ};q=nan", JSON),
        (f"{GRJ};q=NaN, {JSON};q=0.1", JSON),
        (f"{GRJ};q=abc", JSON),
        (f"{GRJ};q=", JSON),
        (f"{GRJ};q=1.5", JSON),
        (f"{GRJ};q=-0.5", JSON),
        (f"{GRJ};q=inf", JSON),
        (f"{JSON};q=nan, {GRJ};q=0.01", GRJ),
        (f"{JSON};q=2, {GRJ};q=0.01", GRJ),
        # other parameters are not q
        (f"{GRJ};level=0, {JSON}", GRJ),
        (f"{GRJ};charset=utf-8;q=0.7, {JSON};q=0.6", GRJ),
    ],
)
def test_accept_negotiation(accept: str | None, expected: str) -> None:
    assert response_media_type(accept) == expected


ACCEPT_ITEMS = st.sampled_from([GRJ, JSON, "*/*", "application/*", "text/html", "image/png"])
Q_VALUES = st.sampled_from(["", ";q=0", ";q=0.5", ";q=1", ";q=nan", ";q=x"])


@given(st.lists(st.tuples(ACCEPT_ITEMS, Q_VALUES), max_size=6))
def test_the_answer_is_always_one_of_the_two_and_json_without_a_graphql_range(
    items: list[tuple[str, str]],
) -> None:
    accept = ", ".join(kind + q for kind, q in items)
    answer = response_media_type(accept)
    assert answer in (JSON, GRJ)
    if not any(kind in (GRJ, "*/*", "application/*") for kind, _ in items):
        assert answer == JSON


# ---------------------------------------------------------------------- is_request_error


def error(path: list[str | int] | None = None, code: str | None = None) -> GraphQLError:
    return GraphQLError("boom", path=path, extensions=None if code is None else {"code": code})


@pytest.mark.parametrize(
    ("data", "errors", "expected"),
    [
        # nothing executed: parsing, validation, variable coercion
        (None, [error()], True),
        (None, [error(code="GRAPHQL_PARSE_FAILED")], True),
        (None, [error(code="BAD_USER_INPUT"), error(code="GRAPHQL_VALIDATION_FAILED")], True),
        # no errors: not an error at all
        (None, None, False),
        (None, [], False),
        ({"tasks": []}, None, False),
        # executed: data, or errors with a path
        ({"task": None}, [error(["task"], "NOT_FOUND")], False),
        (None, [error(["tasks"], "UNAUTHENTICATED")], False),  # nulled all of data
        (None, [error(), error(["tasks", 0, "title"])], False),
        ({}, [error()], False),
        # an internal failure outside any field is not the client's
        (None, [error(code="INTERNAL_SERVER_ERROR")], False),
        (None, [error(code="BAD_USER_INPUT"), error(code="INTERNAL_SERVER_ERROR")], False),
    ],
)
def test_request_errors(
    data: dict[str, Any] | None, errors: list[GraphQLError] | None, expected: bool
) -> None:
    assert is_request_error(ExecutionResult(data=data, errors=errors)) is expected
