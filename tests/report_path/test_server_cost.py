"""What a report costs the PostgreSQL server, held by counts (PostgreSQL only).

PostgreSQL updates a row without writing a new entry into each of its table's indexes (a
heap-only, "HOT", update) only when no indexed column (key, expression or partial-index
condition) changed value and the page has room. A report updates three rows: its message, its
station's result and the region counters. These tests send agreeing reports through the real
ingest path and check, by reading the rows before and after, that none of the columns a report
changes is indexed (so an index added later on such a column fails here, not on election
night), count in PostgreSQL's own statistics that the result row's updates were heap-only, and
that flood control's reads fetch the sender's own messages, not everyone's of the last minutes.
``bench/pg_cost.py`` measures the same in CPU, WAL and index records per report.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import delete, event, inspect, select, text

from smsgate.importers import upsert_contacts
from smsgate.inbound import InboundSMS
from smsgate.models import Contact, InboundMessage, SampleStation
from smsgate.outgoing.event_queue import dispatch
from smsgate.schema import alembic_config
from smsgate.services.ingest import Ingest
from tests.report_path.test_round_trips import with_default_flood_control
from tests.support import MANTUIL, VOLUNTEER_A, VOLUNTEER_B, new_sid, sample_of_one

OTHERS = 2000  # messages from other senders in the last five minutes
STATION = "6371011001012"  # Mantuil TPS 012
REPORT = "TPS 012 01=123 02=98 03=150"
EXTRA = [f"+628110000{n:04d}" for n in range(10, 16)]  # six more volunteers of TPS 012
#: What moves a station into or out of the review queue or the dissent list: a report that
#: changes none of these is the common case the indexes must leave alone.
STANDING = ("status", "flagged", "dissent_open", "impact")
FILLFACTORS = {"station_results": 90, "region_counters": 70}
UPDATED = ("station_results", "inbound_messages", "region_counters")


@pytest.fixture
def postgresql(database):  # type: ignore[no-untyped-def]
    if database.engine.dialect.name != "postgresql":
        pytest.skip("needs PostgreSQL (SMSGATE_TEST_DATABASE_URL)")
    return database


@pytest.fixture
def volunteers(world, postgresql) -> list[str]:  # type: ignore[no-untyped-def]
    with postgresql.begin() as session:
        upsert_contacts(
            session,
            [
                {
                    "phone": p,
                    "name": f"Relawan {p[-2:]}",
                    "role": "volunteer",
                    "region_code": MANTUIL,
                    "tps": 12,
                }
                for p in EXTRA
            ],
        )
        assert session.scalar(select(Contact.id).where(Contact.phone == EXTRA[-1]))
    return [VOLUNTEER_B, VOLUNTEER_A, *EXTRA]


def indexed_columns(connection: Any, table: str) -> set[str]:
    """Every column any index of ``table`` depends on: keys, expressions, partial conditions
    (what PostgreSQL compares before it allows a heap-only update)."""
    return set(
        connection.execute(
            text(
                """
                SELECT a.attname FROM pg_index i
                JOIN pg_attribute a ON a.attrelid = i.indrelid
                WHERE i.indrelid = CAST(:t AS regclass) AND a.attnum = ANY (i.indkey)
                UNION
                SELECT a.attname FROM pg_index i
                JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid
                    AND d.refobjid = i.indrelid AND d.refobjsubid > 0
                JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = d.refobjsubid
                WHERE i.indrelid = CAST(:t AS regclass)
                """
            ),
            {"t": table},
        ).scalars()
    )


def rows(connection: Any, table: str, where: str, **params: Any) -> dict[Any, dict[str, Any]]:
    result = connection.execute(text(f"SELECT ctid::text AS _ctid, * FROM {table} WHERE {where}"), params)
    keyed = {}
    for row in result.mappings():
        values = dict(row)
        values.pop("_ctid")
        key = (
            tuple(values[k] for k in ("region_key", "name", "shard"))
            if table == "region_counters"
            else (values.get("id") or values.get("station_id"))
        )
        keyed[key] = values
    return keyed


def changed(before: dict[Any, dict[str, Any]], after: dict[Any, dict[str, Any]]) -> set[str]:
    """Columns whose value differs in any row present before and after."""
    return {
        column
        for key, old in before.items()
        if key in after
        for column, value in old.items()
        if after[key][column] != value
    }


@pytest.fixture
def backends(postgresql) -> Iterator[set[int]]:  # type: ignore[no-untyped-def]
    """The PostgreSQL backends the app's statements ran on while the test ran."""
    seen: set[int] = set()

    def on_execute(conn, *_: Any) -> None:  # type: ignore[no-untyped-def]
        seen.add(conn.connection.dbapi_connection.info.backend_pid)

    event.listen(postgresql.engine, "before_cursor_execute", on_execute)
    yield seen
    event.remove(postgresql.engine, "before_cursor_execute", on_execute)


def table_counts(database, backends: set[int], table: str) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    """``table``'s updates, heap-only updates and rows fetched by index scans so far, with the
    statistics the app's backends still held published first (PostgreSQL 15 holds them for up
    to a second; a forced flush happens when the backend's next transaction ends)."""
    upd, hot, fetched, _read = table_statistics(database, backends, table)
    return upd, hot, fetched


def table_statistics(database, backends: set[int], table: str) -> tuple[int, int, int, int]:  # type: ignore[no-untyped-def]
    """``table_counts`` and the rows read by sequential scans so far."""
    for pid in sorted(backends):
        with database.engine.connect() as c:
            if c.connection.dbapi_connection.info.backend_pid != pid:
                continue
            c.execute(text("SELECT pg_stat_force_next_flush()"))
            c.commit()
            c.execute(text("SELECT 1"))
            c.commit()
    with database.engine.connect() as c:
        c.execute(text("SELECT pg_stat_clear_snapshot()"))
        row = c.execute(
            text(
                "SELECT n_tup_upd, n_tup_hot_upd, coalesce(idx_tup_fetch, 0), seq_tup_read"
                " FROM pg_stat_user_tables WHERE relid = CAST(:t AS regclass)"
            ),
            {"t": table},
        ).one()
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


def test_a_report_changes_no_indexed_column_of_the_rows_it_updates(postgresql, volunteers, settings):
    ingest = Ingest(postgresql, settings)
    with postgresql.engine.connect() as c:
        indexed = {
            t: indexed_columns(c, t) for t in ("station_results", "inbound_messages", "region_counters")
        }
    assert {"station_id", "impact", "status", "flagged", "dissent_open"} <= indexed["station_results"]
    common = 0
    for phone in volunteers:
        with postgresql.engine.connect() as c:
            result_before = rows(c, "station_results", "station_id = :s", s=STATION)
            counters_before = rows(c, "region_counters", "true")
            last = c.execute(text("SELECT coalesce(max(id), 0) FROM inbound_messages")).scalar()
        reply = ingest.receive(InboundSMS("twilio", new_sid(), phone, REPORT))
        assert reply.text.startswith("OK TPS 012"), reply.text
        with postgresql.engine.connect() as c:
            result_after = rows(c, "station_results", "station_id = :s", s=STATION)
            counters_after = rows(c, "region_counters", "true")
            message = rows(c, "inbound_messages", "id > :last", last=last)
        # The message row is inserted, then updated with its outcome and reply: compare the
        # columns the update sets with what an insert-time row holds for them.
        (logged,) = message.values()
        assert logged["outcome"] == "accepted" and logged["reply"]
        assert not {"contact_id", "outcome", "reply", "error_code"} & indexed["inbound_messages"]
        counted = changed(counters_before, counters_after)
        assert not counted & indexed["region_counters"], counted
        moved = changed(result_before, result_after)
        assert "report_count" in moved and "updated_at" in moved
        if not moved & set(STANDING):
            common += 1
            assert not moved & indexed["station_results"], (
                f"a report changed indexed columns {sorted(moved & indexed['station_results'])} of"
                " its station's result row: every report then rewrites every index entry of the row"
            )
    assert common >= len(volunteers) - 3, "too few reports left the station's standing alone to test"


def test_agreeing_reports_update_the_result_row_heap_only(postgresql, volunteers, settings, backends):
    ingest = Ingest(postgresql, settings)
    for phone in volunteers[:3]:  # the station settles: its status changes along the way
        assert ingest.receive(InboundSMS("twilio", new_sid(), phone, REPORT)).text.startswith("OK")

    def updates() -> tuple[int, int]:
        upd, hot, _fetched = table_counts(postgresql, backends, "station_results")
        return upd, hot

    with postgresql.engine.connect() as c:
        standing_before = c.execute(
            text(f"SELECT {', '.join(STANDING)} FROM station_results WHERE station_id = :s"), {"s": STATION}
        ).one()
    before = updates()
    for phone in volunteers[3:]:
        assert ingest.receive(InboundSMS("twilio", new_sid(), phone, REPORT)).text.startswith("OK")
    after = updates()
    with postgresql.engine.connect() as c:
        standing_after = c.execute(
            text(f"SELECT {', '.join(STANDING)} FROM station_results WHERE station_id = :s"), {"s": STATION}
        ).one()
    assert standing_before == standing_after
    upd, hot = after[0] - before[0], after[1] - before[1]
    assert upd == len(volunteers) - 3, (before, after)
    assert hot == upd, f"{hot} of {upd} updates of the station's result row were heap-only"


def test_the_updated_tables_leave_room_for_heap_only_updates(postgresql):
    with postgresql.engine.connect() as c:
        options = dict(
            c.execute(
                text("SELECT relname, reloptions FROM pg_class WHERE relname = ANY (:names)"),
                {"names": list(FILLFACTORS)},
            ).all()
        )
    assert {t: options[t] for t in FILLFACTORS} == {t: [f"fillfactor={f}"] for t, f in FILLFACTORS.items()}


def test_flood_control_reads_the_senders_messages_only(postgresql, volunteers, settings, backends):
    """Flood control's reads of a sender's recent messages fetch that sender's rows, however
    many messages everyone else sent in the same minutes (a plan that walked the time index
    through the window fetched all of them, for every SMS)."""
    ingest = Ingest(postgresql, with_default_flood_control(settings))
    for n in range(12):  # the statements get prepared and PostgreSQL settles on a plan
        reply = ingest.receive(InboundSMS("twilio", new_sid(), volunteers[n % 2], f"CEK {n}"))
        assert reply.text
    now = datetime.now(UTC)
    with postgresql.begin() as session:
        session.add_all(
            InboundMessage(
                provider="twilio",
                provider_message_id=f"other{n}",
                from_number=f"+62819{n:08d}",
                body="TPS 001 01=1 02=2 03=3",
                received_at=now - timedelta(seconds=n % 300),
                outcome="accepted",
                reply="OK",
            )
            for n in range(OTHERS)
        )
    _upd, _hot, fetched_before = table_counts(postgresql, backends, "inbound_messages")
    reply = ingest.receive(InboundSMS("twilio", new_sid(), volunteers[2], REPORT))
    assert reply.text.startswith("OK TPS 012"), reply.text
    _upd, _hot, fetched_after = table_counts(postgresql, backends, "inbound_messages")
    assert fetched_after - fetched_before < 20, (
        f"one report fetched {fetched_after - fetched_before} message rows by index;"
        f" {OTHERS} other senders' messages are in its flood windows"
    )


def test_a_reports_writes_find_the_message_row_by_its_key(postgresql, volunteers, settings, backends):
    """The statement writing a report's message row, result row and superseded reports finds
    them by key, whatever the table's size and statistics: with a plain ``=`` join the plan
    hashed the document's rows and read all of ``inbound_messages`` for every message until
    the table held some 35,000 rows (a kabupaten's night)."""
    with postgresql.begin() as session:
        session.add_all(
            InboundMessage(
                provider="twilio",
                provider_message_id=f"earlier{n}",
                from_number=f"+62819{n:08d}",
                body="TPS 001 01=1 02=2 03=3",
                received_at=datetime.now(UTC) - timedelta(hours=2),
                outcome="accepted",
                reply="OK",
            )
            for n in range(OTHERS)
        )
    with postgresql.engine.connect() as connection:  # what autovacuum does; the plans are made anew
        connection.exec_driver_sql("ANALYZE")
        connection.commit()
    ingest = Ingest(postgresql, with_default_flood_control(settings))
    for n in range(12):  # the statements get prepared and PostgreSQL settles on a plan
        reply = ingest.receive(InboundSMS("twilio", new_sid(), volunteers[n % 2], f"CEK {n}"))
        assert reply.text
    before = table_statistics(postgresql, backends, "inbound_messages")
    reply = ingest.receive(InboundSMS("twilio", new_sid(), volunteers[2], REPORT))
    assert reply.text.startswith("OK TPS 012"), reply.text
    after = table_statistics(postgresql, backends, "inbound_messages")
    assert after[0] - before[0] == 1, "the message row is updated once"
    assert after[3] - before[3] < 100, (
        f"one report read {after[3] - before[3]} message rows by sequential scan"
        f" ({OTHERS} earlier messages in the table)"
    )


def _schema(database) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    with database.engine.connect() as connection:
        found = inspect(connection)
        indexes = {
            i["name"]: i["column_names"]
            for table in ("reports", "inbound_messages")
            for i in found.get_indexes(table)
        }
        return {
            "review_at": "review_at" in {c["name"] for c in found.get_columns("station_results")},
            "superseded": "ix_reports_superseded_by_id" in indexes,
            "flood": indexes.get("ix_inbound_messages_from_received"),
        }


def test_the_write_cost_migration_goes_down_and_up(database, world, settings):  # type: ignore[no-untyped-def]
    """Migration 2021 on either database: down restores what was, up again what is."""
    postgresql = database.engine.dialect.name == "postgresql"
    flood = None if postgresql else ["from_number", "received_at", "id"]  # PostgreSQL: the prefix index
    assert _schema(database) == {"review_at": True, "superseded": False, "flood": flood}
    config = alembic_config(database.engine.url.render_as_string(hide_password=False))
    command.downgrade(config, "2020")
    assert _schema(database) == {
        "review_at": False,
        "superseded": True,
        "flood": ["from_number", "received_at"],
    }
    command.upgrade(config, "heads")
    assert _schema(database) == {"review_at": True, "superseded": False, "flood": flood}
    ingest = Ingest(database, with_default_flood_control(settings))
    assert ingest.receive(InboundSMS("twilio", new_sid(), VOLUNTEER_A, REPORT)).text.startswith("OK TPS 012")


def _write_parts(postgresql, action) -> list[list[str]]:  # type: ignore[no-untyped-def]
    """The parts (``WITH`` names) of each statement ``pending_writes`` sent during ``action``."""
    seen: list[list[str]] = []

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "jsonb_to_recordset(CAST(" in statement:
            seen.append(re.findall(r"(\w+) AS \( (?:UPDATE|INSERT)", statement))

    event.listen(postgresql.engine, "before_cursor_execute", on_execute)
    try:
        action()
    finally:
        event.remove(postgresql.engine, "before_cursor_execute", on_execute)
    return seen


def test_the_write_statement_holds_only_the_tables_written(postgresql, volunteers, settings):
    """Each part of the report's write statement starts an executor, which opens its table and
    every index of it, rows or none: a part with no rows is left out of the statement."""
    ingest = Ingest(postgresql, settings)

    def send(phone: str, body: str) -> None:
        assert ingest.receive(InboundSMS("twilio", new_sid(), phone, body)).text

    first = _write_parts(postgresql, lambda: send(VOLUNTEER_A, REPORT))
    assert first == [["messages", "results", "events", "counters"]]
    again = _write_parts(postgresql, lambda: send(VOLUNTEER_A, REPORT))  # the same values again
    # No counter moves; the sender's earlier report, superseded, is written here too.
    assert again == [["messages", "results", "reports", "events"]]
    check = _write_parts(postgresql, lambda: send(VOLUNTEER_A, "CEK"))
    assert check == [["messages"]]
    with postgresql.engine.connect() as c:
        stored = c.execute(
            text(
                "SELECT jsonb_typeof(r.votes), jsonb_typeof(e.payload) FROM station_results r"
                " JOIN outbox_events e USING (station_id) WHERE r.station_id = :s"
            ),
            {"s": STATION},
        ).all()
    assert stored and set(stored) == {("object", "object")}  # not JSON strings


def test_dispatching_an_event_writes_no_entry_in_the_undispatched_indexes(postgresql, volunteers, settings):
    """The outbox's indexes of undispatched events are partial: marking events dispatched (a
    non-HOT update: ``dispatched_at`` is what they depend on) writes entries in the primary key
    and the id's index only, read back from the WAL (``pg_walinspect``)."""
    ingest = Ingest(postgresql, settings)
    for phone in volunteers[:3]:
        assert ingest.receive(InboundSMS("twilio", new_sid(), phone, REPORT)).text.startswith("OK")
    with postgresql.engine.connect() as c:
        c.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
        c.commit()
        database_oid = c.exec_driver_sql(
            "SELECT oid FROM pg_database WHERE datname = current_database()"
        ).scalar()
        indexes = dict(
            c.exec_driver_sql(
                "SELECT indexrelid::regclass::text, pg_relation_filenode(indexrelid) FROM pg_index"
                " WHERE indrelid = 'outbox_events'::regclass"
            ).all()
        )
        start = c.exec_driver_sql("SELECT pg_current_wal_insert_lsn()::text").scalar()
        c.commit()
    dispatched = dispatch(postgresql, ["tally"], datetime.now(UTC))
    assert dispatched >= 6
    with postgresql.engine.connect() as c:
        end = c.exec_driver_sql("SELECT pg_current_wal_flush_lsn()::text").scalar()
        written = {
            name: c.execute(
                text(
                    "SELECT count(*) FROM pg_get_wal_records_info(CAST(:a AS pg_lsn), CAST(:b AS pg_lsn))"
                    " WHERE resource_manager = 'Btree' AND block_ref LIKE :rel"
                ),
                {"a": start, "b": end, "rel": f"% rel %/{database_oid}/{node} %"},
            ).scalar()
            for name, node in indexes.items()
        }
    assert written == {
        "pk_outbox_events": dispatched,
        "uq_outbox_events_id": dispatched,
        "ix_outbox_events_undispatched": 0,
        "ix_outbox_events_undispatched_station": 0,
    }


def _outbox_indexes(database) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    with database.engine.connect() as connection:
        return {i["name"]: i["column_names"] for i in inspect(connection).get_indexes("outbox_events")}


def test_the_outbox_index_migration_goes_down_and_up(database, world, settings):  # type: ignore[no-untyped-def]
    """Migration 2023 on either database: down restores the full indexes, up the partial ones."""
    partial = {
        "ix_outbox_events_undispatched": ["seq"],
        "ix_outbox_events_undispatched_station": ["station_id", "seq"],
    }
    full = {
        "ix_outbox_events_dispatched_seq": ["dispatched_at", "seq"],
        "ix_outbox_events_station_seq": ["station_id", "seq"],
    }
    assert partial.items() <= _outbox_indexes(database).items()
    config = alembic_config(database.engine.url.render_as_string(hide_password=False))
    command.downgrade(config, "2022")
    found = _outbox_indexes(database)
    assert full.items() <= found.items() and not set(partial) & set(found)
    command.upgrade(config, "heads")
    found = _outbox_indexes(database)
    assert partial.items() <= found.items() and not set(full) & set(found)
    ingest = Ingest(database, settings)
    assert ingest.receive(InboundSMS("twilio", new_sid(), VOLUNTEER_A, REPORT)).text.startswith("OK TPS 012")
    assert dispatch(database, ["tally"], datetime.now(UTC)) == 2


def test_the_outbox_reads_undispatched_events_from_the_partial_indexes(postgresql, volunteers, settings):
    """With a night's events dispatched and a few not, the dispatch, the claim's check of a
    station's earlier events and the status's count read the partial indexes."""
    ingest = Ingest(postgresql, settings)
    for phone in volunteers[:2]:
        assert ingest.receive(InboundSMS("twilio", new_sid(), phone, REPORT)).text.startswith("OK")
    with postgresql.engine.connect() as c:
        c.exec_driver_sql(
            "INSERT INTO outbox_events"
            " (id, type, schema_version, station_id, payload, created_at, dispatched_at)"
            " SELECT gen_random_uuid()::text, 'report.accepted', 2,"
            " '6371011001' || lpad(mod(n, 500)::text, 3, '0'), '{}', now(), now()"
            " FROM generate_series(1, 20000) AS n"
        )
        c.exec_driver_sql("ANALYZE outbox_events")
        c.commit()
        plans = {
            query: "\n".join(c.exec_driver_sql(f"EXPLAIN {query}").scalars())
            for query in (
                "SELECT seq FROM outbox_events WHERE dispatched_at IS NULL ORDER BY seq LIMIT 100",
                "SELECT count(*) FROM outbox_events WHERE dispatched_at IS NULL",
                f"SELECT 1 FROM outbox_events WHERE station_id = '{STATION}' AND seq < 1000000"
                " AND dispatched_at IS NULL",
            )
        }
    for query, plan in plans.items():
        assert "ix_outbox_events_undispatched" in plan and "Seq Scan" not in plan, (query, plan)


def _sample_log_calls(database, backends: set[int]) -> int:  # type: ignore[no-untyped-def]
    table_counts(database, backends, "station_results")  # publishes the backends' statistics
    with database.engine.connect() as c:
        c.execute(text("SELECT pg_stat_clear_snapshot()"))
        calls = c.execute(
            text(
                "SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions"
                " WHERE funcname = 'smsgate_log_sample_result_change'"
            )
        ).scalar()
    return int(calls or 0)


def test_the_sample_log_runs_for_sampled_stations_only(postgresql, volunteers, settings, backends):
    """The sampled stations' change log (a plpgsql trigger) is not called at all for a station
    in no sample, and logs every change of a sampled one (``station_results.sampled``, kept by
    the database, in the trigger's ``WHEN``); counted in ``pg_stat_user_functions``."""
    with postgresql.engine.connect() as c:
        c.exec_driver_sql(f"ALTER DATABASE {c.engine.url.database} SET track_functions = 'pl'")
        c.commit()
    postgresql.engine.dispose()  # new sessions take the setting
    ingest = Ingest(postgresql, settings)

    def logged() -> int:
        with postgresql.engine.connect() as c:
            return int(c.execute(text("SELECT count(*) FROM sample_result_changes")).scalar() or 0)

    before = _sample_log_calls(postgresql, backends)
    for phone in volunteers[:3]:
        assert ingest.receive(InboundSMS("twilio", new_sid(), phone, REPORT)).text.startswith("OK")
    assert (_sample_log_calls(postgresql, backends) - before, logged()) == (0, 0)
    with postgresql.begin() as session:
        sample_of_one(session, STATION, active=True)
    assert logged() == 0  # marking the row logs nothing (nor did adding a station to a sample)
    before = _sample_log_calls(postgresql, backends)
    for phone in volunteers[3:5]:
        assert ingest.receive(InboundSMS("twilio", new_sid(), phone, REPORT)).text.startswith("OK")
    assert (_sample_log_calls(postgresql, backends) - before, logged()) == (2, 2)
    with postgresql.begin() as session:
        session.execute(delete(SampleStation))
    with postgresql.engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM station_results WHERE sampled")).scalar() == 0
