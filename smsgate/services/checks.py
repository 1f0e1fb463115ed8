"""Checks from the C.Hasil form: what about a new report a person should look at.

``run`` is called by ``reports.store`` in the same transaction, with the station's result row
already locked, after the report is stored and the sender's previous one superseded. Each
check that fires adds a ``Flag`` on that report (stable ``kind``, a short Indonesian
``reason``) unless an open flag of that kind already sits on a report with the same votes.
Flags never block a report and belong to it: the station is flagged, and goes into the
review queue, only while a flag sits on the reading the tally counts
(``station_results.refresh``); a check failing on a dissenting report is shown beside it.

Kinds:

- ``over_capacity``: votes + invalid above registered voters + 2% (the DPTb tolerance).
- ``totals_mismatch``: ``SAH`` or ``TS`` differ between the station's current reports.
- ``over_999``: a candidate above 999 votes (a TPS has at most a few hundred voters).
- ``landslide``: one candidate has every vote and turnout is at least 90% of registered voters.
- ``one_digit``: another current report differs in exactly one digit of one candidate's count
  (the classic misread: 152 vs 652).
- ``late``: received more than ``late_hours`` after polls close.
- ``multi_desa``: the same volunteer's phone reported for stations in different desa
  (coordinators are excluded: their scope covers many desa).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..config import Settings
from ..models import Contact, Flag, Report, Station
from .surroundings import Surroundings, open_flags_query

#: Votes plus invalid ballots may exceed registered voters by this share (voters moved in on
#: the day, the DPTb, are not on the station's list).
CAPACITY_TOLERANCE = 0.02
MAX_CANDIDATE_VOTES = 999
#: ``landslide`` needs turnout (votes + invalid) of at least this share of registered voters.
LANDSLIDE_TURNOUT = 0.90

KINDS = ("over_capacity", "totals_mismatch", "over_999", "landslide", "one_digit", "late", "multi_desa")
#: Kinds that compare a report with the station's other reports: disagreement, which the
#: consensus rule settles (a station without a qualified majority is disputed anyway). They
#: are shown beside the report but never flag the station by themselves.
DISAGREEMENT_KINDS = frozenset({"totals_mismatch", "one_digit"})


@dataclass(frozen=True)
class Finding:
    kind: str
    reason: str


def capacity(station: Station, report: Report) -> int | None:
    """Registered voters: the station's list when imported, else the DPT the sender typed."""
    return station.registered_voters if station.registered_voters is not None else report.registered


def ballots(report: Report) -> int:
    """Votes for the candidates plus invalid ballots: what must fit in the registered voters."""
    return sum(report.votes.values()) + (report.invalid or 0)


def is_over_capacity(total: int, registered: int | None) -> bool:
    """The one capacity rule: the reply's warning and the ``over_capacity`` flag both ask it."""
    return registered is not None and total > registered * (1 + CAPACITY_TOLERANCE)


def one_digit_apart(a: int, b: int) -> bool:
    """Same number of digits and exactly one position different: 152 vs 652, 98 vs 93."""
    x, y = str(a), str(b)
    return len(x) == len(y) and sum(p != q for p, q in zip(x, y, strict=True)) == 1


@dataclass(frozen=True)
class Facts:
    """What the checks look at: the stored report and what surrounds it.

    ``others`` are the station's other current reports; ``other_desa`` is the desa key of
    another station the same volunteer reported for, if any.
    """

    report: Report
    station: Station
    contact: Contact
    others: Sequence[Report]
    other_desa: str | None
    settings: Settings


def findings(
    report: Report,
    *,
    station: Station,
    contact: Contact,
    others: Sequence[Report],
    other_desa: str | None,
    settings: Settings,
) -> list[Finding]:
    """Every check that fires for ``report``, in the order of ``CHECKS`` (pure: no I/O)."""
    facts = Facts(report, station, contact, others, other_desa, settings)
    return [finding for check in CHECKS if (finding := check(facts)) is not None]


def over_capacity(facts: Facts) -> Finding | None:
    """More ballots than registered voters allow (``is_over_capacity``, the reply's rule too)."""
    total, registered = ballots(facts.report), capacity(facts.station, facts.report)
    if not is_over_capacity(total, registered):
        return None
    return Finding(
        "over_capacity", f"Suara+TS {total} melebihi DPT {registered} + 2% (laporan {facts.report.ref})"
    )


def totals_mismatch(facts: Facts) -> Finding | None:
    """Another report of the station gives a different SAH (or TS)."""
    report = facts.report
    for field, name in (("valid", "SAH"), ("invalid", "TS")):
        mine = getattr(report, field)
        if mine is None:
            continue
        clash = next((o for o in facts.others if getattr(o, field) not in (None, mine)), None)
        if clash is not None:
            return Finding(
                "totals_mismatch",
                f"{name} beda: {mine} (laporan {report.ref}) "
                f"vs {getattr(clash, field)} (laporan {clash.ref})",
            )
    return None


def over_999(facts: Facts) -> Finding | None:
    """A candidate above what one station's form can hold."""
    votes = facts.report.votes
    big = sorted(code for code, count in votes.items() if count > MAX_CANDIDATE_VOTES)
    if not big:
        return None
    return Finding("over_999", f"Suara {big[0]}={votes[big[0]]} di atas 999 (laporan {facts.report.ref})")


def landslide(facts: Facts) -> Finding | None:
    """Every vote for one candidate at a near-full turnout."""
    report = facts.report
    total, registered = ballots(report), capacity(facts.station, report)
    winners = [code for code, count in report.votes.items() if count > 0]
    if not (
        len(winners) == 1 and len(report.votes) > 1 and registered and total >= LANDSLIDE_TURNOUT * registered
    ):
        return None
    share = round(100 * total / registered)
    return Finding(
        "landslide",
        f"Semua suara untuk {winners[0]}, kehadiran {share}% dari DPT {registered} (laporan {report.ref})",
    )


def one_digit(facts: Facts) -> Finding | None:
    """Another report differs in one candidate by one digit: a misread form."""
    report = facts.report
    for other in facts.others:
        differing = [c for c in report.votes if report.votes[c] != other.votes.get(c)]
        if len(differing) == 1 and set(other.votes) == set(report.votes):
            code = differing[0]
            if one_digit_apart(report.votes[code], other.votes[code]):
                return Finding(
                    "one_digit",
                    f"Beda 1 digit: {code}={report.votes[code]} (laporan {report.ref}) "
                    f"vs {code}={other.votes[code]} (laporan {other.ref}). Salah baca?",
                )
    return None


def late(facts: Facts) -> Finding | None:
    """Sent more than ``SMSGATE_LATE_HOURS`` after the polls closed."""
    settings, report = facts.settings, facts.report
    closed = settings.polls_close
    if closed is None or report.created_at <= closed + timedelta(hours=settings.late_hours):
        return None
    hours = (report.created_at - closed).total_seconds() / 3600
    return Finding(
        "late",
        f"Laporan {report.ref} masuk {hours:.0f} jam setelah TPS tutup (batas {settings.late_hours:g})",
    )


def multi_desa(facts: Facts) -> Finding | None:
    """A volunteer who also reported for a station in another desa."""
    if facts.other_desa is None or facts.contact.is_coordinator:
        return None
    return Finding(
        "multi_desa",
        f"Nomor {facts.contact.phone} juga melapor untuk desa {facts.other_desa} "
        f"(laporan {facts.report.ref})",
    )


#: Every check, in the order of ``KINDS``.
CHECKS: tuple[Callable[[Facts], Finding | None], ...] = (
    over_capacity,
    totals_mismatch,
    over_999,
    landslide,
    one_digit,
    late,
    multi_desa,
)


def run(
    session: Session,
    *,
    report: Report,
    station: Station,
    contact: Contact,
    settings: Settings,
    others: Sequence[Report] | None = None,
    around: Surroundings | None = None,
) -> list[Finding]:
    """Run every check for the stored ``report``, add a flag per new kind, return what fired.

    ``others``: the station's other current reports from other contacts, when the caller
    already read them (``reports.store``); else they are read here. ``around``: what the caller
    read of the station with the report (the volunteer's other desa, the open flags), else it
    is read here; the flags added are appended to its ``open_flags``."""
    if others is None:
        others = [
            r
            for r in session.scalars(
                select(Report).where(
                    Report.station_id == station.id,
                    Report.id != report.id,
                    Report.superseded_at.is_(None),
                    Report.cancelled_at.is_(None),
                )
            )
            if r.contact_id != report.contact_id
        ]
    other_desa = None
    if around is not None:
        other_desa = around.other_desa
    elif not contact.is_coordinator:
        other_station = session.scalar(
            select(Report.station_id)
            .where(Report.contact_id == contact.id, Report.station_id.not_like(f"{station.id[:10]}%"))
            .limit(1)
        )
        other_desa = other_station[:10] if other_station else None
    found = findings(
        report, station=station, contact=contact, others=others, other_desa=other_desa, settings=settings
    )
    if not found:
        return []
    report.flagged = True
    flags = around.open_flags if around is not None else list(session.execute(open_flags_query(station.id)))
    open_kinds = {
        (kind, tuple(sorted(votes.items())) if votes is not None else None) for _id, kind, votes in flags
    }
    reading = tuple(sorted(report.votes.items()))
    for finding in _unique(found):
        if (finding.kind, reading) not in open_kinds:
            if around is not None:
                around.open_flags.append((report.id, finding.kind, dict(report.votes)))
            session.add(
                Flag(
                    station_id=station.id,
                    kind=finding.kind,
                    reason=finding.reason[:300],
                    report_id=report.id,
                    created_at=report.created_at,
                )
            )
    return found


def _unique(found: Iterable[Finding]) -> list[Finding]:
    first: dict[str, Finding] = {}
    for finding in found:
        first.setdefault(finding.kind, finding)
    return list(first.values())


def open_flags(session: Session, region_key: str, limit: int = 500) -> list[dict[str, object]]:
    """The review queue: open flags of stations in a region (undotted key), newest first."""
    rows = session.execute(
        select(Flag, Report.ref)
        .outerjoin(Report, Report.id == Flag.report_id)
        .where(Flag.resolved_at.is_(None), Flag.station_id.like(f"{region_key}%"))
        .order_by(Flag.created_at.desc(), Flag.id.desc())
        .limit(limit)
    )
    return [
        {
            "id": flag.id,
            "station_id": flag.station_id,
            "kind": flag.kind,
            "reason": flag.reason,
            "report": ref,
            "created_at": flag.created_at.isoformat(),
            "status": "open",
        }
        for flag, ref in rows
    ]
