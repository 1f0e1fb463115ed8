"""The review queue by impact, competing readings side by side, and clearing minor dissent."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from smsgate.importers import upsert_contacts
from smsgate.models import Report, StationResult

from ..support import KELAYAN, KURIPAN, MANTUIL
from .conftest import csrf_token

AUTH = {"Authorization": "Bearer test-api-token"}
MANTUIL_1, MANTUIL_2, MANTUIL_12 = "6371011001001", "6371011001002", "6371011001012"
KELAYAN_1, KURIPAN_1 = "6371011002001", "6371021001001"


@pytest.fixture
def crowd(database, world) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    """Five volunteers per desa, not tied to one TPS, so each can report for any of its stations."""
    phones = {
        desa: [f"+628115{i}{n:05d}" for n in range(1, 6)]
        for i, desa in enumerate((MANTUIL, KELAYAN, KURIPAN))
    }
    with database.begin() as session:
        upsert_contacts(
            session,
            [
                {"phone": p, "name": f"R{p[-3:]}", "role": "volunteer", "region_code": desa, "tps": None}
                for desa, ps in phones.items()
                for p in ps
            ],
        )
    return phones


def send(sms, phones, station_tps: int, *bodies: str) -> None:  # type: ignore[no-untyped-def]
    for phone, body in zip(phones, bodies, strict=False):
        assert sms(phone, f"TPS {station_tps:03d} {body}").startswith("OK")


AGREED = "01=100 02=80 03=20"


def night(sms, crowd) -> None:  # type: ignore[no-untyped-def]
    m, k, r = crowd[MANTUIL], crowd[KELAYAN], crowd[KURIPAN]
    send(sms, m, 1, AGREED, AGREED, AGREED, AGREED, "01=100 02=86 03=20")  # minor dissent, impact 6
    send(sms, m, 2, AGREED, AGREED, AGREED, AGREED, "01=30 02=150 03=20")  # contested, impact 140
    send(sms, m, 12, AGREED, "01=100 02=60 03=20")  # disputed, impact 20
    send(sms, k, 1, "01=150 02=10 03=10", "01=50 02=110 03=10")  # disputed, impact 200
    send(sms, r, 1, AGREED, AGREED, AGREED, "01=101 02=80 03=20")  # other kecamatan, minor


def test_queue_and_dissent_are_ordered_by_impact_with_readings_side_by_side(sms, crowd, client, admin):
    night(sms, crowd)
    queue = client.get("/api/review?region=63.71", headers=AUTH).get_json()["stations"]
    assert [(s["station_id"], s["status"], s["impact"]) for s in queue] == [
        (KELAYAN_1, "disputed", 200),
        (MANTUIL_12, "disputed", 20),
    ]
    readings = queue[0]["readings"]
    assert [g["votes"] for g in readings] == [
        {"01": 50, "02": 110, "03": 10},
        {"01": 150, "02": 10, "03": 10},
    ]
    assert readings[0]["counted"] and readings[1]["difference"] == {"01": 100, "02": -100, "03": 0}
    assert readings[1]["moves"] == 200 and readings[1]["phones"] == [crowd[KELAYAN][0]]

    dissent = client.get("/api/dissent?region=63.71", headers=AUTH).get_json()["stations"]
    assert [(s["station_id"], s["impact"], s["contested"]) for s in dissent] == [
        (MANTUIL_2, 140, True),
        (MANTUIL_1, 6, False),
        (KURIPAN_1, 1, False),
    ]
    assert all(s["status"] == "verified" and s["dissent"] == 1 for s in dissent)

    page = admin.get("/dashboard/review").get_data(as_text=True)
    assert page.index(KELAYAN_1) < page.index(MANTUIL_12)  # largest impact first
    assert page.index(f'data-station="{MANTUIL_2}"') < page.index(f'data-station="{MANTUIL_1}"')
    assert "Beda pendapat" in page and "mengubah pemenang" in page
    assert 'data-clear="63.71.01"' in page and 'data-clear="63.71.02"' in page


def test_clearing_a_kecamatans_minor_dissent_leaves_contested_and_other_kecamatan(sms, crowd, client, admin):
    night(sms, crowd)
    token = csrf_token(admin, "/dashboard/review")
    response = admin.post("/dashboard/review/dissent/clear", data={"region": "63.71.01", "csrf_token": token})
    assert response.status_code == 302
    assert "1 TPS di 63.71.01" in admin.get(response.headers["Location"]).get_data(as_text=True)
    dissent = client.get("/api/dissent?region=63.71", headers=AUTH).get_json()["stations"]
    assert [s["station_id"] for s in dissent] == [MANTUIL_2, KURIPAN_1]
    document = client.get(f"/api/stations/{MANTUIL_1}", headers=AUTH).get_json()
    assert document["dissent"] == 1 and document["dissent_open"] == 0  # still counted and shown

    # A contested dissent is cleared one station at a time.
    response = admin.post(f"/dashboard/review/{MANTUIL_2}/clear-dissent", data={"csrf_token": token})
    assert response.status_code == 302
    dissent = client.get("/api/dissent?region=63.71", headers=AUTH).get_json()["stations"]
    assert [s["station_id"] for s in dissent] == [KURIPAN_1]

    # Clearing is about the reports seen: a new dissenting report opens the station again.
    sms(crowd[MANTUIL][4], "TPS 001 01=100 02=80 03=21")  # the dissenter changes their reading
    dissent = client.get("/api/dissent?region=637101", headers=AUTH).get_json()["stations"]
    assert [s["station_id"] for s in dissent] == [MANTUIL_1]


def test_clearing_needs_a_kecamatan_in_scope(sms, crowd, app, admin, kota):
    night(sms, crowd)
    token = csrf_token(kota, "/dashboard/review")
    assert (
        kota.post(
            "/dashboard/review/dissent/clear", data={"region": "64.72.01", "csrf_token": token}
        ).status_code
        == 403
    )
    assert (
        kota.post(
            "/dashboard/review/dissent/clear", data={"region": "63.71", "csrf_token": token}
        ).status_code
        == 400
    )
    token = csrf_token(admin, "/dashboard/review")
    assert (
        admin.post(
            "/dashboard/review/dissent/clear", data={"region": "63.71.02", "csrf_token": token}
        ).status_code
        == 302
    )


def test_confirming_a_reading_clears_the_dissent_it_overrules(sms, crowd, database, admin, client):
    night(sms, crowd)
    with database.read() as session:
        chosen = session.scalars(
            select(Report).where(Report.station_id == KELAYAN_1, Report.votes["01"].as_integer() == 150)
        ).one()
    token = csrf_token(admin, "/dashboard/review")
    admin.post(
        f"/dashboard/review/{KELAYAN_1}/confirm", data={"report_id": str(chosen.id), "csrf_token": token}
    )
    with database.read() as session:
        result = session.get(StationResult, KELAYAN_1)
        assert (result.status, result.dissent, result.dissent_open) == ("verified", 1, 0)
    queue = client.get("/api/review?region=63.71", headers=AUTH).get_json()["stations"]
    assert KELAYAN_1 not in [s["station_id"] for s in queue]


def test_the_station_page_shows_dissent_and_flags_beside_their_report(sms, crowd, admin, database):
    m = crowd[MANTUIL]
    send(sms, m, 1, AGREED, AGREED, AGREED, AGREED, "01=700 02=80 03=20")
    with database.read() as session:
        result = session.get(StationResult, MANTUIL_1)
        assert (result.status, result.flagged, result.dissent) == ("verified", False, 1)
        odd = session.scalars(
            select(Report).where(Report.station_id == MANTUIL_1, Report.votes["01"].as_integer() == 700)
        ).one()
    page = admin.get(f"/dashboard/stations/{MANTUIL_1}").get_data(as_text=True)
    assert '<strong id="station-dissent">1</strong>/5' in page
    row = page[page.index(f'data-ref="{odd.ref}"') :].split("</tr>")[0]
    assert "kalah suara" in row and "over_capacity" in row  # outvoted, and its own flag beside it
    assert page.count('class="dissent"') == 1
