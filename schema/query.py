"""Query fields: each one hands its arguments to its resolver: `me` to resolvers.me,
`task` to resolvers.get_task and `tasks` to resolvers.list_tasks (the names REST and
db/queries.py use too)."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from schema import resolvers
from schema.context import RequestContext
from schema.types import SortOrder, Task, TaskConnection, TaskSortField, TaskStatusFilter, User

GRAPHQL_MAX_FIRST = 100

Ctx = Info[RequestContext, None]


@strawberry.type
class Query:
    @strawberry.field(description="The signed-in user.")
    async def me(self, info: Ctx) -> User:
        return await resolvers.me(info.context)

    @strawberry.field(description="One of your tasks; null when it is missing or not yours.")
    async def task(self, info: Ctx, id: strawberry.ID) -> Task | None:
        return await resolvers.get_task(info.context, id)

    @strawberry.field(
        description=(
            "Your tasks, one page at a time. `order` defaults to DESC for CREATED/UPDATED"
            " and ASC otherwise; ties are broken by id; tasks without a due date sort last."
            f" `first` is at most {GRAPHQL_MAX_FIRST}."
        )
    )
    async def tasks(
        self,
        info: Ctx,
        status: TaskStatusFilter | None = TaskStatusFilter.ALL,
        sort: TaskSortField | None = TaskSortField.CREATED,
        order: SortOrder | None = None,
        search: str | None = None,
        first: int | None = 50,
        after: str | None = None,
    ) -> TaskConnection:
        # An explicit null means "the default", as for an omitted argument.
        page = resolvers.PageRequest(
            size=50 if first is None else first, after=after, max_size=GRAPHQL_MAX_FIRST
        )
        return await resolvers.list_tasks(
            info.context,
            page,
            status or TaskStatusFilter.ALL,
            sort or TaskSortField.CREATED,
            order,
            search,
        )
