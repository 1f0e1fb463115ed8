"""The ``outbox`` worker job: delivering outbox events to the tally destinations.

One pass dispatches new events into per-destination deliveries, then per destination leases
what is due (``event_queue.claim``: a station's consecutive pending events together), sends
those requests concurrently across stations and one after the other within a station
(``in_lanes``), signed, with a timeout shorter than the lease, and records the answers
(``event_queue.record``). A dead delivery does not hold back the station's later events: each
``station.status_changed`` carries the station's whole result, so the destination's tally
converges, and a receiver ignores state older than the ``sequence`` it already applied.
``smsgate outbox retry --dead`` replays dead deliveries.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import requests

from ..config import Settings
from ..db import Database
from ..models import utcnow
from ..signing import HEADER, IDEMPOTENCY_HEADER, sign
from .destinations import Destination, load_destinations
from .event_queue import Claimed, Outcome, claim, dispatch, record
from .retry import lease_holder, retry_after, retryable


class OutboxJob:
    """The ``outbox`` worker job; ``clock``, ``owner`` and ``jitter`` are injectable for tests."""

    name = "outbox"

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utcnow,
        owner: str | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.destinations = load_destinations(settings)
        self.clock = clock
        self.owner = owner or lease_holder()
        self.jitter = jitter
        self.http = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=max(settings.outbox_concurrency, 1))
        self.http.mount("http://", adapter)
        self.http.mount("https://", adapter)
        self._pool: ThreadPoolExecutor | None = None

    def run_once(self, database: Database, settings: Settings) -> int:
        if not self.destinations:
            return 0
        handled = dispatch(database, [d.name for d in self.destinations], self.clock())
        for destination in self.destinations:
            handled += self.deliver(database, destination)
        return handled

    def deliver(self, database: Database, destination: Destination) -> int:
        timeout = destination.timeout or self.settings.outbox_timeout_seconds
        concurrency = max(self.settings.outbox_concurrency, 1)
        lease = self.settings.outbox_lease_seconds
        # Every claimed event must be sent before its lease ends, or another worker may send it
        # too: no thread sends more than ``rounds`` requests one after the other.
        rounds = max(int((lease - 1) // (timeout + 0.5)), 1)
        limit = max(min(self.settings.outbox_batch, concurrency * rounds), 1)
        claimed = claim(
            database,
            destination.name,
            self.owner,
            self.clock(),
            limit,
            lease,
            destination.schema_version,
            chain=rounds,
        )
        if not claimed:
            return 0
        lanes, left_out = in_lanes(claimed, concurrency, rounds)
        outcomes = [
            outcome
            for lane in self.pool.map(lambda lane: self.send_in_order(destination, lane, timeout), lanes)
            for outcome in lane
        ]
        outcomes += [Outcome(item.delivery_id, False, True, attempted=False) for item in left_out]
        record(
            database,
            destination.name,
            self.owner,
            outcomes,
            claimed,
            self.settings,
            self.clock(),
            self.jitter,
        )
        return len(claimed)

    def send_in_order(self, destination: Destination, items: list[Claimed], timeout: float) -> list[Outcome]:
        """Send ``items`` one after the other; once one of a station fails, that station's later
        ones are not sent (their order must hold) and come back untried."""
        failed: set[str | None] = set()
        outcomes = []
        for item in items:
            if item.station_id is not None and item.station_id in failed:
                outcomes.append(Outcome(item.delivery_id, False, True, attempted=False))
                continue
            outcome = self.send(destination, item, timeout)
            if not outcome.delivered:
                failed.add(item.station_id)
            outcomes.append(outcome)
        return outcomes

    def send(self, destination: Destination, item: Claimed, timeout: float) -> Outcome:
        if self.clock() >= item.lease_expires_at:  # we were too slow: leave it to whoever takes it over
            return Outcome(
                item.delivery_id, delivered=False, retry=True, error="lease expired before sending"
            )
        headers = {
            "Content-Type": "application/json",
            HEADER: sign(destination.secrets, item.body),
            IDEMPOTENCY_HEADER: item.event_id,
            "User-Agent": "smsgate-outbox/1",
        }
        try:
            response = self.http.post(destination.url, data=item.body, headers=headers, timeout=timeout)
        except requests.Timeout:
            return Outcome(item.delivery_id, False, True, f"timeout after {timeout:g}s")
        except requests.RequestException as exc:
            return Outcome(item.delivery_id, False, True, f"{type(exc).__name__}: {exc}"[:500])
        if 200 <= response.status_code < 300:
            return Outcome(item.delivery_id, True, False)
        error = f"HTTP {response.status_code}: {response.text[:200]}"
        return Outcome(
            item.delivery_id, False, retryable(response.status_code), error, retry_after(response.headers)
        )

    @property
    def pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max(self.settings.outbox_concurrency, 1), "outbox")
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self.http.close()


def in_lanes(claimed: list[Claimed], lanes: int, length: int) -> tuple[list[list[Claimed]], list[Claimed]]:
    """Share ``claimed`` among at most ``lanes`` threads, each sending its list in order: a
    station's events stay together, in order, in one lane (longest chains first, each to the
    shortest lane). No lane is longer than ``length``, so every request goes out before the
    lease ends; what does not fit is returned apart (always the end of a station's chain) and
    goes back untried."""
    chains: dict[object, list[Claimed]] = {}
    for item in claimed:
        key: object = item.station_id if item.station_id is not None else ("incident", item.delivery_id)
        chains.setdefault(key, []).append(item)
    packed: list[list[Claimed]] = [[] for _ in range(max(lanes, 1))]
    for chain in sorted(chains.values(), key=len, reverse=True):
        min(packed, key=len).extend(chain)
    left_out = [item for lane in packed for item in lane[length:]]
    return [lane[:length] for lane in packed if lane], left_out


def outbox_job(settings: Settings) -> OutboxJob:
    return OutboxJob(settings)
