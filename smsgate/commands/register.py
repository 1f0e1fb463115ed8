"""DAFTAR / REG: self-registration with an invite code; works for unregistered numbers."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import grammar

from ..models import COORDINATOR, Region
from ..phones import InvalidPhone, normalise_phone
from ..services import invites
from .context import Context, Outcome


def register(ctx: Context, message: grammar.Register) -> Outcome:
    try:
        phone = normalise_phone(ctx.inbound.from_number)
    except InvalidPhone:
        return ctx.fail("register_bad_phone", outcome="refused")
    result = invites.register(ctx.session, phone=phone, code=message.code, name=message.name, now=ctx.now)
    if isinstance(result, invites.Failure):
        params = dict(result.params)
        if "until" in params:  # in the zone the volunteer lives in (SMSGATE_TIMEZONE), e.g. 14/02 19:05 WITA
            local = params["until"].astimezone(ZoneInfo(ctx.settings.timezone))  # type: ignore[attr-defined]
            params["until"] = f"{local:%d/%m %H:%M} {local.tzname()}"
        return ctx.fail_with(result.key, params)
    contact = result.contact
    ctx.inbound.contact_id = contact.id
    region = ctx.session.get(Region, contact.region_code) if contact.region_code else None
    place = region.name if region else (contact.region_code or "Indonesia")
    if contact.tps is not None:
        place += f" TPS {contact.tps:03d}"
    key = "registered_coordinator" if contact.role == COORDINATOR else "registered"
    return ctx.ok(key, name=contact.name, place=place)
