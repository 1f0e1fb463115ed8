"""SMS we send on our own initiative or after the HTTP response: the outbound queue, the
per-provider send-rate buckets and coordinators' broadcasts awaiting confirmation."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, utcnow

#: What an outbound row is for.
KINDS = ("reply", "broadcast", "reminder")
#: ``queued`` waits for ``next_attempt_at``; ``sending`` is claimed by a worker until
#: ``claimed_until`` (after which another worker may take it over); ``sent`` and ``failed`` are final.
STATUSES = ("queued", "sending", "sent", "failed")


class OutboundMessage(Base):
    """One SMS to send through ``provider`` (the one the contact last wrote through)."""

    __tablename__ = "outbound_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    to_number: Mapped[str] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(Text)
    provider: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16), default="reply")
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    claim_token: Mapped[str | None] = mapped_column(String(32), default=None)
    last_error: Mapped[str | None] = mapped_column(String(300), default=None)
    provider_message_id: Mapped[str | None] = mapped_column(String(128), default=None)
    provider_status: Mapped[str | None] = mapped_column(String(32), default=None)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), default=None)
    inbound_message_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_messages.id"), default=None)
    broadcast_id: Mapped[int | None] = mapped_column(ForeignKey("broadcasts.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)

    __table_args__ = (
        Index("ix_outbound_messages_due", "status", "provider", "next_attempt_at"),
        Index("ix_outbound_messages_provider_id", "provider", "provider_message_id"),
        Index("ix_outbound_messages_contact_kind", "contact_id", "kind", "created_at"),
        # The dashboard's message log, newest first.
        Index("ix_outbound_messages_created_at", "created_at"),
    )


class SendBucket(Base):
    """A token bucket per provider, shared by every worker: ``tokens`` as of ``updated_at``."""

    __tablename__ = "send_buckets"

    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float, default=0.0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Broadcast(Base):
    """``SIARAN <text>`` from a coordinator: pending until ``YA <code>`` before ``expires_at``."""

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    text: Mapped[str] = mapped_column(Text)
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
