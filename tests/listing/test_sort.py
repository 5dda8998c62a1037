"""Sort keys and orders, with ties broken by id, on both interfaces; GraphQL's defaults."""

from __future__ import annotations

from typing import Any

import pytest

from db.url import DatabaseURL
from tests.graphql.operations import LIST, ids_of, ok, rows_of
from tests.listing.data import (
    DEFAULT_ORDER,
    ORDERS,
    SORTS,
    expected_order,
)
from tests.listing.interfaces import ListingClient
from tests.support import LiveServer


@pytest.mark.parametrize("order", [*ORDERS, None])
@pytest.mark.parametrize("sort", [*SORTS, None])
def test_sort_order(
    client: ListingClient,
    database: DatabaseURL,
    sort_user: tuple[str, str],
    sort: str | None,
    order: str | None,
) -> None:
    user, token = sort_user
    effective_sort = sort or "CREATED"
    rows = rows_of(database, user)
    expected = expected_order(rows, effective_sort, order or DEFAULT_ORDER[effective_sort])
    page = client.as_user(token).page(sort=sort, order=order, limit=100)
    assert page.ids == expected
    assert page.total == len(rows)
    assert page.has_next is False


@pytest.mark.parametrize("explicit_null", [False, True])
@pytest.mark.parametrize("sort", [*SORTS, None])
def test_default_order(
    server: LiveServer,
    database: DatabaseURL,
    sort_user: tuple[str, str],
    sort: str | None,
    explicit_null: bool,
) -> None:
    user, token = sort_user
    expected = expected_order(rows_of(database, user), sort or "CREATED", DEFAULT_ORDER[sort or "CREATED"])
    variables: dict[str, Any] = {"first": 100}
    if sort is not None:
        variables["sort"] = sort
    if explicit_null:
        variables["order"] = None
    with server.client(token) as c:
        page: dict[str, Any] = ok(c, LIST, variables)["tasks"]
    assert ids_of(page) == expected
