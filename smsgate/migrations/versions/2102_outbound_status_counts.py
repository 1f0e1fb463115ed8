"""Outbound SMS sent and failed, counted by the database: ``/metrics`` reads a few rows.

``smsgate_outbound_messages`` counted every outbound row by provider and status at each
scrape: a scan of millions of rows on a national night. ``outbound_status_counts`` keeps the
``sent`` and ``failed`` rows by provider in 16 shards (by outbound id, so workers finishing
sends at once rarely wait on the same row); triggers on ``outbound_messages`` add or take one
in the transaction that moves a row into or out of those statuses, whichever code or SQL does
it. On PostgreSQL one statement-level trigger per statement (a reply the SMS path queues costs
one call that finds nothing to count), on SQLite row-level triggers whose ``WHEN`` lets a
queued reply by. Existing rows are counted once here.

Revision ID: 2102
Revises: 2021, 1301
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "2102"
#: After every migration that alters ``outbound_messages`` (SQLite rebuilds a table without its
#: triggers): 1301 is the last of them.
down_revision = ("2021", "1301")
branch_labels = None
depends_on = None

COUNTED = "('sent', 'failed')"
SHARDS = 16
BACKFILL = (
    f"INSERT INTO outbound_status_counts (provider, status, shard, count) "
    f"SELECT provider, status, id % {SHARDS}, count(*) FROM outbound_messages "
    f"WHERE status IN {COUNTED} GROUP BY provider, status, id % {SHARDS}"
)
#: PostgreSQL: statement-level triggers with transition tables, one grouped change of the counts
#: per statement. Row-level ones updated the same count row once per row: a statement moving
#: half a million rows (a bench's build, an operator's UPDATE) left a chain of row versions
#: that each update walked again, and took tens of minutes.
_ADD = f"""
    INSERT INTO outbound_status_counts (provider, status, shard, count)
    SELECT provider, status, id % {SHARDS}, count(*) FROM {{rows}} AS moved WHERE status IN {COUNTED}
    GROUP BY provider, status, id % {SHARDS}
    ON CONFLICT (provider, status, shard) DO UPDATE SET count = outbound_status_counts.count + EXCLUDED.count
"""
_TAKE = f"""
    UPDATE outbound_status_counts c SET count = c.count - t.n
    FROM (SELECT provider, status, id % {SHARDS} AS shard, count(*) AS n FROM {{rows}} AS moved
          WHERE status IN {COUNTED} GROUP BY provider, status, id % {SHARDS}) t
    WHERE c.provider = t.provider AND c.status = t.status AND c.shard = t.shard
"""
#: The rows of an UPDATE whose status or provider changed, as they were (``o``) or are (``n``):
#: an update of other columns (a claim token, a provider's delivery word) changes no count.
_CHANGED = (
    "(SELECT {side}.provider, {side}.status, {side}.id FROM removed o JOIN added n ON n.id = o.id"
    " WHERE (o.status, o.provider) IS DISTINCT FROM (n.status, n.provider))"
)
POSTGRESQL = [
    f"""
    CREATE FUNCTION smsgate_count_outbound_status() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            {_ADD.format(rows="added")};
        ELSIF TG_OP = 'DELETE' THEN
            {_TAKE.format(rows="removed")};
        ELSE
            {_TAKE.format(rows=_CHANGED.format(side="o"))};
            {_ADD.format(rows=_CHANGED.format(side="n"))};
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER tr_outbound_status_insert AFTER INSERT ON outbound_messages
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION smsgate_count_outbound_status()
    """,
    """
    CREATE TRIGGER tr_outbound_status_update AFTER UPDATE ON outbound_messages
    REFERENCING OLD TABLE AS removed NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION smsgate_count_outbound_status()
    """,
    """
    CREATE TRIGGER tr_outbound_status_delete AFTER DELETE ON outbound_messages
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION smsgate_count_outbound_status()
    """,
]


def _sqlite_add(row: str) -> str:
    return (
        f"INSERT OR IGNORE INTO outbound_status_counts (provider, status, shard, count) "
        f"SELECT {row}.provider, {row}.status, {row}.id % {SHARDS}, 0 WHERE {row}.status IN {COUNTED}; "
        f"UPDATE outbound_status_counts SET count = count + 1 WHERE {row}.status IN {COUNTED} "
        f"AND provider = {row}.provider AND status = {row}.status AND shard = {row}.id % {SHARDS};"
    )


def _sqlite_take(row: str) -> str:
    return (
        f"UPDATE outbound_status_counts SET count = count - 1 WHERE {row}.status IN {COUNTED} "
        f"AND provider = {row}.provider AND status = {row}.status AND shard = {row}.id % {SHARDS};"
    )


SQLITE = [
    f"""
    CREATE TRIGGER tr_outbound_status_insert AFTER INSERT ON outbound_messages FOR EACH ROW
    WHEN NEW.status IN {COUNTED} BEGIN {_sqlite_add("NEW")} END
    """,
    f"""
    CREATE TRIGGER tr_outbound_status_update AFTER UPDATE OF status, provider ON outbound_messages
    FOR EACH ROW WHEN (OLD.status IN {COUNTED} OR NEW.status IN {COUNTED})
                      AND (OLD.status IS NOT NEW.status OR OLD.provider IS NOT NEW.provider)
    BEGIN {_sqlite_take("OLD")} {_sqlite_add("NEW")} END
    """,
    f"""
    CREATE TRIGGER tr_outbound_status_delete AFTER DELETE ON outbound_messages FOR EACH ROW
    WHEN OLD.status IN {COUNTED} BEGIN {_sqlite_take("OLD")} END
    """,
]
TRIGGERS = ("tr_outbound_status_insert", "tr_outbound_status_update", "tr_outbound_status_delete")


def upgrade() -> None:
    op.create_table(
        "outbound_status_counts",
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("shard", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("provider", "status", "shard", name=op.f("pk_outbound_status_counts")),
    )
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:  # no send may finish between the count and the triggers
        op.execute("LOCK TABLE outbound_messages IN SHARE ROW EXCLUSIVE MODE")
    op.execute(BACKFILL)
    for statement in POSTGRESQL if postgresql else SQLITE:
        op.execute(statement)


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (" ON outbound_messages" if postgresql else ""))
    if postgresql:
        op.execute("DROP FUNCTION IF EXISTS smsgate_count_outbound_status()")
    op.drop_table("outbound_status_counts")
