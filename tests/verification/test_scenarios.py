"""Verification scenarios through signed Twilio webhooks on a real database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from smsgate.models import Contact, Flag, Incident, StationResult
from smsgate.services import counters

from ..support import COORD_KOTA, KURIPAN, VOLUNTEER_A, VOLUNTEER_B, VOLUNTEER_C, TwilioSender

STATION = "6371011001012"  # Mantuil TPS 012, 400 registered voters (tests/support.py)
AUTH = {"Authorization": "Bearer test-api-token"}


def result(database, station_id=STATION) -> StationResult:
    with database.read() as session:
        return session.get(StationResult, station_id)


def open_flags(database, station_id=STATION) -> dict[str, str]:
    with database.read() as session:
        flags = session.scalars(select(Flag).where(Flag.station_id == station_id, Flag.resolved_at.is_(None)))
        return {f.kind: f.reason for f in flags}


def desa_counters(database) -> dict[str, int]:
    with database.read() as session:
        return counters.read(session, "6371011001")


def test_two_volunteers_agree_verified(sms, database):
    assert sms(VOLUNTEER_A, "TPS 012 01=100 02=80 03=40").startswith("OK TPS 012")
    assert result(database).status == "reported"
    assert sms(VOLUNTEER_B, "TPS 012 01=100 02=80 03=40").startswith("OK")
    current = result(database)
    assert current.status == "verified"
    assert current.votes == {"01": 100, "02": 80, "03": 40}
    assert desa_counters(database)["verified"] == 1
    assert open_flags(database) == {}


def test_disagreement_disputed_then_coordinator_settles(sms, database):
    sms(VOLUNTEER_A, "TPS 012 01=100 02=80 03=40")
    sms(VOLUNTEER_B, "TPS 012 01=100 02=60 03=40")
    assert result(database).status == "disputed"
    assert desa_counters(database)["disputed"] == 1
    reply = sms(COORD_KOTA, f"TPS {STATION} 01=100 02=70 03=40 PIN 4821")
    assert reply.startswith("OK"), reply
    settled = result(database)
    assert settled.status == "verified"
    assert settled.votes == {"01": 100, "02": 70, "03": 40}
    values = desa_counters(database)
    assert values.get("disputed", 0) == 0 and values["verified"] == 1
    assert values["v:02"] == 70


def test_volunteer_corrects_then_cancels(sms, database):
    first = sms(VOLUNTEER_A, "TPS 012 01=100 02=80 03=40")
    sms(VOLUNTEER_B, "TPS 012 01=100 02=80 03=40")
    assert result(database).status == "verified"
    sms(VOLUNTEER_A, "TPS 012 01=101 02=80 03=40")  # correction: disagrees with B now
    assert result(database).status == "disputed"
    assert "Ref" in first
    reply = sms(VOLUNTEER_A, "BATAL")
    assert reply.startswith("OK"), reply
    after = result(database)
    assert after.status == "reported"  # only B's report still counts
    assert after.votes == {"01": 100, "02": 80, "03": 40}
    assert desa_counters(database)["v:01"] == 100


def test_one_digit_misread_flagged_once_per_reading(sms, database):
    sms(VOLUNTEER_A, "TPS 012 01=152 02=60 03=30")
    reply = sms(VOLUNTEER_B, "TPS 012 01=652 02=60 03=30")
    assert reply.startswith("OK"), reply  # flags never block a report
    flags = open_flags(database)
    assert "one_digit" in flags
    assert "152" in flags["one_digit"] and "652" in flags["one_digit"]
    assert result(database).flagged
    assert desa_counters(database)["flagged"] == 1
    # B's 652 is also over capacity, and B's reading is the counted one (a 1-1 tie: the latest).
    assert flags["over_capacity"].endswith(")") and "742" in flags["over_capacity"]
    sms(VOLUNTEER_C, "TPS 012 01=152 02=60 03=30")  # A's reading again
    with database.read() as session:
        kinds = list(session.scalars(select(Flag.kind).where(Flag.station_id == STATION)))
    assert kinds.count("one_digit") == 2  # one per reading: 652 (B's) and now 152 (C's)
    sms(VOLUNTEER_C, "TPS 012 01=152 02=60 03=30 TS=1")  # the same reading again: no duplicate
    with database.read() as session:
        kinds = list(session.scalars(select(Flag.kind).where(Flag.station_id == STATION)))
    assert kinds.count("one_digit") == 2
    # Flags belong to reports: 152 now counts (2 of 3), B's over_capacity stays beside B's
    # report but no longer flags the station, which is still disputed (no 3 agreeing).
    assert "over_capacity" in open_flags(database)
    assert result(database).status == "disputed" and not result(database).flagged
    assert desa_counters(database).get("flagged", 0) == 0


def test_two_digit_difference_is_not_a_misread(sms, database):
    sms(VOLUNTEER_A, "TPS 012 01=152 02=60 03=30")
    sms(VOLUNTEER_B, "TPS 012 01=162 02=61 03=30")
    assert "one_digit" not in open_flags(database)


def test_form_checks(sms, database):
    sms(VOLUNTEER_A, "TPS 012 01=100 02=80 03=40 TS=5")
    sms(VOLUNTEER_B, "TPS 012 01=100 02=80 03=40 TS=7")
    flags = open_flags(database)
    assert set(flags) == {"totals_mismatch"}
    assert "TS beda" in flags["totals_mismatch"]
    assert result(database).status == "verified"  # the votes agree; TS is for a person to look at


def test_over_999_and_landslide(sms, database):
    sms(VOLUNTEER_C, "TPS 001 01=1200 02=5 03=0")
    flags = open_flags(database, "6371011001001")
    assert {"over_999", "over_capacity"} <= set(flags)
    sms(VOLUNTEER_C, "TPS 002 01=0 02=380 03=0 TS=4")  # 384 of 400 registered: 96% turnout
    flags = open_flags(database, "6371011001002")
    assert set(flags) == {"landslide"}
    assert "96%" in flags["landslide"]


def test_landslide_needs_high_turnout(sms, database):
    sms(VOLUNTEER_C, "TPS 002 01=0 02=300 03=0")
    assert open_flags(database, "6371011001002") == {}


def test_late_report_flagged(app, settings, database, world):
    late = replace(settings, polls_close=datetime.now(UTC) - timedelta(hours=13), late_hours=12)
    from smsgate import create_app

    late_app = create_app(late, test_config={"TESTING": True}, database=database)
    sender = TwilioSender(late_app.test_client())
    assert sender(VOLUNTEER_A, "TPS 012 01=100 02=80 03=40").startswith("OK")
    flags = open_flags(database)
    assert set(flags) == {"late"}
    assert "13 jam" in flags["late"]


def test_same_phone_in_two_desa_flagged(sms, database):
    sms(VOLUNTEER_C, "TPS 001 01=10 02=20 03=30")
    with database.begin() as session:  # the volunteer is re-assigned to another desa
        contact = session.scalars(select(Contact).where(Contact.phone == VOLUNTEER_C)).one()
        contact.region_code = KURIPAN
    assert sms(VOLUNTEER_C, "TPS 001 01=10 02=20 03=30").startswith("OK")
    flags = open_flags(database, "6371021001001")
    assert set(flags) == {"multi_desa"}
    assert VOLUNTEER_C in flags["multi_desa"]


def test_coordinator_reports_are_not_multi_desa(sms, database):
    sms(COORD_KOTA, "TPS 6371011001001 01=10 02=20 03=30 PIN 4821")
    sms(COORD_KOTA, "TPS 6371021001001 01=10 02=20 03=30 PIN 4821")
    assert open_flags(database, "6371021001001") == {}


def test_flags_api_lists_open_flags_in_region(sms, client, database):
    sms(VOLUNTEER_A, "TPS 012 01=152 02=60 03=30")
    sms(VOLUNTEER_B, "TPS 012 01=652 02=60 03=30")
    sms(VOLUNTEER_C, "TPS 001 01=1200 02=5 03=0")
    response = client.get("/api/flags?region=63.71.01", headers=AUTH)
    assert response.status_code == 200
    flags = response.get_json()["flags"]
    assert {f["kind"] for f in flags} == {"one_digit", "over_999", "over_capacity"}
    assert all(set(f) >= {"station_id", "kind", "reason", "created_at", "status"} for f in flags)
    assert flags[0]["station_id"] == "6371011001001"  # newest first
    assert all(f["status"] == "open" for f in flags)
    assert client.get("/api/flags?region=63.03", headers=AUTH).get_json()["flags"] == []
    assert client.get("/api/flags?region=99.99", headers=AUTH).status_code == 404
    assert client.get("/api/flags?region=63").status_code == 401


def test_incident_reported_and_listed(sms, client, database):
    reply = sms(VOLUNTEER_A, "LAPOR saksi diusir dari TPS")
    assert reply.startswith("OK kejadian dicatat untuk TPS 012. Ref "), reply
    ref = reply.split("Ref ")[1].split(".")[0]
    reply = sms(VOLUNTEER_C, "INCIDENT   formulir C1   hilang")  # not assigned to one TPS: the desa
    assert reply.startswith("OK kejadian dicatat untuk Mantuil"), reply
    with database.read() as session:
        stored = {i.ref: i for i in session.scalars(select(Incident))}
    assert stored[ref].station_id == STATION and stored[ref].text == "saksi diusir dari TPS"
    listing = client.get("/api/incidents?region=63.71.01.1001", headers=AUTH).get_json()["incidents"]
    assert [i["text"] for i in listing] == ["formulir C1 hilang", "saksi diusir dari TPS"]
    assert listing[1]["station_id"] == STATION and listing[1]["from"] == VOLUNTEER_A
    assert client.get("/api/incidents?region=63.03", headers=AUTH).get_json()["incidents"] == []
    assert len(client.get("/api/incidents", headers=AUTH).get_json()["incidents"]) == 2
    status = sms(COORD_KOTA, f"STATUS {STATION}")
    assert "Kejadian: 2" in status, status


def test_incident_by_unknown_number_refused(sms, database):
    assert sms("+6281999999999", "LAPOR ada intimidasi").startswith("GAGAL")
    with database.read() as session:
        assert session.scalars(select(Incident)).first() is None
