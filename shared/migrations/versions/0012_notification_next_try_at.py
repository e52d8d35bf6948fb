"""notifications keep when their next try is due, so a try lost with Redis is found

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07

Nullable: rows written before this revision have none. A row pending or retrying then keeps
its try in a Celery task as before; the sweep (`worker.notify.overdue`) looks only at rows
with a time. The partial index covers only the rows pending or retrying now, the few beat's
minute looks at.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_UNFINISHED = sa.text("status IN ('pending', 'retrying')")


def upgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_try_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            "ix_notifications_next_try_at",
            ["next_try_at"],
            postgresql_where=_UNFINISHED,
            sqlite_where=_UNFINISHED,
        )


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_next_try_at")
        batch_op.drop_column("next_try_at")
