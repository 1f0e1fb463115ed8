"""The ``outbound`` worker job: sending the queued SMS (replies, broadcasts, reminders) through
the gateway fleet.

Rows are queued by the services inside the transaction that decides to send them
(``services.outbound.enqueue``); this job claims due rows, sends them and records the result:

- A claim, in one short transaction, locks the fleet's device rows, refills each device's
  token bucket and checks its daily cap and health (``devices.survey``), picks rows by
  priority for each device (``routing``), and marks them ``sending`` with a lease
  (``claimed_until``) and a random token. PostgreSQL claims rows with ``FOR UPDATE SKIP
  LOCKED``; SQLite's write lock serialises claims. A live worker's rows are never taken by
  another, so nothing is sent twice by two running workers; a row whose worker died is taken
  over once its lease expires. Buckets and caps live in the database, so they hold across
  every worker.
- The sends run concurrently (``outbound_concurrency``), one HTTP request per row through its
  device's send API; the result is written only while the row still carries the worker's
  token, and on the device (a failure streak takes it out of rotation).
- A failure is retried after the shared backoff (``retry.Backoff``); after
  ``outbound_max_attempts`` (or at once when the provider refused the message for good) the
  row is ``failed``. A retried row is routed afresh, so it fails over when its device is down.
- A queued row no device of the fleet can take (its provider has no sender and the policy
  forbids another) is ``failed`` at once with that reason in ``last_error``, never left queued.
"""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import BindParameter, Select, and_, bindparam, or_, select
from sqlalchemy.orm import Session

from ..config import Settings
from ..db import Database
from ..models import OutboundMessage, utcnow
from . import devices, routing
from .fleet import Device, Fleet, load_fleet
from .retry import Backoff, lease_until
from .senders import Sender, SendError

log = logging.getLogger(__name__)

#: Longest wait between two attempts of one SMS, whatever the backoff says (seconds).
MAX_BACKOFF_SECONDS = 3600.0


class Claim(NamedTuple):
    row_id: int
    token: str
    device: str
    to: str
    text: str


def _fleet_for(settings: Settings, senders: Mapping[str, Sender]) -> Fleet:
    """Senders given by name without a fleet (tests, embedders): one device per sender, named
    and routed like the fleet of one the environment variables describe."""
    return Fleet(
        tuple(Device(name, name, rate=float(settings.send_rates.get(name, 1.0))) for name in senders)
    )


class OutboundJob:
    """Sends due outbound rows through the fleet; safe to run in any number of workers at once."""

    name = "outbound"

    def __init__(
        self,
        settings: Settings,
        *,
        fleet: Fleet | None = None,
        senders: Mapping[str, Sender] | None = None,
        clock: Callable[[], datetime] = utcnow,
        jitter: Callable[[], float] = random.random,
        batch: int = 20,
        lease_seconds: float = 120.0,
    ) -> None:
        self.settings = settings
        if fleet is None:
            fleet = _fleet_for(settings, senders) if senders is not None else load_fleet(settings)
        self.fleet = fleet
        built = {
            d.name: d.sender(settings) for d in fleet.devices if senders is None or d.name not in senders
        }
        self.senders: dict[str, Sender] = {**built, **(senders or {})}
        self.clock, self.jitter, self.batch, self.lease_seconds = clock, jitter, batch, lease_seconds
        self.backoff = Backoff(settings.outbound_backoff_seconds, MAX_BACKOFF_SECONDS)
        self._pool: ThreadPoolExecutor | None = None
        #: The claim's fetch statements, by device (and by the set of down devices for orphans).
        self._statements: dict[str, Select] = {}

    def run_once(self, database: Database, settings: Settings | None = None) -> int:
        claimed = self.claim(database)
        if len(claimed) <= 1:
            for item in claimed:
                self.deliver(database, item.row_id, item.token, self.senders[item.device], item.to, item.text)
            return len(claimed)
        futures = [
            self.pool.submit(
                self.deliver, database, item.row_id, item.token, self.senders[item.device], item.to, item.text
            )
            for item in claimed
        ]
        for future in futures:
            future.result()
        return len(claimed)

    @property
    def pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max(self.settings.outbound_concurrency, 1), "outbound")
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    # -- claiming --------------------------------------------------------------------------

    def claim(self, database: Database) -> list[Claim]:
        now, token = self.clock(), secrets.token_hex(8)
        with database.begin() as session:
            states = devices.lock_states(session, self.fleet, now)
            available = devices.survey(session, self.fleet, states, now, self.settings.timezone, self.batch)
            candidates = self._candidates(session, available, now)
            if not candidates:
                return []
            assigned, refused = routing.allocate(self.fleet, available, list(candidates.values()))
            rows = {r.id: r for r in candidates_rows(session, [*candidates])}
            claimed: list[Claim] = []
            for choice in assigned:
                row = rows[choice.row_id]
                row.status, row.claim_token = "sending", token
                row.claimed_until = lease_until(now, self.lease_seconds)
                row.attempts += 1
                row.device, row.route = choice.device, choice.route or None
                state = states[choice.device]
                state.tokens -= 1
                state.sent_today += 1
                claimed.append(Claim(row.id, token, choice.device, row.to_number, row.text))
            for refusal in refused:
                row = rows[refusal.row_id]
                row.status, row.last_error, row.route = "failed", refusal.reason, refusal.reason
                log.warning("outbound %s failed: %s", row.id, refusal.reason)
        return claimed

    def _candidates(
        self, session: Session, available: dict[str, devices.Availability], now: datetime
    ) -> dict[int, routing.Candidate]:
        """Due rows, best priority first: each up device's own, and those needing another device."""
        found: dict[int, routing.Candidate] = {}
        up = [a for a in available.values() if a.up]
        for a in up:
            if a.tokens > 0:
                self._fetch(session, self._home_rows(a.device), a.tokens, now, found)
        spare = sum(a.tokens for a in up)
        down = tuple(a.device for a in available.values() if not a.up)
        # Rows nobody can take are fetched too (a few), so they fail with a reason instead of waiting.
        self._fetch(session, self._orphan_rows(down), max(spare, 5), now, found)
        return found

    def _home_rows(self, device: Device) -> Select:
        """The fetch of ``device``'s own due rows, built once per job: a claim runs one per
        device every pass, and building and keying the statement each time cost more than
        running it (a third of a bench worker's time with 25 devices)."""
        statement = self._statements.get(device.name)
        if statement is None:
            where = routing.home_condition(self.fleet, device)
            statement = self._statements[device.name] = due_rows(where, bindparam("now"), bindparam("limit"))
        return statement

    def _orphan_rows(self, down: tuple[Device, ...]) -> Select:
        key = "\0down:" + ",".join(d.name for d in down)
        statement = self._statements.get(key)
        if statement is None:
            where = routing.orphan_condition(self.fleet, down)
            statement = self._statements[key] = due_rows(where, bindparam("now"), bindparam("limit"))
        return statement

    def _fetch(
        self,
        session: Session,
        statement: Select,
        limit: int,
        now: datetime,
        found: dict[int, routing.Candidate],
    ) -> None:
        for row_id, priority, due, provider, via in session.execute(statement, {"now": now, "limit": limit}):
            home = self.fleet.home(provider, via or "")
            found[row_id] = routing.Candidate(
                row_id, priority, (due, row_id), provider, home.name if home else None
            )

    # -- sending ---------------------------------------------------------------------------

    def deliver(
        self, database: Database, row_id: int, token: str, sender: Sender, to: str, text: str
    ) -> None:
        """Send one claimed row through ``sender`` (its device) and record the outcome."""
        error: SendError | None = None
        provider_id = ""
        try:
            provider_id = sender.send(to, text, ref=f"smsgate-{row_id}")
        except SendError as exc:
            error = exc
        except Exception as exc:  # a sender bug must not kill the worker; retry like an outage
            log.exception("sender %s crashed on outbound %s", sender.name, row_id)
            error = SendError(f"{type(exc).__name__}: {exc}")
        now = self.clock()
        with database.begin() as session:
            row = session.get(OutboundMessage, row_id, with_for_update=True, populate_existing=True)
            if row is None or row.claim_token != token:
                log.warning("outbound %s was taken over while sending; result not recorded", row_id)
                return
            row.claim_token, row.claimed_until = None, None
            devices.record_send(session, sender.name, now, None if error is None else str(error))
            if error is None:
                row.status, row.sent_at, row.last_error = "sent", now, None
                row.provider_message_id = provider_id or None
                return
            row.last_error = str(error)[:300]
            if error.permanent or row.attempts >= self.settings.outbound_max_attempts:
                row.status = "failed"
                log.warning(
                    "outbound %s failed for good after %s attempt(s): %s", row_id, row.attempts, error
                )
                return
            row.status = "queued"
            row.next_attempt_at = self.backoff.next_attempt(now, row.attempts, self.jitter)


def outbound_job(settings: Settings) -> OutboundJob:
    return OutboundJob(settings)


def due_rows(where: object, now: datetime | BindParameter[Any], limit: int | BindParameter[Any]) -> Select:
    """The claim's query: up to ``limit`` rows matching ``where`` that are due (queued and due, or
    sending with an expired lease), best priority first, locked (``SKIP LOCKED``).

    ``status IN ('queued', 'sending')`` is implied by the conditions but stated first, so that
    SQLite searches ``ix_outbound_messages_due`` (status, provider, via, ...) instead of the
    provider's index: with the latter every fetch read every SMS the provider ever sent, and a
    claim, which fetches once per device, grew slower all night.
    """
    row = OutboundMessage
    return (
        select(row.id, row.priority, row.next_attempt_at, row.provider, row.via)
        .where(
            row.status.in_(("queued", "sending")),
            where,  # type: ignore[arg-type]
            or_(
                and_(row.status == "queued", row.next_attempt_at <= now),
                and_(row.status == "sending", row.claimed_until < now),
            ),
        )
        .order_by(row.priority, row.next_attempt_at, row.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


def candidates_rows(session: Session, ids: list[int]) -> list[OutboundMessage]:
    """The rows already locked by the candidate queries, loaded for update."""
    return list(session.scalars(select(OutboundMessage).where(OutboundMessage.id.in_(ids))))
