"""How GraphQL requests travel: the plain-JSON short path answers as Strawberry's full path
does, and GET serves queries but refuses mutations."""

from __future__ import annotations

import pytest

from tests.graphql.operations import (
    ids_of,
    list_page,
)
from tests.support import LiveServer, hs_token, unique_user

SHORT_PATH_CASES = [
    b'{"query": "{ me { id } }"}',
    b'{"query": "{ tasks(first: 2) { nodes { id title } totalCount } }"}',
    b'{"query": "query Q($n: Int) { tasks(first: $n) { nodes { id } } }", "variables": {"n": 1}}',
    b'{"query": "query Q($n: Int) { tasks(first: $n) { nodes { id } } }", "variables": {"n": "x"}}',
    b'{"query": "mutation { createTask(input: {title: \\"  \\"}) { id } }"}',
    b'{"query": "{ nope }"}',
    b'{"query": "{ me { id } ", "operationName": null}',
    b'{"query": "query A { me { id } } query B { me { name } }", "operationName": "B"}',
    b'{"query": "query A { me { id } }", "operationName": "Nope"}',
    b'{"query": "{ me { id } }", "extensions": {"x": 1}}',
    b'{"query": "{ me { id } }", "operationName": 5}',
    b'{"query": "{ me { id } }", "unknown": 1}',
    b'{"query": null}',
    b"[]",
    b'{"query": "{ me { id } }"',
    b"\xff\xfe",
]


@pytest.mark.parametrize("accept", ["*/*", "application/graphql-response+json"])
@pytest.mark.parametrize("body", SHORT_PATH_CASES)
def test_plain_json_posts_are_answered_as_by_strawberrys_full_path(
    server: LiveServer, body: bytes, accept: str
) -> None:
    """`Content-Type: application/json` takes the view's short path; with a charset it
    goes through Strawberry's full run(). Both must give the same answer, whatever the
    body (successes, GraphQL errors, transport refusals) and media type asked for."""
    user = unique_user("short")
    with server.client(hs_token(user)) as c:
        headers = {"accept": accept}
        short = c.post("/graphql", content=body, headers={**headers, "content-type": "application/json"})
        full = c.post(
            "/graphql", content=body, headers={**headers, "content-type": "application/json; charset=utf-8"}
        )
    assert (short.status_code, short.headers["content-type"]) == (
        full.status_code,
        full.headers["content-type"],
    )
    assert short.json() == full.json(), body


def test_the_short_path_is_taken_only_for_plain_json_posts() -> None:
    from starlette.requests import Request

    from schema.fast.http import plain_json_post as _plain_json_post

    def request(method: str, **headers: str) -> Request:
        raw = [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
        return Request(
            {"type": "http", "method": method, "headers": raw, "path": "/graphql", "query_string": b""}
        )

    assert _plain_json_post(request("POST", content_type="application/json"))
    assert _plain_json_post(request("POST", content_type="application/json", accept="application/json"))
    assert not _plain_json_post(request("GET", content_type="application/json"))
    assert not _plain_json_post(request("POST", content_type="application/json; charset=utf-8"))
    assert not _plain_json_post(request("POST", content_type="multipart/form-data"))
    assert not _plain_json_post(request("POST", content_type="application/json", accept="multipart/mixed"))
    assert not _plain_json_post(request("POST", content_type="application/json", accept="text/event-stream"))


def test_get_queries_work_and_get_mutations_are_refused_as_json(token: str, server: LiveServer) -> None:
    with server.client(token) as c:
        r = c.get("/graphql", params={"query": "{ __typename }"})
        assert r.status_code == 200 and r.json() == {"data": {"__typename": "Query"}}
        r = c.get("/graphql", params={"query": 'mutation { createTask(input: {title: "via GET"}) { id } }'})
        assert r.status_code == 400
        assert r.json()["code"] == "validation_error"
        assert ids_of(list_page(c)) == []
