"""A 2xx means stored: every provider's answer says "received" only once the raw message is
committed, any text can be stored, and every wait on the webhook path is bounded.

Retry behaviour the answers rely on, from each gateway's own source:
- SMS Gateway for Android retries any non-2xx (capcom6/android-sms-gateway,
  modules/webhooks/workers/SendWebhookWorker.kt: ``status !in 200..299`` -> ``Result.Retry``,
  WorkManager exponential backoff, ``retryCount`` 15 in WebhooksSettings.kt): not stored -> 503.
- Kannel retries a get-url/post-url answer other than 200/202 when ``http-request-retry`` is set
  and otherwise sends ``reply-couldnotfetch`` (gw/smsbox.c, ``url_result_thread``): -> 503.
- Twilio does not retry a 5xx by default: the sender gets the "send it again" reply in a 200.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import replace

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from smsgate.db import Database
from smsgate.models import InboundMessage, Report
from smsgate.replies import render
from tests.support import VOLUNTEER_A, TwilioSender

from .helpers import KANNEL_SECRET, android_post, envelope, kannel_get

TRY_AGAIN = render("try_again", "id")
REPORT = "TPS 012 01=123 02=98 03=150"


def stored(database) -> list[InboundMessage]:  # type: ignore[no-untyped-def]
    with database.read() as session:
        return list(session.scalars(select(InboundMessage).order_by(InboundMessage.id)))


# -- any text is storable -------------------------------------------------------------------------


def test_a_lone_surrogate_from_android_is_stored_as_a_replacement_character(client, database, world):  # type: ignore[no-untyped-def]
    data = envelope(VOLUNTEER_A, "TPS 012 01=1 02=1 03=1 \ud83d")  # half an emoji
    assert "\\ud83d" in json.dumps(data)  # the JSON escape the app sends
    response = android_post(client, data)
    assert response.status_code == 200 and response.get_json()["outcome"] != "error"
    [row] = stored(database)
    assert row.body == "TPS 012 01=1 02=1 03=1 \ufffd"


def test_nul_and_undecodable_bytes_are_stored_as_replacement_characters(client, database, world):  # type: ignore[no-untyped-def]
    assert TwilioSender(client)(VOLUNTEER_A, "CEK\x00") is not None
    raw = client.get(
        "/webhooks/kannel?secret=" + KANNEL_SECRET + "&sender=%2B6281100000002&id=k-bytes&text=CEK%FF%00",
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    )
    android_id = android_post(client, envelope(VOLUNTEER_A, "CEK", envelope_id="env-\x00-\udc80"))
    assert raw.status_code == android_id.status_code == 200
    rows = stored(database)
    assert [r.body for r in rows] == ["CEK\ufffd", "CEK\ufffd\ufffd", "CEK"]
    assert rows[2].provider_message_id == "env-\ufffd-\ufffd"


def test_an_overlong_message_id_is_kept_apart_not_cut_into_a_collision(client, database, world):  # type: ignore[no-untyped-def]
    base = "x" * 200
    for suffix in "ab":
        data = envelope(VOLUNTEER_A, f"CEK {suffix}", envelope_id=base + suffix)
        assert android_post(client, data).status_code == 200
    ids = [r.provider_message_id for r in stored(database)]
    assert len(set(ids)) == 2 and all(len(i) <= 128 for i in ids)


# -- not stored: never a 2xx where the provider retries ------------------------------------------


@pytest.fixture
def unreachable_client(settings):  # type: ignore[no-untyped-def]
    """The app on a database that refuses connections (nothing listens on port 1)."""
    from smsgate import create_app

    database = Database.from_url("postgresql+psycopg://postgres@127.0.0.1:1/smsgate")
    app = create_app(replace(settings, database_url=str(database.engine.url)), database=database)
    yield app.test_client()
    database.dispose()


def test_a_message_that_cannot_be_stored_is_never_acknowledged_to_a_gateway_that_retries(unreachable_client):  # type: ignore[no-untyped-def]
    android = android_post(unreachable_client, envelope(VOLUNTEER_A, REPORT))
    kannel = kannel_get(unreachable_client, VOLUNTEER_A, REPORT)
    gammu = unreachable_client.post(
        "/webhooks/gammu",
        data={"sender": VOLUNTEER_A, "text": REPORT, "id": "gammu:modem1:101:ab", "time": "1707900000"},
        headers={"X-Smsgate-Secret": KANNEL_SECRET},
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    )
    assert (android.status_code, kannel.status_code, gammu.status_code) == (503, 503, 503)
    # Twilio does not retry a 5xx: the volunteer is asked to send it again instead.
    assert TwilioSender(unreachable_client)(VOLUNTEER_A, REPORT) == TRY_AGAIN
    delivered = android_post(
        unreachable_client, {"event": "sms:delivered", "id": "d1", "payload": {"messageId": "smsgate-1"}}
    )
    assert delivered.status_code == 503


# -- bounded waits -------------------------------------------------------------------------------


def _hold(database_url: str, statement: str, until: threading.Event, held: threading.Event) -> None:
    """Another connection (as another process would) holds a lock until told to let go."""
    if database_url.startswith("sqlite"):
        connection = sqlite3.connect(make_url(database_url).database, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")  # the database's one write lock
        connection.execute(statement)
        held.set()
        until.wait(120)
        connection.execute("ROLLBACK")
        connection.close()
        return
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.exec_driver_sql(statement)
        held.set()
        until.wait(120)
    engine.dispose()


def _holding(database_url: str, statement: str):  # type: ignore[no-untyped-def]
    until, held = threading.Event(), threading.Event()
    thread = threading.Thread(target=_hold, args=(database_url, statement, until, held), daemon=True)
    thread.start()
    assert held.wait(30)
    return until, thread


def test_a_station_row_locked_for_long_gets_send_it_again_with_the_raw_message_kept(  # type: ignore[no-untyped-def]
    client, database, database_url, world
):
    if database.engine.dialect.name != "postgresql":
        pytest.skip("row locks: PostgreSQL")
    lock = "SELECT * FROM station_results WHERE right(station_id, 3) = '012' FOR UPDATE"
    until, thread = _holding(database_url, lock)
    try:
        sender = TwilioSender(client)
        answer = sender(VOLUNTEER_A, REPORT, sid="SMlocked0001")
        # Answered while the lock is still held: the wait was bounded, the message kept raw.
        assert answer == TRY_AGAIN
        [row] = stored(database)
        assert (row.outcome, row.error_code, row.body) == ("error", "internal", REPORT)
    finally:
        until.set()
        thread.join(30)
    # Twilio's own retry (or the volunteer sending again) is then handled afresh.
    assert TwilioSender(client)(VOLUNTEER_A, REPORT, sid="SMlocked0001").startswith("OK TPS 012")
    with database.read() as session:
        assert len(session.scalars(select(Report)).all()) == 1


def test_another_process_holding_the_sqlite_write_lock_gets_a_bounded_answer(  # type: ignore[no-untyped-def]
    client, database, database_url, world
):
    if database.engine.dialect.name != "sqlite":
        pytest.skip("the SQLite write lock")
    until, thread = _holding(database_url, "UPDATE contacts SET name = name WHERE id = 1")
    try:
        assert TwilioSender(client)(VOLUNTEER_A, REPORT) == TRY_AGAIN
        assert android_post(client, envelope(VOLUNTEER_A, REPORT)).status_code == 503
    finally:
        until.set()
        thread.join(30)
    with database.read() as session:
        assert session.execute(text("SELECT count(*) FROM inbound_messages")).scalar() == 0
    assert android_post(client, envelope(VOLUNTEER_A, REPORT)).status_code == 200
