"""Every dashboard page through the Flask test client, on data that arrived as signed webhooks."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from smsgate.config import Settings
from smsgate.models import Flag, Report, StationDecision, StationResult
from smsgate.regions import time_zone
from smsgate.services import counters
from smsgate.services.station_results import decide
from smsgate.services.tally import tally

from ..support import COORD_KOTA, RAWA, VOLUNTEER_A, VOLUNTEER_ALUH, VOLUNTEER_B, VOLUNTEER_C, VOLUNTEER_EN
from .conftest import csrf_token

MANTUIL_12 = "6371011001012"
KELAYAN_1 = "6371011002001"
ALUH_1 = "6303012001001"
RAWA_1 = "6472011001001"


def night(sms) -> None:  # type: ignore[no-untyped-def]
    """Mantuil TPS 012 disputed (A and B disagree), Kelayan TPS 001 and Aluh TPS 001 reported."""
    assert sms(VOLUNTEER_A, "TPS 012 01=100 02=80 03=20").startswith("OK")
    assert sms(VOLUNTEER_B, "TPS 012 01=90 02=85 03=20").startswith("OK")
    assert sms(VOLUNTEER_EN, "TPS 001 01=50 02=60 03=10").startswith("OK")
    assert sms(VOLUNTEER_ALUH, "TPS 001 01=70 02=40 03=30").startswith("OK")


def test_overview_json_follows_the_counters(admin, sms, database):
    before = admin.get("/dashboard/api/overview").get_json()
    assert before["stations"]["reported"] == 0 and before["stations"]["missing"] == 9
    night(sms)
    after = admin.get("/dashboard/api/overview").get_json()
    assert after["stations"] == {
        "total": 9, "reported": 3, "verified": 0, "disputed": 1, "overridden": 0, "flagged": 0, "missing": 6,
    }  # fmt: skip
    with database.read() as session:
        assert after["votes"] == tally(session)["votes"]
    shares = {c["code"]: round(c["share"], 2) for c in after["candidates"]}
    valid = after["valid"]
    assert shares["02"] == round(100 * after["votes"]["02"] / valid, 2)
    assert (
        sum(p["per_minute"] * after["activity"]["bucket_minutes"] for p in after["activity"]["points"]) == 4
    )


def test_activity_stores_settled_minutes_once_and_counts_them_once(sms, database):
    """Settled minutes are counted once into ``activity_minutes`` and read back from there;
    refreshes count in SQL only what came after the mark."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import func

    from smsgate.dashboard import activity
    from smsgate.models import ActivityMark, ActivityMinute

    night(sms)
    later = datetime.now(UTC) + activity.SETTLE + timedelta(minutes=1)
    totals = []
    for _ in range(3):
        chart = activity.chart(database, "63", later)
        totals.append(sum(p["per_minute"] * chart["bucket_minutes"] for p in chart["points"]))
    assert totals == [4, 4, 4]
    with database.read() as session:
        assert (
            session.scalar(select(func.sum(ActivityMinute.reports)).where(ActivityMinute.region_key == "63"))
            == 4
        )
        assert session.get(ActivityMark, "63").settled_until > datetime.now(UTC)
    # The chart reads the stored minutes now: a report moved out of the window behind its back
    # stays counted, which shows the settled minutes are not counted from reports again.
    with database.begin() as session:
        first = session.scalars(select(Report).order_by(Report.id)).first()
        first.created_at = later - timedelta(days=3)
    chart = activity.chart(database, "63", later)
    assert sum(p["per_minute"] * chart["bucket_minutes"] for p in chart["points"]) == 4
    assert sum(p["per_minute"] for p in activity.chart(database, "6303", later)["points"]) == 1
    chart = activity.chart(database, "", later)  # the country: counted now, without that report
    assert sum(p["per_minute"] * chart["bucket_minutes"] for p in chart["points"]) == 3


def test_activity_counts_reports_that_arrive_after_the_mark(sms, database):
    from datetime import UTC, datetime, timedelta

    from smsgate.dashboard import activity

    night(sms)
    now = datetime.now(UTC)
    assert sum(p["per_minute"] for p in activity.chart(database, "63", now)["points"]) == 4
    assert sms(VOLUNTEER_C, "TPS 001 01=5 02=6 03=1").startswith("OK")
    chart = activity.chart(database, "63", now + timedelta(seconds=1))
    assert sum(p["per_minute"] * chart["bucket_minutes"] for p in chart["points"]) == 5


def test_overview_page_renders_counts_and_svg_charts(admin, sms):
    night(sms)
    page = admin.get("/dashboard/").get_data(as_text=True)
    assert 'data-field="stations.reported">3<' in page
    assert '<svg class="chart" id="vote-chart"' in page and "Prabowo-Gibran" in page
    assert "dashboard.js" in page
    assert admin.get("/dashboard/static/dashboard.js").status_code == 200


def test_drill_down_rows_add_up_to_the_parent(admin, sms, database):
    night(sms)
    page = admin.get("/dashboard/regions/").get_data(as_text=True)
    assert "Kalimantan Selatan" in page and "Kalimantan Timur" in page
    kota = admin.get("/dashboard/regions/63.71").get_data(as_text=True)
    assert "Banjarmasin Selatan" in kota and "Banjarmasin Timur" in kota
    assert 'href="/dashboard/regions/63.71.01"' in kota
    desa = admin.get("/dashboard/regions/6371011001").get_data(as_text=True)  # undotted works too
    assert f'href="/dashboard/stations/{MANTUIL_12}"' in desa and "TPS 012" in desa
    assert 'class="crumbs"' in desa and ">Kota Banjarmasin</a>" in desa
    from smsgate.dashboard.queries import child_rows

    with database.read() as session:
        for code in ("", "63", "63.71", "63.71.01", "63.71.01.1001"):
            _kind, rows = child_rows(session, code)
            parent = tally(session, code)
            assert sum(r["reported"] for r in rows) == parent["stations"]["reported"], code
            assert sum(r["stations"] for r in rows) == parent["stations"]["total"], code
            for c in ("01", "02", "03"):
                assert sum(r["votes"][c] for r in rows) == parent["votes"][c], (code, c)


def test_unknown_region_and_station_are_404(admin, world):
    assert admin.get("/dashboard/regions/99.99").status_code == 404
    assert admin.get("/dashboard/regions/not-a-code").status_code == 404
    assert admin.get("/dashboard/stations/6371011001777").status_code == 404


def test_station_page_shows_reports_messages_and_flags(admin, sms, database):
    night(sms)
    sms(VOLUNTEER_A, "TPS 012 01=200 02=80 03=20")  # A corrects: supersedes the first report
    page = admin.get(f"/dashboard/stations/{MANTUIL_12}").get_data(as_text=True)
    assert "TPS 012 01=100 02=80 03=20" in page and "TPS 012 01=200 02=80 03=20" in page
    assert "digantikan" in page and "berlaku" in page
    assert VOLUNTEER_A in page and VOLUNTEER_B in page
    with database.read() as session:
        first = session.scalars(select(Report).order_by(Report.id)).first()
    wib = first.created_at.astimezone(ZoneInfo("Asia/Jakarta")).strftime("%Y-%m-%d %H:%M:%S")
    assert f"{wib} WIB" in page  # times are shown as people read them, not in UTC


def test_unknown_time_zone_fails_at_start_up():
    with pytest.raises(ValueError, match="unknown time zone 'Asia/Banjarmasin'"):
        Settings.from_env({"SMSGATE_TIMEZONE": "Asia/Banjarmasin"})
    assert Settings.from_env({"SMSGATE_TIMEZONE": "Asia/Makassar"}).timezone == "Asia/Makassar"
    assert time_zone("63.71") == "Asia/Makassar" and time_zone("31") == "Asia/Jakarta"
    assert time_zone("9101") == "Asia/Jayapura"


def confirm_reading(admin, database, first: int):  # type: ignore[no-untyped-def]
    """The admin confirms, on the review page, Mantuil TPS 012's report whose ``01`` count is
    ``first`` (``night``: 100 from volunteer A, 90 from B); returns it and the response."""
    with database.read() as session:
        chosen = session.scalars(
            select(Report).where(Report.station_id == MANTUIL_12, Report.votes["01"].as_integer() == first)
        ).one()
    token = csrf_token(admin, "/dashboard/review")
    response = admin.post(
        f"/dashboard/review/{MANTUIL_12}/confirm", data={"report_id": str(chosen.id), "csrf_token": token}
    )
    return chosen, response


def test_confirming_a_disputed_report_verifies_the_station(admin, sms, database, users):
    night(sms)
    review = admin.get("/dashboard/review").get_data(as_text=True)
    assert MANTUIL_12 in review and "Sengketa" in review
    chosen, response = confirm_reading(admin, database, 90)
    assert response.status_code == 302
    assert "dikonfirmasi" in admin.get(response.headers["Location"]).get_data(as_text=True)
    with database.read() as session:
        result = session.get(StationResult, MANTUIL_12)
        assert (result.status, result.report_id, result.votes) == ("verified", chosen.id, chosen.votes)
        decision = session.scalars(select(StationDecision)).one()
        assert (decision.user_id, decision.report_id) == (users.admin, chosen.id)
        document = tally(session, "63.71.01.1001")
        assert document["stations"]["verified"] == 1 and document["stations"]["disputed"] == 0
        assert document["votes"] == {"01": 90, "02": 85, "03": 20}
        assert counters.read(session, "")["disputed"] == 0
    assert MANTUIL_12 not in admin.get("/dashboard/review").get_data(as_text=True)
    station = admin.get(f"/dashboard/stations/{MANTUIL_12}").get_data(as_text=True)
    assert "admin@example.org" in station


def test_a_decision_lapses_when_its_report_is_superseded(admin, sms, database):
    night(sms)
    confirm_reading(admin, database, 100)
    sms(VOLUNTEER_A, "TPS 012 01=101 02=80 03=20")  # A corrects the confirmed report
    with database.read() as session:
        assert session.get(StationResult, MANTUIL_12).status == "disputed"
    # Confirming the superseded report changes nothing.
    _, response = confirm_reading(admin, database, 100)
    assert "tidak berlaku lagi" in admin.get(response.headers["Location"]).get_data(as_text=True)


def test_a_newer_coordinator_sms_overrides_a_dashboard_decision(admin, sms, database):
    night(sms)
    confirm_reading(admin, database, 100)
    assert sms(COORD_KOTA, f"TPS {MANTUIL_12} 01=95 02=85 03=20 PIN 4821").startswith("OK")
    with database.read() as session:
        result = session.get(StationResult, MANTUIL_12)
        assert result.status == "verified" and result.votes == {"01": 95, "02": 85, "03": 20}


def test_decide_honours_a_confirmed_report():
    from datetime import UTC, datetime

    def report(i: int, contact: int, votes: dict[str, int]) -> Report:
        return Report(id=i, contact_id=contact, votes=votes, by_coordinator=False,
                      created_at=datetime(2024, 2, 14, 7, i, tzinfo=UTC))  # fmt: skip

    a, b = report(1, 1, {"01": 1}), report(2, 2, {"01": 2})
    assert decide([a, b]).status == "disputed"
    assert decide([a, b], confirmed=a).status == "verified" and decide([a, b], confirmed=a).report is a
    assert decide([b], confirmed=a).status == "reported"  # a confirmed report that no longer counts


def test_flagged_station_is_in_the_queue_and_confirm_resolves_the_flag(admin, sms, database):
    station = "6371011001001"
    assert sms(VOLUNTEER_C, "TPS 001 01=1200 02=5 03=0").startswith("OK")  # over 999, over capacity
    review = admin.get("/dashboard/review").get_data(as_text=True)
    assert station in review and "over_capacity" in review
    with database.read() as session:
        report = session.scalars(select(Report)).one()
    token = csrf_token(admin, "/dashboard/review")
    data = {"report_id": str(report.id), "csrf_token": token}
    admin.post(f"/dashboard/review/{station}/confirm", data=data)
    with database.read() as session:
        flags = list(session.scalars(select(Flag).where(Flag.station_id == station)))
        assert flags and all(f.resolved_at is not None and f.resolved_by.startswith("admin@") for f in flags)
        assert session.get(StationResult, station).flagged is False
        assert session.get(StationResult, station).status == "verified"
        assert counters.read(session, "").get("flagged", 0) == 0
    assert station not in admin.get("/dashboard/review").get_data(as_text=True)


def test_message_log_search_and_pagination(admin, sms):
    night(sms)
    sms(VOLUNTEER_C, "APA INI")
    log = admin.get("/dashboard/messages").get_data(as_text=True)
    assert "APA INI" in log and "TPS 012 01=100" in log
    by_phone = admin.get(f"/dashboard/messages?phone={VOLUNTEER_EN}").get_data(as_text=True)
    assert "01=50" in by_phone and "01=100" not in by_phone
    by_text = admin.get("/dashboard/messages?q=apa").get_data(as_text=True)
    assert "APA INI" in by_text and "01=100" not in by_text
    by_station = admin.get(f"/dashboard/messages?station={MANTUIL_12}").get_data(as_text=True)
    assert "01=100" in by_station and "01=90" in by_station and "01=50" not in by_station
    rejected = admin.get("/dashboard/messages?outcome=rejected").get_data(as_text=True)
    assert "APA INI" in rejected and "01=100" not in rejected
    for i in range(51):
        sms(VOLUNTEER_C, f"CEK {i}")
    first = admin.get("/dashboard/messages?phone=" + VOLUNTEER_C).get_data(as_text=True)
    assert "page=2" in first
    second = admin.get("/dashboard/messages?page=2&phone=" + VOLUNTEER_C).get_data(as_text=True)
    assert "APA INI" in second and "page=3" not in second


def test_volunteer_history_and_the_not_reported_list(admin, sms):
    night(sms)
    history = admin.get(f"/dashboard/volunteers/{VOLUNTEER_A}").get_data(as_text=True)
    assert "Ani" in history and MANTUIL_12 in history and "TPS 012 01=100" in history
    missing = admin.get("/dashboard/volunteers").get_data(as_text=True)
    assert VOLUNTEER_C in missing and VOLUNTEER_A not in missing
    response = admin.get("/dashboard/volunteers.csv")
    assert response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["phone", "name", "region_code", "region_name", "tps"]
    assert [r[0] for r in rows[1:]] == [VOLUNTEER_C]


def test_results_csv_for_a_region(app, admin, sms):
    night(sms)
    response = admin.get("/dashboard/export/results.csv?region=63.71.01")
    assert response.mimetype == "text/csv" and "hasil-637101.csv" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 6 and all(r["station_id"].startswith("637101") for r in rows)
    mantuil = next(r for r in rows if r["station_id"] == MANTUIL_12)
    assert mantuil["status"] == "disputed" and mantuil["desa"] == "Mantuil"
    kelayan = next(r for r in rows if r["station_id"] == KELAYAN_1)
    assert (kelayan["votes_01"], kelayan["votes_02"], kelayan["valid"]) == ("50", "60", "120")
    # updated_at in the dashboard's zone (SMSGATE_TIMEZONE), ISO 8601 with its offset
    zone = ZoneInfo(app.extensions["smsgate.settings"].timezone)
    updated = datetime.fromisoformat(mantuil["updated_at"])
    assert updated.utcoffset() == datetime.now(zone).utcoffset() != timedelta(0)
    assert mantuil["updated_at"][19:] == datetime.now(zone).isoformat()[-6:]  # e.g. +08:00, no fraction
    assert abs(updated - datetime.now(UTC)) < timedelta(minutes=10)


def test_incidents_page(admin, sms):
    assert sms(VOLUNTEER_A, "LAPOR formulir C1 hilang").startswith("OK")
    page = admin.get("/dashboard/incidents").get_data(as_text=True)
    assert "formulir C1 hilang" in page and VOLUNTEER_A in page


def test_coordinator_sees_only_their_scope(kota, sms):
    night(sms)
    sms("+6281999999999", "HALO ORANG ASING")  # an unknown number: only country-wide users see it
    overview = kota.get("/dashboard/api/overview").get_json()
    assert overview["region"]["code"] == "63.71" and overview["stations"]["total"] == 7
    assert kota.get("/dashboard/regions/63.71.01").status_code == 200
    assert kota.get(f"/dashboard/stations/{MANTUIL_12}").status_code == 200
    for path in (
        "/dashboard/regions/64",
        "/dashboard/regions/63",  # above the scope
        "/dashboard/regions/63.03",  # a sibling kabupaten
        "/dashboard/?region=64",
        "/dashboard/api/overview?region=64",
        f"/dashboard/stations/{RAWA_1}",
        f"/dashboard/stations/{ALUH_1}",
        "/dashboard/export/results.csv?region=64",
        f"/dashboard/messages?station={ALUH_1}",
        f"/dashboard/volunteers/{VOLUNTEER_ALUH}",
    ):
        assert kota.get(path).status_code == 403, path
    token = csrf_token(kota, "/dashboard/review")
    assert (
        kota.post(
            f"/dashboard/review/{ALUH_1}/confirm", data={"report_id": "1", "csrf_token": token}
        ).status_code
        == 403
    )
    crumbs = kota.get("/dashboard/regions/63.71.01").get_data(as_text=True)
    assert "Indonesia</a>" not in crumbs and "Kalimantan Selatan</a>" not in crumbs
    log = kota.get("/dashboard/messages").get_data(as_text=True)
    assert "HALO ORANG ASING" not in log
    assert "01=70" not in log and "01=100" in log  # Aluh's volunteer is outside Kota Banjarmasin
    assert VOLUNTEER_ALUH not in kota.get("/dashboard/volunteers.csv").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(kota.get("/dashboard/export/results.csv").get_data(as_text=True))))
    assert rows and all(r["station_id"].startswith("6371") for r in rows)
    assert ALUH_1 not in kota.get("/dashboard/review").get_data(as_text=True)
    assert RAWA not in kota.get("/dashboard/incidents").get_data(as_text=True)


def test_the_review_queue_comes_in_pages(admin, database):
    """A national night puts thousands of stations in the queue: one page of cards at a time."""
    from smsgate.dashboard.queries import REVIEW_PAGE_SIZE
    from smsgate.models import Station

    total = REVIEW_PAGE_SIZE + 5
    with database.begin() as session:
        for tps in range(101, 101 + total):
            session.add(Station(id=f"6371011001{tps:03d}", region_code="63.71.01.1001", tps=tps))
            session.add(StationResult(station_id=f"6371011001{tps:03d}", status="disputed", report_count=2))
    first = admin.get("/dashboard/review").get_data(as_text=True)
    second = admin.get("/dashboard/review?page=2").get_data(as_text=True)
    shown = [
        {
            f"6371011001{tps:03d}"
            for tps in range(101, 101 + total)
            if f'data-station="6371011001{tps:03d}"' in page
        }
        for page in (first, second)
    ]
    assert len(shown[0]) == REVIEW_PAGE_SIZE and len(shown[1]) == 5 and not shown[0] & shown[1]
    assert "?page=2" in first and "?page=1" in second and "?page=3" not in second
    assert admin.get("/dashboard/review?page=x").status_code == 200
