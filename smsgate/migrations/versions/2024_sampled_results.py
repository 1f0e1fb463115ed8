"""PostgreSQL: a result row knows whether its station is sampled, and only then logs a change.

The sampled stations' change log (``2003``, per row since ``2021``) ran its trigger, a plpgsql
call and an insert that looks the station up in ``sample_stations``, for every write of every
station's result row: about 2 % of a backend's samples a report, for some 2,000 sampled
stations of 800,000. A trigger's ``WHEN`` condition is evaluated before the trigger is queued
and costs next to nothing, but it may not read a table. So:

- ``station_results.sampled`` (``boolean NOT NULL DEFAULT false``; a default added without a
  rewrite) says whether the station is in any sample design's ``sample_stations``. The
  database keeps it: a statement trigger on ``sample_stations`` recomputes it for the stations
  whose membership an insert, update or delete touched (a truncate clears it), and a row
  inserted into ``station_results`` gets it from ``sample_stations`` (before insert; rows are
  created with the stations, not on the night). The application never writes it; the models
  do not map it (``postgres_indexes.POSTGRESQL_ONLY_COLUMNS``).
- The log's triggers fire ``WHEN (NEW.sampled)`` after an insert and ``WHEN (OLD.sampled AND
  NEW.sampled)`` after an update: the same rows are logged for sampled stations, no call at
  all for the others, and the update that marks or unmarks a row logs nothing (adding
  stations to a sample logged nothing before either).

Not indexed: a report's update of the result row stays heap-only. SQLite keeps its row
triggers, a lookup in process.

On a live database: the marking ``UPDATE`` touches the sampled stations' rows only (2,000), under
their row locks.

Revision ID: 2024
Revises: 2023
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "2024"
down_revision = "2023"
branch_labels = None
depends_on = None

#: Copied from migration 2021, which created the function the triggers call.
LOG_FUNCTION = "smsgate_log_sample_result_change"
MARK = (
    "UPDATE station_results r SET sampled = EXISTS"
    " (SELECT 1 FROM sample_stations s WHERE s.station_id = r.station_id)"
    " WHERE r.station_id IN (SELECT station_id FROM {rows})"
)
UPGRADE = [
    "ALTER TABLE station_results ADD COLUMN sampled boolean NOT NULL DEFAULT false",
    "UPDATE station_results SET sampled = true WHERE station_id IN (SELECT station_id FROM sample_stations)",
    f"""
    CREATE FUNCTION smsgate_mark_sampled_results() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'TRUNCATE' THEN
            UPDATE station_results SET sampled = false WHERE sampled;
            RETURN NULL;
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            {MARK.format(rows="new_rows")};
        END IF;
        IF TG_OP IN ('DELETE', 'UPDATE') THEN
            {MARK.format(rows="old_rows")};
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER tr_sample_stations_mark_insert AFTER INSERT ON sample_stations
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION smsgate_mark_sampled_results()
    """,
    """
    CREATE TRIGGER tr_sample_stations_mark_update AFTER UPDATE ON sample_stations
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION smsgate_mark_sampled_results()
    """,
    """
    CREATE TRIGGER tr_sample_stations_mark_delete AFTER DELETE ON sample_stations
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION smsgate_mark_sampled_results()
    """,
    """
    CREATE TRIGGER tr_sample_stations_mark_truncate AFTER TRUNCATE ON sample_stations
    FOR EACH STATEMENT EXECUTE FUNCTION smsgate_mark_sampled_results()
    """,
    """
    CREATE FUNCTION smsgate_result_sampled() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.sampled := EXISTS (SELECT 1 FROM sample_stations s WHERE s.station_id = NEW.station_id);
        RETURN NEW;
    END $$
    """,
    """
    CREATE TRIGGER tr_station_results_sampled BEFORE INSERT ON station_results
    FOR EACH ROW EXECUTE FUNCTION smsgate_result_sampled()
    """,
]


def _log_triggers(when: dict[str, str]) -> None:
    for event in ("insert", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS tr_station_results_sample_{event} ON station_results")
        op.execute(
            f"CREATE TRIGGER tr_station_results_sample_{event} AFTER {event.upper()} ON station_results"
            f" FOR EACH ROW {when.get(event, '')}EXECUTE FUNCTION {LOG_FUNCTION}()"
        )


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in UPGRADE:
        op.execute(statement)
    _log_triggers({"insert": "WHEN (NEW.sampled) ", "update": "WHEN (OLD.sampled AND NEW.sampled) "})


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _log_triggers({})
    op.execute("DROP TRIGGER IF EXISTS tr_station_results_sampled ON station_results")
    op.execute("DROP FUNCTION IF EXISTS smsgate_result_sampled()")
    for event in ("insert", "update", "delete", "truncate"):
        op.execute(f"DROP TRIGGER IF EXISTS tr_sample_stations_mark_{event} ON sample_stations")
    op.execute("DROP FUNCTION IF EXISTS smsgate_mark_sampled_results()")
    op.execute("ALTER TABLE station_results DROP COLUMN sampled")
