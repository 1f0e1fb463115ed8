"""The cost of one report inside the core: ``Ingest.receive`` in process, one message at a time.

The served path is the web layer plus this; this bench isolates the core (logging the SMS,
flood control, parsing, the station, the checks, the report, the result, the counters, the
events, the reply) so its CPU is measured without HTTP in the way. Per database (a scratch
PostgreSQL database with a unique name, dropped afterwards; a temporary SQLite file) it sets up
the real Kalimantan Selatan tree, ``--senders`` registered volunteers (10 per TPS), and sends
each a valid report, default flood limits on. With ``--corrections`` every volunteer's first
report is sent untimed first, and the reports measured are corrections (each volunteer sends a
new count, one more for candidate 01, in the same shuffled turn) at stations that have their
ten reports: the traffic of ``bench/webhook.py`` after its first lap. Then it prints per report:

- **CPU**: ``time.process_time`` of this process (the app's Python, SQLAlchemy and the driver;
  not the database server's), median and mean over ``--reports`` reports after ``--warmup``;
- **wall** time (includes waiting for the database, and for the CPU on a shared machine);
- **Python calls** (cProfile's count over ``--profiled`` further reports), **statements**
  (every statement, ``BEGIN`` and ``COMMIT``; over ``--counted`` further reports: the most,
  the mean, and the statements of the first report that sent the most) and, on PostgreSQL,
  **waits for the server** (the times the client waited for an answer, in one more report: one
  per statement while each is sent alone) per report;
- with ``--top N``: the N functions with the most cumulative time in that profile.

``--against REV`` measures the code of git revision ``REV`` too (its tree exported to a
temporary folder, each code base in a process of its own), alternating ``--rounds`` times, so
before and after share the same minutes and load. The load average is printed beside the figures.

    .venv/bin/python bench/ingest.py                                  # this tree, both databases
    .venv/bin/python bench/ingest.py --against main --no-sqlite       # before/after on PostgreSQL
    .venv/bin/python bench/ingest.py --no-sqlite --top 25             # where the time goes
    .venv/bin/python bench/ingest.py --against main --corrections     # corrections, before/after
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import io
import json
import os
import pstats
import shlex
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def measure_child(args: argparse.Namespace) -> dict[str, Any]:
    """Runs in a process whose ``sys.path`` starts with the code tree being measured."""
    from consensus import first_reports, scratch_database
    from round_trips import count_network_waits, count_round_trips

    import smsgate

    url = None if args.database == "sqlite" else args.postgresql
    with scratch_database(url) as (database, _kind):
        # Default flood limits; with --corrections the first lap is sent (untimed) first.
        one = first_reports(database, args.senders, args.seed, corrections=args.corrections)
        for _ in range(args.warmup):
            one()
        cpu, wall = [], []
        for _ in range(args.reports):
            c0, w0 = time.process_time(), time.perf_counter()
            one()
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
        # The most statements one of --counted reports sent, and that report's statements.
        counted = [count_round_trips(database.engine, one)[1] for _ in range(args.counted)]
        trips = max(counted, key=len)
        waits = count_network_waits(database.engine, one) if url is not None else None
        profile = cProfile.Profile(time.process_time)  # CPU, not waiting for the server
        profile.enable()
        for _ in range(args.profiled):
            one()
        profile.disable()
        stats = pstats.Stats(profile)
        top = ""
        if args.top:
            out = io.StringIO()
            for order in ("cumulative", "tottime"):
                pstats.Stats(profile, stream=out).sort_stats(order).print_stats(args.top)
            top = out.getvalue()
    return {
        "code": str(Path(smsgate.__file__).resolve().parent.parent),
        "cpu_ms": [c * 1000 for c in cpu],
        "wall_ms": [w * 1000 for w in wall],
        "calls": stats.total_calls / args.profiled,  # type: ignore[attr-defined]
        "round_trips": trips,
        "waits": waits,
        "round_trips_counts": [len(c) for c in counted],
        "top": top,
    }


def export(rev: str, folder: Path) -> Path:
    """The tree of git revision ``rev`` as plain files under ``folder``."""
    root = HERE.parent
    archive = subprocess.run(["git", "-C", str(root), "archive", rev], capture_output=True, check=True).stdout
    target = folder / rev.replace("/", "_")
    target.mkdir()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target


def run_child(code: Path, database: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        str(code),
        "--database",
        database,
        "--postgresql",
        args.postgresql,
        "--senders",
        str(args.senders),
        "--reports",
        str(args.reports),
        "--warmup",
        str(args.warmup),
        "--profiled",
        str(args.profiled),
        "--top",
        str(args.top),
        "--seed",
        str(args.seed),
        "--counted",
        str(args.counted),
    ] + (["--corrections"] if args.corrections else [])
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"measuring {code} on {database} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--postgresql",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        help="server to make the scratch database on",
    )
    parser.add_argument("--no-postgresql", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--against", metavar="REV", help="also measure git revision REV, alternating")
    parser.add_argument("--rounds", type=int, default=2, help="alternations with --against")
    parser.add_argument("--senders", type=int, default=2000)
    parser.add_argument("--reports", type=int, default=300, help="reports timed per measurement")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument(
        "--profiled", type=int, default=50, help="reports run under cProfile for the call count"
    )
    parser.add_argument(
        "--top", type=int, default=0, help="print the N most expensive functions (cumulative)"
    )
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument(
        "--counted", type=int, default=20, help="reports whose statements are counted (the most is shown)"
    )
    parser.add_argument(
        "--corrections",
        action="store_true",
        help="measure corrections at stations with their ten reports (bench/webhook.py's traffic), "
        "not first reports",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path[:0] = [args.child, str(HERE)]
        # The measured tree's packages first: bench/consensus.py puts this tree on sys.path.
        for package in ("grammar", "smsgate.config"):
            importlib.import_module(package)
        print(json.dumps(measure_child(args)))
        return 0

    command = "bench/ingest.py " + shlex.join(sys.argv[1:])
    databases = [d for d, off in (("postgresql", args.no_postgresql), ("sqlite", args.no_sqlite)) if not off]
    load_before = os.getloadavg()
    rows: list[tuple[str, str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        trees = [("this tree", HERE.parent)]
        if args.against:
            trees.insert(0, (args.against, export(args.against, Path(tmp))))
        rounds = args.rounds if args.against else 1
        for _ in range(rounds):
            for database in databases:
                for label, code in trees:
                    rows.append((label, database, run_child(code, database, args)))
    load_after = os.getloadavg()
    print(f"$ .venv/bin/python {command}")
    print(
        "load average (1/5/15 min) before: {:.2f} {:.2f} {:.2f}, after: {:.2f} {:.2f} {:.2f}; "
        "{} cores".format(*load_before, *load_after, os.cpu_count())
    )
    shape = (
        "corrections (every sender's first report sent untimed before)"
        if args.corrections
        else "first reports"
    )
    print(
        f"{args.senders:,} registered senders, default flood limits; {args.reports} {shape} timed after "
        f"{args.warmup} warm-up, {args.profiled} under cProfile; one at a time through Ingest.receive"
    )
    print(
        "| code | database | CPU per report (median / mean) | wall per report (median) "
        "| Python calls per report | statements (most; mean) | waits for the server |"
    )
    print("|---|---|---|---|---|---|---|")
    for label, database, r in rows:
        print(
            f"| {label} | {database} | {statistics.median(r['cpu_ms']):.2f} / "
            f"{statistics.mean(r['cpu_ms']):.2f} ms "
            f"| {statistics.median(r['wall_ms']):.2f} ms | {r['calls']:,.0f} "
            f"| {len(r['round_trips'])}; {statistics.mean(r['round_trips_counts']):.1f} "
            f"| {'-' if r['waits'] is None else r['waits']} |"
        )
    seen = set()
    for label, database, r in rows:
        if (r["code"] == str(HERE.parent.resolve())) != (label == "this tree"):
            raise SystemExit(f"{label} ran the code in {r['code']}")
        if (label, database) in seen:
            continue
        seen.add((label, database))
        print(f"statements of the report with the most of {args.counted}, {label}, {database}:")
        for statement in r["round_trips"]:
            print(f"    {statement}")
        if r["top"]:
            print(r["top"])
    print("(CPU is this process's only, not the database server's; times are noisy on a shared machine)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
