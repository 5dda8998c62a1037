"""Every operation of the API, once. GraphQL fields and REST routes both call these.

Each function takes the request context and plain arguments (writes take the
dataclasses of schema/writes.py), enforces ownership and validation, and returns
schema types or raises a DomainError. An operation has one name here, in the REST
route function and in db/queries.py; GraphQL spells it in camelCase (`createTask`),
except the reads `task` (get_task) and `tasks` (list_tasks).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import strawberry

from db import queries
from schema.context import RequestContext
from schema.cursor import decode_cursor, encode_cursor
from schema.errors import NotFound
from schema.types import (
    PageInfo,
    SortOrder,
    Task,
    TaskConnection,
    TaskSortField,
    TaskStatusFilter,
    User,
)
from schema.validation import (
    check_offset,
    check_page_size,
    clean_new_task,
    clean_search,
    clean_task_changes,
    parse_task_id,
)
from schema.writes import NewTask, TaskChanges

NOT_FOUND_MESSAGE = "Task not found."
_COMPLETED_FILTER = {
    TaskStatusFilter.ALL: None,
    TaskStatusFilter.PENDING: False,
    TaskStatusFilter.COMPLETED: True,
}
_TIME_SORTS = (TaskSortField.CREATED, TaskSortField.UPDATED)


def default_order(sort: TaskSortField) -> SortOrder:
    """Newest first for timestamps, A-Z / soonest / lowest first otherwise."""
    return SortOrder.DESC if sort in _TIME_SORTS else SortOrder.ASC


@dataclass(frozen=True, slots=True)
class PageRequest:
    """Where a listing starts: after a cursor (GraphQL) or at an offset (REST)."""

    size: int
    after: str | None = None
    offset: int = 0
    size_field: str = "first"
    max_size: int = 100


async def me(ctx: RequestContext) -> User:
    viewer = await ctx.viewer()
    email, name = viewer.email, viewer.name
    if email is None or name is None:
        row = await queries.get_user(ctx.db, viewer.id)
        if row is not None:
            email, name = email or row["email"], name or row["name"]
    return User(id=strawberry.ID(viewer.id), email=email, name=name)


async def get_task(ctx: RequestContext, task_id: str | int) -> Task | None:
    """The task, or None when it is missing or belongs to someone else."""
    viewer = await ctx.viewer()
    row = await queries.get_task(ctx.db, viewer.id, parse_task_id(task_id))
    return None if row is None else Task.from_row(row)


async def require_task(ctx: RequestContext, task_id: str | int) -> Task:
    task = await get_task(ctx, task_id)
    if task is None:
        raise NotFound(NOT_FOUND_MESSAGE)
    return task


@dataclass(frozen=True, slots=True)
class TaskPage:
    """One page of task rows, as list_tasks reads them before they become Tasks (REST's
    list renders them to JSON itself: rest_shim/routes.py)."""

    rows: list[Any]  # db.queries.list_tasks' records, the page's only
    has_next: bool
    has_previous: bool
    cursor_at: Callable[[int], str]
    count_total: Callable[[], Awaitable[int]]


async def list_task_rows(
    ctx: RequestContext,
    page: PageRequest,
    status: TaskStatusFilter = TaskStatusFilter.ALL,
    sort: TaskSortField = TaskSortField.CREATED,
    order: SortOrder | None = None,
    search: str | None = None,
) -> TaskPage:
    viewer = await ctx.viewer()
    order = order or default_order(sort)
    size = check_page_size(page.size, field=page.size_field, maximum=page.max_size)
    offset = check_offset(page.offset)
    after = None if page.after is None else decode_cursor(page.after, sort.value, order.value)
    flt = queries.TaskFilter(viewer.id, _COMPLETED_FILTER[status], clean_search(search))
    rows = await queries.list_tasks(
        ctx.db,
        flt,
        sort=sort.value,
        descending=order is SortOrder.DESC,
        limit=size + 1,
        after=after,
        offset=offset,
    )
    has_next = len(rows) > size
    rows = rows[:size]

    def cursor_at(index: int) -> str:
        row = rows[index]
        return encode_cursor(sort.value, order.value, row["sort_value"], row["id"])

    async def count_total() -> int:
        if after is None and not has_next and (rows or offset == 0):
            return offset + len(rows)  # this page reaches the end: no need to count
        return await queries.count_tasks(ctx.db, flt)

    return TaskPage(rows, has_next, after is not None or offset > 0, cursor_at, count_total)


async def list_tasks(
    ctx: RequestContext,
    page: PageRequest,
    status: TaskStatusFilter = TaskStatusFilter.ALL,
    sort: TaskSortField = TaskSortField.CREATED,
    order: SortOrder | None = None,
    search: str | None = None,
) -> TaskConnection:
    found = await list_task_rows(ctx, page, status, sort, order, search)
    return TaskConnection(
        nodes=[Task.from_row(row) for row in found.rows],
        page_info=PageInfo(
            has_next_page=found.has_next,
            has_previous_page=found.has_previous,
            page_size=len(found.rows),
            cursor_at=found.cursor_at,
        ),
        cursor_at=found.cursor_at,
        count_total=found.count_total,
    )


async def create_task(ctx: RequestContext, data: NewTask) -> Task:
    viewer = await ctx.viewer()
    values = clean_new_task(data)
    row = await queries.create_task(ctx.db, (viewer.id, viewer.email, viewer.name), values)
    return Task.from_row(row)


async def update_task(ctx: RequestContext, task_id: str | int, data: TaskChanges) -> Task:
    viewer = await ctx.viewer()
    pk = parse_task_id(task_id)
    values = clean_task_changes(data)
    row = await queries.update_task(ctx.db, viewer.id, pk, values)
    if row is None:
        raise NotFound(NOT_FOUND_MESSAGE)
    return Task.from_row(row)


async def toggle_task_completion(
    ctx: RequestContext, task_id: str | int, completed: bool | None = None
) -> Task:
    """Flip `completed`, or set it when `completed` is given."""
    viewer = await ctx.viewer()
    row = await queries.toggle_task_completion(ctx.db, viewer.id, parse_task_id(task_id), completed)
    if row is None:
        raise NotFound(NOT_FOUND_MESSAGE)
    return Task.from_row(row)


async def delete_task(ctx: RequestContext, task_id: str | int) -> strawberry.ID:
    viewer = await ctx.viewer()
    pk = parse_task_id(task_id)
    if not await queries.delete_task(ctx.db, viewer.id, pk):
        raise NotFound(NOT_FOUND_MESSAGE)
    return strawberry.ID(str(pk))
