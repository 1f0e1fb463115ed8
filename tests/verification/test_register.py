"""Invite codes (smsgate invite create) and DAFTAR self-registration with the brute-force lockout."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from smsgate.cli import main
from smsgate.models import Contact, Invite, RegistrationFailure
from smsgate.services import invites
from smsgate.services.refs import ALPHABET

from ..support import MANTUIL, VOLUNTEER_A

NEW = "+6285200000001"


def create(runner, monkeypatch, database_url, *args):
    monkeypatch.setenv("SMSGATE_DATABASE_URL", database_url)
    result = runner.invoke(main, ["invite", "create", *args])
    assert result.exit_code == 0, result.output
    return [line for line in result.stdout.splitlines() if line]


def test_invite_create_prints_codes(runner, monkeypatch, database_url, world, database):
    codes = create(runner, monkeypatch, database_url, "--region", MANTUIL, "--tps", "12", "--count", "3")
    assert len(codes) == 3 and len(set(codes)) == 3
    assert all(len(c) == invites.CODE_LENGTH and set(c) <= set(ALPHABET) for c in codes)
    with database.read() as session:
        stored = session.scalars(select(Invite)).all()
    assert {i.code for i in stored} == set(codes)
    assert all(i.tps == 12 and i.max_uses == 1 and i.region_code == MANTUIL for i in stored)
    bad = runner.invoke(main, ["invite", "create", "--region", "63.71", "--count", "1"])
    assert bad.exit_code != 0 and "desa" in bad.output
    bad = runner.invoke(main, ["invite", "create", "--region", MANTUIL, "--tps", "77"])
    assert bad.exit_code != 0 and "no TPS 077" in bad.output


def test_daftar_registers_then_reports(runner, monkeypatch, database_url, sms, database):
    (code,) = create(runner, monkeypatch, database_url, "--region", MANTUIL, "--tps", "12", "--uses", "2")
    reply = sms("0852-0000-0001", f"DAFTAR {code.lower()} Siti Aminah")
    assert reply.startswith("OK Siti Aminah terdaftar sbg relawan Mantuil TPS 012."), reply
    with database.read() as session:
        contact = session.scalars(select(Contact).where(Contact.phone == NEW)).one()
    assert (contact.role, contact.region_code, contact.tps) == ("volunteer", MANTUIL, 12)
    assert sms(NEW, "01=10 02=20 03=30").startswith("OK TPS 012")
    again = sms(NEW, f"DAFTAR {code} Siti")
    assert again == (
        "GAGAL: nomor ini sudah terdaftar (Siti Aminah, 63.71.01.1001 TPS 012). Kirim BANTUAN untuk format."
    )
    assert sms(VOLUNTEER_A, f"REG {code} Ani").startswith("GAGAL: nomor ini sudah terdaftar (Ani")
    assert sms("+6285200000002", f"REG {code} Budi").startswith("OK Budi terdaftar")
    used_up = sms("+6285200000003", f"DAFTAR {code} Cici")
    assert used_up == f"GAGAL: kode undangan {code} sudah habis dipakai. Minta kode baru ke koordinator."


def test_expired_code(runner, monkeypatch, database_url, sms, database):
    (code,) = create(runner, monkeypatch, database_url, "--region", MANTUIL, "--expires-hours", "1")
    with database.begin() as session:
        invite = session.scalars(select(Invite)).one()
        invite.expires_at -= timedelta(hours=2)
    reply = sms(NEW, f"DAFTAR {code} Siti")
    assert reply == f"GAGAL: kode undangan {code} sudah kedaluwarsa. Minta kode baru ke koordinator."


def test_brute_force_locked_out(runner, monkeypatch, database_url, sms, database):
    (code,) = create(runner, monkeypatch, database_url, "--region", MANTUIL)
    replies = [sms(NEW, f"DAFTAR ZZZZZZ{n}{n} Tebak") for n in range(2, 7)]
    assert replies[0] == "GAGAL: kode undangan ZZZZZZ22 tidak dikenal. Periksa lagi (sisa 4 kali coba)."
    assert replies[-1].endswith("(sisa 0 kali coba).")
    locked = sms(NEW, f"DAFTAR {code} Siti")  # even the right code is refused while locked out
    assert locked.startswith("GAGAL: terlalu banyak kode salah. Coba lagi setelah "), locked
    assert locked.endswith(" WIB.")
    with database.read() as session:
        assert session.scalars(select(Contact).where(Contact.phone == NEW)).first() is None
        assert len(session.scalars(select(RegistrationFailure)).all()) == 5
    assert sms("+6285200000002", f"DAFTAR {code} Budi").startswith("OK")  # other numbers are not affected
    with database.begin() as session:  # an hour later the window has passed
        for failure in session.scalars(select(RegistrationFailure)):
            failure.created_at -= timedelta(hours=1, minutes=1)
    assert sms(NEW, "DAFTAR ZZZZZZZZ Tebak").startswith("GAGAL: kode undangan ZZZZZZZZ tidak dikenal")
