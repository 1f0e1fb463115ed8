"""The review queue and the dissent list in the order of an index (PostgreSQL only).

A national queue holds ~80,000 disputed or flagged stations: each page of 25 sorted every one
of them (half a second). Partial btree indexes ordered as the pages are (largest impact first)
make the first page the index's first entries. The queue's index condition is the query's
(``smsgate.models.postgres_indexes.REVIEW_QUEUE_CONDITION``). SQLite deployments are small
enough to sort.

Revision ID: 2010
Revises: 2003
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "2010"
down_revision = "2003"
branch_labels = None
depends_on = None

#: Copied from smsgate.models.postgres_indexes when this revision was written.
ORDERED_INDEXES = {
    "ix_station_results_review_queue": (
        "station_results",
        "impact DESC, updated_at DESC, station_id",
        "status IN ('disputed', 'overridden') OR flagged",
    ),
    "ix_station_results_dissent_impact": ("station_results", "impact DESC, station_id", "dissent_open > 0"),
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, (table, columns, where) in ORDERED_INDEXES.items():
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({columns}) WHERE {where}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in ORDERED_INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
