"""A task's priority: the values of PostgreSQL's enum type task_priority (db/tables.py).

The one priority enum of the service: GraphQL registers it as its enum TaskPriority
(member names LOW, MEDIUM, HIGH are the GraphQL values; schema/types.py) and REST
documents and accepts it under the same name (its values are the JSON strings)."""

from __future__ import annotations

from enum import StrEnum


class TaskPriority(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
