"""The tables, as SQLModel classes. Alembic migrations are generated from this metadata."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from db.priority import TaskPriority

priority_type = sa.Enum(TaskPriority, name="task_priority", values_callable=lambda e: [m.value for m in e])

NOW = sa.text("now()")


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: str = Field(sa_column=sa.Column(sa.Text, primary_key=True))
    email: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    name: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    created_at: datetime = Field(
        sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False, server_default=NOW)
    )
    updated_at: datetime = Field(
        sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False, server_default=NOW)
    )


class Task(SQLModel, table=True):
    __tablename__ = "tasks"
    # Every index leads with user_id: a listing never reads another user's rows.
    # Each sort has its own (user_id, key, id) index so keyset pages are index range scans.
    __table_args__ = (
        sa.CheckConstraint("btrim(title) <> ''", name="ck_tasks_title_not_blank"),
        sa.CheckConstraint("title = btrim(title)", name="ck_tasks_title_trimmed"),
        sa.Index("ix_tasks_user_created", "user_id", "created_at", "id"),
        sa.Index("ix_tasks_user_updated", "user_id", "updated_at", "id"),
        sa.Index("ix_tasks_user_priority", "user_id", "priority", "id"),
        sa.Index("ix_tasks_user_completed", "user_id", "completed"),
        sa.Index(
            "ix_tasks_user_title",
            sa.text("user_id"),
            sa.text("lower(title)"),
            sa.text("id"),
        ),
        sa.Index(
            "ix_tasks_user_due_nulls_high",
            sa.text("user_id"),
            sa.text("COALESCE(due_date, 'infinity'::timestamptz)"),
            sa.text("id"),
        ),
        sa.Index(
            "ix_tasks_user_due_nulls_low",
            sa.text("user_id"),
            sa.text("COALESCE(due_date, '-infinity'::timestamptz)"),
            sa.text("id"),
        ),
    )

    id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.BigInteger, sa.Identity(always=False), primary_key=True),
    )
    user_id: str = Field(
        sa_column=sa.Column(sa.Text, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    )
    # Byte-order collation: sorting by title is the same on every server, whatever its locale.
    title: str = Field(sa_column=sa.Column(sa.String(200, collation="C"), nullable=False))
    description: str | None = Field(default=None, sa_column=sa.Column(sa.String(1000), nullable=True))
    completed: bool = Field(
        default=False, sa_column=sa.Column(sa.Boolean, nullable=False, server_default=sa.false())
    )
    priority: TaskPriority = Field(
        default=TaskPriority.MEDIUM,
        sa_column=sa.Column(priority_type, nullable=False, server_default=TaskPriority.MEDIUM.value),
    )
    due_date: datetime | None = Field(
        default=None, sa_column=sa.Column(sa.DateTime(timezone=True), nullable=True)
    )
    created_at: datetime = Field(
        sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False, server_default=NOW)
    )
    updated_at: datetime = Field(
        sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False, server_default=NOW)
    )


# Numbers the announcements of task changes (pg_notify on channel task_changes, see
# db/queries.py and db/live.py); migration 0002. (Alembic does not compare sequences.)
task_change_seq = sa.Sequence("task_change_seq", metadata=SQLModel.metadata)

metadata = SQLModel.metadata
