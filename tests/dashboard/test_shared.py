"""``dashboard.shared.Shared``: requests share a computation only if it had not started when
they arrived, so a shared result is never older than the request that receives it."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from smsgate.dashboard.shared import Shared


def _wait_until(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_requests_during_a_computation_share_the_next_one_not_the_running_one() -> None:
    shared = Shared()
    release = threading.Event()
    started: list[int] = []
    version = [0]  # the "database": bumped while the first computation runs

    def compute() -> int:
        seen = version[0]  # what this computation read
        started.append(seen)
        if len(started) == 1:
            release.wait(10)
        return seen

    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(shared.get, "63", compute)
        _wait_until(lambda: len(started) == 1)
        version[0] = 1  # a write lands after the first computation read the data
        later = [pool.submit(shared.get, "63", compute) for _ in range(6)]
        other = pool.submit(shared.get, "64", lambda: "other region")
        assert other.result(10) == "other region"  # another key is never held up
        time.sleep(0.05)
        assert len(started) == 1  # the six wait: none takes the running computation
        release.set()
        assert first.result(10) == 0
        assert [f.result(10) for f in later] == [1] * 6  # they all see the write
    assert started == [0, 1]  # one computation for the six, started after they arrived


def test_a_lone_request_computes_every_time() -> None:
    shared = Shared()
    calls = []
    for n in range(3):
        assert shared.get("", lambda n=n: calls.append(n) or n) == n
    assert calls == [0, 1, 2]


def test_a_failure_reaches_every_request_that_shared_it_and_nothing_is_kept() -> None:
    shared = Shared()
    release = threading.Event()
    started: list[int] = []

    def compute() -> int:
        started.append(1)
        if len(started) == 1:
            release.wait(10)
            return 1
        raise RuntimeError("database gone")

    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(shared.get, "k", compute)
        _wait_until(lambda: len(started) == 1)
        waiting = [pool.submit(shared.get, "k", compute) for _ in range(3)]
        time.sleep(0.05)
        release.set()
        assert first.result(10) == 1
        for future in waiting:
            with pytest.raises(RuntimeError, match="database gone"):
                future.result(10)
    assert len(started) == 2
    assert shared.get("k", lambda: "fresh") == "fresh"
