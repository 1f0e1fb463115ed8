"""The dashboard's quick-count card, computed by one process (``smsgate worker``) for all and stored.

Why: a dashboard refresh shows the card of its region, and 200 open dashboards refresh 40 times
a second. Each worker process used to recompute the card (the estimate and the night's history,
about a second of CPU for the national sample) after every change of a sampled station's
result; on a busy night that is every second or two, so every process recomputed all the time
and took the CPU the SMS path needs.

How (``card``):

- A refresh reads the stored card of (active design, region) and the current ``fingerprint``
  (``service.fingerprint``: the count of logged changes of sampled results, the previous-result
  import, the candidates). It serves the stored card when it was computed at that fingerprint
  or less than ``interval`` seconds ago (``SMSGATE_QUICKCOUNT_CARD_SECONDS``): between two
  computations a region's card lags by at most the interval, and its ``freshness`` says so.
- Otherwise the card is due, and ``smsgate worker`` recomputes it (``card_job``,
  ``recompute_due``: every due card of the regions with a row, i.e. viewed so far). It claims
  the computation with one conditional write (an ``UPDATE`` of the row) that succeeds only
  while nobody holds the lease, the card is older than the interval and not at the current
  fingerprint, so exactly one process computes a given fingerprint, at most once per interval
  (the same statement on SQLite and PostgreSQL; a failed claim never waits on the winner). The
  winner recomputes from the sample, reusing the history points whose inputs did not change
  (``service.night``), stores the card with its fingerprint and the moment, and releases the
  lease; everyone else serves the stored card meanwhile. A process killed while computing
  leaves a lease that expires after ``LEASE``. Why the worker: a national card is about 0.6 s
  of CPU, and inside a web process it held the interpreter while that process's SMS requests
  waited.
- A refresh (a web process) computes the card itself, under the same claim, only for a
  region's first view (no card yet: an ``INSERT`` claims it) or when this process has seen
  the stored card due for ``grace`` seconds (``SMSGATE_QUICKCOUNT_CARD_GRACE_SECONDS``): no
  worker runs, or it is far behind, and the dashboard must still follow the night. Otherwise
  it serves the stored card.
- Only when no card is stored yet and another process holds the lease does a refresh compute
  the card itself, in this process (``service.card``, cached per process), so the first views
  of a region are never empty.
- The card is a cache, never worth an error page: when the database is too busy to take the
  claim, the card or the release (SQLite's write lock held past the busy timeout, a lock
  timeout on PostgreSQL), the refresh serves what it has (the card it computed, else the stored
  one) and logs a warning; an unreleased lease expires after ``LEASE``.

The stored card is what the dashboard shows; it leaves out the per-stratum table and the list
of disputed stations, which the card does not show (the API has them). ``QC`` by SMS,
``smsgate quickcount`` and the API compute at the current fingerprint instead
(``service.quickcount``, cached per process): they answer one person, not 40 refreshes a second.
"""

from __future__ import annotations

import logging
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ReturnsRows

from ..db import Database
from ..models import QuickcountCard, SampleDesign
from ..regions import to_code
from ..services import tally as tally_service
from . import service

#: How long a claim to compute a card holds: past it another process may take over (the
#: national card takes about a second; a process killed while computing must not block it).
LEASE = timedelta(seconds=120)
#: The parts of the body the card does not show, left out of the stored card.
NOT_STORED = ("strata", "disputed")

log = logging.getLogger(__name__)

#: When this process first saw each stored card due (``_overdue``), at most this many cards.
NOTICED_LIMIT = 4096
_noticed: dict[tuple[int, str, str | None, datetime | None], datetime] = {}
_noticed_lock = threading.Lock()


@dataclass(frozen=True)
class Stored:
    """A region's stored card as read for a refresh."""

    fingerprint: str | None
    changes: int | None
    document: dict[str, Any] | None
    computed_at: datetime | None


def mark_text(mark: tuple[Any, ...]) -> str:
    """The fingerprint as stored (compared as text: it mixes a count, a time and a count)."""
    return repr(tuple(str(part) for part in mark))


def card(
    database: Database,
    session: Session,
    region: str | None,
    *,
    interval: float,
    now: datetime,
    grace: float = 0.0,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The card of ``region`` (``service.card``'s two documents, the first with ``freshness``:
    ``computed_at``, ``changes`` (logged sampled-result changes it reflects), ``counted``,
    ``current`` (no change since) and ``interval``), served from the stored card or computed by
    this request when due and claimed (module docstring). ``now`` is the request's moment;
    ``session`` reads, ``database`` writes the claim and the card. A due card is left to
    ``smsgate worker`` (``card_job``) until this process has seen it due for ``grace`` seconds;
    0 computes it here at once."""
    info = tally_service.region_info(session, region)
    record = service.active_design(session)
    if record is None:
        raise service.NoDesign()
    mark = service.fingerprint(session, record)
    text = mark_text(mark)
    stored = _read(session, record.id, info.key)
    if stored is not None and not _due(stored, text, now, interval):
        return _served(session, record, info, stored, text, interval)
    waiting = stored is not None and stored.document is not None  # due: left to the worker...
    if stored is not None and waiting and not _overdue(record.id, info.key, stored, now, grace):
        return _served(session, record, info, stored, text, interval)  # ...for the grace
    claim = _claim(database, record.id, info.key, text, stored is not None, now, interval)
    if claim is None:
        if stored is not None and stored.document is not None:
            return _served(session, record, info, stored, text, interval)
        document, night = service.card(session, region)
        return _with_freshness(document, now, int(mark[0]), True, interval), night
    payload = compute_claimed(database, session, record, info, stored, claim, mark, now)
    kept = Stored(text, int(mark[0]), payload, now)
    return _served(session, record, info, kept, text, interval)


def recompute_due(database: Database, *, interval: float, now: datetime) -> int:
    """Recompute every due stored card of the active design (a region with a card row has been
    viewed; due as for a refresh: not at the current fingerprint and ``interval`` old), each
    under the same claim a refresh takes, so any number of workers and web processes compute a
    given card once; how many this call computed and stored. The worker's ``card_job``."""
    with database.read() as session:
        record = service.active_design(session)
        if record is None:
            return 0
        mark = service.fingerprint(session, record)
        text = mark_text(mark)
        rows = session.execute(
            select(
                QuickcountCard.region_key,
                QuickcountCard.fingerprint,
                QuickcountCard.changes,
                QuickcountCard.document,
                QuickcountCard.computed_at,
            )
            .where(
                QuickcountCard.design_id == record.id,
                QuickcountCard.document.is_not(None),
                or_(QuickcountCard.fingerprint.is_(None), QuickcountCard.fingerprint != text),
                QuickcountCard.computed_at <= now - timedelta(seconds=interval),
                or_(QuickcountCard.claimed_until.is_(None), QuickcountCard.claimed_until < now),
            )
            .order_by(QuickcountCard.region_key)
        ).all()
    computed = 0
    for row in rows:
        with database.read() as session:
            info = tally_service.region_info(session, to_code(row.region_key) if row.region_key else None)
            mark = service.fingerprint(session, record)  # read again: the card claims what it loads
            claim = _claim(database, record.id, info.key, mark_text(mark), True, now, interval)
            if claim is None:
                continue
            stored = Stored(row.fingerprint, row.changes, row.document, row.computed_at)
            compute_claimed(database, session, record, info, stored, claim, mark, now)
            computed += 1
    return computed


def compute_claimed(
    database: Database,
    session: Session,
    record: SampleDesign,
    info: tally_service.RegionInfo,
    stored: Stored | None,
    claim: str,
    mark: tuple[Any, ...],
    now: datetime,
) -> dict[str, Any]:
    """Compute the card whose computation ``claim`` holds, store it and release the lease
    (also when the computation fails or the database is too busy to store it); the stored
    payload. Shared by a refresh and the worker's ``card_job``."""
    text = mark_text(mark)
    done = False
    try:
        loaded = service.load(session, record, info)
        body = {k: v for k, v in service.body(loaded).items() if k not in NOT_STORED}
        earlier = _earlier(stored)
        night, digests = service.night(loaded, record, info, service.HISTORY_POINTS, earlier)
        payload = {"card": body, "history": night, "digests": digests}
        try:
            done = _store(database, record.id, info.key, claim, text, int(mark[0]), payload, now)
        except OperationalError as error:
            log.warning("quick-count card of %r computed but not stored (database busy): %s", info.key, error)
    finally:
        if not done:
            _release(database, record.id, info.key, claim)
    return payload


def _overdue(design: int, key: str, stored: Stored, now: datetime, grace: float) -> bool:
    """Whether this process has seen the (due) stored card due for ``grace`` seconds or more:
    then no worker is keeping the cards (or it is far behind) and the refresh computes it.
    Remembered per process by the card it saw (a new card starts afresh), since no column says
    when the change that made it due arrived; a restarted process waits the grace again."""
    if grace <= 0:
        return True
    seen = (design, key, stored.fingerprint, stored.computed_at)
    with _noticed_lock:
        if len(_noticed) >= NOTICED_LIMIT and seen not in _noticed:
            _noticed.clear()
        first = _noticed.setdefault(seen, now)
    return now - first >= timedelta(seconds=grace)


def _due(stored: Stored, current: str, now: datetime, interval: float) -> bool:
    """Whether a stored card must be recomputed: there is none yet, or it is not at the
    current fingerprint and was computed ``interval`` seconds ago or more."""
    if stored.document is None or stored.computed_at is None:
        return True
    return stored.fingerprint != current and stored.computed_at <= now - timedelta(seconds=interval)


def _read(session: Session, design: int, key: str) -> Stored | None:
    row = session.execute(
        select(
            QuickcountCard.fingerprint,
            QuickcountCard.changes,
            QuickcountCard.document,
            QuickcountCard.computed_at,
        ).where(QuickcountCard.design_id == design, QuickcountCard.region_key == key)
    ).one_or_none()
    return None if row is None else Stored(row.fingerprint, row.changes, row.document, row.computed_at)


def _earlier(stored: Stored | None) -> dict[str, dict[str, Any]]:
    """The stored card's history points by their input digest, for reuse."""
    if stored is None or stored.document is None:
        return {}
    points = stored.document["history"]["points"]
    return dict(zip(stored.document["digests"], points, strict=True))


def _served(
    session: Session,
    record: SampleDesign,
    info: tally_service.RegionInfo,
    stored: Stored,
    current: str,
    interval: float,
) -> tuple[dict[str, Any], dict[str, Any]]:
    if stored.document is None or stored.computed_at is None or stored.changes is None:
        raise ValueError("a card row without a computed card is never served")
    document = service.card_document(session, record, info, stored.document["card"])
    fresh = stored.fingerprint == current
    return (
        _with_freshness(document, stored.computed_at, stored.changes, fresh, interval),
        stored.document["history"],
    )


def _with_freshness(
    document: dict[str, Any], computed_at: datetime, changes: int, current: bool, interval: float
) -> dict[str, Any]:
    return {
        **document,
        "freshness": {
            "computed_at": computed_at.isoformat(timespec="seconds"),
            "changes": changes,
            "counted": document["stations"]["counted"],
            "current": current,
            "interval": interval,
        },
    }


def _claim(
    database: Database, design: int, key: str, text: str, exists: bool, now: datetime, interval: float
) -> str | None:
    """Claim the computation of the card at fingerprint ``text``: the claim's token, or None
    when another process holds it, or someone stored a card at that fingerprint or within the
    interval meanwhile, or the write could not be made at once (SQLite busy)."""
    claim = secrets.token_hex(16)
    until = now + LEASE
    try:
        with database.begin() as session:
            statement: ReturnsRows
            if not exists:
                insert = pg_insert if database.is_postgresql else sqlite_insert
                statement = (
                    insert(QuickcountCard)
                    .values(
                        design_id=design, region_key=key, claim=claim, claimed_until=until, computations=0
                    )
                    .on_conflict_do_nothing()
                    .returning(QuickcountCard.claim)
                )
            else:
                statement = (
                    update(QuickcountCard)
                    .where(
                        QuickcountCard.design_id == design,
                        QuickcountCard.region_key == key,
                        or_(QuickcountCard.claimed_until.is_(None), QuickcountCard.claimed_until < now),
                        or_(
                            QuickcountCard.computed_at.is_(None),
                            QuickcountCard.computed_at <= now - timedelta(seconds=interval),
                        ),
                        or_(QuickcountCard.fingerprint.is_(None), QuickcountCard.fingerprint != text),
                    )
                    .values(claim=claim, claimed_until=until)
                    .returning(QuickcountCard.claim)
                )
            won = session.execute(statement).first() is not None
    except OperationalError:
        return None
    return claim if won else None


def _store(
    database: Database,
    design: int,
    key: str,
    claim: str,
    text: str,
    changes: int,
    payload: dict[str, Any],
    now: datetime,
) -> bool:
    """Store the computed card, if the claim still holds (a lease that expired may have passed
    to another process, whose card then wins)."""
    with database.begin() as session:
        result = session.execute(
            update(QuickcountCard)
            .where(
                QuickcountCard.design_id == design,
                QuickcountCard.region_key == key,
                QuickcountCard.claim == claim,
            )
            .values(
                fingerprint=text,
                changes=changes,
                document=payload,
                computed_at=now,
                claim=None,
                claimed_until=None,
                computations=QuickcountCard.computations + 1,
            )
            .returning(QuickcountCard.computations)
        )
        return result.first() is not None


def _release(database: Database, design: int, key: str, claim: str) -> None:
    """Give the lease back after a failed computation or store, so the next refresh may try at
    once; when the database is busy for that too, the lease expires after ``LEASE``."""
    try:
        with database.begin() as session:
            session.execute(
                update(QuickcountCard)
                .where(
                    QuickcountCard.design_id == design,
                    QuickcountCard.region_key == key,
                    QuickcountCard.claim == claim,
                )
                .values(claim=None, claimed_until=None)
            )
    except OperationalError as error:
        log.warning("quick-count card lease of %r kept until it expires (database busy): %s", key, error)
