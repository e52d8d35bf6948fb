"""notifications keep when a message held in its route's quiet hours is released

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-10

Nullable: no notification was held before this revision. The partial index covers only the
rows held now (``status = 'held'``), the few beat's minute looks at.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_HELD = sa.text("status = 'held'")


def upgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("release_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            "ix_notifications_release_at",
            ["release_at"],
            postgresql_where=_HELD,
            sqlite_where=_HELD,
        )


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_release_at")
        batch_op.drop_column("release_at")
