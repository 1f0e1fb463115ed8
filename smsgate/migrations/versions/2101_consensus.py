"""Consensus of many volunteers: dissent kept per station, outvoted and cleared per report.

``station_results`` gains the dissent count, the part no reviewer has cleared, the impact
that orders the review queue and whether a dissent would change the winner; ``reports``
gains ``outvoted`` (the volunteers' outvoted rates) and who cleared a dissenting report.
Existing rows start with no dissent; the next report at a station recomputes it.

Revision ID: 2101
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "2101"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("station_results", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dissent", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("dissent_open", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("impact", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("contested", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_index(
        "ix_station_results_dissent_open",
        "station_results",
        ["station_id"],
        unique=False,
        postgresql_ops={"station_id": "varchar_pattern_ops"},
        postgresql_where=sa.text("dissent_open > 0"),
        sqlite_where=sa.text("dissent_open > 0"),
    )
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("outvoted", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("dissent_cleared_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("dissent_cleared_by", sa.String(length=200), nullable=True))
    op.create_index(
        "ix_reports_outvoted_station",
        "reports",
        ["station_id"],
        unique=False,
        postgresql_ops={"station_id": "varchar_pattern_ops"},
        postgresql_where=sa.text("outvoted"),
        sqlite_where=sa.text("outvoted"),
    )


def downgrade() -> None:
    op.drop_index("ix_reports_outvoted_station", table_name="reports")
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_column("dissent_cleared_by")
        batch_op.drop_column("dissent_cleared_at")
        batch_op.drop_column("outvoted")
    op.drop_index("ix_station_results_dissent_open", table_name="station_results")
    with op.batch_alter_table("station_results", schema=None) as batch_op:
        batch_op.drop_column("contested")
        batch_op.drop_column("impact")
        batch_op.drop_column("dissent_open")
        batch_op.drop_column("dissent")
