"""What a reviewer decides, ordered by how much the decision can move the totals.

Two lists, both for one region (an undotted key prefix) and both as plain data:

- ``queue``: stations that need a decision, ``disputed`` (no qualified majority),
  ``overridden`` (a coordinator's SMS contradicts the volunteers' agreement: ``override`` names
  who changed what, from which numbers to which) or ``flagged`` (the counted reading fails a
  check, or a coordinator cancelled someone's report), largest ``impact`` first. Each comes with its
  competing readings side by side: the votes, how many volunteers sent them, their reports
  (the newest of each reading is the one to confirm) and the open flags on them.
- ``dissent``: verified stations whose dissent no reviewer has cleared yet. A qualified
  majority stands, so they are not in the queue, but a coordinator should see a dissent that
  would change the station's winner (``contested``) and the phones that sent it.

``clear_dissent`` lets a reviewer clear a kecamatan's *minor* dissent (no dissenting reading
changes the station's winner) in one step, or any one station's dissent.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, literal_column, select, text, true
from sqlalchemy.orm import Session

from ..models import Contact, Flag, Report, StationResult
from ..models.postgres_indexes import REVIEW_QUEUE_CONDITION
from . import consensus, station_results

LIMIT = 200
QUEUE_STATUSES = (station_results.DISPUTED, station_results.OVERRIDDEN)
#: What puts a station in the queue, in the words of its partial index on PostgreSQL
#: (``ix_station_results_review_queue``, ordered as the queue is): the first page of the
#: national queue is then its first 26 index entries instead of a sort of ~80,000 stations.
IN_QUEUE = text(f"({REVIEW_QUEUE_CONDITION})")
#: Stations with open dissent, as the partial indexes on ``dissent_open`` state it (a literal 0,
#: not a bound parameter: a generic plan could not prove a parameter matches the index).
OPEN_DISSENT = StationResult.dissent_open > literal_column("0")


def _readings(
    result: StationResult, reports: Sequence[Report], phones: dict[int, str], flags: dict[int, list[Flag]]
) -> list[dict[str, Any]]:
    """The station's current readings, the counted one first, then by number of reports."""
    groups: dict[tuple[tuple[str, int], ...], list[Report]] = {}
    for report in sorted(reports, key=lambda r: (r.created_at, r.id)):
        groups.setdefault(tuple(sorted(report.votes.items())), []).append(report)
    counted = dict(result.votes or {})
    readings: list[dict[str, Any]] = []
    for key, members in groups.items():
        votes = dict(key)
        newest = members[-1]
        readings.append(
            {
                "votes": votes,
                "counted": votes == counted,
                "reports": len(members),
                "refs": [r.ref for r in members],
                "phones": [phones.get(r.contact_id, "") for r in members],
                "report_id": newest.id,
                "ref": newest.ref,
                "difference": {
                    c: votes.get(c, 0) - counted.get(c, 0) for c in sorted(set(votes) | set(counted))
                },
                "moves": consensus.distance(counted, votes),
                "flags": [
                    {"kind": f.kind, "reason": f.reason, "report": r.ref}
                    for r in members
                    for f in flags.get(r.id, [])
                ],
            }
        )
    readings.sort(key=lambda g: (not g["counted"], -g["reports"]))
    return readings


def _override(
    result: StationResult, reports: Sequence[Report], people: dict[int, tuple[str, str]]
) -> dict[str, Any] | None:
    """Who changed an ``overridden`` station's agreed numbers to what: the coordinator's newest
    current report against the counted (volunteers') reading; ``None`` for other stations."""
    if result.status != station_results.OVERRIDDEN:
        return None
    mine = [r for r in reports if r.by_coordinator]
    counted = next((r for r in reports if r.id == result.report_id), None)
    if not mine or counted is None:
        return None
    newest = max(mine, key=lambda r: (r.created_at, r.id))
    phone, name = people.get(newest.contact_id, ("", ""))
    return {
        "name": name,
        "phone": phone,
        "report_id": newest.id,
        "ref": newest.ref,
        "received_at": newest.created_at.isoformat(),
        "from": dict(counted.votes),
        "to": dict(newest.votes),
        "counted_ref": counted.ref,
    }


def _documents(session: Session, results: Sequence[StationResult]) -> list[dict[str, Any]]:
    ids = [r.station_id for r in results]
    reports: dict[str, list[Report]] = {i: [] for i in ids}
    for report in session.scalars(
        select(Report).where(
            Report.station_id.in_(ids), Report.superseded_at.is_(None), Report.cancelled_at.is_(None)
        )
    ):
        reports[report.station_id].append(report)
    # An ``overridden`` station may count a volunteer report a coordinator cancelled (the cancel
    # awaits review): the override card names it as the counted reading all the same.
    counted: dict[str, list[Report]] = {i: [] for i in ids}
    have = {r.id for rs in reports.values() for r in rs}
    held = [r.report_id for r in results if r.report_id is not None and r.report_id not in have]
    if held:
        for report in session.scalars(select(Report).where(Report.id.in_(held))):
            counted[report.station_id].append(report)
    contacts = {r.contact_id for rs in (*reports.values(), *counted.values()) for r in rs}
    people = {
        id_: (phone, name)
        for id_, phone, name in session.execute(
            select(Contact.id, Contact.phone, Contact.name).where(Contact.id.in_(contacts))
        )
    }
    phones = {id_: phone for id_, (phone, _) in people.items()}
    flags: dict[int, list[Flag]] = {}
    station_flags: dict[str, list[Flag]] = {i: [] for i in ids}
    for flag in session.scalars(
        select(Flag).where(Flag.station_id.in_(ids), Flag.resolved_at.is_(None)).order_by(Flag.created_at)
    ):
        station_flags[flag.station_id].append(flag)
        if flag.report_id is not None:
            flags.setdefault(flag.report_id, []).append(flag)
    return [
        {
            "station_id": r.station_id,
            "status": r.status,
            "flagged": bool(r.flagged),
            "votes": dict(r.votes or {}),
            "report_count": r.report_count,
            "dissent": r.dissent,
            "dissent_open": r.dissent_open,
            "impact": r.impact,
            "contested": bool(r.contested),
            "updated_at": r.updated_at.isoformat(),
            "readings": _readings(r, reports[r.station_id], phones, flags),
            "override": _override(r, [*reports[r.station_id], *counted[r.station_id]], people),
            "flags": [
                {"kind": f.kind, "reason": f.reason, "report_id": f.report_id}
                for f in station_flags[r.station_id]
            ],
        }
        for r in results
    ]


def _under(key: str) -> ColumnElement[bool]:
    """Stations under the region ``key``; the whole country without a condition (``LIKE '%'``
    would still be tested row by row)."""
    return StationResult.station_id.like(f"{key}%") if key else true()


def queue(session: Session, key: str, limit: int = LIMIT, offset: int = 0) -> list[dict[str, Any]]:
    """Disputed and flagged stations under ``key``, the largest impact first (then the most
    recently changed: ``review_at`` is ``updated_at`` for every station in the queue), read in
    the order of the queue's partial index on PostgreSQL."""
    results = session.scalars(
        select(StationResult)
        .where(_under(key), IN_QUEUE)
        .order_by(StationResult.impact.desc(), StationResult.review_at.desc(), StationResult.station_id)
        .offset(offset)
        .limit(limit)
    )
    return _documents(session, list(results))


def dissent(session: Session, key: str, limit: int = LIMIT, offset: int = 0) -> list[dict[str, Any]]:
    """Verified stations under ``key`` with dissent nobody has cleared, the largest impact first."""
    results = session.scalars(
        select(StationResult)
        .where(_under(key), OPEN_DISSENT)
        .order_by(StationResult.impact.desc(), StationResult.station_id)
        .offset(offset)
        .limit(limit)
    )
    return _documents(session, list(results))


def dissent_by_kecamatan(session: Session, key: str, limit: int = LIMIT) -> list[dict[str, Any]]:
    """Open dissent under ``key`` per kecamatan: stations, how many are minor, the largest impact.

    One grouped query over the partial index of stations with open dissent."""
    kecamatan = func.substr(StationResult.station_id, 1, 6)
    rows = session.execute(
        select(
            kecamatan,
            func.count(),
            func.sum(case((StationResult.contested.is_(False), 1), else_=0)),
            func.max(StationResult.impact),
        )
        .where(_under(key), OPEN_DISSENT)
        .group_by(kecamatan)
        .order_by(func.max(StationResult.impact).desc(), kecamatan)
        .limit(limit)
    )
    return [
        {"kecamatan": k, "stations": int(n), "minor": int(minor or 0), "impact": int(impact or 0)}
        for k, n, minor, impact in rows
    ]


def clear_dissent(session: Session, key: str, by: str, now: datetime, *, minor_only: bool) -> list[str]:
    """Clear the open dissent of verified stations under ``key`` (a kecamatan, or one station).

    ``minor_only`` leaves contested stations (a dissenting reading would change the winner)
    for one-by-one review. The dissenting reports stay as they are (kept, counted as dissent,
    still outvoted); they only leave the dissent list. Returns the stations cleared.
    """
    query = select(StationResult.station_id).where(
        StationResult.station_id.like(f"{key}%"),
        StationResult.dissent_open > 0,
        StationResult.status == station_results.VERIFIED,
    )
    if minor_only:
        query = query.where(StationResult.contested.is_(False))
    cleared = []
    for station_id in list(session.scalars(query.order_by(StationResult.station_id))):
        result = station_results.lock(session, station_id)
        if result.dissent_open == 0 or result.status != station_results.VERIFIED:
            continue
        if minor_only and result.contested:
            continue
        counted = dict(result.votes or {})
        for report in station_results.current_reports(session, station_id):
            if dict(report.votes) != counted and report.dissent_cleared_at is None:
                report.dissent_cleared_at = now
                report.dissent_cleared_by = by[:200]
        result.dissent_open = 0
        cleared.append(station_id)
    session.flush()
    return cleared
