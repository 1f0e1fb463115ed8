"""``smsgate simulate`` against ``smsgate serve`` on a given database; prints figures and commands.

    .venv/bin/python bench/simulate.py --database sqlite:////tmp/bench-sim.db
    .venv/bin/python bench/simulate.py --database postgresql+psycopg://postgres@127.0.0.1:5432/bench_sim

The database must be empty or scratch: it is migrated and filled with the demo's Kalimantan
Selatan set-up (13,746 stations, ~19k volunteers; SQLite files are deleted first). The server
runs with ``--workers`` gunicorn workers; the simulator sends ``--messages`` at ``--rate``.
Bounded: the simulation stops after 2 x messages/rate + 60 s at most.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

from smsgate import demo
from smsgate.db import Database
from smsgate.schema import upgrade
from smsgate.server import default_workers
from smsgate.simulate import roster_from_database, run


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", required=True)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, help="default as smsgate serve: 1 on SQLite, 2/core on PG")
    parser.add_argument("--region", default="63")
    args = parser.parse_args()

    url = args.database
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            stale.unlink(missing_ok=True)
    workers = args.workers or default_workers(url)
    folder = Path("/tmp/smsgate-bench-simulate")
    folder.mkdir(exist_ok=True)
    options = demo.Options(folder=folder, port=0, region=args.region, workers=workers, keep_running=False)
    state = demo.Demo(options=options, database_url=url, database=Database.from_url(url))
    began = time.monotonic()
    upgrade(state.db.engine)
    for step in (demo.load_regions, demo.load_candidates, demo.create_stations, demo.create_people):
        step(state)
    print(f"set-up {time.monotonic() - began:.1f} s")
    try:
        demo.start_server(state)
        summary = run(
            state.url,
            state.auth_token,
            roster_from_database(state.db),
            messages=args.messages,
            rate=args.rate,
            concurrency=args.concurrency,
            database=state.db,
        )
    finally:
        demo.stop_server(state)
        state.db.dispose()
    print(summary.format())
    figures = {
        "database": state.db.engine.dialect.name,
        "workers": workers,
        "sent": summary.sent,
        "msgs_per_s": round(summary.throughput, 1),
        "p50_ms": round(1000 * summary.percentile(50), 1),
        "p99_ms": round(1000 * summary.percentile(99), 1),
        "reports_stored": summary.reports_stored,
        "report_messages_accepted": summary.accepted_report_messages,
        "non_200": summary.non_200,
    }
    print("figures:", figures)
    print(f"machine: {platform.platform()}, {os.cpu_count()} cpu, python {platform.python_version()}")
    print("command:", " ".join([Path(sys.executable).name, *sys.argv]))


if __name__ == "__main__":
    main()
