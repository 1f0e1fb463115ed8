"""Invite codes and self-registration (``DAFTAR <code> <name>``).

Codes are 8 characters from the unambiguous alphabet of ``refs`` (31^8, about 8.5e11
codes). Every wrong, expired or used-up code a number sends is logged in
``registration_failures``; ``MAX_FAILURES`` of them within ``WINDOW`` lock the number out
until the oldest of them leaves the window. The state is in the database, so any number of
app servers share it; on PostgreSQL a transaction-scoped advisory lock per phone makes
concurrent attempts from one number queue (SQLite's ``BEGIN IMMEDIATE`` already does).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import COORDINATOR, VOLUNTEER, Contact, Invite, Region, RegistrationFailure, Station
from ..regions import level_of, normalise_code, station_id
from .pins import FIRST_PIN_HOURS
from .refs import unique_ref

CODE_LENGTH = 8
MAX_FAILURES = 5
WINDOW = timedelta(hours=1)


class InviteError(ValueError):
    """Bad ``invite create`` arguments (unknown region, TPS not in the desa, ...)."""


@dataclass(frozen=True)
class Registered:
    contact: Contact
    invite: Invite


@dataclass(frozen=True)
class Failure:
    """Why a registration did not happen: a reply key and its parameters."""

    key: str
    params: dict[str, object]


def create(
    session: Session,
    *,
    region: str,
    count: int,
    now: datetime,
    tps: int | None = None,
    uses: int = 1,
    expires_hours: float = 72,
    role: str = VOLUNTEER,
) -> list[Invite]:
    """``count`` new invite codes for a desa (and TPS) or, for coordinators, a scope."""
    if count < 1 or uses < 1 or expires_hours <= 0:
        raise InviteError("count, uses and expiry must be positive")
    try:
        code = normalise_code(region)
    except ValueError:
        raise InviteError(f"not a region code: {region!r}") from None
    if session.get(Region, code) is None:
        raise InviteError(f"unknown region {code}")
    if role == VOLUNTEER and level_of(code) != 4:
        raise InviteError("a volunteer invite needs a desa/kelurahan code (e.g. 63.71.01.1001)")
    if role == COORDINATOR and tps is not None:
        raise InviteError("a coordinator invite has no TPS")
    if tps is not None and session.get(Station, station_id(code, tps)) is None:
        raise InviteError(f"no TPS {tps:03d} in {code}")
    invites = []
    for _ in range(count):
        invite = Invite(
            code=unique_ref(session, Invite.code, CODE_LENGTH),
            region_code=code,
            tps=tps,
            role=role,
            max_uses=uses,
            uses=0,
            expires_at=now + timedelta(hours=expires_hours),
            created_at=now,
        )
        session.add(invite)
        session.flush()
        invites.append(invite)
    return invites


def locked_until(session: Session, phone: str, now: datetime) -> datetime | None:
    """When ``phone`` may try again, or None when it is not locked out."""
    recent = list(
        session.scalars(
            select(RegistrationFailure.created_at)
            .where(RegistrationFailure.phone == phone, RegistrationFailure.created_at > now - WINDOW)
            .order_by(RegistrationFailure.created_at.desc())
            .limit(MAX_FAILURES)
        )
    )
    if len(recent) < MAX_FAILURES:
        return None
    return recent[-1] + WINDOW


def failures_left(session: Session, phone: str, now: datetime) -> int:
    used = session.scalar(
        select(func.count(RegistrationFailure.id)).where(
            RegistrationFailure.phone == phone, RegistrationFailure.created_at > now - WINDOW
        )
    )
    return max(0, MAX_FAILURES - int(used or 0))


def serialise_phone(session: Session, phone: str) -> None:
    """Make concurrent registrations from one phone run one after the other (PostgreSQL)."""
    if session.get_bind().dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(f"daftar:{phone}".encode()).digest()[:8], "big", signed=True)
        session.execute(select(func.pg_advisory_xact_lock(key)))


def register(session: Session, *, phone: str, code: str, name: str, now: datetime) -> Registered | Failure:
    """Register ``phone`` with invite ``code``; a failure is logged against the phone."""
    serialise_phone(session, phone)
    existing = session.scalars(select(Contact).where(Contact.phone == phone)).one_or_none()
    if existing is not None:
        if not existing.active:
            return Failure("register_inactive", {})
        place = existing.region_code or "Indonesia"
        if existing.tps is not None:
            place += f" TPS {existing.tps:03d}"
        return Failure("register_already", {"name": existing.name or "-", "place": place})
    until = locked_until(session, phone, now)
    if until is not None:
        return Failure("register_locked", {"until": until})
    code = code.strip().upper()[:40]
    invite = session.scalars(select(Invite).where(Invite.code == code).with_for_update()).one_or_none()
    if invite is None or invite.expires_at <= now or invite.uses >= invite.max_uses:
        session.add(RegistrationFailure(phone=phone, code=code, created_at=now))
        session.flush()
        shown = code[:12]
        if invite is None:
            return Failure("invite_unknown", {"code": shown, "left": failures_left(session, phone, now)})
        if invite.expires_at <= now:
            return Failure("invite_expired", {"code": shown})
        return Failure("invite_used_up", {"code": shown})
    invite.uses += 1
    contact = Contact(
        phone=phone,
        name=" ".join(name.split())[:200],
        role=invite.role,
        region_code=invite.region_code,
        tps=invite.tps,
        lang="id",
        active=True,
        created_at=now,
        # A coordinator chooses the first PIN by SMS (PIN <new>) within 24 hours (services.pins).
        pin_first_by=now + timedelta(hours=FIRST_PIN_HOURS) if invite.role == COORDINATOR else None,
    )
    session.add(contact)
    session.flush()
    return Registered(contact, invite)
