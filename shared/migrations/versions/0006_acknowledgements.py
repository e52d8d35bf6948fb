"""acknowledgements: who acknowledged a page, and when, by checkpoint and route

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

Acknowledgements made before this revision (``notifications.acknowledged_at``) are copied in,
one per checkpoint and route, the earliest kept, by "unknown (before 0006)".
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "acknowledgements",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column(
            "checkpoint_id",
            Id,
            sa.ForeignKey("checkpoints.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("route", sa.String(64), nullable=False),
        sa.Column("dedupe_key", sa.String(400), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_by", sa.String(120), nullable=False),
        sa.Column("via", sa.String(8), nullable=False),
        sa.UniqueConstraint("checkpoint_id", "route", name="uq_acknowledgements_checkpoint_route"),
    )
    op.execute(
        """
        INSERT INTO acknowledgements
            (checkpoint_id, route, dedupe_key, acknowledged_at, acknowledged_by, via)
        SELECT checkpoint_id, route, MIN(dedupe_key), MIN(acknowledged_at),
               'unknown (before 0006)', 'api'
        FROM notifications
        WHERE acknowledged_at IS NOT NULL
        GROUP BY checkpoint_id, route
        """
    )


def downgrade() -> None:
    op.drop_table("acknowledgements")
