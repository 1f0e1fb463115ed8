"""``smsgate worker``: runs every background job in a loop.

A job is any object with a ``name`` and ``run_once(database, settings) -> int`` (how many
items it handled). Jobs register with ``@job``; each module that defines jobs is listed in
``JOB_MODULES``. Every job must be safe to run in several worker processes at once
(leases or ``FOR UPDATE SKIP LOCKED`` in the database), since any number of workers may run.
"""

from __future__ import annotations

import importlib
import logging
import signal
import time
from collections.abc import Callable
from typing import Protocol

from ..config import Settings
from ..db import Database
from .wakeup import Wakeup

log = logging.getLogger(__name__)

#: Modules whose import registers jobs. Add yours here.
JOB_MODULES: list[str] = ["smsgate.outgoing.event_job", "smsgate.outgoing.sms_job"]


class Job(Protocol):
    name: str

    def run_once(self, database: Database, settings: Settings) -> int: ...


_FACTORIES: list[Callable[[Settings], Job]] = []


def job(factory: Callable[[Settings], Job]) -> Callable[[Settings], Job]:
    """Register a job factory (a class or function taking the settings)."""
    _FACTORIES.append(factory)
    return factory


def jobs(settings: Settings) -> list[Job]:
    for module in JOB_MODULES:
        importlib.import_module(module)
    return [factory(settings) for factory in _FACTORIES]


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
