"""Writing events to the transactional outbox (issue 6).

Every change the tally must hear about calls ``emit`` (or one of the builders below) with the
session of the transaction that makes the change. The event row commits or rolls back with
that change: an event exists if and only if its change committed. Delivery happens later, in
``smsgate worker`` (``smsgate/outgoing/event_job.py``).

The document a destination receives is the envelope built from the event's columns
(``id``, ``type``, ``schema_version``, ``sequence``, ``occurred_at``) plus the stored payload
(``station`` and ``data``); ``smsgate/schemas/event-v1.json`` is its JSON Schema.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ..models import OutboxEvent, Report, StationResult, utcnow
from ..regions import to_code

SCHEMA_VERSION = 1

REPORT_ACCEPTED = "report.accepted"
REPORT_SUPERSEDED = "report.superseded"
REPORT_CANCELLED = "report.cancelled"
STATION_STATUS_CHANGED = "station.status_changed"
INCIDENT_REPORTED = "incident.reported"
EVENT_TYPES = (
    REPORT_ACCEPTED,
    REPORT_SUPERSEDED,
    REPORT_CANCELLED,
    STATION_STATUS_CHANGED,
    INCIDENT_REPORTED,
)


def emit(
    session: Session,
    event_type: str,
    data: dict[str, Any],
    *,
    station_id: str | None = None,
    occurred_at: datetime | None = None,
) -> OutboxEvent:
    """Add one event to the outbox inside the caller's transaction and return its row.

    ``data`` is the type-specific part of the document (JSON-serialisable). With a
    ``station_id`` the station's result row is locked first (a no-op when the caller already
    holds it, as ``reports.store`` does), so a station's events get their ``sequence`` in
    commit order and destinations receive them in that order.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    if station_id is not None:
        _lock_station(session, station_id)
    event = OutboxEvent(
        id=str(uuid.uuid4()),
        type=event_type,
        schema_version=SCHEMA_VERSION,
        station_id=station_id,
        payload={"station": station_document(station_id) if station_id else None, "data": data},
        created_at=occurred_at or utcnow(),
    )
    session.add(event)
    return event


def document(event: OutboxEvent) -> dict[str, Any]:
    """The JSON document delivered for ``event`` (flushed, so it has its ``seq``)."""
    return {
        "id": event.id,
        "type": event.type,
        "schema_version": event.schema_version,
        "sequence": event.seq,
        "occurred_at": _iso(event.created_at),
        **event.payload,
    }


def station_document(station_id: str) -> dict[str, Any]:
    """``6371011001012`` -> its TPS number and dotted region codes (derived from the ID alone)."""
    key = station_id[:10]
    return {
        "id": station_id,
        "tps": int(station_id[10:]),
        "regions": {
            "province": to_code(key[:2]),
            "kabupaten": to_code(key[:4]),
            "kecamatan": to_code(key[:6]),
            "desa": to_code(key),
        },
    }


# -- builders used by the services ---------------------------------------------------------------


def report_stored(session: Session, report: Report, superseded: Sequence[Report], now: datetime) -> None:
    """``report.accepted`` for a new report, then ``report.superseded`` for each report it replaced
    (``superseded``, as ``reports.store`` just marked them: no query to find them again)."""
    session.flush()
    emit(
        session,
        REPORT_ACCEPTED,
        {"report": report_data(report)},
        station_id=report.station_id,
        occurred_at=now,
    )
    for old in sorted(superseded, key=lambda r: r.id):
        emit(
            session,
            REPORT_SUPERSEDED,
            {"report": report_data(old, superseded_by=report.ref)},
            station_id=old.station_id,
            occurred_at=now,
        )


def report_cancelled(session: Session, report: Report, now: datetime) -> None:
    emit(
        session,
        REPORT_CANCELLED,
        {"report": report_data(report)},
        station_id=report.station_id,
        occurred_at=now,
    )


def result_snapshot(result: StationResult) -> dict[str, Any]:
    """What a destination's tally needs from a station's result; compare before and after a change."""
    return {
        "status": result.status,
        "votes": dict(result.votes) if result.votes is not None else None,
        "valid": result.valid,
        "invalid": result.invalid,
        "flagged": bool(result.flagged),
    }


def result_changed(
    session: Session, result: StationResult, before: dict[str, Any], reference: str | None, now: datetime
) -> OutboxEvent | None:
    """``station.status_changed`` when the station's status or counted values changed, else nothing."""
    after = result_snapshot(result)
    if after == before:
        return None
    data = {
        **after,
        "previous_status": before["status"],
        "reference": reference,
        "report_count": result.report_count,
        "updated_at": _iso(result.updated_at),
    }
    return emit(session, STATION_STATUS_CHANGED, data, station_id=result.station_id, occurred_at=now)


def incident_reported(session: Session, incident: Any, now: datetime | None = None) -> OutboxEvent:
    """``incident.reported`` for an ``Incident`` row (``LAPOR``); call it where the incident is stored."""
    session.flush()
    data = {
        "incident": {
            "ref": incident.ref,
            "text": incident.text,
            "place": incident.place_key,
            "region_code": incident.region_code,
            "reported_at": _iso(incident.created_at),
        }
    }
    return emit(
        session,
        INCIDENT_REPORTED,
        data,
        station_id=incident.station_id,
        occurred_at=now or incident.created_at,
    )


def report_data(report: Report, superseded_by: str | None = None) -> dict[str, Any]:
    return {
        "ref": report.ref,
        "votes": dict(report.votes),
        "valid": report.valid,
        "invalid": report.invalid,
        "registered": report.registered,
        "reporter_role": "coordinator" if report.by_coordinator else "volunteer",
        "flagged": bool(report.flagged),
        "received_at": _iso(report.created_at),
        "superseded_at": _iso(report.superseded_at),
        "superseded_by": superseded_by,
        "cancelled_at": _iso(report.cancelled_at),
    }


def _lock_station(session: Session, station_id: str) -> None:
    from .station_results import lock

    lock(session, station_id)  # a no-op when this transaction holds it already


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
