"""The outbound queue: SMS that do not ride in a webhook's HTTP response.

``enqueue`` adds rows inside the caller's transaction (a reply is queued in the same
transaction that logs its inbound message, so an acknowledged message's reply is never lost).
``OutboundJob`` (run by ``smsgate worker``) claims due rows, sends them and records the result:

- A claim marks rows ``sending`` with a lease (``claimed_until``) and a random token, in one
  short transaction. PostgreSQL claims with ``FOR UPDATE SKIP LOCKED``; SQLite's write lock
  serialises claims. A live worker's rows are never taken by another, so nothing is sent twice
  by two running workers; a row whose worker died is taken over once its lease expires.
- The result is written only while the row still carries the worker's token.
- A failure is retried with exponential backoff and jitter; after ``outbound_max_attempts`` (or
  at once when the provider refused the message for good) the row is ``failed``.
- Each provider has a token bucket row (``send_buckets``), refilled at its configured rate and
  taken from inside the claim transaction, so the rate holds across all workers.
"""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from ..config import Settings
from ..db import Database
from ..inbound import DeliveryReport
from ..models import InboundMessage, OutboundMessage, SendBucket, utcnow
from ..senders import Sender, SendError, configured
from ..worker import job

log = logging.getLogger(__name__)

#: Longest wait between two attempts, whatever the backoff says.
MAX_BACKOFF = timedelta(hours=1)


def enqueue(
    session: Session,
    *,
    to: str,
    text: str,
    provider: str,
    kind: str,
    now: datetime,
    contact_id: int | None = None,
    inbound_message_id: int | None = None,
    broadcast_id: int | None = None,
) -> OutboundMessage:
    row = OutboundMessage(
        to_number=to,
        text=text,
        provider=provider,
        kind=kind,
        status="queued",
        attempts=0,
        next_attempt_at=now,
        contact_id=contact_id,
        inbound_message_id=inbound_message_id,
        broadcast_id=broadcast_id,
        created_at=now,
    )
    session.add(row)
    return row


def last_providers(session: Session, phones: Iterable[str]) -> dict[str, str]:
    """The provider each number last wrote to us through, for numbers that ever did."""
    phones = list(dict.fromkeys(phones))
    found: dict[str, str] = {}
    for start in range(0, len(phones), 500):
        chunk = phones[start : start + 500]
        latest = (
            select(func.max(InboundMessage.id).label("id"))
            .where(InboundMessage.from_number.in_(chunk))
            .group_by(InboundMessage.from_number)
            .subquery()
        )
        rows = session.execute(
            select(InboundMessage.from_number, InboundMessage.provider).join(
                latest, InboundMessage.id == latest.c.id
            )
        )
        found.update({phone: provider for phone, provider in rows})
    return found


def backoff(attempts: int, base: float, jitter: float) -> timedelta:
    """``base * 2**(attempts-1)``, capped, times a jitter factor in [0.5, 1.5)."""
    delay = timedelta(seconds=base * 2 ** max(attempts - 1, 0))
    return min(delay, MAX_BACKOFF) * (0.5 + jitter)


def _ensure_bucket(session: Session, provider: str, tokens: float, now: datetime) -> None:
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    session.execute(
        insert(SendBucket)
        .values(provider=provider, tokens=tokens, updated_at=now)
        .on_conflict_do_nothing(index_elements=["provider"])
    )


class OutboundJob:
    """Sends due outbound rows; safe to run in any number of workers at once."""

    name = "outbound"

    def __init__(
        self,
        settings: Settings,
        *,
        senders: Mapping[str, Sender] | None = None,
        clock: Callable[[], datetime] = utcnow,
        jitter: Callable[[], float] = random.random,
        batch: int = 20,
        lease: timedelta = timedelta(minutes=2),
    ) -> None:
        self.settings = settings
        self.senders = dict(configured(settings) if senders is None else senders)
        self.clock, self.jitter, self.batch, self.lease = clock, jitter, batch, lease

    def run_once(self, database: Database, settings: Settings | None = None) -> int:
        claimed = self.claim(database)
        for row_id, token, provider, to, text in claimed:
            self.deliver(database, row_id, token, self.senders[provider], to, text)
        return len(claimed)

    # -- claiming --------------------------------------------------------------------------

    def claim(self, database: Database) -> list[tuple[int, str, str, str, str]]:
        now, token = self.clock(), secrets.token_hex(8)
        claimed: list[tuple[int, str, str, str, str]] = []
        with database.begin() as session:
            for provider in self.senders:
                allowed = self._take_tokens(session, provider, now)
                if allowed <= 0:
                    continue
                rows = session.scalars(
                    select(OutboundMessage)
                    .where(
                        OutboundMessage.provider == provider,
                        or_(
                            and_(OutboundMessage.status == "queued", OutboundMessage.next_attempt_at <= now),
                            and_(OutboundMessage.status == "sending", OutboundMessage.claimed_until < now),
                        ),
                    )
                    .order_by(OutboundMessage.next_attempt_at, OutboundMessage.id)
                    .limit(allowed)
                    .with_for_update(skip_locked=True)
                ).all()
                for row in rows:
                    row.status, row.claim_token = "sending", token
                    row.claimed_until = now + self.lease
                    row.attempts += 1
                    claimed.append((row.id, token, provider, row.to_number, row.text))
                bucket = session.get(SendBucket, provider)
                assert bucket is not None
                bucket.tokens -= len(rows)
        return claimed

    def _take_tokens(self, session: Session, provider: str, now: datetime) -> int:
        """Refill the provider's bucket to ``now`` and say how many sends it allows."""
        rate = float(self.settings.send_rates.get(provider, 1.0))
        capacity = max(1.0, rate)
        _ensure_bucket(session, provider, capacity, now)
        bucket = session.get(SendBucket, provider, with_for_update=True, populate_existing=True)
        assert bucket is not None
        elapsed = max((now - bucket.updated_at).total_seconds(), 0.0)
        bucket.tokens = min(capacity, bucket.tokens + elapsed * rate)
        bucket.updated_at = max(now, bucket.updated_at)
        return min(self.batch, int(bucket.tokens + 1e-9))

    # -- sending ---------------------------------------------------------------------------

    def deliver(
        self, database: Database, row_id: int, token: str, sender: Sender, to: str, text: str
    ) -> None:
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
            row.next_attempt_at = now + backoff(
                row.attempts, self.settings.outbound_backoff_seconds, self.jitter()
            )


@job
def outbound_job(settings: Settings) -> OutboundJob:
    return OutboundJob(settings)


def record_delivery(session: Session, report: DeliveryReport) -> int:
    """Note a provider's delivery report on the rows it sent under that id; returns how many."""
    rows = list(
        session.scalars(
            select(OutboundMessage).where(
                OutboundMessage.provider == report.provider,
                OutboundMessage.provider_message_id == report.provider_message_id,
            )
        )
    )
    for row in rows:
        row.provider_status = report.status[:32]
        if report.failed:
            row.status = "failed"
            row.last_error = report.error[:300]
    return len(rows)


def queue_reply(session: Session, inbound: InboundMessage, reply: str, now: datetime) -> OutboundMessage:
    """Queue the reply to ``inbound`` back through the provider it came from."""
    session.flush()
    return enqueue(
        session,
        to=inbound.from_number,
        text=reply,
        provider=inbound.provider,
        kind="reply",
        now=now,
        contact_id=inbound.contact_id,
        inbound_message_id=inbound.id,
    )
