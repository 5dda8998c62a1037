"""JSON shapes of the REST shim: request bodies (types only; the rules live in
schema/validation.py) and documented responses.

The JSON schemas here are documentation: they say, as exactly as JSON Schema can,
what the rules in schema/validation.py accept, so that a schema-valid request is
accepted and a schema-invalid one refused (tests/rest/test_openapi_contract.py and
tests/rest/test_schemathesis.py check both directions). None of it changes validation.

The error body (ErrorOut) is documented with the errors, in schema/errors.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, cast

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictStr, WithJsonSchema
from pydantic.config import JsonDict
from pydantic_core import PydanticCustomError

from db.priority import TaskPriority
from db.queries import TASK_COLUMN_NAMES, WRITABLE_COLUMNS
from schema.types import SortOrder, Task, TaskSortField, TaskStatusFilter
from schema.validation import (
    DESCRIPTION_MAX_LENGTH,
    EARLIEST_DUE_YEAR,
    LATEST_DUE_YEAR,
    MAX_TASK_ID,
    SEARCH_MAX_LENGTH,
    TITLE_MAX_LENGTH,
    parse_due_date,
)
from schema.writes import NewTask, TaskChanges

# Exactly the characters str.strip() removes (those of str.isspace()), spelled out:
# `\s` means something slightly different in ECMA-262 (OpenAPI's regex dialect).
_SPACES = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_SPACE = f"[{_SPACES}]"
_VISIBLE = f"[^{_SPACES}\\x00]"


def _trimmed_pattern(max_length: int, *, blank_ok: bool) -> str:
    """Text whose trimmed form has 1 to max_length characters (or none, if blank_ok),
    none of them NUL (PostgreSQL text cannot hold it)."""
    core = f"{_VISIBLE}(?:[^\\x00]{{0,{max_length - 2}}}{_VISIBLE})?"
    if blank_ok:
        core = f"(?:{core})?"
    return f"^{_SPACE}*{core}{_SPACE}*$"


TITLE_PATTERN = _trimmed_pattern(TITLE_MAX_LENGTH, blank_ok=False)
SEARCH_PATTERN = _trimmed_pattern(SEARCH_MAX_LENGTH, blank_ok=True)
NO_NUL_PATTERN = r"^[^\x00]*$"
# RFC 3339 date-times as JSON Schema's `format` means them, in years 1000-9999. The two
# edge days are left out: their instant can fall outside those years in UTC (where the
# rule applies) depending on the offset, which a pattern cannot see.
DUE_DATE_PATTERN = r"^(?!1000-01-01|9999-12-31)[1-9][0-9]{3}-"
_TEXT_RULES = "valid Unicode (no NUL character, no unpaired surrogate)"


def _not_null(**extra: Any) -> Callable[[JsonDict], None]:
    """json_schema_extra for a field typed `X | None` only so that a null reaches
    schema/validation.py, which refuses it with its own message: documented as X."""

    def edit(schema: JsonDict) -> None:
        branches = [b for b in schema.pop("anyOf", ()) if b != {"type": "null"}]  # type: ignore[union-attr]
        if len(branches) == 1 and isinstance(branches[0], dict):
            schema.update(branches[0])
        elif branches:
            schema["anyOf"] = branches
        if "default" in schema and schema["default"] is None:
            del schema["default"]
        schema.update(extra)

    return edit


def _title_field() -> Any:
    return Field(
        default=None,
        json_schema_extra=_not_null(
            pattern=TITLE_PATTERN,
            description="Trimmed (leading and trailing whitespace removed), then 1 to"
            f" {TITLE_MAX_LENGTH} characters: not blank; {_TEXT_RULES}. Not nullable.",
            examples=["Buy milk"],
        ),
    )


def _empty_is_none(raw: object) -> object:
    """An empty form field means "no description", as it does for due_date."""
    return None if raw == "" else raw


Description = Annotated[StrictStr | None, BeforeValidator(_empty_is_none)]


def _description_field() -> Any:
    return Field(
        default=None,
        json_schema_extra={
            "anyOf": [
                {"type": "string", "maxLength": DESCRIPTION_MAX_LENGTH, "pattern": NO_NUL_PATTERN},
                {"type": "null"},
            ],
            "description": f"Stored as given (not trimmed), at most {DESCRIPTION_MAX_LENGTH}"
            f" characters; {_TEXT_RULES}. null or an empty string for none.",
        },
    )


def _completed_field(default: bool | None) -> Any:
    return Field(default=default, json_schema_extra=_not_null(description="Not nullable."))


def _priority_field(default: TaskPriority | None) -> Any:
    return Field(default=default, json_schema_extra=_not_null(description="Not nullable."))


_DUE = Field(default=None)


def _due_date(raw: object) -> datetime | None:
    """The GraphQL scalar's reading (schema.validation.parse_due_date), and "" (an
    empty date input) for none."""
    if raw == "":
        return None
    try:
        return parse_due_date(raw)
    except ValueError as error:
        raise PydanticCustomError("due_date", str(error)) from None


DueDate = Annotated[
    datetime | None,
    BeforeValidator(_due_date),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date-time", "pattern": DUE_DATE_PATTERN},
                {"type": "string", "const": ""},
                {"type": "null"},
            ],
            "description": "ISO 8601, documented as an RFC 3339 date-time; also accepted: a date"
            " alone, or a time without offset, read as UTC. The instant must fall in the years"
            f" {EARLIEST_DUE_YEAR}-{LATEST_DUE_YEAR} in UTC (so the pattern leaves out"
            f" {EARLIEST_DUE_YEAR}-01-01 and {LATEST_DUE_YEAR}-12-31, where that depends on the"
            " offset). null or an empty string for none.",
            "examples": ["2026-12-01T09:00:00Z"],
        }
    ),
]


class _Body(BaseModel):
    # Frontends echo whole tasks back: read-only and unknown fields are ignored.
    model_config = ConfigDict(extra="ignore")


class TaskCreateBody(_Body):
    title: StrictStr | None = _title_field()
    description: Description = _description_field()
    completed: StrictBool | None = _completed_field(False)
    priority: TaskPriority | None = _priority_field(TaskPriority.MEDIUM)
    due_date: DueDate = _DUE

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "required": ["title"],
            "description": "Read-only (`id`, `user_id`, `created_at`, `updated_at`) and unknown"
            " fields are ignored.",
        },
    )

    def to_new_task(self) -> NewTask:
        return NewTask.of(self)  # a null title, completed or priority is refused by validation


class TaskUpdateBody(_Body):
    title: StrictStr | None = _title_field()
    description: Description = _description_field()
    completed: StrictBool | None = _completed_field(None)
    priority: TaskPriority | None = _priority_field(None)
    due_date: DueDate = _DUE

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            # A body with nothing to change is a 400.
            "anyOf": [{"required": [name]} for name in WRITABLE_COLUMNS],
            "description": "At least one of the fields below. Read-only (`id`, `user_id`,"
            " `created_at`, `updated_at`) and unknown fields are ignored.",
        },
    )

    def to_changes(self) -> TaskChanges:
        """The fields the body has, null or not (a field left out stays NOT_GIVEN)."""
        return TaskChanges(**self.model_dump(exclude_unset=True))


class CompletionBody(_Body):
    completed: StrictBool | None = Field(
        default=None, description="true or false sets it; null or absent toggles."
    )


REST_MAX_LIMIT = 500


# Frontends often send the field and the direction in one parameter.
SORT_SPELLINGS = [f.value for f in TaskSortField] + [
    f"{f.value}:{o.value}" for f in TaskSortField for o in SortOrder
]
MAX_PAGE = 1_000_000_000


class ListQuery(BaseModel):
    """The query string of GET /tasks (ranges are checked by the resolver)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    status: TaskStatusFilter = TaskStatusFilter.ALL
    sort: TaskSortField = Field(
        default=TaskSortField.CREATED,
        json_schema_extra=_not_null(
            enum=SORT_SPELLINGS,
            description="A field, or `field:asc` / `field:desc` (then `order`, if given, must agree).",
        ),
    )
    # Absent means the default; a query string has no null to send.
    order: SortOrder | None = Field(
        default=None,
        json_schema_extra=_not_null(description="Default: desc for created/updated, asc otherwise."),
    )
    search: str | None = Field(
        default=None,
        json_schema_extra=_not_null(
            pattern=SEARCH_PATTERN,
            description="Case-insensitive, in title and description. Trimmed, then at most"
            f" {SEARCH_MAX_LENGTH} characters (blank: no filter); {_TEXT_RULES}.",
        ),
    )
    limit: int = Field(default=100, json_schema_extra={"minimum": 1, "maximum": REST_MAX_LIMIT})
    offset: int = Field(default=0, json_schema_extra={"minimum": 0, "maximum": MAX_TASK_ID})
    page: int | None = Field(
        default=None,
        json_schema_extra=_not_null(
            minimum=1,
            maximum=MAX_PAGE,
            description="1-based page of `limit` tasks: another way to say `offset` (not both).",
        ),
    )


def _response_field(**schema: Any) -> Any:
    """Documentation of what the service answers (responses are never validated)."""
    return Field(json_schema_extra=schema)


class TaskOut(BaseModel):
    id: int = _response_field(minimum=1, maximum=MAX_TASK_ID)
    user_id: str = _response_field(minLength=1, description="The owner: the token's `sub`.")
    title: str = _response_field(minLength=1, maxLength=TITLE_MAX_LENGTH)
    description: str | None = _response_field(maxLength=DESCRIPTION_MAX_LENGTH)
    completed: bool
    priority: TaskPriority
    due_date: datetime | None = _response_field(description="In UTC (`+00:00`).")
    created_at: datetime
    updated_at: datetime


def task_json(task: Task) -> dict[str, Any]:
    """What REST answers for a task: TaskOut's fields (tests/unit/test_task_shape.py checks)."""
    return {
        "id": int(task.id),
        "user_id": task.user_id,
        "title": task.title,
        "description": task.description,
        "completed": task.completed,
        "priority": task.priority.value,
        "due_date": task.due_date,
        "created_at": task.created_at,
        "updated_at": task.updated_at,
    }


def _compile_row_json() -> Callable[[Any], dict[str, Any]]:
    """task_json(Task.from_row(row)) in one generated dict display: REST's fields are the
    table's columns, in the same order, each value as asyncpg returns it (the id a number,
    the priority its text). A list page renders 50 rows: no Task, no conversions."""
    items = ", ".join(f"{name!r}: row[{i}]" for i, name in enumerate(TASK_COLUMN_NAMES))
    namespace: dict[str, Any] = {}
    exec(f"def row_json(row):\n    return {{{items}}}\n", namespace)
    return cast(Callable[[Any], dict[str, Any]], namespace["row_json"])


task_json_of_row = _compile_row_json()
"""task_json(Task.from_row(row)) for a row whose first columns are TASK_COLUMN_NAMES
(tests/unit/test_task_shape.py checks)."""
