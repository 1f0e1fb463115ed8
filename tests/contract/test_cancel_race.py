"""Two ``BATAL`` for one report at once (PostgreSQL): the report is cancelled once, one
``report.cancelled`` event goes out, and the second text is told there was nothing left to cancel.

The race is made certain rather than hoped for: the test holds the station's result row lock
while both signed Twilio webhooks run in threads (through the Flask app, and through two
processes of a real ``smsgate serve``), waits until PostgreSQL shows both requests
waiting for that lock (so both chose their report before either cancelled it), and only then
lets them go.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, select, text

from smsgate.models import OutboxEvent, Report
from smsgate.services.outbox import REPORT_CANCELLED

from ..outbox.support import free_port
from ..support import (
    AUTH_TOKEN,
    COORD_KOTA,
    PUBLIC_URL,
    VOLUNTEER_A,
    WITH_PIN,
    TwilioSender,
    twilio_signature,
    twiml_text,
)

pytestmark = pytest.mark.skipif(
    not os.environ.get("SMSGATE_TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="the race needs PostgreSQL's row locks (SMSGATE_TEST_DATABASE_URL)",
)

STATION = "6371011001012"  # Mantuil TPS 012, VOLUNTEER_A's station


def _waiting_for_locks(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        return connection.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
        ).scalar_one()


def _race(app, database_url: str, bodies: list[str], phones: list[str] | None = None) -> list[str | None]:  # type: ignore[no-untyped-def]
    """Send ``bodies`` at once (from ``phones``, by default all from VOLUNTEER_A), all reaching
    the station lock before any cancels. ``app`` is the Flask app, or the URL of a running
    ``smsgate serve``."""
    senders = phones or [VOLUNTEER_A] * len(bodies)
    engine = create_engine(database_url)
    replies: list[str | None] = [None] * len(bodies)
    errors: list[BaseException] = []

    def send(n: int) -> None:
        try:
            if isinstance(app, str):
                replies[n] = _post(app, senders[n], bodies[n])
            else:
                replies[n] = TwilioSender(app.test_client())(senders[n], bodies[n])
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    try:
        with engine.connect() as holder:
            holder.execute(
                text("SELECT 1 FROM station_results WHERE station_id = :s FOR UPDATE"), {"s": STATION}
            )
            threads = [threading.Thread(target=send, args=(n,)) for n in range(len(bodies))]
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 20
            while _waiting_for_locks(engine) < len(bodies):
                assert time.monotonic() < deadline, "the requests never reached the station lock"
                assert not errors, errors
                time.sleep(0.05)
            holder.rollback()  # release the lock: both go, one after the other
        for thread in threads:
            thread.join(30)
        assert not errors, errors
    finally:
        engine.dispose()
    return replies


def _post(base: str, phone: str, body: str) -> str | None:
    """A signed Twilio webhook to a real server; the reply text."""
    form = TwilioSender(None).form(phone, body)
    signature = twilio_signature(PUBLIC_URL + TwilioSender.path, form)
    response = requests.post(
        base + TwilioSender.path, data=form, headers={"X-Twilio-Signature": signature}, timeout=60
    )
    assert response.status_code == 200, response.text
    return twiml_text(response.text)


@contextmanager
def _server(database_url: str, tmp_path: Path) -> Iterator[str]:
    """``smsgate serve`` (two processes) on the test database, flood control off as in the tests."""
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SMSGATE_", "TWILIO_"))}
    env = base | {
        "SMSGATE_DATABASE_URL": database_url,
        "SMSGATE_PUBLIC_URL": PUBLIC_URL,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "SMSGATE_FLOOD_PER_MINUTE": "0",
        "SMSGATE_FLOOD_REPLIES_PER_HOUR": "0",
        "SMSGATE_FLOOD_DUPLICATE_SECONDS": "0",
    }
    log = tmp_path / "serve.log"
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("smsgate")), "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if requests.get(url + "/healthz", timeout=3).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)


def _cancellations(database) -> tuple[list[OutboxEvent], list[Report]]:  # type: ignore[no-untyped-def]
    with database.read() as session:
        events = list(session.scalars(select(OutboxEvent).where(OutboxEvent.type == REPORT_CANCELLED)))
        cancelled = list(session.scalars(select(Report).where(Report.cancelled_at.is_not(None))))
        session.expunge_all()
    return events, cancelled


def _cancelled_once(database, replies: list[str | None]) -> None:  # type: ignore[no-untyped-def]
    """Of two plain ``BATAL`` at once, one cancelled the report and the other found nothing to
    cancel: one report cancelled, one event for it."""
    done = [r for r in replies if r and r.startswith("OK") and "dibatalkan" in r]
    assert len(done) == 1, replies
    assert any(r and r.startswith("GAGAL: tidak ada laporan") for r in replies), replies
    events, cancelled = _cancellations(database)
    assert len(cancelled) == 1
    assert [e.payload["data"]["report"]["ref"] for e in events] == [cancelled[0].ref]


def test_two_batal_at_once_cancel_the_report_once(app, database, database_url, sms):  # type: ignore[no-untyped-def]
    assert sms(VOLUNTEER_A, "TPS 012 01=120 02=98 03=150").startswith("OK")

    replies = _race(app, database_url, ["BATAL", "BATAL"])

    _cancelled_once(database, replies)


def test_two_batal_at_once_through_a_real_server_cancel_the_report_once(  # type: ignore[no-untyped-def]
    database, database_url, sms, tmp_path
):
    """The same race between two processes of ``smsgate serve``, as a gateway delivers it."""
    assert sms(VOLUNTEER_A, "TPS 012 01=120 02=98 03=150").startswith("OK")

    with _server(database_url, tmp_path) as url:
        replies = _race(url, database_url, ["BATAL", "BATAL"])

    _cancelled_once(database, replies)


def test_two_batal_with_the_ref_at_once_cancel_it_once(app, database, database_url, sms):  # type: ignore[no-untyped-def]
    reply = sms(VOLUNTEER_A, "TPS 012 01=120 02=98 03=150")
    with database.read() as session:
        ref = session.scalars(select(Report.ref)).one()
    assert ref in reply

    replies = _race(app, database_url, [f"BATAL {ref}", f"batal {ref.lower()}"])

    assert sum(1 for r in replies if r and r.startswith("OK")) == 1, replies
    assert any(r and r.startswith("GAGAL") and ref in r for r in replies), replies
    events, cancelled = _cancellations(database)
    assert [r.ref for r in cancelled] == [ref]
    assert len(events) == 1


def test_a_coordinator_and_the_sender_cancelling_one_report_at_once_cancel_it_once(
    app, database, database_url, sms
):  # type: ignore[no-untyped-def]
    """A coordinator's ``BATAL <ref> PIN ..`` of someone else's report takes the same station lock
    and re-check: raced against the sender's own ``BATAL``, the report is cancelled once."""
    sms(VOLUNTEER_A, "TPS 012 01=120 02=98 03=150")
    with database.read() as session:
        ref = session.scalars(select(Report.ref)).one()

    replies = _race(app, database_url, [f"BATAL {ref}{WITH_PIN}", f"BATAL {ref}"], [COORD_KOTA, VOLUNTEER_A])

    assert sum(1 for r in replies if r and r.startswith("OK")) == 1, replies
    assert any(r and r.startswith("GAGAL") and ref in r for r in replies), replies
    events, cancelled = _cancellations(database)
    assert [r.ref for r in cancelled] == [ref]
    assert len(events) == 1
