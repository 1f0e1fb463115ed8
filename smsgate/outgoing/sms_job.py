"""The ``outbound`` worker job: sending the queued SMS (replies, broadcasts, reminders).

Rows are queued by the services inside the transaction that decides to send them
(``services.outbound.enqueue``); this job claims due rows, sends them and records the result:

- A claim marks rows ``sending`` with a lease (``claimed_until``) and a random token, in one
  short transaction. PostgreSQL claims with ``FOR UPDATE SKIP LOCKED``; SQLite's write lock
  serialises claims. A live worker's rows are never taken by another, so nothing is sent twice
  by two running workers; a row whose worker died is taken over once its lease expires.
- The result is written only while the row still carries the worker's token.
- A failure is retried after the shared backoff (``retry.Backoff``); after
  ``outbound_max_attempts`` (or at once when the provider refused the message for good) the
  row is ``failed``.
- A queued row for a provider this worker has no sender for (no credentials configured) is
  ``failed`` at once with that reason in ``last_error``, never left queued without one.
- Each provider has a token bucket row (``send_buckets``), refilled at its configured rate and
  taken from inside the claim transaction, so the rate holds across all workers.
"""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from ..config import Settings
from ..db import Database
from ..models import OutboundMessage, SendBucket, utcnow
from .retry import Backoff, lease_until
from .senders import Sender, SendError, configured, no_sender_reason
from .worker import job

log = logging.getLogger(__name__)

#: Longest wait between two attempts of one SMS, whatever the backoff says (seconds).
MAX_BACKOFF_SECONDS = 3600.0


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
        lease_seconds: float = 120.0,
    ) -> None:
        self.settings = settings
        self.senders = dict(configured(settings) if senders is None else senders)
        self.clock, self.jitter, self.batch, self.lease_seconds = clock, jitter, batch, lease_seconds
        self.backoff = Backoff(settings.outbound_backoff_seconds, MAX_BACKOFF_SECONDS)

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
            self._fail_unsendable(session)
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
                    row.claimed_until = lease_until(now, self.lease_seconds)
                    row.attempts += 1
                    claimed.append((row.id, token, provider, row.to_number, row.text))
                bucket = session.get(SendBucket, provider)
                assert bucket is not None
                bucket.tokens -= len(rows)
        return claimed

    def _fail_unsendable(self, session: Session) -> None:
        """Queued rows for a provider this worker has no sender for fail, saying so.

        Otherwise they would stay ``queued`` forever with no reason anyone could see.
        """
        rows = session.scalars(
            select(OutboundMessage)
            .where(OutboundMessage.status == "queued", OutboundMessage.provider.not_in(list(self.senders)))
            .limit(500)
            .with_for_update(skip_locked=True)
        ).all()
        for row in rows:
            row.status, row.last_error = "failed", no_sender_reason(row.provider)
            log.warning("outbound %s failed: %s", row.id, row.last_error)

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
            row.next_attempt_at = self.backoff.next_attempt(now, row.attempts, self.jitter)


@job
def outbound_job(settings: Settings) -> OutboundJob:
    return OutboundJob(settings)
