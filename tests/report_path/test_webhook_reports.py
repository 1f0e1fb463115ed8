"""The report path end to end: signed Twilio webhooks through the Flask app into a real
database, and the replies volunteers read on their phones."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from smsgate.models import InboundMessage, Report, StationResult
from smsgate.sms import is_single_gsm7_sms
from tests.support import (
    COORD_KOTA,
    UNKNOWN,
    VOLUNTEER_A,
    VOLUNTEER_ALUH,
    VOLUNTEER_B,
    VOLUNTEER_C,
    VOLUNTEER_EN,
    twiml_text,
)

MANTUIL_12 = "6371011001012"


def reports_for(database, station_id: str = MANTUIL_12) -> list[Report]:
    with database.read() as session:
        return list(
            session.scalars(select(Report).where(Report.station_id == station_id).order_by(Report.id))
        )


def count(database, model) -> int:
    with database.read() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_canonical_report_is_stored_and_echoed(sms, database):
    reply = sms(VOLUNTEER_A, "TPS 012 01=123 02=98 03=150")
    assert reply.startswith("OK TPS 012 01=123 02=98 03=150 Ref ")
    [report] = reports_for(database)
    assert report.votes == {"01": 123, "02": 98, "03": 150}
    assert report.ref in reply
    assert f"BATAL {report.ref}" in reply
    with database.read() as session:
        result = session.get(StationResult, MANTUIL_12)
        assert result.status == "reported"
        assert result.votes == {"01": 123, "02": 98, "03": 150}
        logged = session.scalars(select(InboundMessage)).one()
        assert logged.outcome == "accepted"
        assert logged.reply == reply
        assert logged.from_number == VOLUNTEER_A


@pytest.mark.parametrize(
    "body",
    [
        "TPS 012 01:123 02:98 03:150",
        "TPS012 01=123 02=98 03=150",
        "  tps   12    1=123   2=98  3=150  ",
        "TPS#012#01=123#02=98#03=150",
        "TPS*012*01=123*02=98*03=150",
        "TPS,012,01=123,02=98,03=150",
        "TPS;012;01=123;02=98;03=150",
        "TPS 012 03=150 01=123 02=98",
        "TPS O12 O1=123 O2=98 O3=15O",
        "TPS#012#123#98#150",
        "01=123 02=98 03=150",
        "TPS 6371011001012 01=123 02=98 03=150",
        "TPS 63.71.01.1001/12 01=123 02=98 03=150",
        "TPS 012 01=123 02=98 03=150 SAH=371",
        "TPS 012 01=123 02=98 03=150 SAH=371 TS=5 DPT=400",
        "tps 012 01＝123 02＝98 03＝150",
    ],
)
def test_tolerated_forms_store_the_canonical_values(sms, database, body):
    reply = sms(VOLUNTEER_A, body)
    assert reply.startswith("OK "), reply
    assert "01=123 02=98 03=150" in reply
    [report] = reports_for(database)
    assert report.votes == {"01": 123, "02": 98, "03": 150}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("", "GAGAL: pesan kosong"),
        ("HALO SEMUA", "GAGAL: 'HALO' tidak dikenal"),
        ("TPS 012 01=123 02=98 04=150", "kandidat 04 tidak ada"),
        ("TPS 012 01=123 02=98", "kandidat 03"),
        ("TPS 012 01=123 02=98 02=5 03=150", "kandidat 02 ditulis 2 kali"),
        ("TPS 012 01=12345 02=98 03=150", "angka 01"),
        ("TPS 012 01=1,230 02=98 03=150", "GAGAL"),
        ("TPS 012 01=12 3 02=98 03=150", "GAGAL"),
        ("TPS 012 01== 02=98 03=150", "GAGAL"),
        ("TPS 012 01=123 02=98 03=150 SAH=380", "SAH=380 tapi jumlah suara 371"),
        ("TPS#012#123#98", "harus 3"),
        ("TPS 1000 01=123 02=98 03=150", "GAGAL"),
        ("LAPOR", "GAGAL: LAPOR perlu isi"),
    ],
)
def test_each_error_gets_a_precise_reply_and_changes_nothing(sms, database, body, expected):
    reply = sms(VOLUNTEER_A, body)
    assert reply.startswith("GAGAL"), reply
    assert expected in reply
    assert count(database, Report) == 0
    with database.read() as session:
        logged = session.scalars(select(InboundMessage)).one()
        assert logged.outcome == "rejected"
        assert logged.body == body


def test_errors_show_a_correct_example(sms):
    reply = sms(VOLUNTEER_A, "TPS 012 01=123 02=98 03=150 SAH=380")
    assert "Contoh: TPS 012 01=123 02=98 03=150" in reply


def test_english_contact_gets_english_replies(sms):
    assert sms(VOLUNTEER_EN, "TPS 001 01=10 02=20 03=30").startswith("OK TPS 001 01=10 02=20 03=30")
    reply = sms(VOLUNTEER_EN, "TPS 001 01=10 02=20")
    assert reply.startswith("ERROR"), reply
    assert "Example:" in reply


def test_unregistered_number_is_refused_and_changes_nothing(sms, database):
    reply = sms(UNKNOWN, "TPS 012 01=123 02=98 03=150")
    assert reply.startswith("GAGAL")
    assert "belum terdaftar" in reply
    assert count(database, Report) == 0
    with database.read() as session:
        logged = session.scalars(select(InboundMessage)).one()
        assert (logged.outcome, logged.contact_id) == ("refused", None)


def test_station_of_another_desa_is_refused(sms, database):
    reply = sms(VOLUNTEER_ALUH, "TPS 6371011001012 01=1 02=2 03=3")
    assert reply.startswith("GAGAL")
    assert "bukan di desa Anda" in reply
    assert count(database, Report) == 0


def test_volunteer_assigned_to_one_station_cannot_report_another(sms, database):
    reply = sms(VOLUNTEER_A, "TPS 001 01=1 02=2 03=3")
    assert "terdaftar untuk TPS 012, bukan TPS 001" in reply
    assert count(database, Report) == 0


def test_unknown_station_number(sms):
    assert "TPS 077 tidak terdaftar" in sms(VOLUNTEER_C, "TPS 077 01=1 02=2 03=3")


def test_no_station_needs_an_assignment(sms, database):
    reply = sms(VOLUNTEER_C, "01=1 02=2 03=3")
    assert reply.startswith("GAGAL: sebutkan nomor TPS")
    assert sms(VOLUNTEER_C, "TPS 2 01=1 02=2 03=3").startswith("OK TPS 002")


def test_over_capacity_is_stored_flagged_and_said(sms, database):
    reply = sms(VOLUNTEER_A, "TPS 012 01=300 02=80 03=20 TS=15")
    assert reply.startswith("OK DICEK TPS 012"), reply
    assert "415 > DPT 400+2%" in reply
    with database.read() as session:
        result = session.get(StationResult, MANTUIL_12)
        assert result.flagged and result.status == "reported"
        assert session.scalars(select(InboundMessage)).one().outcome == "flagged"


def test_within_two_percent_is_not_flagged(sms):
    # 400 registered voters + 2% = 408
    assert sms(VOLUNTEER_A, "TPS 012 01=300 02=80 03=20 TS=8").startswith("OK TPS 012")


def test_coordinator_reports_with_full_station_id(sms, database):
    reply = sms(COORD_KOTA, "TPS 6371011001012 01=1 02=2 03=3 PIN 4821")
    assert reply.startswith("OK TPS 6371011001012"), reply
    [report] = reports_for(database)
    assert report.by_coordinator


def test_help_in_both_languages(sms):
    assert sms(VOLUNTEER_A, "BANTUAN").startswith("OK Format: TPS")
    assert "Contoh: TPS 012 01=123 02=98 03=150" in sms(VOLUNTEER_A, "bantuan")
    assert "Example:" in sms(VOLUNTEER_EN, "HELP")
    assert sms(VOLUNTEER_A, "?").startswith("OK Format")


def test_resend_supersedes_and_cancel_withdraws(sms, database):
    first = sms(VOLUNTEER_A, "TPS 012 01=152 02=98 03=150")
    second = sms(VOLUNTEER_A, "TPS 012 01=652 02=98 03=150")
    assert first.startswith("OK") and second.startswith("OK")
    old, new = reports_for(database)
    assert old.superseded_at is not None and old.superseded_by_id == new.id
    check = sms(VOLUNTEER_A, "CEK")
    assert check.startswith("OK TPS 012 01=652 02=98 03=150") and new.ref in check
    cancelled = sms(VOLUNTEER_A, f"BATAL {new.ref.lower()}")
    assert cancelled == f"OK laporan {new.ref} TPS 012 dibatalkan."
    with database.read() as session:
        assert session.get(StationResult, MANTUIL_12).status == "missing"
    assert sms(VOLUNTEER_A, "BATAL").startswith("GAGAL")
    assert sms(VOLUNTEER_B, f"BATAL {old.ref}").startswith("GAGAL")


def test_text_of_any_kind_never_breaks_a_reply(sms):
    nasty = [
        "\x00\x00TPS 012",
        "😀" * 300,
        "TPS 012 01=“123” 02=98 03=150",
        "A" * 1600,
        "TPS\u00a0012\u00a001=123\u00a002=98\u00a003=150",
        "LAPOR " + "kotak suara rusak " * 80,
        "<Response><Message>x</Message></Response>",
        "%s %d {0} ${x}",
    ]
    for body in nasty:
        reply = sms(VOLUNTEER_A, body)
        assert reply and is_single_gsm7_sms(reply)
        assert reply.split()[0].rstrip(":") in {"OK", "GAGAL"}, reply


def test_reply_is_escaped_twiml(sms):
    response = sms.post(sms.form(VOLUNTEER_A, "<b>&amp;</b>"))
    assert response.status_code == 200
    assert response.mimetype == "application/xml"
    assert twiml_text(response.get_data(as_text=True)).startswith("GAGAL")


def test_candidates_are_named_by_their_imported_aliases(sms, database):
    """The candidates CSV's aliases reach the grammar: a report by names is read and echoed by code."""
    import io

    from smsgate.importers import import_candidates

    with database.begin() as session:
        import_candidates(
            session,
            io.StringIO(
                "code,name,aliases\n01,Anies Baswedan - Muhaimin Iskandar,AMIN ANIES\n"
                "02,Prabowo-Gibran,prabowo\n03,Ganjar-Mahfud,GANJAR\n"
            ),
        )
    reply = sms(VOLUNTEER_A, "Tps 012, AMIN: 123, Prabowo 98, ganjar = 150. Terima kasih")
    assert reply.startswith("OK TPS 012 01=123 02=98 03=150 Ref "), reply
    [report] = reports_for(database)
    assert report.votes == {"01": 123, "02": 98, "03": 150}


@pytest.mark.parametrize(
    "body",
    [
        "TPS 12 paslon 1: 123, paslon 2: 98, paslon 3: 150",
        "TPS 12 01 123 02 98 03 150",
        "TPS No. 12 (01) 123 (02) 98 (03) 150",
        "TPS 12 01=123 | 02=98 | 03=150 SAH 371 TIDAK SAH 5",
    ],
)
def test_reports_as_volunteers_write_them_are_accepted(sms, database, body):
    reply = sms(VOLUNTEER_A, body)
    assert reply.startswith("OK TPS 012 01=123 02=98 03=150"), reply
    assert is_single_gsm7_sms(reply)
