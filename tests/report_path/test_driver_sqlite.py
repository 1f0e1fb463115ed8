"""SQLite's report path runs its fixed statements on the driver's cursor (``smsgate.driver``),
past SQLAlchemy's execution. The round-trip guard counts through SQLAlchemy's cursor events and
must never undercount: here SQLite itself (sqlite3's trace callback, called for every statement
the library runs) says what was executed, and that must be exactly what the counters saw."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, func, select

from smsgate.models import InboundMessage, Report

pytestmark = pytest.mark.skipif(
    os.environ.get("SMSGATE_TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="SQLite's trace callback: the PostgreSQL side is tests/report_path/test_driver.py",
)


class _Traced:
    """Every statement SQLite ran on the database's connections while ``on``."""

    def __init__(self) -> None:
        self.on = False
        self.statements: list[str] = []

    def __call__(self, statement: str) -> None:
        if self.on:
            self.statements.append(statement)


@pytest.fixture
def traced(database) -> Iterator[_Traced]:  # type: ignore[no-untyped-def]
    record = _Traced()

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.set_trace_callback(record)

    database.engine.dispose()  # no connection opened before the callback was set
    event.listen(database.engine, "connect", on_connect)
    yield record
    event.remove(database.engine, "connect", on_connect)


def _start(statement: str) -> str:
    """The first three words of a statement: SQLite traces it with its values in place of the
    ``?``, which come later in each of the report path's statements."""
    return " ".join(statement.split()[:3])


def test_the_statement_counters_see_every_statement_sqlite_runs(send_one_recorded, database, traced):
    seen = send_one_recorded(traced)
    # SQLite traces COMMIT as a statement (the counters list it from the engine's commit event),
    # and an ``executemany`` (the region counters, several events) once per row: one call, one
    # entry in the counters.
    ran = [_start(s) for s in traced.statements]
    ran = [s for i, s in enumerate(ran) if i == 0 or s != ran[i - 1]]
    assert [_start(s) for s in seen] == ran, "\n".join(["counted:", *seen, "ran:", *traced.statements])
    whole = [" ".join(s.split()) for s in traced.statements]
    # ... and that is the whole path, the statements run past SQLAlchemy included.
    for start in (
        "INSERT INTO inbound_messages",
        "SELECT stations.id, stations.region_code",
        "INSERT INTO reports",
    ):
        assert sum(s.startswith(start) for s in whole) == 1, (start, [w[:60] for w in whole])
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(Report)) == 2
        assert session.scalar(select(func.count()).select_from(InboundMessage)) == 2
