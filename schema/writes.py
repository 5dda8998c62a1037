"""What the resolvers take to write a task: plain dataclasses that GraphQL inputs
(schema/inputs.py) and REST bodies (rest_shim/models.py) both convert to.

Values are as the client sent them, not yet validated (schema/validation.py does
that): a null arrives as None, including where the rules refuse it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from enum import Enum
from typing import Any, Final, Literal, Protocol

from db.priority import TaskPriority


class _Omitted(Enum):
    NOT_GIVEN = "not given"


NOT_GIVEN: Final = _Omitted.NOT_GIVEN
"""A field the client left out of an update (None is a null it sent)."""
NotGiven = Literal[_Omitted.NOT_GIVEN]


class NewTaskFields(Protocol):
    """Whatever carries a new task's fields: a GraphQL input or a REST body."""

    @property
    def title(self) -> str | None: ...
    @property
    def description(self) -> str | None: ...
    @property
    def completed(self) -> bool | None: ...
    @property
    def priority(self) -> TaskPriority | None: ...
    @property
    def due_date(self) -> datetime | None: ...


@dataclass(frozen=True, slots=True)
class NewTask:
    """A task to create: every writable field (a field the client left out already
    holds its interface's default)."""

    title: str | None
    description: str | None
    completed: bool | None
    priority: TaskPriority | None
    due_date: datetime | None

    @classmethod
    def of(cls, source: NewTaskFields) -> NewTask:
        return cls(
            title=source.title,
            description=source.description,
            completed=source.completed,
            priority=source.priority,
            due_date=source.due_date,
        )


@dataclass(frozen=True, slots=True)
class TaskChanges:
    """The fields of an update: NOT_GIVEN leaves a field as it is, None sets it to null
    (which validation refuses for title, completed and priority)."""

    title: str | NotGiven | None = NOT_GIVEN
    description: str | NotGiven | None = NOT_GIVEN
    completed: bool | NotGiven | None = NOT_GIVEN
    priority: TaskPriority | NotGiven | None = NOT_GIVEN
    due_date: datetime | NotGiven | None = NOT_GIVEN

    def given(self) -> dict[str, Any]:
        """The fields given, in declaration order."""
        return {name: value for name in _CHANGE_FIELDS if (value := getattr(self, name)) is not NOT_GIVEN}


_CHANGE_FIELDS: Final = tuple(field.name for field in fields(TaskChanges))
