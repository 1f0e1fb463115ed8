"""The SQL of event delivery: turning outbox events into per-destination deliveries, leasing
them, recording what the destination answered, and the figures and replays the
``smsgate outbox`` commands show.

- **dispatch**: events not yet dispatched (oldest first, ``FOR UPDATE SKIP LOCKED``) get one
  ``pending`` delivery row per configured destination;
- **claim**, per destination: pending deliveries that are due, not leased by a live worker, and
  have no earlier event of the same station still undispatched or pending for that destination
  other than the ones leased with them, are leased to this worker (``FOR UPDATE SKIP LOCKED``
  on PostgreSQL; SQLite serialises writers). So one worker at a time holds a station's events
  for a destination, sends them one after the other, and a station's events reach each
  destination in ``sequence`` order;
- **record**: 2xx is ``delivered``; a retryable failure (``retry.retryable``) waits out the
  shared backoff; any other answer, ``outbox_max_attempts`` failures, or an event older than
  ``outbox_max_age_hours`` makes the delivery ``dead``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, and_, exists, func, insert, or_, select, update
from sqlalchemy.orm import Session, aliased

from ..config import Settings
from ..db import Database
from ..models import OutboxDelivery, OutboxEvent
from ..models.outbox import DEAD, DELIVERED, PENDING
from ..services.outbox import SCHEMA_VERSION, document
from .retry import Backoff, lease_free, lease_until

log = logging.getLogger(__name__)

#: Events dispatched into delivery rows per pass.
DISPATCH_BATCH = 500


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    event_id: str
    body: bytes
    lease_expires_at: datetime
    created_at: datetime
    station_id: str | None = None


@dataclass(frozen=True)
class Outcome:
    delivery_id: int
    delivered: bool
    retry: bool
    error: str | None = None
    retry_after: float | None = None
    #: False when the request was never sent (an earlier event of its station failed first):
    #: the lease is given back and no attempt is counted.
    attempted: bool = True


def dispatch(database: Database, destinations: list[str], now: datetime) -> int:
    """Create the delivery rows of up to ``DISPATCH_BATCH`` undispatched events for the named
    destinations (an event addressed to one destination, a catch-up snapshot, only for it);
    returns how many events."""
    with database.begin() as session:
        rows = session.execute(
            select(OutboxEvent.seq, OutboxEvent.station_id, OutboxEvent.destination)
            .where(OutboxEvent.dispatched_at.is_(None))
            .order_by(OutboxEvent.seq)
            .limit(DISPATCH_BATCH)
            .with_for_update(skip_locked=True)
        ).all()
        if not rows:
            return 0
        deliveries = [
            {
                "event_seq": seq,
                "destination": destination,
                "station_id": station_id,
                "status": PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for seq, station_id, target in rows
            for destination in destinations
            if target is None or target == destination
        ]
        if deliveries:
            session.execute(insert(OutboxDelivery), deliveries)
        session.execute(
            update(OutboxEvent).where(OutboxEvent.seq.in_([row[0] for row in rows])).values(dispatched_at=now)
        )
    return len(rows)


def claim(
    database: Database,
    destination: str,
    owner: str,
    now: datetime,
    limit: int,
    lease_seconds: float,
    schema_version: int = SCHEMA_VERSION,
    chain: int = 1,
) -> list[Claimed]:
    """Lease up to ``limit`` deliverable events for ``destination`` to ``owner``, rendered in the
    destination's ``schema_version``, in ``sequence`` order.

    Up to ``chain`` consecutive pending events of one station are leased together (the caller
    sends them one after the other, stopping at the first failure): a report's
    ``report.accepted`` and ``station.status_changed`` then reach the receiver in one pass
    instead of one pass each, which on a busy machine halved the delay from commit to delivery.
    A station's events are only leased as a prefix of what is pending for it: never one whose
    earlier event is pending and not leased here (due later, leased by another worker, or
    being claimed by one right now).
    """
    d = OutboxDelivery
    earlier = aliased(OutboxDelivery)
    undispatched_before = exists().where(
        OutboxEvent.station_id == d.station_id,
        OutboxEvent.seq < d.event_seq,
        OutboxEvent.dispatched_at.is_(None),
    )
    blocked_before = exists().where(  # an earlier pending event this worker cannot take now
        earlier.destination == d.destination,
        earlier.station_id == d.station_id,
        earlier.event_seq < d.event_seq,
        earlier.status == PENDING,
        or_(earlier.next_attempt_at > now, ~lease_free(earlier.lease_expires_at, now)),
    )
    query = (
        select(d.id, d.event_seq, d.station_id)
        .where(
            d.destination == destination,
            d.status == PENDING,
            d.next_attempt_at <= now,
            lease_free(d.lease_expires_at, now),
            ~undispatched_before,
            ~blocked_before,
        )
        .order_by(d.event_seq)
        .limit(limit)
        .with_for_update(skip_locked=True, of=d)
    )
    expires = lease_until(now, lease_seconds)
    with database.begin() as session:
        candidates = [(int(i), int(seq), station) for i, seq, station in session.execute(query)]
        if not candidates:
            return []
        chosen = _station_prefixes(session, destination, candidates, max(chain, 1))
        session.execute(
            update(d)
            .where(d.id.in_([delivery_id for delivery_id, _, _ in chosen]))
            .values(lease_owner=owner, lease_expires_at=expires)
            .execution_options(synchronize_session=False)
        )
        events = {
            e.seq: e
            for e in session.scalars(
                select(OutboxEvent).where(OutboxEvent.seq.in_([seq for _, seq, _ in chosen]))
            )
        }
        claimed = []
        for delivery_id, seq, station_id in chosen:
            event = events[seq]
            rendered = document(event, schema_version)
            body = json.dumps(rendered, separators=(",", ":"), ensure_ascii=False).encode()
            claimed.append(Claimed(delivery_id, event.id, body, expires, event.created_at, station_id))
    return claimed


def _station_prefixes(
    session: Session, destination: str, candidates: Sequence[tuple[int, int, str | None]], chain: int
) -> list[tuple[int, int, str | None]]:
    """Of the locked ``candidates`` (id, event_seq, station_id; in event_seq order), those that
    are the first pending events of their station, up to ``chain`` per station. What another
    worker skipped past or holds locked shows here as a pending event missing from ours."""
    d = OutboxDelivery
    highest: dict[str, int] = {}
    for _, seq, station in candidates:
        if station is not None:
            highest[station] = max(seq, highest.get(station, seq))
    pending: dict[str, list[int]] = {}
    if highest:
        for station, seq in session.execute(
            select(d.station_id, d.event_seq)
            .where(
                d.destination == destination,
                d.status == PENDING,
                d.station_id.in_(list(highest)),
                d.event_seq <= max(highest.values()),
            )
            .order_by(d.event_seq)
        ):
            if station is not None and seq <= highest[station]:
                pending.setdefault(station, []).append(seq)
    taken: dict[str, int] = {}
    chosen: list[tuple[int, int, str | None]] = []
    for delivery_id, seq, station in candidates:
        if station is None:  # an incident of no station: no order to keep
            chosen.append((delivery_id, seq, station))
            continue
        n = taken.get(station, 0)
        if n < chain and n < len(pending[station]) and pending[station][n] == seq:
            taken[station] = n + 1
            chosen.append((delivery_id, seq, station))
        else:
            taken[station] = chain  # a hole: nothing later of this station this time
    return chosen


def record(
    database: Database,
    destination: str,
    owner: str,
    outcomes: list[Outcome],
    claimed: list[Claimed],
    settings: Settings,
    now: datetime,
    jitter: Callable[[], float],
) -> None:
    """Write each outcome, but only where ``owner`` still holds the lease. Deliveries and
    untried events are written by one statement each (a statement per event cost a busy
    machine more than the requests themselves); failures, rare, one by one."""
    d = OutboxDelivery
    created = {item.delivery_id: item.created_at for item in claimed}
    max_age = timedelta(hours=settings.outbox_max_age_hours)
    backoff = Backoff(settings.outbox_backoff_seconds, settings.outbox_backoff_max_seconds)
    held = and_(d.lease_owner == owner, d.status == PENDING)  # else taken over: its owner records
    released = {"lease_owner": None, "lease_expires_at": None}
    delivered = [o.delivery_id for o in outcomes if o.delivered]
    untried = [o.delivery_id for o in outcomes if not o.delivered and not o.attempted]
    with database.begin() as session:
        if delivered:
            session.execute(
                update(d)
                .where(d.id.in_(delivered), held)
                .values(
                    status=DELIVERED, delivered_at=now, last_error=None, attempts=d.attempts + 1, **released
                )
                .execution_options(synchronize_session=False)
            )
        if untried:
            session.execute(
                update(d)
                .where(d.id.in_(untried), held)
                .values(**released)
                .execution_options(synchronize_session=False)
            )
        for outcome in outcomes:
            if outcome.delivered or not outcome.attempted:
                continue
            delivery = session.scalars(select(d).where(d.id == outcome.delivery_id, held)).one_or_none()
            if delivery is None:
                continue
            delivery.lease_owner = None
            delivery.lease_expires_at = None
            delivery.attempts += 1
            delivery.last_error = outcome.error
            too_old = now - created[outcome.delivery_id] > max_age
            if not outcome.retry or delivery.attempts >= settings.outbox_max_attempts or too_old:
                delivery.status = DEAD
                log.warning("event delivery %s to %s is dead: %s", delivery.id, destination, outcome.error)
                continue
            delivery.next_attempt_at = backoff.next_attempt(
                now, delivery.attempts, jitter, outcome.retry_after
            )


# -- what smsgate outbox status|retry show and do ------------------------------------------------


def status(session: Session, now: datetime) -> dict[str, Any]:
    """Counts per destination and status, the oldest pending event's age, and undispatched events."""
    d = OutboxDelivery
    per: dict[str, dict[str, Any]] = {}
    for destination, state, count in session.execute(
        select(d.destination, d.status, func.count()).group_by(d.destination, d.status)
    ):
        per.setdefault(destination, {PENDING: 0, DELIVERED: 0, DEAD: 0})[state] = count
    for destination, oldest, waiting in session.execute(
        select(d.destination, func.min(OutboxEvent.created_at), func.count())
        .join(OutboxEvent, OutboxEvent.seq == d.event_seq)
        .where(d.status == PENDING, and_(d.attempts > 0))
        .group_by(d.destination)
    ):
        entry = per.setdefault(destination, {PENDING: 0, DELIVERED: 0, DEAD: 0})
        entry["retrying"] = waiting
        entry["oldest_failing_since"] = oldest.isoformat() if oldest else None
    for destination, oldest in session.execute(
        select(d.destination, func.min(OutboxEvent.created_at))
        .join(OutboxEvent, OutboxEvent.seq == d.event_seq)
        .where(d.status == PENDING)
        .group_by(d.destination)
    ):
        if oldest is not None:
            oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=now.tzinfo)
            per[destination]["oldest_pending_seconds"] = round((now - oldest).total_seconds(), 1)
    events = session.scalar(select(func.count()).select_from(OutboxEvent)) or 0
    undispatched = (
        session.scalar(
            select(func.count()).select_from(OutboxEvent).where(OutboxEvent.dispatched_at.is_(None))
        )
        or 0
    )
    return {"events": events, "undispatched": undispatched, "destinations": per}


def destinations(session: Session) -> list[str]:
    """Every destination with a delivery, read as a skip through ``ix_outbox_deliveries_due``
    (one index probe per destination): ``DISTINCT`` would read every delivery ever made."""
    d = OutboxDelivery
    names = select(func.min(d.destination).label("name")).cte("names", recursive=True)
    following = select(func.min(d.destination)).where(d.destination > names.c.name).scalar_subquery()
    names = names.union_all(select(following).where(names.c.name.is_not(None)))
    return [name for name in session.scalars(select(names.c.name)) if name is not None]


def waiting(session: Session, now: datetime) -> dict[str, dict[str, Any]]:
    """Per destination: deliveries ``pending`` and ``dead``, and the oldest pending event's age in
    seconds (absent when none waits); what ``/metrics`` shows at each scrape.

    ``status`` counts every delivery and event ever made (the CLI's report); this reads only the
    undelivered ones, each destination's range of ``ix_outbox_deliveries_due``."""
    d = OutboxDelivery
    names = destinations(session)
    per: dict[str, dict[str, Any]] = {name: {PENDING: 0, DEAD: 0} for name in names}
    if not names:
        return per
    for destination, state, count in session.execute(
        select(d.destination, d.status, func.count())
        .where(d.destination.in_(names), d.status.in_((PENDING, DEAD)))
        .group_by(d.destination, d.status)
    ):
        per[destination][state] = count
    for destination, oldest in session.execute(
        select(d.destination, func.min(OutboxEvent.created_at))
        .join(OutboxEvent, OutboxEvent.seq == d.event_seq)
        .where(d.destination.in_(names), d.status == PENDING)
        .group_by(d.destination)
    ):
        if oldest is not None:
            oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=now.tzinfo)
            per[destination]["oldest_pending_seconds"] = round((now - oldest).total_seconds(), 1)
    return per


def retry(session: Session, now: datetime, *, dead: bool, destination: str | None = None) -> int:
    """Make pending deliveries due now; with ``dead``, put dead ones back to pending (attempts reset)."""
    d = OutboxDelivery
    query = update(d).where(d.status == (DEAD if dead else PENDING))
    if destination:
        query = query.where(d.destination == destination)
    values: dict[str, Any] = {"next_attempt_at": now}
    if dead:
        values.update(status=PENDING, attempts=0, lease_owner=None, lease_expires_at=None)
    result = session.execute(query.values(**values))
    assert isinstance(result, CursorResult)  # an UPDATE's result counts its rows
    return result.rowcount or 0
