"""SQL round trips per report: an assigned volunteer's first report, counted in process.

Every round trip to the database costs the ingest path more than anything else it does, and
the count is stable where times are not, so this guards it: the bounds below are the counts
measured when the guard was written, so the path cannot get more expensive unnoticed. The
target on PostgreSQL is 10 round trips (``BEGIN`` and ``COMMIT`` included); lower the bound
here whenever the path gets cheaper, never raise it without saying why in the commit.
``bench/webhook.py`` prints the same count next to the throughput it buys.

Statements are not necessarily waits: statements sent together (psycopg's pipeline mode) would
share one wait for the server. The report path sends each alone (docs/throughput.md has the
measurement of the pipelined alternative), so on PostgreSQL its waits equal its statements;
``network_waits`` counts them from libpq's own trace of the protocol (``bench/round_trips.py``).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, text

from smsgate.config import Settings
from smsgate.inbound import InboundSMS
from smsgate.services.ingest import Ingest
from tests.support import VOLUNTEER_A, VOLUNTEER_B, new_sid

#: Today's counts with the default flood limits on (the sender's advisory lock rides in the
#: statement that opens the transaction, the three flood figures in the one that logs the
#: message, the station in the one that locks its result row, and on PostgreSQL the station's
#: current reports, newest decision and open flags in the one that inserts the report, and
#: what handling leaves for commit, the message row, the result row, the events and the region
#: counters, in one statement, ``services/pending_writes.py``); the target on PostgreSQL is 10.
#: SQLite reads the flood figures, the contact and the candidates in one query after the logging
#: insert and the station's surroundings in one before the report's; it writes with one statement
#: per table (several events in one executemany).
MAX_ROUND_TRIPS = {"postgresql": 7, "sqlite": 11}


def _bench_round_trips() -> Any:
    """``bench/round_trips.py``, whose wait counter the benches print: the same code held here."""
    path = Path(__file__).resolve().parents[2] / "bench" / "round_trips.py"
    spec = importlib.util.spec_from_file_location("bench_round_trips", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: ``network_waits(engine, action)``: the times the client waited for PostgreSQL's answer.
network_waits: Callable[[Engine, Callable[[], object]], int] = _bench_round_trips().count_network_waits


def round_trips(engine: Engine, action: Callable[[], object]) -> list[str]:
    """Every statement, ``BEGIN``, ``COMMIT``/``ROLLBACK``, and the pool's pre-ping per checkout
    (SQLAlchemy sends the ping on the DBAPI connection directly, past the cursor events). psycopg
    sends ``BEGIN`` itself before a transaction's first statement; on SQLite smsgate sends its
    own ``BEGIN IMMEDIATE``, already a statement, so the marker is PostgreSQL's only."""
    seen: list[str] = []
    implicit_begin = engine.dialect.name != "sqlite"

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split())[:100])

    hooks: list[tuple[Any, str, Callable[..., None]]] = [
        (engine, "before_cursor_execute", on_execute),
        (engine, "begin", lambda _conn: seen.append("BEGIN") if implicit_begin else None),
        (engine, "commit", lambda _conn: seen.append("COMMIT")),
        (engine, "rollback", lambda _conn: seen.append("ROLLBACK")),
        (engine.pool, "checkout", lambda *_: seen.append("(pre-ping)") if engine.pool._pre_ping else None),
    ]
    for target, name, fn in hooks:
        event.listen(target, name, fn)
    try:
        action()
    finally:
        for target, name, fn in hooks:
            event.remove(target, name, fn)
    return seen


def with_default_flood_control(settings: Settings) -> Settings:
    """``settings`` with the flood limits a server runs with by default (the test settings turn
    them off): the sender's lock and the three flood figures are on the path being counted."""
    defaults = Settings.from_env({})
    assert defaults.flood_per_minute and defaults.flood_replies_per_hour and defaults.flood_duplicate_seconds
    return replace(
        settings,
        flood_per_minute=defaults.flood_per_minute,
        flood_replies_per_hour=defaults.flood_replies_per_hour,
        flood_duplicate_seconds=defaults.flood_duplicate_seconds,
    )


def test_first_report_of_an_assigned_volunteer_stays_within_its_round_trips(world, database, settings):
    ingest = Ingest(database, with_default_flood_control(settings))
    # Another volunteer of the same TPS reports first: the pool is warm and the station is not
    # new, as for nine of the ten reports of a station on election night.
    warm = ingest.receive(InboundSMS("twilio", new_sid(), VOLUNTEER_B, "TPS 012 01=123 02=98 03=150"))
    assert warm.text.startswith("OK TPS 012")
    sms = InboundSMS("twilio", new_sid(), VOLUNTEER_A, "TPS 012 01=123 02=98 03=150")
    replies = []
    seen = round_trips(database.engine, lambda: replies.append(ingest.receive(sms)))
    assert replies[0].text.startswith("OK TPS 012"), replies[0].text
    dialect = database.engine.dialect.name
    assert any(s.startswith("BEGIN") for s in seen) and "COMMIT" in seen, seen
    assert len(seen) <= MAX_ROUND_TRIPS[dialect], "\n".join([f"{len(seen)} round trips:", *seen])


def test_the_wait_counter_counts_one_wait_per_statement_sent_alone(database):
    if database.engine.dialect.name != "postgresql":
        pytest.skip("waits for a server: PostgreSQL's")

    def transaction() -> None:
        with database.engine.begin() as connection:
            connection.execute(text("SELECT 1"))
            connection.execute(text("SELECT 2"))

    assert network_waits(database.engine, transaction) == 4  # BEGIN, two statements, COMMIT
    assert len(round_trips(database.engine, transaction)) == 4


def test_a_first_report_waits_for_postgresql_once_per_statement(world, database, settings):
    """Each statement of ``test_first_report_...`` waits for its answer, and nothing else does
    (no fetch, no sync of its own)."""
    if database.engine.dialect.name != "postgresql":
        pytest.skip("waits for a server: PostgreSQL's")
    ingest = Ingest(database, with_default_flood_control(settings))
    warm = ingest.receive(InboundSMS("twilio", new_sid(), VOLUNTEER_B, "TPS 012 01=123 02=98 03=150"))
    assert warm.text.startswith("OK TPS 012")
    sms = InboundSMS("twilio", new_sid(), VOLUNTEER_A, "TPS 012 01=123 02=98 03=150")
    replies = []
    waits = network_waits(database.engine, lambda: replies.append(ingest.receive(sms)))
    assert replies[0].text.startswith("OK TPS 012"), replies[0].text
    assert waits <= MAX_ROUND_TRIPS["postgresql"], waits
