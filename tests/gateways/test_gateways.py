"""Android and Kannel webhooks through their real request formats and authentication."""

from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import func, select

from smsgate.models import InboundMessage, OutboundMessage, Report, StationResult
from tests.support import VOLUNTEER_A, VOLUNTEER_B, TwilioSender, twilio_signature

from .helpers import android_post, envelope, kannel_get

REPORT = "TPS 012 01=123 02=98 03=150"
REF = re.compile(r"Ref [A-Z2-9]{6}")


def count(database, model, *where) -> int:  # type: ignore[no-untyped-def]
    with database.read() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def queued_reply(database, phone: str) -> str | None:  # type: ignore[no-untyped-def]
    with database.read() as session:
        row = session.scalars(
            select(OutboundMessage)
            .where(OutboundMessage.to_number == phone)
            .order_by(OutboundMessage.id.desc())
        ).first()
        return row.text if row else None


def send(client, database, provider: str, phone: str, text: str) -> str | None:  # type: ignore[no-untyped-def]
    """The answer a volunteer gets through ``provider``."""
    if provider == "twilio":
        return TwilioSender(client)(phone, text)
    if provider == "kannel":
        response = kannel_get(client, phone, text)
        assert response.status_code == 200 and response.mimetype == "text/plain"
        return response.get_data(as_text=True) or None
    before = count(database, OutboundMessage)
    response = android_post(client, envelope(phone, text))
    assert response.status_code == 200, response.data
    return queued_reply(database, phone) if count(database, OutboundMessage) > before else None


@pytest.mark.parametrize("provider", ["twilio", "android", "kannel"])
def test_a_report_gets_the_same_checks_storage_and_answer_through_every_provider(
    client, database, world, provider
):  # type: ignore[no-untyped-def]
    answers = [
        send(client, database, provider, VOLUNTEER_A, text)
        for text in (REPORT, "TPS 012 01=12x 02=98 03=150", "TPS 013 01=1 02=2 03=3", "CEK")
    ]
    ref = REF.search(answers[0]).group(0)[4:]
    assert answers[0].replace(ref, "*") == (
        "OK TPS 012 01=123 02=98 03=150 Ref * Salah? Kirim ulang yg benar atau BATAL *"
    )
    assert answers[1].startswith("GAGAL") and "12x" in answers[1]
    assert answers[2].startswith("GAGAL") and "013" in answers[2]
    assert answers[3].startswith("OK TPS 012 01=123")
    with database.read() as session:
        report = session.scalars(select(Report)).one()
        assert dict(report.votes) == {"01": 123, "02": 98, "03": 150}
        assert session.get(StationResult, report.station_id).status == "reported"
        providers = set(session.scalars(select(InboundMessage.provider)))
    assert providers == {provider}
    if provider == "android":  # every reply went to the outbound queue, back through the phone
        with database.read() as session:
            rows = session.scalars(select(OutboundMessage)).all()
        assert [(r.provider, r.kind, r.status) for r in rows] == [("android", "reply", "queued")] * 4


def test_android_forged_stale_and_unsigned_requests_are_refused(client, database, world):  # type: ignore[no-untyped-def]
    data = envelope(VOLUNTEER_A, REPORT)
    assert android_post(client, data, secret="wrong-key").status_code == 403
    assert android_post(client, data, sig="0" * 64).status_code == 403
    assert android_post(client, data, timestamp=int(time.time()) - 301).status_code == 403
    assert android_post(client, data, timestamp=int(time.time()) + 301).status_code == 403
    assert client.post("/webhooks/android", json=data).status_code == 403
    assert count(database, InboundMessage) == 0
    assert android_post(client, data).status_code == 200
    assert count(database, Report) == 1


def test_android_replayed_or_redelivered_envelope_changes_nothing(client, database, world):  # type: ignore[no-untyped-def]
    data = envelope(VOLUNTEER_A, REPORT)
    first = android_post(client, data)
    replay = android_post(client, data)  # same body, fresh signature: the app retrying
    assert first.status_code == replay.status_code == 200
    assert replay.get_json()["outcome"] == "accepted"
    assert count(database, InboundMessage) == 1
    assert count(database, Report) == 1
    assert count(database, OutboundMessage) == 1
    # The app's messageId is content-based: a new envelope with the same messageId is a new SMS.
    second = envelope(VOLUNTEER_B, REPORT)
    assert android_post(client, second).status_code == 200
    assert count(database, InboundMessage) == 2


def test_android_other_events_and_bad_payloads(client, database, world):  # type: ignore[no-untyped-def]
    assert android_post(client, {"event": "system:ping", "id": "p1", "payload": {}}).get_json() == {
        "status": "ignored"
    }
    bad = android_post(client, {"event": "sms:received", "id": "", "payload": {"message": "x"}})
    assert bad.status_code == 400
    assert count(database, InboundMessage) == 0


def test_kannel_reply_as_text_and_authentication(client, database, world):  # type: ignore[no-untyped-def]
    wrong = kannel_get(client, VOLUNTEER_A, REPORT, secret="nope")
    missing = kannel_get(client, VOLUNTEER_A, REPORT, secret="")
    elsewhere = kannel_get(client, VOLUNTEER_A, REPORT, remote="10.9.8.7")
    assert wrong.status_code == missing.status_code == elsewhere.status_code == 403
    assert count(database, InboundMessage) == 0
    header = client.post(
        "/webhooks/kannel",
        data={"sender": VOLUNTEER_A, "text": REPORT, "id": "k-1"},
        headers={"X-Smsgate-Secret": "kannel-shared-secret"},
    )
    assert header.status_code == 200 and header.get_data(as_text=True).startswith("OK TPS 012")


def test_kannel_duplicates_are_answered_alike_and_stored_once(client, database, world):  # type: ignore[no-untyped-def]
    first = kannel_get(client, VOLUNTEER_A, REPORT, id="kannel-uuid-1")
    again = kannel_get(client, VOLUNTEER_A, REPORT, id="kannel-uuid-1")
    assert first.get_data() == again.get_data()
    # Without an id, the key is a hash of smsc, sender, receiver, time and text.
    stamp = str(int(time.time()))
    one = kannel_get(client, VOLUNTEER_B, "CEK", time=stamp)
    two = kannel_get(client, VOLUNTEER_B, "CEK", time=stamp)
    later = kannel_get(client, VOLUNTEER_B, "CEK", time=str(int(stamp) + 90))
    assert one.get_data() == two.get_data() == later.get_data()
    assert count(database, InboundMessage) == 3
    assert count(database, Report) == 1
    assert kannel_get(client, VOLUNTEER_B, "CEK", id="").status_code == 400  # neither id nor time


def test_kannel_post_url_form(client, database, world):  # type: ignore[no-untyped-def]
    response = client.post(
        "/webhooks/kannel?secret=kannel-shared-secret",
        data=REPORT.encode(),
        headers={"X-Kannel-From": VOLUNTEER_A, "X-Kannel-To": "1234", "X-Kannel-Time": "1707900000"},
        content_type="text/plain",
    )
    assert response.status_code == 200
    assert response.get_data(as_text=True).startswith("OK TPS 012")


def test_twilio_status_callback_updates_the_outbound_row(client, database, world):  # type: ignore[no-untyped-def]
    from smsgate.models import utcnow
    from smsgate.services.outbound import enqueue

    with database.begin() as session:
        row = enqueue(session, to=VOLUNTEER_A, text="hi", provider="twilio", kind="reminder", now=utcnow())
        row.status, row.provider_message_id = "sent", "SM123"
    url = "https://smsgate.example.org/webhooks/twilio/status"
    form = {"MessageSid": "SM123", "MessageStatus": "undelivered", "ErrorCode": "30003"}
    assert (
        client.post("/webhooks/twilio/status", data=form, headers={"X-Twilio-Signature": "x"}).status_code
        == 403
    )
    signed = {"X-Twilio-Signature": twilio_signature(url, form)}
    assert client.post("/webhooks/twilio/status", data=form, headers=signed).status_code == 204
    with database.read() as session:
        row = session.scalars(select(OutboundMessage)).one()
    assert (row.status, row.provider_status, row.last_error) == (
        "failed",
        "undelivered",
        "twilio undelivered 30003",
    )


def test_android_delivery_events_update_the_outbound_row(client, database, world):  # type: ignore[no-untyped-def]
    """``sms:delivered`` is noted; ``sms:failed`` marks the row failed with the phone's reason."""
    from smsgate.models import utcnow
    from smsgate.services.outbound import enqueue

    with database.begin() as session:
        for text, ours in (("a", "out-1"), ("b", "out-2")):
            row = enqueue(session, to=VOLUNTEER_A, text=text, provider="android", kind="reply", now=utcnow())
            row.status, row.provider_message_id = "sent", ours
    events = (("sms:delivered", "out-1", None), ("sms:failed", "out-2", "RESULT_ERROR_NO_SERVICE"))
    for event, message_id, reason in events:
        payload = {"messageId": message_id, "phoneNumber": VOLUNTEER_A}
        if reason:
            payload["reason"] = reason
        data = {"id": f"env-{message_id}", "event": event, "deviceId": "dev", "payload": payload}
        assert android_post(client, data, secret="wrong-key").status_code == 403
        assert android_post(client, data).status_code == 200
    with database.read() as session:
        rows = {r.provider_message_id: r for r in session.scalars(select(OutboundMessage))}
    assert (rows["out-1"].status, rows["out-1"].provider_status) == ("sent", "delivered")
    assert (rows["out-2"].status, rows["out-2"].provider_status, rows["out-2"].last_error) == (
        "failed",
        "failed",
        "RESULT_ERROR_NO_SERVICE",
    )
