"""Writing events to the transactional outbox.

Every change the tally must hear about calls ``emit`` (or one of the builders below) with the
session of the transaction that makes the change. The event row commits or rolls back with
that change: an event exists if and only if its change committed. Delivery happens later, in
``smsgate worker`` (``smsgate/outgoing/event_job.py``).

The document a destination receives is the envelope built from the event's columns
(``id``, ``type``, ``schema_version``, ``sequence``, ``station_sequence``, ``occurred_at``) plus
the stored payload (``station`` and ``data``), rendered in the schema version the destination
asked for (``document``); ``smsgate/schemas/event-v<N>.json`` are their JSON Schemas.

Versions: events are written in the newest version (``SCHEMA_VERSION``) and can be rendered
down for a destination that still speaks version 1 (``downgrade``); an event written before an
upgrade is rendered in the version it was written in, never up, since it lacks the new fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import instance_state

from ..models import OutboxEvent, Report, StationResult, utcnow
from ..regions import to_code
from .event_ids import new_event_id
from .station_lock import lock

#: The version events are written in; ``document`` renders any version in ``SCHEMA_VERSIONS``.
SCHEMA_VERSION = 2
SCHEMA_VERSIONS = (1, 2)

REPORT_ACCEPTED = "report.accepted"
REPORT_SUPERSEDED = "report.superseded"
REPORT_CANCELLED = "report.cancelled"
STATION_STATUS_CHANGED = "station.status_changed"
#: A station's whole current state, sent to one destination to catch it up (schema version 2).
STATION_SNAPSHOT = "station.snapshot"
INCIDENT_REPORTED = "incident.reported"
EVENT_TYPES = (
    REPORT_ACCEPTED,
    REPORT_SUPERSEDED,
    REPORT_CANCELLED,
    STATION_STATUS_CHANGED,
    STATION_SNAPSHOT,
    INCIDENT_REPORTED,
)
#: Statuses a version-1 document cannot name, and the version-1 status sent instead.
V1_STATUS = {"overridden": "disputed"}


def emit(
    session: Session,
    event_type: str,
    data: dict[str, Any],
    *,
    station_id: str | None = None,
    occurred_at: datetime | None = None,
    destination: str | None = None,
) -> OutboxEvent:
    """Add one event to the outbox inside the caller's transaction and return its row.

    ``data`` is the type-specific part of the document (JSON-serialisable). With a
    ``station_id`` the station's result row is locked first (a no-op when the caller already
    holds it, as ``reports.store`` does), so a station's events get their ``sequence`` in
    commit order and destinations receive them in that order; under that lock the event takes
    the station's next ``station_sequence`` (a snapshot repeats the current one: it is the
    state after that event, not a change). ``destination`` limits the event to one destination.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    station_sequence = None
    if station_id is not None:
        result = _lock_station(session, station_id)
        if event_type != STATION_SNAPSHOT:
            result.event_sequence = (result.event_sequence or 0) + 1
        station_sequence = result.event_sequence or 0
    event = _new_event(
        {
            "id": new_event_id(),  # time-ordered: ``event_ids``
            "type": event_type,
            "schema_version": SCHEMA_VERSION,
            "station_id": station_id,
            "station_sequence": station_sequence,
            "destination": destination,
            "payload": {"station": station_document(station_id) if station_id else None, "data": data},
            "created_at": occurred_at or utcnow(),
        }
    )
    session.add(event)
    return event


_EVENTS = inspect(OutboxEvent).class_manager


def _new_event(values: dict[str, Any]) -> OutboxEvent:
    """A new ``OutboxEvent`` with ``values`` (every column but ``seq`` and ``dispatched_at``).

    The constructor sets each column through the ORM's attribute events (about 20 us an
    event, two events a report); a new row has no history to record, and its insert reads the
    values from the object's state, which is filled here directly. The model has no
    constructor, validator or init listener of its own that this skips."""
    event: OutboxEvent = _EVENTS.new_instance()
    instance_state(event).dict.update(values)
    return event


def document(event: OutboxEvent, version: int = SCHEMA_VERSION) -> dict[str, Any]:
    """The JSON document delivered for ``event`` (flushed, so it has its ``seq``) in schema
    ``version``, or in the event's own older version if it was written before an upgrade."""
    if version not in SCHEMA_VERSIONS:
        raise ValueError(f"unknown schema version {version!r}; smsgate speaks {SCHEMA_VERSIONS}")
    claimed = min(version, event.schema_version)
    envelope: dict[str, Any] = {
        "id": event.id,
        "type": event.type,
        "schema_version": claimed,
        "sequence": event.seq,
    }
    if claimed >= 2:
        envelope["station_sequence"] = event.station_sequence
    envelope["occurred_at"] = _iso(event.created_at)
    body = {**envelope, **event.payload}
    if claimed == 1 and event.schema_version > 1:
        return downgrade(body)
    return body


def downgrade(body: dict[str, Any]) -> dict[str, Any]:
    """A version-2 document as version 1 says it: no ``station_sequence`` nor ``dissent``,
    ``overridden`` sent as ``disputed``, a snapshot sent as a ``station.status_changed`` whose
    ``previous_status`` is its status (version 1 has no snapshot; its state is the same)."""
    body = {key: value for key, value in body.items() if key != "station_sequence"}
    if body["type"] in (STATION_STATUS_CHANGED, STATION_SNAPSHOT):
        data = {key: value for key, value in body["data"].items() if key != "dissent"}
        status, previous = data["status"], data.get("previous_status", data["status"])
        data["status"] = V1_STATUS.get(status, status)
        data["previous_status"] = V1_STATUS.get(previous, previous)
        body["type"] = STATION_STATUS_CHANGED
        body["data"] = {key: data[key] for key in V1_RESULT_KEYS}
    body["schema_version"] = 1
    return body


#: The keys of a version-1 ``station.status_changed`` ``data``, in its order.
V1_RESULT_KEYS = (
    "status",
    "votes",
    "valid",
    "invalid",
    "flagged",
    "previous_status",
    "reference",
    "report_count",
    "updated_at",
)


def station_document(station_id: str) -> dict[str, Any]:
    """``6371011001012`` -> its TPS number and dotted region codes (derived from the ID alone)."""
    return {"id": station_id, "tps": int(station_id[10:]), "regions": dict(_regions(station_id[:10]))}


@lru_cache(maxsize=4096)
def _regions(key: str) -> tuple[tuple[str, str], ...]:
    """The dotted codes of desa ``key`` and the regions above it (a desa's reports all share
    them): computed once per desa, copied into each event's own dict."""
    return (
        ("province", to_code(key[:2])),
        ("kabupaten", to_code(key[:4])),
        ("kecamatan", to_code(key[:6])),
        ("desa", to_code(key)),
    )


# -- builders used by the services ---------------------------------------------------------------


def report_stored(session: Session, report: Report, superseded: Sequence[Report], now: datetime) -> None:
    """``report.accepted`` for a new report, then ``report.superseded`` for each report it replaced
    (``superseded``, as ``reports.store`` just marked them: no query to find them again). The
    events carry the reports' values as they are in the session: nothing needs flushing first."""
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
    """Everything a ``station.status_changed`` carries, except ``previous_status`` and
    ``updated_at``: compare it before and after a change, and emit when anything in it changed.
    (``report_id`` stands for ``reference``: one report, one ref.)"""
    return {
        "status": result.status,
        "votes": dict(result.votes) if result.votes is not None else None,
        "valid": result.valid,
        "invalid": result.invalid,
        "flagged": bool(result.flagged),
        "report_id": result.report_id,
        "report_count": result.report_count,
        "dissent": result.dissent or 0,
    }


def result_data(result: StationResult, reference: str | None) -> dict[str, Any]:
    """The station's state as events carry it (``station.status_changed`` adds ``previous_status``)."""
    return _data_of(result_snapshot(result), result, reference)


def _data_of(snapshot: dict[str, Any], result: StationResult, reference: str | None) -> dict[str, Any]:
    """``result_data`` from the ``snapshot`` of ``result`` the caller already took (which it
    changes: ``report_id`` is taken out)."""
    del snapshot["report_id"]
    return {**snapshot, "reference": reference, "updated_at": _iso(result.updated_at)}


def result_changed(
    session: Session, result: StationResult, before: dict[str, Any], reference: str | None, now: datetime
) -> OutboxEvent | None:
    """``station.status_changed`` when anything the event carries changed (status, values, flag,
    the counted report, the number of current reports, the dissent), else nothing. A volunteer who resends
    the same values supersedes their report: the reference and the count change, so an event
    goes out, and a receiver's copy of ``reference`` and ``report_count`` is never stale."""
    after = result_snapshot(result)
    if after == before:
        return None
    data = {**_data_of(after, result, reference), "previous_status": before["status"]}
    return emit(session, STATION_STATUS_CHANGED, data, station_id=result.station_id, occurred_at=now)


def station_snapshot(
    session: Session, result: StationResult, reference: str | None, destination: str, now: datetime
) -> OutboxEvent:
    """``station.snapshot`` of ``result`` for ``destination`` only (``smsgate outbox replay``)."""
    return emit(
        session,
        STATION_SNAPSHOT,
        result_data(result, reference),
        station_id=result.station_id,
        occurred_at=now,
        destination=destination,
    )


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


def _lock_station(session: Session, station_id: str) -> StationResult:
    return lock(session, station_id)  # a no-op when this transaction holds it already


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
