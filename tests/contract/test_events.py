"""What the events promise: every emitted document validates against the schema version it
claims (in every version a destination can ask for), station events are emitted whenever
anything they carry changes, and each station's ``station_sequence`` runs 1, 2, 3, ... without gaps."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from smsgate import event_schemas
from smsgate.models import OutboxEvent, Report, StationResult
from smsgate.services import outbox
from smsgate.services.station_results import lock

from ..outbox.support import election_night, send_all
from ..support import COORD_NATIONAL, VOLUNTEER_A, VOLUNTEER_B, VOLUNTEER_C

STATION = "6371011001012"  # Mantuil TPS 012


def _events(database) -> list[OutboxEvent]:  # type: ignore[no-untyped-def]
    with database.read() as session:
        events = list(session.scalars(select(OutboxEvent).order_by(OutboxEvent.seq)))
        session.expunge_all()
    return events


def test_every_event_validates_against_the_version_it_claims(database, sms):  # type: ignore[no-untyped-def]
    send_all(sms, election_night(random.Random(3), rounds=6))
    sms(COORD_NATIONAL, "LAPOR TPS 6371011001012 kotak suara rusak")
    events = _events(database)
    assert {e.type for e in events} >= {
        outbox.REPORT_ACCEPTED,
        outbox.REPORT_SUPERSEDED,
        outbox.REPORT_CANCELLED,
        outbox.STATION_STATUS_CHANGED,
    }
    for event in events:
        assert event.schema_version == outbox.SCHEMA_VERSION == max(event_schemas.versions())
        for version in event_schemas.versions():
            document = outbox.document(event, version)
            assert document["schema_version"] == version
            assert not event_schemas.errors(document), (version, document, event_schemas.errors(document))


def test_station_sequences_run_without_gaps_in_commit_order(database, sms):  # type: ignore[no-untyped-def]
    send_all(sms, election_night(random.Random(4), rounds=5))
    per_station: dict[str, list[int]] = defaultdict(list)
    for event in _events(database):
        if event.station_id is None:
            assert event.station_sequence is None
            continue
        per_station[event.station_id].append(event.station_sequence)
    assert len(per_station) >= 3
    with database.read() as session:
        results = {r.station_id: r.event_sequence for r in session.scalars(select(StationResult))}
    for station, numbers in per_station.items():
        assert numbers == list(range(1, len(numbers) + 1)), station  # in seq order, no gaps
        assert results[station] == len(numbers), station


def _latest_state(database) -> dict:  # type: ignore[no-untyped-def]
    kind = outbox.STATION_STATUS_CHANGED
    states = [e for e in _events(database) if e.type == kind and e.station_id == STATION]
    return states[-1].payload["data"]


def _ours(database) -> tuple[str | None, int, int]:  # type: ignore[no-untyped-def]
    with database.read() as session:
        result = session.get(StationResult, STATION)
        ref = session.get(Report, result.report_id).ref if result.report_id else None
        return ref, result.report_count, result.dissent


def test_reference_and_report_count_never_go_stale(database, sms):  # type: ignore[no-untyped-def]
    """A volunteer resends identical values, another agrees: the values and status stay the
    same, but the counted report and the number of current reports change, and the event says so."""
    steps = [
        (VOLUNTEER_A, "TPS 012 01=120 02=98 03=150"),
        (VOLUNTEER_B, "TPS 012 01=120 02=98 03=150"),  # verified
        (VOLUNTEER_A, "TPS 012 01=120 02=98 03=150 "),  # the same values again: supersedes A's
        (VOLUNTEER_C, "TPS 012 01=120 02=98 03=150"),  # a third agrees: 3 current reports
        (VOLUNTEER_C, "TPS 012 01=121 02=98 03=150"),  # ... then dissents
        (VOLUNTEER_C, "BATAL"),
    ]
    dissent = []
    for phone, body in steps:
        assert sms(phone, body).startswith("OK"), (phone, body)
        state = _latest_state(database)
        assert (state["reference"], state["report_count"], state["dissent"]) == _ours(database), body
        dissent.append(state["dissent"])
    assert _latest_state(database)["status"] == "verified"
    assert 1 in dissent and dissent[-1] == 0


def test_nothing_changed_nothing_emitted(database, sms):  # type: ignore[no-untyped-def]
    sms(VOLUNTEER_A, "TPS 012 01=120 02=98 03=150")
    before = len(_events(database))
    assert sms(VOLUNTEER_A, "CEK").startswith("OK")
    assert len(_events(database)) == before


@pytest.mark.parametrize("status", ["overridden", "verified"])
def test_a_version_1_destination_gets_what_version_1_can_say(database, world, status):  # type: ignore[no-untyped-def]
    """``overridden`` (version 2) goes to a version 1 destination as ``disputed``; a snapshot as
    a ``station.status_changed``; neither carries ``station_sequence``."""
    with database.begin() as session:
        result = lock(session, STATION)
        data = {
            "status": status,
            "votes": {"01": 3, "02": 4},
            "valid": 7,
            "invalid": 0,
            "flagged": True,
            "reference": "K7Q2XM",
            "report_count": 2,
            "dissent": 1,
            "updated_at": "2024-02-14T07:00:00+00:00",
        }
        changed = outbox.emit(
            session,
            outbox.STATION_STATUS_CHANGED,
            {**data, "previous_status": "verified"},
            station_id=STATION,
        )
        snapshot = outbox.emit(session, outbox.STATION_SNAPSHOT, data, station_id=STATION, destination="hq")
        session.flush()
        assert (changed.station_sequence, snapshot.station_sequence) == (1, 1) == (result.event_sequence, 1)
        documents = {
            (event.type, version): outbox.document(event, version)
            for event in (changed, snapshot)
            for version in (1, 2)
        }
    for (kind, version), document in documents.items():
        assert not event_schemas.errors(document), (kind, version, event_schemas.errors(document))
    v1_status = "disputed" if status == "overridden" else status
    old = documents[(outbox.STATION_SNAPSHOT, 1)]
    assert old["type"] == outbox.STATION_STATUS_CHANGED and "station_sequence" not in old
    assert (old["data"]["status"], old["data"]["previous_status"]) == (v1_status, v1_status)
    assert documents[(outbox.STATION_STATUS_CHANGED, 1)]["data"]["status"] == v1_status
    assert documents[(outbox.STATION_STATUS_CHANGED, 2)]["data"]["status"] == status
    assert documents[(outbox.STATION_STATUS_CHANGED, 2)]["data"]["dissent"] == 1
    assert "dissent" not in documents[(outbox.STATION_STATUS_CHANGED, 1)]["data"]
    assert documents[(outbox.STATION_SNAPSHOT, 2)]["station_sequence"] == 1


def test_an_event_written_by_the_orm_flush_stores_every_value_it_was_given(database, world):  # type: ignore[no-untyped-def]
    """``emit`` fills a new event's columns without the ORM's attribute events; the ORM's own
    flush (what writes events beside anything of another shape) still inserts every one of
    them, and the database's own columns (``seq``, ``dispatched_at``) are left to it."""
    moment = datetime(2024, 2, 14, 7, 0, 1, 250000, tzinfo=UTC)
    with database.begin() as session:
        lock(session, STATION)
        data = {"report": {"ref": "K7Q2XM", "votes": {"01": 3}}}
        event = outbox.emit(
            session, outbox.REPORT_ACCEPTED, data, station_id=STATION, occurred_at=moment, destination="hq"
        )
        session.flush()  # the ORM's unit of work, not the report path's prebuilt statement
        given = (event.id, event.seq)
    with database.read() as session:
        stored = session.execute(select(OutboxEvent).where(OutboxEvent.id == given[0])).scalar_one()
        assert (stored.seq, stored.type, stored.schema_version) == (given[1], "report.accepted", 2)
        assert (stored.station_id, stored.station_sequence, stored.destination) == (STATION, 1, "hq")
        assert (stored.created_at, stored.dispatched_at) == (moment, None)
        assert stored.payload == {
            "station": {
                "id": STATION,
                "tps": 12,
                "regions": {
                    "province": "63",
                    "kabupaten": "63.71",
                    "kecamatan": "63.71.01",
                    "desa": "63.71.01.1001",
                },
            },
            "data": data,
        }
