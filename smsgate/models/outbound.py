"""SMS we send on our own initiative or after the HTTP response: the outbound queue, the state
of each gateway device (send-rate bucket, daily count, failures, operator's switch), the
devices' heartbeats, and coordinators' broadcasts awaiting confirmation."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, utcnow

#: What an outbound row is for.
KINDS = ("reply", "broadcast", "reminder")
#: ``queued`` waits for ``next_attempt_at``; ``sending`` is claimed by a worker until
#: ``claimed_until`` (after which another worker may take it over); ``sent`` and ``failed`` are final.
STATUSES = ("queued", "sending", "sent", "failed")
#: Who waits least: replies to registered volunteers, then coordinators' answers, then
#: broadcasts and reminders, then replies to numbers we do not know.
VOLUNTEER_REPLY, COORDINATOR_REPLY, BULK, STRANGER_REPLY = 0, 1, 2, 3
PRIORITIES = {
    VOLUNTEER_REPLY: "volunteer",
    COORDINATOR_REPLY: "coordinator",
    BULK: "broadcast/reminder",
    STRANGER_REPLY: "stranger",
}


class OutboundMessage(Base):
    """One SMS to send through ``provider`` (the one the contact last wrote through).

    ``via`` is the device the contact wrote to (Android ``deviceId``, Kannel ``smsc``, Twilio
    ``To``), so the answer comes from the number they texted; ``device`` is the fleet device
    that took the row and ``route`` why that one when it is not the contact's own.
    """

    __tablename__ = "outbound_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    to_number: Mapped[str] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(Text)
    provider: Mapped[str] = mapped_column(String(32))
    via: Mapped[str] = mapped_column(String(64), default="", server_default="")
    priority: Mapped[int] = mapped_column(Integer, default=BULK, server_default=str(BULK))
    device: Mapped[str | None] = mapped_column(String(32), default=None)
    route: Mapped[str | None] = mapped_column(String(200), default=None)
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
        Index("ix_outbound_messages_due", "status", "provider", "via", "priority", "next_attempt_at"),
        Index("ix_outbound_messages_device_sent", "device", "sent_at"),
        Index("ix_outbound_messages_provider_id", "provider", "provider_message_id"),
        Index("ix_outbound_messages_contact_kind", "contact_id", "kind", "created_at"),
        # The dashboard's message log, newest first.
        Index("ix_outbound_messages_created_at", "created_at"),
    )


#: The statuses ``OutboundStatusCount`` keeps (the others, queued and sending, are counted live:
#: the queue is small and ``ix_outbound_messages_due`` starts with the status).
COUNTED_STATUSES = ("sent", "failed")
#: Shards of each count, by outbound id: workers finishing sends at once do not queue on one row.
STATUS_COUNT_SHARDS = 16


class OutboundStatusCount(Base):
    """How many outbound SMS are ``sent`` or ``failed`` by provider, kept by the database.

    ``GET /metrics`` counted every outbound row by status at each scrape: a scan of millions of
    rows on a national night. Triggers on ``outbound_messages`` (migration ``2102``) add or
    take it here in the transaction that moves rows into or out of those statuses, whatever
    code or SQL does it (on PostgreSQL once per statement, from its transition tables, so a
    statement moving a million rows changes each count row once). Readers add the shards up.
    """

    __tablename__ = "outbound_status_counts"

    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    shard: Mapped[int] = mapped_column(Integer, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class GatewayDevice(Base):
    """What every worker shares about one fleet device (by its name in ``SMSGATE_GATEWAYS``).

    ``tokens`` as of ``refilled_at`` is its send-rate bucket; ``sent_today`` counts sends
    claimed on ``day`` (the deployment's local date) against its daily cap; consecutive
    failures take it out of rotation for a while; ``disabled`` is the operator's switch.
    """

    __tablename__ = "gateway_devices"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float, default=0.0)
    refilled_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    day: Mapped[str] = mapped_column(String(10), default="")
    sent_today: Mapped[int] = mapped_column(Integer, default=0)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(300), default=None)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    last_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class GatewayPing(Base):
    """The latest heartbeat of a device, as its provider names it (Android ``system:ping``)."""

    __tablename__ = "gateway_pings"

    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    device: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_ping_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: The app's own verdict on itself: ``pass``, ``warn`` or ``fail``.
    health: Mapped[str] = mapped_column(String(8), default="")
    battery: Mapped[int | None] = mapped_column(Integer, default=None)


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
