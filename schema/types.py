"""The GraphQL object types and enums. Plain data: resolvers build them from rows."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry

from db.priority import TaskPriority
from schema.rows import decode_task_row

# The database's enum is the GraphQL enum TaskPriority: its member names are the values.
strawberry.enum(TaskPriority)

_new = object.__new__


@strawberry.enum
class TaskStatusFilter(Enum):
    ALL = "all"
    PENDING = "pending"
    COMPLETED = "completed"


@strawberry.enum
class TaskSortField(Enum):
    CREATED = "created"
    UPDATED = "updated"
    TITLE = "title"
    DUE_DATE = "due_date"
    PRIORITY = "priority"


@strawberry.enum
class SortOrder(Enum):
    ASC = "asc"
    DESC = "desc"


@strawberry.type
class User:
    id: strawberry.ID
    email: str | None
    name: str | None


@strawberry.type
class Task:
    id: strawberry.ID
    title: str
    description: str | None
    completed: bool
    priority: TaskPriority
    due_date: datetime | None
    created_at: datetime
    updated_at: datetime
    user_id: strawberry.Private[str]

    @classmethod
    def from_row(cls, row: Any) -> Task:
        """A task from a row whose first columns are db.queries.TASK_COLUMN_NAMES, this
        type's fields (schema/rows.py).

        Listing builds one per row: filling the instance's __dict__ costs half of
        calling the dataclass __init__ with keywords (no __post_init__ or defaults to
        run here)."""
        task = _new(cls)
        task.__dict__ = decode_task_row(row)
        return task


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    # Cursors are encoded only when a client asks for them (REST never does).
    page_size: strawberry.Private[int]
    cursor_at: strawberry.Private[Callable[[int], str]]

    @strawberry.field
    async def start_cursor(self) -> str | None:
        return self.cursor_at(0) if self.page_size else None

    @strawberry.field
    async def end_cursor(self) -> str | None:
        return self.cursor_at(self.page_size - 1) if self.page_size else None


@strawberry.type
class TaskEdge:
    cursor: str
    node: Task


@strawberry.type
class TaskConnection:
    nodes: list[Task]
    page_info: PageInfo
    # Cursors and the total are computed only when a client asks for them.
    cursor_at: strawberry.Private[Callable[[int], str]]
    count_total: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field
    async def edges(self) -> list[TaskEdge]:
        return [TaskEdge(cursor=self.cursor_at(i), node=node) for i, node in enumerate(self.nodes)]

    @strawberry.field(description="Tasks matching the filters, across all pages.")
    async def total_count(self) -> int:
        return await self.count_total()
