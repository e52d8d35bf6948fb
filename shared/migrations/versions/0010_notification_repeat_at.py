"""notifications keep when their page repeats next, so Redis's repeats lane can be rebuilt

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08

Nullable: a page sent before this revision repeats as Redis had it armed (its row has no
``repeat_at``, and a repeat of it is still written when it comes due); from its next repeat
on, the database holds the time. The partial index covers only rows that have one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_HAS_ONE = sa.text("repeat_at IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("repeat_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            "ix_notifications_repeat_at",
            ["repeat_at"],
            postgresql_where=_HAS_ONE,
            sqlite_where=_HAS_ONE,
        )


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_repeat_at")
        batch_op.drop_column("repeat_at")
