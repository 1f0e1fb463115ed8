"""The transactional outbox: events written with the change that caused them, and their
delivery state per destination.

An ``OutboxEvent`` row is inserted in the same transaction as the report or result change it
describes, so it exists if and only if that change committed. ``seq`` orders events; a
station's events are inserted under its result-row lock, so within a station ``seq`` order is
commit order. A worker later "dispatches" each event (``dispatched_at``) into one
``OutboxDelivery`` row per configured destination and delivers those.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, JSONType, UTCDateTime, utcnow

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
_UNDISPATCHED = text("dispatched_at IS NULL")
DELIVERY_STATUSES = (PENDING, DELIVERED, DEAD)


class OutboxEvent(Base):
    """One event document; ``payload`` is its type-specific body (the envelope is built from columns)."""

    __tablename__ = "outbox_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    type: Mapped[str] = mapped_column(String(40))
    schema_version: Mapped[int] = mapped_column(Integer, default=1)
    station_id: Mapped[str | None] = mapped_column(String(13), default=None)
    #: 1, 2, 3, ... per station without gaps (``StationResult.event_sequence``); ``NULL`` for an
    #: event tied to no station. Snapshots repeat the sequence of the state they show.
    station_sequence: Mapped[int | None] = mapped_column(Integer, default=None)
    #: Only this destination receives the event (a catch-up snapshot); ``NULL``: every destination.
    destination: Mapped[str | None] = mapped_column(String(64), default=None)
    payload: Mapped[dict] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: Set when the worker created this event's delivery rows; ``NULL`` means not yet.
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)

    #: Partial: every query by them is of undispatched events (the dispatch, the claim's check
    #: of a station's earlier events, the status's count), and dispatching an event then adds
    #: no entry to them (migration ``2023``).
    __table_args__ = (
        Index(
            "ix_outbox_events_undispatched", "seq", postgresql_where=_UNDISPATCHED, sqlite_where=_UNDISPATCHED
        ),
        Index(
            "ix_outbox_events_undispatched_station",
            "station_id",
            "seq",
            postgresql_where=_UNDISPATCHED,
            sqlite_where=_UNDISPATCHED,
        ),
    )


class OutboxDelivery(Base):
    """The delivery of one event to one destination: ``pending`` until ``delivered`` or ``dead``.

    A worker claims a row by writing ``lease_owner``/``lease_expires_at``; a lease left by a
    worker that died simply expires and another worker takes the row over.
    """

    __tablename__ = "outbox_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_seq: Mapped[int] = mapped_column(ForeignKey("outbox_events.seq"))
    destination: Mapped[str] = mapped_column(String(64))
    #: Copied from the event so the per-station ordering check needs no join.
    station_id: Mapped[str | None] = mapped_column(String(13), default=None)
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    lease_owner: Mapped[str | None] = mapped_column(String(80), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)

    __table_args__ = (
        UniqueConstraint("event_seq", "destination", name="uq_outbox_deliveries_event_destination"),
        Index("ix_outbox_deliveries_due", "destination", "status", "next_attempt_at"),
        Index("ix_outbox_deliveries_station", "destination", "station_id", "event_seq"),
    )
