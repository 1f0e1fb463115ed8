"""The quick count against the database: store sample designs, load the live results of the
sampled stations and hand them to the pure functions in ``design`` and ``estimate``.

Which station results count (the rule, also stated in every document under ``rule``):
``reported`` and ``verified`` results are current and enter the estimate with the values the
tally counts for them (a flagged station still counts, as in the tally); ``disputed`` ones are
left out of the estimate and listed under ``disputed`` until someone settles them; ``missing``
ones are not in yet. The estimate therefore treats reported sampled stations as a random
subsample of their stratum (weights N_h / reported n_h); the coverage warnings say when that
is too early to trust.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..importers import ImportError_
from ..models import Candidate, SampleDesign, SampleStation, SampleStratum, Station, StationResult
from ..regions import KEY_LENGTHS, normalise_code, to_code, to_key
from ..services import tally as tally_service
from ..services.station_results import DISPUTED, REPORTED, VERIFIED
from . import design, estimate

#: ``--strata`` choices and the region level each one stratifies by.
STRATA_LEVELS = {"province": 1, "kabkota": 2, "kecamatan": 3}
COUNTED = (REPORTED, VERIFIED)
RULE = "reported and verified station results count; disputed ones are left out and listed"


class NoDesign(LookupError):
    """There is no active sample design yet."""


UnknownRegion = tally_service.UnknownRegion


@dataclass(frozen=True)
class Drawn:
    design: SampleDesign
    strata: int
    frame: int


def _store(
    session: Session,
    *,
    level: str,
    region: str | None,
    seed: int | None,
    strata: dict[str, tuple[int, int, float]],
    members: Iterable[tuple[str, str]],
    now: datetime | None,
) -> SampleDesign:
    session.execute(update(SampleDesign).where(SampleDesign.active.is_(True)).values(active=False))
    record = SampleDesign(
        strata_level=level,
        region_code=region,
        seed=seed,
        size=sum(n for _, n, _ in strata.values()),
        active=True,
        **({"created_at": now} if now else {}),
    )
    session.add(record)
    session.flush()
    ids: dict[str, int] = {}
    for code, (population, sample, registered) in sorted(strata.items()):
        row = SampleStratum(
            design_id=record.id, code=code, population=population, sample_size=sample, registered=registered
        )
        session.add(row)
        session.flush()
        ids[code] = row.id
    rows = [{"design_id": record.id, "station_id": s, "stratum_id": ids[code]} for s, code in members]
    if rows:
        session.execute(SampleStation.__table__.insert(), rows)
    return record


def draw_sample(
    session: Session,
    *,
    size: int,
    strata: str,
    seed: int,
    region: str | None = None,
    now: datetime | None = None,
) -> Drawn:
    """Draw and store a new active design from the stations (in ``region`` when given).

    Raises ValueError when the frame cannot give ``size`` stations (too few, or fewer than
    two per stratum), UnknownRegion for an unknown region.
    """
    if strata not in STRATA_LEVELS:
        raise ValueError(f"strata must be one of {', '.join(STRATA_LEVELS)}")
    info = tally_service.region_info(session, region)
    code, key = info.code or None, info.key
    width = KEY_LENGTHS[STRATA_LEVELS[strata]]
    if len(key) > width:
        raise ValueError(f"region {code} is smaller than a {strata} stratum")
    query = select(Station.id, Station.registered_voters).order_by(Station.id)
    if key:
        query = query.where(Station.id.like(f"{key}%"))
    frame = session.execute(query).all()
    if not frame:
        raise ValueError("no stations in the frame (import stations first)")
    ids = np.array([row[0] for row in frame])
    labels = np.array([to_code(station[:width]) for station in ids])
    voters = np.array([np.nan if row[1] is None else row[1] for row in frame], dtype=float)
    chosen, summary = design.draw_frame(labels, voters, size, seed)
    record = _store(
        session,
        level=strata,
        region=code,
        seed=seed,
        strata=summary,
        members=zip(ids[chosen].tolist(), labels[chosen].tolist(), strict=True),
        now=now,
    )
    return Drawn(record, len(summary), len(frame))


def read_sample_csv(stream: TextIO) -> list[tuple[str, str]]:
    """``station_id,stratum`` rows (station IDs dotted or not); ImportError_ names bad lines."""
    reader = csv.DictReader(stream)
    header = [h.strip().lower() for h in reader.fieldnames or []]
    if "station_id" not in header or "stratum" not in header:
        raise ImportError_(["line 1: need the columns station_id,stratum"])
    reader.fieldnames = header
    rows, problems = [], []
    for row in reader:
        station = (row.get("station_id") or "").strip().replace(".", "").replace("/", "")
        stratum = (row.get("stratum") or "").strip()
        if not (station.isdigit() and len(station) == 13):
            problems.append(f"line {reader.line_num}: not a 13-digit station ID: {station!r}")
        elif not stratum:
            problems.append(f"line {reader.line_num}: stratum is empty")
        else:
            rows.append((station, stratum))
    if problems:
        raise ImportError_(problems)
    return rows


def import_sample(session: Session, rows: list[tuple[str, str]], now: datetime | None = None) -> Drawn:
    """Store an external design. Each stratum must be a region code (any level): its N_h is
    the number of stations in that region here, and every station must lie inside it."""
    problems: list[str] = []
    if not rows:
        raise ImportError_(["the file has no stations"])
    seen: set[str] = set()
    strata: dict[str, list[str]] = {}
    for station, stratum in rows:
        try:
            code = normalise_code(stratum)
        except ValueError:
            problems.append(f"{station}: stratum {stratum!r} is not a region code")
            continue
        if station in seen:
            problems.append(f"{station}: listed twice")
        seen.add(station)
        if not station.startswith(to_key(code)):
            problems.append(f"{station}: not inside stratum {code}")
        strata.setdefault(code, []).append(station)
    known = set(session.scalars(select(Station.id).where(Station.id.in_(seen)))) if seen else set()
    problems += [f"{s}: unknown station" for s in sorted(seen - known)]
    summary: dict[str, tuple[int, int, float]] = {}
    for code, members in sorted(strata.items()):
        voters = [
            v
            for (v,) in session.execute(
                select(Station.registered_voters).where(Station.id.like(f"{to_key(code)}%"))
            )
        ]
        known_voters = [v for v in voters if v is not None]
        mean = sum(known_voters) / len(known_voters) if known_voters else 0.0
        total = float(sum(known_voters) + mean * (len(voters) - len(known_voters)))
        summary[code] = (len(voters), len(members), total)
        if len(members) > len(voters):
            problems.append(f"stratum {code}: {len(members)} sampled but only {len(voters)} stations")
    if problems:
        raise ImportError_(problems)
    record = _store(
        session,
        level="import",
        region=None,
        seed=None,
        strata=summary,
        members=[(s, normalise_code(c)) for s, c in rows],
        now=now,
    )
    return Drawn(record, len(summary), sum(N for N, _, _ in summary.values()))


def active_design(session: Session) -> SampleDesign | None:
    return session.scalars(
        select(SampleDesign).where(SampleDesign.active.is_(True)).order_by(SampleDesign.id.desc())
    ).first()


def _ratio(r: estimate.Ratio, digits: int = 6) -> dict[str, Any]:
    return {
        "value": round(r.value, digits),
        "se": round(r.se, digits),
        "margin95": round(r.margin95, digits),
        "ci95": [round(v, digits) for v in r.ci95],
        "ci99": [round(v, digits) for v in r.ci99],
    }


def quickcount(
    session: Session, region: str | None = None, *, as_of: datetime | None = None
) -> dict[str, Any]:
    """The quick-count document for ``region`` (the whole design when empty).

    ``as_of`` replays the night: only station results last changed by then count (the demo
    uses it to show the estimate converging). Raises NoDesign without an active design and
    UnknownRegion for an unknown region.
    """
    info = tally_service.region_info(session, region)  # raises tally.UnknownRegion
    record = active_design(session)
    if record is None:
        raise NoDesign()
    key = info.key
    rows = session.execute(
        select(
            SampleStation.station_id,
            SampleStratum.code,
            StationResult.status,
            StationResult.votes,
            StationResult.invalid,
            Station.registered_voters,
            StationResult.updated_at,
        )
        .join(SampleStratum, SampleStratum.id == SampleStation.stratum_id)
        .join(Station, Station.id == SampleStation.station_id)
        .outerjoin(StationResult, StationResult.station_id == SampleStation.station_id)
        .where(SampleStation.design_id == record.id)
        .order_by(SampleStation.station_id)
    ).all()
    inside_strata = sorted({code for sid, code, *_ in rows if sid.startswith(key)})
    strata = {
        s.code: s
        for s in session.scalars(
            select(SampleStratum).where(
                SampleStratum.design_id == record.id, SampleStratum.code.in_(inside_strata)
            )
        )
    }
    codes = sorted(strata)
    position = {code: i for i, code in enumerate(codes)}
    rows = [row for row in rows if row[1] in position]
    candidates = list(session.scalars(select(Candidate.code).order_by(Candidate.code)))
    candidates += sorted({c for row in rows for c in (row[3] or {})} - set(candidates))
    votes = np.array([[(row[3] or {}).get(c, 0) for c in candidates] for row in rows], dtype=float)
    result = estimate.quick_count(
        codes,
        [strata[c].population for c in codes],
        [strata[c].registered for c in codes],
        [position[row[1]] for row in rows],
        [row[2] in COUNTED and (as_of is None or row[6] <= as_of) for row in rows],
        votes.reshape(len(rows), len(candidates)),
        [row[4] or 0 for row in rows],
        [np.nan if row[5] is None else row[5] for row in rows],
        disputed=[row[2] == DISPUTED and (as_of is None or row[6] <= as_of) for row in rows],
        domain=[row[0].startswith(key) for row in rows],
    )
    cov = result.coverage
    warnings = []
    if result.shares is None:
        warnings.append("too_few_reports")
    if cov.low:
        warnings.append("low_coverage")
    if cov.uneven:
        warnings.append("uneven_coverage")
    collapsed = result.shares.collapsed if result.shares else []
    if collapsed:
        warnings.append("collapsed_strata")
    shares = (
        {c: _ratio(r) for c, r in zip(candidates, result.shares.ratios, strict=True)} if result.shares else {}
    )
    document: dict[str, Any] = {
        "region": {"code": info.code, "name": info.name, "level": info.level},
        "design": {
            "id": record.id,
            "strata_level": record.strata_level,
            "region_code": record.region_code,
            "seed": record.seed,
            "size": record.size,
            "created_at": record.created_at.isoformat(),
        },
        "rule": RULE,
        "stations": {
            "sample": cov.sampled,
            "counted": cov.reported,
            "disputed": sum(s.disputed for s in result.strata),
            "coverage": round(cov.rate, 4),
        },
        "estimate": shares,
        "turnout": _ratio(result.turnout.ratios[0]) if result.turnout and result.shares else None,
        "warnings": warnings,
        "collapsed_strata": collapsed,
        "lagging_strata": cov.lagging,
        "strata": [
            {
                "code": s.code,
                "population": s.population,
                "sampled": s.sampled,
                "reported": s.reported,
                "disputed": s.disputed,
                "coverage": round(s.reported / s.sampled, 4) if s.sampled else None,
            }
            for s in result.strata
        ],
        "disputed": [
            {"station": row[0], "stratum": row[1]}
            for row in rows
            if row[2] == DISPUTED and row[0].startswith(key) and (as_of is None or row[6] <= as_of)
        ],
    }
    document["comparison"] = compare(session, info, shares)
    return document


def _shares(votes: dict[str, int]) -> dict[str, float]:
    valid = sum(votes.values())
    return {c: round(v / valid, 6) for c, v in votes.items()} if valid else {}


def _against(estimated: dict[str, Any], shares: dict[str, float]) -> dict[str, Any]:
    return {
        code: {
            "share": share,
            "difference": round(estimated[code]["value"] - share, 6),
            "inside95": estimated[code]["ci95"][0] <= share <= estimated[code]["ci95"][1],
        }
        for code, share in shares.items()
        if code in estimated
    }


def compare(session: Session, info: tally_service.RegionInfo, estimated: dict[str, Any]) -> dict[str, Any]:
    """The estimate against the full tally (all stations, from the counters) and, when the
    official results table has rows for the region, against the official count."""
    full = tally_service.tally(session, info.code or None)
    counts = full["stations"]
    comparison: dict[str, Any] = {
        "tally": {
            "stations_reported": counts["reported"],
            "stations_total": counts["total"],
            "complete": counts["total"] > 0 and counts["reported"] == counts["total"],
            "candidates": _against(estimated, _shares(full["votes"])),
        },
        "official": None,
    }
    try:
        from ..models import OfficialResult
    except ImportError:  # the official-results feature is not installed
        return comparison
    query = select(OfficialResult.votes)
    if info.key:
        query = query.where(OfficialResult.station_id.like(f"{info.key}%"))
    totals: dict[str, int] = {}
    stations = 0
    for (votes,) in session.execute(query):
        stations += 1
        for code, count in (votes or {}).items():
            totals[code] = totals.get(code, 0) + int(count)
    if stations:
        comparison["official"] = {
            "stations": stations,
            "stations_total": counts["total"],
            "candidates": _against(estimated, _shares(totals)),
        }
    return comparison


def format_quickcount(document: dict[str, Any]) -> str:
    """The plain-text output of ``smsgate quickcount``."""
    region, stations = document["region"], document["stations"]
    place = f"{region['name']}{' ' + region['code'] if region['code'] else ''}"
    lines = [
        f"quick count {place}: design {document['design']['id']} ({document['design']['strata_level']}), "
        f"{stations['counted']}/{stations['sample']} sampled stations in "
        f"({100 * stations['coverage']:.0f}%), "
        f"{stations['disputed']} disputed",
        f"rule: {document['rule']}",
    ]
    if document["estimate"]:
        lines.append("candidate   share     +-95%   95% interval        99% interval")
        for code, r in document["estimate"].items():
            lines.append(
                f"  {code:<8} {100 * r['value']:6.2f}%  {100 * r['margin95']:5.2f}   "
                f"[{100 * r['ci95'][0]:5.2f}, {100 * r['ci95'][1]:5.2f}]    "
                f"[{100 * r['ci99'][0]:5.2f}, {100 * r['ci99'][1]:5.2f}]"
            )
        if document["turnout"]:
            t = document["turnout"]
            lines.append(f"  turnout  {100 * t['value']:6.2f}%  {100 * t['margin95']:5.2f}")
    else:
        lines.append("no estimate yet: fewer than two sampled stations have reported")
    for warning in document["warnings"]:
        lines.append(f"WARNING: {WARNING_TEXT[warning]}")
    for group in document["collapsed_strata"]:
        lines.append(f"  collapsed strata: {' + '.join(group)}")
    if document["lagging_strata"]:
        lines.append(f"  lagging strata: {', '.join(document['lagging_strata'])}")
    lines.append("stratum            N    n  in  disputed")
    for s in document["strata"]:
        lines.append(
            f"  {s['code']:<14} {s['population']:>5} {s['sampled']:>4} {s['reported']:>3} {s['disputed']:>4}"
        )
    if document["disputed"]:
        lines.append("disputed (left out): " + " ".join(d["station"] for d in document["disputed"]))
    comparison = document["comparison"]
    for name in ("tally", "official"):
        part = comparison[name]
        if part is None:
            lines.append("official results: none imported for this region")
            continue
        label = (
            f"full tally ({part['stations_reported']}/{part['stations_total']} stations"
            f"{', complete' if part.get('complete') else ''})"
            if name == "tally"
            else f"official results ({part['stations']}/{part['stations_total']} stations)"
        )
        cells = [
            f"{code} {100 * c['share']:.2f}% (estimate {100 * c['difference']:+.2f}"
            f"{'' if c['inside95'] else ', OUTSIDE its 95% interval'})"
            for code, c in part["candidates"].items()
        ]
        lines.append(f"{label}: {'  '.join(cells) if cells else '-'}")
    return "\n".join(lines)


WARNING_TEXT = {
    "too_few_reports": "fewer than two sampled stations in this region have reported",
    "low_coverage": f"under {100 * estimate.LOW_COVERAGE:.0f}% of the sample has reported",
    "uneven_coverage": "uneven coverage: strata with 10%+ of the voters are under half the overall rate",
    "collapsed_strata": "strata with fewer than two reports were merged with a neighbour",
}
