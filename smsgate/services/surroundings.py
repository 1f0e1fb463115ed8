"""A new report's row and what storing it must know of its station, in as few statements as the
database allows.

Storing a report (``reports.store``), under the station's lock, needs: the station's current
reports (superseded, compared by the checks, decided from), the volunteer's reports in another
desa (the ``multi_desa`` check), the station's newest dashboard decision and its open flags
(``station_results.refresh``). On PostgreSQL all of that is read by the statement that inserts
the report (``WITH new AS (INSERT ... RETURNING id) SELECT ...``): its subqueries see the
database as it was after the lock and before the insert, which is exactly the "before" the
rule needs. SQLite has no data-modifying ``WITH``; there the same reads are one query before the
insert (no network round trip, but each statement costs SQLAlchemy's work in the one process).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import String, Table, bindparam, func, inspect, literal, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .. import driver
from ..models import Flag, Report, StationDecision
from .refs import new_code
from .rows import attach

#: Attempts at a reference code nobody has (31^6 codes: a second attempt is already rare).
REF_ATTEMPTS = 8


@dataclass
class Surroundings:
    """What storing a report knows of its station, read under the station's lock.

    ``before``: the station's current reports before this one; ``other_desa``: the desa key of
    another station this contact reported for (``None``: none, or a coordinator, for whom it is
    not read); ``decision``: the station's newest dashboard decision (report id, decided at);
    ``open_flags``: (report id, kind, that report's votes) of its open flags, to which the
    checks append the flags they add in this transaction."""

    before: list[Report]
    other_desa: str | None
    decision: tuple[int, datetime] | None
    open_flags: list[tuple[int | None, str, dict[str, int] | None]]


def insert_report(
    session: Session, values: dict[str, Any], *, coordinator: bool
) -> tuple[Report, Surroundings]:
    """Insert a report with a new reference code (``values``: its other columns) and return it as
    a persistent ORM object, with what its station looked like just before.

    ``INSERT ... ON CONFLICT (ref) DO NOTHING RETURNING id``: a code already taken inserts
    nothing and another is drawn, instead of a query per code before the insert."""
    row: dict[str, Any] = {
        "flagged": False,
        "superseded_at": None,
        "superseded_by_id": None,
        "cancelled_at": None,
        "cancelled_by_message_id": None,
        "outvoted": False,
        "dissent_cleared_at": None,
        "dissent_cleared_by": None,
        **values,
    }
    station_id, contact_id = row["station_id"], row["contact_id"]
    dialect = session.get_bind().dialect.name
    around = None if dialect == "postgresql" else _read(session, station_id, contact_id, coordinator)
    for _ in range(REF_ATTEMPTS):
        row["ref"] = new_code()
        params = {f"new_{key}": value for key, value in row.items()}
        if around is None:
            new_id, around = _insert_and_read(session, params, station_id, contact_id, coordinator)
        else:
            # ``_read`` flushed; nothing is pending since: Core, without the ORM's layer.
            inserted = _sqlite_insert(tuple(row)).one_or_none(session.connection(), params)
            new_id = inserted[0] if inserted is not None else None
        if new_id is not None:
            return attach(session, Report, {"id": new_id, **row}), around
    raise RuntimeError(f"no free report reference in {REF_ATTEMPTS} attempts")


#: Statements built once per process and shape (SQLAlchemy then neither rebuilds them nor
#: computes their cache key again): each message only binds its values.
_BUILT: dict[object, Any] = {}


def _insert_statement(dialect: str, columns: tuple[str, ...]) -> Any:
    """``INSERT INTO reports ... ON CONFLICT (ref) DO NOTHING RETURNING id``, values bound as
    ``new_<column>``."""
    key = ("insert", dialect, columns)
    if key not in _BUILT:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        values = {name: bindparam(f"new_{name}", type_=_REPORTS.c[name].type) for name in columns}
        statement = insert(_REPORTS).values(values).on_conflict_do_nothing(index_elements=["ref"])
        _BUILT[key] = statement.returning(_REPORTS.c.id)
    return _BUILT[key]


_REPORTS = cast(Table, Report.__table__)
_FLAGS = cast(Table, Flag.__table__)
_DECISIONS = cast(Table, StationDecision.__table__)


def _other_station() -> Any:
    """Bound: ``contact_id``, ``elsewhere`` (a ``LIKE`` pattern for the station's own desa)."""
    return (
        select(_REPORTS.c.station_id)
        .where(
            _REPORTS.c.contact_id == bindparam("contact_id"),
            _REPORTS.c.station_id.not_like(bindparam("elsewhere")),
        )
        .limit(1)
    )


def _decision() -> Any:
    """Bound: ``station_id``."""
    return (
        select(_DECISIONS.c.report_id, _DECISIONS.c.decided_at)
        .where(_DECISIONS.c.station_id == bindparam("station_id"))
        .order_by(_DECISIONS.c.decided_at.desc(), _DECISIONS.c.id.desc())
        .limit(1)
    )


def open_flags_query(station_id: str) -> Any:
    """(report id, kind, that report's votes) of the station's open flags."""
    return (
        select(Flag.report_id, Flag.kind, Report.votes)
        .outerjoin(Report, Report.id == Flag.report_id)
        .where(Flag.station_id == station_id, Flag.resolved_at.is_(None))
    )


def _read(session: Session, station_id: str, contact_id: int, coordinator: bool) -> Surroundings:
    """SQLite: PostgreSQL's reads without the insert, in one query before it (one row per
    current report, or one row of NULLs when there is none; ``_sqlite_read``)."""
    session.flush()  # (nothing is pending here) then the driver: no ORM layer around a plain statement
    rows = _sqlite_read(coordinator).all(session.connection(), _bound(station_id, contact_id))
    return _surroundings(session, rows, _SQLITE_LEADING, flags_as_text=True)


def _sqlite_insert(columns: tuple[str, ...]) -> driver.Statement:
    """SQLite's report insert, run on the driver's cursor (``smsgate.driver``)."""
    key = ("sqlite_insert", columns)
    if key not in _BUILT:
        _BUILT[key] = driver.Statement(_insert_statement("sqlite", columns))
    return cast(driver.Statement, _BUILT[key])


def _sqlite_read(coordinator: bool) -> driver.Statement:
    """``_read``'s statement, built once per shape (``_reads``)."""
    key = ("sqlite_read", coordinator)
    if key not in _BUILT:
        columns, source = _reads("sqlite", coordinator)
        _BUILT[key] = driver.Statement(select(*columns).select_from(source))
    return cast(driver.Statement, _BUILT[key])


#: The columns ``_sqlite_read`` selects before the report's.
_SQLITE_LEADING = 4


def _insert_and_read(
    session: Session, params: dict[str, Any], station_id: str, contact_id: int, coordinator: bool
) -> tuple[int | None, Surroundings]:
    """PostgreSQL: the insert as a CTE, everything else as subqueries of the same statement
    (one row per current report, or one row of NULLs when there is none)."""
    statement = _combined(tuple(key.removeprefix("new_") for key in params), coordinator)
    session.flush()  # (nothing is pending here) then the driver: no ORM layer around a plain statement
    rows = statement.all(session.connection(), params | _bound(station_id, contact_id))
    return rows[0][0], _surroundings(session, rows, _LEADING, flags_as_text=False)


def _combined(columns: tuple[str, ...], coordinator: bool) -> driver.Statement:
    """PostgreSQL's statement for ``_insert_and_read``, built once per shape, run on the driver's
    cursor (``smsgate.driver``): the new report's id, then ``_reads``."""
    key = ("combined", columns, coordinator)
    if key not in _BUILT:
        new = _insert_statement("postgresql", columns).cte("new_report")
        reads, source = _reads("postgresql", coordinator)
        statement = select(select(new.c.id).scalar_subquery().label("new_id"), *reads)
        _BUILT[key] = driver.Statement(statement.select_from(source))
    return cast(driver.Statement, _BUILT[key])


def _bound(station_id: str, contact_id: int) -> dict[str, Any]:
    """The parameters ``_reads`` binds."""
    return {"station_id": station_id, "contact_id": contact_id, "elsewhere": f"{station_id[:10]}%"}


def _reads(dialect: str, coordinator: bool) -> tuple[list[Any], Any]:
    """The columns both databases' statements read, and what they read them from: the station's
    other desa (``NULL`` for a coordinator, for whom it is not read), newest decision and open
    flags (a JSON array of [report id, kind, votes]) beside each of its current reports (one
    row of NULLs when there is none). SQLite builds the array with its own JSON functions
    (``json()`` keeps the votes an object, not a string) and returns it as text."""
    flagged = _REPORTS.alias("flagged")
    if dialect == "postgresql":
        array = func.json_agg(func.json_build_array(_FLAGS.c.report_id, _FLAGS.c.kind, flagged.c.votes))
        text_type: Any = postgresql.VARCHAR
    else:
        array = func.json_group_array(
            func.json_array(_FLAGS.c.report_id, _FLAGS.c.kind, func.json(flagged.c.votes))
        )
        text_type = String
    flags = (
        select(array)
        .select_from(_FLAGS.outerjoin(flagged, flagged.c.id == _FLAGS.c.report_id))
        .where(_FLAGS.c.station_id == bindparam("station_id"), _FLAGS.c.resolved_at.is_(None))
        .correlate(None)
        .scalar_subquery()
    )
    decision = _decision().subquery("decision")
    current = (
        select(_REPORTS)
        .where(
            _REPORTS.c.station_id == bindparam("station_id"),
            _REPORTS.c.superseded_at.is_(None),
            _REPORTS.c.cancelled_at.is_(None),
        )
        .subquery("current_reports")
    )
    other = literal(None, text_type) if coordinator else _other_station().correlate(None).scalar_subquery()
    anchor = select(literal(1).label("one")).subquery("anchor")
    columns = [
        other.label("other_station"),
        decision.c.report_id.label("decision_report"),
        decision.c.decided_at.label("decision_at"),
        flags.label("open_flags"),
        *current.c,
    ]
    return columns, anchor.outerjoin(decision, true()).outerjoin(current, true())


def _surroundings(session: Session, rows: list[Any], lead: int, *, flags_as_text: bool) -> Surroundings:
    """``_reads``' rows, whose first ``lead`` columns end with its four leading ones: the current
    reports attached as ORM objects, the rest from the first row."""
    before = [
        attach(session, Report, dict(zip(_REPORT_KEYS, row[lead:], strict=True)))
        for row in rows
        if row[lead] is not None
    ]
    other_station, decision_report, decision_at, open_flags = rows[0][lead - 4 : lead]
    if flags_as_text:
        open_flags = json.loads(open_flags or "[]")
    return Surroundings(
        before=before,
        other_desa=other_station[:10] if other_station else None,
        decision=(decision_report, decision_at) if decision_report else None,
        open_flags=[(r, k, v) for r, k, v in (open_flags or [])],
    )


#: The attribute names of the report columns, in the order ``_combined``'s statement selects
#: them after its ``_LEADING`` other columns.
_REPORT_KEYS = tuple(inspect(Report).get_property_by_column(c).key for c in _REPORTS.c)
_LEADING = 5
