"""Official per-station results published by the election authority.

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None

#: JSON on SQLite, JSONB on PostgreSQL (frozen here rather than imported from the models).
JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "official_results",
        sa.Column("station_id", sa.String(length=13), nullable=False),
        sa.Column("votes", JSON_TYPE, nullable=False),
        sa.Column("valid", sa.Integer(), nullable=False),
        sa.Column("invalid", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["station_id"], ["stations.id"], name=op.f("fk_official_results_station_id_stations")
        ),
        sa.PrimaryKeyConstraint("station_id", name=op.f("pk_official_results")),
    )


def downgrade() -> None:
    op.drop_table("official_results")
