"""GraphQL input types; the REST shim builds the same objects from JSON bodies."""

from __future__ import annotations

from datetime import datetime

import strawberry

from schema.types import TaskPriority


@strawberry.input
class CreateTaskInput:
    title: str
    description: str | None = None
    completed: bool = False
    priority: TaskPriority = TaskPriority.MEDIUM
    due_date: datetime | None = None


@strawberry.input(description="Only the fields given are changed; null clears description and dueDate.")
class UpdateTaskInput:
    title: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    completed: bool | None = strawberry.UNSET
    priority: TaskPriority | None = strawberry.UNSET
    due_date: datetime | None = strawberry.UNSET
