"""checkpoints say why they paged nobody: caught up by a later one of their clock, or too old

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08

Both nullable: every checkpoint fired before this revision paged as its routes said.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("checkpoints", schema=None) as batch_op:
        batch_op.add_column(sa.Column("not_paged", sa.String(16), nullable=True))
        batch_op.add_column(sa.Column("caught_up_by", sa.String(300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("checkpoints", schema=None) as batch_op:
        batch_op.drop_column("caught_up_by")
        batch_op.drop_column("not_paged")
