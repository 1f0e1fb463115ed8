"""Worker processes: killed mid-batch and restarted, several at once on PostgreSQL, one on SQLite."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from smsgate.cli import main
from smsgate.db import Database
from smsgate.outgoing.event_job import OutboxJob
from smsgate.outgoing.sqlite_lock import AnotherWorker, sqlite_single_worker

from .support import (
    SECRET,
    assert_receiver_matches,
    election_night,
    outbox_settings,
    remaining,
    running_receiver,
    send_all,
)

SMSGATE = str(Path(sys.executable).with_name("smsgate"))


def worker_process(database_url: str, url: str, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "SMSGATE_DATABASE_URL": database_url,
        "SMSGATE_TALLY_URL": url,
        "SMSGATE_TALLY_SECRET": SECRET,
        "SMSGATE_OUTBOX_TIMEOUT": "1",
        "SMSGATE_OUTBOX_LEASE": "3",
        "SMSGATE_OUTBOX_BATCH": "6",
        "SMSGATE_OUTBOX_CONCURRENCY": "2",
        "SMSGATE_OUTBOX_BACKOFF": "0.05",
        "SMSGATE_OUTBOX_BACKOFF_MAX": "0.2",
    }
    return subprocess.Popen([SMSGATE, "worker"], env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def wait_for(condition, seconds: float, what: str) -> None:  # type: ignore[no-untyped-def]
    stop = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < stop, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_worker_killed_mid_batch_and_restarted_loses_nothing(database, database_url, sms, tmp_path):  # type: ignore[no-untyped-def]
    send_all(sms, election_night(random.Random(7), rounds=3))
    log = tmp_path / "worker.log"
    with running_receiver(tmp_path) as receiver:
        receiver.faults.delay, receiver.faults.delay_next = 0.1, 10**6  # slow enough to kill mid-batch
        first = worker_process(database_url, receiver.url, log)
        try:
            wait_for(lambda: len(receiver.faults.posts) >= 8, 30, "the first deliveries")
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        assert remaining(database) > 0, "the worker finished before it was killed; the test proves nothing"
        receiver.faults.delay_next = 0
        second = worker_process(database_url, receiver.url, log)
        try:
            wait_for(lambda: remaining(database) == 0, 60, "the restarted worker to drain the outbox")
        finally:
            second.terminate()
            second.wait(10)
        assert_receiver_matches(database, receiver, after_timeouts=True)


@pytest.mark.skipif(
    not os.environ.get("SMSGATE_TEST_DATABASE_URL", "").startswith("postgresql"), reason="needs PostgreSQL"
)
def test_three_workers_share_the_work_without_sending_an_event_twice_at_once(  # type: ignore[no-untyped-def]
    database, database_url, settings, sms, tmp_path
):
    send_all(sms, election_night(random.Random(8), rounds=5))
    with running_receiver(tmp_path) as receiver:
        receiver.faults.delay, receiver.faults.delay_next = 0.01, 10**6
        # Generous timeout and lease: on a loaded machine a post slower than 1 s, or a worker
        # descheduled for 5 s, is (rightly) retried by another worker, which is not what this
        # test is about; sharing without double sends is.
        config = outbox_settings(
            settings,
            receiver.url,
            outbox_batch=5,
            outbox_concurrency=2,
            outbox_timeout_seconds=15.0,
            outbox_lease_seconds=60.0,
        )
        errors: list[BaseException] = []
        handled = [0, 0, 0]

        def work(index: int) -> None:
            own = Database.from_url(database_url)
            job = OutboxJob(config, owner=f"worker-{index}")
            try:
                stop = time.monotonic() + 60
                while remaining(own) and time.monotonic() < stop:
                    n = job.run_once(own, config)
                    handled[index] += n
                    if not n:
                        time.sleep(0.02)
            except BaseException as exc:
                errors.append(exc)
            finally:
                job.close()
                own.dispose()

        threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(90)
        assert not errors, errors
        assert remaining(database) == 0
        assert_receiver_matches(database, receiver)
        assert all(n == 1 for n in receiver.faults.posts.values()), "an event was sent twice"
        assert sum(1 for n in handled if n) >= 2, f"the work was not shared: {handled}"


@pytest.mark.skipif(
    os.environ.get("SMSGATE_TEST_DATABASE_URL", "").startswith("postgresql"), reason="SQLite only"
)
def test_a_second_worker_on_sqlite_says_one_is_enough(database, database_url, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SMSGATE_DATABASE_URL", database_url)
    with sqlite_single_worker(database):
        with (
            pytest.raises(AnotherWorker, match=f"pid {os.getpid()}"),
            sqlite_single_worker(Database.from_url(database_url)),
        ):
            pass
        result = CliRunner().invoke(main, ["worker", "--once"])
        assert result.exit_code != 0
        assert "one worker is enough" in result.output
    result = CliRunner().invoke(main, ["worker", "--once"])
    assert result.exit_code == 0, result.output
