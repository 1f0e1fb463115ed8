"""Cheaper writes per report for PostgreSQL: heap-only updates of results and counters.

Measured with ``bench/pg_cost.py``: a report's update of its station's result row was never
heap-only (HOT), because the review queue's index contained ``updated_at``, which every report
changes; so each report wrote a new entry in every index of the row and left a dead one behind.

- ``station_results.review_at``: ``updated_at`` while the station is in the review queue, NULL
  otherwise, computed by the database (stored on PostgreSQL; virtual on SQLite, which has no
  index on it). The queue's index orders by it instead of ``updated_at``, so a report that
  leaves the station's status, flag and dissent as they were changes no indexed column.
- ``fillfactor``: 90 for ``station_results`` (the table is rewritten once here, by the new
  column), 70 for ``region_counters``, leaving room on each page for the new row version a HOT
  update needs. Pages written before this keep their fill until ``VACUUM FULL``.
- The sampled stations' change log (``2003``) fires per row on PostgreSQL instead of per
  statement: the same rows, without a transition table built for every update.
- Flood control reads a sender's latest message ordered by ``received_at DESC, id DESC``.
  When the sender's index did not hold that order and the planner could not tell a sender from
  a time window (no statistics yet: a new table, or autovacuum off), PostgreSQL's generic plan
  walked ``ix_inbound_messages_received_at`` backwards through every sender's messages of the
  duplicate window (ten minutes) for each SMS. On PostgreSQL ``ix_inbound_messages_from_prefix``
  (the phone search's) becomes ``(from_number varchar_pattern_ops, received_at, id)``, holding
  that order, and replaces ``ix_inbound_messages_from_received``: one index entry per message
  less. SQLite keeps ``ix_inbound_messages_from_received``, with ``id`` added.
- ``ix_reports_superseded_by_id`` (``0008``) goes: no query reads reports by the report that
  superseded them any more (the one that did is gone; reports are never deleted, the other
  thing such an index serves), and every report wrote an entry in it.

On a live PostgreSQL database: nothing here is ``CONCURRENTLY``. Its first statements, the
``DROP INDEX``, take an ``ACCESS EXCLUSIVE`` lock on ``reports`` and on ``inbound_messages``;
the new column takes one on ``station_results`` and rewrites the table. ``smsgate init`` runs
every pending migration in one transaction, so the three tables can be neither read nor
written until the whole upgrade commits. On the national data set (2,140,372 messages,
823,220 station results) the upgrade took 8.4 s, 4.4 s of it the rewrite of
``station_results`` and 3.0 s the new phone-search index over the messages, and a report's
writes waited 8.1 s (``bench/migration_locks.py --revision 2021``; load average 4 on a shared
machine, the data in cache). That is about the 8 s a webhook waits for a lock before it
answers "not stored" (the gateway delivers the SMS again; over Twilio the volunteer is asked
to send it again), and dashboard pages on those tables wait as long. Before it starts, the
first lock waits for every transaction holding one on ``reports`` (a long CSV export, say),
and every report queues behind it meanwhile: run ``smsgate init`` off-peak, with
``PGOPTIONS='-c lock_timeout=10s'`` so that it gives up rather than queue (it rolls back; run
it again). A ``CONCURRENTLY`` version would not make the upgrade online: the stored generated
column rewrites ``station_results`` under ``ACCESS EXCLUSIVE`` whatever the indexes do, and
Alembic's ``autocommit_block`` would commit every migration ``init`` applied before this one
in its single transaction, where a failed concurrent build leaves an invalid index that
``IF NOT EXISTS`` would keep.

Revision ID: 2021
Revises: 2020, 0008
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "2021"
#: After ``0008``, which created the index on ``reports.superseded_by_id`` this drops.
down_revision = ("2020", "0008")
branch_labels = None
depends_on = None

#: Copied from smsgate.models.reports / postgres_indexes when this revision was written.
CONDITION = "status IN ('disputed', 'overridden') OR flagged"  # the review queue's
REVIEW_AT = f"CASE WHEN {CONDITION} THEN updated_at END"
REVIEW_INDEX = "ix_station_results_review_queue"
OLD_REVIEW_ORDER = "impact DESC, updated_at DESC, station_id"
NEW_REVIEW_ORDER = "impact DESC, review_at DESC, station_id"
FILLFACTORS = {"station_results": 90, "region_counters": 70}
FLOOD_INDEX = "ix_inbound_messages_from_received"
PREFIX_INDEX = "ix_inbound_messages_from_prefix"

LOG = (
    "INSERT INTO sample_result_changes (design_id, station_id) "
    "SELECT s.design_id, s.station_id FROM sample_stations s WHERE s.station_id = {station}"
)
ROW_TRIGGERS = [
    f"""
    CREATE FUNCTION smsgate_log_sample_result_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        {LOG.format(station="NEW.station_id")};
        RETURN NULL;
    END $$
    """,
    *(
        f"""
        CREATE TRIGGER tr_station_results_sample_{event.lower()} AFTER {event} ON station_results
        FOR EACH ROW EXECUTE FUNCTION smsgate_log_sample_result_change()
        """
        for event in ("INSERT", "UPDATE")
    ),
]
#: As migration 2003 created them.
STATEMENT_TRIGGERS = [
    f"""
    CREATE FUNCTION smsgate_log_sample_result_changes() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        {LOG.format(station="ANY (SELECT station_id FROM changed)")};
        RETURN NULL;
    END $$
    """,
    *(
        f"""
        CREATE TRIGGER tr_station_results_sample_{event.lower()} AFTER {event} ON station_results
        REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
        EXECUTE FUNCTION smsgate_log_sample_result_changes()
        """
        for event in ("INSERT", "UPDATE")
    ),
]


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _drop_sample_triggers(function: str) -> None:
    for event in ("insert", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS tr_station_results_sample_{event} ON station_results")
    op.execute(f"DROP FUNCTION IF EXISTS {function}()")


def _flood_index(columns: str) -> None:
    """``ix_inbound_messages_from_received`` on SQLite (its columns), the phone search's prefix
    index on PostgreSQL (its definition)."""
    if _postgresql():
        op.execute(f"DROP INDEX IF EXISTS {PREFIX_INDEX}")
        op.execute(f"CREATE INDEX {PREFIX_INDEX} ON inbound_messages ({columns})")
        return
    op.drop_index(FLOOD_INDEX, table_name="inbound_messages")
    op.create_index(FLOOD_INDEX, "inbound_messages", columns.split(", "), unique=False)


def upgrade() -> None:
    op.drop_index("ix_reports_superseded_by_id", table_name="reports")
    if not _postgresql():
        _flood_index("from_number, received_at, id")
        # SQLite adds a virtual generated column in place (a stored one would need the table
        # rebuilt, which would drop its triggers); it has no review index to serve.
        op.execute(
            f"ALTER TABLE station_results ADD COLUMN review_at DATETIME GENERATED ALWAYS AS ({REVIEW_AT})"
        )
        return
    op.drop_index(FLOOD_INDEX, table_name="inbound_messages")
    _flood_index("from_number varchar_pattern_ops, received_at, id")
    for table, fill in FILLFACTORS.items():
        op.execute(f"ALTER TABLE {table} SET (fillfactor = {fill})")
    # A stored generated column rewrites the table: its rows are packed to the new fillfactor.
    op.execute(
        "ALTER TABLE station_results ADD COLUMN review_at TIMESTAMP WITH TIME ZONE"
        f" GENERATED ALWAYS AS ({REVIEW_AT}) STORED"
    )
    op.execute(f"DROP INDEX IF EXISTS {REVIEW_INDEX}")
    op.execute(f"CREATE INDEX {REVIEW_INDEX} ON station_results ({NEW_REVIEW_ORDER}) WHERE {CONDITION}")
    _drop_sample_triggers("smsgate_log_sample_result_changes")
    for statement in ROW_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    if _postgresql():
        _drop_sample_triggers("smsgate_log_sample_result_change")
        for statement in STATEMENT_TRIGGERS:
            op.execute(statement)
        op.execute(f"DROP INDEX IF EXISTS {REVIEW_INDEX}")
        op.execute("ALTER TABLE station_results DROP COLUMN review_at")
        op.execute(f"CREATE INDEX {REVIEW_INDEX} ON station_results ({OLD_REVIEW_ORDER}) WHERE {CONDITION}")
        for table in FILLFACTORS:
            op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
    else:
        op.execute("ALTER TABLE station_results DROP COLUMN review_at")
    op.create_index("ix_reports_superseded_by_id", "reports", ["superseded_by_id"], unique=False)
    if _postgresql():
        _flood_index("from_number varchar_pattern_ops")
        op.create_index(FLOOD_INDEX, "inbound_messages", ["from_number", "received_at"], unique=False)
    else:
        _flood_index("from_number, received_at")
