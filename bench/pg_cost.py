"""What one report costs the PostgreSQL server: backend CPU, WAL, index records, HOT updates.

``bench/ingest.py`` measures the app's side of a report; this measures the database server's,
which the app cannot make cheaper by running less Python. Per code tree (this one and, with
``--against REV``, git revision ``REV`` exported to a temporary folder, alternating
``--rounds`` times so both share the same minutes) it makes a scratch PostgreSQL database with
a unique name (dropped afterwards), migrates it with that tree's migrations, sets up the real
Kalimantan Selatan tree with ``--senders`` registered volunteers (10 per TPS), sends
``--warmup`` reports, runs ``ANALYZE`` (what autovacuum would have done by then; this shared
server runs with autovacuum off), then times ``--reports`` reports through ``Ingest.receive``,
one at a time, default flood limits on, and prints per report:

- **backend CPU**: the time the scratch database's client backends ran on a CPU, read from
  ``/proc/<pid>/schedstat`` in nanoseconds (this bench must run on the database's machine);
- **WAL**: the bytes and records of the scratch database's transactions, read back from the WAL
  with ``pg_walinspect`` (records touching the database's relations, and the commit records of
  their transactions), so other databases on a shared server do not count (a temporary
  replication slot, gone with its session, keeps that WAL until it is read); full-page images
  (which follow checkpoints, not the code) apart; and the records by resource manager:
  ``Btree`` and ``Gin`` records are index entries written, ``Heap`` the rows;
- **HOT**: updates per report and how many were heap-only (no index entry written), per table,
  from ``pg_stat_user_tables``;
- **buffers** hit, read and dirtied, from ``pg_stat_database`` and ``pg_statio_user_tables``;
- then, over ``--explained`` more reports with ``auto_explain`` loaded in the session only
  (``LOAD``, messages sent to this client as notices; nothing in the server's configuration
  changes): each statement's server time, its triggers' time (foreign-key checks included),
  WAL and buffers, so the cost of every round trip is seen.

    .venv/bin/python bench/pg_cost.py --against main            # main against this tree
    .venv/bin/python bench/pg_cost.py --reports 500 --rounds 3

Needs a superuser on the server (``pg_walinspect``, ``LOAD 'auto_explain'``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
HOT_TABLES = ("inbound_messages", "reports", "station_results", "region_counters", "outbox_events")


def backend_cpu_ms(pids: list[int]) -> float:
    """CPU time of these processes so far, in milliseconds: the scheduler's own count of the
    nanoseconds they ran (``/proc/<pid>/schedstat``, first field), user and system alike. The
    user + system times of ``/proc/<pid>/stat`` are sampled at the clock tick (100 per second):
    600 reports of about a millisecond are some 80 ticks, so that count alone moved by a tenth
    from run to run."""
    total = 0
    for pid in pids:
        total += int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
    return total / 1e6


def snapshot(probe: Any) -> dict[str, Any]:
    """Cumulative statistics of the scratch database, read in a transaction of their own."""
    with probe.begin() as c:
        db = c.exec_driver_sql(
            "SELECT blks_hit, blks_read, tup_inserted, tup_updated FROM pg_stat_database"
            " WHERE datname = current_database()"
        ).one()
        tables = {
            r[0]: list(r[1:])
            for r in c.exec_driver_sql(
                "SELECT t.relname, t.n_tup_ins, t.n_tup_upd, t.n_tup_hot_upd, io.heap_blks_hit"
                " + io.heap_blks_read, coalesce(io.idx_blks_hit, 0) + coalesce(io.idx_blks_read, 0)"
                " FROM pg_stat_user_tables t JOIN pg_statio_user_tables io USING (relid)"
            )
        }
        pids = list(
            c.exec_driver_sql(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
            ).scalars()
        )
    return {"db": list(db), "tables": tables, "pids": pids}


def flush_stats(database: Any) -> None:
    """Make the app's backend publish its pending table statistics (PostgreSQL 15 holds them
    for up to a second): the next idle moment after this transaction flushes them."""
    with database.engine.connect() as c:
        c.exec_driver_sql("SELECT pg_stat_force_next_flush()")
        c.commit()
    with database.engine.connect() as c:  # one more transaction: its end is the flush
        c.exec_driver_sql("SELECT 1")
        c.commit()


def wal_of_database(probe: Any, start: str, end: str) -> dict[str, Any]:
    """The scratch database's WAL between two positions, by resource manager."""
    with probe.begin() as c:
        dboid = c.exec_driver_sql("SELECT oid FROM pg_database WHERE datname = current_database()").scalar()
        rows = c.exec_driver_sql(
            """
            WITH records AS (
                SELECT * FROM pg_get_wal_records_info(%(start)s::pg_lsn, %(end)s::pg_lsn)
            ), ours AS (
                SELECT * FROM records WHERE block_ref LIKE %(pattern)s
            ), xids AS (
                SELECT DISTINCT xid FROM ours WHERE xid <> '0'
            )
            SELECT resource_manager, count(*), sum(record_length), sum(fpi_length)
            FROM (SELECT * FROM ours
                  UNION ALL
                  SELECT r.* FROM records r JOIN xids USING (xid)
                  WHERE r.resource_manager = 'Transaction') AS mine
            GROUP BY resource_manager
            """,
            {"start": start, "end": end, "pattern": f"%/{dboid}/%"},
        ).all()
    return {r[0]: [int(r[1]), int(r[2]), int(r[3])] for r in rows}


def explained(database: Any, one: Any, count: int) -> dict[str, dict[str, float]]:
    """Per statement of the report path: mean server time, trigger time, WAL and buffers,
    from ``auto_explain`` loaded in the app's session only (its plans come back as notices)."""
    notes: list[str] = []
    settings = {
        "log_min_duration": "0",
        "log_analyze": "on",
        "log_buffers": "on",
        "log_wal": "on",
        "log_timing": "on",
        "log_triggers": "on",
        "log_format": "json",
        "log_level": "notice",
    }
    engine = database.engine
    pids = set()
    with engine.connect() as c:
        raw = c.connection.dbapi_connection
        pids.add(c.exec_driver_sql("SELECT pg_backend_pid()").scalar())
        raw.add_notice_handler(lambda d: notes.append(d.message_primary or ""))
        c.exec_driver_sql("LOAD 'auto_explain'")
        for key, value in settings.items():
            c.exec_driver_sql(f"SET auto_explain.{key} = '{value}'")
        c.commit()
    for _ in range(count):
        one()
    with engine.connect() as c:
        if c.exec_driver_sql("SELECT pg_backend_pid()").scalar() not in pids:
            raise SystemExit("the app changed connections while explaining")
        c.exec_driver_sql("RESET auto_explain.log_min_duration")  # -1: off again
        c.commit()
    sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for note in notes:
        match = re.match(r"duration: ([0-9.]+) ms\s+plan:\s*(\{.*\})\s*$", note, re.S)
        if not match:
            continue
        doc = json.loads(match.group(2))
        label = statement_label(doc.get("Query Text", ""))
        plan = doc["Plan"]
        entry = sums[label]
        entry["count"] += 1
        entry["ms"] += float(match.group(1))
        entry["trigger_ms"] += sum(t.get("Time", 0.0) for t in doc.get("Triggers", []))
        entry["wal_bytes"] += plan.get("WAL Bytes", 0)
        entry["wal_records"] += plan.get("WAL Records", 0)
        entry["hit"] += plan.get("Shared Hit Blocks", 0)
        entry["dirtied"] += plan.get("Shared Dirtied Blocks", 0)
        for trigger in doc.get("Triggers", []):
            entry[f"trigger: {trigger.get('Constraint Name') or trigger.get('Trigger Name')}"] += trigger.get(
                "Time", 0.0
            )
    return {label: {k: v / count for k, v in entry.items()} for label, entry in sums.items()}


def statement_label(query: str) -> str:
    """A short, stable name for a statement of the report path."""
    flat = " ".join(query.split())
    for pattern in (
        r"^(WITH \w+ AS \(INSERT INTO \w+)",
        r"^(INSERT INTO \w+)",
        r"^(UPDATE \w+)",
        r"^(DELETE FROM \w+)",
        r"^(SELECT set_config)",
        r"^SELECT .*? FROM (\w+ JOIN \w+).*FOR UPDATE",
        r"^SELECT .*? FROM (\w+)",
    ):
        match = re.match(pattern, flat)
        if match:
            return match.group(1)[:60]
    return flat[:60]


def measure_child(args: argparse.Namespace) -> dict[str, Any]:
    """Runs in a process whose ``sys.path`` starts with the code tree being measured."""
    from consensus import first_reports, scratch_database
    from sqlalchemy import create_engine

    import smsgate

    with scratch_database(args.postgresql) as (database, _kind):
        one = first_reports(database, args.senders, args.seed)
        url = database.engine.url.render_as_string(hide_password=False)

        null_pool = importlib.import_module("sqlalchemy.pool").NullPool
        probe = create_engine(url, poolclass=null_pool)
        admin = create_engine(args.postgresql, poolclass=null_pool)
        try:
            with probe.begin() as c:
                c.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
            for _ in range(args.warmup):
                one()
            with probe.begin() as c:
                c.exec_driver_sql("ANALYZE")
            one()  # the app's session sees the fresh statistics (its plans are re-made)
            flush_stats(database)
            # A temporary replication slot keeps the run's WAL from being recycled before it is
            # read back (a busy shared server checkpoints often); it goes with its session.
            keeper = admin.connect()  # another database: no backend of the measured one
            keeper.exec_driver_sql(
                f"SELECT pg_create_physical_replication_slot('pg_cost_{uuid.uuid4().hex[:12]}', true, true)"
            )
            keeper.commit()
            before = snapshot(probe)
            with probe.begin() as c:
                start = c.exec_driver_sql("SELECT pg_current_wal_flush_lsn()::text").scalar()
            cpu0 = backend_cpu_ms(before["pids"])
            for _ in range(args.reports):
                one()
            cpu1 = backend_cpu_ms(before["pids"])
            with probe.begin() as c:
                end = c.exec_driver_sql("SELECT pg_current_wal_flush_lsn()::text").scalar()
            flush_stats(database)
            after = snapshot(probe)
            if sorted(after["pids"]) != sorted(before["pids"]):
                raise SystemExit(
                    f"the app's backends changed during the run: {before['pids']} -> {after['pids']}"
                )
            wal = wal_of_database(probe, start, end)
            keeper.close()
            statements = explained(database, one, args.explained)
        finally:
            probe.dispose()
            admin.dispose()
    return {
        "code": str(Path(smsgate.__file__).resolve().parent.parent),
        "cpu_ms": cpu1 - cpu0,
        "backends": len(before["pids"]),
        "db": [b - a for a, b in zip(before["db"], after["db"], strict=True)],
        "tables": {
            name: [b - a for a, b in zip(before["tables"].get(name, [0] * 5), row, strict=True)]
            for name, row in after["tables"].items()
        },
        "wal": wal,
        "statements": statements,
    }


def run_child(code: Path, args: argparse.Namespace) -> dict[str, Any]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        str(code),
        "--postgresql",
        args.postgresql,
        "--senders",
        str(args.senders),
        "--reports",
        str(args.reports),
        "--warmup",
        str(args.warmup),
        "--explained",
        str(args.explained),
        "--seed",
        str(args.seed),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"measuring {code} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def summary(label: str, runs: list[dict[str, Any]], n: int) -> list[str]:
    """One table row per run of a tree: CPU, WAL, index records, HOT, buffers per report."""
    lines = []
    for r in runs:
        wal = r["wal"]
        total = sum(v[1] for v in wal.values())
        fpi = sum(v[2] for v in wal.values())
        records = sum(v[0] for v in wal.values())
        index_records = sum(wal.get(k, [0])[0] for k in ("Btree", "Gin"))
        upd = sum(r["tables"].get(t, [0, 0, 0])[1] for t in HOT_TABLES)
        hot = sum(r["tables"].get(t, [0, 0, 0])[2] for t in HOT_TABLES)
        hit, read = r["db"][0], r["db"][1]
        lines.append(
            f"| {label} | {r['cpu_ms'] / n:.2f} ms | {(total - fpi) / n:,.0f} B (+{fpi / n:,.0f} B FPI) "
            f"| {records / n:.1f} | {index_records / n:.1f} | {upd / n:.1f} / {hot / n:.1f} "
            f"| {hit / n:.0f} / {read / n:.1f} |"
        )
    return lines


def details(label: str, r: dict[str, Any], n: int) -> list[str]:
    lines = [f"{label}: per report, by table (inserts, updates, HOT updates, heap blocks, index blocks)"]
    for name in sorted(r["tables"]):
        row = r["tables"][name]
        if any(row[:3]):
            lines.append(
                f"    {name:24} ins {row[0] / n:5.2f}  upd {row[1] / n:5.2f}  hot {row[2] / n:5.2f}"
                f"  heap blks {row[3] / n:6.1f}  idx blks {row[4] / n:6.1f}"
            )
    lines.append(f"{label}: WAL per report by resource manager (records, bytes without / with FPI)")
    for rmgr, (count, size, fpi) in sorted(r["wal"].items(), key=lambda kv: -kv[1][1]):
        lines.append(f"    {rmgr:12} {count / n:6.2f} rec  {(size - fpi) / n:8,.0f} B  {size / n:8,.0f} B")
    lines.append(f"{label}: each statement (auto_explain), mean per report")
    for name, s in sorted(r["statements"].items(), key=lambda kv: -kv[1]["ms"]):
        lines.append(
            f"    {name:50} {s['count']:4.1f}x {s['ms']:6.3f} ms (triggers {s['trigger_ms']:6.3f})"
            f" WAL {s['wal_bytes']:6,.0f} B / {s['wal_records']:4.1f} rec, hit {s['hit']:5.1f}"
        )
        for key, value in sorted(s.items()):
            if key.startswith("trigger: ") and value >= 0.001:
                lines.append(f"        {key[9:]:46} {value:6.3f} ms")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--postgresql",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        help="server to make the scratch databases on (a superuser; this machine)",
    )
    parser.add_argument("--against", metavar="REV", help="also measure git revision REV, alternating")
    parser.add_argument("--rounds", type=int, default=2, help="alternations with --against")
    parser.add_argument("--senders", type=int, default=2000)
    parser.add_argument("--reports", type=int, default=600, help="reports measured per run")
    parser.add_argument("--warmup", type=int, default=400)
    parser.add_argument("--explained", type=int, default=40, help="reports run under auto_explain")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path[:0] = [args.child, str(HERE)]
        for package in ("grammar", "smsgate.config"):  # the measured tree's packages first
            importlib.import_module(package)
        print(json.dumps(measure_child(args)))
        return 0

    from ingest import export

    command = "bench/pg_cost.py " + shlex.join(sys.argv[1:])
    load_before = os.getloadavg()
    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-pg-cost-") as tmp:
        trees = [("this tree", HERE.parent)]
        if args.against:
            trees.insert(0, (args.against, export(args.against, Path(tmp))))
        for _ in range(args.rounds if args.against else 1):
            for label, code in trees:
                results.setdefault(label, []).append(run_child(code, args))
    load_after = os.getloadavg()
    n = args.reports
    print(f"$ .venv/bin/python {command}")
    print(
        "load average (1/5/15 min) before: {:.2f} {:.2f} {:.2f}, after: {:.2f} {:.2f} {:.2f}; "
        "{} cores".format(*load_before, *load_after, os.cpu_count())
    )
    print(
        f"{args.senders:,} registered senders (10 per TPS), default flood limits; {n} reports measured "
        f"after {args.warmup} warm-up, one at a time through Ingest.receive; per report:"
    )
    print(
        "| code | PostgreSQL backend CPU | WAL | WAL records | index records (Btree+Gin) "
        "| updates / HOT (hot tables) | buffers hit / read |"
    )
    print("|---|---|---|---|---|---|---|")
    for label, runs in results.items():
        print("\n".join(summary(label, runs, n)))
    for label, runs in results.items():
        cpu = [r["cpu_ms"] / n for r in runs]
        print(f"{label}: backend CPU per report, median of {len(cpu)} runs: {statistics.median(cpu):.2f} ms")
    for label, runs in results.items():
        print("\n".join(details(label, runs[-1], n)))
    print("(backend CPU is the server's only, the scheduler's count from /proc/<pid>/schedstat)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
