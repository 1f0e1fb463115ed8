"""What handling a message left for commit, written with prebuilt statements instead of the
ORM's unit of work.

An ordinary report leaves the same few changes behind: the message row's outcome and reply,
the station's result row, the events, the region counters (held back by ``counters.defer``),
and perhaps reports of the station (the sender's earlier one superseded, the new one flagged,
others outvoted) and the flags the checks added (a correction, a report one digit off the
others: most of an election night's later messages). The ORM's flush
found and wrote them at commit, one statement per table, for about a quarter of the report's
CPU (sorting the unit of work, each object's history, each statement's parameters).
``write`` writes exactly those changes itself: on PostgreSQL in one statement (data-modifying
``WITH``, the rows bound as one JSON document, so the statement's text does not depend on the
rows and is compiled once; one text for each set of tables that have rows, so a table with
none costs nothing), on SQLite one prebuilt statement per table.
The objects written are then removed from the session, so the flush at commit has nothing left
to do for them.

Anything else pending (a flag resolved, a contact changed, any other row) makes ``write`` leave all
of it to the ORM's flush at commit, as before: rarer paths keep their full behaviour and only
the common shape is special.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, inspect, text, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import instance_state

from .. import driver
from ..models import Flag, InboundMessage, OutboxEvent, Report, StationResult
from . import counters, station_lock
from .rows import detach

#: The message row's columns handling may change.
MESSAGE_COLUMNS = ("contact_id", "outcome", "error_code", "reply")
#: The result row's columns (all but the key), written whole: the unchanged ones keep their value.
RESULT_COLUMNS = (
    "status",
    "votes",
    "valid",
    "invalid",
    "report_id",
    "report_count",
    "flagged",
    "updated_at",
    "dissent",
    "dissent_open",
    "impact",
    "contested",
    "event_sequence",
)
#: A stored report's columns that storing another one may change.
REPORT_COLUMNS = ("superseded_at", "superseded_by_id", "outvoted", "flagged")
#: An event's columns (``seq`` is the database's; ``dispatched_at`` starts empty).
EVENT_COLUMNS = (
    "id",
    "type",
    "schema_version",
    "station_id",
    "station_sequence",
    "destination",
    "payload",
    "created_at",
)
#: A new flag's columns (``id`` is the database's): those of ``FLAG_OPTIONAL`` that were not
#: given are NULL, as the model's default says; the others must be given.
FLAG_COLUMNS = ("station_id", "kind", "reason", "report_id", "created_at", "resolved_at", "resolved_by")
FLAG_OPTIONAL = frozenset({"report_id", "resolved_at", "resolved_by"})

_WRITABLE: dict[type[Any], frozenset[str]] = {
    InboundMessage: frozenset(MESSAGE_COLUMNS),
    StationResult: frozenset(RESULT_COLUMNS),
    Report: frozenset(REPORT_COLUMNS),
}
#: What is written of each object, key first: all of it must be loaded (``_loaded``).
_WRITTEN: dict[type[Any], tuple[str, ...]] = {
    InboundMessage: ("id", *MESSAGE_COLUMNS),
    StationResult: ("station_id", *RESULT_COLUMNS),
    Report: ("id", *REPORT_COLUMNS),
    OutboxEvent: EVENT_COLUMNS,
}


def write(session: Session) -> bool:
    """Write the session's pending changes if they are all of the shapes above, with the
    counter rows ``counters.defer`` held back; ``False`` when any change is not (the counters
    are written anyway, the rest is left to the ORM's flush at commit)."""
    counter_rows = counters.take_deferred(session)
    shaped = _shaped(session)
    if shaped is None:
        if counter_rows:
            counters.write(session, counter_rows)
        return False
    events, flags, changed = shaped
    if not events and not flags and not counter_rows and not any(changed.values()):
        return True
    messages = [_values(m, _WRITTEN[InboundMessage]) for m in changed[InboundMessage]]
    results = [_values(r, _WRITTEN[StationResult]) for r in changed[StationResult]]
    reports = [_values(r, _WRITTEN[Report]) for r in sorted(changed[Report], key=lambda r: r.id)]
    rows = [_values(e, EVENT_COLUMNS) for e in events]
    flag_rows = [_flag_values(f) for f in flags]
    if session.get_bind().dialect.name == "postgresql":
        _write_postgresql(session, messages, results, reports, rows, flag_rows, counter_rows)
    else:
        if counter_rows:
            counters.write(session, counter_rows)
        _write_sqlite(session, messages, results, reports, rows, flag_rows)
    # Detached from here on: a change made to one of these objects later in the transaction
    # is not written (nor is a new flag's id known: nothing on the report path asks for it).
    # The station lock's cache forgets the result rows so that a later ``lock`` reads the row
    # again rather than handing out a detached one.
    detach(session, [*events, *flags, *(o for objs in changed.values() for o in objs)])
    station_lock.forget(session, changed[StationResult])
    return True


def _shaped(
    session: Session,
) -> tuple[list[OutboxEvent], list[Flag], dict[type[Any], list[Any]]] | None:
    """The new events, the new flags and the changed rows by model, or ``None`` if anything
    else is pending or any of them lacks a value to write (``_loaded``)."""
    if session.deleted:
        return None
    events: list[OutboxEvent] = []
    flags: list[Flag] = []
    for obj in session.new:
        if type(obj) is OutboxEvent and _loaded(obj, EVENT_COLUMNS):
            events.append(obj)
        elif type(obj) is Flag and _loaded(obj, _FLAG_REQUIRED):
            flags.append(obj)
        else:
            return None
    changed: dict[type[Any], list[Any]] = {InboundMessage: [], StationResult: [], Report: []}
    for obj in session.dirty:
        allowed = _WRITABLE.get(type(obj))
        if allowed is None or not allowed.issuperset(inspect(obj).committed_state):
            return None
        if not _loaded(obj, _WRITTEN[type(obj)]):
            return None
        changed[type(obj)].append(obj)
    # ``session.new`` is a set: the flags in the order they were added, as the flush inserts
    # them (their ids follow it).
    flags.sort(key=lambda f: instance_state(f).insert_order or 0)
    return events, flags, changed


def _loaded(obj: Any, columns: Iterable[str]) -> bool:
    """Whether every column written of ``obj`` has its value in the object. The rows are
    written whole, so an expired or never loaded attribute (absent from ``__dict__``: what
    ``inspect(obj).unloaded`` counts) would be written as NULL; the ORM's flush writes only
    what changed and loads the rest if it needs it."""
    state = obj.__dict__
    return all(name in state for name in columns)


def _values(obj: Any, columns: Iterable[str]) -> dict[str, Any]:
    state = obj.__dict__
    return {name: state[name] for name in columns}


def _flag_values(flag: Flag) -> dict[str, Any]:
    """A new flag's row: its columns not given (``FLAG_OPTIONAL``) NULL, as inserted by the ORM."""
    state = flag.__dict__
    return {name: state.get(name) for name in FLAG_COLUMNS}


_FLAG_REQUIRED = tuple(name for name in FLAG_COLUMNS if name not in FLAG_OPTIONAL)


def _write_postgresql(
    session: Session,
    messages: list[dict[str, Any]],
    results: list[dict[str, Any]],
    reports: list[dict[str, Any]],
    events: list[dict[str, Any]],
    flags: list[dict[str, Any]],
    counter_rows: list[dict[str, object]],
) -> None:
    """One statement for everything, its rows bound as one JSON document (one parameter: the
    driver adapts one string, not an array per column). The JSON columns (``votes``,
    ``payload``) are values inside the document, read as ``jsonb`` by the record's type, so
    the server parses them once, with the document."""
    for index, row in enumerate(events):
        row["n"] = index
    for index, row in enumerate(flags):
        row["n"] = index
    counted = [{**row, "n": index} for index, row in enumerate(counter_rows)]
    document = {"m": messages, "r": results, "p": reports, "e": events, "f": flags, "c": counted}
    parts = tuple(bool(document[key]) for key in _PARTS)
    statement = _POSTGRESQL.get(parts)
    if statement is None:
        statement = _POSTGRESQL[parts] = driver.Statement(_postgresql_statement(*parts))
    statement.execute(session.connection(), {"pending": json.dumps(document, default=_iso)})


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _rows(key: str, columns: tuple[tuple[str, str], ...]) -> str:
    """The rows under ``key`` of the bound document, with their columns' types."""
    typed = ", ".join(f"{name} {kind}" for name, kind in columns)
    return f"jsonb_to_recordset(CAST(:pending AS jsonb) -> '{key}') AS u({typed})"


def _value(name: str) -> str:
    """The document's value of column ``name``. A JSON column's ``null`` comes out of the
    record as SQL ``NULL``; the ORM stores ``None`` as JSON ``null``, and so is it stored here."""
    return f"coalesce(u.{name}, 'null'::jsonb)" if name in _JSON else f"u.{name}"


def _set(columns: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(f"{name} = {_value(name)}" for name, _ in columns[1:])


#: Read as ``jsonb`` from the document (``_value``).
_JSON = ("votes", "payload")
_MESSAGE_TYPES = (
    ("id", "integer"),
    ("contact_id", "integer"),
    ("outcome", "varchar"),
    ("error_code", "varchar"),
    ("reply", "text"),
)
_RESULT_TYPES = (
    ("station_id", "varchar"),
    ("status", "varchar"),
    ("votes", "jsonb"),
    ("valid", "integer"),
    ("invalid", "integer"),
    ("report_id", "integer"),
    ("report_count", "integer"),
    ("flagged", "boolean"),
    ("updated_at", "timestamptz"),
    ("dissent", "integer"),
    ("dissent_open", "integer"),
    ("impact", "integer"),
    ("contested", "boolean"),
    ("event_sequence", "integer"),
)
_REPORT_TYPES = (
    ("id", "integer"),
    ("superseded_at", "timestamptz"),
    ("superseded_by_id", "integer"),
    ("outvoted", "boolean"),
    ("flagged", "boolean"),
)
_EVENT_TYPES = (
    ("id", "varchar"),
    ("type", "varchar"),
    ("schema_version", "integer"),
    ("station_id", "varchar"),
    ("station_sequence", "integer"),
    ("destination", "varchar"),
    ("payload", "jsonb"),
    ("created_at", "timestamptz"),
)
#: ``counters.add``'s rows, in their order (``n``): two writers lock them in the same order.
_COUNTER_TYPES = (
    ("region_key", "varchar"),
    ("name", "varchar"),
    ("shard", "integer"),
    ("value", "integer"),
    ("n", "integer"),
)
_FLAG_TYPES = (
    ("station_id", "varchar"),
    ("kind", "varchar"),
    ("reason", "varchar"),
    ("report_id", "integer"),
    ("created_at", "timestamptz"),
    ("resolved_at", "timestamptz"),
    ("resolved_by", "varchar"),
)
_EVENT_NAMES = ", ".join(name for name, _ in _EVENT_TYPES)
_EVENT_VALUES = ", ".join(_value(name) for name, _ in _EVENT_TYPES)


def _by_key(column: str, value: str) -> str:
    """The join of a table to the document's rows, on its key: ``= ANY (ARRAY[...])``, which
    PostgreSQL cannot hash or merge, so each row is found through the key's index. With ``=``
    the plan (prepared once, generic) counted a function's rows as 100, and until a table holds
    some 35,000 rows it found a hash of those cheaper than 100 index probes: it read the whole
    table for every message (``inbound_messages`` and ``station_results`` of a kabupaten's or
    a province's deployment, of ``bench/pg_cost.py``'s scratch database)."""
    return f"{column} = ANY (ARRAY[{value}])"


#: The document's parts, in the statement's order: messages, results, reports, events, flags,
#: counters.
_PARTS = ("m", "r", "p", "e", "f", "c")


def _postgresql_statement(
    messages: bool, results: bool, reports: bool, events: bool, flags: bool, counters: bool
) -> Any:
    """The one statement, with the parts that have rows and only those. A part of no rows
    still cost its executor's start (opening its table and every index of it: 25 for the five
    parts the statement had before flags joined them) and, for the events, more: the outbox's
    wake-up trigger (migration 1802) is per statement and fires for an insert of no rows too,
    so every message that writes no event (a flood-held one, an invalid text, a CEK) would wake
    every outbox worker, and notifying commits queue behind one another in PostgreSQL. Events
    are inserted in the order they were emitted (``n``), so ``seq`` follows it; flags in the
    order they were added (``n``), so their ids do; counters in ``counters.add``'s order."""
    parts = [
        (
            messages,
            " messages AS ("
            f" UPDATE inbound_messages SET {_set(_MESSAGE_TYPES)} FROM {_rows('m', _MESSAGE_TYPES)}"
            f" WHERE {_by_key('inbound_messages.id', 'u.id')})",
        ),
        (
            results,
            " results AS ("
            f" UPDATE station_results SET {_set(_RESULT_TYPES)} FROM {_rows('r', _RESULT_TYPES)}"
            f" WHERE {_by_key('station_results.station_id', 'u.station_id')})",
        ),
        (
            reports,
            " reports AS ("
            f" UPDATE reports SET {_set(_REPORT_TYPES)} FROM {_rows('p', _REPORT_TYPES)}"
            f" WHERE {_by_key('reports.id', 'u.id')})",
        ),
        (
            events,
            " events AS ("
            f" INSERT INTO outbox_events ({_EVENT_NAMES})"
            f" SELECT {_EVENT_VALUES} FROM {_rows('e', (*_EVENT_TYPES, ('n', 'integer')))} ORDER BY u.n)",
        ),
        (
            flags,
            " flags AS ("
            f" INSERT INTO flags ({', '.join(name for name, _ in _FLAG_TYPES)})"
            f" SELECT {', '.join(f'u.{name}' for name, _ in _FLAG_TYPES)}"
            f" FROM {_rows('f', (*_FLAG_TYPES, ('n', 'integer')))} ORDER BY u.n)",
        ),
        (
            counters,
            " counters AS ("
            " INSERT INTO region_counters (region_key, name, shard, value)"
            " SELECT u.region_key, u.name, u.shard, u.value"
            f" FROM {_rows('c', _COUNTER_TYPES)} ORDER BY u.n"
            " ON CONFLICT (region_key, name, shard)"
            " DO UPDATE SET value = region_counters.value + excluded.value)",
        ),
    ]
    written = [part for wanted, part in parts if wanted]
    if not written:
        raise ValueError("a statement needs at least one part with rows")
    return text(f"WITH{','.join(written)} SELECT 1")


#: The statements by the parts they hold (``_PARTS``' flags), each built and compiled once per
#: process when first needed and run on the driver's cursor (``smsgate.driver``; psycopg
#: prepares each once per connection, unless told never to). A few shapes occur: a report
#: (message, result, events, counters), one superseding others (and reports), a message that
#: is no report (its row alone), a correction that moves no counter, one that adds a flag.
_POSTGRESQL: dict[tuple[bool, ...], driver.Statement] = {}


def _write_sqlite(
    session: Session,
    messages: list[dict[str, Any]],
    results: list[dict[str, Any]],
    reports: list[dict[str, Any]],
    events: list[dict[str, Any]],
    flags: list[dict[str, Any]],
) -> None:
    """One prebuilt statement per table, one ``executemany`` each, run on the driver's cursor
    (``smsgate.driver``): no network, so nothing to gain by folding them, but no unit of work
    and no SQLAlchemy execution either."""
    for statement, rows in (
        (_SQLITE["messages"], messages),
        (_SQLITE["results"], results),
        (_SQLITE["reports"], reports),
        (_SQLITE["events"], events),
        (_SQLITE["flags"], flags),
    ):
        if rows:
            bound = [{f"b_{k}": v for k, v in row.items()} for row in rows]
            statement.executemany(session.connection(), bound)


def _sqlite_statements() -> dict[str, driver.Statement]:
    def updating(model: type[Any], key: str, columns: tuple[str, ...]) -> Any:
        table = cast(Table, model.__table__)
        return (
            update(table)
            .where(table.c[key] == bindparam(f"b_{key}"))
            .values({name: bindparam(f"b_{name}", type_=table.c[name].type) for name in columns})
        )

    events = cast(Table, OutboxEvent.__table__)
    flags = cast(Table, Flag.__table__)
    statements = {
        "messages": updating(InboundMessage, "id", MESSAGE_COLUMNS),
        "results": updating(StationResult, "station_id", RESULT_COLUMNS),
        "reports": updating(Report, "id", REPORT_COLUMNS),
        "events": events.insert().values(
            {name: bindparam(f"b_{name}", type_=events.c[name].type) for name in EVENT_COLUMNS}
        ),
        "flags": flags.insert().values(
            {name: bindparam(f"b_{name}", type_=flags.c[name].type) for name in FLAG_COLUMNS}
        ),
    }
    return {name: driver.Statement(statement) for name, statement in statements.items()}


_SQLITE = _sqlite_statements()
