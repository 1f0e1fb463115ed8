"""What SQLite's ``synchronous=FULL`` costs against ``NORMAL``, measured in the same run.

smsgate runs SQLite with ``PRAGMA synchronous=FULL`` by default (``SMSGATE_SQLITE_SYNCHRONOUS``):
in WAL mode that syncs the log to disk at every commit, so a report answered OK survives a power
cut; ``NORMAL`` syncs only at checkpoints and may lose the last commits in such a crash. This
bench puts a number on the difference, on one database file (a temporary folder on the disk
given by ``--dir``; a tmpfs would hide the cost, and the bench refuses one):

1. **bare commits**: ``--commits`` transactions of one small insert each, alternating modes
   block by block: the sync itself, without smsgate's work around it (per commit p50/p99);
2. **one at a time, in process**: ``--reports`` valid reports through ``Ingest.receive`` (the
   path a webhook takes, without HTTP), alternating blocks of NORMAL and FULL so drift in the
   machine's load hits both alike; per mode: reports/s and p50/p99 per report;
3. **saturated, through ``smsgate serve``** (unless ``--no-server``): the real server (one
   process, serve's default on SQLite) started with ``SMSGATE_SQLITE_SYNCHRONOUS`` set to each
   mode in turn, ``--rounds`` times, each time driven by ``wrk`` with new signed Twilio webhooks
   (``bench/webhook.py``'s messages and Lua script) for ``--warmup`` then ``--duration`` seconds;
   per mode: the median of the rounds' messages/s and p50/p99.

It checks afterwards that every request answered OK stored exactly one report (up to the
connections in flight at the end of each phase) and prints the cost of FULL as a share of
NORMAL's throughput.

    .venv/bin/python bench/durability.py                                 # defaults
    .venv/bin/python bench/durability.py --reports 600 --rounds 2 --duration 10
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from consensus import body_for  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402
from webhook import (  # noqa: E402
    AUTH_TOKEN,
    CLI,
    Phase,
    free_port,
    populate,
    server,
    write_messages,
    wrk,
)

from smsgate.config import Settings  # noqa: E402
from smsgate.db import Database  # noqa: E402
from smsgate.inbound import InboundSMS  # noqa: E402
from smsgate.models import Report  # noqa: E402
from smsgate.schema import upgrade  # noqa: E402
from smsgate.services.ingest import Ingest  # noqa: E402

MODES = ("NORMAL", "FULL")


def filesystem(path: Path) -> str:
    """The type of the file system holding ``path`` (``df --output=fstype``)."""
    out = subprocess.run(["df", "--output=fstype", str(path)], capture_output=True, text=True, check=True)
    return out.stdout.split()[-1]


def in_process(url: str, senders: list[tuple[str, str]], reports: int, block: int) -> dict[str, list[float]]:
    """Seconds per report for each mode, over alternating blocks of ``block`` reports."""
    databases = {mode: Database.from_url(url, mode) for mode in MODES}
    ingests = {mode: Ingest(db, Settings(database_url=url)) for mode, db in databases.items()}
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    run = uuid.uuid4().hex[:8]
    try:
        for i in range(reports):
            mode = MODES[(i // block) % 2]
            phone, station = senders[i % len(senders)]
            votes = {"01": 70 + (i // len(senders)) % 50, "02": 50, "03": 40}
            sms = InboundSMS("twilio", f"SMdur{run}{i:020x}", phone, body_for(station, votes, 3))
            began = time.perf_counter()
            reply = ingests[mode].receive(sms)
            times[mode].append(time.perf_counter() - began)
            if not (reply.text or "").startswith("OK"):
                raise RuntimeError(f"report {i} not accepted: {reply.text!r}")
    finally:
        for database in databases.values():
            database.dispose()
    return times


def bare_commits(folder: Path, commits: int, block: int) -> dict[str, list[float]]:
    """Seconds per commit of a one-row insert, for each mode, in alternating blocks."""
    databases = {mode: Database.from_url(f"sqlite:///{folder / 'commits.db'}", mode) for mode in MODES}
    with databases["FULL"].begin() as session:
        session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)"))
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    try:
        for i in range(commits):
            mode = MODES[(i // block) % 2]
            began = time.perf_counter()
            with databases[mode].begin() as session:
                session.execute(text("INSERT INTO t (body) VALUES (:b)"), {"b": f"TPS {i:03d} 01=100 02=90"})
            times[mode].append(time.perf_counter() - began)
    finally:
        for database in databases.values():
            database.dispose()
    return times


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dir", default=str(HERE.parent), help="folder on the disk to test (not a tmpfs)")
    parser.add_argument("--senders", type=int, default=2000, help="registered volunteers sending")
    parser.add_argument("--commits", type=int, default=2000, help="bare commits, both modes together")
    parser.add_argument("--reports", type=int, default=2000, help="in-process reports, both modes together")
    parser.add_argument("--block", type=int, default=100, help="in-process reports per block of one mode")
    parser.add_argument("--no-server", action="store_true", help="skip the measurement through smsgate serve")
    parser.add_argument("--rounds", type=int, default=3, help="server runs per mode, alternating")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--max-rate", type=float, default=1500.0, help="messages/s to pre-sign for")
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-durability-", dir=args.dir) as tmp:
        folder = Path(tmp)
        kind = filesystem(folder)
        if kind == "tmpfs":
            print(
                f"{folder} is on a tmpfs, where a sync costs nothing: give --dir on a disk", file=sys.stderr
            )
            return 2
        commits = bare_commits(folder, args.commits, args.block)
        url = f"sqlite:///{folder / 'durability.db'}"
        database = Database.from_url(url)
        upgrade(database.engine)
        senders, _spare = populate(database, args.senders, args.seed)
        times = in_process(url, senders, args.reports, args.block)

        phases: dict[str, list[Phase]] = {mode: [] for mode in MODES}
        answered = 0
        if not args.no_server:
            for round_ in range(args.rounds):
                for mode in MODES if round_ % 2 == 0 else MODES[::-1]:
                    port = free_port()
                    public = f"http://127.0.0.1:{port}"
                    run = uuid.uuid4().hex[:6]
                    warm_n = int(args.max_rate * args.warmup) + 500
                    timed_n = int(args.max_rate * args.duration) + 500
                    warm_file, timed_file = folder / "warmup.txt", folder / "timed.txt"
                    start = len(senders) * (1 + 50 * (2 * round_ + MODES.index(mode)))  # new counts each run
                    write_messages(warm_file, public, senders, start, warm_n, run)
                    write_messages(timed_file, public, senders, start + warm_n, timed_n, run)
                    env = {
                        "SMSGATE_DATABASE_URL": url,
                        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                        "SMSGATE_PUBLIC_URL": public,
                        "SMSGATE_SQLITE_SYNCHRONOUS": mode.lower(),
                        # every sender texts at most once per pass over the 2,000; the bench
                        # measures the database, not flood control
                        "SMSGATE_FLOOD_PER_MINUTE": "0",
                        "SMSGATE_FLOOD_REPLIES_PER_HOUR": "0",
                    }
                    command = [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
                    with server(command, env, port, folder / f"serve-{mode}-{round_}.log") as live:
                        warm = wrk(live, warm_file, args.warmup, args.connections, cycle=False)
                        timed = wrk(live, timed_file, args.duration, args.connections, cycle=False)
                    answered += warm.ok + timed.ok
                    phases[mode].append(timed)
        with database.read() as session:
            stored = session.scalar(select(func.count()).select_from(Report)) or 0
        database.dispose()

    load = os.getloadavg()
    print(f"$ .venv/bin/python bench/durability.py {shlex.join(sys.argv[1:])}")
    print(
        f"SQLite in WAL mode on {kind} ({args.dir}); {args.senders:,} registered senders; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end; {os.cpu_count()} cores"
    )
    for mode in MODES:
        t = commits[mode]
        print(
            f"bare commits, synchronous={mode}: p50 {1000 * percentile(t, 50):.2f} ms, "
            f"p99 {1000 * percentile(t, 99):.2f} ms per commit ({len(t)} commits)"
        )
    added = percentile(commits["FULL"], 50) - percentile(commits["NORMAL"], 50)
    print(f"  FULL adds {1000 * added:.2f} ms per commit (p50)")
    rate = {}
    for mode in MODES:
        t = times[mode]
        rate[mode] = len(t) / sum(t)
        print(
            f"one at a time, in process, synchronous={mode}: {rate[mode]:,.0f} reports/s, "
            f"p50 {1000 * percentile(t, 50):.2f} ms, p99 {1000 * percentile(t, 99):.2f} ms ({len(t)} reports)"
        )
    print(f"  FULL costs {100 * (1 - rate['FULL'] / rate['NORMAL']):.0f}% of NORMAL's rate one at a time")
    ok = True
    if not args.no_server:
        median = {}
        for mode in MODES:
            runs = phases[mode]
            median[mode] = statistics.median(p.rate for p in runs)
            print(
                f"smsgate serve, 1 process, {args.connections} connections, synchronous={mode}: "
                f"median {median[mode]:,.0f} msgs/s over {len(runs)} runs "
                f"({', '.join(f'{p.rate:,.0f}' for p in runs)}; {sum(p.requests for p in runs):,} requests, "
                f"{sum(p.ok for p in runs):,} OK); p50 "
                f"{statistics.median(p.p50_ms for p in runs):.1f} ms, p99 "
                f"{statistics.median(p.p99_ms for p in runs):.1f} ms"
            )
        if median["NORMAL"]:
            print(f"  FULL costs {100 * (1 - median['FULL'] / median['NORMAL']):.0f}% of NORMAL's throughput")
        extra = 2 * args.connections * args.rounds * len(MODES)
        in_process_reports = args.reports
        ok = answered + in_process_reports <= stored <= answered + in_process_reports + extra
        errors = sum(p.errors + p.exhausted for runs in phases.values() for p in runs)
        ok = ok and errors == 0
        print(
            f"  reports stored {stored:,} for {answered + in_process_reports:,} answered OK "
            f"(up to {extra} in flight at phase ends): {'ok' if ok else 'MISMATCH'}"
            + (f"; socket errors or too few pre-signed messages: {errors}" if errors else "")
        )
    print("(times are noisy when the machine is shared; compare only figures from the same run)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
