"""Incidents (``LAPOR <text>``): where they happened, who may see them, and the API listing.

Where: the sender's assigned station when they have one, else their desa (a volunteer not
assigned to one TPS reports for the whole desa; guessing a TPS would put the incident on the
wrong station). A coordinator's incident is placed on their scope. ``place_key`` is that
place as an undotted prefix, so "incidents in a region" is ``place_key LIKE 'key%'`` and a
coordinator sees exactly the incidents whose place lies inside their scope.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import Contact, InboundMessage, Incident, Station
from ..regions import to_key
from . import outbox
from .refs import unique_ref

MAX_TEXT = 1000


def place_of(session: Session, contact: Contact) -> tuple[str, str | None, str | None]:
    """(place_key, station_id, region_code) for an incident sent by ``contact``."""
    if not contact.is_coordinator and contact.region_code and contact.tps is not None:
        station_id = f"{to_key(contact.region_code)}{contact.tps:03d}"
        if session.get(Station, station_id) is not None:
            return station_id, station_id, contact.region_code
    if contact.region_code:
        return to_key(contact.region_code), None, contact.region_code
    return "", None, None


def record(
    session: Session, *, contact: Contact, text: str, inbound: InboundMessage, now: datetime
) -> Incident:
    """Store an incident from ``contact`` and announce it (``incident.reported``)."""
    place_key, station_id, region_code = place_of(session, contact)
    incident = Incident(
        ref=unique_ref(session, Incident.ref),
        place_key=place_key,
        station_id=station_id,
        region_code=region_code,
        contact_id=contact.id,
        inbound_message_id=inbound.id,
        text=" ".join(text.split())[:MAX_TEXT],
        created_at=now,
    )
    session.add(incident)
    session.flush()
    announce(session, incident)
    return incident


def announce(session: Session, incident: Incident) -> None:
    """Called once for every stored incident, in the transaction that stores it.

    The events outbox turns it into an ``incident.reported`` event in the same transaction.
    """
    outbox.incident_reported(session, incident, incident.created_at)


def count_at(session: Session, station_id: str) -> int:
    """Incidents at a station or its whole desa (what a coordinator sees with ``STATUS``)."""
    return int(
        session.scalar(
            select(func.count(Incident.id)).where(Incident.place_key.in_([station_id, station_id[:10]]))
        )
        or 0
    )


def listing(session: Session, region_key: str, limit: int = 500) -> list[dict[str, Any]]:
    """Incidents in a region (undotted key, ``""`` for all), newest first: ``/api/incidents``."""
    rows = session.execute(
        select(Incident, Contact.phone)
        .join(Contact, Contact.id == Incident.contact_id)
        .where(Incident.place_key.like(f"{region_key}%"))
        .order_by(Incident.created_at.desc(), Incident.id.desc())
        .limit(limit)
    )
    return [
        {
            "ref": incident.ref,
            "station_id": incident.station_id,
            "region_code": incident.region_code,
            "text": incident.text,
            "from": phone,
            "created_at": incident.created_at.isoformat(),
        }
        for incident, phone in rows
    ]
