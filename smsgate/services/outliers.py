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

from sqlalchemy import func, select, true
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

    Plain columns throughout, and only the outvoted reports come back as rows: the settled
    reports are counted by the database. Building a ``Report`` for every report of the 1,000
    candidates (tens of thousands nationally) took seconds.
    """
    in_region = Report.station_id.like(f"{key}%") if key else true()
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
    settled_here = (
        Report.contact_id.in_(ids)
        & _current()
        & in_region
        & (StationResult.status == station_results.VERIFIED)
    )
    settled: dict[int, int] = {
        contact_id: count
        for contact_id, count in session.execute(
            select(Report.contact_id, func.count())
            .join(StationResult, StationResult.station_id == Report.station_id)
            .where(settled_here)
            .group_by(Report.contact_id)
        )
    }
    stats: dict[int, dict[str, Any]] = {}
    for contact_id, station_id, votes, counted in session.execute(
        select(Report.contact_id, Report.station_id, Report.votes, StationResult.votes)
        .join(StationResult, StationResult.station_id == Report.station_id)
        .where(settled_here, Report.outvoted)
    ):
        entry = stats.setdefault(
            contact_id, {"outvoted": 0, "deviation": 0, "gains": Counter(), "stations": []}
        )
        if counted is None:
            continue
        entry["outvoted"] += 1
        entry["deviation"] += consensus.distance(counted, votes)
        for code, n in votes.items():
            if n > counted.get(code, 0):
                entry["gains"][code] += n - counted.get(code, 0)
        entry["stations"].append(station_id)
    people = {
        id_: (phone, name, region_code, tps)
        for id_, phone, name, region_code, tps in session.execute(
            select(Contact.id, Contact.phone, Contact.name, Contact.region_code, Contact.tps).where(
                Contact.id.in_(list(stats))
            )
        )
    }
    listed = []
    for contact_id, entry in stats.items():
        person = people.get(contact_id)
        if person is None or not entry["outvoted"] or not settled.get(contact_id):
            continue
        rate = entry["outvoted"] / settled[contact_id]
        if rate < min_rate:
            continue
        gains: Counter[str] = entry["gains"]
        favours = gains.most_common(1)[0][0] if gains else None
        phone, name, region_code, tps = person
        listed.append(
            {
                "phone": phone,
                "name": name,
                "region_code": region_code,
                "tps": tps,
                "settled": settled[contact_id],
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
