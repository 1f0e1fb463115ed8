"""On a SQLite file one worker is enough: a second one is refused with the first one's pid.

SQLite has one writer at a time, so a second worker only adds lock waits; refusing it at start
makes the mistake visible instead of slow.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from ..db import Database


class AnotherWorker(RuntimeError):
    pass


@contextlib.contextmanager
def sqlite_single_worker(database: Database) -> Iterator[None]:
    """On a SQLite file, hold ``<db>.worker.lock`` (``flock``, released even on SIGKILL) while the
    worker runs; a second worker on the same file raises ``AnotherWorker`` naming the first's pid."""
    url = database.engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        yield
        return
    path = Path(f"{url.database}.worker.lock")
    handle = open(path, "a+")  # noqa: SIM115 (held for the whole run)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            pid = handle.read().strip() or "?"
            raise AnotherWorker(
                f"another smsgate worker (pid {pid}) is already running on {url.database}; on SQLite one "
                "worker is enough (use PostgreSQL to run several)"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()
