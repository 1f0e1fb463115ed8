"""A count from the C.Hasil form: resolve the station, check the sender, store, echo back.

A report that disagrees with a station's settled majority is still stored and counted as
dissent; its sender is told so in the same reply, so an honest misread is corrected at the
source (``services/consensus.py``). A coordinator's report that contradicts the volunteers'
agreement is stored but not counted until someone confirms it on the dashboard
(``overridden``); the coordinator is told so.
"""

from __future__ import annotations

import grammar

from ..services import reports, station_results, stations
from .context import Context, Outcome
from .formatting import extras_text, votes_text


def report(ctx: Context, message: grammar.Report) -> Outcome:
    assert ctx.contact is not None
    station = stations.find(ctx.session, message.station, ctx.contact, lock=True)
    if isinstance(station, stations.Refusal):
        return ctx.fail_with(station.key, station.params, example=True)
    refusal = stations.authorise(ctx.contact, station)
    if refusal is not None:
        return ctx.fail_with(refusal.key, refusal.params)
    stored = reports.store(
        ctx.session,
        contact=ctx.contact,
        station=station,
        parsed=message,
        inbound=ctx.inbound,
        now=ctx.now,
        settings=ctx.settings,
    )
    params = {
        "station": stations.label(station, ctx.contact),
        "votes": votes_text(message.votes),
        "extras": extras_text(message.valid, message.invalid, message.registered),
        "ref": stored.report.ref,
    }
    if stored.result.status == station_results.OVERRIDDEN and stored.result.report_id != stored.report.id:
        agreeing = station_results.agreeing_volunteers(ctx.session, stored.result)
        return ctx.ok("accepted_overridden", outcome="flagged", count=agreeing, **params)
    if stored.report.outvoted:  # an established majority reads the form differently
        agreeing = stored.result.report_count - stored.result.dissent
        hint = ctx.ok("dissent_hint").reply or ""
        outcome = "flagged" if stored.over_capacity else "accepted"
        return ctx.ok("accepted_dissent", hint, outcome=outcome, count=agreeing, **params)
    if stored.over_capacity:
        return ctx.ok(
            "accepted_flagged", outcome="flagged", total=stored.total, registered=stored.registered, **params
        )
    hint = ctx.ok("accepted_hint", ref=stored.report.ref).reply or ""
    return ctx.ok("accepted", hint, outcome="accepted", **params)
