"""Totals for a region at any level, read from the sharded counters (no report scan)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Candidate, Contact, Flag, Region, Report, Station, StationResult
from ..regions import LEVEL_NAMES, level_of, normalise_code, to_key
from . import counters

#: The station counters ``/api/tally`` reports besides ``total`` (README, HTTP).
STATION_COUNTS = ("reported", "verified", "disputed", "overridden", "flagged")


class UnknownRegion(LookupError):
    pass


@dataclass(frozen=True)
class RegionInfo:
    code: str
    name: str
    level: str

    @property
    def key(self) -> str:
        return to_key(self.code)


COUNTRY = RegionInfo(code="", name="Indonesia", level="country")


def region_info(session: Session, code: str | None) -> RegionInfo:
    if not code:
        return COUNTRY
    try:
        dotted = normalise_code(code)
    except ValueError as exc:
        raise UnknownRegion(code) from exc
    region = session.get(Region, dotted)
    if region is None:
        raise UnknownRegion(code)
    return RegionInfo(code=region.code, name=region.name, level=LEVEL_NAMES[level_of(region.code)])


def tally(session: Session, code: str | None = None) -> dict[str, Any]:
    """The ``/api/tally`` document (README, HTTP) for a region (the whole country when ``code`` is empty)."""
    region = region_info(session, code)
    values = counters.read(session, region.key)
    codes = list(session.scalars(select(Candidate.code).order_by(Candidate.code)))
    codes += sorted({name[2:] for name in values if name.startswith("v:")} - set(codes))
    return {
        "region": {"code": region.code, "name": region.name, "level": region.level},
        "stations": {"total": values.get("stations", 0)}
        | {name: values.get(name, 0) for name in STATION_COUNTS},
        "votes": {c: values.get(f"v:{c}", 0) for c in codes},
        "valid": values.get("valid", 0),
        "invalid": values.get("invalid", 0),
    }


def station_document(session: Session, station_id: str) -> dict[str, Any] | None:
    """The ``/api/stations/<id>`` document (README, HTTP), or None for an unknown station."""
    station = session.get(Station, station_id)
    if station is None:
        return None
    result = session.get(StationResult, station_id)
    flags = list(
        session.scalars(select(Flag).where(Flag.station_id == station_id).order_by(Flag.created_at, Flag.id))
    )
    reports = list(
        session.scalars(
            select(Report).where(Report.station_id == station_id).order_by(Report.created_at, Report.id)
        )
    )
    phones = dict(
        session.execute(
            select(Contact.id, Contact.phone)
            .join(Report, Report.contact_id == Contact.id)
            .where(Report.station_id == station_id)
        ).all()
    )
    counted = (result.votes if result else None) or {}
    refs = {r.id: r.ref for r in reports}
    flags_of: dict[int, list[str]] = {}
    for f in flags:
        if f.report_id is not None and f.resolved_at is None:
            flags_of.setdefault(f.report_id, []).append(f.kind)
    return {
        "id": station.id,
        "region_code": station.region_code,
        "tps": station.tps,
        "registered_voters": station.registered_voters,
        "status": result.status if result else "missing",
        "votes": counted,
        "invalid": result.invalid if result else None,
        "flagged": bool(result and result.flagged),
        "report_count": result.report_count if result else 0,
        "dissent": result.dissent if result else 0,
        "dissent_open": result.dissent_open if result else 0,
        "impact": result.impact if result else 0,
        "contested": bool(result and result.contested),
        "flags": [
            {
                "kind": f.kind,
                "reason": f.reason,
                "report": refs.get(f.report_id) if f.report_id is not None else None,
                "created_at": f.created_at.isoformat(),
                "resolved": f.resolved_at is not None,
            }
            for f in flags
        ],
        "reports": [
            {
                "ref": r.ref,
                "from": phones.get(r.contact_id, ""),
                "votes": r.votes,
                "valid": r.valid,
                "invalid": r.invalid,
                "received_at": r.created_at.isoformat(),
                "superseded": r.superseded_at is not None,
                "cancelled": r.cancelled_at is not None,
                "by_coordinator": r.by_coordinator,
                "dissent": r.current and bool(counted) and dict(r.votes) != counted,
                "outvoted": r.current and r.outvoted,
                "flags": flags_of.get(r.id, []),
            }
            for r in reports
        ],
    }
