"""REST offset pagination: limit/offset, X-Total-Count, the Link to the next page, and the
listing's query parameters refused with a 400."""

from __future__ import annotations

import re

import pytest

from db.url import DatabaseURL
from tests.graphql.operations import rows_of
from tests.listing.data import (
    expected_order,
)
from tests.support import LiveServer, json_of

LINK_NEXT = re.compile(r'^<(?P<url>[^>]+)>; rel="next"$')


@pytest.mark.parametrize(
    ("params", "sort", "order"),
    [
        ("", "CREATED", "DESC"),
        ("&sort=title&order=desc", "TITLE", "DESC"),
        ("&sort=due_date", "DUE_DATE", "ASC"),
    ],
)
def test_rest_offset_walk(
    server: LiveServer, database: DatabaseURL, big_user: tuple[str, str], params: str, sort: str, order: str
) -> None:
    user, token = big_user
    expected = expected_order(rows_of(database, user), sort, order)
    seen: list[int] = []
    sizes: list[int] = []
    url: str | None = f"/api/tasks?limit=100&offset=0{params}"
    with server.client(token) as c:
        while url is not None:
            assert len(sizes) < 5, "the Link chain does not end"
            r = c.get(url)
            assert r.status_code == 200, r.text
            assert r.headers["X-Total-Count"] == "250"
            page = r.json()
            sizes.append(len(page))
            seen += [t["id"] for t in page]
            link = r.headers.get("Link")
            if link is None:
                url = None
            else:
                match = LINK_NEXT.match(link)
                assert match, link
                url = match.group("url")
                assert f"offset={len(seen)}" in url and "limit=100" in url, url
                for part in params.split("&")[1:]:
                    assert part in url, (part, url)
    assert sizes == [100, 100, 50]
    assert seen == expected


def test_list_filters_headers_and_limits(token: str, server: LiveServer) -> None:
    with server.client(token) as c:
        ids = [c.post("/api/tasks", json={"title": f"t{i}"}).json()["id"] for i in range(5)]
        for task_id in ids[:2]:
            c.patch(f"/api/tasks/{task_id}/complete").raise_for_status()
        r = c.get("/api/tasks")
        assert r.status_code == 200
        assert [t["id"] for t in r.json()] == ids[::-1]
        assert r.headers["x-total-count"] == "5"
        assert "link" not in r.headers
        pending = c.get("/api/tasks", params={"status": "pending"})
        assert [t["id"] for t in pending.json()] == ids[:1:-1]
        assert pending.headers["x-total-count"] == "3"
        done = c.get("/api/tasks", params={"status": "completed", "order": "asc"})
        assert [t["id"] for t in done.json()] == ids[:2]
        page = c.get("/api/tasks", params={"limit": 2, "offset": 1})
        assert [t["id"] for t in page.json()] == [ids[3], ids[2]]
        assert page.headers["x-total-count"] == "5"
        assert 'rel="next"' in page.headers["link"] and "offset=3" in page.headers["link"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"status": "done"}, "status"),
        ({"sort": "colour"}, "sort"),
        ({"order": "up"}, "order"),
        ({"search": "x" * 201}, "search"),
    ],
)
def test_list_query_validation(
    token: str, server: LiveServer, params: dict[str, str | int], field: str
) -> None:
    with server.client(token) as c:
        r = c.get("/api/tasks", params=params)
    assert r.status_code == 400
    assert json_of(r)["errors"][0]["field"] == field


def test_total_count_on_last_and_past_the_end_pages(token: str, server: LiveServer) -> None:
    with server.client(token) as c:
        for i in range(5):
            c.post("/api/tasks", json={"title": f"t{i}", "completed": i % 2 == 0}).raise_for_status()
        last = c.get("/api/tasks", params={"limit": 10, "offset": 3})
        assert len(last.json()) == 2 and last.headers["x-total-count"] == "5"
        beyond = c.get("/api/tasks", params={"limit": 10, "offset": 50})
        assert beyond.json() == [] and beyond.headers["x-total-count"] == "5"
        done = c.get("/api/tasks", params={"status": "completed", "limit": 2, "offset": 2})
        assert len(done.json()) == 1 and done.headers["x-total-count"] == "3"
        assert "link" not in done.headers
