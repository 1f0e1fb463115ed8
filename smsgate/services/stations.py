"""Turning what a sender typed into a station, and checking they may report for it."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

import grammar

from ..models import Contact, Station
from ..regions import to_key
from . import station_lock


@dataclass(frozen=True)
class Refusal:
    """Why a station reference cannot be used: a reply-catalogue key and its parameters."""

    key: str
    params: dict[str, object] = field(default_factory=dict)


def label(station: Station, contact: Contact | None) -> str:
    """``TPS 012`` inside the sender's own desa, the full station ID elsewhere."""
    if contact is not None and contact.region_code == station.region_code:
        return f"TPS {station.tps:03d}"
    return f"TPS {station.id}"


def in_scope(contact: Contact, key: str) -> bool:
    """Whether a coordinator's scope covers the region or station with undotted ``key``."""
    return contact.region_code is None or key.startswith(to_key(contact.region_code))


def find(
    session: Session, ref: grammar.StationRef | None, contact: Contact, *, lock: bool = False
) -> Station | Refusal:
    """The station a message is about, resolved against the sender's desa and assignment.

    ``lock``: the caller is about to write the station's reports; the station is read in the
    statement that locks its result row (``station_lock.lock_with_station``), one round trip
    for both. The lock is then held even if the sender turns out not to be allowed to report
    there, which only makes that refusal wait its turn."""
    if ref is None:
        if contact.tps is not None and contact.region_code is not None:
            ref = grammar.StationRef(tps=contact.tps)
        else:
            return Refusal("station_required")
    desa = ref.desa
    if desa is None:
        if contact.region_code is None or contact.region_code.count(".") != 3:
            return Refusal("desa_required")
        desa = to_key(contact.region_code)
    station_id = f"{desa}{ref.tps:03d}"
    station = (
        station_lock.lock_with_station(session, station_id) if lock else session.get(Station, station_id)
    )
    if station is None:
        shown = f"{ref.tps:03d}" if ref.desa is None else f"{desa}{ref.tps:03d}"
        return Refusal("unknown_station", {"station": shown})
    return station


def authorise(contact: Contact, station: Station) -> Refusal | None:
    """Volunteers report only for their desa (and their TPS when assigned to one);
    coordinators for any station in their scope."""
    if contact.is_coordinator:
        if not in_scope(contact, station.id):
            return Refusal("out_of_scope", {"target": f"TPS {station.id}"})
        return None
    if contact.region_code != station.region_code:
        return Refusal("other_desa", {"station": station.id, "desa": contact.region_code or "-"})
    if contact.tps is not None and contact.tps != station.tps:
        return Refusal("other_station", {"assigned": f"{contact.tps:03d}", "tps": f"{station.tps:03d}"})
    return None
