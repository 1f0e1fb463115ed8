"""Leases and retries, the one set of rules every outgoing queue follows.

Both queues (SMS to send, events to deliver) work the same way: a worker *leases* due rows in
a short transaction, does the slow network call outside any transaction, then records the
outcome only if it still holds the lease. A worker that dies simply lets its lease expire and
another takes the row over. A failure is retried after an exponential backoff with jitter, so
that a provider coming back from an outage is not hit by every worker at the same instant,
until the row's attempts run out or the far side refused it for good.

One rule says which HTTP answers are worth retrying (``retryable``); the senders and the event
delivery both use it, so a 429 means the same thing to a phone and to the tally.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from sqlalchemy import ColumnElement, or_

#: 4xx answers that say "not now" rather than "never": timeout, too early, too many requests.
RETRYABLE_4XX = frozenset({408, 425, 429})


def retryable(status: int) -> bool:
    """Whether an HTTP answer with ``status`` may succeed if sent again later (5xx, 408, 425, 429).

    Any other non-2xx answer means the request itself is refused and resending it is pointless.
    """
    return status >= 500 or status in RETRYABLE_4XX


def retry_after(headers: Any, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header, either delay-seconds or an HTTP date (RFC 9110
    section 10.2.3); None when absent or neither."""
    value = (headers.get("Retry-After") or "").strip()
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


@dataclass(frozen=True)
class Backoff:
    """``base * 2^(attempts-1)`` seconds, capped at ``cap``, with "equal jitter": a random 50-100%
    of that. A ``Retry-After`` from the far side is honoured, but never beyond ``cap``."""

    base: float
    cap: float

    def seconds(self, attempts: int, jitter: float, retry_after: float | None = None) -> float:
        """The wait before try ``attempts + 1``; ``jitter`` is a number in [0, 1)."""
        delay = min(self.cap, self.base * 2 ** min(max(attempts - 1, 0), 30))
        delay = delay / 2 + jitter * delay / 2
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.cap))
        return delay

    def next_attempt(
        self, now: datetime, attempts: int, jitter: Callable[[], float], retry_after: float | None = None
    ) -> datetime:
        return now + timedelta(seconds=self.seconds(attempts, jitter(), retry_after))


def lease_holder() -> str:
    """A name for this worker process that no other process shares: host, pid and a random tail."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def lease_until(now: datetime, seconds: float) -> datetime:
    return now + timedelta(seconds=seconds)


def lease_free(expires: Any, now: datetime) -> ColumnElement[bool]:
    """SQL: the row is not leased, or its lease expired (its worker died or was too slow)."""
    return or_(expires.is_(None), expires < now)
