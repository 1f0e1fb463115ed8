"""Incidents, invite codes for self-registration, and the failed-code log that rate-limits them.

Also the partial index that lets ``BELUM`` list a region's missing stations without
scanning reports (it lives on the core ``station_results`` table but belongs to verification).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, utcnow
from .contacts import VOLUNTEER
from .reports import StationResult


class Incident(Base):
    """``LAPOR <text>``: something that happened at a station (intimidation, missing form, ...).

    ``place_key`` is where it happened as an undotted prefix key: the station ID when the
    sender is assigned to one TPS, else their desa key (a coordinator's: their scope key,
    ``""`` for the whole country). Every region filter is then ``place_key LIKE 'key%'``.
    """

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(String(12), unique=True)
    place_key: Mapped[str] = mapped_column(String(13))
    station_id: Mapped[str | None] = mapped_column(String(13), ForeignKey("stations.id"), default=None)
    region_code: Mapped[str | None] = mapped_column(String(16), ForeignKey("regions.code"), default=None)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    inbound_message_id: Mapped[int] = mapped_column(ForeignKey("inbound_messages.id"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        Index("ix_incidents_place_created", "place_key", "created_at"),
        # The whole country's list, newest first.
        Index("ix_incidents_created_at", "created_at"),
    )


class Invite(Base):
    """An invite code for ``DAFTAR <code> <name>``, usable ``max_uses`` times until ``expires_at``."""

    __tablename__ = "invites"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True)
    region_code: Mapped[str] = mapped_column(String(16), ForeignKey("regions.code"))
    tps: Mapped[int | None] = mapped_column(Integer, default=None)
    role: Mapped[str] = mapped_column(String(16), default=VOLUNTEER)
    max_uses: Mapped[int] = mapped_column(Integer, default=1)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RegistrationFailure(Base):
    """One wrong, expired or used-up code sent by ``phone``: the sliding window of the lockout."""

    __tablename__ = "registration_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(40))
    code: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_registration_failures_phone_created", "phone", "created_at"),)


#: ``BELUM``: a region's missing stations by station-ID prefix. Partial, so it shrinks as
#: results arrive; ``varchar_pattern_ops`` so PostgreSQL can use it for ``LIKE 'key%'``
#: whatever the database collation.
MISSING_STATIONS_INDEX = Index(
    "ix_station_results_missing",
    StationResult.station_id,
    postgresql_ops={"station_id": "varchar_pattern_ops"},
    postgresql_where=text("status = 'missing'"),
    sqlite_where=text("status = 'missing'"),
)
