"""The dashboard's quick-count card computed once for all processes (smsgate/quickcount/stored.py):
two app instances refreshing compute each fingerprint once, a change shows once the interval has
passed, the card says how fresh it is, and it is never wrong for the fingerprint it claims.

Recomputations are counted by the statements that load the sample (``loads``) and by the
card's ``computations`` column, never by time; moments are passed in, so nothing waits."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, func, make_url, select, update

from smsgate import create_app
from smsgate import db as db_module
from smsgate.config import Settings
from smsgate.dashboard import freshness
from smsgate.dashboard.accounts import create_user
from smsgate.db import Database
from smsgate.models import QuickcountCard, SampleResultChange, utcnow
from smsgate.quickcount import service, stored

from ..dashboard.conftest import login
from .test_dashboard_card import Statements

ADMIN, PASSWORD = "qc-stored@example.org", "rahasia-sekali"
T0 = datetime(2030, 2, 14, 13, 0, tzinfo=UTC)


def refresh(database: Database, now: datetime, interval: float, region: str = "62"):  # type: ignore[no-untyped-def]
    with database.read() as session:
        return stored.card(database, session, region, interval=interval, now=now)


def computations(database: Database) -> int:
    with database.read() as session:
        return int(session.scalar(select(func.coalesce(func.sum(QuickcountCard.computations), 0))) or 0)


def changes(database: Database) -> int:
    with database.read() as session:
        return int(session.scalar(select(func.count()).select_from(SampleResultChange)) or 0)


def fresh_estimate(database: Database) -> dict:  # type: ignore[type-arg]
    """The estimate computed now, at the current fingerprint, as the API computes it."""
    service._cache.clear()
    with database.read() as session:
        return service.quickcount(session, "62", comparison=False)  # type: ignore[no-any-return]


def test_two_app_instances_compute_each_fingerprint_once(database, database_url, settings, night) -> None:
    """Two app instances (each with its own engine and kept overviews) refresh the overview
    together, from threads, after each change: one of them computes the card, once per
    fingerprint; the other serves it."""
    with database.begin() as session:
        create_user(session, email=ADMIN, password=PASSWORD, role="admin", region=None, now=utcnow())
    instant = replace(settings, quickcount_card_seconds=0.0)
    databases = [Database.from_url(database_url) for _ in range(2)]
    apps = [create_app(instant, test_config={"TESTING": True}, database=d) for d in databases]
    browsers = [app.test_client() for app in apps]
    for browser in browsers:
        assert login(browser, ADMIN, PASSWORD).status_code == 302
    try:
        for round_ in range(1, 5):
            for _ in range(3):
                night()
            cards: list[dict] = []  # type: ignore[type-arg]
            start = threading.Barrier(len(browsers))

            def look(browser, start: threading.Barrier, cards: list[dict]) -> None:  # type: ignore[no-untyped-def,type-arg]
                start.wait()
                for _ in range(3):
                    cards.append(browser.get("/dashboard/api/overview?region=62").get_json()["quick_count"])

            with Statements() as seen:
                threads = [threading.Thread(target=look, args=(b, start, cards)) for b in browsers]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
            # the first round has no stored card yet: the one that lost the claim computes its
            # own, unstored (so the first view is never empty); afterwards only the winner loads
            assert seen.loads() <= (2 if round_ == 1 else 1)
            assert computations(database) == round_
            counted = 3 * round_
            # meanwhile a card is the stored one (from before) or the current one, and says which
            assert all(c["freshness"]["current"] == (c["counted"] == counted) for c in cards)
            for browser in browsers:  # the card once stored: both instances show it
                card = browser.get("/dashboard/api/overview?region=62").get_json()["quick_count"]
                assert card["counted"] == counted and card["freshness"]["current"] is True
            assert computations(database) == round_
    finally:
        for d in databases:
            d.dispose()


def test_a_change_shows_once_the_interval_has_passed(database, night) -> None:
    for _ in range(6):
        night()
    document, _ = refresh(database, T0, interval=30)
    fresh = document["freshness"]
    assert fresh == {
        "computed_at": T0.isoformat(timespec="seconds"),
        "changes": changes(database),
        "counted": 6,
        "current": True,
        "interval": 30,
    }
    assert document["stations"]["counted"] == 6 and computations(database) == 1
    at_six = fresh_estimate(database)
    assert document["estimate"] == at_six["estimate"] and document["call"] == at_six["call"]
    night()
    # within the interval: the stored card, saying it is from before the change
    with Statements() as seen:
        stale, _ = refresh(database, T0 + timedelta(seconds=29), interval=30)
    assert seen.loads() == 0 and computations(database) == 1
    assert stale["freshness"]["current"] is False and stale["freshness"]["counted"] == 6
    assert stale["freshness"]["changes"] == fresh["changes"] < changes(database)
    assert stale["estimate"] == at_six["estimate"]  # right for the fingerprint it claims
    # once the interval has passed: recomputed, once
    with Statements() as seen:
        now, _ = refresh(database, T0 + timedelta(seconds=30), interval=30)
        again, _ = refresh(database, T0 + timedelta(seconds=31), interval=30)
    assert seen.loads() == 1 and computations(database) == 2
    assert now == again and now["stations"]["counted"] == 7
    assert now["freshness"] == {
        "computed_at": (T0 + timedelta(seconds=30)).isoformat(timespec="seconds"),
        "changes": changes(database),
        "counted": 7,
        "current": True,
        "interval": 30,
    }
    assert now["estimate"] == fresh_estimate(database)["estimate"]


def test_the_stored_history_equals_one_computed_from_scratch(database, night) -> None:
    """The night's points reused from the stored card (their inputs unchanged) are the points
    a computation from nothing gives."""
    moment = T0
    for _ in range(12):
        night()
        moment += timedelta(seconds=1)
        _, history = refresh(database, moment, interval=0)
    service._history_cache.clear()
    with database.read() as session:
        scratch = service.history(session, "62")
    assert history == scratch and 2 <= len(history["points"]) <= service.HISTORY_POINTS
    assert history["points"][-1]["counted"] == 12


def test_a_lease_left_by_a_killed_process_expires(database, night) -> None:
    for _ in range(4):
        night()
    refresh(database, T0, interval=0)
    night()
    # a process claimed the next computation and was killed before storing it
    with database.begin() as session:
        session.execute(
            update(QuickcountCard).values(
                claim="killed", claimed_until=T0 + stored.LEASE + timedelta(seconds=1)
            )
        )
    with Statements() as seen:
        held, _ = refresh(database, T0 + stored.LEASE, interval=0)
    assert seen.loads() == 0 and held["freshness"]["current"] is False and held["stations"]["counted"] == 4
    taken, _ = refresh(database, T0 + stored.LEASE + timedelta(seconds=2), interval=0)
    assert taken["freshness"]["current"] is True and taken["stations"]["counted"] == 5
    assert computations(database) == 2


def test_a_serve_within_the_interval_reads_the_card_and_the_fingerprint(database, night) -> None:
    for _ in range(3):
        night()
    refresh(database, T0, interval=10)
    night()
    with Statements() as seen:
        refresh(database, T0 + timedelta(seconds=1), interval=10)
    assert seen.loads() == 0
    assert len(seen.reading("quickcount_cards")) == 1 and len(seen.reading("sample_result_changes")) == 1
    assert not [s for s in seen.seen if s.lstrip().upper().startswith(("UPDATE", "INSERT"))]


def test_history_moments_stay_put_as_the_night_goes_on() -> None:
    first = T0.timestamp() + 7
    early = service.moments(first, first + 3600)
    later = service.moments(first, first + 3600 + 200)
    assert early[0] == later[0] == first and len(early) <= 24 and len(later) <= 24
    assert set(early[1:-1]) <= set(later[1:-1])  # the same grid: earlier points are reused
    assert all(m % 300 == 0 for m in early[1:-1])
    assert service.moments(first, first) == [first]
    whole_night = service.moments(first, first + 3 * 86400)
    assert len(whole_night) <= 24 and whole_night == sorted(whole_night)


def test_the_setting_is_read_and_checked() -> None:
    from smsgate.config import ConfigError

    assert Settings.from_env({}).quickcount_card_seconds == 10.0
    assert Settings.from_env({"SMSGATE_QUICKCOUNT_CARD_SECONDS": "2.5"}).quickcount_card_seconds == 2.5
    with pytest.raises(ConfigError, match="SMSGATE_QUICKCOUNT_CARD_SECONDS"):
        Settings.from_env({"SMSGATE_QUICKCOUNT_CARD_SECONDS": "-1"})


def test_a_card_left_behind_changes_the_overview_token_once_the_interval_has_passed(database, night) -> None:
    """A change inside the interval leaves the stored card behind; the overview kept under the
    token then shows it until the token changes, so the token must change when the card falls
    due, within the same minute and with no further change."""
    for _ in range(3):
        night()
    refresh(database, T0, interval=30)
    night()
    stale, _ = refresh(database, T0 + timedelta(seconds=1), interval=30)
    assert stale["freshness"]["current"] is False
    with database.read() as session:
        inside = freshness.token(session, "62", T0 + timedelta(seconds=29), card_seconds=30)
        due = freshness.token(session, "62", T0 + timedelta(seconds=30), card_seconds=30)
        later = freshness.token(session, "62", T0 + timedelta(seconds=59), card_seconds=30)
    assert inside != due and due == later
    assert freshness.etag(("6.2", "id"), inside) != freshness.etag(("6.2", "id"), due)
    current, _ = refresh(database, T0 + timedelta(seconds=30), interval=30)
    assert current["freshness"]["current"] is True and current["stations"]["counted"] == 4


def test_the_dashboard_shows_a_card_left_behind_once_the_interval_has_passed(
    database, settings, night
) -> None:
    """Through the dashboard: after a change inside the interval, a browser revalidating with
    its ``ETag`` gets a new document with the current card once the interval has passed, in the
    same minute (before, it waited for the next minute or the next change of a counter)."""
    with database.begin() as session:
        create_user(session, email=ADMIN, password=PASSWORD, role="admin", region=None, now=utcnow())
    quick = replace(settings, quickcount_card_seconds=1.0)
    app = create_app(quick, test_config={"TESTING": True}, database=database)
    browser = app.test_client()
    assert login(browser, ADMIN, PASSWORD).status_code == 302
    while datetime.now(UTC).second >= 45:  # the minute, also in the token, must not roll over
        time.sleep(0.5)
    night()
    first = browser.get("/dashboard/api/overview?region=62")
    assert first.get_json()["quick_count"]["freshness"]["current"] is True
    night()
    # a card stored by another process just now, before the change
    with database.begin() as session:
        session.execute(update(QuickcountCard).values(computed_at=utcnow()))
    second = browser.get("/dashboard/api/overview?region=62")
    left_behind = second.get_json()
    assert left_behind["quick_count"]["freshness"]["current"] is False
    tag = second.headers["ETag"]
    give_up = time.monotonic() + 30  # only bounds a failure; the assertions are below
    url = "/dashboard/api/overview?region=62"
    while (answer := browser.get(url, headers={"If-None-Match": tag})).status_code == 304:
        assert time.monotonic() < give_up, "the ETag never changed"
        time.sleep(0.2)
    document = answer.get_json()
    assert answer.headers["ETag"] != tag
    assert document["quick_count"]["freshness"]["current"] is True
    assert document["quick_count"]["counted"] == 2
    assert document["updated_at"][:16] == left_behind["updated_at"][:16]  # not the next minute


@pytest.fixture
def sqlite_lock(database_url, monkeypatch):  # type: ignore[no-untyped-def]
    """A second connection that takes SQLite's write lock on demand; this process's database
    waits for it 0.2 s instead of 30 (a busy database, not a slow test)."""
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's database-wide write lock")
    monkeypatch.setattr(db_module, "BUSY_TIMEOUT_MS", 200)
    other = sqlite3.connect(make_url(database_url).database, isolation_level=None)
    yield other
    if other.in_transaction:
        other.execute("ROLLBACK")
    other.close()


def test_a_busy_database_serves_the_card_it_has(database_url, night, sqlite_lock, caplog) -> None:
    busy = Database.from_url(database_url)
    try:
        for _ in range(3):
            night()
        refresh(busy, T0, interval=0)
        night()
        # another process holds the write lock when the claim is tried: the stored card
        sqlite_lock.execute("BEGIN IMMEDIATE")
        with caplog.at_level(logging.WARNING):
            stale, _ = refresh(busy, T0 + timedelta(seconds=1), interval=0)
        assert stale["freshness"]["current"] is False and stale["stations"]["counted"] == 3
        sqlite_lock.execute("ROLLBACK")

        # it takes the lock while the claimed card is computed: the card computed, not stored
        def take_lock(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
            if "sample_stations" in statement and not sqlite_lock.in_transaction:
                sqlite_lock.execute("BEGIN IMMEDIATE")

        event.listen(busy.engine, "before_cursor_execute", take_lock)
        with caplog.at_level(logging.WARNING):
            computed, _ = refresh(busy, T0 + timedelta(seconds=2), interval=0)
        event.remove(busy.engine, "before_cursor_execute", take_lock)
        assert sqlite_lock.in_transaction
        assert computed["freshness"]["current"] is True and computed["stations"]["counted"] == 4
        warnings = [r.getMessage() for r in caplog.records if r.name == "smsgate.quickcount.stored"]
        assert any("not stored (database busy)" in w for w in warnings)
        assert any("kept until it expires" in w for w in warnings)
        sqlite_lock.execute("ROLLBACK")
        assert computations(busy) == 1
        # the lease left behind expires; then the card is stored
        later, _ = refresh(busy, T0 + stored.LEASE + timedelta(seconds=3), interval=0)
        assert later["freshness"]["current"] is True and computations(busy) == 2
    finally:
        busy.dispose()
