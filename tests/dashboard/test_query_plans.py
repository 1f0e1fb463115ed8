"""The dashboard's region, activity and message-log queries are index lookups on PostgreSQL,
whatever collation the database was created with.

Each query is the one the code really sends: captured from the engine while the dashboard's
own functions run, then explained with ``enable_seqscan = off``, so the plan shows whether an
index *can* serve it (on a few rows the planner would scan anyway, by cost; with seq scans
disabled a scan only appears when no index fits). On a database created with ``C.UTF-8`` a
plain btree cannot serve ``LIKE 'prefix%'``: these pass there only through the pattern-ops
indexes that migration 2001 creates.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from smsgate.dashboard import activity, queries
from smsgate.db import Database
from smsgate.models.postgres_indexes import (
    EXPORT_INDEXES,
    ORDERED_INDEXES,
    PHONE_INDEXES,
    PREFIX_INDEXES,
    SEARCH_INDEXES,
)
from smsgate.schema import alembic_config, upgrade
from smsgate.services import outliers, review

BIG_TABLES = (
    "reports", "stations", "station_results", "flags", "incidents", "inbound_messages",
    "outbound_messages", "contacts",
)  # fmt: skip


def _postgres() -> str:
    url = os.environ.get("SMSGATE_TEST_DATABASE_URL", "")
    if not url.startswith("postgresql"):
        pytest.skip("needs PostgreSQL (SMSGATE_TEST_DATABASE_URL)")
    return url


@pytest.fixture(params=["C.UTF-8", "C"])
def collated(request: pytest.FixtureRequest) -> Iterator[Database]:
    """A migrated scratch database created with the given collation."""
    url = make_url(_postgres())
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    name = f"smsgate_plan_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name} LOCALE '{request.param}' TEMPLATE template0")
    database = Database.from_url(url.set(database=name).render_as_string(hide_password=False))
    try:
        with database.engine.connect() as connection:
            assert (
                connection.exec_driver_sql(
                    "SELECT datcollate FROM pg_database WHERE datname = current_database()"
                ).scalar_one()
                == request.param
            )
        upgrade(database.engine)
        yield database
    finally:
        database.dispose()
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


def _plans(database: Database, run: Callable[[Session], object]) -> list[tuple[str, str]]:
    """Run ``run`` against the database and return (statement, EXPLAIN output) for every
    statement it sent."""
    sent: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            sent.append((statement, parameters))

    event.listen(database.engine, "before_cursor_execute", capture)
    try:
        with database.read() as session:
            result = run(session)
            if hasattr(result, "__next__"):
                list(result)  # a generator (the CSV rows) runs its queries when consumed
    finally:
        event.remove(database.engine, "before_cursor_execute", capture)
    plans = []
    with database.engine.connect() as connection:
        connection.exec_driver_sql("SET enable_seqscan = off")
        for statement, parameters in sent:
            rows = connection.exec_driver_sql("EXPLAIN " + statement, parameters).scalars()
            plans.append((statement, "\n".join(rows)))
    return plans


def _assert_indexed(plans: list[tuple[str, str]], *wanted: str) -> None:
    text = "\n".join(plan for _, plan in plans)
    for table in BIG_TABLES:
        assert f"Seq Scan on {table}" not in text, text
    for name in wanted:
        assert name in text, f"{name} not used:\n{text}"


def test_region_prefix_filters_use_the_pattern_ops_indexes(collated):
    regional = "\n".join(p for _, p in _plans(collated, lambda s: review.queue(s, "6371")))
    _assert_indexed([("", regional)])  # by prefix, or in the queue's order with the prefix as a condition
    assert "ix_station_results_id_prefix" in regional or "ix_station_results_review_queue" in regional
    regional = "\n".join(p for _, p in _plans(collated, lambda s: review.dissent(s, "6371")))
    _assert_indexed([("", regional)])
    assert "ix_station_results_dissent_open" in regional or "ix_station_results_dissent_impact" in regional
    _assert_indexed(
        _plans(collated, lambda s: queries.incidents(s, "6371")), "ix_incidents_place_prefix_created"
    )
    regional = "\n".join(
        p for _, p in _plans(collated, lambda s: queries.volunteers_without_report(s, "63.71"))
    )
    _assert_indexed([("", regional)])
    assert "ix_contacts_region_prefix" in regional or "ix_contacts_volunteers_in_order" in regional
    for key in ("", "6371"):  # the volunteers page's outvoted volunteers, nationally and by region
        _assert_indexed(
            _plans(collated, lambda s, key=key: outliers.outliers(s, key)), "ix_reports_outvoted_station"
        )
    text = "\n".join(p for _, p in _plans(collated, lambda s: queries.results_csv_rows(s, "6371")))
    assert "Index Cond" in text and "~>=~" in text  # a range on the pattern-ops index, not a filter
    # The export reads the region's desa and results by prefix too, not every region and result.
    _assert_indexed([("", text)])
    assert "Seq Scan on regions" not in text, text
    assert "ix_stations_id_prefix" in text or "ix_regions_code_prefix" in text, text


def _plan_of(plans: list[tuple[str, str]], marker: str) -> str:
    """The plan of the one statement containing ``marker``."""
    found = [plan for statement, plan in plans if marker in statement]
    assert len(found) == 1, [statement for statement, _ in plans]
    return found[0]


def test_the_national_review_queue_and_dissent_are_read_in_index_order(collated):
    """A page of the national queue reads the first entries of an index ordered as the queue
    is, never sorting the ~80,000 disputed or flagged stations of a national night."""
    queue = _plan_of(
        _plans(collated, lambda s: review.queue(s, "", 26, 0)), "ORDER BY station_results.impact"
    )
    assert "ix_station_results_review_queue" in queue and "Sort" not in queue, queue
    dissent = _plan_of(
        _plans(collated, lambda s: review.dissent(s, "", 26, 0)), "ORDER BY station_results.impact"
    )
    assert "ix_station_results_dissent_impact" in dissent and "Sort" not in dissent, dissent


def test_the_national_volunteers_without_a_report_are_read_in_index_order(collated):
    """The admin's list walks the volunteers in the page's order and stops at its limit,
    instead of sorting every volunteer of the country."""
    plan = _plan_of(_plans(collated, lambda s: queries.volunteers_without_report(s, None)), "ORDER BY")
    assert "ix_contacts_volunteers_in_order" in plan and "Sort" not in plan, plan
    assert "Anti Join" in plan, plan


def test_activity_counts_use_an_index_range(collated):
    since = datetime.now(UTC) - timedelta(minutes=3)
    for key in ("", "63", "637101"):
        plans = _plans(collated, lambda s, key=key: activity.count_minutes(s, key, since, UTC))
        _assert_indexed(plans)
        text = "\n".join(p for _, p in plans)
        assert "Index Cond" in text
        assert "ix_reports_created_at" in text or "ix_reports_station_prefix_created" in text, text


def test_message_log_reads_newest_first_from_an_index_and_searches_with_trigrams(collated):
    plans = _plans(collated, lambda s: queries.message_log(s, None, queries.MessageFilter(), 1))
    _assert_indexed(plans, "ix_inbound_messages_received_at", "ix_outbound_messages_created_at")
    scoped = _plans(collated, lambda s: queries.message_log(s, "63.71", queries.MessageFilter(), 1))
    _assert_indexed(scoped, "ix_contacts_region_prefix")
    _assert_indexed(_plans(collated, lambda s: queries.incidents(s, "")), "ix_incidents_created_at")
    search = queries.MessageFilter(text="tps 012", phone="0812")
    plans = _plans(collated, lambda s: queries.message_log(s, None, search, 1))
    _assert_indexed(plans)


@pytest.mark.parametrize(
    ("typed", "inbound", "outbound"),
    [
        ("0812-3456-7890", "ix_inbound_messages_from_prefix", "ix_outbound_messages_to_prefix"),
        ("+62 812 3456", "ix_inbound_messages_from_prefix", "ix_outbound_messages_to_prefix"),
        ("4567890", "ix_inbound_messages_from_suffix", "ix_outbound_messages_to_suffix"),
    ],
)
def test_phone_search_is_a_range_on_the_number_or_the_reversed_number(collated, typed, inbound, outbound):
    """A number's start or its last digits: an index range, whatever the collation (a trigram
    index matched every digit string by the hundred thousand nationally)."""
    search = queries.MessageFilter(phone=typed)
    for scope in (None, "63.71"):
        plans = _plans(collated, lambda s, scope=scope: queries.message_log(s, scope, search, 1))
        _assert_indexed(plans, inbound, outbound)
        text = "\n".join(
            line for _, plan in plans for line in plan.splitlines() if "Index Cond" in line and "~>=~" in line
        )
        assert "from_number" in text and "to_number" in text, plans


def test_the_index_migration_goes_down_and_up(collated):
    from alembic import command

    def indexes() -> set[str]:
        with collated.engine.connect() as connection:
            return set(connection.exec_driver_sql("SELECT indexname FROM pg_indexes").scalars())

    expected = set(PREFIX_INDEXES) | set(SEARCH_INDEXES) | {"ix_reports_created_at"}
    trigram_phones = {"ix_inbound_messages_from_trgm", "ix_outbound_messages_to_trgm"}
    assert expected | set(ORDERED_INDEXES) | set(PHONE_INDEXES) | set(EXPORT_INDEXES) <= indexes()
    assert not trigram_phones & indexes()
    config = alembic_config(collated.engine.url.render_as_string(hide_password=False))
    command.downgrade(config, "2012")  # takes the regions' prefix index (2013) down
    assert "ix_regions_code_prefix" not in indexes()
    command.downgrade(config, "2011")  # takes the volunteers' order index (2012) down
    assert "ix_contacts_volunteers_in_order" not in indexes()
    command.downgrade(config, "2010")  # the phone search's trigram indexes come back
    assert not set(PHONE_INDEXES) & indexes() and trigram_phones <= indexes()
    command.downgrade(config, "2003")  # takes the review order indexes (2010) down
    assert not set(ORDERED_INDEXES) & indexes() and expected <= indexes()
    command.downgrade(config, "0004")  # takes 2001 (built on 0004) down
    assert not expected & indexes()
    command.upgrade(config, "heads")
    assert expected | set(ORDERED_INDEXES) | set(PHONE_INDEXES) | set(EXPORT_INDEXES) <= indexes()
    assert not trigram_phones & indexes()


def test_the_national_text_search_reads_a_window_then_trigram_candidates(collated):
    """The newest messages by a range on their time, then the rows holding each run of the text
    from the trigram index (``queries._page``): never a walk of the whole log."""
    from smsgate.models import InboundMessage, OutboundMessage

    at = datetime(2026, 11, 30, 7, tzinfo=UTC)
    with collated.begin() as session:
        for i in range(3):
            session.add(
                InboundMessage(
                    provider="android", provider_message_id=f"p{i}", from_number=f"+6281100000{i:02d}",
                    body=f"TPS 00{i} 01=1", received_at=at + timedelta(minutes=i), outcome="accepted",
                )
            )  # fmt: skip
            session.add(
                OutboundMessage(to_number="+628110000001", text=f"OK TPS 00{i}", provider="android",
                                created_at=at + timedelta(minutes=i))
            )  # fmt: skip
    search = queries.MessageFilter(text="TPS 012")
    plans = _plans(collated, lambda s: queries.message_log(s, None, search, 1, 2, 100))
    _assert_indexed(plans)
    for table, column, trigrams in (
        ("inbound_messages", "received_at", "ix_inbound_messages_body_trgm"),
        ("outbound_messages", "created_at", "ix_outbound_messages_text_trgm"),
    ):
        window = _plan_of(plans, f"{table}.{column} >=")
        assert f"Index Cond: ({column} >=" in window, window
        assert trigrams in _plan_of(plans, f"SELECT count(*) AS count_1 \nFROM (SELECT {table}.id")
        among = _plan_of(plans, f"WITH candidates AS MATERIALIZED \n(SELECT {table}.id")
        assert trigrams in among and "Index Cond" in among, among


def test_a_stations_reports_are_read_by_the_pattern_index_alone(collated):
    """A station's reports (its page, its API document, the review queue's documents) are an
    index range on ``ix_reports_station_prefix_created``: migration 2022 dropped the plain
    ``ix_reports_station_created`` beside it, which every report wrote an entry in for nothing."""
    from alembic import command

    from smsgate.models import Region, Station, StationResult
    from smsgate.services import tally

    station = "6371011001012"

    def indexes() -> set[str]:
        with collated.engine.connect() as connection:
            return set(connection.exec_driver_sql("SELECT indexname FROM pg_indexes").scalars())

    with collated.begin() as session:
        session.add(
            Region(code="63.71.01.1001", key="6371011001", name="Mantuil", search_name="mantuil", level=4)
        )
        session.flush()
        session.add(Station(id=station, region_code="63.71.01.1001", tps=12))
        session.flush()
        session.add(StationResult(station_id=station))
    assert "ix_reports_station_created" not in indexes()
    plans = [
        *_plans(collated, lambda s: queries.station_page(s, station)),
        *_plans(collated, lambda s: tally.station_document(s, station)),
        *_plans(collated, lambda s: review._documents(s, [s.get(StationResult, station)])),
    ]
    by_station = [plan for statement, plan in plans if "reports.station_id" in statement]
    assert len(by_station) >= 4, [statement for statement, _ in plans]
    _assert_indexed(plans)
    for plan in by_station:
        assert "ix_reports_station_prefix_created" in plan, plan
    config = alembic_config(collated.engine.url.render_as_string(hide_password=False))
    command.downgrade(config, "2102")
    assert "ix_reports_station_created" in indexes()
    command.upgrade(config, "heads")
    assert "ix_reports_station_created" not in indexes()
