"""Who is often alone: volunteers whose reports end up outvoted by a station's settled majority.

A report is *outvoted* while it counts and differs from its station's ``verified`` reading
(``station_results.refresh`` keeps ``Report.outvoted``). Per volunteer we count their current
reports at verified stations (``settled``) and how many of those are outvoted; ``rate`` is the
share. An honest misread is corrected by a resend (the dissenter is told), so what stays
outvoted is carelessness or a false count. ``deviation`` is how many votes their outvoted
readings move in total, and ``favours`` the candidate those readings add the most votes to:
a careless volunteer scatters single digits, a hostile one keeps favouring the same candidate.

The list is read from the partial index of outvoted reports, by station prefix, so it only
touches the few percent of reports that dissent, never the ones that agreed.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import Contact, Report, StationResult
from . import consensus, station_results

LIMIT = 100
#: A volunteer is listed when at least this share of their settled reports is outvoted.
MIN_RATE = 0.5
#: Contacts examined per listing: the ones with the most outvoted reports in the region.
CANDIDATES = 1000


def _current() -> Any:
    return Report.superseded_at.is_(None) & Report.cancelled_at.is_(None)


def outliers(session: Session, key: str, limit: int = LIMIT, min_rate: float = MIN_RATE) -> dict[str, Any]:
    """Volunteers reporting for stations under ``key`` who are often outvoted, worst first.

    ``{"outvoted_volunteers": n, "volunteers": [{"phone", "name", "region_code", "tps",
    "settled", "outvoted", "rate", "deviation", "favours", "stations"}]}``.
    """
    in_region = Report.station_id.like(f"{key}%")
    # ``outvoted`` as the partial index states it (``WHERE outvoted``): PostgreSQL cannot tell
    # that ``outvoted IS true`` implies it and scanned every report (about 1 s nationally).
    outvoted = Report.outvoted & _current() & in_region & Report.by_coordinator.is_(False)
    total = session.scalar(select(func.count(func.distinct(Report.contact_id))).where(outvoted)) or 0
    top = list(
        session.execute(
            select(Report.contact_id, func.count())
            .where(outvoted)
            .group_by(Report.contact_id)
            .order_by(func.count().desc(), Report.contact_id)
            .limit(CANDIDATES)
        )
    )
    ids = [contact_id for contact_id, _ in top]
    rows = session.execute(
        select(Report, StationResult.votes)
        .join(StationResult, StationResult.station_id == Report.station_id)
        .where(
            Report.contact_id.in_(ids),
            _current(),
            in_region,
            StationResult.status == station_results.VERIFIED,
        )
    ).all()
    contacts = {c.id: c for c in session.scalars(select(Contact).where(Contact.id.in_(ids)))}
    stats: dict[int, dict[str, Any]] = {}
    for report, counted in rows:
        entry = stats.setdefault(
            report.contact_id,
            {"settled": 0, "outvoted": 0, "deviation": 0, "gains": Counter(), "stations": []},
        )
        entry["settled"] += 1
        if report.outvoted and counted is not None:
            entry["outvoted"] += 1
            entry["deviation"] += consensus.distance(counted, report.votes)
            for code, votes in report.votes.items():
                if votes > counted.get(code, 0):
                    entry["gains"][code] += votes - counted.get(code, 0)
            entry["stations"].append(report.station_id)
    listed = []
    for contact_id, entry in stats.items():
        contact = contacts.get(contact_id)
        if contact is None or not entry["outvoted"]:
            continue
        rate = entry["outvoted"] / entry["settled"]
        if rate < min_rate:
            continue
        gains: Counter[str] = entry["gains"]
        favours = gains.most_common(1)[0][0] if gains else None
        listed.append(
            {
                "phone": contact.phone,
                "name": contact.name,
                "region_code": contact.region_code,
                "tps": contact.tps,
                "settled": entry["settled"],
                "outvoted": entry["outvoted"],
                "rate": round(rate, 3),
                "deviation": entry["deviation"],
                "favours": favours,
                "stations": sorted(entry["stations"]),
            }
        )
    listed.sort(key=lambda v: (-v["outvoted"], -v["rate"], -v["deviation"], v["phone"]))
    return {"outvoted_volunteers": total, "volunteers": listed[:limit]}


def record(session: Session, contact: Contact) -> dict[str, int]:
    """One volunteer's own figures: settled current reports and how many are outvoted."""
    rows = session.execute(
        select(Report.outvoted)
        .join(StationResult, StationResult.station_id == Report.station_id)
        .where(Report.contact_id == contact.id, _current(), StationResult.status == station_results.VERIFIED)
    ).all()
    return {"settled": len(rows), "outvoted": sum(1 for (outvoted,) in rows if outvoted)}
