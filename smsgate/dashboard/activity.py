"""The activity chart: reports per minute over the last 24 hours, for any region.

A minute that ended more than ``SETTLE`` ago is *settled*: every report of it has been
committed (webhook transactions are bounded to seconds), so its count can no longer change.
Settled minutes are counted once, from ``reports`` through the ``created_at`` index, and kept
in ``activity_minutes`` (with ``activity_marks`` saying up to when), shared by every app process
and server; each process also keeps the stored minutes it has read (they never change) and
reads only the ones the mark moved over since. A refresh then counts in SQL only the
reports of the last few minutes, so 40 dashboard refreshes a second cost a few index lookups
each instead of grouping a night of reports (millions nationally) every time.

The stored rows are written by the dashboard in a short transaction of their own, never on the
SMS path; two processes that count the same minute write the same numbers, and the second
insert is skipped.
"""

from __future__ import annotations

import math
import threading
import weakref
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from ..db import Database
from ..models import ActivityMark, ActivityMinute, Report

HOURS = 24
BARS = 60
#: Minutes older than this are complete: commits from other servers are in.
SETTLE = timedelta(minutes=2)


def chart(
    database: Database, key: str, now: datetime, hours: int = HOURS, session: Session | None = None
) -> dict[str, Any]:
    """Reports per minute for stations under ``key`` (undotted; ``""`` is the country),
    put into at most ``BARS`` bars. Read in ``session`` when given (the overview's own, which
    saves a transaction per refresh), else in a read transaction of its own."""
    if session is None:
        with database.read() as own:
            return chart(database, key, now, hours, own)
    since = _minute(now - timedelta(hours=hours))
    settled = _minute(now - SETTLE)
    mark = session.get(ActivityMark, key)
    until = mark.settled_until if mark is not None else since
    if until < since or until > settled:  # too old to help, or a clock that went back
        until = since
    stored = _stored(database, session, key, since, until)
    counted = count_minutes(session, key, until, now.tzinfo)
    if settled > until:
        _remember(database, key, since, settled, {m: n for m, n in counted.items() if m < settled})
    return _bars(stored | counted, now)


#: Per engine (so per database and process): region key -> (mark, stored minutes below it).
_settled: weakref.WeakKeyDictionary[Engine, dict[str, tuple[datetime, dict[datetime, int]]]] = (
    weakref.WeakKeyDictionary()
)
_settled_lock = threading.Lock()


def _stored(
    database: Database, session: Session, key: str, since: datetime, until: datetime
) -> dict[datetime, int]:
    """The stored minutes of ``key`` in ``[since, until)``. A stored minute never changes (it
    was settled when written, in the transaction that moved the mark past it), so each process
    keeps what it read and asks only for the minutes the mark has moved over since: one or two
    rows a minute instead of up to a day's 1,440 on every refresh."""
    with _settled_lock:
        kept = _settled.setdefault(database.engine, {}).get(key)
    start = since
    minutes: dict[datetime, int] = {}
    if kept is not None and since <= kept[0] <= until:
        start, minutes = kept[0], {m: n for m, n in kept[1].items() if m >= since}
    if start < until:
        rows = session.execute(
            select(ActivityMinute.minute, ActivityMinute.reports).where(
                ActivityMinute.region_key == key,
                ActivityMinute.minute >= start,
                ActivityMinute.minute < until,
            )
        )
        minutes |= {minute: reports for minute, reports in rows}
    with _settled_lock:
        _settled[database.engine][key] = (until, minutes)
    return minutes


def count_minutes(session: Session, key: str, since: datetime, tz: Any) -> dict[datetime, int]:
    """Reports per minute from ``since`` on, counted from ``reports`` (UTC minutes)."""
    if session.get_bind().dialect.name == "postgresql":
        minute = func.date_trunc("minute", Report.created_at)
    else:
        minute = func.strftime("%Y-%m-%d %H:%M", Report.created_at)
    query = select(minute, func.count()).where(Report.created_at >= since).group_by(minute)
    if key:
        query = query.where(Report.station_id.like(f"{key}%"))
    counts: dict[datetime, int] = {}
    for value, count in session.execute(query):
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=tz)
        counts[_minute(moment)] = int(count)
    return counts


def _remember(
    database: Database, key: str, since: datetime, settled: datetime, counts: dict[datetime, int]
) -> None:
    """Store the newly settled minutes of ``key`` and move its mark forward (never back)."""
    postgresql = database.is_postgresql
    insert = pg_insert if postgresql else sqlite_insert
    with database.begin() as session:
        if counts:
            session.execute(
                insert(ActivityMinute)
                .values([{"region_key": key, "minute": m, "reports": n} for m, n in counts.items()])
                .on_conflict_do_nothing()
            )
        mark = insert(ActivityMark).values(region_key=key, settled_until=settled)
        session.execute(
            mark.on_conflict_do_update(
                index_elements=[ActivityMark.region_key],
                set_={"settled_until": mark.excluded.settled_until},
                where=ActivityMark.settled_until < mark.excluded.settled_until,
            )
        )
        session.execute(
            delete(ActivityMinute).where(ActivityMinute.region_key == key, ActivityMinute.minute < since)
        )


def _minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def _bars(counts: dict[datetime, int], now: datetime) -> dict[str, Any]:
    if not counts:
        return {"bucket_minutes": 1, "points": [], "peak": 0.0}
    start = min(counts)
    end = max(max(counts), _minute(now))
    span = int((end - start).total_seconds() // 60) + 1
    width = max(1, math.ceil(span / BARS))
    bars = [0] * math.ceil(span / width)
    for moment, count in counts.items():
        bars[int((moment - start).total_seconds() // 60) // width] += count
    points = [
        {"t": (start + timedelta(minutes=i * width)).isoformat(), "per_minute": round(n / width, 2)}
        for i, n in enumerate(bars)
    ]
    return {"bucket_minutes": width, "points": points, "peak": round(max(bars) / width, 2)}
