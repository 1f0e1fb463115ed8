"""Recompute the region counters from the per-station results and report any drift.

The counters (``RegionCounter``) are moved by deltas on every report change; this module is
the independent check: it derives what every counter of a region and of each region under it
should be from ``stations`` and ``station_results`` alone (one GROUP BY per desa in SQL, rolled
up to kecamatan, kabupaten, province and country in Python) and compares. ``repair`` adds the
differences to shard 0 of exactly the drifted counters; counters are sums, so a correction
computed from one snapshot stays right even while reports keep arriving.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session

from ..models import Candidate, RegionCounter, Station, StationResult
from ..regions import KEY_LENGTHS
from . import counters
from .official import station_range
from .station_results import DISPUTED, MISSING, OVERRIDDEN, VERIFIED
from .tally import region_info

Counts = dict[str, dict[str, int]]  # region key -> counter name -> value


@dataclass(frozen=True)
class Drift:
    region_key: str
    name: str
    counted: int
    expected: int

    @property
    def delta(self) -> int:
        return self.expected - self.counted


def snapshot(session: Session) -> None:
    """On PostgreSQL, read everything that follows in one snapshot (call first in a new session)."""
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def _codes(session: Session, region_key: str) -> list[str]:
    """Candidate codes: the contest's and any that already have a counter in the region."""
    codes = set(session.scalars(select(Candidate.code)))
    names = select(RegionCounter.name).where(RegionCounter.name.startswith("v:")).distinct()
    if region_key:
        names = names.where(RegionCounter.region_key == region_key)
    codes.update(name[2:] for name in session.scalars(names))
    return sorted(codes)


def expected(session: Session, region_key: str = "") -> Counts:
    """What every counter of ``region_key`` and of each region under it should hold."""
    codes = _codes(session, region_key)
    counted = StationResult.status != MISSING
    desa = func.substr(Station.id, 1, KEY_LENGTHS[4]).label("desa")

    def when(condition: ColumnElement[bool], value: ColumnElement[int] | int = 1) -> ColumnElement[int]:
        return func.coalesce(func.sum(case((condition, value), else_=0)), 0)

    columns = {
        "stations": func.count(Station.id),
        "reported": when(counted),
        VERIFIED: when(StationResult.status == VERIFIED),
        DISPUTED: when(StationResult.status == DISPUTED),
        OVERRIDDEN: when(StationResult.status == OVERRIDDEN),
        "flagged": when(StationResult.flagged.is_(True)),
        "valid": when(counted, func.coalesce(StationResult.valid, 0)),
        "invalid": when(counted, func.coalesce(StationResult.invalid, 0)),
    }
    for code in codes:
        columns[f"v:{code}"] = when(counted, func.coalesce(StationResult.votes[code].as_integer(), 0))
    low, high = station_range(region_key)
    query = (
        select(desa, *(column.label(f"c{i}") for i, column in enumerate(columns.values())))
        .select_from(Station)
        .outerjoin(StationResult, StationResult.station_id == Station.id)
        .where(Station.id >= low, Station.id <= high)
        .group_by(desa)
    )
    names = list(columns)
    levels = [n for n in (0, *KEY_LENGTHS.values()) if n >= len(region_key)]
    totals: Counts = defaultdict(lambda: defaultdict(int))
    for row in session.execute(query):
        key, values = row[0], row[1:]
        for length in levels:
            bucket = totals[key[:length]]
            for name, value in zip(names, values, strict=True):
                if value:
                    bucket[name] += int(value)
    totals.setdefault(region_key, defaultdict(int))
    return {key: dict(values) for key, values in totals.items()}


def recompute(session: Session, code: str | None = None) -> dict[str, int]:
    """The counters one region (a Kemendagri code, or the country) should hold right now."""
    key = region_info(session, code).key
    return expected(session, key).get(key, {})


def counted(session: Session, region_key: str = "") -> Counts:
    """What the counters of ``region_key`` and the regions under it hold (shards added up)."""
    query = select(RegionCounter.region_key, RegionCounter.name, func.sum(RegionCounter.value)).group_by(
        RegionCounter.region_key, RegionCounter.name
    )
    if region_key:
        query = query.where(RegionCounter.region_key.startswith(region_key, autoescape=True))
    totals: Counts = defaultdict(dict)
    for key, name, value in session.execute(query):
        if value:
            totals[key][name] = int(value)
    return dict(totals)


def verify(session: Session, code: str | None = None) -> list[Drift]:
    """Every counter in the region's subtree that differs from a recomputation (empty: no drift).

    For a consistent answer while reports arrive, call ``snapshot(session)`` first.
    """
    key = region_info(session, code).key
    want, have = expected(session, key), counted(session, key)
    drift = []
    for region_key in sorted(want.keys() | have.keys()):
        should, is_ = want.get(region_key, {}), have.get(region_key, {})
        for name in sorted(should.keys() | is_.keys()):
            if should.get(name, 0) != is_.get(name, 0):
                drift.append(Drift(region_key, name, is_.get(name, 0), should.get(name, 0)))
    return drift


def repair(session: Session, drift: list[Drift]) -> None:
    """Correct exactly the drifted counters (shard 0; no ancestors, each was checked itself)."""
    counters.add_exact(session, [(d.region_key, d.name, d.delta) for d in drift])
