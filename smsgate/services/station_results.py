"""One trusted result per station, from however many reports it has.

``decide`` is the rule (pure, no I/O): each volunteer's latest report is a vote. The station
is ``verified`` when a qualified majority agrees (``services/consensus.py``: two reports and
no dissent, or by default at least three identical reports forming two thirds); without one
it is ``disputed``. Either way the tally takes the most common reading (ties: the most
recent), and reports that differ from it are dissent: counted and shown, but they only
dispute a station that has no qualified majority.

A coordinator's latest SMS report settles a station whose volunteers have not agreed
(``verified`` with the coordinator's values), but it cannot silently replace what the
volunteers agree on: a caller ID can be spoofed and a phone (and its PIN) stolen. When it
contradicts the volunteers' qualified majority the station is ``overridden``: the tally keeps
counting the volunteers' reading, an ``override`` flag names who changed what, and the
station waits in the review queue until someone confirms the coordinator's report on the
dashboard or rejects it. Volunteer reports a coordinator cancelled (``BATAL``) while the
cancel's ``coordinator_cancel`` flag is open (``held_reports``) still count toward that
agreement, so cancelling the volunteers one by one and then sending other numbers is held for
review exactly like sending them over the volunteers' heads. A report confirmed on the
dashboard (``StationDecision``) wins while it still counts, unless a coordinator's SMS report
is newer than the decision. ``refresh`` applies the rule under a row lock and moves the region
counters by the difference, so the tally never scans reports.

Flags belong to reports: a station is flagged only while an open flag sits on a report whose
votes are the reading the tally counts, so a check failing on a dissenting report is shown
beside that report without sending a settled station to the review queue.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Contact, Flag, Report, StationDecision, StationResult, utcnow
from ..models.reports import MISSING as MISSING
from . import checks, consensus, counters, outbox
from .consensus import DEFAULT_RULE as DEFAULT_RULE
from .consensus import Rule as Rule
from .station_lock import lock as lock
from .surroundings import Surroundings, open_flags_query

REPORTED, VERIFIED, DISPUTED = "reported", "verified", "disputed"
#: A coordinator's SMS contradicts the volunteers' qualified majority; the majority is counted.
OVERRIDDEN = "overridden"
STATUSES = (MISSING, REPORTED, VERIFIED, DISPUTED, OVERRIDDEN)
#: The flag kind on the coordinator's report of an ``overridden`` station.
OVERRIDE_FLAG = "override"
#: The flag a coordinator's ``BATAL`` of someone else's report puts on the station (on that report).
COORDINATOR_CANCEL = "coordinator_cancel"


@dataclass(frozen=True)
class Decision:
    """The station's status, the report whose values the tally counts, and the voters:
    each contact's latest current report, oldest first (what dissent is measured over).
    ``override``: when ``overridden``, the coordinator's report waiting for a decision."""

    status: str
    report: Report | None = None
    voters: tuple[Report, ...] = ()
    override: Report | None = None

    @property
    def votes(self) -> dict[str, int] | None:
        return dict(self.report.votes) if self.report else None


def values_of(report: Report) -> tuple[tuple[tuple[str, int], ...], int | None]:
    """What two reports must share to agree: the votes and the invalid count when both gave one."""
    return tuple(sorted(report.votes.items())), report.invalid


def decide(
    current: Sequence[Report],
    confirmed: Report | None = None,
    rule: Rule = DEFAULT_RULE,
    held: Sequence[Report] = (),
) -> Decision:
    """The station's status and the report whose values the tally counts.

    ``current`` are the reports neither superseded nor cancelled. Each contact counts once
    (their latest), which ``supersede`` already guarantees, but a defensive pass keeps the
    rule true even for data written by hand. ``confirmed`` is the report a coordinator
    confirmed on the dashboard (``confirmed_report``): it makes the station verified.
    ``rule`` is the qualified majority that verifies a station with dissent.
    ``held``: volunteer reports a coordinator cancelled, the cancel not yet decided by a
    reviewer (``held_reports``). They count only toward the volunteers' agreement that a
    coordinator's report is measured against; a volunteer's newer current report replaces theirs.
    """
    reports = _latest(current)
    if confirmed is not None and any(r.id == confirmed.id for r in current):
        return Decision(VERIFIED, confirmed, reports)
    if not reports:
        return Decision(MISSING)
    volunteers = _by_volunteers(tuple(r for r in reports if not r.by_coordinator), rule)
    coordinators = [r for r in reports if r.by_coordinator]
    if coordinators:
        newest = coordinators[-1]
        if held:
            volunteers = _by_volunteers(_latest([*reports, *held], volunteers_only=True), rule)
        agreed = volunteers.report if volunteers.status == VERIFIED else None
        if agreed is not None and dict(agreed.votes) != dict(newest.votes):
            return Decision(OVERRIDDEN, agreed, reports, override=newest)
        return Decision(VERIFIED, newest, reports)
    return Decision(volunteers.status, volunteers.report, reports)


def _latest(reports: Sequence[Report], *, volunteers_only: bool = False) -> tuple[Report, ...]:
    """Each contact's latest report, oldest first (optionally the volunteers' only)."""
    latest: dict[int, Report] = {}
    for report in sorted(reports, key=lambda r: (r.created_at, r.id)):
        if not (volunteers_only and report.by_coordinator):
            latest[report.contact_id] = report
    return tuple(sorted(latest.values(), key=lambda r: (r.created_at, r.id)))


def _by_volunteers(reports: tuple[Report, ...], rule: Rule) -> Decision:
    """The volunteers' verdict on their own: one report, a qualified majority, or a dispute."""
    if not reports:
        return Decision(MISSING)
    if len(reports) == 1:
        return Decision(REPORTED, reports[0], reports)
    readings = [values_of(r)[0] for r in reports]
    tally = Counter(readings)
    best = max(tally.values())
    winners = {value for value, count in tally.items() if count == best}
    newest_first = zip(reversed(reports), reversed(readings), strict=True)
    chosen = next(r for r, votes in newest_first if votes in winners)
    settled = len(winners) == 1 and rule.qualified(best, len(reports))
    return Decision(VERIFIED if settled else DISPUTED, chosen, reports)


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


def current_reports(session: Session, station_id: str) -> list[Report]:
    query = select(Report).where(
        Report.station_id == station_id, Report.superseded_at.is_(None), Report.cancelled_at.is_(None)
    )
    return list(session.scalars(query))


def held_reports(session: Session, station_id: str) -> list[Report]:
    """Volunteer reports a coordinator cancelled whose ``coordinator_cancel`` flag is still open.

    Until a reviewer decides the cancel on the dashboard these still stand as the volunteers'
    agreement against a coordinator's own report (``decide``). Queried only when a coordinator's
    report is current at the station, so an ordinary volunteer report pays no extra statement."""
    query = (
        select(Report)
        .join(Flag, Flag.report_id == Report.id)
        .where(
            Flag.station_id == station_id,
            Flag.kind == COORDINATOR_CANCEL,
            Flag.resolved_at.is_(None),
            Report.station_id == station_id,
            Report.cancelled_at.is_not(None),
            Report.superseded_at.is_(None),
            Report.by_coordinator.is_(False),
        )
    )
    return list(session.scalars(query).unique())


def agreeing_volunteers(session: Session, result: StationResult) -> int:
    """How many volunteers' reports (current or held) carry the counted reading of an
    ``overridden`` station: the number the coordinator's reply names."""
    counted = dict(result.votes or {})
    station_id = result.station_id
    reports = _latest([*current_reports(session, station_id), *held_reports(session, station_id)])
    return sum(1 for r in reports if not r.by_coordinator and dict(r.votes) == counted)


def newest_decision(session: Session, station_id: str) -> tuple[int, datetime] | None:
    """The station's newest dashboard decision: (its report id, when it was made)."""
    row = session.execute(
        select(StationDecision.report_id, StationDecision.decided_at)
        .where(StationDecision.station_id == station_id)
        .order_by(StationDecision.decided_at.desc(), StationDecision.id.desc())
        .limit(1)
    ).first()
    return (row[0], row[1]) if row is not None else None


def confirmed_report(
    session: Session,
    station_id: str,
    current: Sequence[Report],
    decision: tuple[int, datetime] | Literal["unread"] | None = "unread",
) -> Report | None:
    """The report of the station's newest dashboard decision, if it still counts and no
    coordinator's SMS report came after the decision. ``decision``: that decision
    (``newest_decision``) when the caller read it, else it is read here."""
    if decision == "unread":
        decision = newest_decision(session, station_id)
    if decision is None:
        return None
    report_id, decided_at = decision
    report = next((r for r in current if r.id == report_id), None)
    if report is None or any(r.by_coordinator and r.created_at > decided_at for r in current):
        return None
    return report


def refresh(
    session: Session,
    station_id: str,
    *,
    now: datetime | None = None,
    rule: Rule = DEFAULT_RULE,
    current: Sequence[Report] | None = None,
    around: Surroundings | None = None,
) -> StationResult:
    """Recompute the station's result from its current reports and move the counters.

    Besides the status and counted values this keeps the dissent (count, the part nobody
    cleared, impact, whether it is contested), marks each current report outvoted or not,
    and flags the station only when its counted reading carries an open flag.
    Call with the station already locked via ``lock`` in the same transaction. ``current``:
    the station's current reports when the caller knows them (it read them under the lock and
    applied its change), else they are read here. ``around``: the station's dashboard decision
    and open flags as the caller read them with its report (``reports.store``), else read here.
    """
    result = lock(session, station_id)
    before = counter_values(result)
    previous = outbox.result_snapshot(result)
    current = list(current) if current is not None else current_reports(session, station_id)
    held = held_reports(session, station_id) if any(r.by_coordinator for r in current) else []
    decided = around.decision if around is not None else newest_decision(session, station_id)
    decision = decide(current, confirmed_report(session, station_id, current, decided), rule, held)
    result.status = decision.status
    result.report_id = decision.report.id if decision.report else None
    result.votes = decision.votes
    result.valid = sum(decision.votes.values()) if decision.votes else None
    result.invalid = (decision.report.invalid or 0) if decision.report else None
    result.report_count = len(current)
    flags = around.open_flags if around is not None else None
    if decision.status == OVERRIDDEN or previous["status"] == OVERRIDDEN:
        _keep_override_flag(session, station_id, decision, now or utcnow())
        session.flush()  # the flags it resolved, before the open flags are read (autoflush may be off)
        flags = None  # changed since they were read: read them again
    if flags is None:
        flags = list(session.execute(open_flags_query(station_id)))
    result.flagged = _counted_reading_flagged(flags, decision.votes)
    _record_dissent(result, decision)
    result.updated_at = now or utcnow()
    after = counter_values(result)
    deltas = {name: after.get(name, 0) - before.get(name, 0) for name in before.keys() | after.keys()}
    counters.add(session, station_id[:10], deltas)
    reference = decision.report.ref if decision.report else None
    outbox.result_changed(session, result, previous, reference, result.updated_at)
    return result


def override_reason(coordinator: Contact | None, override: Report, counted: Report) -> str:
    """The ``override`` flag's sentence: who changed the station's agreed numbers to what."""
    who = f"{coordinator.name} {coordinator.phone}".strip() if coordinator else "?"
    before = " ".join(f"{c}={n}" for c, n in sorted(counted.votes.items()))
    after = " ".join(f"{c}={n}" for c, n in sorted(override.votes.items()))
    reason = (
        f"Koordinator {who} mengubah {before} -> {after} (laporan {override.ref}); dihitung kesepakatan "
        f"relawan (laporan {counted.ref}) sampai dikonfirmasi di dasbor"
    )
    return reason if len(reason) <= 300 else reason[:298] + ".."


def _keep_override_flag(session: Session, station_id: str, decision: Decision, now: datetime) -> None:
    """One open ``override`` flag, on the coordinator's report that overrides the station now.

    Runs only when the station is or was ``overridden`` (rare), so ordinary reports pay nothing.
    A flag on a report that no longer overrides (superseded, cancelled, or the station settled
    another way) is resolved by smsgate; a reviewer's decision resolves it on the dashboard."""
    wanted = decision.override if decision.status == OVERRIDDEN else None
    found = False
    for flag in session.scalars(
        select(Flag).where(
            Flag.station_id == station_id, Flag.kind == OVERRIDE_FLAG, Flag.resolved_at.is_(None)
        )
    ):
        if wanted is not None and flag.report_id == wanted.id:
            found = True
        else:
            flag.resolved_at = now
            flag.resolved_by = "smsgate"
    if wanted is not None and not found and decision.report is not None:
        coordinator = session.get(Contact, wanted.contact_id)
        reason = override_reason(coordinator, wanted, decision.report)
        session.add(
            Flag(
                station_id=station_id, kind=OVERRIDE_FLAG, reason=reason, report_id=wanted.id, created_at=now
            )
        )
        session.flush()


def _counted_reading_flagged(
    flags: Sequence[tuple[int | None, str, dict[str, int] | None]], counted: dict[str, int] | None
) -> bool:
    """Whether an open flag sits on a report with the counted votes (or on no report at all).

    A flag on a dissenting report stays open and shown beside it, but does not flag the
    station; if that reading later becomes the counted one, the station is flagged again.
    Flags that only say two reports disagree (``checks.DISAGREEMENT_KINDS``) never do: the
    consensus rule decides what disagreement means. A ``coordinator_cancel`` flag sits on the
    cancelled report but flags the station as a whole: the cancel itself awaits a decision.
    ``flags``: the station's open flags (``surroundings.open_flags_query``)."""
    return any(
        id_ is None or kind == COORDINATOR_CANCEL or (counted is not None and dict(votes or {}) == counted)
        for id_, kind, votes in flags
        if kind not in checks.DISAGREEMENT_KINDS
    )


def _record_dissent(result: StationResult, decision: Decision) -> None:
    """Dissent against the counted reading, and which voters it outvoted (only once settled)."""
    counted = decision.votes
    readings = [r.votes for r in decision.voters]
    found = consensus.dissent(counted, readings)
    result.dissent = found.count
    result.contested = found.contested
    settled = decision.status == VERIFIED
    open_count = 0
    for report in decision.voters:
        differs = counted is not None and dict(report.votes) != counted
        if differs and report.dissent_cleared_at is None:
            open_count += 1
        outvoted = settled and differs
        if report.outvoted != outvoted:
            report.outvoted = outvoted
    result.dissent_open = open_count if settled else 0
    flagged_total = (result.valid or 0) if result.flagged else 0
    result.impact = max(found.impact, flagged_total)
