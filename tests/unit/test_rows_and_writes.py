"""schema/rows.py and schema/writes.py alone: a row (a tuple standing in for an asyncpg
record) decoded into Task fields; NewTask and TaskChanges, and what NOT_GIVEN means."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from db.priority import TaskPriority
from db.queries import TASK_COLUMN_NAMES
from rest_shim.models import TaskUpdateBody
from schema.rows import decode_task_row
from schema.writes import NOT_GIVEN, NewTask, TaskChanges

CREATED = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
ROW = {
    "id": 7,
    "user_id": "user-1",
    "title": "Buy milk",
    "description": "two litres",
    "completed": True,
    "priority": "high",
    "due_date": datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
    "created_at": CREATED,
    "updated_at": CREATED,
}


def row(**overrides: Any) -> tuple[Any, ...]:
    values = {**ROW, **overrides}
    return tuple(values[name] for name in TASK_COLUMN_NAMES)


# ---------------------------------------------------------------------------- rows.py


def test_a_row_decodes_to_task_fields() -> None:
    assert decode_task_row(row()) == {
        "id": "7",  # a GraphQL ID is text
        "user_id": "user-1",
        "title": "Buy milk",
        "description": "two litres",
        "completed": True,
        "priority": TaskPriority.HIGH,  # asyncpg gives the enum's text
        "due_date": datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
        "created_at": CREATED,
        "updated_at": CREATED,
    }


@pytest.mark.parametrize(
    ("text", "member"),
    [("low", TaskPriority.LOW), ("medium", TaskPriority.MEDIUM), ("high", TaskPriority.HIGH)],
)
def test_each_priority_text_decodes_to_its_member(text: str, member: TaskPriority) -> None:
    assert decode_task_row(row(priority=text))["priority"] is member


@pytest.mark.parametrize(("task_id", "text"), [(1, "1"), (2**63 - 1, "9223372036854775807")])
def test_ids_become_decimal_text(task_id: int, text: str) -> None:
    assert decode_task_row(row(id=task_id))["id"] == text


def test_nullable_columns_stay_null() -> None:
    decoded = decode_task_row(row(description=None, due_date=None))
    assert decoded["description"] is None
    assert decoded["due_date"] is None


def test_columns_after_the_task_are_ignored() -> None:
    # The listing appends its sort value to each row.
    assert decode_task_row((*row(), "sort value", 3)) == decode_task_row(row())


def test_values_are_kept_as_the_same_objects() -> None:
    due = datetime(2027, 1, 1, tzinfo=UTC)
    assert decode_task_row(row(due_date=due))["due_date"] is due


@pytest.mark.parametrize("priority", ["urgent", "HIGH", None])
def test_a_priority_outside_the_enum_is_not_silently_decoded(priority: str | None) -> None:
    with pytest.raises(KeyError):
        decode_task_row(row(priority=priority))


def test_a_short_row_is_refused() -> None:
    with pytest.raises(IndexError):
        decode_task_row(row()[:-1])


@given(
    st.integers(min_value=1, max_value=2**63 - 1),
    st.text(min_size=1, max_size=200),
    st.none() | st.text(max_size=50),
    st.booleans(),
    st.sampled_from(list(TaskPriority)),
)
def test_any_row_decodes_field_for_column(
    task_id: int, title: str, description: str | None, completed: bool, priority: TaskPriority
) -> None:
    decoded = decode_task_row(
        row(id=task_id, title=title, description=description, completed=completed, priority=priority.value)
    )
    assert list(decoded) == list(TASK_COLUMN_NAMES)
    assert int(decoded["id"]) == task_id
    assert (decoded["title"], decoded["description"], decoded["completed"]) == (title, description, completed)
    assert decoded["priority"] is priority


# -------------------------------------------------------------------------- writes.py


def test_new_task_copies_the_fields_of_anything_that_has_them() -> None:
    due = datetime(2026, 12, 1, tzinfo=UTC)
    source = SimpleNamespace(
        title="t", description=None, completed=False, priority=TaskPriority.LOW, due_date=due, extra="ignored"
    )
    assert NewTask.of(source) == NewTask("t", None, False, TaskPriority.LOW, due)


def test_new_task_and_task_changes_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        NewTask("t", None, False, TaskPriority.LOW, None).title = "u"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        TaskChanges().title = "u"  # type: ignore[misc]


def test_not_given_is_not_null() -> None:
    assert NOT_GIVEN is not None
    assert NOT_GIVEN != None  # noqa: E711 (the point: == None must not match it either)
    assert TaskChanges(title=None) != TaskChanges()


def test_nothing_given_by_default() -> None:
    changes = TaskChanges()
    assert all(getattr(changes, f.name) is NOT_GIVEN for f in dataclasses.fields(TaskChanges))
    assert changes.given() == {}


@pytest.mark.parametrize(
    ("changes", "given"),
    [
        (TaskChanges(title="t"), {"title": "t"}),
        (TaskChanges(title=None), {"title": None}),  # a null sent is given
        (TaskChanges(description=None, due_date=None), {"description": None, "due_date": None}),
        (TaskChanges(completed=False), {"completed": False}),  # falsy, still given
        (TaskChanges(description=""), {"description": ""}),
        (TaskChanges(priority=TaskPriority.MEDIUM, title=NOT_GIVEN), {"priority": TaskPriority.MEDIUM}),
    ],
)
def test_given_is_what_the_client_sent_null_included(changes: TaskChanges, given: dict[str, Any]) -> None:
    assert changes.given() == given


def test_given_lists_fields_in_declaration_order() -> None:
    changes = TaskChanges(
        due_date=None, priority=TaskPriority.LOW, completed=True, description="d", title="t"
    )
    assert list(changes.given()) == ["title", "description", "completed", "priority", "due_date"]


@given(st.sets(st.sampled_from(["title", "description", "completed", "priority", "due_date"])))
def test_given_is_exactly_the_fields_set(names: set[str]) -> None:
    values: dict[str, Any] = {
        "title": None,
        "description": None,
        "completed": None,
        "priority": None,
        "due_date": None,
    }
    changes = TaskChanges(**{name: values[name] for name in names})
    assert set(changes.given()) == names


@pytest.mark.parametrize(
    ("body", "given"),
    [
        ({}, {}),
        ({"title": None}, {"title": None}),  # sent null: given
        ({"description": None}, {"description": None}),
        ({"completed": False}, {"completed": False}),
        ({"priority": "low"}, {"priority": TaskPriority.LOW}),
        ({"due_date": "2026-12-01T09:00:00Z"}, {"due_date": datetime(2026, 12, 1, 9, 0, tzinfo=UTC)}),
        (
            {"id": 3, "user_id": "someone", "created_at": "x", "title": "t"},
            {"title": "t"},
        ),  # read-only ignored
    ],
)
def test_a_rest_update_body_gives_only_the_fields_it_has(body: dict[str, Any], given: dict[str, Any]) -> None:
    assert TaskUpdateBody.model_validate(body).to_changes().given() == given
