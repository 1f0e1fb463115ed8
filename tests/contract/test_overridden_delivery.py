"""``overridden`` through the whole tally contract: a coordinator's SMS against two agreeing
volunteers, delivered by the worker to a version 2 and a version 1 reference receiver
(``smsgate receive``), whose tallies then equal ``GET /api/tally`` as the README says: version 2
field for field (``overridden`` included, with the volunteers' numbers), version 1 with the
overridden stations under ``disputed``. Then the coordinator's report is rejected on the
dashboard's path and both receivers follow."""

from __future__ import annotations

from sqlalchemy import select

from smsgate.dashboard.accounts import create_user
from smsgate.models import Report, utcnow

from ..dashboard.conftest import ADMIN, PASSWORD, csrf_token, login
from ..support import COORD_KOTA, VOLUNTEER_A, VOLUNTEER_B, VOLUNTEER_EN, WITH_PIN
from .test_outgoing_contract import NEW, deliver_to_both, receiver

AUTH = {"Authorization": "Bearer test-api-token"}
AGREED = {"01": 100, "02": 50, "03": 25}


def api_totals(client) -> dict:  # type: ignore[no-untyped-def]
    document = client.get("/api/tally", headers=AUTH).get_json()
    stations = document["stations"]
    return {
        **{k: stations[k] for k in ("reported", "verified", "disputed", "overridden", "flagged")},
        "votes": {c: n for c, n in document["votes"].items() if n},
        "valid": document["valid"],
        "invalid": document["invalid"],
    }


def test_an_overridden_station_reaches_both_schema_versions_as_documented(
    app, client, database, settings, sms, tmp_path
):  # type: ignore[no-untyped-def]
    for phone in (VOLUNTEER_A, VOLUNTEER_B):
        assert sms(phone, "TPS 012 01=100 02=50 03=25").startswith("OK")
    assert sms(VOLUNTEER_EN, "TPS 001 01=40 02=60 03=20").startswith("OK")
    held = sms(COORD_KOTA, f"TPS 6371011001012 01=1 02=250 03=1{WITH_PIN}")
    assert held.startswith("OK DITINJAU")
    with receiver(tmp_path, "v2", [NEW]) as v2, receiver(tmp_path, "v1", [NEW]) as v1:
        deliver_to_both(database, settings, v2, v1, tmp_path)
        ours = api_totals(client)
        assert ours["overridden"] == 1 and ours["votes"] == {"01": 140, "02": 110, "03": 45}
        assert v2.store.tally()["totals"] == ours
        old = v1.store.tally()["totals"]
        assert old["overridden"] == 0 and old["disputed"] == ours["disputed"] + ours["overridden"]
        assert {k: v for k, v in old.items() if k not in ("disputed", "overridden")} == {
            k: v for k, v in ours.items() if k not in ("disputed", "overridden")
        }
        station = v2.store.tally()["stations"]["6371011001012"]
        assert (station["status"], station["votes"]) == ("overridden", AGREED)

        # Rejected on the dashboard: the receivers hear report.cancelled, then verified again.
        with database.begin() as session:
            create_user(session, email=ADMIN, password=PASSWORD, role="admin", region=None, now=utcnow())
            [coordinator] = session.scalars(
                select(Report.id).where(Report.by_coordinator.is_(True), Report.cancelled_at.is_(None))
            )
        browser = app.test_client()
        assert login(browser, ADMIN).status_code == 302
        token = csrf_token(browser, "/dashboard/review")
        rejected = browser.post(
            "/dashboard/review/6371011001012/reject",
            data={"report_id": str(coordinator), "csrf_token": token},
        )
        assert rejected.status_code == 302
        deliver_to_both(database, settings, v2, v1, tmp_path)
        ours = api_totals(client)
        assert ours["overridden"] == 0 and ours["verified"] == 1
        assert v2.store.tally()["totals"] == ours == v1.store.tally()["totals"]
        assert v2.store.tally()["gaps"] == {}
