"""Waking an idle worker the moment an event commits, instead of at its next poll.

On PostgreSQL a statement trigger on ``outbox_events`` (migration 1802) calls
``pg_notify('smsgate_outbox', '')`` whenever events are inserted; PostgreSQL delivers the
notification when the inserting transaction commits (and folds repeats within one transaction
into one). An idle worker waits on a connection that ``LISTEN``s on that channel, up to its poll
interval, and runs its jobs as soon as a notification arrives: the delay from commit to
delivery is then a few milliseconds of work, not up to a poll interval.

``LISTEN`` needs a session of its own. Through PgBouncer in transaction pooling mode the
notifications never reach it, so ``SMSGATE_LISTEN_URL`` may point the listening connection at
PostgreSQL directly (``off`` disables it). Whatever goes wrong with that connection, the worker
falls back to polling every ``idle_sleep`` and tries to listen again a little later: a lost
notification costs at most one poll interval, never an event.
"""

from __future__ import annotations

import contextlib
import logging
import time

import psycopg
from sqlalchemy.engine import make_url

from ..config import Settings
from ..db import libpq_url

log = logging.getLogger(__name__)

CHANNEL = "smsgate_outbox"
#: Seconds before trying to listen again after the listening connection failed.
RECONNECT_AFTER = 30.0
#: After the first notification, how long to gather the commits that follow before the pass
#: starts: at 30 commits a second every worker woke (and ran a whole pass) for each of them,
#: and on a busy machine those small passes cost more than the wait they saved.
GATHER = 0.05


def listen_conninfo(settings: Settings) -> str | None:
    """The libpq URL to listen on, or None to poll: ``SMSGATE_LISTEN_URL`` (``off``: poll),
    else the database URL when it is PostgreSQL."""
    url = settings.listen_url or settings.database_url
    if not url or url.strip().lower() == "off":
        return None
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return None
    return libpq_url(parsed).set(drivername="postgresql").render_as_string(hide_password=False)


class Wakeup:
    """``wait(seconds)``: sleep until an event commits or ``seconds`` pass, whichever is first."""

    def __init__(self, conninfo: str | None) -> None:
        self.conninfo = conninfo
        self._connection: psycopg.Connection | None = None
        self._retry_at = 0.0

    @classmethod
    def for_settings(cls, settings: Settings) -> Wakeup:
        return cls(listen_conninfo(settings))

    @property
    def listening(self) -> bool:
        return self._connect() is not None

    def wait(self, seconds: float) -> bool:
        """True when a notification ended the wait (False: the time ran out, or we poll)."""
        connection = self._connect()
        if connection is None:
            time.sleep(seconds)
            return False
        try:
            woke = False
            for _ in connection.notifies(timeout=seconds, stop_after=1):
                woke = True
            if woke:  # the ones that come meanwhile are answered by the same pass
                time.sleep(GATHER)
                for _ in connection.notifies(timeout=0):
                    pass
            return woke
        except psycopg.Error as exc:
            log.warning("listening for new events failed (%s); polling every %gs", exc, seconds)
            self._drop()
            time.sleep(seconds)
            return False

    def _connect(self) -> psycopg.Connection | None:
        if self.conninfo is None:
            return None
        if self._connection is not None and not self._connection.closed:
            return self._connection
        if time.monotonic() < self._retry_at:
            return None
        try:
            self._connection = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5)
            self._connection.execute(f"LISTEN {CHANNEL}")
        except psycopg.Error as exc:
            log.warning("cannot listen for new events (%s); polling instead", exc)
            self._drop()
            return None
        return self._connection

    def _drop(self) -> None:
        self._retry_at = time.monotonic() + RECONNECT_AFTER
        if self._connection is not None:
            with contextlib.suppress(psycopg.Error):
                self._connection.close()
        self._connection = None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
