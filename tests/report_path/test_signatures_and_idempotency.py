"""Authentication and exactly-once storage at the Twilio boundary."""

from __future__ import annotations

import os
import threading

import pytest
from sqlalchemy import func, select, text

from smsgate.models import InboundMessage, Report
from tests.support import PUBLIC_URL, VOLUNTEER_A, new_sid, twilio_signature, twiml_text

REPORT = "TPS 012 01=123 02=98 03=150"


def count(database, model) -> int:
    with database.read() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_forged_signature_is_403_and_nothing_is_stored(sms, database):
    params = sms.form(VOLUNTEER_A, REPORT)
    forged = twilio_signature(PUBLIC_URL + "/webhooks/twilio", params, token="not-the-token")
    assert sms.post(params, signature=forged).status_code == 403
    assert count(database, InboundMessage) == 0


def test_missing_signature_is_403(sms, database):
    assert sms.post(sms.form(VOLUNTEER_A, REPORT), signature="").status_code == 403
    assert count(database, InboundMessage) == 0


def test_tampered_body_is_403(sms, database):
    params = sms.form(VOLUNTEER_A, REPORT)
    signature = twilio_signature(PUBLIC_URL + "/webhooks/twilio", params)
    params["Body"] = "TPS 012 01=999 02=98 03=150"
    assert sms.post(params, signature=signature).status_code == 403
    assert count(database, Report) == 0


def test_signature_covers_the_public_url_and_query_string(sms, database):
    params = sms.form(VOLUNTEER_A, REPORT)
    assert sms.post(params, query="campaign=kalsel").status_code == 200
    # Signed for the internal URL Flask sees instead of the public one: refused.
    internal = twilio_signature("http://localhost/webhooks/twilio", params)
    assert sms.post(sms.form(VOLUNTEER_A, REPORT), signature=internal).status_code == 403


def test_signature_is_checked_over_the_form_not_the_query(sms, database):
    params = sms.form(VOLUNTEER_A, REPORT)
    signature = twilio_signature(PUBLIC_URL + "/webhooks/twilio?Body=x", params)
    response = sms.client.post(
        "/webhooks/twilio?Body=x", data=params, headers={"X-Twilio-Signature": signature}
    )
    assert response.status_code == 200
    with database.read() as session:
        assert session.scalars(select(InboundMessage.body)).one() == REPORT


def test_duplicate_delivery_replays_the_reply_and_stores_once(sms, database):
    sid = new_sid()
    first = sms(VOLUNTEER_A, REPORT, sid=sid)
    second = sms(VOLUNTEER_A, REPORT, sid=sid)
    assert first == second and first.startswith("OK")
    assert count(database, Report) == 1
    assert count(database, InboundMessage) == 1


def test_internal_error_keeps_the_message_and_asks_to_resend(sms, database):
    """A real failure inside the transaction (the reports table is gone) must not lose the SMS."""
    sid = new_sid()
    with database.engine.begin() as connection:
        connection.execute(text("ALTER TABLE reports RENAME TO reports_away"))
    try:
        response = sms.post(sms.form(VOLUNTEER_A, REPORT, sid=sid))
    finally:
        with database.engine.begin() as connection:
            connection.execute(text("ALTER TABLE reports_away RENAME TO reports"))
    assert response.status_code == 200
    assert twiml_text(response.get_data(as_text=True)).startswith("GAGAL: sistem sedang sibuk")
    with database.read() as session:
        kept = session.scalars(select(InboundMessage)).one()
        assert (kept.outcome, kept.body, kept.from_number) == ("error", REPORT, VOLUNTEER_A)
    # Twilio (or the volunteer) sends it again: now it is processed, not replayed.
    assert sms(VOLUNTEER_A, REPORT, sid=sid).startswith("OK TPS 012")
    assert count(database, Report) == 1
    assert count(database, InboundMessage) == 1


def test_missing_message_sid_is_a_bad_request(sms, database):
    params = sms.form(VOLUNTEER_A, REPORT)
    params["MessageSid"] = params["SmsSid"] = ""
    assert sms.post(params).status_code == 400


@pytest.mark.skipif(
    not os.environ.get("SMSGATE_TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="concurrent delivery needs PostgreSQL (SMSGATE_TEST_DATABASE_URL)",
)
def test_concurrent_duplicate_deliveries_store_one_report(app, world, database):
    """Two simultaneous deliveries of one MessageSid on PostgreSQL: one report, same reply."""
    from tests.support import TwilioSender

    def deliver(sid: str, barrier: threading.Barrier, replies: list[str | None]) -> None:
        sender = TwilioSender(app.test_client())
        params = sender.form(VOLUNTEER_A, REPORT, sid=sid)
        barrier.wait()
        replies.append(twiml_text(sender.post(params).get_data(as_text=True)))

    for _ in range(5):
        sid, barrier, replies = new_sid(), threading.Barrier(4), []
        threads = [threading.Thread(target=deliver, args=(sid, barrier, replies)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(replies) == 4 and len(set(replies)) == 1 and replies[0].startswith("OK")
    assert count(database, Report) == 5
    assert count(database, InboundMessage) == 5


def test_signature_over_the_url_with_its_default_port_is_accepted(sms, database):
    """Twilio's own library accepts a signature over the URL with or without its default port;
    the one-HMAC check of the configured URL must not narrow that."""
    params = sms.form(VOLUNTEER_A, REPORT)
    with_port = twilio_signature("https://smsgate.example.org:443/webhooks/twilio", params)
    assert sms.post(params, signature=with_port).status_code == 200
    assert count(database, InboundMessage) == 1


def test_reply_is_the_twiml_the_twilio_library_renders(sms, database):
    from twilio.twiml.messaging_response import MessagingResponse

    response = sms.post(sms.form(VOLUNTEER_A, REPORT))
    text = twiml_text(response.get_data(as_text=True))
    assert text and text.startswith("OK")
    expected = MessagingResponse()
    expected.message(text)
    assert response.get_data(as_text=True) == str(expected)
    assert response.mimetype == "application/xml"


@pytest.mark.parametrize(
    "text", [None, "", "OK TPS 012", "a&b<c>d\"e'f", "baris\r\nbaru ]]> é 😀", "&amp; sudah"]
)
def test_twiml_matches_the_twilio_library_byte_for_byte(text):
    from twilio.twiml.messaging_response import MessagingResponse

    from webhooks.twilio import twiml

    expected = MessagingResponse()
    if text:
        expected.message(text)
    assert twiml(text) == str(expected)
