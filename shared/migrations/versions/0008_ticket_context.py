"""tickets keep their context: subject, group, assignee, tags, type, channel, requester

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

All nullable: a ticket stored before this revision has no context until its next event is
applied (or ``escalera recompute`` re-evaluates it), which folds it from every stored event.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("subject", sa.String(1000)),
    ("group_name", sa.String(256)),
    ("assignee", sa.String(256)),
    ("tags", sa.Text()),
    ("ticket_type", sa.String(64)),
    ("channel", sa.String(64)),
    ("requester_id", sa.String(256)),
)


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        for name, kind in _COLUMNS:
            batch_op.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        for name, _kind in reversed(_COLUMNS):
            batch_op.drop_column(name)
