"""A prefix index on region codes, for the results export (PostgreSQL only).

A province's results CSV joined its stations to every one of the ~91,000 regions (and every
station result of the country) before keeping its own. The export now reads each table by
the region's prefix; ``regions.code LIKE '35.78%'`` needs a ``varchar_pattern_ops`` index
under any collation but ``C``.

Revision ID: 2013
Revises: 2012
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "2013"
down_revision = "2012"
branch_labels = None
depends_on = None

NAME = "ix_regions_code_prefix"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE INDEX IF NOT EXISTS {NAME} ON regions (code varchar_pattern_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {NAME}")
