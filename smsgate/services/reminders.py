"""``smsgate remind``: text the volunteers of stations that have not reported yet.

A volunteer assigned to a station whose result is still ``missing`` (or has no result row)
gets one reminder, through the provider they last wrote through, unless they already got one
in the last ``remind_every_hours``. Volunteers without an assigned TPS are not reminded: they
cover a whole desa and a reminder could not say which station is missing.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from ..config import Settings
from ..models import VOLUNTEER, Contact, OutboundMessage, Station, StationResult
from ..replies import render
from . import outbound, tally
from .stations import label

UnknownRegion = tally.UnknownRegion


def due(
    session: Session, settings: Settings, region: str | None, now: datetime
) -> list[tuple[Contact, Station]]:
    """Volunteers to remind now, with their station."""
    query = (
        select(Contact, Station)
        .join(Station, and_(Station.region_code == Contact.region_code, Station.tps == Contact.tps))
        .outerjoin(StationResult, StationResult.station_id == Station.id)
        .where(
            Contact.role == VOLUNTEER,
            Contact.active.is_(True),
            or_(StationResult.station_id.is_(None), StationResult.status == "missing"),
        )
    )
    if region:
        query = query.where(Station.id.startswith(tally.region_info(session, region).key))
    since = now - timedelta(hours=settings.remind_every_hours)
    reminded = select(OutboundMessage.contact_id).where(
        OutboundMessage.kind == "reminder",
        OutboundMessage.created_at > since,
        OutboundMessage.contact_id.is_not(None),
    )
    query = query.where(Contact.id.not_in(reminded)).order_by(Station.id, Contact.id)
    return [(contact, station) for contact, station in session.execute(query)]


def remind(
    session: Session, settings: Settings, region: str | None, now: datetime, dry_run: bool = False
) -> int:
    """Queue the reminders (unless ``dry_run``) and say how many there are."""
    targets = due(session, settings, region, now)
    if dry_run:
        return len(targets)
    routes = outbound.last_routes(session, (contact.phone for contact, _ in targets))
    for contact, station in targets:
        provider, via = routes.get(contact.phone, (settings.default_provider, ""))
        outbound.enqueue(
            session,
            to=contact.phone,
            text=render("reminder", contact.lang, station=label(station, contact)),
            provider=provider,
            via=via,
            kind="reminder",
            now=now,
            contact_id=contact.id,
        )
    return len(targets)
