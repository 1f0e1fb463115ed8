"""Gateway fleet: per-device state and heartbeats, and routing columns on outbound SMS.

``outbound_messages`` gains ``via`` (the device the contact wrote to), ``priority`` (volunteers
first, strangers last), ``device`` (the fleet device that took the row) and ``route`` (why that
one). ``gateway_devices`` replaces the per-provider ``send_buckets``: the bucket, the daily
count, failures and the operator's switch are per device. ``gateway_pings`` keeps each
device's latest heartbeat. ``inbound_messages`` gets an index for "received through this
device in the last 15 minutes".

Revision ID: 1301
Revises: 0004, 1101
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "1301"
down_revision = ("0004", "1101")
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gateway_devices",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("refilled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("sent_today", sa.Integer(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_gateway_devices")),
    )
    op.create_table(
        "gateway_pings",
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("device", sa.String(length=64), nullable=False),
        sa.Column("last_ping_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("health", sa.String(length=8), nullable=False),
        sa.Column("battery", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("provider", "device", name=op.f("pk_gateway_pings")),
    )
    with op.batch_alter_table("outbound_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("via", sa.String(length=64), server_default="", nullable=False))
        batch_op.add_column(sa.Column("priority", sa.Integer(), server_default="2", nullable=False))
        batch_op.add_column(sa.Column("device", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("route", sa.String(length=200), nullable=True))
        batch_op.drop_index("ix_outbound_messages_due")
        batch_op.create_index(
            "ix_outbound_messages_due",
            ["status", "provider", "via", "priority", "next_attempt_at"],
            unique=False,
        )
        batch_op.create_index("ix_outbound_messages_device_sent", ["device", "sent_at"], unique=False)
    op.drop_table("send_buckets")
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_inbound_messages_device_received", ["provider", "device", "received_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_inbound_messages_device_received")
    op.create_table(
        "send_buckets",
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("provider", name=op.f("pk_send_buckets")),
    )
    with op.batch_alter_table("outbound_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_outbound_messages_device_sent")
        batch_op.drop_index("ix_outbound_messages_due")
        batch_op.create_index(
            "ix_outbound_messages_due", ["status", "provider", "next_attempt_at"], unique=False
        )
        batch_op.drop_column("route")
        batch_op.drop_column("device")
        batch_op.drop_column("priority")
        batch_op.drop_column("via")
    op.drop_table("gateway_pings")
    op.drop_table("gateway_devices")
