"""Dashboard at national scale: indexed prefix lookups under any collation, time-ordered
indexes for the activity chart and the message log, trigram search, stored activity minutes.

- PostgreSQL only: ``varchar_pattern_ops`` indexes for every ``LIKE 'prefix%'`` region filter
  (a plain btree serves those only under the ``C`` collation), and ``pg_trgm`` GIN indexes for
  the message log's ``LIKE '%text%'`` search. Where the extension cannot be created (a role
  without the right), the search indexes are skipped with a warning: searches stay correct,
  only slower. The names are listed in ``smsgate.models.postgres_indexes``.
- Both databases: ``reports.created_at``, ``inbound_messages.received_at``,
  ``outbound_messages.created_at``, and the ``activity_minutes``/``activity_marks`` cache.

Creating these on a full national database takes a minute or two and blocks writes to the
tables meanwhile: run ``smsgate init`` before the night, not during it.

Revision ID: 2001
Revises: 0002, 0003, 0004 (the tables it indexes)
Create Date: 2026-11-30
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "2001"
down_revision = ("0002", "0003", "0004")
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

#: Copied from smsgate.models.postgres_indexes when this revision was written (migrations
#: stay as they were run, whatever the module says later).
PREFIX_INDEXES = {
    "ix_stations_id_prefix": ("stations", "id varchar_pattern_ops", None),
    "ix_station_results_id_prefix": ("station_results", "station_id varchar_pattern_ops", None),
    "ix_reports_station_prefix_created": ("reports", "station_id varchar_pattern_ops, created_at", None),
    "ix_flags_open_station_prefix": ("flags", "station_id varchar_pattern_ops", "resolved_at IS NULL"),
    "ix_incidents_place_prefix_created": ("incidents", "place_key varchar_pattern_ops, created_at", None),
    "ix_contacts_region_prefix": ("contacts", "region_code varchar_pattern_ops", None),
    "ix_official_results_station_prefix": ("official_results", "station_id varchar_pattern_ops", None),
    "ix_region_counters_key_prefix": ("region_counters", "region_key varchar_pattern_ops", None),
}
SEARCH_INDEXES = {
    "ix_inbound_messages_body_trgm": ("inbound_messages", "lower(body) gin_trgm_ops"),
    "ix_inbound_messages_from_trgm": ("inbound_messages", "from_number gin_trgm_ops"),
    "ix_outbound_messages_text_trgm": ("outbound_messages", "lower(text) gin_trgm_ops"),
    "ix_outbound_messages_to_trgm": ("outbound_messages", "to_number gin_trgm_ops"),
}
TIME_INDEXES = {
    "ix_reports_created_at": ("reports", "created_at"),
    "ix_inbound_messages_received_at": ("inbound_messages", "received_at"),
    "ix_outbound_messages_created_at": ("outbound_messages", "created_at"),
}


def _trigram_available() -> bool:
    connection = op.get_bind()
    savepoint = connection.begin_nested()
    try:
        connection.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except sa.exc.DBAPIError as error:
        savepoint.rollback()
        log.warning(
            "pg_trgm could not be created (%s); the message log's text search works without its "
            "index, only slower. A superuser can run CREATE EXTENSION pg_trgm, then smsgate init.",
            str(error.orig).strip().splitlines()[0],
        )
        return False
    savepoint.commit()
    return True


def upgrade() -> None:
    op.create_table(
        "activity_minutes",
        sa.Column("region_key", sa.String(length=13), nullable=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reports", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("region_key", "minute", name=op.f("pk_activity_minutes")),
    )
    op.create_table(
        "activity_marks",
        sa.Column("region_key", sa.String(length=13), nullable=False),
        sa.Column("settled_until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("region_key", name=op.f("pk_activity_marks")),
    )
    for name, (table, column) in TIME_INDEXES.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(name, [column], unique=False)
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, (table, columns, where) in PREFIX_INDEXES.items():
        condition = f" WHERE {where}" if where else ""
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({columns}){condition}")
    if _trigram_available():
        for name, (table, expression) in SEARCH_INDEXES.items():
            op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin ({expression})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in [*SEARCH_INDEXES, *PREFIX_INDEXES]:
            op.execute(f"DROP INDEX IF EXISTS {name}")
    for name, (table, _column) in TIME_INDEXES.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)
    op.drop_table("activity_marks")
    op.drop_table("activity_minutes")
