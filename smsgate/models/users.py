"""Dashboard accounts, their failed logins, coordinators' decisions and the shared secret key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, utcnow

ADMIN = "admin"
COORDINATOR_USER = "coordinator"
USER_ROLES = (ADMIN, COORDINATOR_USER)


class User(Base):
    """A person who logs in to the dashboard.

    ``region_code`` is the scope: ``None`` means the whole country (admins only).
    ``session_generation`` is written into every session cookie at login; raising it (logout,
    a new password, ``smsgate user disable``) makes every cookie issued before unusable on every
    app server, although the cookies themselves are signed and still unexpired.
    """

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16), default=COORDINATOR_USER)
    region_code: Mapped[str | None] = mapped_column(String(16), ForeignKey("regions.code"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class LoginFailure(Base):
    """One failed login from ``ip`` for ``email`` (known or not): the sliding window of the
    per-account-and-address and per-address slow-downs."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    ip: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        Index("ix_login_failures_ip_created", "ip", "created_at"),
        Index("ix_login_failures_email_ip_created", "email", "ip", "created_at"),
    )


class StationDecision(Base):
    """A coordinator confirmed ``report_id`` as the station's result from the review queue.

    The newest decision whose report still counts makes the station ``verified`` with that
    report's values (see ``station_results.decide``).
    """

    __tablename__ = "station_decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    station_id: Mapped[str] = mapped_column(String(13), ForeignKey("stations.id"))
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_station_decisions_station_decided", "station_id", "decided_at"),)


class AppSecret(Base):
    """Secrets several app processes must agree on (the session signing key when
    ``SMSGATE_SECRET_KEY`` is unset): the first process to start writes it, the others read it."""

    __tablename__ = "app_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
