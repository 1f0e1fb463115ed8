"""``smsgate worker``: runs every background job in a loop.

A job is any object with a ``name`` and ``run_once(database, settings) -> int`` (how many
items it handled), made from the settings by one of the factories in ``JOBS``: adding a job is
one entry there. Every job must be safe to run in several worker processes at once
(leases or ``FOR UPDATE SKIP LOCKED`` in the database), since any number of workers may run.
"""

from __future__ import annotations

import logging
import signal
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


#: Every background job, in the order one pass runs them: events to the tally, then SMS, then
#: the dashboard's due quick-count cards (the slowest, after what people wait for).
JOBS: tuple[Callable[[Settings], Job], ...] = (outbox_job, outbound_job, card_job)


def jobs(settings: Settings) -> list[Job]:
    return [factory(settings) for factory in JOBS]


def run(
    database: Database,
    settings: Settings,
    *,
    once: bool = False,
    idle_sleep: float = 0.5,
    max_seconds: float | None = None,
) -> int:
    """Run all jobs until stopped (SIGTERM/SIGINT), or one pass with ``once``; returns items handled."""
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)} if not once else {}
    started, total = time.monotonic(), 0
    active = jobs(settings)
    wakeup = Wakeup.for_settings(settings)
    try:
        while not stopping:
            handled = 0
            for item in active:
                try:
                    handled += item.run_once(database, settings)
                except Exception:
                    log.exception("job %s failed; continuing", item.name)
            total += handled
            if once or (max_seconds is not None and time.monotonic() - started > max_seconds):
                break
            if not handled:
                wakeup.wait(idle_sleep)  # returns early when an event commits (PostgreSQL)
    finally:
        wakeup.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return total
