"""The outbound queue against a fake provider HTTP server on localhost, driven by a fake clock."""

from __future__ import annotations

import os
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from smsgate.db import Database
from smsgate.models import OutboundMessage
from smsgate.outgoing.senders import AndroidSender, KannelSender, TwilioSender
from smsgate.outgoing.sms_job import OutboundJob
from smsgate.services.outbound import enqueue
from tests.gateways.helpers import android_post, envelope, fake_provider
from tests.support import VOLUNTEER_A

T0 = datetime(2024, 2, 14, 8, 0, tzinfo=UTC)
FAST = {"twilio": 1000.0, "android": 1000.0, "kannel": 1000.0}


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def rows(database: Database) -> list[OutboundMessage]:
    with database.read() as session:
        return list(session.scalars(select(OutboundMessage).order_by(OutboundMessage.id)))


def queue(database: Database, n: int, provider: str = "kannel", now: datetime = T0) -> None:
    with database.begin() as session:
        for i in range(n):
            enqueue(
                session, to=f"+62811000{i:05d}", text=f"msg {i}", provider=provider, kind="broadcast", now=now
            )


def test_android_reply_goes_out_through_the_gateway_send_api(client, database, world, settings):  # type: ignore[no-untyped-def]
    assert android_post(client, envelope(VOLUNTEER_A, "TPS 012 01=123 02=98 03=150")).status_code == 200
    [row] = rows(database)
    assert (row.status, row.provider, row.to_number) == ("queued", "android", VOLUNTEER_A)
    now = datetime.now(UTC) + timedelta(seconds=1)
    with fake_provider() as fake:
        sender = AndroidSender(fake.url + "/message", "sms", "secret-pw")
        job = OutboundJob(replace(settings, send_rates=FAST), senders={"android": sender}, clock=Clock(now))
        assert job.run_once(database) == 1
        assert job.run_once(database) == 0
    [request] = fake.requests
    assert request["path"] == "/message" and fake.basic_auth() == ("sms", "secret-pw")
    assert request["json"] == {
        "textMessage": {"text": row.text},
        "phoneNumbers": [VOLUNTEER_A],
        "id": f"smsgate-{row.id}",
    }
    [sent] = rows(database)
    assert (sent.status, sent.attempts, sent.provider_message_id) == ("sent", 1, f"smsgate-{row.id}")
    assert sent.sent_at == now


def test_failures_are_retried_with_exponential_backoff_then_sent(database, settings):  # type: ignore[no-untyped-def]
    queue(database, 1)
    clock = Clock()
    with fake_provider(fail_first=2) as fake:
        sender = KannelSender(fake.url + "/cgi-bin/sendsms", "smsgate", "pw", sender="1234")
        config = replace(settings, send_rates=FAST, outbound_backoff_seconds=30)
        job = OutboundJob(config, senders={"kannel": sender}, clock=clock, jitter=lambda: 1.0)  # no jitter
        assert job.run_once(database) == 1  # attempt 1 fails
        [row] = rows(database)
        assert (row.status, row.attempts, row.next_attempt_at) == ("queued", 1, T0 + timedelta(seconds=30))
        assert row.last_error.startswith("HTTP 500")
        clock.advance(29)
        assert job.run_once(database) == 0  # not due yet
        clock.advance(1)
        assert job.run_once(database) == 1  # attempt 2 fails, next wait doubles
        assert rows(database)[0].next_attempt_at == clock.now + timedelta(seconds=60)
        clock.advance(60)
        assert job.run_once(database) == 1  # attempt 3 succeeds
    assert len(fake.requests) == 3
    assert fake.requests[-1]["args"] == {
        "username": "smsgate",
        "password": "pw",
        "to": "+6281100000000",
        "text": "msg 0",
        "from": "1234",
    }
    [row] = rows(database)
    assert (row.status, row.attempts, row.last_error) == ("sent", 3, None)


def test_jitter_spreads_retries(settings):  # type: ignore[no-untyped-def]
    from smsgate.outgoing.retry import Backoff

    backoff = Backoff(30, 3600)  # the SMS queue's: SMSGATE_OUTBOUND_BACKOFF_SECONDS, capped at 1 h
    assert backoff.seconds(1, 0.0) == 15  # "equal jitter": 50-100% of the doubled delay
    assert backoff.seconds(3, 0.5) == 120 * 0.75
    assert backoff.seconds(30, 1.0) == 3600
    assert backoff.seconds(1, 0.0, retry_after=90) == 90  # Retry-After honoured...
    assert backoff.seconds(1, 0.0, retry_after=7200) == 3600  # ...up to the cap


def test_final_failure_after_max_attempts_and_at_once_when_refused(database, settings):  # type: ignore[no-untyped-def]
    queue(database, 1)
    clock = Clock()
    with fake_provider(fail_first=10**6) as fake:
        config = replace(settings, send_rates=FAST, outbound_max_attempts=3, outbound_backoff_seconds=1)
        job = OutboundJob(config, senders={"kannel": KannelSender(fake.url, "u", "p")}, clock=clock)
        for _ in range(10):
            job.run_once(database)
            clock.advance(3600)
    [row] = rows(database)
    assert (row.status, row.attempts, len(fake.requests)) == ("failed", 3, 3)
    queue(database, 1, now=clock.now)
    with fake_provider(fail_first=10**6, fail_status=400) as fake:
        job = OutboundJob(config, senders={"kannel": KannelSender(fake.url, "u", "p")}, clock=clock)
        job.run_once(database)
        clock.advance(3600)
        job.run_once(database)
    assert (rows(database)[1].status, rows(database)[1].attempts, len(fake.requests)) == ("failed", 1, 1)


def test_twilio_sender_uses_the_rest_api_with_a_status_callback(database, settings):  # type: ignore[no-untyped-def]
    queue(database, 1, provider="twilio")
    with fake_provider() as fake:
        sender = TwilioSender(
            "AC00000000000000000000000000000000",
            "test-auth-token",
            "+15005550006",
            status_callback="https://smsgate.example.org/webhooks/twilio/status",
            base_url=fake.url,
        )
        job = OutboundJob(replace(settings, send_rates=FAST), senders={"twilio": sender}, clock=Clock())
        assert job.run_once(database) == 1
    [request] = fake.requests
    assert request["path"] == "/2010-04-01/Accounts/AC00000000000000000000000000000000/Messages.json"
    assert request["form"]["StatusCallback"] == "https://smsgate.example.org/webhooks/twilio/status"
    assert (request["form"]["To"], request["form"]["Body"]) == ("+6281100000000", "msg 0")
    assert rows(database)[0].provider_message_id.startswith("SM")


def test_send_rate_is_shared_by_all_workers(database, settings):  # type: ignore[no-untyped-def]
    queue(database, 5)
    clock = Clock()
    with fake_provider() as fake:
        config = replace(settings, send_rates={"kannel": 0.5})  # one SMS every two seconds
        workers = [
            OutboundJob(config, senders={"kannel": KannelSender(fake.url, "u", "p")}, clock=clock)
            for _ in "ab"
        ]
        sent = [sum(w.run_once(database) for w in workers)]
        for _ in range(4):
            clock.advance(1)
            sent.append(sum(w.run_once(database) for w in workers))
    assert sent == [1, 0, 1, 0, 1]
    assert len(fake.requests) == 3


def test_a_dead_workers_lease_expires_and_its_late_result_is_ignored(database, settings):  # type: ignore[no-untyped-def]
    queue(database, 1)
    clock = Clock()
    with fake_provider() as fake:
        config = replace(settings, send_rates=FAST)
        sender = KannelSender(fake.url, "u", "p")
        dead = OutboundJob(config, senders={"kannel": sender}, clock=clock)
        [(row_id, token, *_rest)] = dead.claim(database)  # claimed, then the worker "dies"
        alive = OutboundJob(config, senders={"kannel": sender}, clock=clock)
        assert alive.run_once(database) == 0  # the lease still holds
        clock.advance(121)
        assert alive.run_once(database) == 1
        dead.deliver(database, row_id, token, sender, "+62", "late")  # a zombie finishing late
    [row] = rows(database)
    assert (row.status, row.attempts, row.claim_token) == ("sent", 2, None)


def test_two_workers_never_send_the_same_row_twice(database_url, database, settings):  # type: ignore[no-untyped-def]
    total = 120
    queue(database, total)
    with fake_provider() as fake:
        config = replace(settings, send_rates=FAST)
        errors: list[BaseException] = []

        def work() -> None:
            own = Database.from_url(database_url)  # each worker its own connections
            try:
                job = OutboundJob(config, senders={"kannel": KannelSender(fake.url, "u", "p")}, batch=7)
                while job.run_once(own):
                    pass
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
            finally:
                own.dispose()

        threads = [threading.Thread(target=work) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert not errors
    texts = [r["args"]["text"] for r in fake.requests]
    assert len(texts) == total and len(set(texts)) == total
    assert {r.status for r in rows(database)} == {"sent"}


@pytest.mark.skipif(
    not os.environ.get("SMSGATE_TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="SKIP LOCKED claims need PostgreSQL (SMSGATE_TEST_DATABASE_URL)",
)
def test_concurrent_claims_on_postgresql_skip_locked_rows(database_url, database, settings):  # type: ignore[no-untyped-def]
    queue(database, 10)
    config = replace(settings, send_rates=FAST)
    first = Database.from_url(database_url)
    try:
        with first.begin() as session:  # a worker mid-claim holds row locks on the first rows
            held = session.scalars(
                select(OutboundMessage).order_by(OutboundMessage.id).limit(4).with_for_update()
            ).all()
            other = OutboundJob(config, senders={"kannel": KannelSender("http://127.0.0.1:9", "u", "p")})
            claimed = other.claim(database)
            assert {c[0] for c in claimed}.isdisjoint({r.id for r in held})
            assert len(claimed) == 6
    finally:
        first.dispose()
