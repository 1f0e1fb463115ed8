"""Flood and cost control for inbound SMS, with its state in the message log itself.

A phone stuck resending, or someone hammering the number, must not cost hundreds of replies
nor crowd out other senders. Per sender, within the ``Ingest`` transaction:

- the same text (whitespace and case aside) as the latest message from the same number
  processed in the last ``flood_duplicate_seconds`` is logged as ``duplicate_text`` and not
  handled again. Only the latest counts: a volunteer who corrects a report and then sends the
  first values again (A, B, A) means A, and a second ``CEK`` after a correction is a new
  question, not a stuck phone;
- beyond ``flood_per_minute`` processed messages in a minute, a message is logged as
  ``throttled`` and not handled;
- beyond ``flood_replies_per_hour`` replies in an hour, a message is handled but not answered
  (``error_code`` ``reply_limit``).

Held messages get no reply and are not counted as processed, so a report first held back
is handled when resent later rather than mistaken for a duplicate of itself. The counts come
from ``inbound_messages`` (indexed on sender and time), so every app server sees the same
state; on PostgreSQL a transaction-scoped advisory lock per sender makes concurrent
deliveries from one number take turns, and SQLite's write lock does the same.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from ..config import Settings
from ..models import InboundMessage
from . import pins

DUPLICATE = "duplicate_text"
THROTTLED = "throttled"
#: Outcomes of messages that were not handled: they neither count nor match as duplicates.
HELD = (DUPLICATE, THROTTLED, "error")


def enabled(settings: Settings) -> bool:
    return bool(
        settings.flood_per_minute or settings.flood_replies_per_hour or settings.flood_duplicate_seconds
    )


def serialise(session: Session, settings: Settings, phone: str) -> None:
    """Make concurrent transactions for one sender take turns (PostgreSQL; SQLite already does)."""
    if enabled(settings) and session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:phone))"), {"phone": phone})


def _normal(body: str) -> str:
    return " ".join(body.split()).upper()


def _recent(session: Session, inbound: InboundMessage, window: timedelta):  # type: ignore[no-untyped-def]
    return (
        InboundMessage.from_number == inbound.from_number,
        InboundMessage.id != inbound.id,
        InboundMessage.received_at > inbound.received_at - window,
        InboundMessage.received_at <= inbound.received_at,
    )


def hold(session: Session, settings: Settings, inbound: InboundMessage) -> str | None:
    """``duplicate_text`` or ``throttled`` when the message must not be handled, else ``None``."""
    processed = InboundMessage.outcome.not_in(HELD)
    if settings.flood_duplicate_seconds:
        window = timedelta(seconds=settings.flood_duplicate_seconds)
        latest = session.scalars(
            select(InboundMessage.body)
            .where(*_recent(session, inbound, window), processed)
            .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())
            .limit(1)
        ).first()
        # Texts with a (masked) PIN all look alike once masked: a retry with the right PIN is no duplicate.
        if latest is not None and _normal(latest) == _normal(inbound.body) and not pins.masked(inbound.body):
            return DUPLICATE
    if settings.flood_per_minute:
        count = session.scalar(
            select(func.count()).where(*_recent(session, inbound, timedelta(minutes=1)), processed)
        )
        if (count or 0) >= settings.flood_per_minute:
            return THROTTLED
    return None


def may_reply(session: Session, settings: Settings, inbound: InboundMessage) -> bool:
    if not settings.flood_replies_per_hour:
        return True
    count = session.scalar(
        select(func.count()).where(
            *_recent(session, inbound, timedelta(hours=1)), InboundMessage.reply.is_not(None)
        )
    )
    return (count or 0) < settings.flood_replies_per_hour
