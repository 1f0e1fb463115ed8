"""Sampled stations' result changes, logged by the database: the quick count's cache check.

Every dashboard refresh asked whether the quick-count estimate was still valid by reading
the results of every sampled station (2,000 nationally; 5–80 ms by load). Triggers on
``station_results`` now add a row to ``sample_result_changes`` for each sampled station whose
result is inserted or updated, in the same transaction, so the check is a count of a few
rows. No statement is added on the SMS path: the database does it (on PostgreSQL one
statement-level trigger per insert or update, on SQLite a row-level trigger); a result of a
station in no sample costs one lookup in the new ``sample_stations(station_id)`` index.

Revision ID: 2003
Revises: 2002, 2101
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "2003"
#: After every migration that alters ``station_results`` (SQLite rebuilds a table without its
#: triggers), and after ``sample_stations``.
down_revision = ("2002", "2101")
branch_labels = None
depends_on = ("0006", "1801")

LOG = (
    "INSERT INTO sample_result_changes (design_id, station_id) "
    "SELECT s.design_id, s.station_id FROM sample_stations s WHERE s.station_id = {station}"
)
POSTGRESQL = [
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
SQLITE = [
    f"""
    CREATE TRIGGER tr_station_results_sample_{event.lower()} AFTER {event} ON station_results
    FOR EACH ROW BEGIN {LOG.format(station="NEW.station_id")}; END
    """
    for event in ("INSERT", "UPDATE")
]


def upgrade() -> None:
    op.create_table(
        "sample_result_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("design_id", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.String(length=13), nullable=False),
        sa.ForeignKeyConstraint(
            ["design_id"],
            ["sample_designs.id"],
            name=op.f("fk_sample_result_changes_design_id_sample_designs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sample_result_changes")),
    )
    with op.batch_alter_table("sample_result_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sample_result_changes_design_id"), ["design_id"], unique=False)
    with op.batch_alter_table("sample_stations", schema=None) as batch_op:
        batch_op.create_index("ix_sample_stations_station_id", ["station_id"], unique=False)
    for statement in POSTGRESQL if op.get_bind().dialect.name == "postgresql" else SQLITE:
        op.execute(statement)


def downgrade() -> None:
    for event in ("insert", "update"):
        op.execute(
            f"DROP TRIGGER IF EXISTS tr_station_results_sample_{event}"
            + (" ON station_results" if op.get_bind().dialect.name == "postgresql" else "")
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS smsgate_log_sample_result_changes()")
    with op.batch_alter_table("sample_stations", schema=None) as batch_op:
        batch_op.drop_index("ix_sample_stations_station_id")
    with op.batch_alter_table("sample_result_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sample_result_changes_design_id"))
    op.drop_table("sample_result_changes")
