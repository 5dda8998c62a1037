"""GraphQL input types. Each converts to the plain dataclass its resolver takes
(schema/writes.py), as the REST bodies do."""

from __future__ import annotations

from datetime import datetime

import strawberry

from db.priority import TaskPriority
from schema.writes import NewTask, TaskChanges


@strawberry.input
class CreateTaskInput:
    title: str
    description: str | None = None
    completed: bool = False
    priority: TaskPriority = TaskPriority.MEDIUM
    due_date: datetime | None = None

    def to_new_task(self) -> NewTask:
        return NewTask.of(self)


@strawberry.input(description="Only the fields given are changed; null clears description and dueDate.")
class UpdateTaskInput:
    title: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    completed: bool | None = strawberry.UNSET
    priority: TaskPriority | None = strawberry.UNSET
    due_date: datetime | None = strawberry.UNSET

    def to_changes(self) -> TaskChanges:
        """The fields given (a field left out is UNSET here, NOT_GIVEN there)."""
        given = {name: value for name, value in vars(self).items() if value is not strawberry.UNSET}
        return TaskChanges(**given)
