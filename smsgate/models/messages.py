"""The append-only log of every SMS received, with the reply we gave."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, utcnow

#: Outcomes of an inbound message. ``error`` means we failed internally and asked the sender
#: to try again; a redelivery of such a message is processed afresh instead of replayed.
#: ``throttled`` and ``duplicate_text`` are flood control (services/flood.py): logged, not answered.
OUTCOMES = (
    "accepted",
    "flagged",
    "rejected",
    "command",
    "refused",
    "error",
    "ignored",
    "throttled",
    "duplicate_text",
)


class InboundMessage(Base):
    """One SMS as the provider delivered it.

    A redelivery is the same provider, ``provider_message_id`` *and* sender: a webhook
    delivered twice finds the row of the first delivery and answers with the same ``reply``,
    changing nothing, while a different phone reusing an id (two Gammu modems both numbering
    their inbox from 1) is a new message and never gets someone else's stored reply.
    ``device`` is the gateway device the message came through, for replies through the same one.
    """

    __tablename__ = "inbound_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    provider_message_id: Mapped[str] = mapped_column(String(128))
    from_number: Mapped[str] = mapped_column(String(40))
    to_number: Mapped[str] = mapped_column(String(40), default="")
    device: Mapped[str] = mapped_column(String(64), default="", server_default="")
    body: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), default=None)
    outcome: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(40), default=None)
    reply: Mapped[str | None] = mapped_column(Text, default=None)

    __table_args__ = (
        UniqueConstraint(
            "provider", "provider_message_id", "from_number", name="uq_inbound_provider_message_sender"
        ),
        # Flood control: a sender's recent messages, newest first (``services.flood``), the
        # query's whole order. SQLite only: on PostgreSQL ``ix_inbound_messages_from_prefix``
        # (``postgres_indexes.PHONE_INDEXES``) has these columns and serves the phone search too,
        # so a message writes one index entry for both.
        Index("ix_inbound_messages_from_received", "from_number", "received_at", "id").ddl_if(
            dialect="sqlite"
        ),
        # The dashboard's message log, newest first.
        Index("ix_inbound_messages_received_at", "received_at"),
        Index("ix_inbound_messages_device_received", "provider", "device", "received_at"),
    )
