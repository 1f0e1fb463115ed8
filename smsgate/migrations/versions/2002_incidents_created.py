"""Index incidents.created_at: the whole country's incident list, newest first.

A national coordinator's incident page read every incident and every contact to keep the
newest 200; with this index it reads 200 of each.

Revision ID: 2002
Revises: 2001
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "2002"
down_revision = "2001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.create_index("ix_incidents_created_at", ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index("ix_incidents_created_at")
