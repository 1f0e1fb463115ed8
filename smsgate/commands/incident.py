"""LAPOR / INCIDENT: an incident at the sender's station (or desa), with a reference."""

from __future__ import annotations

import grammar

from ..models import Region
from ..regions import to_code
from ..services import incidents
from .context import Context, Outcome


def incident(ctx: Context, message: grammar.Incident) -> Outcome:
    assert ctx.contact is not None
    stored = incidents.record(
        ctx.session, contact=ctx.contact, text=message.text, inbound=ctx.inbound, now=ctx.now
    )
    if stored.station_id is not None:
        place = f"TPS {int(stored.station_id[10:]):03d}"
    elif stored.region_code:
        region = ctx.session.get(Region, stored.region_code)
        place = region.name if region else to_code(stored.place_key)
    else:
        place = "Indonesia"
    return ctx.ok("incident_recorded", place=place, ref=stored.ref)
