"""What a report leaves for commit (the message row, the result row, reports of the station,
the flags the checks added, the events, the region counters) is written by
``services/pending_writes.py`` in one statement on PostgreSQL instead of the ORM's flush.
Through signed webhooks into a real database, a station's night (agreement, dissent, a flagged
report, a correction, a cancel that leaves the work to the ORM) must leave exactly the rows the
rules say: counters without drift, a gapless event sequence in commit order, superseded and
outvoted reports marked, the flags with every column."""

from __future__ import annotations

import os

import psycopg
import pytest
from sqlalchemy import func, make_url, select

from smsgate.inbound import InboundSMS
from smsgate.models import Flag, InboundMessage, OutboxEvent, RegionCounter, Report, StationResult
from smsgate.outgoing import wakeup
from smsgate.services import counters, pending_writes, recount, station_lock
from smsgate.services.ingest import Ingest
from tests.report_path.test_round_trips import with_default_flood_control
from tests.support import COORD_KOTA, UNKNOWN, VOLUNTEER_A, VOLUNTEER_B, VOLUNTEER_C, WITH_PIN, new_sid

MANTUIL_12 = "6371011001012"


def test_a_stations_night_leaves_exact_rows(sms, database):
    steps = [
        (VOLUNTEER_A, "TPS 012 01=152 02=98 03=150"),
        (VOLUNTEER_B, "TPS 012 01=152 02=98 03=150"),
        (VOLUNTEER_C, "TPS 012 01=652 02=98 03=150"),  # one digit apart, too many: two new flags
        (VOLUNTEER_C, "TPS 012 01=152 02=98 03=150"),  # corrected: supersedes the misread
        (COORD_KOTA, f"TPS 6371011001012 01=152 02=98 03=150{WITH_PIN}"),
    ]
    replies = [sms(phone, body) for phone, body in steps]
    assert all(reply.startswith("OK") for reply in replies), replies
    with database.read() as session:
        assert recount.verify(session) == []
        reports = list(
            session.scalars(select(Report).where(Report.station_id == MANTUIL_12).order_by(Report.id))
        )
        assert len(reports) == 5
        misread, correction = reports[2], reports[3]
        assert misread.superseded_by_id == correction.id and misread.superseded_at is not None
        # Two against one was no qualified majority: disputed, nobody outvoted.
        assert misread.flagged and not misread.outvoted
        # Two checks fired on the misread (900 ballots at a TPS of 400), its flags in their order.
        flags = list(session.scalars(select(Flag).order_by(Flag.id)))
        assert [(f.station_id, f.kind, f.report_id) for f in flags] == [
            (MANTUIL_12, "over_capacity", misread.id),
            (MANTUIL_12, "one_digit", misread.id),
        ]
        assert flags[1].reason.startswith("Beda 1 digit: 01=652") and misread.ref in flags[1].reason
        assert all(f.created_at == misread.created_at and f.resolved_at is None for f in flags)
        assert all(f.resolved_by is None for f in flags)
        assert not any(
            r.outvoted or r.superseded_at for r in (reports[0], reports[1], correction, reports[4])
        )
        result = session.get(StationResult, MANTUIL_12)
        assert (result.status, result.report_count, result.dissent, result.flagged) == (
            "verified",
            4,
            0,
            False,
        )
        assert result.report_id == reports[4].id and result.votes == {"01": 152, "02": 98, "03": 150}
        events = list(
            session.scalars(
                select(OutboxEvent).where(OutboxEvent.station_id == MANTUIL_12).order_by(OutboxEvent.seq)
            )
        )
        assert [e.station_sequence for e in events] == list(range(1, len(events) + 1))
        assert result.event_sequence == len(events)
        assert [e.type for e in events].count("report.superseded") == 1
        assert events[-1].type == "station.status_changed"
        assert events[-1].payload["data"]["report_count"] == 4
        messages = list(session.scalars(select(InboundMessage).order_by(InboundMessage.id)))
        assert [m.reply for m in messages] == replies
        assert all(m.contact_id is not None and m.outcome in ("accepted", "flagged") for m in messages)
    # A cancel takes the ORM's way (the cancelled report is a change of another shape).
    assert sms(VOLUNTEER_B, f"BATAL {reports[1].ref}").startswith("OK")
    with database.read() as session:
        assert recount.verify(session) == []
        assert session.get(StationResult, MANTUIL_12).report_count == 3


def test_counters_held_back_are_written_once_with_their_sums(database):
    """Two additions of one counter in a transaction that defers them become one row (one
    statement may upsert a row once), and the totals are those of two separate additions."""
    with database.begin() as session:
        counters.defer(session)
        counters.add(session, "6371011001", {"reported": 1, "v:01": 5}, shard=3)
        counters.add(session, "6371011002", {"reported": 1, "v:01": -2}, shard=3)
        assert session.info  # held back: nothing written yet
        rows = counters.take_deferred(session)
        keys = [(row["region_key"], row["name"]) for row in rows]
        assert len(keys) == len(set(keys))
        counters.write(session, rows)
        counters.add(session, "6371011001", {"reported": 1}, shard=3)  # no longer held back
    with database.read() as session:
        values = {
            (key, name): value
            for key, name, value in session.execute(
                select(RegionCounter.region_key, RegionCounter.name, RegionCounter.value).where(
                    RegionCounter.shard == 3
                )
            )
        }
    assert values[("", "reported")] == 3 and values[("", "v:01")] == 3
    assert values[("6371011001", "reported")] == 2 and values[("6371011002", "v:01")] == -2


postgres = pytest.mark.skipif(
    not os.environ.get("SMSGATE_TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="the outbox's wake-up is PostgreSQL's NOTIFY",
)


@postgres
def test_only_a_message_that_writes_events_wakes_the_outbox(sms, world, database, database_url, settings):
    """The wake-up trigger fires once per ``INSERT INTO outbox_events`` statement, even one of
    no rows: a message that writes no event (unknown sender, unknown text, an invalid report,
    CEK, a flood-held one) must not wake every worker. Counted without timing: a marker
    notified after the last message arrives after every notification committed before it."""
    listener = psycopg.connect(
        make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False),
        autocommit=True,
    )
    try:
        listener.execute(f"LISTEN {wakeup.CHANNEL}")
        flooded = Ingest(database, with_default_flood_control(settings))
        assert sms(UNKNOWN, "hello") is not None
        assert sms(VOLUNTEER_A, "hello") is not None
        assert not sms(VOLUNTEER_A, "TPS 999 01=x").startswith("OK")
        assert sms(VOLUNTEER_A, "CEK").startswith("OK")
        with database.read() as session:
            assert session.scalar(select(func.count()).select_from(OutboxEvent)) == 0
        assert sms(VOLUNTEER_B, "TPS 012 01=152 02=98 03=150").startswith("OK")  # writes events
        first = flooded.receive(InboundSMS("twilio", new_sid(), VOLUNTEER_A, "hello hello"))
        held = flooded.receive(InboundSMS("twilio", new_sid(), VOLUNTEER_A, "hello hello"))
        assert first.outcome != "duplicate_text" and held.outcome == "duplicate_text"
        listener.execute(f"NOTIFY {wakeup.CHANNEL}, 'end'")
        payloads: list[str] = []
        for note in listener.notifies(timeout=60):
            if note.payload == "end":
                break
            payloads.append(note.payload)
        else:
            raise AssertionError("the marker notification never arrived")
    finally:
        listener.close()
    assert payloads == [""]  # the report's transaction, nothing else
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(OutboxEvent)) > 0


def test_an_attribute_expired_before_the_write_keeps_its_stored_value(sms, database):
    """The rows are written whole from the objects' loaded values: an attribute expired (or
    never loaded) has none, and must not be written as NULL. Such objects are left to the
    ORM's flush, which writes only what changed."""
    reply = sms(VOLUNTEER_A, "TPS 012 01=152 02=98 03=150")
    assert reply.startswith("OK")
    with database.begin() as session:
        message = session.scalars(select(InboundMessage).order_by(InboundMessage.id.desc())).first()
        result = session.get(StationResult, MANTUIL_12)
        assert message is not None and result is not None
        message.error_code = "checked"
        session.expire(message, ["reply"])
        result.flagged = True
        session.expire(result, ["votes", "report_id"])
        pending_writes.write(session)
    with database.read() as session:
        message = session.scalars(select(InboundMessage).order_by(InboundMessage.id.desc())).first()
        result = session.get(StationResult, MANTUIL_12)
        assert (message.error_code, message.reply) == ("checked", reply)
        assert result.flagged and result.report_id is not None
        assert result.votes == {"01": 152, "02": 98, "03": 150}


def test_a_result_row_locked_again_after_the_write_is_a_live_one(sms, database):
    """``write`` removes the rows it wrote from the session; the station lock's cache of the
    transaction must not hand the removed result row out again, or a later change to it in
    the same transaction would be lost without a word."""
    assert sms(VOLUNTEER_A, "TPS 012 01=152 02=98 03=150").startswith("OK")
    with database.begin() as session:
        result = station_lock.lock(session, MANTUIL_12)
        result.flagged = True
        assert pending_writes.write(session)
        again = station_lock.lock(session, MANTUIL_12)
        assert again is not result and again.flagged  # read again, as written, still locked
        again.dissent = 7
    with database.read() as session:
        result = session.get(StationResult, MANTUIL_12)
        assert (result.flagged, result.dissent) == (True, 7)
