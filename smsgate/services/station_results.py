"""One trusted result per station, from however many reports it has.

``decide`` is the rule (pure, no I/O): a coordinator's latest report wins and counts as
verified; otherwise each volunteer's latest report is a vote, agreement of two or more
independent volunteers is ``verified``, disagreement is ``disputed`` and the tally takes
the majority value (ties: the most recent). A report a coordinator confirmed on the
dashboard (``StationDecision``) wins while it still counts, unless a coordinator's SMS
report is newer than the decision. ``refresh`` applies the rule under a row lock
and moves the region counters by the difference, so the tally never scans reports.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Report, StationDecision, StationResult, utcnow
from . import counters, outbox

MISSING, REPORTED, VERIFIED, DISPUTED = "missing", "reported", "verified", "disputed"
STATUSES = (MISSING, REPORTED, VERIFIED, DISPUTED)


@dataclass(frozen=True)
class Decision:
    status: str
    report: Report | None = None

    @property
    def votes(self) -> dict[str, int] | None:
        return dict(self.report.votes) if self.report else None


def values_of(report: Report) -> tuple[tuple[tuple[str, int], ...], int | None]:
    """What two reports must share to agree: the votes and the invalid count when both gave one."""
    return tuple(sorted(report.votes.items())), report.invalid


def decide(current: Sequence[Report], confirmed: Report | None = None) -> Decision:
    """The station's status and the report whose values the tally counts.

    ``current`` are the reports neither superseded nor cancelled. Each contact counts once
    (their latest), which ``supersede`` already guarantees, but a defensive pass keeps the
    rule true even for data written by hand. ``confirmed`` is the report a coordinator
    confirmed on the dashboard (``confirmed_report``): it makes the station verified.
    """
    if confirmed is not None and any(r.id == confirmed.id for r in current):
        return Decision(VERIFIED, confirmed)
    latest: dict[int, Report] = {}
    for report in sorted(current, key=lambda r: (r.created_at, r.id)):
        latest[report.contact_id] = report
    if not latest:
        return Decision(MISSING)
    reports = sorted(latest.values(), key=lambda r: (r.created_at, r.id))
    coordinators = [r for r in reports if r.by_coordinator]
    if coordinators:
        return Decision(VERIFIED, coordinators[-1])
    if len(reports) == 1:
        return Decision(REPORTED, reports[0])
    tally = Counter(votes for votes, _ in map(values_of, reports))
    if len(tally) == 1:
        return Decision(VERIFIED, reports[-1])
    best = max(tally.values())
    winners = {value for value, count in tally.items() if count == best}
    chosen = next(r for r in reversed(reports) if values_of(r)[0] in winners)
    return Decision(DISPUTED, chosen)


def counter_values(result: StationResult) -> dict[str, int]:
    """The counters one station contributes to its regions in its current state."""
    values: dict[str, int] = {}
    if result.status != MISSING:
        values["reported"] = 1
        values[result.status] = 1
        for code, votes in (result.votes or {}).items():
            values[f"v:{code}"] = votes
        values["valid"] = result.valid or 0
        values["invalid"] = result.invalid or 0
    if result.flagged:
        values["flagged"] = 1
    return values


#: ``session.info`` key: (the transaction, {station id: its locked result row}).
_LOCKED = "smsgate.station_results.locked"


def lock(session: Session, station_id: str) -> StationResult:
    """The station's result row, locked until commit so concurrent reports queue per station.

    ``populate_existing``: if this session loaded the row before (a check, a CEK), the identity
    map would hand back those stale values under the fresh lock, and ``refresh`` would move the
    counters by a difference computed from them (counted twice under concurrent writers).
    Once locked in a transaction, the row can only change through this session, so storing a
    report (lock, outbox event, refresh) goes to the database for it once, not three times.
    """
    transaction = session.get_transaction()
    held = session.info.get(_LOCKED)
    if held is None or held[0] is not transaction:
        held = (transaction, {})
        session.info[_LOCKED] = held
    if station_id in held[1]:
        return held[1][station_id]
    query = (
        select(StationResult)
        .where(StationResult.station_id == station_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    result = session.scalars(query).one_or_none()
    if result is None:  # stations imported without a result row (hand-made data)
        result = StationResult(station_id=station_id, status=MISSING, report_count=0, flagged=False)
        session.add(result)
        session.flush()
    held[1][station_id] = result
    return result


def current_reports(session: Session, station_id: str) -> list[Report]:
    query = select(Report).where(
        Report.station_id == station_id, Report.superseded_at.is_(None), Report.cancelled_at.is_(None)
    )
    return list(session.scalars(query))


def confirmed_report(session: Session, station_id: str, current: Sequence[Report]) -> Report | None:
    """The report of the station's newest dashboard decision, if it still counts and no
    coordinator's SMS report came after the decision."""
    decision = session.scalars(
        select(StationDecision)
        .where(StationDecision.station_id == station_id)
        .order_by(StationDecision.decided_at.desc(), StationDecision.id.desc())
        .limit(1)
    ).first()
    if decision is None:
        return None
    report = next((r for r in current if r.id == decision.report_id), None)
    if report is None or any(r.by_coordinator and r.created_at > decision.decided_at for r in current):
        return None
    return report


def refresh(
    session: Session, station_id: str, *, flagged: bool | None = None, now: datetime | None = None
) -> StationResult:
    """Recompute the station's result from its current reports and move the counters.

    ``flagged`` sets the station's flag state when given (the flag checks decide it).
    Call with the station already locked via ``lock`` in the same transaction.
    """
    result = lock(session, station_id)
    before = counter_values(result)
    previous = outbox.result_snapshot(result)
    current = current_reports(session, station_id)
    decision = decide(current, confirmed_report(session, station_id, current))
    result.status = decision.status
    result.report_id = decision.report.id if decision.report else None
    result.votes = decision.votes
    result.valid = sum(decision.votes.values()) if decision.votes else None
    result.invalid = (decision.report.invalid or 0) if decision.report else None
    result.report_count = len(current)
    if flagged is not None:
        result.flagged = flagged
    result.updated_at = now or utcnow()
    after = counter_values(result)
    deltas = {name: after.get(name, 0) - before.get(name, 0) for name in before.keys() | after.keys()}
    counters.add(session, station_id[:10], deltas)
    reference = decision.report.ref if decision.report else None
    outbox.result_changed(session, result, previous, reference, result.updated_at)
    return result
