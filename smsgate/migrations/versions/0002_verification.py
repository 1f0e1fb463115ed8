"""Verification and coordination: incidents, invite codes, failed-code log, and a
partial index of missing stations for ``BELUM``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(length=12), nullable=False),
        sa.Column("place_key", sa.String(length=13), nullable=False),
        sa.Column("station_id", sa.String(length=13), nullable=True),
        sa.Column("region_code", sa.String(length=16), nullable=True),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("inbound_message_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_incidents_contact_id_contacts")
        ),
        sa.ForeignKeyConstraint(
            ["inbound_message_id"],
            ["inbound_messages.id"],
            name=op.f("fk_incidents_inbound_message_id_inbound_messages"),
        ),
        sa.ForeignKeyConstraint(
            ["region_code"], ["regions.code"], name=op.f("fk_incidents_region_code_regions")
        ),
        sa.ForeignKeyConstraint(
            ["station_id"], ["stations.id"], name=op.f("fk_incidents_station_id_stations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
        sa.UniqueConstraint("ref", name=op.f("uq_incidents_ref")),
    )
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.create_index("ix_incidents_place_created", ["place_key", "created_at"], unique=False)

    op.create_table(
        "invites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=12), nullable=False),
        sa.Column("region_code", sa.String(length=16), nullable=False),
        sa.Column("tps", sa.Integer(), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("max_uses", sa.Integer(), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["region_code"], ["regions.code"], name=op.f("fk_invites_region_code_regions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invites")),
        sa.UniqueConstraint("code", name=op.f("uq_invites_code")),
    )

    op.create_table(
        "registration_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registration_failures")),
    )
    with op.batch_alter_table("registration_failures", schema=None) as batch_op:
        batch_op.create_index("ix_registration_failures_phone_created", ["phone", "created_at"], unique=False)

    op.create_index(
        "ix_station_results_missing",
        "station_results",
        ["station_id"],
        unique=False,
        postgresql_ops={"station_id": "varchar_pattern_ops"},
        postgresql_where=sa.text("status = 'missing'"),
        sqlite_where=sa.text("status = 'missing'"),
    )


def downgrade() -> None:
    op.drop_index("ix_station_results_missing", table_name="station_results")
    with op.batch_alter_table("registration_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_registration_failures_phone_created")
    op.drop_table("registration_failures")
    op.drop_table("invites")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index("ix_incidents_place_created")
    op.drop_table("incidents")
