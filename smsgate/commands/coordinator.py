"""REKAP / TOTAL, BELUM / MISSING and STATUS: coordinators steering from a basic phone.

Everything is answered within the coordinator's scope (``services.scope``); nothing is read
for a region or station outside it. REKAP reads the sharded region counters, BELUM the
partial index of missing stations: neither scans reports.
"""

from __future__ import annotations

from sqlalchemy import select

import grammar

from ..models import Flag, Report, Station, StationResult
from ..replies import status_word, text
from ..services import incidents, scope, stations, tally
from .context import Context, Outcome
from .formatting import extras_text, votes_text

#: How many missing station IDs BELUM lists (14 characters each with the space).
MISSING_SHOWN = 5


def resolve_region(ctx: Context, ref: grammar.RegionRef | None, command: str) -> tally.RegionInfo | Outcome:
    """The region a coordinator named, within their scope, or the reply that says why not."""
    assert ctx.contact is not None
    found = scope.resolve(ctx.session, ctx.contact, ref)
    if isinstance(found, scope.Ambiguous):
        return ctx.fail(
            "ambiguous_region",
            region=found.name,
            count=len(found.regions),
            choices=scope.choices_text(found.regions),
        )
    if isinstance(found, stations.Refusal):
        return ctx.fail_with(found.key, {"command": command, **found.params})
    return found


def totals(ctx: Context, message: grammar.Totals) -> Outcome:
    region = resolve_region(ctx, message.region, "REKAP")
    if isinstance(region, Outcome):
        return region
    document = tally.tally(ctx.session, region.code or None)
    valid = document["valid"] or 0
    votes = " ".join(
        f"{code}={count}" + (f" ({100 * count / valid:.1f}%)" if valid else "")
        for code, count in document["votes"].items()
    )
    counts = document["stations"]
    return ctx.ok(
        "totals",
        region=region.name,
        reported=counts["reported"],
        total=counts["total"],
        votes=votes,
        disputed=counts["disputed"] + counts["overridden"],  # "Beda": both wait for a decision
        flagged=counts["flagged"],
    )


def missing(ctx: Context, message: grammar.Missing) -> Outcome:
    region = resolve_region(ctx, message.region, "BELUM")
    if isinstance(region, Outcome):
        return region
    counts = tally.tally(ctx.session, region.code or None)["stations"]
    left = counts["total"] - counts["reported"]
    if left <= 0:
        return ctx.ok("missing_none", region=region.name, total=counts["total"])
    first = ctx.session.scalars(
        select(StationResult.station_id)
        .where(StationResult.status == "missing", StationResult.station_id.like(f"{scope.key_of(region)}%"))
        .order_by(StationResult.station_id)
        .limit(MISSING_SHOWN)
    )
    shown = " ".join(first) + (" .." if left > MISSING_SHOWN else "")
    return ctx.ok("missing_list", region=region.name, missing=left, total=counts["total"], stations=shown)


def status(ctx: Context, message: grammar.Status) -> Outcome:
    assert ctx.contact is not None
    station_id = message.station.station_id
    if station_id is None:
        return ctx.fail("desa_required")
    station = ctx.session.get(Station, station_id)
    if station is None:
        return ctx.fail("unknown_station", station=station_id)
    refusal = stations.authorise(ctx.contact, station)
    if refusal is not None:
        return ctx.fail_with(refusal.key, refusal.params)
    result = ctx.session.get(StationResult, station.id)
    kinds = sorted(
        set(
            ctx.session.scalars(
                select(Flag.kind).where(Flag.station_id == station.id, Flag.resolved_at.is_(None))
            )
        )
    )
    extras = []
    if kinds:
        extras.append(text("status_flags", ctx.lang, kinds=",".join(kinds)))
    seen = incidents.count_at(ctx.session, station.id)
    if seen:
        extras.append(text("status_incidents", ctx.lang, count=seen))
    if result is None or result.status == "missing" or not result.votes:
        return ctx.ok("station_status_missing", *extras, station=station.id)
    # The result stores 0 invalid ballots when the counted report gave none; the reply shows
    # TS only when the volunteer sent it, as their own confirmation did.
    counted = ctx.session.get(Report, result.report_id) if result.report_id is not None else None
    invalid = counted.invalid if counted is not None else result.invalid
    return ctx.ok(
        "station_status",
        *extras,
        station=station.id,
        status=status_word(result.status, ctx.lang),
        votes=votes_text(result.votes),
        extras=extras_text(None, invalid, None),
        count=result.report_count,
    )
