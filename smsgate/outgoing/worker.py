"""``smsgate worker``: runs every background job in a loop.

A job is any object with a ``name`` and ``run_once(database, settings) -> int`` (how many
items it handled), made from the settings by one of the factories in ``JOBS``: adding a job is
one entry there. Every job must be safe to run in several worker processes at once
(leases or ``FOR UPDATE SKIP LOCKED`` in the database), since any number of workers may run.

Jobs in ``SLOW_JOBS`` (the dashboard's quick-count cards, about 0.6 s of CPU each on the national
sample) run in a thread of their own: in the main loop a pass recomputing several cards would
hold back the tally's events and the volunteers' queued replies for seconds.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Protocol

from ..config import Settings
from ..db import Database
from ..quickcount.card_job import card_job
from .event_job import outbox_job
from .sms_job import outbound_job
from .wakeup import Wakeup

log = logging.getLogger(__name__)


class Job(Protocol):
    name: str

    def run_once(self, database: Database, settings: Settings) -> int: ...


#: The jobs people wait for, in the order one pass of the main loop runs them: events to the
#: tally, then SMS.
JOBS: tuple[Callable[[Settings], Job], ...] = (outbox_job, outbound_job)

#: Jobs whose pass can take seconds of CPU: the dashboard's due quick-count cards. They run in
#: their own thread (``run``), or after the others with ``once``.
SLOW_JOBS: tuple[Callable[[Settings], Job], ...] = (card_job,)


def jobs(settings: Settings) -> list[Job]:
    """Every job, slow ones last (the order ``run(once=True)`` takes them in)."""
    return [factory(settings) for factory in (*JOBS, *SLOW_JOBS)]


def _pass(active: list[Job], database: Database, settings: Settings) -> int:
    handled = 0
    for item in active:
        try:
            handled += item.run_once(database, settings)
        except Exception:
            log.exception("job %s failed; continuing", item.name)
    return handled


def _slow_loop(
    slow: list[Job], database: Database, settings: Settings, stopping: threading.Event, idle_sleep: float
) -> None:
    """The slow jobs until ``stopping`` is set, sleeping ``idle_sleep`` after a pass with nothing
    to do (a card falls due on the clock, not on a notification). The first pass always runs,
    so a worker started and stopped at once has still done it."""
    while True:
        handled = _pass(slow, database, settings)
        if stopping.is_set():
            return
        if not handled:
            stopping.wait(idle_sleep)


def run(
    database: Database,
    settings: Settings,
    *,
    once: bool = False,
    idle_sleep: float = 0.5,
    max_seconds: float | None = None,
) -> int:
    """Run all jobs until stopped (SIGTERM/SIGINT), or one pass of every job with ``once``;
    returns the items the main loop handled (with ``once``, every job's)."""
    if once:
        return _pass(jobs(settings), database, settings)
    stopping = threading.Event()

    def stop(signum: int, _frame: object) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    started, total = time.monotonic(), 0
    active = [factory(settings) for factory in JOBS]
    slow_jobs = [factory(settings) for factory in SLOW_JOBS]
    slow = threading.Thread(
        target=_slow_loop,
        args=(slow_jobs, database, settings, stopping, max(idle_sleep, 1.0)),
        name="smsgate-slow-jobs",
        daemon=True,
    )
    wakeup = Wakeup.for_settings(settings)
    slow.start()
    try:
        while not stopping.is_set():
            handled = _pass(active, database, settings)
            total += handled
            if max_seconds is not None and time.monotonic() - started > max_seconds:
                break
            if not handled:
                wakeup.wait(idle_sleep)  # returns early when an event commits (PostgreSQL)
    finally:
        stopping.set()
        slow.join()  # a card being computed is finished and stored, not cut off
        wakeup.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return total
