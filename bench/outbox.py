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
   Measured twice in the same run: workers polling every 0.5 s (``SMSGATE_LISTEN_URL=off``, the
   baseline) and workers woken by PostgreSQL ``NOTIFY`` (the default).

With ``--sqlite`` the same runs use a SQLite file instead: one worker (SQLite allows one per
database file), which polls every 0.5 s (SQLite has no ``NOTIFY``), so only the polling delay.

    .venv/bin/python bench/outbox.py [--pg postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
        [--sqlite] [--backlog 600] [--rate 30] [--seconds 8] [--skip-throughput]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--backlog", type=int, default=600, help="reports stored before the throughput runs")
    parser.add_argument("--rate", type=float, default=30.0, help="reports per second during the delay run")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each delay run")
    parser.add_argument("--skip-throughput", action="store_true", help="only the delay runs")
    parser.add_argument("--sqlite", action="store_true", help="a SQLite file instead of PostgreSQL")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-outbox-"))
    base = make_url(args.pg)
    name = f"smsgate_bench_outbox_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    if args.sqlite:
        url = f"sqlite:///{tmp / 'outbox.db'}"
    else:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        url = base.set(database=name).render_as_string(hide_password=False)
    counts = (1,) if args.sqlite else (1, 2)  # SQLite: one worker per database file
    modes = ("polling",) if args.sqlite else ("polling", "listening")
    delay_workers = 1 if args.sqlite else 2
    database = Database.from_url(url)
    running: list[subprocess.Popen] = []
    try:
        upgrade(database.engine)
        people = build(database)
        ingest = Ingest(database, Settings(database_url=url).without_flood_control())
        rng = random.Random(1)
        for i in range(args.backlog):
            phone, tps = people[i % len(people)]
            report(ingest, phone, tps, rng)
        with database.engine.connect() as c:
            events = c.execute(text("SELECT count(*) FROM outbox_events")).scalar_one()
        print(f"backlog: {args.backlog} reports -> {events} events, {len(people)} stations")

        throughput = {}
        for n in () if args.skip_throughput else counts:
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
            got = (
                sqlite3.connect(tmp / f"throughput-{n}.db")
                .execute("SELECT count(*) FROM events")
                .fetchone()[0]
            )
            assert got == events, (got, events)
            throughput[n] = events / elapsed
            print(
                f"throughput, {n} worker(s): {events} events in {elapsed:.1f}s = {throughput[n]:.0f} events/s"
            )

        for mode in modes:
            port = free_port()
            receiver_db = tmp / f"delay-{mode}.db"
            running = [receiver(port, receiver_db)]
            running += workers(delay_workers, url, port, listen=mode == "listening")
            web_port, token = free_port(), "bench-twilio-token"
            running.append(server(url, web_port, token))
            load_start = datetime.now().astimezone()
            answered: dict[str, float] = {}  # report ref -> when its webhook's answer came (after the commit)

            def note(result: simulate.Result, answered: dict[str, float] = answered) -> None:
                found = REF.search(result.reply or "")
                if found:
                    answered[found.group(1)] = time.time()

            summary = simulate.run(
                f"http://127.0.0.1:{web_port}",
                token,
                simulate.roster_from_database(database),
                messages=max(1, int(args.rate * args.seconds)),
                rate=args.rate,
                concurrency=8,
                database=database,
                on_result=note,
            )
            sent = summary.sent
            wait_empty(database, 120)
            stop(running[1:])
            stop(running[:1])
            running = []
            delays, waits, sends, after = [], [], [], []
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
                    after.append(received_at - commits[event["occurred_at"]])
                occurred = datetime.fromisoformat(event["occurred_at"])
                if occurred >= load_start:
                    delays.append(received_at - occurred.timestamp())
                    at = dispatched.get(event["id"])
                    if at is not None:
                        at = datetime.fromisoformat(at) if isinstance(at, str) else at  # SQLite: text
                        at = at if at.tzinfo else at.replace(tzinfo=UTC)
                        waits.append(at.timestamp() - occurred.timestamp())
                        sends.append(received_at - at.timestamp())
            p50, p99 = percentile(delays, 50), percentile(delays, 99)
            print(
                f"delay commit -> delivery, {delay_workers} worker(s) {mode}"
                f" on {database.engine.dialect.name},"
                f" {sent} SMS from smsgate simulate "
                f"at {args.rate:g}/s "
                f"(webhook p50 {summary.percentile(50) * 1000:.0f} ms, {len(delays)} events): "
                f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms (from occurred_at, taken when handling"
                f" starts: includes the webhook's own transaction)\n"
                f"  from the webhook's answer (after the commit; {len(after)} events):"
                f" p50 {percentile(after, 50) * 1000:.0f} ms, p99 {percentile(after, 99) * 1000:.0f} ms\n"
                f"  of which commit -> a worker dispatches it: p50 {percentile(waits, 50) * 1000:.0f} ms,"
                f" p99 {percentile(waits, 99) * 1000:.0f} ms; dispatch -> the receiver has it (claim, sign,"
                f" POST, verify): p50 {percentile(sends, 50) * 1000:.0f} ms,"
                f" p99 {percentile(sends, 99) * 1000:.0f} ms"
            )
        print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
        print("load average (1, 5, 15 min) at the end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    finally:
        stop(running)
        database.dispose()
        if not args.sqlite:
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
