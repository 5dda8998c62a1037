"""GraphQL cursor pagination: page sizes, page metadata, walks through ties, filters and
concurrent inserts."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from db.url import DatabaseURL
from tests.graphql.operations import LIST, create, ids_of, list_page, ok, rows_of
from tests.listing.data import (
    BASE,
    ORDERS,
    SORTS,
    expected_order,
    insert_tasks,
    spec,
    user_with_tasks,
)
from tests.support import LiveServer, db_fetch


def test_default_page_size_is_50(server: LiveServer, database: DatabaseURL) -> None:
    _, token = user_with_tasks(server, database, 60, "default-size")
    with server.client(token) as c:
        page = list_page(c)
        assert len(page["nodes"]) == 50
        assert page["pageInfo"]["hasNextPage"] is True
        assert page["totalCount"] == 60
        assert len(ok(c, LIST, {"first": None})["tasks"]["nodes"]) == 50


def walk(c: httpx.Client, sizes: list[int], total: int, **args: Any) -> list[int]:
    """Fetch page after page with the given sizes, checking each page's metadata."""
    seen: list[int] = []
    after = None
    for n, size in enumerate(sizes):
        page = list_page(c, first=size, after=after, **args)
        edges = page["edges"]
        info = page["pageInfo"]
        remaining = total - len(seen)
        assert len(edges) == min(size, remaining), (n, len(edges))
        assert page["totalCount"] == total
        assert info["hasPreviousPage"] is (after is not None)
        assert info["hasNextPage"] is (remaining > size)
        assert info["startCursor"] == edges[0]["cursor"]
        assert info["endCursor"] == edges[-1]["cursor"]
        seen += ids_of(page)
        after = info["endCursor"]
    end = list_page(c, first=10, after=after, **args)
    assert end["edges"] == [] and end["nodes"] == []
    assert end["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": True,
        "startCursor": None,
        "endCursor": None,
    }
    return seen


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("sort", SORTS)
def test_cursor_walk_250(
    server: LiveServer, database: DatabaseURL, big_user: tuple[str, str], sort: str, order: str
) -> None:
    user, token = big_user
    expected = expected_order(rows_of(database, user), sort, order)
    with server.client(token) as c:
        seen = walk(c, [100, 100, 50], 250, sort=sort, order=order)
        assert len(set(seen)) == 250, "a task was repeated"
        assert seen == expected
        # Small pages put page boundaries inside runs of equal sort keys.
        assert walk(c, [7] * 36, 250, sort=sort, order=order) == expected


def test_cursor_walk_with_filters(
    server: LiveServer, database: DatabaseURL, big_user: tuple[str, str]
) -> None:
    user, token = big_user
    rows = [
        r
        for r in rows_of(database, user)
        if not r["completed"]
        and ("alpha" in r["title"].lower() or "alpha" in (r["description"] or "").lower())
    ]
    expected = expected_order(rows, "DUE_DATE", "DESC")
    assert 20 < len(expected) < 100
    with server.client(token) as c:
        seen = walk(
            c,
            [6] * (len(expected) // 6 + 1),
            len(expected),
            sort="DUE_DATE",
            order="DESC",
            status="PENDING",
            search="ALPHA",
        )
    assert seen == expected


@pytest.mark.parametrize(
    ("sort", "order"),
    [("TITLE", "ASC"), ("CREATED", "DESC"), ("DUE_DATE", "DESC"), ("PRIORITY", "ASC"), ("UPDATED", "ASC")],
)
def test_cursor_walk_is_stable_under_inserts(
    server: LiveServer, database: DatabaseURL, sort: str, order: str
) -> None:
    user, token = user_with_tasks(server, database, 250, "stable")
    rows = rows_of(database, user)
    original = expected_order(rows, sort, order)
    by_id = {r["id"]: r for r in rows}
    seen: list[int] = []
    after = None
    with server.client(token) as c:
        for _ in range(10):
            page = list_page(c, sort=sort, order=order, first=100, after=after)
            seen += ids_of(page)
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
            last = db_fetch(database, "SELECT * FROM tasks WHERE id = $1", seen[-1])[0]
            # Exact copies of the last task seen (ties on every key, larger ids),
            # plus tasks that sort first and last, through the database and the API.
            copy = {k: last[k] for k in ("title", "description", "completed", "priority", "due_date")}
            insert_tasks(
                database,
                user,
                [
                    {**copy, "created_at": last["created_at"], "updated_at": last["updated_at"]},
                    {**spec(3), "title": "!first", "created_at": BASE, "updated_at": BASE},
                    {**spec(4), "title": "~~last", "created_at": BASE, "updated_at": BASE},
                ],
            )
            create(c, title="!!new", priority="LOW", dueDate="2000-01-01T00:00:00+00:00")
            create(c, title="~~~new", priority="HIGH")
        else:
            pytest.fail("the walk did not end")
    assert len(seen) == len(set(seen)), "a task was repeated"
    original_seen = [i for i in seen if i in by_id]
    assert original_seen == original, "an original task was skipped or moved"
    # Whatever new tasks showed up, the walk never went backwards.
    assert seen == [i for i in expected_order(rows_of(database, user), sort, order) if i in set(seen)]
