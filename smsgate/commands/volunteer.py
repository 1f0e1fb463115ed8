"""CEK and BATAL: a volunteer checks or withdraws what they sent."""

from __future__ import annotations

from sqlalchemy import select

import grammar

from ..models import Report, Station, StationResult
from ..replies import status_word
from ..services import reports, stations
from . import Context, Outcome, handles
from .formatting import extras_text, votes_text


@handles(grammar.Check, name="CEK")
def check(ctx: Context, message: grammar.Check) -> Outcome:
    assert ctx.contact is not None
    if message.station is None:
        latest = reports.latest_of(ctx.session, ctx.contact)
        if latest is None:
            station = stations.find(ctx.session, None, ctx.contact)
        else:
            station = ctx.session.get(Station, latest.station_id)
    else:
        station = stations.find(ctx.session, message.station, ctx.contact)
    if isinstance(station, stations.Refusal):
        if station.key == "station_required":
            return ctx.fail("cancel_none")
        return ctx.fail(station.key, **station.params)
    assert station is not None
    refusal = stations.authorise(ctx.contact, station)
    if refusal is not None:
        return ctx.fail(refusal.key, **refusal.params)
    label = stations.label(station, ctx.contact)
    mine = reports.latest_of(ctx.session, ctx.contact, station.id)
    if mine is None:
        return ctx.ok("check_none", station=label)
    result = ctx.session.get(StationResult, station.id)
    return ctx.ok(
        "check",
        station=label,
        votes=votes_text(mine.votes),
        extras=extras_text(mine.valid, mine.invalid, mine.registered),
        ref=mine.ref,
        status=status_word(result.status if result else "reported", ctx.lang),
        count=result.report_count if result else 1,
    )


@handles(grammar.Cancel, name="BATAL", needs_pin=True)
def cancel(ctx: Context, message: grammar.Cancel) -> Outcome:
    assert ctx.contact is not None
    # Picked without a lock: ``reports.cancel`` re-checks under the station's lock, and if a
    # concurrent message got there first, the choice is made again (as if the two had queued).
    for _ in range(3):
        if message.ref is None:
            target = reports.latest_of(ctx.session, ctx.contact)
            if target is None:
                return ctx.fail("cancel_none")
        else:
            target = ctx.session.scalars(
                select(Report).where(Report.ref == message.ref.upper(), Report.contact_id == ctx.contact.id)
            ).first()
            if target is None or not target.current:
                return ctx.fail("cancel_unknown", ref=message.ref.upper())
        if reports.cancel(ctx.session, target, ctx.inbound, ctx.now, rule=ctx.settings.consensus) is not None:
            break
    else:
        return ctx.fail("cancel_none")
    station = ctx.session.get(Station, target.station_id)
    assert station is not None
    return ctx.ok("cancelled", ref=target.ref, station=stations.label(station, ctx.contact))
