"""What one migration costs a live PostgreSQL database at national scale: statement by statement,
its time and the locks it holds, and how long a report's writes wait behind it.

Builds ``bench/tally.py``'s national data set (823,220 stations, ~2.1 million reports with
their inbound messages, the station results and region counters) on a scratch database through
the real migrations, runs ``--revision``'s ``downgrade()`` and ``ANALYZE`` so the database stands
as it did before that revision, then runs its ``upgrade()`` in one transaction, as
``smsgate init`` does (``smsgate.schema.upgrade``: every pending migration in one transaction,
so every lock a migration takes is held until the last one commits). Meanwhile a probe
connection does, every 50 ms, what each report does to the tables at stake (inserts its raw
SMS into ``inbound_messages``, updates its station's ``station_results`` row, inserts a
``reports`` row), each probe in a transaction rolled back, and records how long each waited.
Printed: each statement's time and the table locks the migration's transaction holds after it,
the migration's total, and the probes' longest wait.

    .venv/bin/python bench/migration_locks.py --revision 2021 [--stations 823220] [--keep]

The scratch database is dropped at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tally as tally_bench
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event
from sqlalchemy.engine import make_url

from smsgate.db import Database
from smsgate.schema import alembic_config

LOCKS = """
SELECT c.relname, string_agg(l.mode, ', ' ORDER BY l.mode)
FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
WHERE l.pid = pg_backend_pid() AND l.granted AND c.relkind IN ('r', 'p') AND c.relname IN
      ('reports', 'inbound_messages', 'station_results', 'region_counters', 'stations', 'contacts')
GROUP BY c.relname ORDER BY c.relname
"""

#: A report's writes to the tables at stake: its raw SMS, its station's result, the report.
MESSAGE = (
    "INSERT INTO inbound_messages (provider, provider_message_id, from_number, to_number, body, "
    "received_at, contact_id, outcome) "
    "VALUES ('probe', %(sid)s, '+6289000000001', '', 'TPS 001', now(), 1, 'accepted') RETURNING id"
)
RESULT = "UPDATE station_results SET updated_at = now() WHERE station_id = %(station)s"
REPORT = (
    "INSERT INTO reports (ref, station_id, contact_id, inbound_message_id, votes, invalid, "
    "by_coordinator, flagged, outvoted, created_at) "
    "VALUES (%(sid)s, %(station)s, 1, %(message)s, '{}', 0, false, false, false, now())"
)


def probe(url: str, station: str, stop: threading.Event, waits: list[tuple[float, float]]) -> None:
    """A report's three writes every 50 ms, each transaction rolled back: (start, seconds)."""
    import psycopg

    with psycopg.connect(url) as connection:
        i = 0
        while not stop.is_set():
            start = time.perf_counter()
            with connection.transaction(force_rollback=True):
                values: dict[str, Any] = {"sid": f"probe-{i}", "station": station}
                row = connection.execute(MESSAGE, values).fetchone()
                assert row is not None
                connection.execute(RESULT, values)
                connection.execute(REPORT, {**values, "message": row[0]})
            waits.append((start, time.perf_counter() - start))
            i += 1
            time.sleep(0.05)


def migrate(database: Database, module: Any, step: str) -> list[tuple[str, float, str]]:
    """``module.<step>()`` in one transaction: each statement's start, seconds and the locks
    held after it."""
    timings: list[tuple[str, float, str]] = []
    started: list[float] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        started.append(time.perf_counter())

    def after(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seconds = time.perf_counter() - started.pop()
        if statement.lstrip().startswith("SELECT c.relname"):
            return
        locks = "; ".join(f"{r} {m}" for r, m in conn.exec_driver_sql(LOCKS))
        timings.append((" ".join(statement.split())[:90], seconds, locks))

    with database.engine.begin() as connection:
        event.listen(connection, "before_cursor_execute", before)
        event.listen(connection, "after_cursor_execute", after)
        with Operations.context(MigrationContext.configure(connection)):
            getattr(module, step)()
        event.remove(connection, "before_cursor_execute", before)
        event.remove(connection, "after_cursor_execute", after)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--revision", required=True, help="the migration to measure, e.g. 2021")
    parser.add_argument("--stations", type=int, default=tally_bench.NATIONAL_STATIONS)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    print("command:", " ".join(shlex.quote(a) for a in [".venv/bin/python", *sys.argv]))
    print("load average (1/5/15 min) before: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))

    base = make_url(args.url)
    name = f"smsgate_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = base.set(database=name).render_as_string(hide_password=False)
    database = Database.from_url(url)
    try:
        print(f"build: scratch database {name}")
        tally_bench.build(database, args.stations)
        script = ScriptDirectory.from_config(alembic_config(url))
        module = script.get_revision(args.revision).module
        with tally_bench.phase(f"{args.revision} downgrade(), then ANALYZE"):
            migrate(database, module, "downgrade")
            with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.exec_driver_sql("ANALYZE")
        with database.engine.connect() as connection:
            station = connection.exec_driver_sql("SELECT min(station_id) FROM station_results").scalar()
        dsn = base.set(database=name, drivername="postgresql").render_as_string(hide_password=False)
        stop, waits = threading.Event(), []
        thread = threading.Thread(target=probe, args=(dsn, station, stop, waits))
        thread.start()
        time.sleep(1)
        begun = time.perf_counter()
        timings = migrate(database, module, "upgrade")
        total = time.perf_counter() - begun
        time.sleep(1)
        stop.set()
        thread.join()
        print(f"{args.revision} upgrade(), one transaction, {total:.1f} s:")
        for statement, seconds, locks in timings:
            print(f"  {seconds:7.2f} s  {statement}")
            print(f"             holding: {locks or '-'}")
        during = [w for s, w in waits if s + w >= begun and s <= begun + total]
        print(
            f"probe (a report's three writes, every 50 ms): {len(waits)} probes, {len(during)} during "
            f"the migration; longest wait {max(w for _, w in waits):.2f} s"
        )
    finally:
        database.dispose()
        if args.keep:
            print(f"kept database: {url}")
        else:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            print(f"dropped {name}")
        admin.dispose()
    print("load average (1/5/15 min) after: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
