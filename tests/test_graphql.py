"""The GraphQL contract, over real HTTP against a live server and a real PostgreSQL.

Expectations are computed here, in Python, from what the database holds; they are
never copied from the implementation. Every response goes through `gql`, which
also checks that each error carries `extensions.code` and that no error shows
server internals.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from db.url import DatabaseURL
from tests.support import LiveServer, db_fetch, hs_token, unique_user

INTERNAL_MESSAGE = "Internal server error."
# Text that must never reach a client: stack traces, driver and SQL details, source paths.
LEAK_MARKERS = (
    "Traceback",
    "asyncpg",
    "sqlalchemy",
    "postgres",
    "SELECT ",
    "INSERT ",
    "UPDATE tasks",
    'File "',
    ".py",
    "/work/",
    "KeyError",
    "UnicodeEncodeError",
    "OverflowError",
    "DataError",
    "surrogates not allowed",
)

TASK_FIELDS = "id title description completed priority dueDate createdAt updatedAt"
CREATE = f"""
mutation Create($input: CreateTaskInput!) {{ createTask(input: $input) {{ {TASK_FIELDS} }} }}
"""
UPDATE = f"""
mutation Update($id: ID!, $input: UpdateTaskInput!) {{
  updateTask(id: $id, input: $input) {{ {TASK_FIELDS} }}
}}
"""
DELETE = "mutation Delete($id: ID!) { deleteTask(id: $id) }"
TOGGLE = f"mutation Toggle($id: ID!) {{ toggleTaskCompletion(id: $id) {{ {TASK_FIELDS} }} }}"
GET = f"query Get($id: ID!) {{ task(id: $id) {{ {TASK_FIELDS} }} }}"
LIST = """
query List($status: TaskStatusFilter, $sort: TaskSortField, $order: SortOrder,
           $search: String, $first: Int, $after: String) {
  tasks(status: $status, sort: $sort, order: $order, search: $search, first: $first, after: $after) {
    edges { cursor node { id title } }
    nodes { id }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    totalCount
  }
}
"""

SORTS = ("CREATED", "UPDATED", "TITLE", "DUE_DATE", "PRIORITY")
ORDERS = ("ASC", "DESC")
DEFAULT_ORDER = {"CREATED": "DESC", "UPDATED": "DESC", "TITLE": "ASC", "DUE_DATE": "ASC", "PRIORITY": "ASC"}
PRIORITY_RANK = {"low": 0, "medium": 1, "high": 2}
MAX_BIGINT = 2**63 - 1


# --------------------------------------------------------------------------- helpers


def assert_no_internals(body: dict[str, Any]) -> None:
    for error in body.get("errors") or []:
        extensions = error.get("extensions") or {}
        assert extensions.get("code"), f"error without extensions.code: {error}"
        assert "stacktrace" not in extensions and "exception" not in extensions, error
        if extensions["code"] == "INTERNAL_SERVER_ERROR":
            assert error["message"] == INTERNAL_MESSAGE, error
            assert set(extensions) == {"code"}, error
        text = json.dumps(error)
        for marker in LEAK_MARKERS:
            assert marker not in text, f"{marker!r} leaked in {error}"


def gql(c: httpx.Client, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    r = c.post("/graphql", json={"query": query, "variables": variables or {}})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert_no_internals(body)
    return body


def ok(c: httpx.Client, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    body = gql(c, query, variables)
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


def the_error(body: dict[str, Any], code: str, field: str | None = None) -> dict[str, Any]:
    errors = body.get("errors")
    assert errors, f"expected a {code} error, got {body}"
    assert len(errors) == 1, errors
    error: dict[str, Any] = errors[0]
    assert error["extensions"]["code"] == code, error
    if field is not None:
        assert error["extensions"].get("field") == field, error
    return error


def create(c: httpx.Client, **fields: Any) -> dict[str, Any]:
    task: dict[str, Any] = ok(c, CREATE, {"input": fields})["createTask"]
    return task


def list_page(c: httpx.Client, **args: Any) -> dict[str, Any]:
    page: dict[str, Any] = ok(c, LIST, {k: v for k, v in args.items() if v is not None})["tasks"]
    assert [e["node"]["id"] for e in page["edges"]] == [n["id"] for n in page["nodes"]]
    return page


def ids_of(page: dict[str, Any]) -> list[int]:
    return [int(n["id"]) for n in page["nodes"]]


def parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    assert value.tzinfo is not None, f"{text} has no offset"
    return value


def rows_of(database: DatabaseURL, user_id: str) -> list[dict[str, Any]]:
    return db_fetch(database, "SELECT * FROM tasks WHERE user_id = $1", user_id)


def expected_order(rows: list[dict[str, Any]], sort: str, order: str) -> list[int]:
    """The contract's order, ties broken by id in the same direction."""
    desc = order == "DESC"
    if sort == "DUE_DATE":  # tasks without a due date come last in both orders
        dated = sorted(
            (r for r in rows if r["due_date"] is not None),
            key=lambda r: (r["due_date"], r["id"]),
            reverse=desc,
        )
        undated = sorted((r for r in rows if r["due_date"] is None), key=lambda r: r["id"], reverse=desc)
        return [r["id"] for r in dated + undated]
    keys: dict[str, Callable[[dict[str, Any]], Any]] = {
        "CREATED": lambda r: r["created_at"],
        "UPDATED": lambda r: r["updated_at"],
        "TITLE": lambda r: r["title"].lower().encode(),  # ASCII titles: byte-wise, case-insensitive
        "PRIORITY": lambda r: PRIORITY_RANK[r["priority"]],
    }
    key = keys[sort]
    return [r["id"] for r in sorted(rows, key=lambda r: (key(r), r["id"]), reverse=desc)]


# Titles whose lower-cased forms tie, and punctuation a locale-aware collation would ignore.
TITLES = ("alpha", "Alpha", "ALPHA", "beta", "Beta", "a_b", "a-b", "A b", "zeta", "Zeta", "100", "_u", "~t")
BASE = datetime(2024, 1, 1, tzinfo=UTC)


def spec(i: int) -> dict[str, Any]:
    """A task with many ties on every sort key."""
    return {
        "title": TITLES[i % len(TITLES)],
        "description": f"note {i}" if i % 3 == 0 else None,
        "completed": i % 4 == 0,
        "priority": ("low", "medium", "high")[(i // 2) % 3],
        "due_date": None if i % 5 == 0 else BASE + timedelta(days=i % 6),
        "created_at": BASE - timedelta(minutes=i // 3),
        "updated_at": BASE - timedelta(minutes=(i * 7) % 40),
    }


def insert_tasks(database: DatabaseURL, user_id: str, specs: list[dict[str, Any]]) -> list[int]:
    """Insert straight into the database (the user's row must exist already)."""
    columns = ("title", "description", "completed", "priority", "due_date", "created_at", "updated_at")
    rows = db_fetch(
        database,
        """
        INSERT INTO tasks (user_id, title, description, completed, priority, due_date, created_at, updated_at)
        SELECT $1, t.title, t.description, t.completed, t.priority::task_priority,
               t.due_date, t.created_at, t.updated_at
        FROM unnest($2::text[], $3::text[], $4::bool[], $5::text[],
                    $6::timestamptz[], $7::timestamptz[], $8::timestamptz[])
             AS t(title, description, completed, priority, due_date, created_at, updated_at)
        RETURNING id
        """,
        user_id,
        *([s[c] for s in specs] for c in columns),
    )
    return [r["id"] for r in rows]


def user_with_tasks(server: LiveServer, database: DatabaseURL, count: int, prefix: str) -> tuple[str, str]:
    """A fresh user with `count` tasks: one created through the API (so the users
    row exists), the rest inserted directly with tie-heavy values."""
    user = unique_user(prefix)
    token = hs_token(user)
    with server.client(token) as c:
        create(c, title="Seed", priority="HIGH", dueDate="2024-01-03T00:00:00+00:00")
    insert_tasks(database, user, [spec(i) for i in range(count - 1)])
    return user, token


def encode(raw: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(raw).encode()).decode().rstrip("=")


# --------------------------------------------------------------------------- me, auth


def test_me_reflects_token_claims(server: LiveServer) -> None:
    user = unique_user("me")
    with server.client(hs_token(user, email="ada@example.com", name="Ada Lovelace")) as c:
        assert ok(c, "{ me { id email name } }")["me"] == {
            "id": user,
            "email": "ada@example.com",
            "name": "Ada Lovelace",
        }


def test_me_without_profile_claims(server: LiveServer) -> None:
    user = unique_user("me")
    with server.client(hs_token(user)) as c:
        assert ok(c, "{ me { id email name } }")["me"] == {"id": user, "email": None, "name": None}


def test_typename_needs_no_token(server: LiveServer) -> None:
    with server.client() as c:
        assert gql(c, "{ __typename }") == {"data": {"__typename": "Query"}}


BAD_TOKENS: dict[str, Callable[[str], str | None]] = {
    "none": lambda _: None,
    "wrong-secret": lambda u: hs_token(u, secret="another-secret-that-is-long-enough-for-hs256-xx"),
    "garbage": lambda _: "not.a.jwt",
    "expired": lambda u: hs_token(u, ttl=-3600),
}
UNAUTH_OPERATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "me": ("{ me { id } }", {}),
    "tasks": ("{ tasks { totalCount } }", {}),
    "task": ('{ task(id: "1") { id } }', {}),
    "createTask": (CREATE, {"input": {"title": "sneaky"}}),
    "updateTask": (UPDATE, {"id": "1", "input": {"title": "sneaky"}}),
    "deleteTask": (DELETE, {"id": "1"}),
    "toggleTaskCompletion": (TOGGLE, {"id": "1"}),
}


@pytest.mark.parametrize("operation", UNAUTH_OPERATIONS)
@pytest.mark.parametrize("token_kind", BAD_TOKENS)
def test_unauthenticated(server: LiveServer, database: DatabaseURL, token_kind: str, operation: str) -> None:
    user = unique_user("anon")
    query, variables = UNAUTH_OPERATIONS[operation]
    with server.client(BAD_TOKENS[token_kind](user)) as c:
        body = gql(c, query, variables)
    the_error(body, "UNAUTHENTICATED")
    assert not (body.get("data") or {}).get(operation), body
    # Nothing was written for the subject the bad token names.
    assert db_fetch(database, "SELECT id FROM users WHERE id = $1", user) == []
    assert rows_of(database, user) == []


# --------------------------------------------------------------------------- mutations


def test_create_task_defaults_and_trimming(server: LiveServer) -> None:
    with server.client(hs_token(unique_user("create"))) as c:
        before = datetime.now(UTC)
        task = create(c, title="  Buy milk  ")
        after = datetime.now(UTC)
        assert task["title"] == "Buy milk"
        assert task["description"] is None
        assert task["completed"] is False
        assert task["priority"] == "MEDIUM"
        assert task["dueDate"] is None
        created = parse_time(task["createdAt"])
        assert before - timedelta(seconds=5) <= created <= after + timedelta(seconds=5)
        assert ok(c, GET, {"id": task["id"]})["task"] == task


def test_create_task_with_every_field(server: LiveServer) -> None:
    with server.client(hs_token(unique_user("create"))) as c:
        task = create(
            c,
            title="Report",
            description="Quarterly numbers",
            completed=True,
            priority="HIGH",
            dueDate="2030-05-01T12:00:00+02:00",
        )
        assert (task["title"], task["description"], task["completed"], task["priority"]) == (
            "Report",
            "Quarterly numbers",
            True,
            "HIGH",
        )
        assert parse_time(task["dueDate"]) == datetime(2030, 5, 1, 10, 0, tzinfo=UTC)
        assert ok(c, GET, {"id": task["id"]})["task"] == task


def test_title_and_description_length_limits_accept_the_maximum(server: LiveServer) -> None:
    with server.client(hs_token(unique_user("limits"))) as c:
        task = create(c, title="  " + "t" * 200 + "  ", description="é" * 1000)
        assert task["title"] == "t" * 200
        assert task["description"] == "é" * 1000
        changed = ok(c, UPDATE, {"id": task["id"], "input": {"title": "\t" + "u" * 200 + "\n"}})
        assert changed["updateTask"]["title"] == "u" * 200


def test_update_changes_only_given_fields(server: LiveServer) -> None:
    with server.client(hs_token(unique_user("update"))) as c:
        task = create(
            c, title="Original", description="keep me", priority="HIGH", dueDate="2031-01-02T03:04:05+00:00"
        )

        def update(**fields: Any) -> dict[str, Any]:
            updated: dict[str, Any] = ok(c, UPDATE, {"id": task["id"], "input": fields})["updateTask"]
            assert ok(c, GET, {"id": task["id"]})["task"] == updated
            return updated

        step = update(title="  Renamed ")
        assert step["title"] == "Renamed"
        for name in ("id", "description", "completed", "priority", "dueDate", "createdAt"):
            assert step[name] == task[name], name
        assert parse_time(step["updatedAt"]) >= parse_time(task["updatedAt"])

        step2 = update(priority="LOW", completed=True)
        assert (step2["priority"], step2["completed"]) == ("LOW", True)
        assert (step2["title"], step2["description"], step2["dueDate"]) == (
            "Renamed",
            "keep me",
            task["dueDate"],
        )

        step3 = update(description=None)
        assert step3["description"] is None
        assert step3["dueDate"] == task["dueDate"]

        step4 = update(dueDate=None)
        assert step4["dueDate"] is None
        assert (step4["title"], step4["priority"], step4["completed"]) == ("Renamed", "LOW", True)

        step5 = update(description="back", dueDate="2032-06-07T08:09:10+00:00")
        assert step5["description"] == "back"
        assert parse_time(step5["dueDate"]) == datetime(2032, 6, 7, 8, 9, 10, tzinfo=UTC)


def test_update_with_null_title_is_rejected_and_changes_nothing(server: LiveServer) -> None:
    with server.client(hs_token(unique_user("update"))) as c:
        task = create(c, title="Keep", description="d")
        body = gql(c, UPDATE, {"id": task["id"], "input": {"title": None, "description": "changed"}})
        the_error(body, "BAD_USER_INPUT", "title")
        assert body["data"] is None
        assert ok(c, GET, {"id": task["id"]})["task"] == task


def test_delete_returns_id_then_task_is_gone(server: LiveServer) -> None:
    with server.client(hs_token(unique_user("delete"))) as c:
        keep = create(c, title="keep")
        gone = create(c, title="gone")
        assert ok(c, DELETE, {"id": gone["id"]}) == {"deleteTask": gone["id"]}
        assert ok(c, GET, {"id": gone["id"]}) == {"task": None}
        assert ids_of(list_page(c)) == [int(keep["id"])]
        the_error(gql(c, DELETE, {"id": gone["id"]}), "NOT_FOUND")
        assert ok(c, GET, {"id": keep["id"]})["task"] == keep


def test_toggle_task_completion(server: LiveServer) -> None:
    with server.client(hs_token(unique_user("toggle"))) as c:
        task = create(c, title="flip", description="d", priority="LOW")
        on = ok(c, TOGGLE, {"id": task["id"]})["toggleTaskCompletion"]
        assert on["completed"] is True
        off = ok(c, TOGGLE, {"id": task["id"]})["toggleTaskCompletion"]
        assert off["completed"] is False
        for name in ("id", "title", "description", "priority", "dueDate", "createdAt"):
            assert on[name] == off[name] == task[name], name
        assert parse_time(off["updatedAt"]) >= parse_time(on["updatedAt"]) >= parse_time(task["updatedAt"])
        assert ok(c, GET, {"id": task["id"]})["task"] == off


# --------------------------------------------------------------------------- NOT_FOUND


@pytest.fixture(scope="module")
def deleted_id(server: LiveServer) -> str:
    """The id of a task that existed once and no longer does."""
    with server.client(hs_token(unique_user("deleted"))) as c:
        task_id: str = create(c, title="ephemeral")["id"]
        ok(c, DELETE, {"id": task_id})
    return task_id


MISSING_OPERATIONS = {
    "updateTask": (UPDATE, {"input": {"title": "x"}}),
    "deleteTask": (DELETE, {}),
    "toggleTaskCompletion": (TOGGLE, {}),
}


@pytest.mark.parametrize("which", ["deleted", "never-issued"])
@pytest.mark.parametrize("operation", MISSING_OPERATIONS)
def test_missing_task(server: LiveServer, deleted_id: str, operation: str, which: str) -> None:
    task_id = deleted_id if which == "deleted" else str(MAX_BIGINT)
    query, variables = MISSING_OPERATIONS[operation]
    with server.client(hs_token(unique_user("missing"))) as c:
        assert ok(c, GET, {"id": task_id}) == {"task": None}
        body = gql(c, query, {"id": task_id, **variables})
    the_error(body, "NOT_FOUND")
    assert body["data"] is None


# --------------------------------------------------------------------------- BAD_USER_INPUT


@dataclass
class Victim:
    user: str
    token: str
    task_id: str
    title_cursor: str  # from sort: TITLE, order ASC


@pytest.fixture(scope="module")
def victim(server: LiveServer) -> Victim:
    user = unique_user("input")
    token = hs_token(user)
    with server.client(token) as c:
        task_id = create(c, title="Untouched", description="as created")["id"]
        cursor = list_page(c, sort="TITLE", order="ASC")["edges"][0]["cursor"]
    return Victim(user, token, task_id, cursor)


def _list_first(n: Any) -> tuple[str, Callable[[Victim], dict[str, Any]]]:
    return f"{{ tasks(first: {n}) {{ totalCount }} }}", lambda v: {}


def _list_after(
    after: Callable[[Victim], str], sort: str = "CREATED", order: str | None = None
) -> tuple[str, Callable[[Victim], dict[str, Any]]]:
    def variables(v: Victim) -> dict[str, Any]:
        return {"after": after(v), "sort": sort, **({"order": order} if order else {})}

    return LIST, variables


def _vars(**values: Any) -> Callable[[Victim], dict[str, Any]]:
    return lambda v: {k: (val(v) if callable(val) else val) for k, val in values.items()}


def _task_id(v: Victim) -> str:
    return v.task_id


FORGED_PRIORITY = encode([1, "priority", "asc", "urgent", 1])
FORGED_TITLE = encode([1, "title", "asc", "a\u0000b", 1])
FORGED_TIME = encode([1, "created", "desc", "0001-01-01T00:00:00+14:00", 1])
FORGED_NAIVE = encode([1, "created", "desc", "2024-01-01T00:00:00", 1])
FORGED_ID = encode([1, "created", "desc", "2024-01-01T00:00:00+00:00", "1"])

BAD_INPUT: dict[str, tuple[str, Callable[[Victim], dict[str, Any]], str]] = {
    "create-blank-title": (CREATE, _vars(input={"title": " \t\n "}), "title"),
    "create-empty-title": (CREATE, _vars(input={"title": ""}), "title"),
    "create-long-title": (CREATE, _vars(input={"title": "  " + "x" * 201 + "  "}), "title"),
    "create-long-description": (
        CREATE,
        _vars(input={"title": "ok", "description": "d" * 1001}),
        "description",
    ),
    "create-bad-priority-variable": (CREATE, _vars(input={"title": "ok", "priority": "URGENT"}), "priority"),
    "create-bad-due-date-variable": (
        CREATE,
        _vars(input={"title": "ok", "dueDate": "not-a-date"}),
        "due_date",
    ),
    "create-due-date-beyond-9999-in-utc": (
        CREATE,
        _vars(input={"title": "ok", "dueDate": "9999-12-31T23:59:59-14:00"}),
        "due_date",
    ),
    "update-blank-title": (UPDATE, _vars(id=_task_id, input={"title": "   "}), "title"),
    "update-long-title": (UPDATE, _vars(id=_task_id, input={"title": "y" * 201}), "title"),
    "update-null-title": (UPDATE, _vars(id=_task_id, input={"title": None}), "title"),
    "update-long-description": (UPDATE, _vars(id=_task_id, input={"description": "d" * 1001}), "description"),
    "update-bad-priority-variable": (UPDATE, _vars(id=_task_id, input={"priority": "urgent"}), "priority"),
    "update-bad-due-date-variable": (UPDATE, _vars(id=_task_id, input={"dueDate": "2024-13-01"}), "due_date"),
    "update-due-date-beyond-9999-in-utc": (
        UPDATE,
        _vars(id=_task_id, input={"dueDate": "9999-12-31T23:00:00-01:00"}),
        "due_date",
    ),
    "task-id-abc": (GET, _vars(id="abc"), "id"),
    "task-id-negative": (GET, _vars(id="-1"), "id"),
    "task-id-fraction": (GET, _vars(id="1.5"), "id"),
    "task-id-beyond-bigint": (GET, _vars(id=str(MAX_BIGINT + 1)), "id"),
    "update-id-abc": (UPDATE, _vars(id="abc", input={"title": "x"}), "id"),
    "delete-id-abc": (DELETE, _vars(id="abc"), "id"),
    "toggle-id-abc": (TOGGLE, _vars(id="abc"), "id"),
    "first-101": (*_list_first(101), "first"),
    "first-0": (*_list_first(0), "first"),
    "first-negative": (*_list_first(-5), "first"),
    "first-not-int-variable": (LIST, _vars(first="ten"), "first"),
    "bad-sort-variable": (LIST, _vars(sort="NAME"), "sort"),
    "bad-status-variable": (LIST, _vars(status="DONE"), "status"),
    "bad-order-variable": (LIST, _vars(order="UP"), "order"),
    "after-garbage": (*_list_after(lambda v: "not a cursor!"), "after"),
    "after-empty": (*_list_after(lambda v: ""), "after"),
    "after-not-json": (*_list_after(lambda v: base64.urlsafe_b64encode(b"\xff\xfe").decode()), "after"),
    "after-wrong-shape": (*_list_after(lambda v: encode({"id": 1})), "after"),
    "after-forged-priority": (*_list_after(lambda v: FORGED_PRIORITY, "PRIORITY", "ASC"), "after"),
    "after-forged-title": (*_list_after(lambda v: FORGED_TITLE, "TITLE", "ASC"), "after"),
    "after-forged-time": (*_list_after(lambda v: FORGED_TIME, "CREATED", "DESC"), "after"),
    "after-forged-naive-time": (*_list_after(lambda v: FORGED_NAIVE, "CREATED", "DESC"), "after"),
    "after-forged-id": (*_list_after(lambda v: FORGED_ID, "CREATED", "DESC"), "after"),
    "after-from-other-sort": (*_list_after(lambda v: v.title_cursor, "CREATED"), "after"),
    "after-from-other-sort-same-order": (*_list_after(lambda v: v.title_cursor, "PRIORITY", "ASC"), "after"),
    "after-from-other-order": (*_list_after(lambda v: v.title_cursor, "TITLE", "DESC"), "after"),
}


@pytest.mark.parametrize("case", BAD_INPUT)
def test_bad_user_input(server: LiveServer, database: DatabaseURL, victim: Victim, case: str) -> None:
    query, variables, field = BAD_INPUT[case]
    before = rows_of(database, victim.user)
    with server.client(victim.token) as c:
        body = gql(c, query, variables(victim))
    error = the_error(body, "BAD_USER_INPUT", field)
    assert error["message"], error
    assert rows_of(database, victim.user) == before


def test_bad_literal_enum_is_a_client_error(server: LiveServer) -> None:
    with server.client(hs_token(unique_user("doc"))) as c:
        body = gql(c, "{ tasks(sort: NAME) { totalCount } }")
    assert "data" not in body  # a request error: nothing was executed
    assert body["errors"][0]["extensions"]["code"] in {"GRAPHQL_VALIDATION_FAILED", "BAD_USER_INPUT"}


def test_syntax_error_is_a_client_error(server: LiveServer) -> None:
    with server.client(hs_token(unique_user("doc"))) as c:
        body = gql(c, "{ me { id } ")
    code = body["errors"][0]["extensions"]["code"]
    assert code in {"GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED"}


LONE_SURROGATE_BODIES = {
    "createTask-title": (
        b'{"query": "mutation($t: String!) { createTask(input: {title: $t}) { id } }",'
        b' "variables": {"t": "bad \\ud800 title"}}'
    ),
    "tasks-search": (
        b'{"query": "query($s: String) { tasks(search: $s) { totalCount } }", "variables": {"s": "x\\udfff"}}'
    ),
}


@pytest.mark.parametrize("case", LONE_SURROGATE_BODIES)
def test_unencodable_input_never_shows_internals(
    server: LiveServer, database: DatabaseURL, case: str
) -> None:
    """A lone UTF-16 surrogate is valid JSON but cannot be stored: whatever the
    server makes of it, the client sees a coded error and no internals."""
    user = unique_user("surrogate")
    with server.client(hs_token(user)) as c:
        r = c.post(
            "/graphql", content=LONE_SURROGATE_BODIES[case], headers={"content-type": "application/json"}
        )
    assert r.status_code in (200, 400), r.text
    for marker in LEAK_MARKERS:
        assert marker not in r.text, f"{marker!r} leaked: {r.text}"
    body = r.json()
    assert_no_internals(body)
    assert body["errors"][0]["extensions"]["code"] in {"BAD_USER_INPUT", "INTERNAL_SERVER_ERROR"}
    assert rows_of(database, user) == []


JSON = "application/json"
ME = b'"query": "{ me { id } }"'
# Requests refused before they reach the schema: (method, body, content type, status, field)
TRANSPORT_ERRORS: dict[str, tuple[str, bytes | None, str | None, int, str | None]] = {
    "malformed-json": ("POST", b'{"query": "{ me { id } "', "application/json", 400, "body"),
    "deeply-nested-json": ("POST", b"[" * 30_000 + b"]" * 30_000, "application/json", 400, "body"),
    "deeply-nested-variables": (
        "POST",
        b'{"query": "{ __typename }", "variables": {"a": ' + b"[" * 30_000 + b"]" * 30_000 + b"}}",
        "application/json",
        400,
        "body",
    ),
    "number-body": ("POST", b"5", "application/json", 400, "body"),
    "null-body": ("POST", b"null", "application/json", 400, "body"),
    "string-body": ("POST", b'"{ me { id } }"', "application/json", 400, "body"),
    "no-query": ("POST", b"{}", "application/json", 400, "query"),
    "query-not-a-string": ("POST", b'{"query": 5}', "application/json", 400, "query"),
    "variables-not-an-object": ("POST", b"{" + ME + b', "variables": "x"}', JSON, 400, "variables"),
    "unknown-operation-name": ("POST", b"{" + ME + b', "operationName": "Nope"}', JSON, 400, "operationName"),
    "batch": ("POST", b'[{"query": "{ __typename }"}]', "application/json", 400, "body"),
    "text-plain": ("POST", b'{"query": "{ __typename }"}', "text/plain", 415, None),
    "form-encoded": ("POST", b"query=%7B__typename%7D", "application/x-www-form-urlencoded", 415, None),
    "no-content-type": ("POST", b'{"query": "{ __typename }"}', None, 415, None),
    "put": ("PUT", b'{"query": "{ __typename }"}', "application/json", 405, None),
    "head": ("HEAD", b"", None, 405, None),
}  # fmt: skip


@pytest.mark.parametrize("case", TRANSPORT_ERRORS)
def test_refused_requests_get_json_errors(server: LiveServer, case: str) -> None:
    """Whatever is wrong with the request itself, the answer is a JSON error, never
    plain text and never a 500."""
    method, content, content_type, status, field = TRANSPORT_ERRORS[case]
    headers = {"content-type": content_type} if content_type else {}
    with server.client(hs_token(unique_user("transport"))) as c:
        r = c.request(method, "/graphql", content=content, headers=headers)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json", r.text
    if status == 405:
        assert r.headers["allow"] == "GET, POST"
    if method == "HEAD":
        return  # no body to read
    body = r.json()
    expected = {400: "validation_error", 405: "method_not_allowed", 415: "unsupported_media_type"}
    assert body["code"] == expected[status]
    assert isinstance(body["detail"], str) and body["detail"]
    if field is None:
        assert set(body) == {"detail", "code"}
    else:
        assert [e["field"] for e in body["errors"]] == [field], body


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


def test_get_queries_work_and_get_mutations_are_refused_as_json(server: LiveServer) -> None:
    with server.client(hs_token(unique_user("get"))) as c:
        r = c.get("/graphql", params={"query": "{ __typename }"})
        assert r.status_code == 200 and r.json() == {"data": {"__typename": "Query"}}
        r = c.get("/graphql", params={"query": 'mutation { createTask(input: {title: "via GET"}) { id } }'})
        assert r.status_code == 400
        assert r.json()["code"] == "validation_error"
        assert ids_of(list_page(c)) == []


# --------------------------------------------------------------------------- filters


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
def filter_user(server: LiveServer) -> tuple[str, dict[int, tuple[str, str | None, bool]]]:
    token = hs_token(unique_user("filter"))
    tasks = {}
    with server.client(token) as c:
        for title, description, completed in FILTER_TASKS:
            task = create(c, title=title, description=description, completed=completed)
            tasks[int(task["id"])] = (title, description, completed)
    return token, tasks


def _matches(task: tuple[str, str | None, bool], status: str, search: str | None) -> bool:
    title, description, completed = task
    if (status == "PENDING" and completed) or (status == "COMPLETED" and not completed):
        return False
    if search is None:
        return True
    needle = search.lower()
    return needle in title.lower() or needle in (description or "").lower()


@pytest.mark.parametrize("status", ["ALL", "PENDING", "COMPLETED", None])
@pytest.mark.parametrize(
    "search", [None, "milk", "MILK", "mIlK", "%", "50%", "_", "pay_bill", "\\", "c:\\t", "nothing-here"]
)
def test_status_and_search_filters(
    server: LiveServer,
    filter_user: tuple[str, dict[int, tuple[str, str | None, bool]]],
    status: str | None,
    search: str | None,
) -> None:
    token, tasks = filter_user
    expected = {i for i, t in tasks.items() if _matches(t, status or "ALL", search)}
    with server.client(token) as c:
        page = list_page(c, status=status, search=search, first=100)
    assert set(ids_of(page)) == expected
    assert len(ids_of(page)) == len(expected)
    assert page["totalCount"] == len(expected)


@pytest.mark.parametrize("status", ["all", "pending", "completed", None])
@pytest.mark.parametrize("search", [None, "milk", "MILK", "%", "_", "c:\\t", "nothing-here"])
def test_rest_status_and_search_filters(
    server: LiveServer,
    filter_user: tuple[str, dict[int, tuple[str, str | None, bool]]],
    status: str | None,
    search: str | None,
) -> None:
    token, tasks = filter_user
    expected = {i for i, t in tasks.items() if _matches(t, (status or "all").upper(), search)}
    params = {k: v for k, v in {"status": status, "search": search}.items() if v is not None}
    with server.client(token) as c:
        r = c.get("/api/tasks", params=params)
    assert r.status_code == 200, r.text
    assert sorted(t["id"] for t in r.json()) == sorted(expected)
    assert r.headers["X-Total-Count"] == str(len(expected))


def test_search_literals_are_not_wildcards(
    server: LiveServer, filter_user: tuple[str, dict[int, tuple[str, str | None, bool]]]
) -> None:
    """Spelled out: `%` and `_` match only themselves."""
    token, tasks = filter_user
    titles = {i: t[0] for i, t in tasks.items()}
    with server.client(token) as c:
        assert {titles[i] for i in ids_of(list_page(c, search="pay_bill"))} == {"pay_bill"}
        assert {titles[i] for i in ids_of(list_page(c, search="50%"))} == {"call mom"}
        assert {titles[i] for i in ids_of(list_page(c, search="%"))} == {"call mom", "100% done"}


def test_search_folds_case_beyond_ascii_in_title_and_description(
    server: LiveServer, database: DatabaseURL
) -> None:
    [folding] = db_fetch(database, "SELECT lower('ÄÖÜÉ') = 'äöüé' AS unicode")
    if not folding["unicode"]:
        pytest.skip("the test database's locale folds only ASCII case")
    with server.client(hs_token(unique_user("unicode"))) as c:
        title = int(create(c, title="Ärger im Büro")["id"])
        description = int(create(c, title="plain", description="Über den Fluss")["id"])
        create(c, title="Other", description="nothing")
        for search, expected in [
            ("ärger", {title}),
            ("ÄRGER IM BÜRO", {title}),
            ("büro", {title}),
            ("über", {description}),
            ("ÜBER DEN", {description}),
            ("ü", {title, description}),
        ]:
            assert set(ids_of(list_page(c, search=search))) == expected, search
            r = c.get("/api/tasks", params={"search": search})
            assert {t["id"] for t in r.json()} == expected, search
            assert r.headers["X-Total-Count"] == str(len(expected))


# --------------------------------------------------------------------------- sorting


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


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("sort", SORTS)
def test_sort_order(
    server: LiveServer, database: DatabaseURL, sort_user: tuple[str, str], sort: str, order: str
) -> None:
    user, token = sort_user
    expected = expected_order(rows_of(database, user), sort, order)
    with server.client(token) as c:
        page = list_page(c, sort=sort, order=order, first=100)
    assert ids_of(page) == expected
    assert page["totalCount"] == len(expected)
    assert page["pageInfo"]["hasNextPage"] is False


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


@pytest.mark.parametrize("order", [*ORDERS, None])
@pytest.mark.parametrize("sort", [*SORTS, None])
def test_rest_sort_order(
    server: LiveServer,
    database: DatabaseURL,
    sort_user: tuple[str, str],
    sort: str | None,
    order: str | None,
) -> None:
    user, token = sort_user
    effective_sort = sort or "CREATED"
    rows = rows_of(database, user)
    expected = expected_order(rows, effective_sort, order or DEFAULT_ORDER[effective_sort])
    params: dict[str, str | int] = {"limit": 500}
    if sort is not None:
        params["sort"] = sort.lower()
    if order is not None:
        params["order"] = order.lower()
    with server.client(token) as c:
        r = c.get("/api/tasks", params=params)
    assert r.status_code == 200, r.text
    assert [t["id"] for t in r.json()] == expected
    assert r.headers["X-Total-Count"] == str(len(rows))
    assert "Link" not in r.headers


def test_default_page_size_is_50(server: LiveServer, database: DatabaseURL) -> None:
    _, token = user_with_tasks(server, database, 60, "default-size")
    with server.client(token) as c:
        page = list_page(c)
        assert len(page["nodes"]) == 50
        assert page["pageInfo"]["hasNextPage"] is True
        assert page["totalCount"] == 60
        assert len(ok(c, LIST, {"first": None})["tasks"]["nodes"]) == 50


# --------------------------------------------------------------------------- pagination


@pytest.fixture(scope="module")
def big_user(server: LiveServer, database: DatabaseURL) -> tuple[str, str]:
    user, token = user_with_tasks(server, database, 250, "big")
    assert len(rows_of(database, user)) == 250
    return user, token


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


# --------------------------------------------------------------------------- REST offset pagination


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


def test_oversized_documents_are_refused(server: LiveServer) -> None:
    """Aliases could turn one request into hundreds of queries: bounded, with a clear code."""
    many_aliases = "{ " + " ".join(f"a{i}: tasks(first: 100) {{ totalCount }}" for i in range(25)) + " }"
    many_tokens = "{ tasks { nodes { " + " ".join(["id"] * 2000) + " } } }"
    with server.client(hs_token(unique_user())) as c:
        for document, code, says in (
            (many_aliases, "GRAPHQL_VALIDATION_FAILED", "aliases"),
            (many_tokens, "GRAPHQL_PARSE_FAILED", "tokens"),
        ):
            for _ in range(2):  # the second time from the caches
                body = c.post("/graphql", json={"query": document}).json()
                assert body.get("data") is None
                error = body["errors"][0]
                assert error["extensions"]["code"] == code and says in error["message"], body
