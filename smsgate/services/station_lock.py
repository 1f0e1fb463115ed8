"""The per-station row lock every write to a station's reports takes first.

Apart from ``station_results`` (the rule) so that the outbox, which numbers a station's events
under the same lock, needs nothing else of it.
"""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, SessionTransaction

from ..models import Station, StationResult
from ..models.reports import MISSING

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
    row = session.execute(_WITH_STATION, {"station_id": station_id}).one_or_none()
    if row is None:  # no such station, or one without a result row (hand-made data)
        station = session.get(Station, station_id)
        if station is not None:
            lock(session, station_id)
        return station
    locked[station_id] = row[1]
    return row[0]


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
