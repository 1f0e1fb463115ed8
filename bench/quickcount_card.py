"""The dashboard's quick-count card while sampled results change: CPU and recomputations.

``--workers`` processes (as ``smsgate serve``'s workers) each ask for the card of ``--region``
(default: the country) ``--rate`` times a second for ``--seconds``, while a changer process
touches one sampled station's result every ``--every`` seconds (``UPDATE station_results SET
updated_at = now()``: the database logs it as it logs an SMS's change, and the station moves to
the end of the night). Each mode runs in turn on the same database:

- ``process``: ``quickcount.service.card``, each process computing and caching its own card (the
  design before the stored card; with an older checkout this is all there is);
- ``stored``: ``quickcount.stored.card``, one process computing for all, at most once per
  ``--interval`` seconds (``SMSGATE_QUICKCOUNT_CARD_SECONDS``).

Prints, per mode: the workers' CPU seconds (user + system, whatever else runs on the machine),
the card's recomputations (statements that load the sample, counted in each worker), and the
latency of a card request (p50 / p95 / max). It writes to the database (the changer's updates
and, in ``stored`` mode, the stored cards): use a copy of a national data set.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shlex
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from sqlalchemy import Engine, event, text  # noqa: E402

from smsgate.db import Database  # noqa: E402
from smsgate.models import utcnow  # noqa: E402
from smsgate.quickcount import service  # noqa: E402


def worker(
    url: str, mode: str, region: str | None, rate: float, seconds: float, interval: float, out: Any
) -> None:
    """Ask for the card ``rate`` times a second; send back CPU seconds, loads, latencies."""
    loads = [0]

    def count(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if "JOIN previous_results" in statement:
            loads[0] += 1

    event.listen(Engine, "before_cursor_execute", count)
    database = Database.from_url(url)
    if mode == "stored":
        from smsgate.quickcount import stored
    latencies: list[float] = []
    start = time.monotonic()
    cpu0 = time.process_time()
    k = 0
    while (due := start + k / rate) < start + seconds:
        time.sleep(max(0.0, due - time.monotonic()))
        sent = time.perf_counter()
        with database.read() as session:
            if mode == "stored":
                stored.card(database, session, region, interval=interval, now=utcnow())
            else:
                service.card(session, region)
        latencies.append(time.perf_counter() - sent)
        k += 1
    out.put((time.process_time() - cpu0, loads[0], latencies))
    database.dispose()


def changer(url: str, every: float, seconds: float) -> None:
    """Touch one sampled station's result every ``every`` seconds, a different one each time."""
    database = Database.from_url(url)
    with database.read() as session:
        stations = list(
            session.scalars(
                text(
                    "SELECT r.station_id FROM station_results r JOIN sample_stations s "
                    "ON s.station_id = r.station_id JOIN sample_designs d ON d.id = s.design_id "
                    "WHERE d.active ORDER BY r.station_id"
                )
            )
        )
    start = time.monotonic()
    k = 0
    while (due := start + every * (k + 0.5)) < start + seconds:
        time.sleep(max(0.0, due - time.monotonic()))
        with database.begin() as session:
            session.execute(
                text("UPDATE station_results SET updated_at = now() WHERE station_id = :s"),
                {"s": stations[(k * 7919) % len(stations)]},
            )
        k += 1
    database.dispose()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def run(args: argparse.Namespace, mode: str) -> None:
    out: multiprocessing.Queue[tuple[float, int, list[float]]] = multiprocessing.Queue()
    procs = [
        multiprocessing.Process(
            target=worker, args=(args.url, mode, args.region, args.rate, args.seconds, args.interval, out)
        )
        for _ in range(args.workers)
    ]
    touch = multiprocessing.Process(target=changer, args=(args.url, args.every, args.seconds))
    load0 = Path("/proc/loadavg").read_text().split()[:3]
    for proc in [*procs, touch]:
        proc.start()
    results = [out.get() for _ in procs]
    for proc in [*procs, touch]:
        proc.join()
    cpu = sum(r[0] for r in results)
    loads = sum(r[1] for r in results)
    latencies = [x for r in results for x in r[2]]
    changes = int(args.seconds / args.every)
    load1 = Path("/proc/loadavg").read_text().split()[:3]
    print(
        f"  {mode:8} workers' CPU {cpu:6.1f} s ({cpu / args.seconds:.2f} core), "
        f"{loads} recomputations for {changes} changes, {len(latencies)} cards: "
        f"p50 {1000 * percentile(latencies, 0.5):.1f} ms, p95 {1000 * percentile(latencies, 0.95):.1f} ms, "
        f"max {1000 * max(latencies):.0f} ms; load average {' '.join(load0)} -> {' '.join(load1)}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="a (copy of a) national data set, migrated")
    parser.add_argument("--region", default=None, help="region code (default: the country)")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rate", type=float, default=2.0, help="card requests per second per worker")
    parser.add_argument("--every", type=float, default=2.0, help="seconds between sampled result changes")
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument(
        "--interval", type=float, default=10.0, help="stored mode: SMSGATE_QUICKCOUNT_CARD_SECONDS"
    )
    parser.add_argument("--modes", default="process,stored", help="comma-separated: process, stored")
    args = parser.parse_args()
    print("command:", " ".join(shlex.quote(a) for a in [".venv/bin/python", *sys.argv]))
    print(
        f"{args.workers} workers x {args.rate:g} cards/s for {args.seconds:g} s, a sampled result changed "
        f"every {args.every:g} s, region {args.region or 'the country'}"
    )
    for mode in args.modes.split(","):
        run(args, mode.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
