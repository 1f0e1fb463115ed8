"""Per-station event sequence and destination-targeted events (catch-up snapshots).

``station_results.event_sequence`` counts a station's events; each event copies it into
``outbox_events.station_sequence``, so a receiver that sees 7 after 5 knows it missed one.
Existing events are numbered here in their ``seq`` order (the order they were written in,
under the station lock). ``outbox_events.destination`` limits an event to one destination.

Revision ID: 1801
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "1801"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("station_sequence", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("destination", sa.String(length=64), nullable=True))
    with op.batch_alter_table("station_results", schema=None) as batch_op:
        batch_op.add_column(sa.Column("event_sequence", sa.Integer(), server_default="0", nullable=False))
    # Window functions: PostgreSQL, and SQLite since 3.25.
    op.execute(
        """
        UPDATE outbox_events SET station_sequence = (
            SELECT numbered.n FROM (
                SELECT seq, row_number() OVER (PARTITION BY station_id ORDER BY seq) AS n
                FROM outbox_events WHERE station_id IS NOT NULL
            ) AS numbered WHERE numbered.seq = outbox_events.seq
        ) WHERE station_id IS NOT NULL
        """
    )
    op.execute(
        """
        UPDATE station_results SET event_sequence = COALESCE((
            SELECT max(e.station_sequence) FROM outbox_events e
            WHERE e.station_id = station_results.station_id
        ), 0)
        """
    )


def downgrade() -> None:
    with op.batch_alter_table("station_results", schema=None) as batch_op:
        batch_op.drop_column("event_sequence")
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.drop_column("destination")
        batch_op.drop_column("station_sequence")
