"""SQL round trips per report, counted in process: an assigned volunteer's first report, and
reports at a station that already has reports (corrections, reports a check flags, reports that
outvote others or are outvoted), which change more than a first report does.

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
from sqlalchemy import Engine, event, func, select, text

from smsgate.config import Settings
from smsgate.db import Database
from smsgate.importers import upsert_contacts
from smsgate.inbound import InboundSMS
from smsgate.models import Flag, Report, StationResult
from smsgate.regions import station_id
from smsgate.services.ingest import Ingest
from tests.support import MANTUIL, VOLUNTEER_A, VOLUNTEER_B, new_sid

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
#: A report at a station with reports, whatever it changes besides what a first report changes:
#: the sender's earlier report superseded, the new report flagged by a check, other reports
#: outvoted or no longer outvoted. On PostgreSQL those rows travel in the statement that writes
#: what handling left for commit, so the count is a first report's. SQLite writes one statement
#: per table: the reports' updates are one more (an ``executemany``), and a new flag one more
#: again (``MAX_EXTRA_FOR_A_NEW_FLAG``). Before, the flush after the checks wrote each changed
#: report and each new flag with a statement of its own: 9-10 on PostgreSQL, 13-14 on SQLite.
MAX_ROUND_TRIPS_AT_A_REPORTED_STATION = {"postgresql": 7, "sqlite": 12}
MAX_EXTRA_FOR_A_NEW_FLAG = {"postgresql": 0, "sqlite": 1}


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
    seen: list[str] = []

    def send() -> None:
        seen.extend(round_trips(database.engine, lambda: replies.append(ingest.receive(sms))))

    waits = network_waits(database.engine, send)
    assert replies[0].text.startswith("OK TPS 012"), replies[0].text
    # The same report counted both ways at once: one wait for each statement, none besides.
    assert waits == len(seen), (waits, seen)
    assert waits <= MAX_ROUND_TRIPS["postgresql"], waits


#: Ten volunteers of Mantuil TPS 001, a station nobody else in the test world reports for, and
#: an eleventh.
TEN = [f"+62811400000{n:02d}" for n in range(10)]
ELEVENTH = "+6281140000010"
TEN_STATION = station_id(MANTUIL, 1)


def ten_volunteers(database: Database) -> list[str]:
    with database.begin() as session:
        upsert_contacts(
            session,
            [
                {
                    "phone": p,
                    "name": f"Relawan {i}",
                    "role": "volunteer",
                    "region_code": MANTUIL,
                    "tps": 1,
                    "lang": "id",
                }
                for i, p in enumerate([*TEN, ELEVENTH])
            ],
            give_pins=False,
        )
    return TEN


def flag_count(database: Database) -> int:
    with database.read() as session:
        return session.scalar(select(func.count()).select_from(Flag)) or 0


def assert_within(database: Database, ingest: Ingest, phone: str, body: str, what: str) -> list[str]:
    """Send ``body`` from ``phone``, count its round trips, hold them to the bound of a report at
    a reported station (on SQLite one more when it inserted a flag); the reply must be an OK.
    Nothing else runs on the pool in between: a read transaction would change the SQLite
    connection's busy timeout and the next message would pay a ``PRAGMA`` to set it back."""
    sms = InboundSMS("twilio", new_sid(), phone, body)
    replies = []
    seen = round_trips(database.engine, lambda: replies.append(ingest.receive(sms)))
    assert (replies[0].text or "").startswith("OK TPS 001"), (what, replies[0].text)
    dialect = database.engine.dialect.name
    bound = MAX_ROUND_TRIPS_AT_A_REPORTED_STATION[dialect]
    if any(s.startswith("INSERT INTO flags") for s in seen):
        bound += MAX_EXTRA_FOR_A_NEW_FLAG[dialect]
    assert len(seen) <= bound, "\n".join([f"{what}: {len(seen)} round trips:", *seen])
    return seen


def test_corrections_at_a_station_with_its_ten_reports_stay_within_their_round_trips(
    world, database, settings
):
    """The served benchmark's traffic: every volunteer of a full station sends a new count in
    turn, one digit off the station's (``one_digit`` adds a flag on the first and marks each
    report flagged while one of the old reading is left). Each supersedes its sender's report;
    the station goes from one dissenter outvoted, through no majority, to the new count
    verified over the last holdouts (outvoted), and ends with all ten agreeing again."""
    phones = ten_volunteers(database)
    ingest = Ingest(database, with_default_flood_control(settings))
    for phone in phones:
        reply = ingest.receive(InboundSMS("twilio", new_sid(), phone, "TPS 001 01=60 02=50 03=40 TS=3"))
        assert (reply.text or "").startswith("OK TPS 001"), reply.text
    for i, phone in enumerate(phones):
        assert_within(database, ingest, phone, "TPS 001 01=61 02=50 03=40 TS=3", f"correction {i}")
    assert flag_count(database) == 1  # one one_digit flag, on the first report of the new reading
    with database.read() as session:
        current = session.scalars(
            select(Report).where(Report.station_id == TEN_STATION, Report.superseded_at.is_(None))
        ).all()
        assert len(current) == 10 and all(r.votes["01"] == 61 for r in current)
        # Flagged while a report of the old reading was left to differ by one digit from.
        assert [r.flagged for r in sorted(current, key=lambda r: r.id)] == [True] * 9 + [False]
        assert not any(r.outvoted for r in current)
        result = session.get(StationResult, TEN_STATION)
        assert (
            result is not None
            and result.status == "verified"
            and result.votes == {"01": 61, "02": 50, "03": 40}
        )
        assert (
            session.scalar(select(func.count()).select_from(Report).where(Report.station_id == TEN_STATION))
            == 20
        )


def test_reports_at_a_station_with_reports_stay_within_their_round_trips(world, database, settings):
    """Volunteers' first reports at a station that has reports: one a check flags (one digit
    off the first: a new flag, the report flagged), then the others agreeing with the first
    (the third flagged too, one digit off the second; from the fourth on the flagged one is
    outvoted), and an eleventh volunteer's at a station that has its ten reports."""
    phones = ten_volunteers(database)
    ingest = Ingest(database, with_default_flood_control(settings))
    first = ingest.receive(InboundSMS("twilio", new_sid(), phones[0], "TPS 001 01=60 02=50 03=40 TS=3"))
    assert (first.text or "").startswith("OK TPS 001"), first.text
    assert_within(database, ingest, phones[1], "TPS 001 01=61 02=50 03=40 TS=3", "a flagged second report")
    for i, phone in enumerate(phones[2:], start=2):
        assert_within(database, ingest, phone, "TPS 001 01=60 02=50 03=40 TS=3", f"report {i}")
    # A station that already has its ten volunteers' reports (nine agreeing, one outvoted).
    assert_within(database, ingest, ELEVENTH, "TPS 001 01=60 02=50 03=40 TS=3", "an eleventh report")
    assert flag_count(database) == 2  # one_digit on each reading: the second and the third report
    with database.read() as session:
        outvoted = session.scalars(
            select(Report).where(Report.station_id == TEN_STATION, Report.outvoted)
        ).all()
        assert [r.votes["01"] for r in outvoted] == [61] and outvoted[0].flagged
        result = session.get(StationResult, TEN_STATION)
        assert result is not None
        assert (result.status, result.report_count, result.dissent) == ("verified", 11, 1)
