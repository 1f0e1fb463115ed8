"""PostgreSQL: notify listening workers when events are written (``smsgate_outbox`` channel).

A statement-level trigger, so the application sends no extra statement: PostgreSQL delivers
the notification at commit, once per transaction however many events it wrote. SQLite has no
notifications; its single worker polls.

Revision ID: 1802
Revises: 1801
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "1802"
down_revision = "1801"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE OR REPLACE FUNCTION smsgate_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('smsgate_outbox', '');
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER outbox_events_notify AFTER INSERT ON outbox_events"
        " FOR EACH STATEMENT EXECUTE FUNCTION smsgate_outbox_notify()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS outbox_events_notify ON outbox_events")
    op.execute("DROP FUNCTION IF EXISTS smsgate_outbox_notify()")
