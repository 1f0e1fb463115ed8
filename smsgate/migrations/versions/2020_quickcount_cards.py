"""The dashboard's quick-count card stored once for every process.

Each worker process recomputed the national card after every change of a sampled station's
result; now one process computes it under a lease and stores it here, and the others serve
the stored one (``smsgate.quickcount.stored``).

Revision ID: 2020
Revises: 2013
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "2020"
down_revision = "2013"
branch_labels = None
depends_on = None

#: JSON on SQLite, JSONB on PostgreSQL (frozen here rather than imported from the models).
JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "quickcount_cards",
        sa.Column("design_id", sa.Integer(), nullable=False),
        sa.Column("region_key", sa.String(length=13), nullable=False),
        sa.Column("fingerprint", sa.String(length=200), nullable=True),
        sa.Column("changes", sa.Integer(), nullable=True),
        sa.Column("document", JSON_TYPE, nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claim", sa.String(length=32), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("computations", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["design_id"], ["sample_designs.id"], name=op.f("fk_quickcount_cards_design_id_sample_designs")
        ),
        sa.PrimaryKeyConstraint("design_id", "region_key", name=op.f("pk_quickcount_cards")),
    )


def downgrade() -> None:
    op.drop_table("quickcount_cards")
