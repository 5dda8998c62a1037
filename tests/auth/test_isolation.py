"""The isolation matrix: user B, with a valid token, tries every operation on both
interfaces against user A's tasks and A's namespace, and learns nothing.

Every case also proves that A's stored data did not change; the last test
compares A's data after the whole matrix with a snapshot taken before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from db.url import DatabaseURL
from tests.support import LiveServer, hs_token, snapshot, unique_user

TASK_FIELDS = "id title description completed priority dueDate createdAt updatedAt"


@dataclass
class World:
    a_user: str
    a_token: str
    a_task_ids: list[int]  # [pending, completed]
    a_cursor: str  # from A's own listing
    b_user: str
    b_token: str
    missing_id: int  # a task that existed once, deleted by its owner
    a_before: list[dict[str, Any]]


@pytest.fixture(scope="module")
def world(server: LiveServer, database: DatabaseURL) -> World:
    a_user, b_user, c_user = unique_user("alice"), unique_user("bob"), unique_user("carol")
    a_token = hs_token(a_user, email="alice@example.com", name="Alice")
    b_token = hs_token(b_user, email="bob@example.com", name="Bob")
    with server.client(a_token) as c:
        ids = []
        for body in (
            {"title": "Alice secret plan", "description": "eyes only", "due_date": "2030-01-01T00:00:00Z"},
            {"title": "Alice done", "completed": True, "priority": "high"},
        ):
            r = c.post("/api/tasks", json=body)
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        r = c.post("/graphql", json={"query": "{ tasks(first: 1) { edges { cursor } } }"})
        a_cursor = r.json()["data"]["tasks"]["edges"][0]["cursor"]
    with server.client(hs_token(c_user)) as c:
        missing_id = c.post("/api/tasks", json={"title": "ephemeral"}).json()["id"]
        assert c.delete(f"/api/tasks/{missing_id}").status_code == 204
    before = snapshot(database, a_user)
    assert len(before) == 3  # two tasks and the users row
    return World(a_user, a_token, ids, a_cursor, b_user, b_token, missing_id, before)


def assert_a_unchanged(database: DatabaseURL, world: World) -> None:
    assert snapshot(database, world.a_user) == world.a_before


# --------------------------------------------------------------------------- REST, B's own namespace


# method, path under /api/tasks/{id}, JSON body (None: no body)
REST_TASK_OPERATIONS: dict[str, tuple[str, str, dict[str, Any] | None]] = {
    "get": ("GET", "", None),
    "put-title": ("PUT", "", {"title": "pwned"}),
    "put-everything": (
        "PUT",
        "",
        {"title": "pwned", "description": None, "completed": False, "priority": "low", "due_date": None},
    ),
    "put-owner-field": ("PUT", "", {"title": "pwned", "user_id": "ignored"}),
    "delete": ("DELETE", "", None),
    "patch-complete-toggle": ("PATCH", "/complete", None),
    "patch-complete-true": ("PATCH", "/complete", {"completed": True}),
    "patch-complete-false": ("PATCH", "/complete", {"completed": False}),
}


def rest(c: httpx.Client, method: str, path: str, body: dict[str, Any] | None) -> httpx.Response:
    if body is None:
        return c.request(method, path)
    return c.request(method, path, json=body)


@pytest.mark.parametrize("prefix", ["/api", "/api/{b}"])
@pytest.mark.parametrize("which", [0, 1])
@pytest.mark.parametrize("operation", REST_TASK_OPERATIONS)
def test_rest_other_users_task_is_indistinguishable_from_missing(
    server: LiveServer, database: DatabaseURL, world: World, operation: str, which: int, prefix: str
) -> None:
    method, suffix, body = REST_TASK_OPERATIONS[operation]
    base = prefix.format(b=world.b_user)
    with server.client(world.b_token) as c:
        theirs = rest(c, method, f"{base}/tasks/{world.a_task_ids[which]}{suffix}", body)
        missing = rest(c, method, f"{base}/tasks/{world.missing_id}{suffix}", body)
    assert theirs.status_code == 404, theirs.text
    assert theirs.json()["code"] == "not_found"
    assert missing.status_code == 404, missing.text
    assert theirs.json() == missing.json()
    assert theirs.headers["content-type"] == missing.headers["content-type"]
    assert_a_unchanged(database, world)


# --------------------------------------------------------------------------- REST, A's namespace


def _a_task(w: World) -> str:
    return f"/api/{w.a_user}/tasks/{w.a_task_ids[0]}"


NAMESPACE_OPERATIONS: dict[str, tuple[str, Any, dict[str, Any] | None]] = {
    "list": ("GET", lambda w: f"/api/{w.a_user}/tasks", None),
    "list-search": ("GET", lambda w: f"/api/{w.a_user}/tasks?search=secret&status=all", None),
    "create": ("POST", lambda w: f"/api/{w.a_user}/tasks", {"title": "planted"}),
    "get": ("GET", _a_task, None),
    "put": ("PUT", _a_task, {"title": "pwned"}),
    "delete": ("DELETE", _a_task, None),
    "patch-complete": ("PATCH", lambda w: _a_task(w) + "/complete", None),
    "patch-complete-body": ("PATCH", lambda w: _a_task(w) + "/complete", {"completed": True}),
    "get-missing-id": ("GET", lambda w: f"/api/{w.a_user}/tasks/{w.missing_id}", None),
    "delete-missing-id": ("DELETE", lambda w: f"/api/{w.a_user}/tasks/{w.missing_id}", None),
}


@pytest.mark.parametrize("operation", NAMESPACE_OPERATIONS)
def test_rest_other_users_namespace_is_forbidden(
    server: LiveServer, database: DatabaseURL, world: World, operation: str
) -> None:
    method, path, body = NAMESPACE_OPERATIONS[operation]
    with server.client(world.b_token) as c:
        r = rest(c, method, path(world), body)
        assert r.status_code == 403, r.text
        payload = r.json()
        assert payload["code"] == "forbidden"
        assert "secret" not in r.text and "Alice" not in r.text
        # Nothing was created on B's side either.
        mine = c.get("/api/tasks")
        assert mine.json() == [] and mine.headers["X-Total-Count"] == "0"
    assert_a_unchanged(database, world)


def test_rest_namespace_forbidden_is_the_same_whether_or_not_the_task_exists(
    server: LiveServer, world: World
) -> None:
    with server.client(world.b_token) as c:
        existing = c.get(f"/api/{world.a_user}/tasks/{world.a_task_ids[0]}")
        missing = c.get(f"/api/{world.a_user}/tasks/{world.missing_id}")
    assert existing.status_code == missing.status_code == 403
    assert existing.json() == missing.json()


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?status=all",
        "?status=completed",
        "?search=alice",
        "?search=secret&sort=title",
        "?offset=0",
        "?offset=5&limit=1",
    ],
)
def test_rest_list_never_shows_other_users_tasks(
    server: LiveServer, database: DatabaseURL, world: World, query: str
) -> None:
    with server.client(world.b_token) as c:
        for base in ("/api/tasks", f"/api/{world.b_user}/tasks"):
            r = c.get(base + query)
            assert r.status_code == 200, r.text
            assert r.json() == []
            assert r.headers["X-Total-Count"] == "0"
            assert "Link" not in r.headers
    assert_a_unchanged(database, world)


# --------------------------------------------------------------------------- GraphQL


def gql(c: httpx.Client, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    r = c.post("/graphql", json={"query": query, "variables": variables})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


UPDATE = f"""
mutation($id: ID!, $input: UpdateTaskInput!) {{
  updateTask(id: $id, input: $input) {{ {TASK_FIELDS} }}
}}
"""
GRAPHQL_MUTATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "updateTask-title": (
        UPDATE,
        {"input": {"title": "pwned"}},
    ),
    "updateTask-clear": (
        UPDATE,
        {"input": {"description": None, "dueDate": None, "completed": True}},
    ),
    "deleteTask": ("mutation($id: ID!) { deleteTask(id: $id) }", {}),
    "toggleTaskCompletion": (
        f"mutation($id: ID!) {{ toggleTaskCompletion(id: $id) {{ {TASK_FIELDS} }} }}",
        {},
    ),
}


@pytest.mark.parametrize("which", [0, 1])
def test_graphql_task_of_other_user_is_null(
    server: LiveServer, database: DatabaseURL, world: World, which: int
) -> None:
    query = f"query($id: ID!) {{ task(id: $id) {{ {TASK_FIELDS} }} }}"
    with server.client(world.b_token) as c:
        theirs = gql(c, query, {"id": str(world.a_task_ids[which])})
        missing = gql(c, query, {"id": str(world.missing_id)})
    assert theirs == missing == {"data": {"task": None}}
    assert_a_unchanged(database, world)


@pytest.mark.parametrize("which", [0, 1])
@pytest.mark.parametrize("operation", GRAPHQL_MUTATIONS)
def test_graphql_mutations_on_other_users_task_are_not_found(
    server: LiveServer, database: DatabaseURL, world: World, operation: str, which: int
) -> None:
    query, variables = GRAPHQL_MUTATIONS[operation]
    with server.client(world.b_token) as c:
        theirs = gql(c, query, {"id": str(world.a_task_ids[which]), **variables})
        missing = gql(c, query, {"id": str(world.missing_id), **variables})
    assert theirs["data"] is None
    [error] = theirs["errors"]
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert theirs == missing  # same message, code, location, path
    assert_a_unchanged(database, world)


LIST_QUERY = """
query($status: TaskStatusFilter, $sort: TaskSortField, $order: SortOrder, $search: String, $after: String) {
  tasks(status: $status, sort: $sort, order: $order, search: $search, first: 100, after: $after) {
    edges { cursor node { id title } }
    nodes { id title description }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    totalCount
  }
}
"""
LIST_VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "all": {"status": "ALL"},
    "pending": {"status": "PENDING"},
    "completed": {"status": "COMPLETED"},
    "search-title": {"search": "alice"},
    "search-description": {"search": "eyes only"},
    "sort-title-desc": {"sort": "TITLE", "order": "DESC"},
    "sort-due-date": {"sort": "DUE_DATE"},
    "with-a-cursor": {"after": None},  # filled with a cursor from A's own listing
}


@pytest.mark.parametrize("variant", LIST_VARIANTS)
def test_graphql_list_never_shows_other_users_tasks(
    server: LiveServer, database: DatabaseURL, world: World, variant: str
) -> None:
    variables = dict(LIST_VARIANTS[variant])
    if "after" in variables:
        variables["after"] = world.a_cursor
    with server.client(world.b_token) as c:
        body = gql(c, LIST_QUERY, variables)
    assert "errors" not in body, body
    tasks = body["data"]["tasks"]
    assert tasks["edges"] == [] and tasks["nodes"] == []
    assert tasks["totalCount"] == 0
    assert tasks["pageInfo"]["hasNextPage"] is False
    assert tasks["pageInfo"]["startCursor"] is None and tasks["pageInfo"]["endCursor"] is None
    assert_a_unchanged(database, world)


def test_a_still_sees_everything_and_data_unchanged_after_whole_matrix(
    server: LiveServer, database: DatabaseURL, world: World
) -> None:
    """Runs last (file order): the whole matrix above left A's rows byte-for-byte as they were."""
    assert snapshot(database, world.a_user) == world.a_before
    with server.client(world.a_token) as c:
        r = c.get("/api/tasks")
        assert sorted(t["id"] for t in r.json()) == sorted(world.a_task_ids)
        body = gql(c, "{ tasks { totalCount } }", {})
        assert body["data"]["tasks"]["totalCount"] == 2
