"""Inbound messages: the gateway device, and a redelivery key that includes the sender.

``device`` records which gateway device a message came through (Android ``deviceId``, Kannel
smsc id, Gammu ``PHONE_ID``, Twilio ``To``) so replies can go back the same way. The unique key
becomes (provider, provider message id, sender): a gateway whose ids are not globally unique
(two Gammu modems, a reset inbox) must not make one phone's message a "redelivery" of another's.

Revision ID: 1101
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "1101"
down_revision = "0001"
branch_labels = None
depends_on = None

BACKUP = "_inbound_messages_1101"


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        _empty_for_rebuild()
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("device", sa.String(length=64), nullable=False, server_default=""))
        batch_op.drop_constraint("uq_inbound_provider_message", type_="unique")
        batch_op.create_unique_constraint(
            "uq_inbound_provider_message_sender", ["provider", "provider_message_id", "from_number"]
        )
    if sqlite:
        _refill_after_rebuild()


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        _empty_for_rebuild()
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.drop_constraint("uq_inbound_provider_message_sender", type_="unique")
        batch_op.create_unique_constraint("uq_inbound_provider_message", ["provider", "provider_message_id"])
        batch_op.drop_column("device")
    if sqlite:
        _refill_after_rebuild()


# SQLite changes a constraint by rebuilding the table (copy, drop, rename). Dropping a table
# that other rows point at fails with foreign keys on, and they cannot be turned off inside
# the migration's transaction. So the rows wait in a side table while the (empty) table is
# rebuilt, and come back afterwards; deferred checks see every reference satisfied at commit.


def _empty_for_rebuild() -> None:
    op.execute("PRAGMA defer_foreign_keys = ON")
    op.execute(f"CREATE TABLE {BACKUP} AS SELECT * FROM inbound_messages")
    op.execute("DELETE FROM inbound_messages")


def _refill_after_rebuild() -> None:
    bind = op.get_bind()
    kept = {row[1] for row in bind.exec_driver_sql(f"PRAGMA table_info({BACKUP})")}
    now = [row[1] for row in bind.exec_driver_sql("PRAGMA table_info(inbound_messages)")]
    columns = ", ".join(f'"{name}"' for name in now if name in kept)
    op.execute(f"INSERT INTO inbound_messages ({columns}) SELECT {columns} FROM {BACKUP}")
    op.execute(f"DROP TABLE {BACKUP}")
