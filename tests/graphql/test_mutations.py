"""GraphQL mutations: create, update, delete, toggle, and NOT_FOUND for a missing task."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.graphql.operations import (
    DELETE,
    GET,
    MAX_BIGINT,
    TOGGLE,
    UPDATE,
    create,
    gql,
    ids_of,
    list_page,
    ok,
    parse_time,
    the_error,
)
from tests.support import LiveServer, hs_token, unique_user


def test_create_task_defaults_and_trimming(token: str, server: LiveServer) -> None:
    with server.client(token) as c:
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


def test_create_task_with_every_field(token: str, server: LiveServer) -> None:
    with server.client(token) as c:
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


def test_title_and_description_length_limits_accept_the_maximum(token: str, server: LiveServer) -> None:
    with server.client(token) as c:
        task = create(c, title="  " + "t" * 200 + "  ", description="é" * 1000)
        assert task["title"] == "t" * 200
        assert task["description"] == "é" * 1000
        changed = ok(c, UPDATE, {"id": task["id"], "input": {"title": "\t" + "u" * 200 + "\n"}})
        assert changed["updateTask"]["title"] == "u" * 200


def test_update_changes_only_given_fields(token: str, server: LiveServer) -> None:
    with server.client(token) as c:
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


def test_update_with_null_title_is_rejected_and_changes_nothing(token: str, server: LiveServer) -> None:
    with server.client(token) as c:
        task = create(c, title="Keep", description="d")
        body = gql(c, UPDATE, {"id": task["id"], "input": {"title": None, "description": "changed"}})
        the_error(body, "BAD_USER_INPUT", "title")
        assert body["data"] is None
        assert ok(c, GET, {"id": task["id"]})["task"] == task


def test_delete_returns_id_then_task_is_gone(token: str, server: LiveServer) -> None:
    with server.client(token) as c:
        keep = create(c, title="keep")
        gone = create(c, title="gone")
        assert ok(c, DELETE, {"id": gone["id"]}) == {"deleteTask": gone["id"]}
        assert ok(c, GET, {"id": gone["id"]}) == {"task": None}
        assert ids_of(list_page(c)) == [int(keep["id"])]
        the_error(gql(c, DELETE, {"id": gone["id"]}), "NOT_FOUND")
        assert ok(c, GET, {"id": keep["id"]})["task"] == keep


def test_toggle_task_completion(token: str, server: LiveServer) -> None:
    with server.client(token) as c:
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
def test_missing_task(token: str, server: LiveServer, deleted_id: str, operation: str, which: str) -> None:
    task_id = deleted_id if which == "deleted" else str(MAX_BIGINT)
    query, variables = MISSING_OPERATIONS[operation]
    with server.client(token) as c:
        assert ok(c, GET, {"id": task_id}) == {"task": None}
        body = gql(c, query, {"id": task_id, **variables})
    the_error(body, "NOT_FOUND")
    assert body["data"] is None
