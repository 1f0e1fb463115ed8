"""The consensus rule through signed Twilio webhooks: ten volunteers at one TPS."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from smsgate.config import Settings
from smsgate.models import Flag, Report, StationResult
from smsgate.services import counters
from smsgate.services.consensus import BadRule, Rule, parse_rule
from smsgate.sms import is_single_gsm7_sms

from ..support import COORD_KOTA, VOLUNTEER_A, VOLUNTEER_B

STATION = "6371011001012"
AUTH = {"Authorization": "Bearer test-api-token"}
MAJORITY = "TPS 012 01=100 02=80 03=20"
MISREAD = "TPS 012 01=100 02=86 03=20"


def result(database) -> StationResult:
    with database.read() as session:
        return session.get(StationResult, STATION)


def desa(database) -> dict[str, int]:
    with database.read() as session:
        return counters.read(session, "6371011001")


def test_one_misread_among_ten_keeps_the_station_verified(sms, ten, database, client):
    for phone in ten[:6]:
        assert sms(phone, MAJORITY).startswith("OK")
    assert sms(ten[6], MISREAD).startswith("OK")
    settled = result(database)
    assert settled.status == "verified" and settled.votes == {"01": 100, "02": 80, "03": 20}
    assert settled.dissent == 1 and not settled.flagged
    assert desa(database)["verified"] == 1 and desa(database).get("disputed", 0) == 0

    # An eighth phone sends an impossible count: flagged on its report, not on the station.
    sms(ten[7], "TPS 012 01=700 02=80 03=20")
    with database.read() as session:
        flags = list(session.scalars(select(Flag).where(Flag.station_id == STATION)))
        flagged_refs = {session.get(Report, f.report_id).ref for f in flags if f.kind == "over_capacity"}
    assert [f.kind for f in flags].count("over_capacity") == 1
    settled = result(database)
    assert settled.status == "verified" and settled.dissent == 2 and not settled.flagged
    assert desa(database).get("flagged", 0) == 0

    document = client.get(f"/api/stations/{STATION}", headers=AUTH).get_json()
    assert document["status"] == "verified" and document["dissent"] == 2 and document["flagged"] is False
    assert document["votes"] == {"01": 100, "02": 80, "03": 20}
    dissenting = [r for r in document["reports"] if r["dissent"]]
    assert sorted(r["votes"]["01"] for r in dissenting) == [100, 700]
    assert all(r["outvoted"] for r in dissenting)
    over = next(r for r in document["reports"] if r["votes"]["01"] == 700)
    assert "over_capacity" in over["flags"] and over["ref"] in flagged_refs  # and one_digit: 700 vs 100
    assert document["impact"] == 600  # the 700 reading would move 600 votes
    assert document["contested"] is False  # 01 leads in every reading: minor dissent


def test_no_qualified_majority_is_disputed(sms, ten, database):
    for phone in ten[:2]:
        sms(phone, MAJORITY)
    sms(ten[2], MISREAD)
    assert result(database).status == "disputed"  # 2 of 3 but fewer than 3 agreeing
    sms(ten[3], MAJORITY)
    assert result(database).status == "verified"  # 3 of 4 >= 2/3
    for phone in ten[4:6]:
        sms(phone, MISREAD)
    current = result(database)
    assert current.status == "disputed" and current.dissent == 3  # 3 of 6 < 2/3
    assert current.votes == {"01": 100, "02": 86, "03": 20}  # a 3-3 tie: the most recent reading
    assert desa(database)["disputed"] == 1


def test_two_agreeing_reports_verify_with_no_dissent(sms, database, client):
    sms(VOLUNTEER_A, MAJORITY)
    sms(VOLUNTEER_B, MAJORITY)
    current = result(database)
    assert current.status == "verified" and current.dissent == 0 and current.dissent_open == 0
    assert client.get(f"/api/stations/{STATION}", headers=AUTH).get_json()["dissent"] == 0


def test_the_dissenter_is_told_in_one_sms(sms, ten, database):
    for phone in ten[:6]:
        sms(phone, MAJORITY)
    reply = sms(ten[0], MISREAD)  # an Indonesian volunteer changes their mind to the misread
    assert reply.startswith("OK TPS 012 01=100 02=86 03=20 Ref ")
    assert "Berbeda dgn 5 laporan lain di TPS ini. Periksa C.Hasil, kirim ulang bila salah." in reply
    reply = sms(ten[6], MISREAD)  # English
    assert "Differs from 5 other reports at this TPS. Check the C.Hasil form; resend if wrong." in reply
    assert is_single_gsm7_sms(reply)
    # The correction supersedes their own report; the station loses its dissent.
    reply = sms(ten[6], MAJORITY)
    assert "Differs" not in reply
    sms(ten[0], MAJORITY)
    current = result(database)
    assert current.status == "verified" and current.dissent == 0
    with database.read() as session:
        assert not any(r.outvoted for r in session.scalars(select(Report).where(Report.station_id == STATION))
                       if r.current)  # fmt: skip


def test_no_dissent_reply_without_an_established_majority(sms, ten):
    sms(ten[0], MAJORITY)
    reply = sms(ten[1], MISREAD)
    assert "Berbeda" not in reply  # 1 against 1: disputed, nobody is outvoted


def test_a_hostile_reading_that_would_change_the_winner_stays_dissent(sms, ten, database):
    for phone in ten[:7]:
        sms(phone, MAJORITY)
    sms(ten[7], "TPS 012 01=30 02=150 03=20")  # favours 02, plausible totals
    current = result(database)
    assert current.status == "verified" and current.dissent == 1 and current.contested
    assert current.votes == {"01": 100, "02": 80, "03": 20}
    assert current.impact == 140


def test_coordinator_sms_still_settles_a_disputed_station(sms, ten, database):
    sms(ten[0], MAJORITY)
    sms(ten[1], MISREAD)
    assert result(database).status == "disputed"
    assert sms(COORD_KOTA, f"TPS {STATION} 01=100 02=80 03=20 PIN 4821").startswith("OK")
    current = result(database)
    assert current.status == "verified" and current.dissent == 1


def test_cancel_recomputes_the_dissent(sms, ten, database):
    for phone in ten[:3]:
        sms(phone, MAJORITY)
    sms(ten[3], MISREAD)
    assert result(database).dissent == 1
    assert sms(ten[3], "BATAL").startswith("OK")
    current = result(database)
    assert current.status == "verified" and current.dissent == 0


def test_stricter_rule_from_the_environment(database_url, world, database):
    from smsgate import create_app

    from ..support import TwilioSender

    settings = Settings.from_env(
        {
            "SMSGATE_DATABASE_URL": database_url,
            "SMSGATE_PUBLIC_URL": "https://smsgate.example.org",
            "TWILIO_AUTH_TOKEN": "test-auth-token",
            "SMSGATE_CONSENSUS": "4,3/4",
            "SMSGATE_FLOOD_PER_MINUTE": "0",
        }
    )
    assert settings.consensus == Rule(4, parse_rule("4,0.75").share)
    app = create_app(settings, test_config={"TESTING": True}, database=database)
    send = TwilioSender(app.test_client())
    from smsgate.importers import upsert_contacts

    phones = [f"+62811400000{n:02d}" for n in range(1, 6)]
    with database.begin() as session:
        upsert_contacts(
            session,
            [
                {"phone": p, "name": "R", "role": "volunteer", "region_code": "63.71.01.1001", "tps": 12}
                for p in phones
            ],
        )
    for phone in phones[:3]:
        send(phone, MAJORITY)
    send(phones[3], MISREAD)
    assert result(database).status == "disputed"  # 3 of 4 is not 4 agreeing
    send(phones[4], MAJORITY)
    assert result(database).status == "verified"  # 4 of 5 = 80% >= 3/4


@pytest.mark.parametrize("text", ["3", "1,2/3", "3,1/2", "3,abc", "3,2/0", "x,2/3", "3,1.5"])
def test_bad_rules_are_refused(text):
    with pytest.raises(BadRule):
        parse_rule(text)


def test_rule_arithmetic():
    rule = parse_rule("3,2/3")
    assert str(rule) == "3,2/3" and parse_rule("") == rule
    assert rule.qualified(2, 2) and not rule.qualified(1, 1)
    assert not rule.qualified(2, 3) and rule.qualified(3, 4) and rule.qualified(6, 9)
    assert not rule.qualified(5, 8) and rule.qualified(7, 10) and rule.qualified(9, 10)
