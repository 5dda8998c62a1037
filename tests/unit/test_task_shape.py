"""One Task shape: the table, the columns every statement returns, the row decoding, the
GraphQL type, REST's TaskOut and what REST sends (task_json), and the writable fields
of every input, agree in names, order and (where one Python type says it) types."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, get_type_hints

import pytest
import strawberry
from graphql import GraphQLObjectType
from strawberry.types import get_object_definition
from strawberry.utils.str_converters import to_camel_case

from db import queries, tables
from db.priority import TaskPriority
from db.queries import TASK_COLUMN_NAMES, WRITABLE_COLUMNS
from rest_shim.models import TaskCreateBody, TaskOut, TaskUpdateBody, task_json, task_json_of_row
from schema.inputs import CreateTaskInput, UpdateTaskInput
from schema.responses import FastJSONResponse
from schema.rows import decode_task_row
from schema.schema import schema
from schema.types import Task
from schema.validation import clean_new_task
from schema.writes import NewTask, TaskChanges

# What the database sets; every other column is written by clients.
READ_ONLY = ("id", "user_id", "created_at", "updated_at")
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _row(**overrides: Any) -> tuple[Any, ...]:
    """A row in TASK_COLUMN_NAMES order, as asyncpg returns it (priority as text), with
    a trailing extra column like the listing's sort_value."""
    values: dict[str, Any] = {
        "id": 7,
        "user_id": "user-1",
        "title": "Buy milk",
        "description": "two litres",
        "completed": True,
        "priority": "high",
        "due_date": datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
        "created_at": NOW,
        "updated_at": datetime(2026, 11, 23, 8, 30, tzinfo=UTC),
    }
    values.update(overrides)
    assert list(values) == list(TASK_COLUMN_NAMES)
    return (*values.values(), "sort value")


ROWS = [_row(), _row(description=None, due_date=None, completed=False, priority="low")]


def _field_names(cls: Any) -> list[str]:
    return [f.name for f in fields(cls)]


def _fields_of(strawberry_type: type) -> list[str]:
    return [f.python_name for f in get_object_definition(strawberry_type, strict=True).fields]


def test_the_table_has_the_task_columns_in_their_order() -> None:
    assert list(tables.Task.metadata.tables["tasks"].columns.keys()) == list(TASK_COLUMN_NAMES)


def test_statements_return_the_task_columns_first() -> None:
    flt = queries.TaskFilter("user-1")
    sql, _ = queries.list_statement(flt, sort="created", descending=True, limit=51)
    assert sql.startswith(f"SELECT {', '.join(TASK_COLUMN_NAMES)}, ")
    assert ", ".join(TASK_COLUMN_NAMES) == queries.TASK_COLUMNS


def test_writable_columns_are_the_task_columns_the_database_does_not_set() -> None:
    assert tuple(c for c in TASK_COLUMN_NAMES if c not in READ_ONLY) == WRITABLE_COLUMNS


@pytest.mark.parametrize("row", ROWS)
def test_a_decoded_row_holds_each_column_under_its_name(row: tuple[Any, ...]) -> None:
    task = Task.from_row(row)
    by_column = dict(zip(TASK_COLUMN_NAMES, row, strict=False))
    assert list(vars(task)) == list(TASK_COLUMN_NAMES)
    for name in TASK_COLUMN_NAMES:
        expected = by_column[name]
        if name == "id":
            expected = str(expected)
        elif name == "priority":
            expected = TaskPriority(expected)
        assert getattr(task, name) == expected, name
        assert type(getattr(task, name)) is type(expected), name
    assert decode_task_row(row) == vars(task)


def test_the_graphql_type_has_the_task_columns_the_owner_private() -> None:
    assert sorted(_fields_of(Task)) == sorted(TASK_COLUMN_NAMES)
    public = [c for c in TASK_COLUMN_NAMES if c != "user_id"]
    graphql_type = schema._schema.get_type("Task")
    assert isinstance(graphql_type, GraphQLObjectType)
    assert sorted(graphql_type.fields) == sorted(to_camel_case(c) for c in public)


def test_rest_documents_the_task_columns_in_their_order() -> None:
    assert list(TaskOut.model_fields) == list(TASK_COLUMN_NAMES)


def test_the_column_types_agree_across_table_graphql_and_rest() -> None:
    table = get_type_hints(tables.Task)
    graphql = get_type_hints(Task)  # strawberry.Private[str] reads as str
    rest = {name: field.annotation for name, field in TaskOut.model_fields.items()}
    # The id is the one difference: unset until inserted, text in GraphQL.
    assert (table["id"], graphql["id"], rest["id"]) == (int | None, strawberry.ID, int)
    for name in TASK_COLUMN_NAMES:
        if name != "id":
            assert table[name] == graphql[name] == rest[name], name


@pytest.mark.parametrize("row", ROWS)
def test_what_rest_sends_is_a_valid_task_out(row: tuple[Any, ...]) -> None:
    task = Task.from_row(row)
    sent = task_json(task)
    assert list(sent) == list(TASK_COLUMN_NAMES)
    # As FastJSONResponse renders it, checked strictly: no string for the id, no number
    # for a bool, nothing TaskOut would have to coerce.
    body = bytes(FastJSONResponse(sent).body)
    out = TaskOut.model_validate_json(body, strict=True)
    assert out.model_dump() == {**vars(task), "id": int(task.id)}
    assert TaskOut.model_validate(sent).model_dump() == sent
    # The REST list's renderer (rows straight to JSON): the same, key order included.
    straight = task_json_of_row(row)
    assert list(straight.items()) == list(sent.items())
    assert bytes(FastJSONResponse(straight).body) == body


def test_every_input_has_the_writable_columns() -> None:
    expected = list(WRITABLE_COLUMNS)
    assert _field_names(NewTask) == _field_names(TaskChanges) == expected
    assert _fields_of(CreateTaskInput) == expected
    assert _fields_of(UpdateTaskInput) == expected
    assert list(TaskCreateBody.model_fields) == list(TaskUpdateBody.model_fields) == expected


def test_a_new_task_is_cleaned_into_every_writable_column() -> None:
    new = NewTask("Buy milk", None, False, TaskPriority.MEDIUM, None)
    assert list(clean_new_task(new)) == list(WRITABLE_COLUMNS)


@pytest.mark.parametrize(
    "sent",
    [{}, {"description": None}, {"title": "x", "due_date": None}, {"priority": "high", "completed": False}],
)
def test_both_interfaces_tell_a_null_from_a_field_left_out(sent: dict[str, Any]) -> None:
    arguments: dict[str, Any] = {k: TaskPriority(v) if k == "priority" else v for k, v in sent.items()}
    graphql = UpdateTaskInput(**arguments)
    rest = TaskUpdateBody.model_validate(sent)
    assert graphql.to_changes() == rest.to_changes()
    assert graphql.to_changes().given() == sent
