"""The quick count where people look: the dashboard card (call, warnings, lead, the estimate
through the night), GET /api/quickcount/history, and the cache that spares refreshes a
recomputation. Through the Flask test client with a logged-in admin and signed webhooks."""

from __future__ import annotations

import re

import pytest

from smsgate.dashboard.accounts import create_user
from smsgate.models import utcnow

from .. import support
from ..dashboard.conftest import csrf_token, login
from .test_end_to_end import AUTH, SIZE, draw, report, sampled, votes_of

ADMIN, PASSWORD = "qc-admin@example.org", "rahasia-sekali"


@pytest.fixture
def admin(app, database, world):  # type: ignore[no-untyped-def]
    with database.begin() as session:
        create_user(session, email=ADMIN, password=PASSWORD, role="admin", region=None, now=utcnow())
    browser = app.test_client()
    assert login(browser, ADMIN, PASSWORD).status_code == 302
    return browser


class Statements(support.Statements):
    """Every SQL statement any engine runs while active (to see what a request computes)."""

    def loads(self) -> int:
        """How many times the sampled stations were loaded for an estimate."""
        return sum("JOIN previous_results" in s for s in self.seen)


def test_card_shows_call_warnings_lead_and_the_night(
    frame, database, database_url, sms, admin, client
) -> None:
    draw(database_url)
    truth = votes_of(frame)
    stations = sorted(sampled(database))
    for station in stations[:6]:
        report(sms, station, truth[station])
    page = admin.get("/dashboard/?region=62").get_data(as_text=True)
    # the call the API computes, in words (never "called" under low coverage)
    document = client.get("/api/quickcount?region=62", headers=AUTH).get_json()
    words = {
        "too close to call": "Belum bisa dipastikan",
        "leading": f"{document['lead']['first']} unggul sementara",
    }[document["call"]]
    assert 'class="qc-call"' in page and words in page
    # 6 of 40 in: few reports, uneven; every warning is on the page, in words
    assert "Data baru sedikit (di bawah 20% sampel)." in page
    assert re.search(r'<polyline class="line c0" fill="none" points="[\d., ]+">', page)
    assert "Perkiraan sepanjang malam" in page
    # how fresh the card is: when it was computed, from how many sampled results
    assert re.search(
        r'<p class="muted qc-freshness" data-current="true">Dihitung [\d:]+ \S+ dari 6 hasil sampel</p>', page
    )
    for station in stations[6:]:
        report(sms, station, truth[station])
    overview = admin.get("/dashboard/api/overview?region=62").get_json()
    card = overview["quick_count"]
    assert card["counted"] == SIZE and card["warning_texts"] == [] and card["warnings"] == []
    assert card["call"] in ("called", "leading", "too close to call") and card["call_text"]
    lead = card["lead"]
    assert card["lead_text"].startswith(
        f"Selisih {lead['first']} atas {lead['second']}: {lead['value']:.1f} poin"
    )
    assert {s["code"] for s in card["history"]["series"]} == {"01", "02", "03"}
    # the English dashboard says the same in English
    token = csrf_token(admin, "/dashboard/")
    admin.post("/dashboard/lang", data={"lang": "en", "csrf_token": token})
    english = admin.get("/dashboard/api/overview?region=62").get_json()["quick_count"]
    assert english["lead_text"].startswith(f"Lead of {lead['first']} over {lead['second']}")
    assert re.fullmatch(rf"Computed [\d:]+ \S+ from {SIZE} sampled results", english["freshness_text"])
    assert english["freshness"]["current"] is True and english["freshness"]["counted"] == SIZE
    # the history API: the estimate as it stood, from the first sampled report to the last
    history = client.get("/api/quickcount/history?region=62", headers=AUTH).get_json()
    points = history["points"]
    assert 2 <= len(points) <= 24
    assert [p["counted"] for p in points] == sorted(p["counted"] for p in points)
    assert points[-1]["counted"] == SIZE and points[-1]["estimate"]["01"]["ci95"] is not None
    assert set(points[-1]) >= {"t", "counted", "coverage", "estimate", "lead", "call", "warnings"}
    assert client.get("/api/quickcount/history?region=62").status_code == 401
    assert client.get("/api/quickcount/history?region=99", headers=AUTH).status_code == 404


def test_refresh_does_not_recompute_until_a_sampled_station_changes(
    frame,
    database,
    database_url,
    sms,
    client,
) -> None:
    draw(database_url)
    truth = votes_of(frame)
    stations = sorted(sampled(database))
    for station in stations[:10]:
        report(sms, station, truth[station])
    with Statements() as first:
        one = client.get("/api/quickcount?region=62", headers=AUTH).get_json()
    with Statements() as again:
        two = client.get("/api/quickcount?region=62", headers=AUTH).get_json()
    assert first.loads() == 1 and again.loads() == 0
    assert one["estimate"] == two["estimate"]
    report(sms, stations[10], truth[stations[10]])
    with Statements() as after:
        three = client.get("/api/quickcount?region=62", headers=AUTH).get_json()
    assert after.loads() == 1 and three["stations"]["counted"] == 11


def test_the_cache_check_counts_the_logged_changes_of_sampled_stations(
    frame, database, database_url, sms, admin
) -> None:
    """The database logs a change of a sampled station's result in the transaction that makes
    it (a trigger), and nothing for other stations; a refresh checks the cached estimate with
    one statement over that log instead of reading every sampled station's result, and reads
    the design, that check and (when it recomputes) the sample once for the estimate and the
    night together."""
    from sqlalchemy import select

    from smsgate.models import SampleResultChange

    draw(database_url)
    truth = votes_of(frame)
    stations = sorted(sampled(database))
    outside = next(s for s in frame.station_ids if s not in set(stations))

    def logged() -> list[str]:
        with database.read() as session:
            return list(
                session.scalars(select(SampleResultChange.station_id).order_by(SampleResultChange.id))
            )

    report(sms, outside, truth[outside])
    assert logged() == []
    report(sms, stations[0], truth[stations[0]])
    assert set(logged()) == {stations[0]}  # once per write of the row in that transaction
    count = len(logged())
    with Statements() as first:
        before = admin.get("/dashboard/api/overview?region=62").get_json()["quick_count"]
    with Statements() as stored:  # the overview again: its token names the card's computation
        admin.get("/dashboard/api/overview?region=62")
    assert stored.loads() == 0
    with Statements() as again:
        admin.get("/dashboard/api/overview?region=62")
    checks = [s for s in again.seen if "sample_result_changes" in s]
    assert len(checks) == 1 and again.loads() == 0 and first.loads() == 1  # estimate and night
    assert not [s for s in again.seen if "JOIN station_results" in s]
    assert sum("FROM sample_designs" in s for s in again.seen) == 1
    report(sms, stations[1], truth[stations[1]])
    with Statements() as after:
        now = admin.get("/dashboard/api/overview?region=62").get_json()["quick_count"]
    assert after.loads() == 1 and now["counted"] == before["counted"] + 1
    assert set(logged()) == {stations[0], stations[1]} and len(logged()) > count
