"""End to end: reports through the signed webhook, the outbox job, the reference receiver on localhost."""

from __future__ import annotations

import random
import uuid

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from smsgate.cli import main
from smsgate.models import OutboxDelivery, OutboxEvent
from smsgate.models.outbox import DEAD, DELIVERED, PENDING
from smsgate.outgoing.event_job import OutboxJob

from ..support import VOLUNTEER_A
from .support import (
    assert_receiver_matches,
    drain,
    election_night,
    free_port,
    outbox_settings,
    remaining,
    running_receiver,
    send_all,
)


def deliveries(database) -> list[OutboxDelivery]:  # type: ignore[no-untyped-def]
    with database.read() as session:
        return list(session.scalars(select(OutboxDelivery).order_by(OutboxDelivery.event_seq)))


def test_every_accepted_report_arrives_once_in_effect(database, settings, sms, tmp_path):  # type: ignore[no-untyped-def]
    send_all(sms, election_night(random.Random(1)))
    with running_receiver(tmp_path) as receiver:
        config = outbox_settings(settings, receiver.url)
        job = OutboxJob(config)
        drain(database, job, config)
        assert_receiver_matches(database, receiver)
        # Replaying everything (an operator's mistake, a restored backup) changes nothing in effect.
        with database.begin() as session:
            for delivery in session.scalars(select(OutboxDelivery)):
                delivery.status = PENDING
        drain(database, job, config)
        assert_receiver_matches(database, receiver)
        assert all(n == 2 for n in receiver.faults.posts.values())
        job.close()
    with database.read() as session:
        types = {e.type for e in session.scalars(select(OutboxEvent))}
    assert types == {
        "report.accepted",
        "report.superseded",
        "report.cancelled",
        "station.status_changed",
    }


def test_an_event_exists_only_if_its_change_committed(database, settings, sms):  # type: ignore[no-untyped-def]
    assert sms(VOLUNTEER_A, "TPS 012 01=10 02=20 03=30").startswith("OK")
    with database.read() as session:
        before = [
            (e.type, e.station_id) for e in session.scalars(select(OutboxEvent).order_by(OutboxEvent.seq))
        ]
    assert before == [("report.accepted", "6371011001012"), ("station.status_changed", "6371011001012")]
    assert sms(VOLUNTEER_A, "TPS 012 01=10 02=20").startswith("GAGAL")  # rejected: no change, no event
    assert sms(VOLUNTEER_A, "TPS 012 01=11 02=20 03=30").startswith("OK")
    with database.read() as session:
        after = [e.type for e in session.scalars(select(OutboxEvent).order_by(OutboxEvent.seq))]
    assert after[2:] == ["report.accepted", "report.superseded", "station.status_changed"]

    from smsgate.services import outbox

    with pytest.raises(RuntimeError), database.begin() as session:
        outbox.emit(session, outbox.REPORT_ACCEPTED, {"report": {}}, station_id="6371011001012")
        raise RuntimeError("the change fails after the event was written")
    with database.read() as session:
        assert len(list(session.scalars(select(OutboxEvent)))) == len(after)


def test_event_ids_are_time_ordered_uuids_in_sequence_order(database, sms):  # type: ignore[no-untyped-def]
    """Event ids are UUIDs of version 7: those one process makes grow with ``seq``, so the
    unique index on them is written at its end, not at a random page for every event."""
    send_all(sms, election_night(random.Random(7), rounds=3))
    with database.read() as session:
        ids = list(session.scalars(select(OutboxEvent.id).order_by(OutboxEvent.seq)))
    assert len(ids) > 20
    assert {uuid.UUID(i).version for i in ids} == {7}
    assert {str(uuid.UUID(i)) for i in ids} == set(ids)  # canonical text
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_receiver_down_for_a_while_then_up(database, settings, sms, tmp_path):  # type: ignore[no-untyped-def]
    send_all(sms, election_night(random.Random(2), rounds=4))
    port = free_port()
    config = outbox_settings(settings, f"http://127.0.0.1:{port}/events")
    job = OutboxJob(config)
    for _ in range(5):  # nobody listening: connection refused, every time
        job.run_once(database, config)
    failed = deliveries(database)
    assert failed and all(d.status == PENDING for d in failed)
    assert any(d.attempts >= 2 and "ConnectionError" in (d.last_error or "") for d in failed)
    with running_receiver(tmp_path, port=port) as receiver:
        drain(database, job, config)
        assert_receiver_matches(database, receiver)
    job.close()
    assert all(d.status == DELIVERED for d in deliveries(database))


def test_receiver_answering_500_then_200(database, settings, sms, tmp_path):  # type: ignore[no-untyped-def]
    send_all(sms, election_night(random.Random(3), rounds=3))
    with running_receiver(tmp_path) as receiver:
        receiver.faults.fail_status, receiver.faults.fail_next = 500, 25
        config = outbox_settings(settings, receiver.url)
        job = OutboxJob(config)
        drain(database, job, config)
        job.close()
        assert_receiver_matches(database, receiver)
        assert receiver.faults.fail_next <= 0
    done = deliveries(database)
    assert any(d.attempts > 1 for d in done) and all(d.status == DELIVERED for d in done)


def test_429_is_retried_too(database, settings, sms, tmp_path):  # type: ignore[no-untyped-def]
    send_all(sms, election_night(random.Random(4), rounds=1))
    with running_receiver(tmp_path) as receiver:
        receiver.faults.fail_status, receiver.faults.fail_next = 429, 3
        config = outbox_settings(settings, receiver.url)
        job = OutboxJob(config)
        drain(database, job, config)
        job.close()
        assert_receiver_matches(database, receiver)


def test_slow_receiver_times_out_and_the_retry_is_deduplicated(database, settings, sms, tmp_path):  # type: ignore[no-untyped-def]
    send_all(sms, election_night(random.Random(5), rounds=2))
    with running_receiver(tmp_path) as receiver:
        receiver.faults.delay, receiver.faults.delay_next = 0.4, 4
        config = outbox_settings(settings, receiver.url, outbox_timeout_seconds=0.15)
        job = OutboxJob(config)
        drain(database, job, config)
        job.close()
        assert_receiver_matches(database, receiver, after_timeouts=True)
        # The slow requests were applied by the receiver after we gave up; the retries were duplicates.
        assert sum(n > 1 for n in receiver.faults.posts.values()) >= 1
    assert any("timeout" in (d.last_error or "") or d.attempts > 1 for d in deliveries(database))


def test_rejected_event_is_dead_later_ones_continue_and_retry_dead_replays(  # type: ignore[no-untyped-def]
    database, database_url, settings, sms, tmp_path, monkeypatch
):
    send_all(sms, [(VOLUNTEER_A, "TPS 012 01=10 02=20 03=30")])
    with running_receiver(tmp_path) as receiver:
        config = outbox_settings(settings, receiver.url)
        job = OutboxJob(config)
        receiver.faults.fail_status, receiver.faults.fail_next = 422, 1  # the first event is refused
        drain(database, job, config)
        states = [d.status for d in deliveries(database)]
        assert states == [DEAD, DELIVERED], "a dead event does not hold back the station's later events"

        monkeypatch.setenv("SMSGATE_DATABASE_URL", database_url)
        cli = CliRunner()
        result = cli.invoke(main, ["outbox", "status"])
        assert result.exit_code == 0, result.output
        assert "tally: 0 pending, 1 delivered, 1 dead" in result.output
        result = cli.invoke(main, ["outbox", "retry", "--dead"])
        assert result.exit_code == 0, result.output
        assert "1 dead delivery due now" in result.output
        drain(database, job, config)
        job.close()
        assert [d.status for d in deliveries(database)] == [DELIVERED, DELIVERED]
        # The replayed event is older than what the receiver holds: it is recorded, not applied.
        assert_receiver_matches(database, receiver, ordered=False)
        result = cli.invoke(main, ["outbox", "status", "--json"])
        assert '"delivered": 2' in result.output


def test_dead_after_max_attempts(database, settings, sms, tmp_path):  # type: ignore[no-untyped-def]
    send_all(sms, [(VOLUNTEER_A, "TPS 012 01=10 02=20 03=30")])
    with running_receiver(tmp_path) as receiver:
        receiver.faults.fail_status, receiver.faults.fail_next = 503, 1000
        config = outbox_settings(settings, receiver.url, outbox_max_attempts=3)
        job = OutboxJob(config)
        drain(database, job, config)
        job.close()
    dead = deliveries(database)
    assert [(d.status, d.attempts) for d in dead] == [(DEAD, 3), (DEAD, 3)]
    assert "HTTP 503" in (dead[0].last_error or "")
    assert remaining(database) == 0


def test_a_station_s_events_go_out_in_one_pass_in_sequence_order(database, settings, sms, tmp_path):  # type: ignore[no-untyped-def]
    """A report's ``report.accepted`` and ``station.status_changed`` are leased together and sent
    one after the other: one pass delivers both, where waiting for the first to be recorded
    before claiming the second took a pass each."""
    send_all(sms, [(VOLUNTEER_A, "TPS 012 01=10 02=20 03=30"), (VOLUNTEER_A, "TPS 012 01=11 02=20 03=30")])
    with running_receiver(tmp_path) as receiver:
        # A lease of 20 s and requests of 1 s at most: up to 12 of a station's events per pass.
        config = outbox_settings(settings, receiver.url, outbox_lease_seconds=20)
        job = OutboxJob(config)
        assert job.run_once(database, config) == 5 + 5  # dispatched, then delivered
        job.close()
        assert [d.status for d in deliveries(database)] == [DELIVERED] * 5
        assert [e["sequence"] for e in receiver.store.events()] == sorted(
            e["sequence"] for e in receiver.store.events()
        )
        assert_receiver_matches(database, receiver)


def test_a_failure_holds_back_its_station_s_later_events_untried(database, settings, sms, tmp_path):  # type: ignore[no-untyped-def]
    send_all(sms, [(VOLUNTEER_A, "TPS 012 01=10 02=20 03=30")])
    with running_receiver(tmp_path) as receiver:
        config = outbox_settings(
            settings, receiver.url, outbox_backoff_seconds=60, outbox_backoff_max_seconds=60
        )
        job = OutboxJob(config)
        receiver.faults.fail_status, receiver.faults.fail_next = 503, 1
        job.run_once(database, config)
        first, second = deliveries(database)
        assert (first.status, first.attempts, first.lease_owner) == (PENDING, 1, None)
        assert (second.status, second.attempts, second.lease_owner) == (PENDING, 0, None)
        assert sum(receiver.faults.posts.values()) == 1, "the later event was not sent before the first"
        assert job.run_once(database, config) == 0, "the first waits out its backoff; the second waits for it"
        with database.begin() as session:  # the backoff is over
            for delivery in session.scalars(select(OutboxDelivery)):
                delivery.next_attempt_at = delivery.created_at
        assert job.run_once(database, config) == 2
        job.close()
        assert_receiver_matches(database, receiver)
