"""Quick count: sample designs, their strata and the stations drawn.

Revision ID: 0006
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sample_designs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("strata_level", sa.String(length=16), nullable=False),
        sa.Column("region_code", sa.String(length=16), nullable=True),
        sa.Column("seed", sa.Integer(), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sample_designs")),
    )
    op.create_table(
        "sample_strata",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("design_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("population", sa.Integer(), nullable=False),
        sa.Column("sample_size", sa.Integer(), nullable=False),
        sa.Column("registered", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["design_id"], ["sample_designs.id"], name=op.f("fk_sample_strata_design_id_sample_designs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sample_strata")),
        sa.UniqueConstraint("design_id", "code", name="uq_sample_strata_design_code"),
    )
    op.create_table(
        "sample_stations",
        sa.Column("design_id", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.String(length=13), nullable=False),
        sa.Column("stratum_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["design_id"], ["sample_designs.id"], name=op.f("fk_sample_stations_design_id_sample_designs")
        ),
        sa.ForeignKeyConstraint(
            ["station_id"], ["stations.id"], name=op.f("fk_sample_stations_station_id_stations")
        ),
        sa.ForeignKeyConstraint(
            ["stratum_id"], ["sample_strata.id"], name=op.f("fk_sample_stations_stratum_id_sample_strata")
        ),
        sa.PrimaryKeyConstraint("design_id", "station_id", name=op.f("pk_sample_stations")),
    )
    with op.batch_alter_table("sample_stations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sample_stations_stratum_id"), ["stratum_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sample_stations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sample_stations_stratum_id"))
    op.drop_table("sample_stations")
    op.drop_table("sample_strata")
    op.drop_table("sample_designs")
