"""Client input that once crashed or misled the service: each class gets its documented
4xx (or GraphQL code) with a message naming the limit, and no traceback in the log."""

from __future__ import annotations

import base64
import logging
from urllib.parse import quote

import pytest

from db.url import DatabaseURL
from schema.limits import MAX_COST
from tests.support import LiveServer, db_fetch, hs_token, json_of, unique_user

HUGE = "1" + "0" * 5000  # past Python's 4,300-digit int limit
TASKS_TOTAL = "query($n: Int) { tasks(first: $n) { totalCount } }"


@pytest.fixture
def no_tracebacks(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING)
    return caplog


def assert_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR], caplog.text


def codes(body: dict[str, object]) -> list[str]:
    return [e["extensions"]["code"] for e in body["errors"]]  # type: ignore[attr-defined]


def test_integers_past_pythons_digit_limit(
    server: LiveServer, no_tracebacks: pytest.LogCaptureFixture
) -> None:
    """In JSON (no token needed to try it) and as GraphQL literals."""
    with server.client() as anonymous, server.client(hs_token(unique_user("digits"))) as c:
        body = f'{{"query": "{TASKS_TOTAL}", "variables": {{"n": {HUGE}}}}}'
        for client in (anonymous, c):
            r = client.post("/graphql", content=body, headers={"Content-Type": "application/json"})
            assert r.status_code == 400
            assert json_of(r)["detail"] == "Numbers in JSON are limited to 4300 digits."
            r = client.get("/graphql", params={"query": TASKS_TOTAL, "variables": f'{{"n": {HUGE}}}'})
            assert r.status_code == 400 and json_of(r)["code"] == "validation_error"
        r = c.post("/graphql", json={"query": f"{{ tasks(first: {HUGE}) {{ totalCount }} }}"})
        assert codes(r.json()) == ["GRAPHQL_VALIDATION_FAILED"]
        assert "4300 digits" in r.json()["errors"][0]["message"]
        r = c.post("/graphql", json={"query": f'{{ task(id: "{HUGE}") {{ id }} }}'})
        assert codes(r.json()) == ["BAD_USER_INPUT"]
        r = c.post(
            "/api/tasks",
            content=f'{{"title": "x", "priority": {HUGE}}}',
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == 400 and json_of(r)["code"] == "validation_error"
    assert_no_traceback(no_tracebacks)


@pytest.mark.parametrize("depth", [600, 5000])
def test_deeply_nested_cursor(
    server: LiveServer, depth: int, no_tracebacks: pytest.LogCaptureFixture
) -> None:
    cursor = base64.urlsafe_b64encode(("[" * depth + "]" * depth).encode()).decode()
    with server.client(hs_token(unique_user("cursor"))) as c:
        r = c.post(
            "/graphql",
            json={
                "query": "query($a: String) { tasks(after: $a) { totalCount } }",
                "variables": {"a": cursor},
            },
        )
    [error] = r.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and error["extensions"]["field"] == "after"
    assert_no_traceback(no_tracebacks)


def test_due_date_means_the_same_instant_on_both_interfaces(server: LiveServer) -> None:
    """ISO 8601 only (basic format included), read the same way by REST and GraphQL;
    numbers are refused rather than read as Unix times."""
    with server.client(hs_token(unique_user("due"))) as c:
        rest = c.post("/api/tasks", json={"title": "r", "due_date": "20261201"}).json()
        gql = c.post(
            "/graphql",
            json={"query": 'mutation { createTask(input: {title: "g", dueDate: "20261201"}) { dueDate } }'},
        ).json()
        assert rest["due_date"] == "2026-12-01T00:00:00+00:00"
        assert gql["data"]["createTask"]["dueDate"] == "2026-12-01T00:00:00+00:00"
        for number in (20261201, 1.5, True):
            r = c.post("/api/tasks", json={"title": "n", "due_date": number})
            assert r.status_code == 400 and json_of(r)["errors"][0]["field"] == "due_date", r.text
        assert c.post("/api/tasks", json={"title": "e", "due_date": ""}).json()["due_date"] is None
        assert c.put(f"/api/tasks/{rest['id']}", json={"due_date": ""}).json()["due_date"] is None
        # An empty description input means none too, on create and update.
        empty = c.post("/api/tasks", json={"title": "e", "description": ""}).json()
        assert empty["description"] is None
        c.put(f"/api/tasks/{empty['id']}", json={"description": "some"})
        assert c.put(f"/api/tasks/{empty['id']}", json={"description": ""}).json()["description"] is None


@pytest.mark.parametrize(
    "raw", ["0{id}", "+{id}", "%20{id}", "{id}%20", "1_0", "-1", "0", "1e3", "99999999999999999999"]
)
def test_path_ids_are_plain_decimal_integers(server: LiveServer, raw: str) -> None:
    user = unique_user("ids")
    with server.client(hs_token(user)) as c:
        task = c.post("/api/tasks", json={"title": "x"}).json()
        for base in ("/api/tasks", f"/api/{user}/tasks"):
            r = c.get(f"{base}/{raw.format(id=task['id'])}")
            assert r.status_code == 400, (base, raw, r.text)
            assert json_of(r)["errors"][0]["field"] == "id"
        literal = raw.format(id=task["id"]).replace("%20", " ")
        r = c.post("/graphql", json={"query": f'{{ task(id: "{literal}") {{ id }} }}'})
        assert codes(r.json()) == ["BAD_USER_INPUT"]


def test_several_operations_need_an_operation_name(server: LiveServer, database: DatabaseURL) -> None:
    user = unique_user("ops")
    document = (
        'mutation A { createTask(input: {title: "a"}) { id } }'
        ' mutation B { createTask(input: {title: "b"}) { id } }'
    )
    with server.client(hs_token(user)) as c:
        r = c.post("/graphql", json={"query": document})
        assert codes(r.json()) == ["GRAPHQL_VALIDATION_FAILED"] and "operationName" in r.text
        assert db_fetch(database, "SELECT title FROM tasks WHERE user_id = $1", user) == []
        r = c.post("/graphql", json={"query": document, "operationName": "B"})
        assert "errors" not in r.json()
    assert [
        row["title"] for row in db_fetch(database, "SELECT title FROM tasks WHERE user_id = $1", user)
    ] == ["b"]


def test_links_never_follow_the_host_header(server: LiveServer) -> None:
    with server.client(hs_token(unique_user("host"))) as c:
        for _ in range(2):
            c.post("/api/tasks", json={"title": "x"})
        r = c.get("/api/tasks", params={"limit": 1, "status": "all"}, headers={"Host": "evil.example"})
    assert r.headers["link"] == '</api/tasks?status=all&limit=1&offset=1>; rel="next"'


def test_refused_cors_preflight_is_json(server: LiveServer) -> None:
    with server.client() as c:
        r = c.options(
            "/api/tasks", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
        )
        assert r.status_code == 400
        assert json_of(r)["code"] == "cors_rejected" and "origin" in r.json()["detail"]
        r = c.options(
            "/api/tasks",
            headers={
                "Origin": "http://localhost:3000",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "x-secret",
            },
        )
        assert r.status_code == 400 and "headers" in json_of(r)["detail"]


def _aliased(n: int, first: int, selection: str) -> str:
    return "{ " + " ".join(f"a{i}: tasks(first: {first}) {{ {selection} }}" for i in range(n)) + " }"


def test_query_cost_limit(server: LiveServer) -> None:
    with server.client(hs_token(unique_user("cost"))) as c:
        # What a frontend sends: a page of 100 with nodes and edges (cost 200) passes.
        ok = c.post(
            "/graphql", json={"query": "{ tasks(first: 100) { totalCount nodes { id } edges { cursor } } }"}
        )
        assert "errors" not in ok.json()
        r = c.post("/graphql", json={"query": _aliased(20, 100, "nodes { id } edges { cursor }")})
        [error] = r.json()["errors"]
        assert error["extensions"] == {"code": "COST_LIMIT_EXCEEDED", "cost": 4000, "limit": MAX_COST}
        assert "4000" in error["message"] and str(MAX_COST) in error["message"]
        assert "data" not in r.json() or r.json()["data"] is None
        # Fragments and variables count too (a variable page counts as the maximum, 100).
        spread = (
            "query($n: Int) { " + " ".join(f"a{i}: tasks(first: $n) {{ ...page }}" for i in range(6)) + " }"
            " fragment page on TaskConnection { nodes { id } edges { node { id } } }"
        )
        r = c.post("/graphql", json={"query": spread, "variables": {"n": 1}})
        assert r.json()["errors"][0]["extensions"]["cost"] == 1200


@pytest.mark.parametrize("sub", ["é€", "a b", "a%2Fb"])
def test_location_and_link_for_any_user_id(server: LiveServer, sub: str) -> None:
    """Built from the path as sent (percent-encoded), never decoded: valid header values
    that lead back to the same task."""
    encoded = quote(sub, safe="")
    with server.client(hs_token(sub)) as c:
        r = c.post(f"/api/{encoded}/tasks", json={"title": "one"})
        assert r.status_code == 201, r.text
        assert r.headers["location"] == f"/api/{encoded}/tasks/{r.json()['id']}"
        assert c.get(r.headers["location"]).json()["id"] == r.json()["id"]
        c.post(f"/api/{encoded}/tasks", json={"title": "two"})
        listed = c.get(f"/api/{encoded}/tasks", params={"limit": 1})
        assert listed.status_code == 200
        link = listed.headers["link"]
        assert link.startswith(f"</api/{encoded}/tasks?limit=1&offset=1>")
        assert c.get(link[1 : link.index(">")]).json()[0]["title"] == "one"


@pytest.mark.parametrize("base", ["/api/tasks", "/api/{user}/tasks"])
def test_frontend_spellings_of_sort_and_page(server: LiveServer, base: str) -> None:
    """`sort=field:dir` and `page` (1-based, with `limit`), as paginated frontends send
    them; a contradiction or both page and offset is a clear 400."""
    user = unique_user("shapes")
    path = base.format(user=user)
    with server.client(hs_token(user)) as c:
        for title in ("b", "c", "a"):
            c.post(path, json={"title": title})
        titles = [t["title"] for t in c.get(path, params={"sort": "title:desc"}).json()]
        assert titles == ["c", "b", "a"]
        assert [t["title"] for t in c.get(path, params={"sort": "title:asc", "order": "asc"}).json()] == [
            "a",
            "b",
            "c",
        ]
        r = c.get(path, params={"sort": "title:desc", "limit": 1, "page": 2})
        assert [t["title"] for t in r.json()] == ["b"]
        assert r.headers["link"].startswith(f"<{path}?sort=title%3Adesc&limit=1&page=3>")
        assert [t["title"] for t in c.get(r.headers["link"][1 : r.headers["link"].index(">")]).json()] == [
            "a"
        ]
        for params, field in (
            ({"sort": "title:desc", "order": "asc"}, "order"),
            ({"sort": "title:up"}, "sort"),
            ({"page": 2, "offset": 1}, "page"),
            ({"page": 0}, "page"),
            ({"page": "x"}, "page"),
        ):
            r = c.get(path, params=params)
            assert r.status_code == 400, (params, r.text)
            assert json_of(r)["errors"][0]["field"] == field, r.text


def test_too_many_validation_errors_says_the_limit(server: LiveServer) -> None:
    document = "{ " + " ".join(f"f{i}" for i in range(150)) + " }"
    with server.client(hs_token(unique_user("many"))) as c:
        errors = c.post("/graphql", json={"query": document}).json()["errors"]
    assert {e["extensions"]["code"] for e in errors} == {"GRAPHQL_VALIDATION_FAILED"}
    assert errors[-1]["message"] == "More than 100 validation errors: validation stopped there."
