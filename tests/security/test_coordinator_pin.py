"""A spoofed coordinator number cannot rewrite results: the coordinator PIN, through signed
Twilio webhooks (the real boundary), the CLI and the message log."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

from click.testing import CliRunner
from sqlalchemy import select

from smsgate.cli import main
from smsgate.models import Contact, InboundMessage, PinFailure, StationResult

from ..support import COORD_KOTA, COORD_PIN, MANTUIL, VOLUNTEER_A, VOLUNTEER_B

STATION = "6371011001012"


def result(database):  # type: ignore[no-untyped-def]
    with database.read() as session:
        row = session.get(StationResult, STATION)
        return row.status, dict(row.votes or {})


def test_spoofed_coordinator_number_cannot_rewrite_a_verified_station(sms, database):
    """Reproduction: the kota coordinator's number alone turned a verified 100/50/25 into 1/250/1."""
    assert sms(VOLUNTEER_A, "TPS 012 01=100 02=50 03=25").startswith("OK")
    assert sms(VOLUNTEER_B, "TPS 012 01=100 02=50 03=25").startswith("OK")
    assert result(database) == ("verified", {"01": 100, "02": 50, "03": 25})
    refused = sms(COORD_KOTA, f"TPS {STATION} 01=1 02=250 03=1")
    assert refused.startswith("GAGAL: perintah ini perlu PIN koordinator")
    wrong = sms(COORD_KOTA, f"TPS {STATION} 01=1 02=250 03=1 PIN 0000")
    assert wrong == "GAGAL: PIN salah, tidak disimpan (sisa 4 kali coba)."
    assert result(database) == ("verified", {"01": 100, "02": 50, "03": 25})


def test_the_right_pin_is_accepted_and_masked_everywhere(sms, database, caplog):
    caplog.set_level(logging.DEBUG)
    reply = sms(COORD_KOTA, f"TPS {STATION} 01=10 02=20 03=30 PIN {COORD_PIN}")
    assert reply.startswith("OK"), reply
    assert COORD_PIN not in reply
    with database.read() as session:
        bodies = list(session.scalars(select(InboundMessage.body)))
    assert bodies == [f"TPS {STATION} 01=10 02=20 03=30 PIN ****"]
    assert COORD_PIN not in caplog.text


def test_read_only_queries_need_no_pin(sms):
    for text in ("REKAP 63.71", "BELUM 63.71", f"STATUS {STATION}"):
        reply = sms(COORD_KOTA, text)
        assert "PIN" not in reply, (text, reply)


def test_wrong_pins_lock_the_pin_and_an_admin_reset_clears_it(sms, database, database_url):
    for left in (4, 3, 2, 1):
        assert sms(COORD_KOTA, f"SIARAN rapat jam {left} PIN 1111").endswith(f"(sisa {left} kali coba).")
    locked = sms(COORD_KOTA, "SIARAN rapat jam 5 PIN 1111")
    assert locked.startswith("GAGAL: terlalu banyak PIN salah. Coba lagi setelah ")
    # Even the right PIN waits out the lockout; read-only queries still work.
    assert sms(COORD_KOTA, f"SIARAN rapat jam 6 PIN {COORD_PIN}").startswith("GAGAL: terlalu banyak PIN")
    assert "PIN" not in sms(COORD_KOTA, "BELUM 63.71")
    with database.begin() as session:  # an hour later the failures have expired
        for failure in session.scalars(select(PinFailure)):
            failure.created_at -= timedelta(hours=1)
    assert sms(COORD_KOTA, f"SIARAN rapat jam 7 PIN {COORD_PIN}").startswith("OK siaran")
    for _ in range(5):
        sms(COORD_KOTA, "SIARAN lagi PIN 2222")
    reset = CliRunner().invoke(
        main, ["pin", "set", "--phone", "0812-0000-0001", "--pin-stdin"], input="735319\n",
        env={"SMSGATE_DATABASE_URL": database_url},
    )  # fmt: skip
    assert reset.exit_code == 0, reset.output
    assert COORD_PIN not in reset.output and "735319" not in reset.output
    assert sms(COORD_KOTA, "SIARAN rapat jam 8 PIN 735319").startswith("OK siaran")


def test_pin_change_by_sms(sms, database):
    assert sms(COORD_KOTA, "PIN 5555").startswith("GAGAL: Anda sudah punya PIN. Untuk ganti kirim PIN <lama>")
    assert sms(COORD_KOTA, "PIN 9999 5555").startswith("GAGAL: PIN salah")
    assert sms(COORD_KOTA, f"PIN {COORD_PIN} 5555") == "OK PIN diganti."
    assert sms(COORD_KOTA, f"TPS {STATION} 01=1 02=2 03=3 PIN {COORD_PIN}").startswith("GAGAL: PIN salah")
    assert sms(COORD_KOTA, f"TPS {STATION} 01=1 02=2 03=3 PIN 5555").startswith("OK")
    with database.read() as session:
        bodies = set(session.scalars(select(InboundMessage.body)))
        stored = session.scalars(select(Contact.pin_hash).where(Contact.phone == COORD_KOTA)).one()
    assert "PIN **** ****" in bodies and not any("5555" in b or COORD_PIN in b for b in bodies)
    assert "5555" not in stored


def test_volunteers_need_no_pin_and_cannot_set_one(sms):
    assert sms(VOLUNTEER_A, "TPS 012 01=100 02=50 03=25").startswith("OK")
    assert sms(VOLUNTEER_A, "BATAL").startswith("OK")
    assert sms(VOLUNTEER_A, "PIN 4821").startswith("GAGAL: perintah PIN hanya untuk koordinator")


def invite(runner, monkeypatch, database_url, *args):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SMSGATE_DATABASE_URL", database_url)
    created = runner.invoke(main, ["invite", "create", *args])
    assert created.exit_code == 0, created.output
    return created.stdout.split()[0]


def test_invited_coordinator_chooses_the_first_pin_within_24_hours(
    runner, monkeypatch, database_url, sms, database
):
    code = invite(runner, monkeypatch, database_url, "--region", "63.71", "--role", "coordinator")
    assert sms("+6285200000099", f"DAFTAR {code} Rina").startswith("OK")
    assert sms("+6285200000099", f"TPS {STATION} 01=1 02=2 03=3").startswith("GAGAL: pilih PIN dulu")
    assert sms("+6285200000099", "PIN 2468") == (
        "OK PIN tersimpan. Akhiri laporan, BATAL, SIARAN dan YA dengan PIN Anda, mis. YA K7Q2 PIN 4821."
    )
    assert sms("+6285200000099", "PIN 1357").startswith("GAGAL: Anda sudah punya PIN")
    assert sms("+6285200000099", f"TPS {STATION} 01=1 02=2 03=3 PIN 2468").startswith("OK")
    late = invite(runner, monkeypatch, database_url, "--region", "63.71", "--role", "coordinator")
    assert sms("+6285200000098", f"DAFTAR {late} Sari").startswith("OK")
    with database.begin() as session:  # a day later
        late_comer = session.scalars(select(Contact).where(Contact.phone == "+6285200000098")).one()
        late_comer.pin_first_by -= timedelta(hours=24)
    assert sms("+6285200000098", "PIN 2468").startswith("GAGAL: Anda belum punya PIN. Minta admin")


def test_import_prints_each_new_coordinator_pin_once(tmp_path, database_url, database, world):
    people = tmp_path / "people.csv"
    people.write_text(
        "phone,name,role,region_code,tps,lang\n"
        "+6281300000001,Joko,coordinator,63.71,,id\n"
        f"+6281300000002,Lina,volunteer,{MANTUIL},12,id\n"
    )
    env = {"SMSGATE_DATABASE_URL": database_url}
    first = CliRunner().invoke(main, ["import", "volunteers", str(people)], env=env)
    assert first.exit_code == 0, first.output
    (pin,) = re.findall(r"^PIN \+6281300000001 (\d{6})$", first.stdout, re.M)
    again = CliRunner().invoke(main, ["import", "volunteers", str(people)], env=env)
    assert "PIN " not in again.stdout  # shown once: a re-import keeps the PIN
    with database.read() as session:
        assert (
            pin
            not in session.scalars(select(Contact.pin_hash).where(Contact.phone == "+6281300000001")).one()
        )
    sender_reply = CliRunner().invoke(main, ["pin", "set", "--phone", "+6281300000002"], env=env)
    assert sender_reply.exit_code != 0 and "not a registered coordinator" in sender_reply.output


def test_a_retry_with_the_right_pin_is_not_a_duplicate(settings, database, world):
    """Masked, the wrong-PIN and right-PIN texts are equal; flood control must still handle the retry."""
    from dataclasses import replace

    from smsgate import create_app

    from ..support import TwilioSender

    app = create_app(
        replace(settings, flood_duplicate_seconds=600), test_config={"TESTING": True}, database=database
    )
    sms = TwilioSender(app.test_client())
    assert sms(COORD_KOTA, "SIARAN rapat PIN 1111").startswith("GAGAL: PIN salah")
    assert sms(COORD_KOTA, f"SIARAN rapat PIN {COORD_PIN}").startswith("OK siaran")
    assert sms(VOLUNTEER_A, "CEK") is not None
    assert sms(VOLUNTEER_A, "CEK") is None  # an unmasked repeat is still held as a duplicate
