"""The stored quick-count card recomputed by ``smsgate worker`` (smsgate/quickcount/card_job.py)
instead of the web processes: a worker pass recomputes a due card and a refresh within the
grace computes none; without a worker a refresh computes it once the grace has passed; two
workers compute a due card once.

Computations are counted by the statements that load the sample and by the card's
``computations`` column, never by time; moments are passed in (or lie minutes back), so
nothing waits."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

import pytest

from smsgate.config import Settings
from smsgate.db import Database
from smsgate.models import utcnow
from smsgate.outgoing import worker
from smsgate.quickcount import stored
from smsgate.quickcount.card_job import CardJob

from .test_dashboard_card import Statements
from .test_stored_card import T0, computations


@pytest.fixture(autouse=True)
def forget_noticed():  # type: ignore[no-untyped-def]
    """Each test starts with no card seen due by this process."""
    stored._noticed.clear()
    yield
    stored._noticed.clear()


def refresh(database: Database, now, interval: float, grace: float, region: str | None = "62"):  # type: ignore[no-untyped-def]
    with database.read() as session:
        return stored.card(database, session, region, interval=interval, now=now, grace=grace)


def test_the_default_grace_and_its_setting() -> None:
    assert Settings.from_env({}).quickcount_card_grace == 60.0
    assert Settings.from_env({"SMSGATE_QUICKCOUNT_CARD_SECONDS": "30"}).quickcount_card_grace == 180.0
    env = {"SMSGATE_QUICKCOUNT_CARD_GRACE_SECONDS": "5"}
    assert Settings.from_env(env).quickcount_card_grace == 5.0
    assert Settings.from_env({"SMSGATE_QUICKCOUNT_CARD_GRACE_SECONDS": "0"}).quickcount_card_grace == 0.0


def test_a_worker_pass_recomputes_due_cards_and_a_refresh_within_the_grace_computes_none(
    database, settings, night
) -> None:
    """The country's and the province's cards, first viewed five minutes ago (each computed by
    its first view), fall due with a change: refreshes within the grace serve the stored cards
    and compute nothing; one pass of the worker's jobs recomputes both; the refreshes then
    serve the current cards, still computing nothing."""
    for _ in range(3):
        night()
    viewed = utcnow() - timedelta(minutes=5)
    for region in ("62", None):
        first, _ = refresh(database, viewed, interval=10, grace=3600, region=region)
        assert first["freshness"]["current"] is True and first["stations"]["counted"] == 3
    assert computations(database) == 2
    night()
    with Statements() as seen:
        for region in ("62", None):
            stale, _ = refresh(database, utcnow(), interval=10, grace=3600, region=region)
            assert stale["freshness"]["current"] is False and stale["stations"]["counted"] == 3
    assert seen.loads() == 0 and computations(database) == 2
    quick = replace(settings, quickcount_card_seconds=10.0)
    assert [job.name for job in worker.jobs(quick)][-1] == "quickcount-card"
    assert worker.run(database, quick, once=True) == 2
    assert computations(database) == 4
    with Statements() as seen:
        for region in ("62", None):
            current, _ = refresh(database, utcnow(), interval=10, grace=3600, region=region)
            assert current["freshness"]["current"] is True and current["stations"]["counted"] == 4
    assert seen.loads() == 0
    # nothing due any more: the next pass computes nothing
    assert CardJob(quick).run_once(database, quick) == 0 and computations(database) == 4


def test_the_running_worker_recomputes_cards_in_a_thread_of_their_own(database, settings, night) -> None:
    """The loop's passes, which carry the tally's events and the volunteers' queued replies,
    never run the card job (a pass over several national cards is seconds of CPU); the worker's
    own thread for slow jobs does, and stopping the worker waits for its pass."""
    quick = replace(settings, quickcount_card_seconds=10.0)
    assert "quickcount-card" not in [factory(quick).name for factory in worker.JOBS]
    for _ in range(3):
        night()
    viewed = utcnow() - timedelta(minutes=5)
    for region in ("62", None):
        refresh(database, viewed, interval=10, grace=3600, region=region)
    night()
    assert computations(database) == 2
    assert worker.run(database, quick, max_seconds=0.0) == 0  # the loop itself handled nothing
    assert computations(database) == 4


def test_without_a_worker_a_refresh_computes_once_the_grace_has_passed(database, night) -> None:
    for _ in range(3):
        night()
    refresh(database, T0, interval=10, grace=60)
    assert computations(database) == 1
    night()
    with Statements() as seen:
        first_due, _ = refresh(database, T0 + timedelta(seconds=11), interval=10, grace=60)
        still, _ = refresh(database, T0 + timedelta(seconds=70), interval=10, grace=60)
    assert seen.loads() == 0 and computations(database) == 1
    assert first_due["freshness"]["current"] is False and still["freshness"]["current"] is False
    with Statements() as seen:
        now, _ = refresh(database, T0 + timedelta(seconds=71), interval=10, grace=60)
        again, _ = refresh(database, T0 + timedelta(seconds=72), interval=10, grace=60)
    assert seen.loads() == 1 and computations(database) == 2
    assert now["freshness"]["current"] is True and now["stations"]["counted"] == 4 and again == now


def test_a_region_viewed_for_the_first_time_is_computed_by_its_refresh(database, night) -> None:
    """No stored card yet: the first view computes it at once, whatever the grace."""
    for _ in range(2):
        night()
    with Statements() as seen:
        first, _ = refresh(database, T0, interval=10, grace=3600)
    assert seen.loads() == 1 and computations(database) == 1
    assert first["freshness"]["current"] is True and first["stations"]["counted"] == 2


def test_two_workers_compute_a_due_card_once(database, database_url, settings, night) -> None:
    for _ in range(3):
        night()
    refresh(database, T0, interval=10, grace=60)
    night()
    quick = replace(settings, quickcount_card_seconds=10.0)
    databases = [Database.from_url(database_url) for _ in range(2)]
    jobs = [CardJob(quick, clock=lambda: T0 + timedelta(seconds=20)) for _ in databases]
    handled: list[int] = []
    start = threading.Barrier(len(jobs))

    def work(job: CardJob, own: Database) -> None:
        start.wait()
        handled.append(job.run_once(own, quick))

    try:
        threads = [threading.Thread(target=work, args=pair) for pair in zip(jobs, databases, strict=True)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(handled) == [0, 1] and computations(database) == 2
        assert [job.run_once(own, quick) for job, own in zip(jobs, databases, strict=True)] == [0, 0]
    finally:
        for own in databases:
            own.dispose()
    current, _ = refresh(database, T0 + timedelta(seconds=21), interval=10, grace=60)
    assert current["freshness"]["current"] is True and current["stations"]["counted"] == 4
    assert computations(database) == 2
