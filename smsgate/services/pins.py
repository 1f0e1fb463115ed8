"""Coordinator PINs: the second factor behind a caller ID that can be spoofed or a phone that gets lost.

A coordinator's commands that change data or reach many people (a report, ``BATAL``, ``SIARAN``,
``YA``) must end with ``PIN <digits>``. The PIN is stored hashed (werkzeug scrypt), never in
clear: it is printed once when ``smsgate import volunteers`` or ``smsgate pin set`` creates it,
or chosen by the coordinator by SMS (``PIN <new>`` within 24 hours of registering with an
invite, ``PIN <old> <new>`` afterwards). Wrong PINs count per contact like wrong invite codes:
``MAX_FAILURES`` within ``WINDOW`` lock the PIN until the oldest of them is ``WINDOW`` old; an
admin's ``smsgate pin set`` clears the count. Read-only queries never need the PIN, so a locked
coordinator still reads totals, and the stored text of every message has the PIN masked.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from grammar.masking import mask as mask
from grammar.masking import masked as masked

from ..models import Contact, PinFailure

MAX_FAILURES = 5
WINDOW = timedelta(hours=1)
#: How long a coordinator who registered with an invite may choose the first PIN by SMS.
FIRST_PIN_HOURS = 24
#: Length of the PINs smsgate makes up (import, ``smsgate pin set``); people may choose 4 to 6 digits.
GENERATED_DIGITS = 6
#: scrypt with a lighter work factor than passwords get: a PIN is checked on every coordinator
#: SMS that needs it, and its few digits, not the hash, are what limits an offline guesser.
HASH_METHOD = "scrypt:4096:8:1"
_PIN = re.compile(r"[0-9]{4,6}")


def valid(pin: str) -> bool:
    return _PIN.fullmatch(pin) is not None


def generate() -> str:
    return "".join(secrets.choice("0123456789") for _ in range(GENERATED_DIGITS))


def set_pin(session: Session, contact: Contact, pin: str, now: datetime) -> None:
    """Store ``pin`` hashed and forget earlier wrong attempts (the lockout starts afresh)."""
    if not valid(pin):
        raise ValueError("a PIN is 4 to 6 digits")
    contact.pin_hash = generate_password_hash(pin, method=HASH_METHOD)
    contact.pin_set_at = now
    contact.pin_first_by = None
    session.execute(delete(PinFailure).where(PinFailure.contact_id == contact.id))


def locked_until(session: Session, contact: Contact, now: datetime) -> datetime | None:
    recent = list(
        session.scalars(
            select(PinFailure.created_at)
            .where(PinFailure.contact_id == contact.id, PinFailure.created_at > now - WINDOW)
            .order_by(PinFailure.created_at.desc())
            .limit(MAX_FAILURES)
        )
    )
    return recent[-1] + WINDOW if len(recent) >= MAX_FAILURES else None


def failures_left(session: Session, contact: Contact, now: datetime) -> int:
    used = session.scalar(
        select(func.count(PinFailure.id)).where(
            PinFailure.contact_id == contact.id, PinFailure.created_at > now - WINDOW
        )
    )
    return max(0, MAX_FAILURES - int(used or 0))


@dataclass(frozen=True)
class Refusal:
    """Why a PIN was not accepted: a reply key and its parameters."""

    key: str
    params: dict[str, object]


def verify(session: Session, contact: Contact, pin: str | None, now: datetime) -> Refusal | None:
    """``None`` when ``pin`` is the contact's PIN; otherwise why not (a wrong one is counted)."""
    if contact.pin_hash is None:
        if contact.pin_first_by is not None and contact.pin_first_by > now:
            return Refusal("pin_choose_first", {})
        return Refusal("pin_not_set", {})
    until = locked_until(session, contact, now)
    if until is not None:
        return Refusal("pin_locked", {"until": until})
    if pin is None:
        return Refusal("pin_required", {})
    if check_password_hash(contact.pin_hash, pin):
        return None
    session.add(PinFailure(contact_id=contact.id, created_at=now))
    session.flush()
    left = failures_left(session, contact, now)
    if left == 0:
        return Refusal("pin_locked", {"until": locked_until(session, contact, now)})
    return Refusal("pin_wrong", {"left": left})


def choose(session: Session, contact: Contact, new: str, old: str | None, now: datetime) -> Refusal | None:
    """``PIN <new>`` (the first PIN, within 24 h of an invite registration) or ``PIN <old> <new>``."""
    if old is None:
        if contact.pin_hash is not None:
            return Refusal("pin_needs_old", {})
        if contact.pin_first_by is None or contact.pin_first_by <= now:
            return Refusal("pin_not_set", {})
    else:
        refusal = verify(session, contact, old, now)
        if refusal is not None:
            return refusal
    set_pin(session, contact, new, now)
    return None
