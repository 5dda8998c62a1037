"""Listing behaviour (filters, sort, order, pagination, search, totals), written once and run
against both interfaces: `client` is parametrized ["rest", "graphql"] and speaks the
contract's names (status ALL/PENDING/COMPLETED, sort CREATED/.../PRIORITY, order ASC/DESC),
translating them to `GET /api/tasks` query parameters or to the `tasks` query's variables.

`server` is the service once on each path (`app_path`: fast, stock); see tests/conftest.py.
The data users below are module-scoped: made once per module and path.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from db.url import DatabaseURL
from tests.graphql.operations import UPDATE, create, ok, rows_of
from tests.listing.data import FilterUser, user_with_tasks
from tests.listing.interfaces import ListingClient
from tests.support import LiveServer, hs_token, unique_user


@pytest.fixture(scope="module")
def server(server_on_both_paths: LiveServer) -> LiveServer:
    return server_on_both_paths


@pytest.fixture(params=["rest", "graphql"])
def client(request: pytest.FixtureRequest, server: LiveServer, token: str) -> Iterator[ListingClient]:
    """The listing through REST or GraphQL, as a fresh user (`token`)."""
    listing = ListingClient(str(request.param), server, token)
    yield listing
    listing.close()


# --------------------------------------------------------------------------- data users

FILTER_TASKS = [
    # title, description, completed
    ("Buy MILK", None, False),
    ("call mom", "About the 50% discount", True),
    ("500 reasons", None, False),
    ("pay_bill", "under_score", False),
    ("payXbill", "underXscore", True),
    ("Plain", "milk and honey", True),
    ("100% done", None, False),
    ("back\\slash", "c:\\temp", True),
    ("Other", "x_y", False),
]


@pytest.fixture(scope="module")
def filter_user(server: LiveServer) -> FilterUser:
    token = hs_token(unique_user("filter"))
    tasks = {}
    with server.client(token) as c:
        for title, description, completed in FILTER_TASKS:
            task = create(c, title=title, description=description, completed=completed)
            tasks[int(task["id"])] = (title, description, completed)
    return token, tasks


@pytest.fixture(scope="module")
def sort_user(server: LiveServer, database: DatabaseURL) -> tuple[str, str]:
    """About forty tasks, with ties on every sort key; some made through the API."""
    user, token = user_with_tasks(server, database, 36, "sort")
    with server.client(token) as c:
        create(c, title="alpha", priority="LOW")  # ties on title and priority
        later = create(c, title="Mid", priority="MEDIUM", dueDate="2024-01-02T00:00:00+00:00")
        create(c, title="zz", dueDate="2023-12-31T23:00:00-01:00")  # the same instant as BASE
        ok(c, UPDATE, {"id": later["id"], "input": {"description": "touched"}})
    return user, token


@pytest.fixture(scope="module")
def big_user(server: LiveServer, database: DatabaseURL) -> tuple[str, str]:
    user, token = user_with_tasks(server, database, 250, "big")
    assert len(rows_of(database, user)) == 250
    return user, token
