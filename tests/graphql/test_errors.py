"""GraphQL client errors: BAD_USER_INPUT per field, syntax and validation errors, input that
cannot be stored, and requests refused before they reach the schema (JSON errors, never a 500)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from db.url import DatabaseURL
from tests.graphql.operations import (
    CREATE,
    DELETE,
    GET,
    LEAK_MARKERS,
    LIST,
    MAX_BIGINT,
    TOGGLE,
    UPDATE,
    assert_no_internals,
    create,
    encode,
    gql,
    list_page,
    rows_of,
    the_error,
)
from tests.support import LiveServer, hs_token, unique_user


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


def test_bad_literal_enum_is_a_client_error(token: str, server: LiveServer) -> None:
    with server.client(token) as c:
        body = gql(c, "{ tasks(sort: NAME) { totalCount } }")
    assert "data" not in body  # a request error: nothing was executed
    assert body["errors"][0]["extensions"]["code"] in {"GRAPHQL_VALIDATION_FAILED", "BAD_USER_INPUT"}


def test_syntax_error_is_a_client_error(token: str, server: LiveServer) -> None:
    with server.client(token) as c:
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
def test_refused_requests_get_json_errors(token: str, server: LiveServer, case: str) -> None:
    """Whatever is wrong with the request itself, the answer is a JSON error, never
    plain text and never a 500."""
    method, content, content_type, status, field = TRANSPORT_ERRORS[case]
    headers = {"content-type": content_type} if content_type else {}
    with server.client(token) as c:
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
