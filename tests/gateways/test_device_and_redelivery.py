"""Which gateway device a message came through, and what counts as a redelivery.

A redelivery is the same provider, the same provider message id *and* the same sender: a
gateway whose ids are only unique inside one device (Gammu numbers its inbox from 1 on every
modem) must never make one volunteer's report a "redelivery" of another's, and a stored reply
is never sent to a different number.
"""

from __future__ import annotations

import re

from sqlalchemy import func, select

from smsgate.models import InboundMessage, OutboundMessage, Report
from tests.support import VOLUNTEER_A, VOLUNTEER_ALUH, TwilioSender

from .helpers import DEVICE_ID, SIM_NUMBER, android_post, envelope, kannel_get

REPORT_A = "TPS 012 01=10 02=20 03=30"
REPORT_ALUH = "TPS 001 01=1 02=2 03=3"


def inbound_rows(database) -> list[InboundMessage]:  # type: ignore[no-untyped-def]
    with database.read() as session:
        return list(session.scalars(select(InboundMessage).order_by(InboundMessage.id)))


def test_android_keeps_the_device_sender_and_recipient_of_the_current_payload(client, database, world):  # type: ignore[no-untyped-def]
    # Shape: android-sms-gateway/docs-web blog 2026-02-17 "Expected Payload Structure".
    response = android_post(client, envelope(VOLUNTEER_A, REPORT_A, device="phone-banjar-07"))
    assert response.status_code == 200
    [row] = inbound_rows(database)
    assert (row.from_number, row.to_number, row.device) == (VOLUNTEER_A, SIM_NUMBER, "phone-banjar-07")


def test_android_falls_back_to_the_deprecated_phone_number_and_survives_its_removal(client, database, world):  # type: ignore[no-untyped-def]
    legacy = android_post(client, envelope(VOLUNTEER_A, REPORT_A, shape="legacy"))
    future = android_post(client, envelope(VOLUNTEER_ALUH, REPORT_ALUH, shape="future"))
    assert legacy.status_code == future.status_code == 200
    rows = inbound_rows(database)
    assert [(r.from_number, r.to_number, r.device) for r in rows] == [
        (VOLUNTEER_A, "", DEVICE_ID),  # the old payload names no recipient; never the SIM slot
        (VOLUNTEER_ALUH, SIM_NUMBER, DEVICE_ID),
    ]
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(Report)) == 2


def test_kannel_smsc_and_twilio_number_are_the_device(client, database, world):  # type: ignore[no-untyped-def]
    # Kannel's %i is the smsc id (Kannel user guide, "sms-service" URL escapes).
    assert kannel_get(client, VOLUNTEER_A, REPORT_A, smsc="modem-3").status_code == 200
    TwilioSender(client)(VOLUNTEER_ALUH, REPORT_ALUH)
    rows = inbound_rows(database)
    assert [(r.provider, r.device) for r in rows] == [("kannel", "modem-3"), ("twilio", "+15005550006")]


def test_the_same_message_id_from_another_phone_is_a_new_message_with_its_own_reply(client, database, world):  # type: ignore[no-untyped-def]
    # Two Gammu modems (or a reset inbox) both hand out inbox id 101.
    first = kannel_get(client, VOLUNTEER_A, REPORT_A, id="gammu:101", smsc="modem-1")
    second = kannel_get(client, VOLUNTEER_ALUH, REPORT_ALUH, id="gammu:101", smsc="modem-2")
    again = kannel_get(client, VOLUNTEER_A, REPORT_A, id="gammu:101", smsc="modem-1")
    assert first.status_code == second.status_code == again.status_code == 200
    assert first.get_data(as_text=True).startswith("OK TPS 012 01=10")
    assert second.get_data(as_text=True).startswith("OK TPS 001 01=1 02=2 03=3")
    assert "TPS 012" not in second.get_data(as_text=True)
    assert again.get_data() == first.get_data()  # a true redelivery: same answer, nothing new
    rows = inbound_rows(database)
    assert [(r.from_number, r.provider_message_id, r.device) for r in rows] == [
        (VOLUNTEER_A, "gammu:101", "modem-1"),
        (VOLUNTEER_ALUH, "gammu:101", "modem-2"),
    ]
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(Report)) == 2


def test_an_android_envelope_id_from_another_sender_never_gets_the_stored_reply(client, database, world):  # type: ignore[no-untyped-def]
    for phone, text in ((VOLUNTEER_A, REPORT_A), (VOLUNTEER_ALUH, REPORT_ALUH)):
        assert android_post(client, envelope(phone, text, envelope_id="env-same")).status_code == 200
    with database.read() as session:
        replies = {row.to_number: row.text for row in session.scalars(select(OutboundMessage))}
    assert re.match(r"OK TPS 012 01=10 ", replies[VOLUNTEER_A])
    assert re.match(r"OK TPS 001 01=1 ", replies[VOLUNTEER_ALUH])


def test_the_migration_keeps_existing_messages_and_what_points_at_them(tmp_path):  # type: ignore[no-untyped-def]
    """Upgrading a database that already holds messages (and replies pointing at them)."""
    import os
    import uuid

    from alembic import command
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from smsgate.db import Database
    from smsgate.schema import alembic_config, upgrade

    pg = os.environ.get("SMSGATE_TEST_DATABASE_URL", "")
    admin, name = None, f"smsgate_mig_{uuid.uuid4().hex[:10]}"
    if pg.startswith("postgresql"):
        admin = create_engine(make_url(pg).set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(pg).set(database=name).render_as_string(hide_password=False)
    else:
        url = f"sqlite:///{tmp_path / 'old.db'}"
    database = Database.from_url(url)
    try:
        config = alembic_config(url)
        older = [head for head in ScriptDirectory.from_config(config).get_heads() if head != "1101"]
        with database.engine.begin() as connection:
            config.attributes["connection"] = connection
            for head in older:
                command.upgrade(config, head)
            connection.execute(
                text(
                    "INSERT INTO inbound_messages (provider, provider_message_id, from_number, to_number,"
                    " body, received_at, outcome) VALUES ('kannel', 'gammu:101', '+6281100000001', '',"
                    " 'CEK', '2024-02-14 08:00:00', 'command')"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO outbound_messages (to_number, text, provider, kind, status, attempts,"
                    " next_attempt_at, inbound_message_id, created_at) SELECT from_number, 'OK', provider,"
                    " 'reply', 'queued', 0, received_at, id, received_at FROM inbound_messages"
                )
            )
        upgrade(database.engine)
        with database.read() as session:
            [row] = session.scalars(select(InboundMessage)).all()
            assert (row.provider_message_id, row.device) == ("gammu:101", "")
            reply = session.scalars(select(OutboundMessage)).one()
            assert reply.inbound_message_id == row.id
    finally:
        database.dispose()
        if admin is not None:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
