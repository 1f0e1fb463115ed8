"""The per-station row lock every write to a station's reports takes first.

Apart from ``station_results`` (the rule) so that the outbox, which numbers a station's events
under the same lock, needs nothing else of it.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table, bindparam, inspect, select
from sqlalchemy.orm import Session, SessionTransaction

from .. import driver
from ..models import Station, StationResult
from ..models.reports import MISSING
from . import rows

#: ``session.info`` key: (the transaction, {station id: its locked result row}).
_LOCKED = "smsgate.station_results.locked"


def lock(session: Session, station_id: str) -> StationResult:
    """The station's result row, locked until commit so concurrent reports queue per station.

    ``populate_existing``: if this session loaded the row before (a check, a CEK), the identity
    map would hand back those stale values under the fresh lock, and ``refresh`` would move the
    counters by a difference computed from them (counted twice under concurrent writers).
    Once locked in a transaction, the row can only change through this session, so storing a
    report (lock, outbox event, refresh) goes to the database for it once, not three times.
    """
    locked = _held(session)
    if station_id in locked:
        return locked[station_id]
    query = (
        select(StationResult)
        .where(StationResult.station_id == station_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    result = session.scalars(query).one_or_none()
    if result is None:  # stations imported without a result row (hand-made data)
        result = StationResult(station_id=station_id, status=MISSING, report_count=0, flagged=False)
        session.add(result)
        session.flush()
    locked[station_id] = result
    return result


def lock_with_station(session: Session, station_id: str) -> Station | None:
    """The station (``None``: no such station) with its result row locked as ``lock`` does, read
    in the one statement that takes the lock: a report needs both, and this saves a round trip."""
    locked = _held(session)
    if station_id in locked:
        return session.get(Station, station_id)
    if rows.held(session, StationResult, station_id) or rows.held(session, Station, station_id):
        # Loaded before in this session: the ORM's statement refreshes the held objects.
        row = session.execute(_WITH_STATION, {"station_id": station_id}).one_or_none()
        found = (row[0], row[1]) if row is not None else None
    else:
        found = _lock_and_read(session, station_id)
    if found is None:  # no such station, or one without a result row (hand-made data)
        station = session.get(Station, station_id)
        if station is not None:
            lock(session, station_id)
        return station
    locked[station_id] = found[1]
    return found[0]


def _lock_and_read(session: Session, station_id: str) -> tuple[Station, StationResult] | None:
    """``_WITH_STATION`` as a Core statement run on the driver's cursor (``smsgate.driver``), its
    row made the session's objects (``rows.attach``): the ORM's loading costs more than the
    statement."""
    session.flush()  # (nothing is pending on the report path) then Core: no ORM layer around it
    connection = session.connection()
    bound = {"station_id": station_id}
    row = _DRIVER_WITH_STATION.one_or_none(connection, bound)
    if row is None:
        return None
    width = len(_STATION_KEYS)
    station = rows.attach(session, Station, dict(zip(_STATION_KEYS, row[:width], strict=True)))
    result = rows.attach(session, StationResult, dict(zip(_RESULT_KEYS, row[width:], strict=True)))
    return station, result


def forget(session: Session, results: list[StationResult]) -> None:
    """Stop handing out ``results``, removed from the session once written
    (``pending_writes``): a later ``lock`` in the same transaction reads the row again (the lock
    is still held) instead of returning a detached object whose changes would never be written."""
    locked = _held(session)
    for result in results:
        if locked.get(result.station_id) is result:
            del locked[result.station_id]


def _held(session: Session) -> dict[str, StationResult]:
    """The result rows this session's current transaction has locked, by station id."""
    transaction = session.get_transaction()
    held: tuple[SessionTransaction | None, dict[str, StationResult]] | None = session.info.get(_LOCKED)
    if held is None or held[0] is not transaction:
        held = (transaction, {})
        session.info[_LOCKED] = held
    return held[1]


#: ``lock_with_station``'s statement, built once (each report only binds its station id).
_WITH_STATION = (
    select(Station, StationResult)
    .join(StationResult, StationResult.station_id == Station.id)
    .where(Station.id == bindparam("station_id"))
    .with_for_update(of=StationResult)
    .execution_options(populate_existing=True)
)

_STATIONS = cast(Table, Station.__table__)
_RESULTS = cast(Table, StationResult.__table__)
_STATION_KEYS = tuple(inspect(Station).get_property_by_column(c).key for c in _STATIONS.c)
_RESULT_KEYS = tuple(inspect(StationResult).get_property_by_column(c).key for c in _RESULTS.c)
#: ``_WITH_STATION``'s columns without the ORM: the station's, then its result row's.
_CORE_WITH_STATION = (
    select(*_STATIONS.c, *_RESULTS.c)
    .join_from(_STATIONS, _RESULTS, _RESULTS.c.station_id == _STATIONS.c.id)
    .where(_STATIONS.c.id == bindparam("station_id"))
    .with_for_update(of=_RESULTS)
)
_DRIVER_WITH_STATION = driver.Statement(_CORE_WITH_STATION)
