"""SIARAN/BROADCAST and YA/YES: a coordinator texts every volunteer in their scope.

Sending to thousands of phones costs real money, so ``SIARAN <text>`` only answers with the
number of volunteers it would reach and a code; ``YA <code>`` from the same coordinator before
the code expires queues one outbound SMS per active volunteer, through the provider each
volunteer last wrote through. A code works once.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

import grammar

from ..models import VOLUNTEER, Broadcast, Contact
from ..replies import text as template
from ..services import outbound
from ..services.refs import unique_ref
from ..sms import SMS_LIMIT, to_gsm7
from .context import Context, Outcome

CODE_LENGTH = 4


def audience(session: Session, coordinator: Contact) -> list[Contact]:
    """Active volunteers whose desa lies in the coordinator's scope (everyone for national)."""
    query = select(Contact).where(Contact.role == VOLUNTEER, Contact.active.is_(True))
    scope = coordinator.region_code
    if scope is not None:
        query = query.where(or_(Contact.region_code == scope, Contact.region_code.startswith(scope + ".")))
    return list(session.scalars(query.order_by(Contact.id)))


def _room(name: str) -> int:
    """Characters left for the coordinator's text in the longer of the two languages."""
    return SMS_LIMIT - max(
        len(to_gsm7(template("broadcast_text", lang, name=name, text=""))) for lang in ("id", "en")
    )


def broadcast(ctx: Context, message: grammar.Broadcast) -> Outcome:
    assert ctx.contact is not None
    body = to_gsm7(" ".join(message.text.split()))
    room = _room(ctx.contact.name)
    if len(body) > room:
        return ctx.fail("broadcast_too_long", length=len(body), limit=room)
    count = len(audience(ctx.session, ctx.contact))
    if count == 0:
        return ctx.fail("broadcast_none")
    minutes = ctx.settings.broadcast_ttl_minutes
    pending = Broadcast(
        code=unique_ref(ctx.session, Broadcast.code, CODE_LENGTH),
        contact_id=ctx.contact.id,
        text=body,
        recipients=count,
        created_at=ctx.now,
        expires_at=ctx.now + timedelta(minutes=minutes),
    )
    ctx.session.add(pending)
    return ctx.ok("broadcast_pending", count=count, code=pending.code, minutes=f"{minutes:g}")


def confirm(ctx: Context, message: grammar.Confirm) -> Outcome:
    assert ctx.contact is not None
    code = message.code.upper()
    pending = ctx.session.scalars(
        select(Broadcast)
        .where(
            Broadcast.code == code,
            Broadcast.contact_id == ctx.contact.id,
            Broadcast.confirmed_at.is_(None),
            Broadcast.expires_at > ctx.now,
        )
        .with_for_update()
    ).one_or_none()
    if pending is None:
        return ctx.fail("confirm_unknown", code=code)
    pending.confirmed_at = ctx.now
    volunteers = audience(ctx.session, ctx.contact)
    routes = outbound.last_routes(ctx.session, (v.phone for v in volunteers))
    for volunteer in volunteers:
        provider, via = routes.get(volunteer.phone, (ctx.settings.default_provider, ""))
        outbound.enqueue(
            ctx.session,
            to=volunteer.phone,
            text=to_gsm7(
                template("broadcast_text", volunteer.lang, name=ctx.contact.name, text=pending.text)
            ),
            provider=provider,
            via=via,
            kind="broadcast",
            now=ctx.now,
            contact_id=volunteer.id,
            broadcast_id=pending.id,
        )
    pending.recipients = len(volunteers)
    return ctx.ok("broadcast_sent", code=code, count=len(volunteers))
