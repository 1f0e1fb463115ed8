"""The claim's per-device query reads the due rows through their index, not the provider's
whole history: a claim runs it once per device with tokens, every pass, all night."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, text

from smsgate.db import Database
from smsgate.models import OutboundMessage
from smsgate.outgoing import routing
from smsgate.outgoing.fleet import Device, Fleet
from smsgate.outgoing.sms_job import due_rows

NOW = datetime(2024, 2, 14, 6, 0, tzinfo=UTC)
PHONES = [Device(f"hp-{n}", "android", identifier=f"dev{n}") for n in range(4)]
FLEET = Fleet((*PHONES, Device("modem-1", "kannel", identifier="modem1")))


def _night(database: Database) -> None:
    """A night's history: 2,000 replies sent through four phones, a few still queued or sending."""
    rows = []
    for n in range(2000):
        status = "sent" if n < 1990 else ("queued" if n % 2 else "sending")
        rows.append(
            {
                "to_number": f"+62811{n:07d}",
                "text": "OK",
                "provider": "android",
                "via": f"dev{n % 4}",
                "kind": "reply",
                "status": status,
                "priority": 3 if n % 7 == 0 else 0,
                "attempts": 1,
                "next_attempt_at": NOW - timedelta(seconds=n % 60),
                "claimed_until": NOW - timedelta(seconds=1) if status == "sending" else None,
                "created_at": NOW - timedelta(minutes=30),
            }
        )
    with database.begin() as session:
        session.execute(insert(OutboundMessage), rows)


def test_the_per_device_fetch_searches_the_due_index_on_sqlite(database: Database) -> None:
    if database.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's planner picked the provider's index; PostgreSQL's plans by cost")
    _night(database)
    query = due_rows(routing.home_condition(FLEET, FLEET.devices[1]), NOW, 5)
    compiled = query.compile(dialect=database.engine.dialect, compile_kwargs={"literal_binds": True})
    with database.engine.connect() as connection:
        plan = " ".join(row[3] for row in connection.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
    assert "ix_outbound_messages_due" in plan, plan


def test_the_fetch_returns_a_devices_due_rows_and_expired_leases_only(database: Database) -> None:
    _night(database)
    with database.begin() as session:
        queued = session.execute(due_rows(routing.home_condition(FLEET, FLEET.devices[1]), NOW, 10)).all()
        leased = session.execute(due_rows(routing.home_condition(FLEET, FLEET.devices[2]), NOW, 10)).all()
    # Rows 1990-1999 are not sent: odd ones queued, even ones sending with an expired lease.
    assert _numbers(database, [row.id for row in queued]) == {1993, 1997}  # n % 4 == 1
    assert _numbers(database, [row.id for row in leased]) == {1990, 1994, 1998}  # n % 4 == 2
    assert {row.via for row in queued} == {"dev1"}


def _numbers(database: Database, ids: list[int]) -> set[int]:
    with database.engine.connect() as connection:
        rows = connection.execute(text("SELECT id, to_number FROM outbound_messages")).all()
    return {int(phone[-7:]) for row_id, phone in rows if row_id in ids}
