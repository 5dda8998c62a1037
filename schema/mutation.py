"""Mutation fields: each one hands its arguments to the resolver of the same name
(`createTask` to resolvers.create_task), inputs converted to the resolvers' dataclasses."""

from __future__ import annotations

import strawberry

from schema import resolvers
from schema.inputs import CreateTaskInput, UpdateTaskInput
from schema.query import Ctx
from schema.types import Task


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def create_task(self, info: Ctx, input: CreateTaskInput) -> Task:
        return await resolvers.create_task(info.context, input.to_new_task())

    @strawberry.mutation(description="Changes only the fields given in `input`.")
    async def update_task(self, info: Ctx, id: strawberry.ID, input: UpdateTaskInput) -> Task:
        return await resolvers.update_task(info.context, id, input.to_changes())

    @strawberry.mutation(description="Deletes the task and returns its id.")
    async def delete_task(self, info: Ctx, id: strawberry.ID) -> strawberry.ID:
        return await resolvers.delete_task(info.context, id)

    @strawberry.mutation
    async def toggle_task_completion(self, info: Ctx, id: strawberry.ID) -> Task:
        return await resolvers.toggle_task_completion(info.context, id)
