"""Storing, superseding and cancelling reports; every change re-derives the station result."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

import grammar

from ..config import Settings
from ..models import Contact, Flag, InboundMessage, Report, Station, StationResult
from . import checks, outbox, station_results, surroundings
from .consensus import DEFAULT_RULE, Rule

#: The flag a coordinator's ``BATAL`` of someone else's report puts on the station (on that report).
COORDINATOR_CANCEL = station_results.COORDINATOR_CANCEL


@dataclass(frozen=True)
class Stored:
    report: Report
    result: StationResult
    over_capacity: bool
    registered: int | None
    total: int


def store(
    session: Session,
    *,
    contact: Contact,
    station: Station,
    parsed: grammar.Report,
    inbound: InboundMessage,
    now: datetime,
    settings: Settings | None = None,
) -> Stored:
    """Store ``parsed`` as ``contact``'s current report for ``station``.

    The station's result row is locked first, so two reports for one station are applied
    one after the other and the counters always match the reports.
    """
    station_results.lock(session, station.id)
    # The report, and under the station's lock what surrounds it, read once: the station's
    # current reports (the sender's earlier ones are superseded, the others are what the checks
    # compare with, and with the new report they are what the result is decided from), the
    # dashboard decision and the open flags (on PostgreSQL in the statement that inserts it).
    report, around = surroundings.insert_report(
        session,
        {
            "station_id": station.id,
            "contact_id": contact.id,
            "inbound_message_id": inbound.id,
            "votes": dict(parsed.votes),
            "valid": parsed.valid,
            "invalid": parsed.invalid,
            "registered": parsed.registered,
            "by_coordinator": contact.is_coordinator,
            "created_at": now,
        },
        coordinator=contact.is_coordinator,
    )
    before = around.before
    # The same rule, on the same row, as the over_capacity flag below: the reply cannot disagree.
    total, registered = checks.ballots(report), checks.capacity(station, report)
    over = checks.is_over_capacity(total, registered)
    superseded = sorted((r for r in before if r.contact_id == contact.id), key=lambda r: r.id)
    for old in superseded:
        old.superseded_at = now
        old.superseded_by_id = report.id
    others = [r for r in before if r.contact_id != contact.id]
    # The flag checks (services/checks.py) add Flag rows, including over_capacity.
    settings = settings or Settings()
    checks.run(
        session,
        report=report,
        station=station,
        contact=contact,
        settings=settings,
        others=others,
        around=around,
    )
    # Nothing below reads what it writes, so the reports superseded and flagged, the new flags,
    # the result row, its event sequence and the events are written once, with what handling
    # leaves for commit (``pending_writes``: on PostgreSQL one statement), instead of by a flush
    # here (a statement per changed report and per flag) or at every query in between. A rarer
    # path that must read the station's rows back (the ``override`` flag's) flushes itself.
    with session.no_autoflush:
        outbox.report_stored(session, report, superseded, now)
        result = station_results.refresh(
            session, station.id, now=now, rule=settings.consensus, current=[*others, report], around=around
        )
    return Stored(report=report, result=result, over_capacity=over, registered=registered, total=total)


def cancel(
    session: Session,
    report: Report,
    inbound: InboundMessage,
    now: datetime,
    rule: Rule = DEFAULT_RULE,
    *,
    by: Contact | None = None,
) -> StationResult | None:
    """Cancel ``report``; the contact's earlier reports stay superseded (a cancel is not an undo).

    ``by``: a coordinator cancelling someone else's report. That is recorded as a
    ``coordinator_cancel`` flag on the station (naming who cancelled what), so it shows in the
    review queue until a reviewer decides the station: a coordinator's phone cannot quietly
    withdraw the volunteers' reports any more than it can quietly replace their numbers. Until
    then the cancelled report still stands against the coordinator's own numbers
    (``station_results.held_reports``).

    The caller picked ``report`` before holding any lock, so a concurrent transaction (a second
    ``BATAL`` from the same phone, a correction) may have cancelled or superseded it meanwhile.
    Under the station's lock the report is read again and cancelled only if it still counts;
    ``None`` means it no longer did, and nothing changed: without that re-check two ``BATAL``
    sent at once each cancelled the same report and each emitted ``report.cancelled``.
    """
    station_results.lock(session, report.station_id)
    session.refresh(report, with_for_update=False)  # the lock orders us after any rival; re-read
    if report.superseded_at is not None or report.cancelled_at is not None:
        return None
    report.cancelled_at = now
    report.cancelled_by_message_id = inbound.id
    if by is not None and by.id != report.contact_id:
        session.add(
            Flag(
                station_id=report.station_id,
                kind=COORDINATOR_CANCEL,
                reason=cancel_reason(session, by, report),
                report_id=report.id,
                created_at=now,
            )
        )
    session.flush()
    outbox.report_cancelled(session, report, now)
    return station_results.refresh(session, report.station_id, now=now, rule=rule)


def cancel_reason(session: Session, by: Contact, report: Report) -> str:
    """The ``coordinator_cancel`` flag's sentence: who cancelled whose report with what numbers."""
    owner = session.get(Contact, report.contact_id)
    votes = " ".join(f"{c}={n}" for c, n in sorted(report.votes.items()))
    reason = (
        f"Koordinator {by.name} {by.phone} membatalkan laporan {report.ref} ({votes}) "
        f"dari {owner.phone if owner else '?'}"
    )
    return reason if len(reason) <= 300 else reason[:298] + ".."


def latest_of(session: Session, contact: Contact, station_id: str | None = None) -> Report | None:
    """The contact's newest report that still counts (optionally for one station)."""
    query = select(Report).where(
        Report.contact_id == contact.id, Report.superseded_at.is_(None), Report.cancelled_at.is_(None)
    )
    if station_id is not None:
        query = query.where(Report.station_id == station_id)
    return session.scalars(query.order_by(Report.created_at.desc(), Report.id.desc()).limit(1)).first()
