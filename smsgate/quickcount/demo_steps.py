"""The quick count in ``smsgate demo``: a sample drawn before the night, then the estimate as
it converged during the night (replayed by the time each sampled station's result last
changed) beside the full tally of every station that reported."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import func, select

from ..models import Candidate, SampleStation, Station, StationResult
from ..regions import to_key
from ..simulate import station_count
from . import service

if TYPE_CHECKING:  # the demo lists these steps; they only take its state
    from ..demo import Demo

CHECKPOINTS = (0.25, 0.5, 0.75, 1.0)


def draw(demo: Demo) -> None:
    """A sample of a tenth of the stations (at most 400), by kabupaten/kota (kecamatan in a kota)."""
    region = demo.options.region
    with demo.db.begin() as session:
        frame = (
            session.scalar(select(func.count(Station.id)).where(Station.id.like(f"{to_key(region)}%"))) or 0
        )
        size = min(400, max(frame // 10, 2))
        strata = "kecamatan" if len(to_key(region)) >= 4 else "kabkota"
        drawn = service.draw_sample(session, size=size, strata=strata, seed=demo.options.seed, region=region)
        demo.echo(
            f"  design {drawn.design.id}: {size} of {drawn.frame} stations in {drawn.strata} {strata} "
            f"strata (proportional to registered voters, seed {demo.options.seed})"
        )


def converge(demo: Demo) -> None:
    region = demo.options.region
    with demo.db.read() as session:
        times = session.execute(
            select(func.min(StationResult.updated_at), func.max(StationResult.updated_at))
            .join(SampleStation, SampleStation.station_id == StationResult.station_id)
            .where(StationResult.status != "missing")
        ).one()
        if times[0] is None:
            demo.echo("  no sampled station reported during the night")
            return
        start, end = times
        for fraction in CHECKPOINTS:
            moment = start + (end - start) * fraction
            document = service.quickcount(session, region, as_of=moment)
            counts = document["stations"]
            shares = "  ".join(
                f"{code} {100 * r['value']:5.1f}"
                + ("" if r["margin95"] is None else f" +-{100 * r['margin95']:.1f}")
                for code, r in document["estimate"].items()
            )
            warnings = ", ".join(document["warnings"])
            called = f"  {document['call']}" if document["estimate"] else ""
            demo.echo(
                f"  {moment:%H:%M:%S} sample {counts['counted']:>4}/{counts['sample']}  "
                f"{shares or 'no estimate yet'}{called}{'  [' + warnings + ']' if warnings else ''}"
            )
        document = service.quickcount(session, region)
    tally = document["comparison"]["tally"]
    cells = "  ".join(
        f"{code} {100 * c['share']:5.1f} ({WHERE[c['inside95']]})" for code, c in tally["candidates"].items()
    )
    demo.echo(f"  full tally, {tally['stations_reported']:,}/{tally['stations_total']:,} stations: {cells}")
    truth, stations = simulated_truth(demo)
    estimate = document["estimate"]
    cells = "  ".join(
        f"{code} {100 * share:5.1f} ({WHERE[inside(estimate[code]['ci95'], share)]})"
        for code, share in truth.items()
        if code in estimate
    )
    demo.echo(f"  simulated truth, all {stations:,} stations:  {cells}")


WHERE = {True: "inside 95%", False: "OUTSIDE 95%", None: "indicative, no interval"}


def inside(interval: list[float] | None, value: float) -> bool | None:
    return None if interval is None else interval[0] <= value <= interval[1]


def simulated_truth(demo: Demo) -> tuple[dict[str, float], int]:
    """Each candidate's share of valid votes over every station of the region, as the
    simulator generated them (reported during the night or not)."""
    with demo.db.read() as session:
        candidates = tuple(session.scalars(select(Candidate.code).order_by(Candidate.code)))
        rows = session.execute(
            select(Station.region_code, Station.tps, Station.registered_voters).where(
                Station.id.like(f"{to_key(demo.options.region)}%")
            )
        ).all()
    totals = dict.fromkeys(candidates, 0)
    for desa, tps, registered in rows:
        for code, votes in station_count(demo.options.seed, desa, tps, candidates, registered).votes.items():
            totals[code] += votes
    valid = sum(totals.values()) or 1
    return {code: votes / valid for code, votes in totals.items()}, len(rows)
