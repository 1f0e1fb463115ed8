"""The report path's fixed PostgreSQL statements run on the driver's cursor (``smsgate.driver``),
past SQLAlchemy's execution. What SQLAlchemy's execution gave must still hold: every statement
sent is seen by the statement counters (the round-trip guard counts through SQLAlchemy's cursor
events and must never undercount), and a connection the server drops under any of them is
recognised, discarded, and the message handled once more on a fresh one, stored once."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Integer, bindparam, event, func, make_url, select, text
from sqlalchemy.exc import DataError

from smsgate import driver
from smsgate.inbound import InboundSMS
from smsgate.models import InboundMessage, Report
from smsgate.services import recount
from smsgate.services.ingest import Ingest
from tests.report_path.test_round_trips import with_default_flood_control
from tests.support import VOLUNTEER_A, VOLUNTEER_B, new_sid

pytestmark = pytest.mark.skipif(
    not os.environ.get("SMSGATE_TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="the statements run on the driver's cursor are PostgreSQL's",
)

REPORT = "TPS 012 01=123 02=98 03=150"


class _Sent:
    """Every ``execute`` of a psycopg cursor while ``on``: what the driver really sent."""

    def __init__(self) -> None:
        self.on = False
        self.statements: list[str] = []


@pytest.fixture
def sent(database) -> Iterator[_Sent]:  # type: ignore[no-untyped-def]
    """The database's connections, opened from here on, make cursors that record their
    statements (psycopg's ``cursor_factory``): SQLAlchemy's and the driver path's alike."""
    record = _Sent()

    class Recording(psycopg.Cursor[Any]):
        def execute(self, query: Any, params: Any = None, **kw: Any) -> Any:
            if record.on:
                record.statements.append(str(query))
            return super().execute(query, params, **kw)

        def executemany(self, query: Any, params_seq: Any, **kw: Any) -> Any:
            if record.on:
                record.statements.append(str(query))
            return super().executemany(query, params_seq, **kw)

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.cursor_factory = Recording

    database.engine.dispose()  # no connection opened before the factory was set
    event.listen(database.engine, "connect", on_connect)
    yield record
    event.remove(database.engine, "connect", on_connect)


def test_the_statement_counters_see_every_statement_the_driver_sends(send_one_recorded, sent):
    seen = send_one_recorded(sent)
    counted = [s for s in seen if s not in ("BEGIN", "COMMIT", "ROLLBACK")]
    # Everything a cursor executed, in order, is what the counters listed (they shorten it).
    assert counted == [" ".join(s.split())[:100] for s in sent.statements], (seen, sent.statements)
    # ... and that is the whole path, the statements run past SQLAlchemy included.
    whole = [" ".join(s.split()) for s in sent.statements]
    for part in (
        "set_config('lock_timeout'",
        "WITH logged AS (INSERT INTO inbound_messages",
        "FOR UPDATE OF station_results",
        "WITH new_report AS (INSERT INTO reports",
        "WITH messages AS ( UPDATE inbound_messages",
    ):
        assert sum(part in s for s in whole) == 1, (part, counted)


#: Where the server drops the connection: a fragment of the statement about to be sent.
DROPPED_BEFORE = {
    "opening": "set_config('lock_timeout'",  # the transaction's first statement (begin event)
    "logging": "WITH logged AS (INSERT INTO inbound_messages",
    "station lock": "FOR UPDATE OF station_results",
    "report": "WITH new_report AS (INSERT INTO reports",
    "pending writes": "WITH messages AS (",
}


@pytest.fixture
def drop_connection(database, database_url) -> Iterator[Callable[[str], list[int]]]:  # type: ignore[no-untyped-def]
    """``drop(fragment)``: the first time a statement containing ``fragment`` is about to be
    sent, its connection's server process is terminated (as a restart or PgBouncer would drop
    it) and gone before the statement goes out; returns the list of terminated pids."""
    admin = psycopg.connect(
        make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False),
        autocommit=True,
    )
    terminated: list[int] = []
    hooks: list[Callable[..., None]] = []

    def drop(fragment: str) -> list[int]:
        def before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
            if terminated or fragment not in " ".join(statement.split()):
                return
            pid = cursor.connection.info.backend_pid
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            for _ in range(500):
                if not admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
                    break
                time.sleep(0.01)
            terminated.append(pid)

        event.listen(database.engine, "before_cursor_execute", before)
        hooks.append(before)
        return terminated

    yield drop
    for hook in hooks:
        event.remove(database.engine, "before_cursor_execute", hook)
    admin.close()


@pytest.mark.parametrize("where", list(DROPPED_BEFORE))
def test_a_connection_dropped_under_any_statement_is_replaced_and_the_report_stored_once(
    where, world, database, settings, drop_connection, caplog
):
    ingest = Ingest(database, with_default_flood_control(settings))
    assert ingest.receive(InboundSMS("twilio", new_sid(), VOLUNTEER_B, REPORT)).text.startswith("OK")
    terminated = drop_connection(DROPPED_BEFORE[where])
    sid = new_sid()
    with caplog.at_level(logging.WARNING, logger="smsgate.services.ingest"):
        reply = ingest.receive(InboundSMS("twilio", sid, VOLUNTEER_A, REPORT))
    assert len(terminated) == 1, "the statement was never sent"
    assert reply.text.startswith("OK TPS 012"), reply.text
    assert reply.stored and reply.outcome == "accepted"
    assert any("connection lost" in r.getMessage() for r in caplog.records), caplog.text
    # Handled once more on a fresh connection, stored once; a redelivery is answered alike.
    again = ingest.receive(InboundSMS("twilio", sid, VOLUNTEER_A, REPORT))
    assert (again.text, again.outcome) == (reply.text, reply.outcome)
    with database.read() as session:
        logged = session.scalars(select(InboundMessage).where(InboundMessage.provider_message_id == sid))
        messages = list(logged)
        assert [(m.outcome, m.reply) for m in messages] == [("accepted", reply.text)]
        stored = select(func.count()).select_from(Report).where(Report.inbound_message_id == messages[0].id)
        assert session.scalar(stored) == 1
        assert recount.verify(session) == []
        assert session.execute(text("SELECT pg_backend_pid()")).scalar() != terminated[0]


def test_a_failing_driver_statement_raises_sqlalchemys_error_and_its_connection_serves_on(database):
    """A statement error that is not a lost connection: SQLAlchemy's own exception class, the
    connection kept (not invalidated), and the next statement on it runs (the failed statement's
    cursor, which SQLAlchemy closed, replaced)."""
    quotient = bindparam("n", type_=Integer) / bindparam("d", type_=Integer)
    divide = driver.Statement(select(quotient.label("q")))
    with database.engine.connect() as connection:
        dbapi = connection.connection.dbapi_connection
        with connection.begin():
            assert tuple(divide.one(connection, {"n": 6, "d": 3})) == (2,)
        with pytest.raises(DataError) as failed, connection.begin():
            divide.one(connection, {"n": 1, "d": 0})
        assert not failed.value.connection_invalidated and not connection.invalidated
        with connection.begin():
            assert tuple(divide.one(connection, {"n": 9, "d": 3})) == (3,)
        assert connection.connection.dbapi_connection is dbapi
