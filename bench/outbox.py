"""Outbox delivery benchmark, on a scratch PostgreSQL database created and dropped here.

1. Throughput: a backlog of events (reports stored through the real ``Ingest.receive``) is
   delivered to the reference receiver (``smsgate receive``, a subprocess) by 1 and then by 2
   ``smsgate worker`` processes; events per second from start to an empty outbox.
2. Delay from commit to delivery while load arrives: ``smsgate simulate`` sends signed Twilio
   webhooks to a running ``smsgate serve`` at a fixed rate while 2 workers run; the receiver's
   arrival time minus the event's ``occurred_at`` (taken when the webhook's transaction starts
   handling the SMS, so this includes that transaction: an upper bound), and minus the moment
   the webhook's answer came back (after the commit: a lower bound), p50/p99; the first is also
   split at the moment a worker dispatched the event (``outbox_deliveries.created_at``).
   Measured twice in the same run, each on a fresh database: workers woken by PostgreSQL
   ``NOTIFY`` (the default, the configuration the target is for) and workers polling every
   0.5 s (``SMSGATE_LISTEN_URL=off``, the baseline). Prints p50/p95/p99, the command and the
   load average, and exits 1 when the first's p99 from the webhook's answer is not under 1 s.
   The receiver keeps its SQLite file in ``/dev/shm`` (``--receiver-dir``), so the figure is
   smsgate's delay and not the fsync of the receiver's disk (one event at a time, 20-30 ms
   each on the shared machine: slower than 50 events a second).

With ``--sqlite`` the same runs use a SQLite file instead: one worker (SQLite allows one per
database file), which polls every 0.5 s (SQLite has no ``NOTIFY``), so only the polling delay.

    .venv/bin/python bench/outbox.py [--pg postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
        [--sqlite] [--backlog 600] [--rate 30] [--seconds 8] [--concurrency 8] [--skip-throughput]
        [--receiver-dir /dev/shm]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from smsgate import simulate
from smsgate.config import Settings
from smsgate.db import Database
from smsgate.importers import upsert_contacts, upsert_regions, upsert_stations
from smsgate.inbound import InboundSMS
from smsgate.models import Candidate
from smsgate.schema import upgrade
from smsgate.services.ingest import Ingest

SMSGATE = str(Path(sys.executable).with_name("smsgate"))
REF = re.compile(r"\bRef ([A-Z0-9]+)")
SECRET = "bench-secret"
DESAS = [f"63.71.01.100{n}" for n in range(1, 5)]
STATIONS_PER_DESA = 50


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build(database: Database) -> list[tuple[str, int]]:
    """Regions, 200 stations and one volunteer per station; returns (phone, tps) pairs."""
    with database.begin() as session:
        regions = [
            ("63", "Kalimantan Selatan"),
            ("63.71", "Kota Banjarmasin"),
            ("63.71.01", "Banjarmasin Selatan"),
        ]
        regions += [(code, f"Desa {code[-4:]}") for code in DESAS]
        upsert_regions(session, regions)
        for code, name in (("01", "A"), ("02", "B"), ("03", "C")):
            session.add(Candidate(code=code, name=name))
        upsert_stations(session, [(d, t, 300) for d in DESAS for t in range(1, STATIONS_PER_DESA + 1)])
        people, n = [], 0
        for desa in DESAS:
            for tps in range(1, STATIONS_PER_DESA + 1):
                n += 1
                people.append(
                    {
                        "phone": f"+62811{n:07d}",
                        "name": f"V{n}",
                        "role": "volunteer",
                        "region_code": desa,
                        "tps": tps,
                        "lang": "id",
                    }
                )
        upsert_contacts(session, people)
    return [(p["phone"], p["tps"]) for p in people]


def report(ingest: Ingest, phone: str, tps: int, rng: random.Random) -> None:
    body = f"TPS {tps:03d} 01={rng.randint(50, 90)} 02={rng.randint(40, 80)} 03={rng.randint(30, 70)}"
    sms = InboundSMS(
        provider="bench", provider_message_id=uuid.uuid4().hex, from_number=phone, to_number="+1", text=body
    )
    reply = ingest.receive(sms)
    assert reply.text.startswith("OK"), reply.text


def remaining(database: Database) -> int:
    with database.engine.connect() as c:
        return c.execute(
            text(
                "SELECT (SELECT count(*) FROM outbox_events WHERE dispatched_at IS NULL)"
                " + (SELECT count(*) FROM outbox_deliveries WHERE status = 'pending')"
            )
        ).scalar_one()


def receiver(port: int, db: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [SMSGATE, "receive", "--port", str(port), "--secret", SECRET, "--db", str(db)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(1200):  # up to a minute: a loaded machine starts Python slowly
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return process
        time.sleep(0.05)
    stop([process])
    raise RuntimeError("receiver did not start")


def workers(n: int, url: str, port: int, listen: bool = True) -> list[subprocess.Popen]:
    env = {
        **os.environ,
        "SMSGATE_LISTEN_URL": "" if listen else "off",
        "SMSGATE_DATABASE_URL": url,
        "SMSGATE_TALLY_URL": f"http://127.0.0.1:{port}/events",
        "SMSGATE_TALLY_SECRET": SECRET,
    }
    return [
        subprocess.Popen([SMSGATE, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(n)
    ]


def server(url: str, port: int, token: str) -> subprocess.Popen:
    """``smsgate serve`` on the scratch database, signed webhooks checked against ``token``."""
    env = {
        **os.environ,
        "SMSGATE_DATABASE_URL": url,
        "TWILIO_AUTH_TOKEN": token,
        "SMSGATE_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    process = subprocess.Popen(
        [SMSGATE, "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(1200):
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                return process
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(0.05)
    stop([process])
    raise RuntimeError("smsgate serve did not start")


def stop(processes: list[subprocess.Popen]) -> None:
    for p in processes:
        p.terminate()
    for p in processes:
        p.wait(15)


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank percentile (NaN when there is nothing)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def wait_empty(database: Database, limit: float) -> float:
    started = time.monotonic()
    while remaining(database):
        if time.monotonic() - started > limit:
            raise RuntimeError(f"outbox not empty after {limit}s")
        time.sleep(0.05)
    return time.monotonic() - started


TARGET_P99_MS = 1000.0


@dataclass
class Delay:
    """One delay run's figures, in seconds per delivered event."""

    mode: str
    sent: int
    webhook_p50: float
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    from_occurred: list[float] = field(default_factory=list)
    from_answer: list[float] = field(default_factory=list)
    to_dispatch: list[float] = field(default_factory=list)
    dispatch_to_receiver: list[float] = field(default_factory=list)


def spread(values: list[float]) -> str:
    """``p50 / p95 / p99`` in milliseconds, and how many values."""
    ms = [f"{percentile(values, p) * 1000:.0f}" for p in (50, 95, 99)]
    return f"p50 {ms[0]} / p95 {ms[1]} / p99 {ms[2]} ms (n={len(values)})"


def load() -> tuple[float, float, float]:
    return os.getloadavg()


def fmt_load(values: tuple[float, float, float]) -> str:
    return " ".join(f"{x:.2f}" for x in values)


def prepare(url: str, backlog: int) -> int:
    """Schema, regions, stations, volunteers and ``backlog`` stored reports; returns the events."""
    database = Database.from_url(url)
    try:
        upgrade(database.engine)
        people = build(database)
        ingest = Ingest(database, Settings(database_url=url).without_flood_control())
        rng = random.Random(1)
        for i in range(backlog):
            phone, tps = people[i % len(people)]
            report(ingest, phone, tps, rng)
        with database.engine.connect() as c:
            return int(c.execute(text("SELECT count(*) FROM outbox_events")).scalar_one())
    finally:
        database.dispose()


def measure_throughput(url: str, n: int, events: int, tmp: Path) -> float:
    """Events per second for ``n`` workers delivering the whole outbox once more."""
    database = Database.from_url(url)
    running: list[subprocess.Popen] = []
    try:
        with database.engine.begin() as c:
            c.execute(text("DELETE FROM outbox_deliveries"))
            c.execute(text("UPDATE outbox_events SET dispatched_at = NULL"))
        port = free_port()
        running = [receiver(port, tmp / f"throughput-{n}.db")]
        running += workers(n, url, port)
        elapsed = wait_empty(database, 300)
        stop(running[1:])
        stop(running[:1])
        running = []
        got = sqlite3.connect(tmp / f"throughput-{n}.db").execute("SELECT count(*) FROM events").fetchone()[0]
        assert got == events, (got, events)
        return events / elapsed
    finally:
        stop(running)
        database.dispose()


def measure_delay(url: str, mode: str, n_workers: int, args: argparse.Namespace, receivers: Path) -> Delay:
    """Send ``args.rate`` SMS a second through ``smsgate serve`` for ``args.seconds`` while
    ``n_workers`` workers (polling or listening) deliver to the reference receiver."""
    database = Database.from_url(url)
    running: list[subprocess.Popen] = []
    try:
        port = free_port()
        receiver_db = receivers / f"delay-{mode}.db"
        running = [receiver(port, receiver_db)]
        running += workers(n_workers, url, port, listen=mode == "listening")
        web_port, token = free_port(), "bench-twilio-token"
        running.append(server(url, web_port, token))
        before = load()
        load_start = datetime.now().astimezone()
        answered: dict[str, float] = {}  # report ref -> when its webhook's answer came (after the commit)

        def note(result: simulate.Result) -> None:
            found = REF.search(result.reply or "")
            if found:
                answered[found.group(1)] = time.time()

        summary = simulate.run(
            f"http://127.0.0.1:{web_port}",
            token,
            simulate.roster_from_database(database),
            messages=max(1, int(args.rate * args.seconds)),
            rate=args.rate,
            concurrency=args.concurrency,
            database=database,
            on_result=note,
        )
        wait_empty(database, 120)
        after_load = load()
        stop(running[1:])
        stop(running[:1])
        running = []
        figures = Delay(mode, summary.sent, summary.percentile(50), before, after_load)
        with database.engine.connect() as c:
            dispatched = dict(
                c.execute(
                    text(
                        "SELECT e.id, d.created_at FROM outbox_events e"
                        " JOIN outbox_deliveries d ON d.event_seq = e.seq"
                    )
                ).all()
            )
        rows = sqlite3.connect(receiver_db).execute("SELECT received_at, body FROM events").fetchall()
        # One transaction's events share occurred_at; its report's ref names its webhook's answer.
        commits = {}
        for _, body in rows:
            event = json.loads(body)
            stored = event["data"].get("report") or {}
            ref = stored.get("ref") if event["type"] == "report.accepted" else None
            if ref in answered:
                commits[event["occurred_at"]] = answered[ref]
        for received_at, body in rows:
            event = json.loads(body)
            if event["occurred_at"] in commits:
                figures.from_answer.append(received_at - commits[event["occurred_at"]])
            occurred = datetime.fromisoformat(event["occurred_at"])
            if occurred < load_start:
                continue
            figures.from_occurred.append(received_at - occurred.timestamp())
            at = dispatched.get(event["id"])
            if at is not None:
                at = datetime.fromisoformat(at) if isinstance(at, str) else at  # SQLite: text
                at = at if at.tzinfo else at.replace(tzinfo=UTC)
                figures.to_dispatch.append(at.timestamp() - occurred.timestamp())
                figures.dispatch_to_receiver.append(received_at - at.timestamp())
        return figures
    finally:
        stop(running)
        database.dispose()


def print_delay(figures: Delay, n_workers: int, dialect: str, rate: float) -> None:
    print(
        f"delay commit -> delivery, {n_workers} worker(s) {figures.mode} on {dialect},"
        f" {figures.sent} SMS from smsgate simulate at {rate:g}/s"
        f" (webhook p50 {figures.webhook_p50 * 1000:.0f} ms);"
        f" load average {fmt_load(figures.load_before)} before, {fmt_load(figures.load_after)} after\n"
        f"  from the webhook's answer (after the commit): {spread(figures.from_answer)}\n"
        f"  from occurred_at (handling starts; includes the webhook's transaction):"
        f" {spread(figures.from_occurred)}\n"
        f"    of which occurred_at -> a worker dispatches it: {spread(figures.to_dispatch)}\n"
        f"    dispatch -> the receiver has it (claim, sign, POST, verify):"
        f" {spread(figures.dispatch_to_receiver)}",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--backlog", type=int, default=600, help="reports stored before the throughput runs")
    parser.add_argument("--rate", type=float, default=30.0, help="reports per second during the delay run")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each delay run")
    parser.add_argument("--concurrency", type=int, default=8, help="webhook requests in flight at most")
    parser.add_argument("--skip-throughput", action="store_true", help="only the delay runs")
    parser.add_argument("--sqlite", action="store_true", help="a SQLite file instead of PostgreSQL")
    parser.add_argument(
        "--polling-first",
        action="store_true",
        help="measure the polling baseline before the listening workers (to see what the order does)",
    )
    parser.add_argument(
        "--receiver-dir",
        default="/dev/shm" if Path("/dev/shm").is_dir() else None,
        help="where the reference receiver keeps its SQLite file during the delay runs (default"
        " /dev/shm, memory: the figure is smsgate's delay, not the fsync of the receiver's disk)",
    )
    args = parser.parse_args()
    command = " ".join([Path(sys.executable).name, *sys.argv])
    print(f"command: {command}")
    print(f"load average (1, 5, 15 min) at the start: {fmt_load(load())}", flush=True)

    tmp = Path(tempfile.mkdtemp(prefix="bench-outbox-"))
    receivers = Path(tempfile.mkdtemp(prefix="bench-outbox-receiver-", dir=args.receiver_dir))
    print(f"receiver files in {receivers}")
    base = make_url(args.pg)
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    created: list[str] = []

    def scratch(label: str) -> str:
        """A new empty database (every mode gets its own, so none carries another's rows)."""
        if args.sqlite:
            return f"sqlite:///{tmp / f'{label}.db'}"
        name = f"smsgate_bench_outbox_{uuid.uuid4().hex[:8]}"
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        created.append(name)
        return base.set(database=name).render_as_string(hide_password=False)

    counts = (1,) if args.sqlite else (1, 2)  # SQLite: one worker per database file
    # The configuration the target is for first; the baseline (polling) in the same run.
    modes = ("polling",) if args.sqlite else ("listening", "polling")
    if args.polling_first:
        modes = modes[::-1]
    n_workers = 1 if args.sqlite else 2
    dialect = "sqlite" if args.sqlite else "postgresql"
    results: list[Delay] = []
    try:
        if not args.skip_throughput:
            url = scratch("throughput")
            events = prepare(url, args.backlog)
            print(f"backlog: {args.backlog} reports -> {events} events, {len(DESAS) * STATIONS_PER_DESA} TPS")
            for n in counts:
                rate = measure_throughput(url, n, events, tmp)
                print(f"throughput, {n} worker(s): {events} events = {rate:.0f} events/s", flush=True)
        for mode in modes:
            url = scratch(mode)
            prepare(url, args.backlog)
            figures = measure_delay(url, mode, n_workers, args, receivers)
            print_delay(figures, n_workers, dialect, args.rate)
            results.append(figures)
    finally:
        shutil.rmtree(receivers, ignore_errors=True)
        admin.dispose()
        for name in created:
            with create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT").connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    target = next(r for r in results if r.mode == modes[0 if not args.polling_first else -1])
    p99 = percentile(target.from_answer, 99) * 1000
    met = p99 < TARGET_P99_MS and len(target.from_answer) > 0
    print(f"command: {command}")
    print(f"load average (1, 5, 15 min) at the end: {fmt_load(load())}")
    print(
        f"target: commit -> delivery p99 < {TARGET_P99_MS:.0f} ms at {args.rate:g} SMS/s with"
        f" {n_workers} worker(s) {target.mode} on {dialect}:"
        f" p99 {p99:.0f} ms from the webhook's answer -> {'MET' if met else 'NOT MET'}"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
