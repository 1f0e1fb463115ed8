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
from ..models import InboundMessage, OutboundMessage


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
) -> OutboundMessage:
    row = OutboundMessage(
        to_number=to,
        text=text,
        provider=provider,
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


def last_providers(session: Session, phones: Iterable[str]) -> dict[str, str]:
    """The provider each number last wrote to us through, for numbers that ever did."""
    phones = list(dict.fromkeys(phones))
    found: dict[str, str] = {}
    for start in range(0, len(phones), 500):
        chunk = phones[start : start + 500]
        latest = (
            select(func.max(InboundMessage.id).label("id"))
            .where(InboundMessage.from_number.in_(chunk))
            .group_by(InboundMessage.from_number)
            .subquery()
        )
        rows = session.execute(
            select(InboundMessage.from_number, InboundMessage.provider).join(
                latest, InboundMessage.id == latest.c.id
            )
        )
        found.update({phone: provider for phone, provider in rows})
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
    """Queue the reply to ``inbound`` back through the provider it came from."""
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
    )
