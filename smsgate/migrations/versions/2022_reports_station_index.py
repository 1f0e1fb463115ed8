"""One index entry less per report on PostgreSQL: ``ix_reports_station_created`` goes.

Every report wrote an entry in both ``ix_reports_station_created`` (``station_id,
created_at``) and ``ix_reports_station_prefix_created`` (``station_id varchar_pattern_ops,
created_at``, migration ``2001``). The second serves everything the first did: every query
of reports by station compares ``station_id`` with ``=``, ``IN`` or a ``LIKE`` prefix and
orders by ``created_at`` (a station's reports, the station lock's current reports, the review
queue's reports of a page's stations, the outliers of a region), and ``=`` is an operator of
the ``varchar_pattern_ops`` class as much as of the default one. No query orders reports by
``station_id`` or compares it with ``<`` or ``>``, the only uses the pattern class cannot
serve. The foreign key's check when a station is deleted finds its reports by ``=`` as well.

SQLite keeps it: it has no pattern index (``models.postgres_indexes.SQLITE_ONLY_INDEXES``).

On a live database: ``DROP INDEX`` takes an ``ACCESS EXCLUSIVE`` lock on ``reports`` for a
moment (no rewrite), but waits for every transaction that holds a lock on the table (a long
export, say) and holds back every report behind it while it waits. The downgrade builds the
index again under a ``SHARE`` lock: no report is stored until the build over the whole table
ends (seconds to a minute for the millions of reports of a national night).

Revision ID: 2022
Revises: 2102
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "2022"
#: The head of the line that holds ``2021``, the last migration about a report's write cost.
down_revision = "2102"
branch_labels = None
depends_on = None

INDEX = "ix_reports_station_created"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {INDEX}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(INDEX, "reports", ["station_id", "created_at"], unique=False)
