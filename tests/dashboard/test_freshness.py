"""The overview document is kept per process while its validity token holds: a refresh with
nothing changed reads no report and, with ``If-None-Match``, gets ``304``; a change of a total
is in the very next refresh."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from ..support import VOLUNTEER_A, VOLUNTEER_B, VOLUNTEER_EN, Statements
from .conftest import KOTA, login


def _minute() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0)


def within_one_minute(scenario: Callable[[], None]) -> None:
    """Run ``scenario`` until one run starts and ends in the same UTC minute (at most 3 runs).

    The token holds the current minute by design (it bounds the activity chart's age), so a
    scenario that expects an unchanged token is only meaningful inside one minute; a failure in
    a run that crossed a minute's end is retried, any other failure is reported."""
    for _ in range(3):
        started = _minute()
        try:
            scenario()
        except AssertionError:
            if _minute() == started:
                raise
            continue
        return
    raise AssertionError("three runs each crossed a minute's end")


def test_an_unchanged_overview_is_not_recomputed_and_revalidates_to_304(admin, sms):
    assert sms(VOLUNTEER_A, "TPS 012 01=100 02=80 03=20").startswith("OK")
    within_one_minute(lambda: _unchanged_overview_is_kept(admin))


def _unchanged_overview_is_kept(admin) -> None:  # type: ignore[no-untyped-def]
    first = admin.get("/dashboard/api/overview?region=63.71")
    assert first.status_code == 200
    tag = first.headers["ETag"]
    assert tag.startswith('W/"') and first.headers["Cache-Control"] == "private, no-cache"
    with Statements() as again:
        second = admin.get("/dashboard/api/overview?region=63.71")
    assert second.status_code == 200 and second.headers["ETag"] == tag
    assert second.get_json() == first.get_json()
    assert again.reading("reports") == []  # neither the activity chart nor anything else recounted
    assert again.reading("activity_minutes") == []
    with Statements() as checked:
        unchanged = admin.get("/dashboard/api/overview?region=63.71", headers={"If-None-Match": tag})
    assert unchanged.status_code == 304 and unchanged.get_data() == b""
    assert unchanged.headers["ETag"] == tag
    assert checked.reading("reports") == []
    assert len(checked.seen) <= len(again.seen)


def test_a_changed_total_is_in_the_next_refresh(admin, sms):
    assert sms(VOLUNTEER_A, "TPS 012 01=100 02=80 03=20").startswith("OK")
    first = admin.get("/dashboard/api/overview?region=63.71")
    tag = first.headers["ETag"]
    assert first.get_json()["stations"]["reported"] == 1
    assert sms(VOLUNTEER_EN, "TPS 001 01=50 02=60 03=10").startswith("OK")
    after = admin.get("/dashboard/api/overview?region=63.71", headers={"If-None-Match": tag})
    assert after.status_code == 200 and after.headers["ETag"] != tag
    assert after.get_json()["stations"]["reported"] == 2
    assert after.get_json()["votes"]["01"] == 150
    # A dispute changes the status counts without a new station: also seen at once.
    assert sms(VOLUNTEER_B, "TPS 012 01=90 02=85 03=20").startswith("OK")
    disputed = admin.get(
        "/dashboard/api/overview?region=63.71", headers={"If-None-Match": after.headers["ETag"]}
    )
    assert disputed.status_code == 200 and disputed.get_json()["stations"]["disputed"] == 1


def test_pages_and_refresh_share_the_document_and_each_region_and_language_has_its_own(
    app, admin, sms, users
):
    assert sms(VOLUNTEER_A, "TPS 012 01=100 02=80 03=20").startswith("OK")
    within_one_minute(lambda: _regions_and_languages_have_their_own(app, admin))


def _regions_and_languages_have_their_own(app, admin) -> None:  # type: ignore[no-untyped-def]
    kota_tag = admin.get("/dashboard/api/overview?region=63.71").headers["ETag"]
    province = admin.get("/dashboard/api/overview?region=63")
    assert province.headers["ETag"] != kota_tag
    # The same region for a viewer in English: its own document (the quick-count words differ).
    english = app.test_client()
    assert login(english, KOTA).status_code == 302
    english.post("/dashboard/lang", data={"lang": "en", "csrf_token": _token(english)})
    assert english.get("/dashboard/api/overview").headers["ETag"] != kota_tag
    # The HTML pages read the kept document: no report is counted for them either.
    with Statements() as pages:
        assert admin.get("/dashboard/?region=63.71").status_code == 200
        assert admin.get("/dashboard/regions/63.71").status_code == 200
    assert pages.reading("reports") == []


def _token(client) -> str:  # type: ignore[no-untyped-def]
    from .conftest import csrf_token

    return csrf_token(client, "/dashboard/")


def test_each_process_reads_a_stored_activity_minute_once(sms, database):
    from datetime import UTC, datetime, timedelta

    from smsgate.dashboard import activity

    assert sms(VOLUNTEER_A, "TPS 012 01=100 02=80 03=20").startswith("OK")
    assert sms(VOLUNTEER_EN, "TPS 001 01=50 02=60 03=10").startswith("OK")
    later = datetime.now(UTC) + activity.SETTLE + timedelta(minutes=1)
    counted = activity.chart(database, "63", later)  # counts the minutes and stores them
    with Statements() as first:
        stored = activity.chart(database, "63", later)
    assert first.reading("activity_minutes") != []  # read back once
    with Statements() as again:
        kept = activity.chart(database, "63", later)
    assert again.reading("activity_minutes") == []  # the mark has not moved: nothing to read
    assert counted == stored == kept
    assert sum(p["per_minute"] * kept["bucket_minutes"] for p in kept["points"]) == 2


def test_the_token_is_one_statement_and_follows_the_candidates(admin, sms, database):
    from datetime import UTC, datetime

    from sqlalchemy import select

    from smsgate.dashboard import freshness
    from smsgate.models import Candidate

    now = datetime.now(UTC)
    with database.read() as session, Statements() as read:
        before = freshness.token(session, "6371", now, card_seconds=10)
    assert len([s for s in read.seen if s.lstrip().upper().startswith("SELECT")]) == 1
    with database.begin() as session:
        session.scalars(select(Candidate).order_by(Candidate.code)).first().name = "Nama baru"
    with database.read() as session:
        renamed = freshness.token(session, "6371", now, card_seconds=10)
    assert renamed != before
    assert sms(VOLUNTEER_A, "TPS 012 01=100 02=80 03=20").startswith("OK")
    with database.read() as session:
        assert freshness.token(session, "6371", now, card_seconds=10) != renamed
        country = freshness.token(session, "64", now, card_seconds=10)
        assert freshness.token(session, "64", now, card_seconds=10) == country
