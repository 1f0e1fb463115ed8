"""Candidate aliases: words a volunteer may write instead of the candidate's code.

``candidates.aliases`` holds them upper case and space-separated (``AMIN ANIES``); empty for
candidates imported without the optional ``aliases`` column.

Revision ID: 1901
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "1901"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("candidates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("aliases", sa.String(length=400), server_default="", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("candidates", schema=None) as batch_op:
        batch_op.drop_column("aliases")
