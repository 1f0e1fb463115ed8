"""CEK and BATAL: a volunteer checks or withdraws what they sent.

A coordinator may also ``BATAL <ref>`` someone else's report for a station in their scope
(with their PIN, like every coordinator command that changes data): a wrong or spoofed report
can be withdrawn from a basic phone. The report is kept, marked cancelled by that message.
"""

from __future__ import annotations

from sqlalchemy import select

import grammar

from ..models import Report, Station, StationResult
from ..replies import status_word
from ..services import reports, stations
from .context import Context, Outcome
from .formatting import extras_text, votes_text


def check(ctx: Context, message: grammar.Check) -> Outcome:
    assert ctx.contact is not None
    station: Station | stations.Refusal | None
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
        return ctx.fail_with(station.key, station.params)
    assert station is not None
    refusal = stations.authorise(ctx.contact, station)
    if refusal is not None:
        return ctx.fail_with(refusal.key, refusal.params)
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


def _cancellable(ctx: Context, ref: str) -> Report | Outcome:
    """The current report ``ref`` the sender may cancel: their own, or, for a coordinator, any
    report of a station in their scope; otherwise the refusal (another's report outside the
    scope is "outside your area", as for every coordinator command)."""
    assert ctx.contact is not None
    query = select(Report).where(Report.ref == ref)
    if not ctx.contact.is_coordinator:
        query = query.where(Report.contact_id == ctx.contact.id)
    target = ctx.session.scalars(query).first()
    if target is None or not target.current:
        return ctx.fail("cancel_unknown", ref=ref)
    if target.contact_id != ctx.contact.id:
        station = ctx.session.get(Station, target.station_id)
        assert station is not None
        refusal = stations.authorise(ctx.contact, station)
        if refusal is not None:
            return ctx.fail_with(refusal.key, refusal.params)
    return target


def cancel(ctx: Context, message: grammar.Cancel) -> Outcome:
    assert ctx.contact is not None
    # Picked without a lock: ``reports.cancel`` re-checks under the station's lock, and if a
    # concurrent message got there first, the choice is made again (as if the two had queued).
    target: Report | Outcome | None
    for _ in range(3):
        if message.ref is None:
            target = reports.latest_of(ctx.session, ctx.contact)
            if target is None:
                return ctx.fail("cancel_none")
        else:
            target = _cancellable(ctx, message.ref.upper())
            if isinstance(target, Outcome):
                return target
        assert target is not None
        done = reports.cancel(
            ctx.session, target, ctx.inbound, ctx.now, rule=ctx.settings.consensus, by=ctx.contact
        )
        if done is not None:
            break
    else:
        return ctx.fail("cancel_none")
    station = ctx.session.get(Station, target.station_id)
    assert station is not None
    return ctx.ok("cancelled", ref=target.ref, station=stations.label(station, ctx.contact))
