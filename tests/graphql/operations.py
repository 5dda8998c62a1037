"""GraphQL documents and the checks every GraphQL test makes on a response: each error
carries `extensions.code`, and no error shows server internals."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

import httpx

from db.url import DatabaseURL
from tests.support import db_fetch

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

MAX_BIGINT = 2**63 - 1


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


def encode(raw: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(raw).encode()).decode().rstrip("=")
