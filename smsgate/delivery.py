"""Delivering outbox events to the tally destinations (issue 6): the ``outbox`` worker job and
the ``smsgate outbox status|retry`` commands.

One pass of the job:

1. **dispatch**: events not yet dispatched (oldest first, ``FOR UPDATE SKIP LOCKED``) get one
   ``pending`` delivery row per configured destination;
2. **claim**, per destination: pending deliveries that are due, not leased by a live worker, and
   have no earlier event of the same station still undispatched or pending for that destination,
   are leased to this worker (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite serialises
   writers). So at most one event per station and destination is in flight, and a station's
   events reach each destination in ``sequence`` order;
3. **send** them concurrently (distinct stations), signed, with a timeout shorter than the lease;
4. **record**: 2xx is ``delivered``; a timeout, connection error, 408/425/429 or 5xx is retried
   with exponential backoff and jitter; any other answer, or ``outbox_max_attempts`` failures,
   or an event older than ``outbox_max_age_hours``, makes the delivery ``dead``.

A dead delivery does not hold back the station's later events: each ``station.status_changed``
carries the station's whole result, so the destination's tally converges, and a receiver
ignores state older than the ``sequence`` it already applied. ``smsgate outbox retry --dead``
replays dead deliveries.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import random
import socket
import tomllib
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click
import requests
from sqlalchemy import and_, exists, func, insert, or_, select, update
from sqlalchemy.orm import Session, aliased

from .config import Settings
from .db import Database
from .models import OutboxDelivery, OutboxEvent, utcnow
from .models.outbox import DEAD, DELIVERED, PENDING
from .services.outbox import document
from .signing import HEADER, IDEMPOTENCY_HEADER, sign
from .worker import job

log = logging.getLogger(__name__)

#: Events dispatched into delivery rows per pass.
DISPATCH_BATCH = 500
RETRY_STATUSES = frozenset({408, 425, 429})


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Destination:
    name: str
    url: str
    secret: str
    timeout: float | None = None


def load_destinations(settings: Settings) -> list[Destination]:
    """``SMSGATE_TALLY_URL`` + ``SMSGATE_TALLY_SECRET`` (named ``tally``) and/or the entries of
    the ``SMSGATE_DESTINATIONS`` file (JSON or TOML: ``destinations = [{name, url, secret}]``,
    ``secret_env`` instead of ``secret`` reads the secret from that environment variable)."""
    found: list[Destination] = []
    if settings.tally_url:
        if not settings.tally_secret:
            raise ConfigError("SMSGATE_TALLY_URL is set but SMSGATE_TALLY_SECRET is not")
        found.append(Destination("tally", settings.tally_url, settings.tally_secret))
    if settings.destinations_file:
        path = Path(settings.destinations_file)
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
        entries = data.get("destinations", []) if isinstance(data, dict) else data
        for entry in entries:
            secret = entry.get("secret") or os.environ.get(entry.get("secret_env", ""), "")
            if not entry.get("name") or not entry.get("url") or not secret:
                raise ConfigError(f"{path}: every destination needs name, url and secret (or secret_env)")
            timeout = entry.get("timeout")
            found.append(Destination(str(entry["name"]), str(entry["url"]), secret, timeout))
    names = [d.name for d in found]
    if len(set(names)) != len(names):
        raise ConfigError(f"destination names must be unique: {names}")
    if any(len(name) > 64 for name in names):
        raise ConfigError("destination names are at most 64 characters")
    return found


# -- the job ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    event_id: str
    body: bytes
    lease_expires_at: datetime
    created_at: datetime


@dataclass(frozen=True)
class Outcome:
    delivery_id: int
    delivered: bool
    retry: bool
    error: str | None = None
    retry_after: float | None = None


class OutboxJob:
    """The ``outbox`` worker job; ``clock`` and ``owner`` are injectable for tests."""

    name = "outbox"

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utcnow,
        owner: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.destinations = load_destinations(settings)
        self.clock = clock
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.rng = rng or random.Random()
        self.http = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=max(settings.outbox_concurrency, 1))
        self.http.mount("http://", adapter)
        self.http.mount("https://", adapter)
        self._pool: ThreadPoolExecutor | None = None

    def run_once(self, database: Database, settings: Settings) -> int:
        if not self.destinations:
            return 0
        handled = dispatch(database, self.destinations, self.clock())
        for destination in self.destinations:
            handled += self.deliver(database, destination)
        return handled

    def deliver(self, database: Database, destination: Destination) -> int:
        timeout = destination.timeout or self.settings.outbox_timeout_seconds
        concurrency = max(self.settings.outbox_concurrency, 1)
        lease = self.settings.outbox_lease_seconds
        # Every claimed event must be sent before its lease ends, or another worker may send it too.
        rounds = max(int((lease - 1) // (timeout + 0.5)), 1)
        limit = max(min(self.settings.outbox_batch, concurrency * rounds), 1)
        claimed = claim(database, destination.name, self.owner, self.clock(), limit, lease)
        if not claimed:
            return 0
        outcomes = list(self.pool.map(lambda item: self.send(destination, item, timeout), claimed))
        record(
            database, destination.name, self.owner, outcomes, claimed, self.settings, self.clock(), self.rng
        )
        return len(claimed)

    def send(self, destination: Destination, item: Claimed, timeout: float) -> Outcome:
        if self.clock() >= item.lease_expires_at:  # we were too slow: leave it to whoever takes it over
            return Outcome(
                item.delivery_id, delivered=False, retry=True, error="lease expired before sending"
            )
        headers = {
            "Content-Type": "application/json",
            HEADER: sign(destination.secret, item.body),
            IDEMPOTENCY_HEADER: item.event_id,
            "User-Agent": "smsgate-outbox/1",
        }
        try:
            response = self.http.post(destination.url, data=item.body, headers=headers, timeout=timeout)
        except requests.Timeout:
            return Outcome(item.delivery_id, False, True, f"timeout after {timeout:g}s")
        except requests.RequestException as exc:
            return Outcome(item.delivery_id, False, True, f"{type(exc).__name__}: {exc}"[:500])
        if 200 <= response.status_code < 300:
            return Outcome(item.delivery_id, True, False)
        error = f"HTTP {response.status_code}: {response.text[:200]}"
        retry = response.status_code >= 500 or response.status_code in RETRY_STATUSES
        return Outcome(item.delivery_id, False, retry, error, _retry_after(response))

    @property
    def pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max(self.settings.outbox_concurrency, 1), "outbox")
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self.http.close()


@job
def outbox_job(settings: Settings) -> OutboxJob:
    return OutboxJob(settings)


def dispatch(database: Database, destinations: list[Destination], now: datetime) -> int:
    """Create the delivery rows of up to ``DISPATCH_BATCH`` undispatched events; returns how many events."""
    with database.begin() as session:
        rows = session.execute(
            select(OutboxEvent.seq, OutboxEvent.station_id)
            .where(OutboxEvent.dispatched_at.is_(None))
            .order_by(OutboxEvent.seq)
            .limit(DISPATCH_BATCH)
            .with_for_update(skip_locked=True)
        ).all()
        if not rows:
            return 0
        session.execute(
            insert(OutboxDelivery),
            [
                {
                    "event_seq": seq,
                    "destination": destination.name,
                    "station_id": station_id,
                    "status": PENDING,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for seq, station_id in rows
                for destination in destinations
            ],
        )
        session.execute(
            update(OutboxEvent).where(OutboxEvent.seq.in_([seq for seq, _ in rows])).values(dispatched_at=now)
        )
    return len(rows)


def claim(
    database: Database, destination: str, owner: str, now: datetime, limit: int, lease_seconds: float
) -> list[Claimed]:
    """Lease up to ``limit`` deliverable events for ``destination`` to ``owner``."""
    d = OutboxDelivery
    earlier = aliased(OutboxDelivery)
    undispatched_before = exists().where(
        OutboxEvent.station_id == d.station_id,
        OutboxEvent.seq < d.event_seq,
        OutboxEvent.dispatched_at.is_(None),
    )
    pending_before = exists().where(
        earlier.destination == d.destination,
        earlier.station_id == d.station_id,
        earlier.event_seq < d.event_seq,
        earlier.status == PENDING,
    )
    query = (
        select(d)
        .where(
            d.destination == destination,
            d.status == PENDING,
            d.next_attempt_at <= now,
            or_(d.lease_expires_at.is_(None), d.lease_expires_at < now),
            ~undispatched_before,
            ~pending_before,
        )
        .order_by(d.event_seq)
        .limit(limit)
        .with_for_update(skip_locked=True, of=d)
    )
    expires = now + timedelta(seconds=lease_seconds)
    with database.begin() as session:
        deliveries = list(session.scalars(query))
        if not deliveries:
            return []
        events = {
            e.seq: e
            for e in session.scalars(
                select(OutboxEvent).where(OutboxEvent.seq.in_([x.event_seq for x in deliveries]))
            )
        }
        claimed = []
        for delivery in deliveries:
            delivery.lease_owner = owner
            delivery.lease_expires_at = expires
            event = events[delivery.event_seq]
            body = json.dumps(document(event), separators=(",", ":"), ensure_ascii=False).encode()
            claimed.append(Claimed(delivery.id, event.id, body, expires, event.created_at))
    return claimed


def record(
    database: Database,
    destination: str,
    owner: str,
    outcomes: list[Outcome],
    claimed: list[Claimed],
    settings: Settings,
    now: datetime,
    rng: random.Random,
) -> None:
    """Write each outcome, but only where ``owner`` still holds the lease."""
    created = {item.delivery_id: item.created_at for item in claimed}
    max_age = timedelta(hours=settings.outbox_max_age_hours)
    with database.begin() as session:
        for outcome in outcomes:
            delivery = session.scalars(
                select(OutboxDelivery).where(
                    OutboxDelivery.id == outcome.delivery_id, OutboxDelivery.lease_owner == owner
                )
            ).one_or_none()
            if delivery is None or delivery.status != PENDING:
                continue  # the lease was taken over; the new owner records its own outcome
            delivery.lease_owner = None
            delivery.lease_expires_at = None
            delivery.attempts += 1
            if outcome.delivered:
                delivery.status = DELIVERED
                delivery.delivered_at = now
                delivery.last_error = None
                continue
            delivery.last_error = outcome.error
            too_old = now - created[outcome.delivery_id] > max_age
            if not outcome.retry or delivery.attempts >= settings.outbox_max_attempts or too_old:
                delivery.status = DEAD
                log.warning("event delivery %s to %s is dead: %s", delivery.id, destination, outcome.error)
                continue
            delivery.next_attempt_at = now + timedelta(
                seconds=backoff(delivery.attempts, settings, rng, outcome)
            )


def backoff(attempts: int, settings: Settings, rng: random.Random, outcome: Outcome | None = None) -> float:
    """Seconds before the next try: ``base * 2^(attempts-1)``, capped, with "equal jitter" (50-100%);
    a ``Retry-After`` from the destination is honoured up to the cap."""
    cap = settings.outbox_backoff_max_seconds
    delay = min(cap, settings.outbox_backoff_seconds * 2 ** min(attempts - 1, 30))
    delay = delay / 2 + rng.uniform(0, delay / 2)
    if outcome is not None and outcome.retry_after is not None:
        delay = max(delay, min(outcome.retry_after, cap))
    return delay


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(float(value), 0.0) if value else None
    except ValueError:
        return None


# -- on SQLite one worker is enough -------------------------------------------------------------


class AnotherWorker(RuntimeError):
    pass


@contextlib.contextmanager
def sqlite_single_worker(database: Database) -> Iterator[None]:
    """On a SQLite file, hold ``<db>.worker.lock`` (``flock``, released even on SIGKILL) while the
    worker runs; a second worker on the same file raises ``AnotherWorker`` naming the first's pid."""
    url = database.engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        yield
        return
    path = Path(f"{url.database}.worker.lock")
    handle = open(path, "a+")  # noqa: SIM115 (held for the whole run)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            pid = handle.read().strip() or "?"
            raise AnotherWorker(
                f"another smsgate worker (pid {pid}) is already running on {url.database}; on SQLite one "
                "worker is enough (use PostgreSQL to run several)"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()


# -- smsgate outbox status|retry ----------------------------------------------------------------


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


def retry(session: Session, now: datetime, *, dead: bool, destination: str | None = None) -> int:
    """Make pending deliveries due now; with ``dead``, put dead ones back to pending (attempts reset)."""
    d = OutboxDelivery
    query = update(d).where(d.status == (DEAD if dead else PENDING))
    if destination:
        query = query.where(d.destination == destination)
    values: dict[str, Any] = {"next_attempt_at": now}
    if dead:
        values.update(status=PENDING, attempts=0, lease_owner=None, lease_expires_at=None)
    return session.execute(query.values(**values)).rowcount or 0


def _env() -> Any:
    from .cli import Env

    return click.get_current_context().ensure_object(Env)


@click.group("outbox")
def outbox_cli() -> None:
    """Inspect and replay event deliveries to the tally destinations."""


@outbox_cli.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def status_command(as_json: bool) -> None:
    """Events, and deliveries per destination: pending, delivered, dead."""
    env = _env()
    with env.database.read() as session:
        figures = status(session, utcnow())
    if as_json:
        click.echo(json.dumps(figures, indent=2))
        return
    click.echo(f"events: {figures['events']} ({figures['undispatched']} not yet dispatched)")
    if not figures["destinations"]:
        click.echo("no deliveries yet (configure SMSGATE_TALLY_URL or SMSGATE_DESTINATIONS and run a worker)")
    for name, entry in sorted(figures["destinations"].items()):
        line = f"{name}: {entry[PENDING]} pending, {entry[DELIVERED]} delivered, {entry[DEAD]} dead"
        if entry.get("retrying"):
            line += f"; {entry['retrying']} retrying since {entry['oldest_failing_since']}"
        if "oldest_pending_seconds" in entry:
            line += f"; oldest pending {entry['oldest_pending_seconds']}s"
        click.echo(line)


@outbox_cli.command("retry")
@click.option("--dead", is_flag=True, help="Replay dead deliveries (attempts start again).")
@click.option("--destination", help="Only this destination.")
def retry_command(dead: bool, destination: str | None) -> None:
    """Retry pending deliveries now instead of after their backoff; --dead replays dead ones."""
    env = _env()
    with env.database.begin() as session:
        count = retry(session, utcnow(), dead=dead, destination=destination)
    click.echo(f"{count} {'dead' if dead else 'pending'} deliver{'y' if count == 1 else 'ies'} due now")
