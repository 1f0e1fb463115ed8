"""The reference receiver on localhost for the outbox tests, with faults it can be told to make."""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from werkzeug.serving import make_server

from smsgate import event_schemas
from smsgate.config import Settings
from smsgate.db import Database
from smsgate.models import OutboxDelivery, OutboxEvent, StationResult
from smsgate.models.outbox import PENDING
from smsgate.outgoing.event_job import OutboxJob
from smsgate.receiver import Store, create_receiver
from smsgate.services.tally import tally

from ..support import COORD_NATIONAL, VOLUNTEER_A, VOLUNTEER_ALUH, VOLUNTEER_B, VOLUNTEER_C, VOLUNTEER_EN

SECRET = "test-tally-secret"
SCHEMA = json.loads((Path(__file__).parents[2] / "smsgate" / "schemas" / "event-v1.json").read_text())


@dataclass
class Faults:
    """What the receiver does to the next requests: fail with a status, or answer slowly."""

    fail_status: int | None = None
    fail_next: int = 0
    delay: float = 0.0
    delay_next: int = 0
    posts: Counter = field(default_factory=Counter)
    in_flight: Counter = field(default_factory=Counter)
    concurrent_duplicates: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class FaultyReceiver:
    """WSGI middleware around the real receiver app that counts posts per idempotency key,
    notices the same event in flight twice at once, and injects faults."""

    def __init__(self, app: Any, faults: Faults) -> None:
        self.app, self.faults = app, faults

    def __call__(self, environ: dict, start_response: Any) -> Any:
        key = environ.get("HTTP_IDEMPOTENCY_KEY")
        if environ["REQUEST_METHOD"] != "POST" or not key:
            return self.app(environ, start_response)
        f = self.faults
        with f.lock:
            f.posts[key] += 1
            if f.in_flight[key]:
                f.concurrent_duplicates += 1
            f.in_flight[key] += 1
            fail = f.fail_status if f.fail_next > 0 else None
            f.fail_next -= 1 if fail else 0
            delay = f.delay if f.delay_next > 0 else 0.0
            f.delay_next -= 1 if delay else 0
        try:
            if delay:
                time.sleep(delay)
            if fail:
                environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
                start_response(f"{fail} Injected", [("Content-Type", "text/plain")])
                return [b"injected failure"]
            return list(self.app(environ, start_response))
        finally:
            with f.lock:
                f.in_flight[key] -= 1


@dataclass
class Receiver:
    url: str
    port: int
    store: Store
    faults: Faults


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_receiver(
    tmp_path: Path, port: int | None = None, db_name: str = "receiver.db"
) -> Iterator[Receiver]:
    app = create_receiver(SECRET, str(tmp_path / db_name))
    faults = Faults()
    server = make_server("127.0.0.1", port or 0, FaultyReceiver(app, faults), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_port
    try:
        yield Receiver(f"http://127.0.0.1:{port}/events", port, app.extensions["smsgate.receiver"], faults)
    finally:
        server.shutdown()
        server.server_close()
        app.extensions["smsgate.receiver"].close()


def outbox_settings(settings: Settings, url: str, **overrides: Any) -> Settings:
    """Small timeouts and backoff so faults heal in milliseconds, not minutes."""
    values: dict[str, Any] = {
        "tally_url": url,
        "tally_secret": SECRET,
        "outbox_timeout_seconds": 1.0,
        "outbox_backoff_seconds": 0.01,
        "outbox_backoff_max_seconds": 0.05,
        "outbox_lease_seconds": 5.0,
        "outbox_batch": 20,
        "outbox_concurrency": 4,
    }
    values.update(overrides)
    return replace(settings, **values)


def remaining(database: Database) -> int:
    """Events not yet dispatched plus deliveries still pending."""
    with database.read() as session:
        undispatched = session.scalar(
            select(func.count()).select_from(OutboxEvent).where(OutboxEvent.dispatched_at.is_(None))
        )
        pending = session.scalar(
            select(func.count()).select_from(OutboxDelivery).where(OutboxDelivery.status == PENDING)
        )
    return (undispatched or 0) + (pending or 0)


def drain(database: Database, job: OutboxJob, settings: Settings, deadline: float = 30.0) -> int:
    """Run the job until nothing is left to deliver; returns the passes it took."""
    stop, passes = time.monotonic() + deadline, 0
    while remaining(database):
        assert time.monotonic() < stop, f"outbox not drained after {deadline}s"
        passes += 1
        if not job.run_once(database, settings):
            time.sleep(0.02)
    return passes


def election_night(rng: random.Random, rounds: int = 4) -> list[tuple[str, str]]:
    """Reports, corrections, disagreements, a coordinator's word and cancellations."""
    messages: list[tuple[str, str]] = []
    for n in range(rounds):
        a, b, c = rng.randint(50, 80), rng.randint(40, 70), rng.randint(30, 60)
        messages += [
            (VOLUNTEER_A, f"TPS 012 01={a} 02={b} 03={c}"),
            (VOLUNTEER_B, f"TPS 012 01={a if n % 2 else a + 1} 02={b} 03={c}"),
            (VOLUNTEER_C, f"TPS {rng.choice([1, 2, 901])} 01={b} 02={c} 03={a}"),
            (VOLUNTEER_EN, f"01={c} 02={a} 03={b}"),
            (VOLUNTEER_ALUH, f"TPS 001 01={a} 02={c} 03={b}"),
        ]
        if n % 3 == 1:
            messages.append((VOLUNTEER_ALUH, "BATAL"))
        if n % 3 == 2:
            messages.append((COORD_NATIONAL, f"TPS 6472011001001 01={a} 02={b} 03={c} PIN 4821"))
    return messages


def send_all(sms: Any, messages: list[tuple[str, str]]) -> None:
    for phone, body in messages:
        reply = sms(phone, body)
        assert reply and reply.startswith("OK"), (phone, body, reply)


def assert_receiver_matches(
    database: Database, receiver: Receiver, *, after_timeouts: bool = False, ordered: bool = True
) -> None:
    """Every event arrived once in effect, in order per station, valid, and the tallies agree.

    No event is ever in flight twice at once, except ``after_timeouts``: a retry after our
    timeout may reach a receiver still busy with the first try (the idempotency key is for that).
    Not ``ordered`` after ``retry --dead``: a replayed dead event arrives after its successors.
    """
    with database.read() as session:
        ours = {e.id: e for e in session.scalars(select(OutboxEvent))}
        results = {r.station_id: r for r in session.scalars(select(StationResult))}
        our_tally = tally(session, None)
    received = receiver.store.events()
    ids = [e["id"] for e in received]
    assert len(ids) == len(set(ids))
    assert set(ids) == set(ours), "receiver's events differ from the outbox"
    last: dict[str, int] = {}
    for event in received:
        assert not event_schemas.errors(event), (event, event_schemas.errors(event))
        station = (event["station"] or {}).get("id")
        if station and ordered:
            assert event["sequence"] > last.get(station, 0), f"station {station} out of order"
            last[station] = event["sequence"]
    theirs = receiver.store.tally()
    for station_id, state in theirs["stations"].items():
        result = results[station_id]
        assert (state["status"], state["votes"], state["valid"], state["invalid"]) == (
            result.status,
            result.votes,
            result.valid,
            result.invalid,
        ), station_id
    changed = {s for s, r in results.items() if r.status != "missing"}
    assert changed <= set(theirs["stations"])
    totals = theirs["totals"]
    assert totals["votes"] == {k: v for k, v in our_tally["votes"].items() if v}
    assert (totals["valid"], totals["invalid"]) == (our_tally["valid"], our_tally["invalid"])
    for name in ("reported", "verified", "disputed", "flagged"):
        assert totals[name] == our_tally["stations"][name], name
    if not after_timeouts:
        assert receiver.faults.concurrent_duplicates == 0
