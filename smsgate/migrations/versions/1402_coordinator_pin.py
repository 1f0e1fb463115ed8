"""Coordinator PINs: the hashed PIN on each contact, the first-PIN deadline of coordinators who
registered with an invite, and wrong PINs for the lockout.

Revision ID: 1402
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "1402"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pin_hash", sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column("pin_set_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("pin_first_by", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "pin_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_pin_failures_contact_id_contacts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pin_failures")),
    )
    with op.batch_alter_table("pin_failures", schema=None) as batch_op:
        batch_op.create_index("ix_pin_failures_contact_created", ["contact_id", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_table("pin_failures")
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("pin_first_by")
        batch_op.drop_column("pin_set_at")
        batch_op.drop_column("pin_hash")
