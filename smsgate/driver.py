"""Fixed statements of the report path run on the driver's cursor, past SQLAlchemy's execution.

Every SMS runs the same handful of PostgreSQL statements, whose text never changes. Executed
through SQLAlchemy each one pays for an execution context, the compiled cache's lookup, the
parameters' processing, a fresh cursor, the cursor's description (psycopg builds an object per
column: the report path's statements return about 60) and a result object, all of it about as
much CPU as psycopg's own work for the statement. ``Statement`` compiles its statement once per
process and dialect to the driver's SQL text, exactly as SQLAlchemy would send it (the same
text, so the same prepared statement on the server; the same bind casts; the constants the
statement carries, a ``literal(1)`` say, bound once), and runs it on the SQLAlchemy
connection's own DBAPI connection, inside the transaction SQLAlchemy began, on a cursor kept
for that statement and connection (psycopg then keeps the parameters' dumpers and the columns'
loaders, a JSON loader an instance each, instead of building them at every execution),
reading the rows from the cursor as tuples.

What SQLAlchemy's execution gives that matters is kept:

- ``before_cursor_execute`` and ``after_cursor_execute`` fire with the statement and parameters
  sent (no execution context: ``None``), so every listener that counts or inspects statements
  (``tests/report_path/test_round_trips.py``, ``bench/round_trips.py``) sees these too;
- a driver error goes through SQLAlchemy's own handling (``Connection._handle_dbapi_exception``):
  it is raised as SQLAlchemy's exception class (``IntegrityError``, ``OperationalError``), a lost
  connection is recognised, invalidated with the pool's older connections and raised with
  ``connection_invalidated`` set (``Ingest._process`` retries on that), ``handle_error`` hooks run;
- the types' bind and result processors run (``UTCDateTime``, JSON; a result processor chosen
  for the column's database type, read once from the cursor's description);
- psycopg's own settings hold: a connection opened with ``prepare_threshold=None`` (PgBouncer)
  never prepares these either.

Only statements whose text does not depend on the values bound qualify (named parameters, or
SQLite's positional ones, bound in their order; an ``IN`` of a fixed list is expanded once);
anything else is refused when it is first compiled.
Running and compiling go through SQLAlchemy 2's private connection and compiler attributes, the
same calls its own execution makes; ``tests/report_path/test_driver.py`` fails if they change
(statements unseen by the counters, a dropped connection not replaced).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.engine.util import TransactionalContext
from sqlalchemy.exc import MultipleResultsFound, NoResultFound
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

#: ``PoolProxiedConnection.info`` key: (the DBAPI connection, its cursors kept by SQL text).
_CURSORS = "smsgate.driver.cursors"
#: Cursors kept per connection at most (the report path has about ten statement texts).
MAX_CURSORS = 32


class Statement:
    """A fixed statement, compiled once per dialect, executed on the driver's cursor."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: weakref.WeakKeyDictionary[Dialect, _Compiled] = weakref.WeakKeyDictionary()

    def compiled(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect)
        if found is None:
            found = self._compiled[dialect] = _Compiled(self.statement, dialect)
        return found

    def execute(self, connection: Connection, params: Mapping[str, Any]) -> Any:
        """Run the statement on ``connection``'s DBAPI connection, in its transaction; the DBAPI
        cursor, its result not yet fetched."""
        compiled = self.compiled(connection.dialect)
        return _run(connection, compiled.sql, compiled.bind(params))

    def executemany(self, connection: Connection, params: Sequence[Mapping[str, Any]]) -> Any:
        """Run the statement once per parameter set, in one ``executemany`` of the driver (as
        SQLAlchemy sends a list of parameter sets: one call, seen once by the counters); the
        DBAPI cursor. Not for statements that return rows."""
        compiled = self.compiled(connection.dialect)
        return _run(connection, compiled.sql, [compiled.bind(one) for one in params], many=True)

    def all(self, connection: Connection, params: Mapping[str, Any]) -> list[Sequence[Any]]:
        """The rows, with the result columns' type processors applied."""
        compiled = self.compiled(connection.dialect)
        bound = compiled.bind(params)
        cursor = _run(connection, compiled.sql, bound)
        try:
            rows = cursor.fetchall()
        except BaseException as error:  # as SQLAlchemy's result does: its exception class
            connection._handle_dbapi_exception(error, compiled.sql, bound, cursor, None)
        return compiled.processed(cursor, rows)

    def one_or_none(self, connection: Connection, params: Mapping[str, Any]) -> Sequence[Any] | None:
        rows = self.all(connection, params)
        if len(rows) > 1:
            raise MultipleResultsFound(f"{len(rows)} rows where one at most was expected")
        return rows[0] if rows else None

    def one(self, connection: Connection, params: Mapping[str, Any]) -> Sequence[Any]:
        row = self.one_or_none(connection, params)
        if row is None:
            raise NoResultFound("no row where one was expected")
        return row


class _Compiled:
    """What executing a statement needs, computed once: the SQL text in the driver's
    paramstyle, the required parameters, the constants, the bind and result processors."""

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        if not isinstance(compiled, SQLCompiler):
            raise TypeError(f"not a SQL statement: {statement!r}")
        if compiled.escaped_bind_names:
            raise ValueError("only parameters without escaping are run on the driver")
        required = {name: bind for bind, name in compiled.bind_names.items() if bind.required}
        if any(bind.expanding or bind.literal_execute for bind in required.values()):
            raise ValueError("a parameter whose value changes the SQL text needs SQLAlchemy")
        # Expanding and post-compile parameters are all constants here (``IN`` a fixed list):
        # expanded once, to the text and parameters SQLAlchemy would send at every execution.
        state = compiled.construct_expanded_state(dict.fromkeys(required))
        self.sql: str = state.statement
        self.required: tuple[str, ...] = tuple(required)
        #: A positional paramstyle's (SQLite's ``qmark``) parameter names in their order.
        self.positions: tuple[str, ...] | None = (
            tuple(state.positiontup or ()) if compiled.positional else None
        )
        # As SQLAlchemy's execution does: the compiled statement's processors, and the expanded
        # parameters' own (a tuple's processors, one per element, are refused).
        processors: dict[str, Callable[[Any], Any]] = {}
        for name, processor in {**compiled._bind_processors, **state.processors}.items():
            if processor is None or name not in state.parameters:
                continue
            if not callable(processor):
                raise ValueError(f"tuple parameter {name!r} needs SQLAlchemy")
            processors[name] = processor
        #: The constants' values as sent (processed once); the processors of the others.
        self.constants: dict[str, Any] = {
            name: processors[name](value) if name in processors else value
            for name, value in state.parameters.items()
            if name not in required
        }
        self.bind_processors: tuple[tuple[str, Callable[[Any], Any]], ...] = tuple(
            (name, processor) for name, processor in processors.items() if name in required
        )
        self.dialect = dialect
        self.result_types = [column.type for column in compiled._result_columns]
        #: The result columns' processors, learnt at the first execution (a type's processor
        #: may depend on the column's type in the database, as SQLAlchemy's does).
        self.result_processors: tuple[tuple[int, Callable[[Any], Any]], ...] | None = None

    def bind(self, params: Mapping[str, Any]) -> Any:
        """The parameters as the driver takes them: a dict, or a tuple in ``positions``' order."""
        bound = dict(self.constants)
        for name in self.required:
            bound[name] = params[name]
        for name, processor in self.bind_processors:
            bound[name] = processor(bound[name])
        if self.positions is not None:
            return tuple(bound[name] for name in self.positions)
        return bound

    def processed(self, cursor: Any, rows: list[Sequence[Any]]) -> list[Sequence[Any]]:
        processors = self.result_processors
        if processors is None:
            processors = self.result_processors = self._result_processors(cursor)
        if not processors or not rows:
            return rows
        done: list[Sequence[Any]] = []
        for row in rows:
            values = list(row)
            for index, processor in processors:
                values[index] = processor(values[index])
            done.append(values)
        return done

    def _result_processors(self, cursor: Any) -> tuple[tuple[int, Callable[[Any], Any]], ...]:
        """What SQLAlchemy's result does per column: the type's processor for the column's
        database type (read once from the cursor's description)."""
        found = []
        description = cursor.description or ()
        for index, (type_, column) in enumerate(zip(self.result_types, description, strict=True)):
            processor = type_._cached_result_processor(self.dialect, column[1])  # DBAPI type_code
            if processor is not None:
                found.append((index, processor))
        return tuple(found)


def execute_sql(connection: Connection, sql: str, params: Mapping[str, Any]) -> Any:
    """A driver-level SQL text (``%(name)s`` parameters) run as ``Statement.execute`` runs its
    compiled text; the DBAPI cursor."""
    return _run(connection, sql, dict(params))


def _run(connection: Connection, sql: str, params: Any, many: bool = False) -> Any:
    """``cursor.execute`` (``many``: ``executemany``) on the connection's DBAPI connection, the
    way SQLAlchemy's ``Connection._execute_context`` and ``_exec_single_context`` do it, without
    an execution context."""
    # The checks SQLAlchemy's ``Connection._execute_context`` makes before every statement, in
    # its order: an inactive transaction or savepoint raises ``PendingRollbackError``.
    transaction, nested = connection._transaction, connection._nested_transaction
    if (transaction is not None and not transaction.is_active) or (
        nested is not None and not nested.is_active
    ):
        connection._invalid_transaction()
    elif connection._trans_context_manager:
        TransactionalContext._trans_ctx_check(connection)
    if transaction is None:
        connection._autobegin()
    fairy = connection.connection  # revalidates, or raises, if the connection was invalidated
    cursor: Any = None
    try:
        cursor = _cursor(fairy, sql)
        events = connection._has_events or connection.engine._has_events
        if events:
            for fn in connection.dispatch.before_cursor_execute:
                sql, params = fn(connection, cursor, sql, params, None, many)
        if connection._echo:
            connection._log_info(sql)
            connection._log_info("[driver] %r", params)
        if many:
            cursor.executemany(sql, params)
        else:
            cursor.execute(sql, params)
        if events:
            connection.dispatch.after_cursor_execute(connection, cursor, sql, params, None, many)
    except BaseException as error:
        connection._handle_dbapi_exception(error, sql, params, cursor, None)
    return cursor


def _cursor(fairy: Any, sql: str) -> Any:
    """The cursor of the pooled DBAPI connection kept for ``sql``: one per statement, so that
    psycopg, which keeps a cursor's adapters (its ``Transformer``: the parameters' dumpers, the
    columns' loaders, a JSON loader an instance each) only while the cursor runs the very same
    query object again, builds them once per connection and statement, not at every
    execution. A new cursor when that one was closed (SQLAlchemy closes the cursor of a
    failed statement) or the DBAPI connection was replaced."""
    dbapi = fairy.dbapi_connection
    held = fairy.info.get(_CURSORS)
    if held is None or held[0] is not dbapi:
        held = fairy.info[_CURSORS] = (dbapi, {})
    cursors = held[1]
    cursor = cursors.get(sql)
    if cursor is not None and cursor.closed is False:
        return cursor
    cursor = dbapi.cursor()
    # sqlite3's cursors do not say whether they are closed: a new one each time (cheap there),
    # none kept.
    if getattr(cursor, "closed", None) is False:
        if len(cursors) >= MAX_CURSORS:  # the statements are a fixed few; never let them pile up
            cursors.clear()
        cursors[sql] = cursor
    return cursor
