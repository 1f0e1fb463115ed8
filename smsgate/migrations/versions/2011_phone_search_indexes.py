"""The message log's phone search by a number's start or end (PostgreSQL only).

Trigram indexes on ``inbound_messages.from_number`` and ``outbound_messages.to_number``
served a search anywhere in the number poorly: every number shares most of its trigrams, so a
search read hundreds of thousands of index entries (about a second nationally). The search
now matches the start of a number (a range on a ``varchar_pattern_ops`` index) or its last
digits (a range on an index of the reversed number); the trigram indexes go. Downgrading
restores them when ``pg_trgm`` is installed.

Revision ID: 2011
Revises: 2010
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "2011"
down_revision = "2010"
branch_labels = None
depends_on = None

#: Copied from smsgate.models.postgres_indexes when this revision was written.
PHONE_INDEXES = {
    "ix_inbound_messages_from_prefix": ("inbound_messages", "from_number varchar_pattern_ops"),
    "ix_inbound_messages_from_suffix": ("inbound_messages", "reverse(from_number) text_pattern_ops"),
    "ix_outbound_messages_to_prefix": ("outbound_messages", "to_number varchar_pattern_ops"),
    "ix_outbound_messages_to_suffix": ("outbound_messages", "reverse(to_number) text_pattern_ops"),
}
#: The trigram indexes revision 2001 created on the numbers.
TRIGRAM_INDEXES = {
    "ix_inbound_messages_from_trgm": ("inbound_messages", "from_number gin_trgm_ops"),
    "ix_outbound_messages_to_trgm": ("outbound_messages", "to_number gin_trgm_ops"),
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, (table, expression) in PHONE_INDEXES.items():
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({expression})")
    for name in TRIGRAM_INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    trigram = op.get_bind().exec_driver_sql("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'").first()
    if trigram is not None:
        for name, (table, expression) in TRIGRAM_INDEXES.items():
            op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin ({expression})")
    for name in PHONE_INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
