"""JSON shapes of the REST shim: request bodies (types only; the rules live in
schema/validation.py) and documented responses."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictStr, WithJsonSchema
from pydantic_core import PydanticCustomError

from schema.inputs import CreateTaskInput, UpdateTaskInput
from schema.types import SortOrder, Task, TaskPriority, TaskSortField, TaskStatusFilter
from schema.validation import DESCRIPTION_MAX_LENGTH, TITLE_MAX_LENGTH, parse_due_date

# Documented here, enforced once in schema/validation.py.
_TITLE = Field(
    default=None,
    json_schema_extra={"maxLength": TITLE_MAX_LENGTH, "description": "Trimmed; not blank."},
)
_DESCRIPTION = Field(default=None, json_schema_extra={"maxLength": DESCRIPTION_MAX_LENGTH})
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
            "anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}],
            "description": "ISO 8601; a date, or a time without offset, is read as UTC; "
            "years 1000-9999 (UTC); null or an empty string for none.",
        }
    ),
]


class _Body(BaseModel):
    # Frontends echo whole tasks back: read-only and unknown fields are ignored.
    model_config = ConfigDict(extra="ignore")


class TaskCreateBody(_Body):
    title: StrictStr | None = _TITLE
    description: StrictStr | None = _DESCRIPTION
    completed: StrictBool | None = False
    priority: TaskPriority | None = TaskPriority.MEDIUM
    due_date: DueDate = _DUE

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={"required": ["title"]},
    )

    def to_input(self) -> CreateTaskInput:
        return CreateTaskInput(
            title=self.title,  # type: ignore[arg-type]  # None is reported by validation
            description=self.description,
            completed=self.completed,  # type: ignore[arg-type]
            priority=self.priority,  # type: ignore[arg-type]
            due_date=self.due_date,
        )


class TaskUpdateBody(_Body):
    title: StrictStr | None = _TITLE
    description: StrictStr | None = _DESCRIPTION
    completed: StrictBool | None = None
    priority: TaskPriority | None = None
    due_date: DueDate = _DUE

    def to_input(self) -> UpdateTaskInput:
        return UpdateTaskInput(**self.model_dump(exclude_unset=True))


class CompletionBody(_Body):
    completed: StrictBool | None = None


REST_MAX_LIMIT = 500


class ListQuery(BaseModel):
    """The query string of GET /tasks (ranges are checked by the resolver)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    status: TaskStatusFilter = TaskStatusFilter.ALL
    sort: TaskSortField = TaskSortField.CREATED
    order: SortOrder | None = Field(
        default=None, description="Default: desc for created/updated, asc otherwise."
    )
    search: str | None = Field(default=None, description="Case-insensitive, title and description.")
    limit: int = Field(default=100, json_schema_extra={"minimum": 1, "maximum": REST_MAX_LIMIT})
    offset: int = Field(default=0, json_schema_extra={"minimum": 0})


class TaskOut(BaseModel):
    id: int
    user_id: str
    title: str
    description: str | None
    completed: bool
    priority: TaskPriority
    due_date: datetime | None
    created_at: datetime
    updated_at: datetime


class FieldErrorOut(BaseModel):
    field: str
    message: str


class ErrorOut(BaseModel):
    detail: str
    code: str
    errors: list[FieldErrorOut] | None = None


def task_json(task: Task) -> dict[str, Any]:
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
