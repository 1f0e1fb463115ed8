"""``smsgate sample draw|import|size`` and ``smsgate quickcount`` (attached in smsgate/cli.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..cli_env import current_env


def _shares(text: str | None) -> tuple[float, ...]:
    if not text:
        return (0.5,)
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise click.BadParameter(f"not a list of numbers: {text!r}", param_hint="--shares") from None
    if any(v > 1 for v in values):  # given in percent
        values = tuple(v / 100 for v in values)
    return values


@click.group()
def sample() -> None:
    """The quick count's stratified sample of stations."""


@sample.command("draw")
@click.option("--size", required=True, type=click.IntRange(min=2), help="Stations to draw.")
@click.option(
    "--strata",
    type=click.Choice(["kabkota", "province", "kecamatan"]),
    default="kabkota",
    show_default=True,
    help="Region level that forms the strata.",
)
@click.option(
    "--seed", required=True, type=int, help="Random seed: the same frame and seed give the same sample."
)
@click.option("--region", help="Draw only from this region (a Kemendagri code).")
def sample_draw(size: int, strata: str, seed: int, region: str | None) -> None:
    """Draw a stratified sample (allocation proportional to registered voters, systematic
    selection in a random order within each stratum) and make it the active design."""
    from ..services.tally import UnknownRegion
    from .service import draw_sample

    env = current_env()
    try:
        with env.database.begin() as session:
            drawn = draw_sample(session, size=size, strata=strata, seed=seed, region=region)
            design_id, frame, count = drawn.design.id, drawn.frame, drawn.strata
    except UnknownRegion:
        raise click.ClickException(f"unknown region {region!r}") from None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"design {design_id}: {size} of {frame} stations in {count} {strata} strata, seed {seed} (active)"
    )


@sample.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def sample_import(file: Path) -> None:
    """Import an external design from FILE.csv (station_id,stratum; stratum a region code)."""
    from ..importers import ImportError_
    from .service import import_sample, read_sample_csv

    env = current_env()
    try:
        with file.open(newline="", encoding="utf-8-sig") as stream:
            rows = read_sample_csv(stream)
        with env.database.begin() as session:
            drawn = import_sample(session, rows)
            design_id, frame, count = drawn.design.id, drawn.frame, drawn.strata
    except ImportError_ as exc:
        for problem in exc.problems[:50]:
            click.echo(f"{file}: {problem}", err=True)
        click.echo("nothing imported", err=True)
        sys.exit(1)
    click.echo(f"design {design_id}: {len(rows)} stations in {count} strata of {frame} stations (active)")


@sample.command("size")
@click.option("--moe", required=True, type=float, help="Margin of error wanted, e.g. 0.01 for +-1 point.")
@click.option("--confidence", default=0.95, show_default=True, type=float)
@click.option("--shares", help="Expected shares, e.g. 0.25,0.58,0.17 (default 0.5, the worst case).")
@click.option(
    "--deff",
    help="Design effect: a number, or auto to measure it on the imported previous results; "
    "default 1 + (m - 1) * icc.",
)
@click.option("--icc", default=0.2, show_default=True, type=float, help="Intra-station correlation.")
@click.option(
    "--voters",
    type=float,
    help="Valid votes per station; default 80% of the mean registered voters in the database (or 200).",
)
@click.option("--lead", is_flag=True, help="Size for the lead of the top two (+-moe on the margin).")
@click.option(
    "--response",
    default=1.0,
    show_default=True,
    type=float,
    help="Expected share of the sample that reports in time, e.g. 0.8.",
)
@click.option(
    "--strata",
    type=click.Choice(["kabkota", "province", "kecamatan"]),
    default="kabkota",
    show_default=True,
    help="Strata of the planned design (for --deff auto).",
)
def sample_size(
    moe: float,
    confidence: float,
    shares: str | None,
    deff: str | None,
    icc: float,
    voters: float | None,
    lead: bool,
    response: float,
    strata: str,
) -> None:
    """Recommend how many stations to sample for a margin of error on the shares or the lead."""
    from sqlalchemy import func, select

    from ..models import Station
    from .design import recommend_size

    frame = None
    url = current_env().settings.database_url
    exists = not (url.startswith("sqlite") and not Path(url.split("///", 1)[-1]).exists())
    if voters is None:
        try:
            if not exists:
                raise FileNotFoundError(url)  # do not create an empty database just to look
            with current_env().database.read() as session:
                frame, mean = session.execute(
                    select(func.count(Station.id), func.avg(Station.registered_voters))
                ).one()
        except Exception:  # no database yet: the recommendation does not need one
            frame, mean = None, None
        voters = 0.8 * float(mean) if mean else 200.0
    measured, stations_measured = None, 0
    effect: float | None = None
    if deff == "auto":
        if not exists:
            raise click.ClickException("--deff auto needs a database with previous results")
        measured, stations_measured = _measured_deff(strata, lead)
        effect = measured
    elif deff is not None:
        try:
            effect = float(deff)
        except ValueError:
            raise click.BadParameter(f"a number or auto, not {deff!r}", param_hint="--deff") from None
    try:
        advice = recommend_size(
            moe,
            confidence,
            _shares(shares),
            voters_per_station=voters,
            deff=effect,
            icc=icc,
            frame=frame or None,
            lead=lead,
            response=response,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"recommended sample: {advice.stations} stations")
    what = (
        f"lead of the top two, per-voter variance p1+p2-(p1-p2)^2 = {advice.variance:.3f}"
        if lead
        else f"p={advice.worst_share:.2f}"
    )
    click.echo(
        f"  = {advice.voters_equivalent} voters by simple random sampling (z={advice.z:.3f}, "
        f"{what}, +-{moe:g}) x design effect {advice.design_effect:.1f} "
        f"/ {voters:.0f} valid votes per station"
        + (
            f", finite-population corrected for {frame} stations ({advice.without_fpc} without)"
            if frame
            else ""
        )
    )
    if measured is not None:
        click.echo(
            f"  design effect measured on the previous results of {stations_measured} stations "
            f"({strata} strata, proportional allocation)"
        )
    if response < 1:
        click.echo(
            f"  {advice.before_response} stations if all report, / {response:g} expected to report in time"
        )


def _measured_deff(strata: str, lead: bool) -> tuple[float, int]:
    """The design effect measured on the imported previous results (``design.measured_design_effect``)."""
    import numpy as np
    from sqlalchemy import select

    from ..models import Candidate, PreviousResult
    from ..regions import KEY_LENGTHS
    from .design import measured_design_effect
    from .service import STRATA_LEVELS

    width = KEY_LENGTHS[STRATA_LEVELS[strata]]
    with current_env().database.read() as session:
        rows = session.execute(
            select(PreviousResult.station_id, PreviousResult.votes, PreviousResult.valid)
        ).all()
        codes = list(session.scalars(select(Candidate.code).order_by(Candidate.code)))
    if len(rows) < 2:
        raise click.ClickException("--deff auto needs previous results: run smsgate import previous FILE.csv")
    codes += sorted({c for _, votes, _ in rows for c in votes} - set(codes))
    votes = np.array([[float(v.get(c, 0)) for c in codes] for _, v, _ in rows])
    valid = np.array([float(row[2]) for row in rows])
    labels = np.array([row[0][:width] for row in rows])
    try:
        return measured_design_effect(labels, votes, valid, lead=lead), len(rows)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


@click.command("quickcount")
@click.argument("region", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the same JSON as GET /api/quickcount.")
def quickcount(region: str | None, as_json: bool) -> None:
    """The quick-count estimate for REGION (default: the whole sample)."""
    from ..services.tally import UnknownRegion
    from .service import NoDesign, format_quickcount
    from .service import quickcount as compute

    with current_env().database.read() as session:
        try:
            document = compute(session, region)
        except UnknownRegion:
            raise click.ClickException(f"unknown region {region!r}") from None
        except NoDesign:
            raise click.ClickException("no sample design yet: run smsgate sample draw") from None
    if as_json:
        click.echo(json.dumps(document, indent=2))
        return
    click.echo(format_quickcount(document))
