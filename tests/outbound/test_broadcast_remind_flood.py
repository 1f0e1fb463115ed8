"""SIARAN/YA broadcasts, smsgate remind and per-sender flood control, through real webhooks."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, update

from smsgate.cli import main
from smsgate.models import Broadcast, InboundMessage, OutboundMessage, Report, StationResult, utcnow
from tests.gateways.helpers import android_post, envelope, kannel_get
from tests.support import (
    COORD_KALTIM,
    COORD_KOTA,
    VOLUNTEER_A,
    VOLUNTEER_ALUH,
    VOLUNTEER_B,
    VOLUNTEER_C,
    VOLUNTEER_EN,
    WITH_PIN,
)

REPORT = "TPS 012 01=123 02=98 03=150"


def outbound(database, **where):  # type: ignore[no-untyped-def]
    with database.read() as session:
        query = select(OutboundMessage).filter_by(**where).order_by(OutboundMessage.id)
        return list(session.scalars(query))


def test_broadcast_needs_confirmation_by_the_same_coordinator(sms, database, world):  # type: ignore[no-untyped-def]
    # Volunteer C last wrote through the Android phone: the broadcast goes back that way.
    assert android_post(sms.client, envelope(VOLUNTEER_C, "CEK")).status_code == 200
    pending = sms(COORD_KOTA, "SIARAN rapat koordinasi jam 19 di posko PIN 4821")
    match = re.fullmatch(
        r"OK siaran ke (\d+) relawan\. Kirim YA ([A-Z2-9]{4}) dalam 15 menit untuk mengirim\.", pending
    )
    assert match, pending
    count, code = int(match.group(1)), match.group(2)
    assert count == 4  # A, B, C in Mantuil and the English volunteer in Kelayan; not Aluh-Aluh
    assert outbound(database, kind="broadcast") == []  # nothing sent before the confirmation
    assert sms(COORD_KALTIM, f"YES {code} PIN 4821").startswith("ERROR: code")  # someone else's code
    assert sms(COORD_KOTA, "YA ZZZZ PIN 4821").startswith("GAGAL: kode ZZZZ")
    assert sms(COORD_KOTA, f"ya {code.lower()} pin 4821") == f"OK siaran {code} dikirim ke 4 relawan."
    assert sms(COORD_KOTA, f"YA {code} PIN 4821").startswith("GAGAL")  # a code works once
    rows = outbound(database, kind="broadcast")
    assert sorted(r.to_number for r in rows) == sorted([VOLUNTEER_A, VOLUNTEER_B, VOLUNTEER_C, VOLUNTEER_EN])
    by_phone = {r.to_number: r for r in rows}
    assert by_phone[VOLUNTEER_C].provider == "android"
    assert by_phone[VOLUNTEER_A].provider == "twilio"  # never wrote: the default provider
    assert by_phone[VOLUNTEER_A].text == "SIARAN Fajar: rapat koordinasi jam 19 di posko"
    assert by_phone[VOLUNTEER_EN].text == "BROADCAST Fajar: rapat koordinasi jam 19 di posko"
    assert VOLUNTEER_ALUH not in by_phone


def test_broadcast_expiry_length_and_permissions(sms, database, world):  # type: ignore[no-untyped-def]
    assert sms(VOLUNTEER_A, "SIARAN halo").startswith("GAGAL: perintah SIARAN hanya untuk koordinator")
    assert sms(COORD_KOTA, "SIARAN " + "x" * 150 + WITH_PIN).startswith("GAGAL: teks siaran 150 huruf, maks")
    code = re.search(r"YA ([A-Z2-9]{4})", sms(COORD_KOTA, "SIARAN besok pagi PIN 4821")).group(1)
    with database.begin() as session:
        session.execute(update(Broadcast).values(expires_at=utcnow() - timedelta(seconds=1)))
    expired = sms(COORD_KOTA, f"YA {code} PIN 4821")
    assert expired.startswith(f"GAGAL: kode {code} tidak dikenal atau kedaluwarsa")
    assert outbound(database) == []


def test_remind_queues_once_per_volunteer_per_window(database_url, database, world, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SMSGATE_DATABASE_URL", database_url)
    monkeypatch.setenv("SMSGATE_REMIND_EVERY_HOURS", "3")
    with database.begin() as session:  # station 012 of Mantuil has reported
        session.execute(
            update(StationResult).where(StationResult.station_id == "6371011001012").values(status="reported")
        )
    runner = CliRunner()
    dry = runner.invoke(main, ["remind", "63.71", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert dry.output.strip() == "1 reminder(s) would be queued"  # only Dewi (Kelayan 001); C has no TPS
    assert outbound(database) == []
    first = runner.invoke(main, ["remind"])
    assert first.output.strip() == "2 reminder(s) queued"  # Dewi and Eko (Aluh-Aluh 001)
    again = runner.invoke(main, ["remind"])
    assert again.output.strip() == "0 reminder(s) queued"
    texts = {r.to_number: r.text for r in outbound(database, kind="reminder")}
    assert texts[VOLUNTEER_EN].startswith("Reminder: no result yet for TPS 001.")
    assert texts[VOLUNTEER_ALUH].startswith("Pengingat: hasil TPS 001 belum masuk.")
    with database.begin() as session:  # hours later, they may be reminded again
        session.execute(update(OutboundMessage).values(created_at=utcnow() - timedelta(hours=4)))
    assert runner.invoke(main, ["remind", "6303"]).output.strip() == "1 reminder(s) queued"
    bad = runner.invoke(main, ["remind", "99.99"])
    assert bad.exit_code != 0 and "unknown region" in bad.output


@pytest.fixture
def flood_settings(settings):  # type: ignore[no-untyped-def]
    return replace(settings, flood_per_minute=3, flood_replies_per_hour=5, flood_duplicate_seconds=600)


@pytest.fixture
def flood_app(flood_settings, database):  # type: ignore[no-untyped-def]
    from smsgate import create_app

    return create_app(flood_settings, test_config={"TESTING": True}, database=database)


def logged(database, phone: str) -> list[tuple[str, str | None]]:  # type: ignore[no-untyped-def]
    with database.read() as session:
        query = select(InboundMessage.outcome, InboundMessage.error_code).where(
            InboundMessage.from_number == phone
        )
        return list(session.execute(query.order_by(InboundMessage.id)))


def test_identical_text_is_answered_once_and_counted_once(flood_app, database, world):  # type: ignore[no-untyped-def]
    from tests.support import TwilioSender

    sms = TwilioSender(flood_app.test_client())
    assert sms(VOLUNTEER_A, REPORT).startswith("OK TPS 012")
    assert sms(VOLUNTEER_A, "  tps 012   01=123 02=98 03=150 ") is None
    assert sms.last_response.status_code == 200
    assert "<Message>" not in sms.last_response.get_data(as_text=True)
    assert logged(database, VOLUNTEER_A) == [("accepted", None), ("duplicate_text", "duplicate_text")]
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(Report)) == 1
        assert session.get(StationResult, "6371011001012").report_count == 1


def test_going_back_to_earlier_values_is_not_a_duplicate(settings, database, world):  # type: ignore[no-untyped-def]
    """A, B, A within the window: the volunteer means A again, so A must count and be answered."""
    from smsgate import create_app
    from tests.support import TwilioSender

    only_duplicates = replace(
        settings, flood_per_minute=0, flood_replies_per_hour=0, flood_duplicate_seconds=600
    )
    sms = TwilioSender(create_app(only_duplicates, database=database).test_client())
    corrected = "TPS 012 01=123 02=98 03=105"
    assert sms(VOLUNTEER_A, "CEK").startswith("OK")
    assert sms(VOLUNTEER_A, REPORT).startswith("OK TPS 012 01=123 02=98 03=150")
    assert sms(VOLUNTEER_A, corrected).startswith("OK TPS 012 01=123 02=98 03=105")
    assert sms(VOLUNTEER_A, REPORT).startswith("OK TPS 012 01=123 02=98 03=150")
    assert sms(VOLUNTEER_A, "CEK").startswith("OK TPS 012 01=123 02=98 03=150")
    assert sms(VOLUNTEER_A, "cek") is None  # the same question twice in a row: a stuck phone
    with database.read() as session:
        assert session.get(StationResult, "6371011001012").votes == {"01": 123, "02": 98, "03": 150}


def test_per_minute_limit_holds_and_a_held_report_is_not_lost(flood_app, database, world):  # type: ignore[no-untyped-def]
    client = flood_app.test_client()
    start = int(utcnow().timestamp())

    def send(text: str, at: int) -> str:
        response = kannel_get(client, VOLUNTEER_B, text, time=str(at))
        assert response.status_code == 200
        return response.get_data(as_text=True)

    assert send("CEK", start).startswith("OK")
    assert send("BANTUAN", start + 1).startswith("OK Format")
    assert send("CEK TPS 12", start + 2).startswith("OK")
    assert send(REPORT, start + 3) == ""  # fourth in a minute: held back, not handled
    assert send(REPORT, start + 4) == ""  # still over the limit; not a duplicate of a held one
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(Report)) == 0
    assert send(REPORT, start + 61).startswith("OK TPS 012")  # a minute later it is handled
    assert send(REPORT, start + 125) == ""  # and now a resend is a duplicate
    outcomes = [o for o, _ in logged(database, VOLUNTEER_B)]
    assert outcomes == [
        "command",
        "command",
        "command",
        "throttled",
        "throttled",
        "accepted",
        "duplicate_text",
    ]
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(Report)) == 1


def test_replies_per_hour_limit_still_handles_the_message(flood_app, database, world):  # type: ignore[no-untyped-def]
    client = flood_app.test_client()
    start = int(utcnow().timestamp())
    replies = [
        kannel_get(client, VOLUNTEER_A, text, time=str(start + 61 * i)).get_data(as_text=True)
        for i, text in enumerate(["CEK", "BANTUAN", "CEK TPS 12", "HELP", "CHECK"])
    ]
    assert all(replies)
    report = kannel_get(client, VOLUNTEER_A, REPORT, time=str(start + 400))
    assert report.status_code == 200 and report.get_data(as_text=True) == ""
    assert logged(database, VOLUNTEER_A)[-1] == ("accepted", "reply_limit")
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(Report)) == 1
