"""index notifications by checkpoint

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_notifications_checkpoint", "notifications", ["checkpoint_id"])


def downgrade() -> None:
    op.drop_index("ix_notifications_checkpoint", table_name="notifications")
