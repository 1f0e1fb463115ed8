"""REKAP / BELUM / STATUS by SMS, within the coordinator's scope."""

from __future__ import annotations

from smsgate.importers import upsert_regions

from ..support import (
    COORD_KALTIM,
    COORD_KOTA,
    COORD_NATIONAL,
    UNKNOWN,
    VOLUNTEER_A,
    VOLUNTEER_B,
    VOLUNTEER_C,
    VOLUNTEER_EN,
)


def report_some(sms):
    sms(VOLUNTEER_A, "TPS 012 01=100 02=80 03=20")
    sms(VOLUNTEER_B, "TPS 012 01=100 02=80 03=20")
    sms(VOLUNTEER_C, "TPS 001 01=50 02=30 03=20")


def test_rekap_by_name_code_and_scope(sms):
    report_some(sms)
    by_name = sms(COORD_KOTA, "REKAP BANJARMASIN")
    assert (
        by_name
        == "OK REKAP Kota Banjarmasin: 2/7 TPS. 01=150 (50.0%) 02=110 (36.7%) 03=40 (13.3%) Beda 0 Cek 0"
    )
    assert sms(COORD_KOTA, "REKAP 63.71") == by_name
    assert sms(COORD_KOTA, "TOTAL 6371") == by_name
    assert sms(COORD_KOTA, "REKAP") == by_name  # no region: the whole scope
    kec = sms(COORD_KOTA, "REKAP KEC BANJARMASIN SELATAN")
    assert kec.startswith("OK REKAP Banjarmasin Selatan: 2/6 TPS."), kec
    assert sms(COORD_NATIONAL, "REKAP").startswith("OK REKAP Indonesia: 2/9 TPS.")


def test_rekap_outside_scope_refused(sms):
    report_some(sms)
    assert sms(COORD_KOTA, "REKAP 63.03") == "GAGAL: 63.03 Kabupaten Banjar di luar wilayah Anda."
    assert sms(COORD_KOTA, "REKAP BANJAR") == "GAGAL: Kabupaten Banjar di luar wilayah Anda."
    assert sms(COORD_KOTA, "REKAP 63").startswith("GAGAL: 63 Kalimantan Selatan di luar")
    reply = sms(COORD_KALTIM, "TOTAL 63.71")
    assert reply == "ERROR: 63.71 Kota Banjarmasin is outside your area."
    assert "150" not in reply
    assert sms(COORD_KOTA, "REKAP 99.98").startswith("GAGAL: wilayah '99.98' tidak ditemukan")
    assert sms(COORD_KOTA, "REKAP ATLANTIS").startswith("GAGAL: wilayah 'ATLANTIS' tidak ditemukan")


def test_ambiguous_name_lists_choices(sms, database):
    with database.begin() as session:
        upsert_regions(session, [("63.71.02.1002", "Mantuil")])
    reply = sms(COORD_KOTA, "REKAP DESA MANTUIL")
    assert reply == "GAGAL: 'MANTUIL' ada 2, kirim kodenya: 63.71.01.1001 Mantuil; 63.71.02.1002 Mantuil"
    assert sms(COORD_KOTA, "REKAP 63.71.02.1002").startswith("OK REKAP Mantuil: 0/0 TPS.")


def test_volunteer_and_unknown_refused(sms):
    report_some(sms)
    assert sms(VOLUNTEER_A, "REKAP") == "GAGAL: perintah REKAP hanya untuk koordinator."
    assert sms(VOLUNTEER_EN, "MISSING") == "ERROR: MISSING is for coordinators only."
    assert sms(VOLUNTEER_A, "STATUS 6371011001012").startswith("GAGAL: perintah STATUS hanya")
    assert sms(UNKNOWN, "REKAP").startswith("GAGAL: nomor ini belum terdaftar")


def test_belum_lists_missing_stations(sms):
    report_some(sms)
    reply = sms(COORD_KOTA, "BELUM KEC BANJARMASIN SELATAN")
    assert reply == (
        "OK BELUM Banjarmasin Selatan: 4/6 TPS belum lapor: "
        "6371011001002 6371011001901 6371011002001 6371011002002"
    )
    assert sms(COORD_KOTA, "BELUM 63.71.01.1001") == (
        "OK BELUM Mantuil: 2/4 TPS belum lapor: 6371011001002 6371011001901"
    )
    assert sms(COORD_KOTA, "BELUM 63.03").startswith("GAGAL: 63.03 Kabupaten Banjar di luar")
    sms(VOLUNTEER_C, "TPS 002 01=1 02=2 03=3")
    sms(VOLUNTEER_C, "TPS 901 01=1 02=2 03=3")
    assert sms(COORD_KOTA, "MISSING 63.71.01.1001") == "OK BELUM Mantuil: semua 4 TPS sudah lapor."
    assert sms(COORD_KOTA, "BELUM").startswith(
        "OK BELUM Kota Banjarmasin: 3/7 TPS belum lapor: 6371011002001"
    )


def test_status_of_one_station(sms):
    sms(VOLUNTEER_A, "TPS 012 01=152 02=80 03=20 TS=3")
    sms(VOLUNTEER_B, "TPS 012 01=652 02=80 03=20 TS=3")
    reply = sms(COORD_KOTA, "STATUS 6371011001012")
    assert reply.startswith("OK STATUS 6371011001012 berbeda: 01=652 02=80 03=20 TS=3, 2 laporan."), reply
    assert "Cek: one_digit" in reply
    assert sms(COORD_KOTA, "STATUS 63.71.01.1001/1") == "OK STATUS 6371011001001: belum ada laporan."
    assert sms(COORD_KALTIM, "STATUS 6371011001012") == "ERROR: TPS 6371011001012 is outside your area."
    assert sms(COORD_KOTA, "STATUS 6371011001099") == "GAGAL: TPS 6371011001099 tidak terdaftar."


def test_status_shows_ts_only_when_the_volunteer_sent_it(sms):
    sms(VOLUNTEER_A, "TPS 012 01=152 02=80 03=20")
    reply = sms(COORD_KOTA, "STATUS 6371011001012")
    assert reply.startswith("OK STATUS 6371011001012 ") and ": 01=152 02=80 03=20, 1 laporan." in reply, reply
    assert "TS=" not in reply
    sms(VOLUNTEER_A, "TPS 012 01=152 02=80 03=20 TS=0")
    assert ": 01=152 02=80 03=20 TS=0, " in sms(COORD_KOTA, "STATUS 6371011001012")
