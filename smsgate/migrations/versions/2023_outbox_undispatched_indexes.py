"""The outbox's indexes of undispatched events hold undispatched events only.

``ix_outbox_events_dispatched_seq`` (``dispatched_at, seq``) and
``ix_outbox_events_station_seq`` (``station_id, seq``) are read by three queries, all of
undispatched events: the worker's dispatch (``dispatched_at IS NULL ORDER BY seq``), the
claim's check that no earlier event of the station is undispatched, and the count of
undispatched events in the outbox's status. They become partial indexes on ``dispatched_at
IS NULL``, ``ix_outbox_events_undispatched`` (``seq``) and
``ix_outbox_events_undispatched_station`` (``station_id, seq``):

- dispatching an event (setting ``dispatched_at``; never a heap-only update, as
  ``dispatched_at`` was and still is what an index depends on) writes an entry in the primary
  key and the id's unique index only, not in these two: two index entries an event instead of
  four, four a report (a report writes two events);
- they hold the backlog, not every event of the night (some 16 million): a few pages,
  always in memory, whatever the table's size.

On a live database: each ``CREATE INDEX`` reads the whole table under a ``SHARE`` lock, which
holds back every report's events (and so every report) until it ends: seconds for a national
night's table. Run it between elections. The downgrade builds the full indexes again, the same way.

Revision ID: 2023
Revises: 2022
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "2023"
#: The head of the line that holds ``2021`` and ``2022``, the report's write cost.
down_revision = "2022"
branch_labels = None
depends_on = None

TABLE = "outbox_events"
UNDISPATCHED = "dispatched_at IS NULL"
#: name -> columns, as they were (migration 0005) and as they are.
OLD = {
    "ix_outbox_events_dispatched_seq": ["dispatched_at", "seq"],
    "ix_outbox_events_station_seq": ["station_id", "seq"],
}
NEW = {
    "ix_outbox_events_undispatched": ["seq"],
    "ix_outbox_events_undispatched_station": ["station_id", "seq"],
}


def upgrade() -> None:
    for name in OLD:
        op.drop_index(name, table_name=TABLE)
    where = sa.text(UNDISPATCHED)
    for name, columns in NEW.items():
        op.create_index(name, TABLE, columns, unique=False, postgresql_where=where, sqlite_where=where)


def downgrade() -> None:
    for name in NEW:
        op.drop_index(name, table_name=TABLE)
    for name, columns in OLD.items():
        op.create_index(name, TABLE, columns, unique=False)
