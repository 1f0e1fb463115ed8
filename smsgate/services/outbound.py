"""Queueing SMS that do not ride in a webhook's HTTP response, inside the caller's transaction.

``enqueue`` adds rows inside the caller's transaction (a reply is queued in the same
transaction that logs its inbound message, so an acknowledged message's reply is never lost).
Sending them is the worker's business (``smsgate/outgoing/sms_job.py``); nothing here imports
the worker. ``record_delivery`` notes a provider's delivery report on the rows it concerns.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..inbound import DeliveryReport
from ..models import Contact, InboundMessage, OutboundMessage
from ..models.outbound import BULK, COORDINATOR_REPLY, STRANGER_REPLY, VOLUNTEER_REPLY


def enqueue(
    session: Session,
    *,
    to: str,
    text: str,
    provider: str,
    kind: str,
    now: datetime,
    contact_id: int | None = None,
    inbound_message_id: int | None = None,
    broadcast_id: int | None = None,
    via: str = "",
    priority: int = BULK,
) -> OutboundMessage:
    """Queue one SMS. ``via`` is the device the contact wrote to (the reply goes back through
    it while it is up); ``priority`` orders the queue (``models.outbound.PRIORITIES``)."""
    row = OutboundMessage(
        to_number=to,
        text=text,
        provider=provider,
        via=via[:64],
        priority=priority,
        kind=kind,
        status="queued",
        attempts=0,
        next_attempt_at=now,
        contact_id=contact_id,
        inbound_message_id=inbound_message_id,
        broadcast_id=broadcast_id,
        created_at=now,
    )
    session.add(row)
    return row


def last_routes(session: Session, phones: Iterable[str]) -> dict[str, tuple[str, str]]:
    """The provider and device each number last wrote to us through, for numbers that ever did:
    a broadcast or reminder then comes from the number the volunteer knows."""
    phones = list(dict.fromkeys(phones))
    found: dict[str, tuple[str, str]] = {}
    for start in range(0, len(phones), 500):
        chunk = phones[start : start + 500]
        latest = (
            select(func.max(InboundMessage.id).label("id"))
            .where(InboundMessage.from_number.in_(chunk))
            .group_by(InboundMessage.from_number)
            .subquery()
        )
        rows = session.execute(
            select(InboundMessage.from_number, InboundMessage.provider, InboundMessage.device).join(
                latest, InboundMessage.id == latest.c.id
            )
        )
        found.update({phone: (provider, device or "") for phone, provider, device in rows})
    return found


def record_delivery(session: Session, report: DeliveryReport) -> int:
    """Note a provider's delivery report on the rows it sent under that id; returns how many."""
    rows = list(
        session.scalars(
            select(OutboundMessage).where(
                OutboundMessage.provider == report.provider,
                OutboundMessage.provider_message_id == report.provider_message_id,
            )
        )
    )
    for row in rows:
        row.provider_status = report.status[:32]
        if report.failed:
            row.status = "failed"
            row.last_error = report.error[:300]
    return len(rows)


def queue_reply(session: Session, inbound: InboundMessage, reply: str, now: datetime) -> OutboundMessage:
    """Queue the reply to ``inbound`` back through the provider and device it came from."""
    session.flush()
    return enqueue(
        session,
        to=inbound.from_number,
        text=reply,
        provider=inbound.provider,
        kind="reply",
        now=now,
        contact_id=inbound.contact_id,
        inbound_message_id=inbound.id,
        via=inbound.device or "",
        priority=reply_priority(session, inbound.contact_id),
    )


def reply_priority(session: Session, contact_id: int | None) -> int:
    """Volunteers' confirmations first, coordinators' answers next, strangers last."""
    contact = session.get(Contact, contact_id) if contact_id is not None else None
    if contact is None or not contact.active:
        return STRANGER_REPLY
    return COORDINATOR_REPLY if contact.is_coordinator else VOLUNTEER_REPLY
