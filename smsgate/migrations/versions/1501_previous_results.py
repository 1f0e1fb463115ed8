"""Quick count: the previous election's results per station.

Revision ID: 1501
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "1501"
down_revision = "0006"
branch_labels = None
depends_on = None

#: JSON on SQLite, JSONB on PostgreSQL (frozen here rather than imported from the models).
JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "previous_results",
        sa.Column("station_id", sa.String(length=13), nullable=False),
        sa.Column("desa", sa.String(length=10), nullable=False),
        sa.Column("votes", JSON_TYPE, nullable=False),
        sa.Column("valid", sa.Integer(), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["station_id"], ["stations.id"], name=op.f("fk_previous_results_station_id_stations")
        ),
        sa.PrimaryKeyConstraint("station_id", name=op.f("pk_previous_results")),
    )
    with op.batch_alter_table("previous_results", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_previous_results_desa"), ["desa"], unique=False)
        batch_op.create_index(batch_op.f("ix_previous_results_imported_at"), ["imported_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("previous_results", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_previous_results_imported_at"))
        batch_op.drop_index(batch_op.f("ix_previous_results_desa"))
    op.drop_table("previous_results")
