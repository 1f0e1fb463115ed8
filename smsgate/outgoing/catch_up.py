"""``smsgate outbox replay``: catching a destination up with the current state of every station.

A destination added during the night, or a receiver that lost its database, needs the state
of every station, not the history of changes it missed. ``replay`` writes one
``station.snapshot`` per station that has had any event, addressed to that destination only,
in batches. Each snapshot is written under the station's lock, so it is the station's state
exactly as of its ``station_sequence`` (the number of the last event it reflects) and takes
its place in the station's event order: an event the station gets later is delivered after
the snapshot and has a higher ``sequence`` and ``station_sequence``; an older event still
pending for the destination is delivered before it. Live events keep flowing meanwhile.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from ..db import Database
from ..models import Report, StationResult, utcnow
from ..services import outbox
from ..services.station_results import lock

#: Stations per transaction: short transactions, so live reports never wait long for a lock.
BATCH = 200


def replay(database: Database, destination: str, prefix: str = "", now: datetime | None = None) -> int:
    """Queue a ``station.snapshot`` of every station under ``prefix`` (undotted region key)
    that has had an event, for ``destination``; returns how many."""
    after, total = "", 0
    while True:
        with database.begin() as session:
            ids = list(
                session.scalars(
                    select(StationResult.station_id)
                    .where(
                        StationResult.station_id > after,
                        StationResult.station_id.like(f"{prefix}%"),
                        StationResult.event_sequence > 0,
                    )
                    .order_by(StationResult.station_id)
                    .limit(BATCH)
                )
            )
            if not ids:
                return total
            for station_id in ids:
                result = lock(session, station_id)
                reference = session.get_one(Report, result.report_id).ref if result.report_id else None
                outbox.station_snapshot(session, result, reference, destination, now or utcnow())
            total += len(ids)
            after = ids[-1]
