"""task change events: the sequence numbering live-update announcements

Every write to `tasks` announces itself with `pg_notify('task_changes', ...)` in the
same statement (db/queries.py); each announcement carries an id from this sequence,
which clients see as the event id (SSE `id:`, GraphQL `eventId`).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 09:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE SEQUENCE task_change_seq AS bigint")


def downgrade() -> None:
    op.execute("DROP SEQUENCE task_change_seq")
