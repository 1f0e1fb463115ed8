"""People who text us: volunteers at a station and coordinators over a region."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, utcnow

VOLUNTEER = "volunteer"
COORDINATOR = "coordinator"
ROLES = (VOLUNTEER, COORDINATOR)
LANGUAGES = ("id", "en")


class Contact(Base):
    """A registered phone number.

    For a volunteer ``region_code`` is their desa and ``tps`` their station when assigned to
    one; for a coordinator ``region_code`` is the scope (``None`` means the whole country).
    """

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(16), default=VOLUNTEER)
    region_code: Mapped[str | None] = mapped_column(String(16), ForeignKey("regions.code"), default=None)
    tps: Mapped[int | None] = mapped_column(Integer, default=None)
    lang: Mapped[str] = mapped_column(String(2), default="id")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: A coordinator's PIN, hashed (werkzeug scrypt); ``None`` until one is set.
    pin_hash: Mapped[str | None] = mapped_column(String(256), default=None)
    pin_set_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    #: Until when a coordinator without a PIN may choose the first one by SMS (``PIN <new>``):
    #: 24 hours after registering with an invite; ``None`` for everyone else.
    pin_first_by: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)

    @property
    def is_coordinator(self) -> bool:
        return self.role == COORDINATOR


class PinFailure(Base):
    """One wrong PIN from ``contact_id``: the sliding window of the PIN lockout."""

    __tablename__ = "pin_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_pin_failures_contact_created", "contact_id", "created_at"),)
