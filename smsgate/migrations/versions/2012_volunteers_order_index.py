"""The volunteers without a report in the order of an index (PostgreSQL only).

The admin's page sorted every volunteer of the country (100,000 in the national benchmark, on
disk) to show the first 500 without a report. A partial btree index ordered as the page is
(region, TPS, phone of active volunteers) lets the page walk the volunteers in order and stop
at its limit.

Revision ID: 2012
Revises: 2011
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "2012"
down_revision = "2011"
branch_labels = None
depends_on = None

NAME = "ix_contacts_volunteers_in_order"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE INDEX IF NOT EXISTS {NAME} ON contacts (region_code, tps, phone) "
            "WHERE role = 'volunteer' AND active"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {NAME}")
