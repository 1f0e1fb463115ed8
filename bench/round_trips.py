"""Counting a database's round trips while something runs, for the benches that report them.

Two counts: statements (``count_round_trips``: each statement, ``BEGIN`` and ``COMMIT``, as
SQLAlchemy's events see them) and the waits for the server (``count_network_waits``: the same
while every statement waits for its answer; statements sent together, in psycopg's pipeline
mode, would share one). Kept apart from the benches' other helpers and free
of smsgate imports, so that ``bench/ingest.py`` can count the round trips of an older
revision's code with it too.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, event


def count_round_trips(engine: Engine, action: Callable[[], object]) -> tuple[int, list[str]]:
    """Round trips to the database while ``action`` runs: every statement, ``BEGIN``, ``COMMIT``,
    ``ROLLBACK``, and the pool's pre-ping on each checkout (it bypasses the cursor events)."""
    seen: list[str] = []

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split())[:90])

    def on_begin(_conn: Any) -> None:
        if engine.dialect.name != "sqlite":  # psycopg's own BEGIN; smsgate sends SQLite's itself
            seen.append("BEGIN")

    def on_commit(_conn: Any) -> None:
        seen.append("COMMIT")

    def on_rollback(_conn: Any) -> None:
        seen.append("ROLLBACK")

    def on_checkout(*_: Any) -> None:
        if getattr(engine.pool, "_pre_ping", False):
            seen.append("(pool pre-ping)")

    hooks = [
        (engine, "before_cursor_execute", on_execute),
        (engine, "begin", on_begin),
        (engine, "commit", on_commit),
        (engine, "rollback", on_rollback),
        (engine.pool, "checkout", on_checkout),
    ]
    for target, name, fn in hooks:
        event.listen(target, name, fn)
    try:
        action()
    finally:
        for target, name, fn in hooks:
            event.remove(target, name, fn)
    return len(seen), seen


def count_network_waits(engine: Engine, action: Callable[[], object]) -> int:
    """Times the client waited for PostgreSQL's answer while ``action`` ran, on every connection
    checked out meanwhile: libpq traces each protocol message it sends and receives (psycopg's
    ``PGconn.trace``), and every turn from sending to receiving is one wait, one round trip
    (``BEGIN`` and ``COMMIT`` included; statements sent together in one pipeline would share
    one). Deterministic, unlike a time; PostgreSQL through psycopg only."""
    from psycopg import pq

    traces: list[tuple[Any, Any]] = []

    def on_checkout(dbapi_connection: Any, *_: Any) -> None:
        trace = tempfile.TemporaryFile()  # noqa: SIM115 - closed once read, below
        dbapi_connection.pgconn.trace(trace.fileno())
        dbapi_connection.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
        traces.append((dbapi_connection, trace))

    def on_checkin(dbapi_connection: Any, *_: Any) -> None:
        if dbapi_connection is not None and not dbapi_connection.closed:
            dbapi_connection.pgconn.untrace()  # flushes libpq's buffered trace

    event.listen(engine.pool, "checkout", on_checkout)
    event.listen(engine.pool, "checkin", on_checkin)
    try:
        action()
    finally:
        event.remove(engine.pool, "checkout", on_checkout)
        event.remove(engine.pool, "checkin", on_checkin)
    waits = 0
    for dbapi_connection, trace in traces:
        if not dbapi_connection.closed:
            dbapi_connection.pgconn.untrace()
        trace.seek(0)
        directions = [line[:1] for line in trace.read().decode(errors="replace").splitlines()]
        trace.close()
        waits += sum(1 for turn in itertools.pairwise(directions) if turn == ("F", "B"))
    return waits
