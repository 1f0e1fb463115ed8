"""The dashboard at national scale: every page, the exports, and 200 dashboards refreshing at once
while SMS keep arriving.

Builds (or reuses) a national data set on a scratch PostgreSQL database with ``bench/tally.py``'s
builder — the whole Kemendagri tree, 823,220 stations, ~2.1 million reports with their inbound
messages, results and counters — and adds what the pages show: volunteers assigned to stations,
open flags on disputed stations, incidents, outbound replies, a quick-count sample, the night moved
to the last hours so the activity chart has data, and dashboard accounts (an admin and coordinators
of a province, a kabupaten/kota and a kecamatan). Then it runs the real ``smsgate serve`` (its
default workers) with one ``smsgate worker`` next to it (which recomputes the dashboard's
quick-count cards) and measures, through HTTP with logged-in sessions:

1. every interactive page at every region level, for the admin and for a coordinator
   (``--samples`` sequential requests each): p50/p95/max; target p95 < 300 ms;
2. the results CSV for a province and for the country: time and the server's memory growth;
   targets < 2 s and < 15 s, memory flat (< 64 MB growth);
3. SMS alone: ``smsgate simulate`` at ``--sms-rate`` for ``--seconds`` (the baseline reply p99);
4. the same SMS load while ``--dashboards`` open dashboards refresh every ``--refresh`` seconds
   (overview JSON at the scope of one of the accounts): refresh p95 < 300 ms, SMS reply p99 within
   2x the baseline, and the machine's CPU use during the run.

It prints the command, the figures and the targets, and exits 1 when a target is missed.

    .venv/bin/python bench/dashboard.py [--url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
        [--stations 823220] [--reuse DATABASE_URL] [--keep] [--dashboards 200] [--refresh 5]
        [--sms-rate 50] [--seconds 60] [--samples 20] [--build-only]

``--keep`` leaves the scratch database (and prints its URL) so that ``--reuse URL`` can skip the
build next time (``--build-only`` builds, keeps and stops); without it the database is dropped at
the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import tally as tally_bench  # noqa: E402  (bench/tally.py: the national data set)
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from smsgate.db import Database  # noqa: E402

SMSGATE = str(Path(sys.executable).with_name("smsgate"))
TOKEN = "bench-twilio-token"
PASSWORD = "bench-dashboard-password"
PAGE_TARGET = 0.300
CSV_TARGETS = {"province": 2.0, "country": 15.0}
CSV_MEMORY_MB = 64


# -- the data set ----------------------------------------------------------------------------------

EXTRAS_SQL = [
    # The pool of volunteers spread over the whole country, each assigned to a station.
    """
    UPDATE contacts c SET region_code = s.region_code, tps = s.tps
    FROM (SELECT region_code, tps, row_number() OVER (ORDER BY id) AS rn FROM stations) s,
         (SELECT greatest(1, (SELECT count(*) FROM stations) / (SELECT count(*) FROM contacts)) AS step) k
    WHERE s.rn = 1 + (c.id - 1) * k.step
    """,
    # An open flag on every disputed station, as the checks would raise it.
    """
    INSERT INTO flags (station_id, kind, reason, created_at)
    SELECT station_id, 'disputed', 'laporan berbeda', now() FROM station_results WHERE status = 'disputed'
    """,
    # An incident for one report in a thousand.
    """
    INSERT INTO incidents (ref, place_key, station_id, region_code, contact_id, inbound_message_id, text,
                           created_at)
    SELECT 'I' || upper(to_hex(r.id)), r.station_id, r.station_id, NULL, r.contact_id, r.inbound_message_id,
           'Formulir C.Hasil tidak ditempel', r.created_at
    FROM reports r WHERE r.id % 1000 = 1
    """,
    # A reply for one inbound message in four.
    """
    INSERT INTO outbound_messages (to_number, text, provider, kind, status, attempts, next_attempt_at,
                                   contact_id, inbound_message_id, created_at, sent_at)
    SELECT m.from_number, 'OK TPS ' || right(r.station_id, 3) || ' diterima. Ref ' || r.ref, 'android',
           'reply', 'sent', 1, m.received_at, m.contact_id, m.id, m.received_at, m.received_at
    FROM inbound_messages m JOIN reports r ON r.inbound_message_id = m.id WHERE m.id % 4 = 0
    """,
    # The night ends now: reports, messages and incidents moved so the last one is a minute ago.
    """
    CREATE UNLOGGED TABLE bench_shift AS
    SELECT now() - interval '1 minute' - max(created_at) AS delta FROM reports
    """,
    "UPDATE reports SET created_at = created_at + (SELECT delta FROM bench_shift)",
    "UPDATE inbound_messages SET received_at = received_at + (SELECT delta FROM bench_shift)",
    "UPDATE outbound_messages SET created_at = created_at + (SELECT delta FROM bench_shift), "
    "sent_at = sent_at + (SELECT delta FROM bench_shift)",
    "UPDATE incidents SET created_at = created_at + (SELECT delta FROM bench_shift)",
    "DROP TABLE bench_shift",
]


def add_extras(database: Database) -> None:
    with tally_bench.phase("volunteers, flags, incidents, replies, the night moved to now"):
        tally_bench.execute(database, *EXTRAS_SQL)
        with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")


def scopes(database: Database) -> dict[str, str]:
    """A province, a kabupaten/kota and a kecamatan in the middle of the country."""
    with database.read() as session:
        middle = session.scalar(
            text("SELECT id FROM stations ORDER BY id OFFSET (SELECT count(*) / 2 FROM stations) LIMIT 1")
        )
    return {
        "province": middle[:2],
        "kabkota": f"{middle[:2]}.{middle[2:4]}",
        "kecamatan": f"{middle[:2]}.{middle[2:4]}.{middle[4:6]}",
        "desa": f"{middle[:2]}.{middle[2:4]}.{middle[4:6]}.{middle[6:10]}",
        "station": middle,
    }


def cli(url: str, *args: str, stdin: str | None = None, check: bool = True) -> str:
    env = {**os.environ, "SMSGATE_DATABASE_URL": url}
    done = subprocess.run(
        [SMSGATE, *args], input=stdin, capture_output=True, text=True, env=env, timeout=900, check=False
    )
    if check and done.returncode != 0:
        raise SystemExit(f"smsgate {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def account_scopes(where: dict[str, str]) -> dict[str, tuple[str, str | None]]:
    """email -> (role, scope): an admin and coordinators of a province, kabupaten and kecamatan."""
    return {
        "admin@bench.local": ("admin", None),
        "provinsi@bench.local": ("coordinator", where["province"]),
        "kabkota@bench.local": ("coordinator", where["kabkota"]),
        "kecamatan@bench.local": ("coordinator", where["kecamatan"]),
    }


def accounts(url: str, where: dict[str, str]) -> dict[str, tuple[str, str | None]]:
    """Create the dashboard accounts the bench logs in with; email -> (role, scope)."""
    made = account_scopes(where)
    for email, (role, region) in made.items():
        args = ["user", "create", "--email", email, "--role", role, "--password-stdin"]
        cli(url, *args, *(["--region", region] if region else []), stdin=PASSWORD + "\n")
    return made


# -- the server --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(url: str, base: str) -> dict[str, str]:
    """What ``serve`` and ``worker`` are started with: the same deployment. No gateway fleet
    and no tally destination are configured, so the worker's outbound and outbox jobs find
    nothing to do (the data set's outbound replies are all sent) and it runs only the
    quick-count card job, as a deployment's worker does for the dashboard."""
    return {
        **os.environ,
        "SMSGATE_DATABASE_URL": url,
        "SMSGATE_PUBLIC_URL": base,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "SMSGATE_SECRET_KEY": "bench-secret-key-" + uuid.uuid4().hex,
    }


def stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


@contextmanager
def server(url: str, log: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], subprocess.Popen[bytes]]]:
    """``smsgate serve`` (default workers) and one ``smsgate worker`` next to it, as deployed:
    the worker recomputes the dashboard's due quick-count cards (``quickcount.card_job``)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = server_env(url, base)
    worker_log = log.with_suffix(".worker.log")
    with log.open("wb") as out, worker_log.open("wb") as worker_out:
        proc = subprocess.Popen(
            [SMSGATE, "serve", "--host", "127.0.0.1", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
        worker = subprocess.Popen(
            [SMSGATE, "worker"], stdout=worker_out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                if proc.poll() is not None:
                    raise SystemExit(f"smsgate serve exited: see {log}")
                time.sleep(0.5)
            else:
                raise SystemExit(f"smsgate serve did not answer /healthz within 60 s: see {log}")
            if worker.poll() is not None:
                raise SystemExit(f"smsgate worker exited: see {worker_log}")
            yield base, proc, worker
        finally:
            stop(worker)
            stop(proc)


def server_pids(proc: subprocess.Popen[bytes]) -> list[int]:
    """The server and its worker processes."""
    pids = [proc.pid]
    for pid in list(pids):
        for children in Path(f"/proc/{pid}/task").glob("*/children"):
            pids += [int(p) for p in children.read_text().split()]
    return pids


def server_cpu_seconds(proc: subprocess.Popen[bytes]) -> float:
    """CPU time (user + system) the server and its workers have used so far: what the server
    costs whatever else runs on the machine (wall-clock latencies depend on that)."""
    ticks = 0
    for pid in server_pids(proc):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


def server_rss_mb(proc: subprocess.Popen[bytes]) -> float:
    """Resident memory of the server and its workers, in MB."""
    total = 0
    for pid in server_pids(proc):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        total += int(match.group(1)) if match else 0
    return total / 1024


def login(base: str, email: str) -> str:
    """Log in through the form (CSRF token and all) and return the session cookie."""
    with requests.Session() as browser:
        page = browser.get(f"{base}/dashboard/login", timeout=30).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        form = {"email": email, "password": PASSWORD, "csrf_token": token.group(1) if token else ""}
        answer = browser.post(f"{base}/dashboard/login", data=form, allow_redirects=False, timeout=30)
        if answer.status_code != 302:
            raise SystemExit(f"login as {email} failed: {answer.status_code}")
        return "; ".join(f"{c.name}={c.value}" for c in browser.cookies)


# -- measuring ---------------------------------------------------------------------------------------


def load() -> str:
    """The machine's load average (1, 5, 15 min), printed beside every part's figures: the
    machine may be shared, and its figures mean little without it."""
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def figures(samples: list[float]) -> str:
    return (
        f"p50 {percentile(samples, 0.5) * 1000:7.1f} ms  p95 {percentile(samples, 0.95) * 1000:7.1f} ms  "
        f"max {max(samples) * 1000:7.1f} ms  (n={len(samples)})"
    )


def pages(where: dict[str, str], scope: str | None) -> dict[str, str]:
    """The interactive pages, by name, for a user whose scope is ``scope`` (None: the country)."""
    levels = [("country", None), ("province", where["province"]), ("kabkota", where["kabkota"]),
              ("kecamatan", where["kecamatan"]), ("desa", where["desa"])]  # fmt: skip
    out: dict[str, str] = {}
    for level, code in levels:
        if scope and (code is None or not code.startswith(scope)):
            continue
        query = f"?region={code}" if code else ""
        out[f"overview {level}"] = f"/dashboard/{query}"
        out[f"overview json {level}"] = f"/dashboard/api/overview{query}"
        out[f"region {level}"] = f"/dashboard/regions/{code or ''}"
    out["station"] = f"/dashboard/stations/{where['station']}"
    out["review"] = "/dashboard/review"
    out["messages"] = "/dashboard/messages"
    out["messages search text"] = "/dashboard/messages?q=TPS+012"
    # What a coordinator types (dashboard.phone_search): a volunteer's number as written
    # locally (the data set's volunteers are +62890 and 8 digits), and the last digits of one.
    out["messages search phone"] = "/dashboard/messages?phone=0890-0008-9000"
    out["messages search phone end"] = "/dashboard/messages?phone=89000"
    out["volunteers"] = "/dashboard/volunteers"
    out["incidents"] = "/dashboard/incidents"
    return out


def time_pages(base: str, cookie: str, paths: dict[str, str], samples: int) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {name: [] for name in paths}
    with requests.Session() as http:
        headers = {"Cookie": cookie}
        for path in paths.values():  # warm-up: one of each
            answer = http.get(base + path, headers=headers, timeout=120)
            if answer.status_code != 200:
                raise SystemExit(f"{path}: {answer.status_code}")
        for _ in range(samples):
            for name, path in paths.items():
                start = time.perf_counter()
                answer = http.get(base + path, headers=headers, timeout=120)
                timings[name].append(time.perf_counter() - start)
                assert answer.status_code == 200, (path, answer.status_code)
    return timings


def export(
    base: str, cookie: str, code: str | None, proc: subprocess.Popen[bytes]
) -> tuple[float, int, float]:
    """Seconds, rows and server memory growth (MB) for one results CSV."""
    before = server_rss_mb(proc)
    peak = before
    start = time.perf_counter()
    rows = 0
    query = f"?region={code}" if code else ""
    with requests.get(
        f"{base}/dashboard/export/results.csv{query}", headers={"Cookie": cookie}, stream=True, timeout=600
    ) as answer:
        answer.raise_for_status()
        for chunk in answer.iter_content(chunk_size=1 << 16):
            rows += chunk.count(b"\n")
            peak = max(peak, server_rss_mb(proc)) if rows % 50 == 0 else peak
    elapsed = time.perf_counter() - start
    return elapsed, rows - 1, max(peak, server_rss_mb(proc)) - before


def simulate(base: str, url: str, rate: float, seconds: float) -> dict[str, float]:
    """``smsgate simulate`` at ``rate`` for ``seconds``: its throughput and reply latencies."""
    messages = max(1, int(rate * seconds))
    out = cli(
        url, "simulate", "--url", base, "--messages", str(messages), "--rate", str(rate),
        "--concurrency", "16", "--auth-token", TOKEN, "--seed", str(int(time.time())),
        check=False,  # it exits 1 when a reply was unexpected (a timeout): the figures still count
    )  # fmt: skip
    found = re.search(r"latency: p50 (\d+) ms, p90 (\d+) ms, p99 (\d+) ms, max (\d+) ms", out)
    rate_found = re.search(r"\(([\d.]+) msgs/s", out)
    if not found or not rate_found:
        raise SystemExit(f"could not read simulate's output:\n{out}")
    p50, _p90, p99, worst = (float(x) for x in found.groups())
    return {"rate": float(rate_found.group(1)), "p50": p50, "p99": p99, "max": worst}


def card_computations(database: Database) -> int | None:
    """The stored quick-count cards' computations so far (None before the table existed)."""
    with database.read() as session:
        if session.scalar(text("SELECT to_regclass('quickcount_cards')")) is None:
            return None
        return int(session.scalar(text("SELECT coalesce(sum(computations), 0) FROM quickcount_cards")) or 0)


def cpu_busy() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def dashboards(
    base: str, cookies: list[tuple[str, str]], count: int, refresh: float, seconds: float
) -> Refreshes:
    """``count`` dashboards, each refreshing its overview every ``refresh`` s for ``seconds``, as
    the page's script does: each remembers the last ``ETag`` and sends it as ``If-None-Match``.

    All on one asyncio event loop (aiohttp, no connection limit): no dashboard waits for another
    (a thread pool of fixed size made them queue behind each other before). Each dashboard, like
    a browser tab, asks again when its next refresh is due *and* its previous answer has come,
    so how late a refresh left (printed) is its own previous answer's lateness: a server that
    answers slower than every 5 s shows there as well as in the latencies."""
    return asyncio.run(_dashboards(base, cookies, count, refresh, seconds))


@dataclass
class Refreshes:
    """What the dashboards saw: latencies (s), how late each request left (s), statuses."""

    latencies: list[float] = field(default_factory=list)
    lateness: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)

    @property
    def failures(self) -> int:
        return sum(n for status, n in self.statuses.items() if status not in ("200", "304"))


async def _dashboards(
    base: str, cookies: list[tuple[str, str]], count: int, refresh: float, seconds: float
) -> Refreshes:
    seen = Refreshes()
    loop = asyncio.get_running_loop()
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(base, connector=connector, timeout=timeout) as http:

        async def dashboard(i: int, start: float) -> None:
            cookie, path = cookies[i % len(cookies)]
            etag: str | None = None
            for k in range(int(seconds / refresh)):
                due = start + (i / count) * refresh + k * refresh
                await asyncio.sleep(max(0.0, due - loop.time()))
                headers = {"Cookie": cookie, "Accept": "application/json"}
                if etag:
                    headers["If-None-Match"] = etag
                sent = loop.time()
                seen.lateness.append(sent - due)
                try:
                    async with http.get(path, headers=headers) as answer:
                        await answer.read()
                        status = str(answer.status)
                        etag = answer.headers.get("ETag", etag) if answer.status == 200 else etag
                except (aiohttp.ClientError, TimeoutError) as exc:
                    status = type(exc).__name__
                seen.latencies.append(loop.time() - sent)
                seen.statuses[status] = seen.statuses.get(status, 0) + 1

        start = loop.time()
        await asyncio.gather(*(dashboard(i, start) for i in range(count)))
    return seen


# -- main --------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--stations", type=int, default=tally_bench.NATIONAL_STATIONS)
    parser.add_argument("--reuse", help="a database a previous --keep run built (skips the build)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument(
        "--build-only", action="store_true", help="build and keep the data set, measure nothing"
    )
    parser.add_argument("--dashboards", type=int, default=200)
    parser.add_argument("--refresh", type=float, default=5.0, help="seconds between a dashboard's refreshes")
    parser.add_argument("--sms-rate", type=float, default=50.0, help="SMS/s during the concurrency runs")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each concurrency run")
    parser.add_argument("--samples", type=int, default=20, help="timed requests per page and user")
    parser.add_argument(
        "--concurrency-only",
        action="store_true",
        help="skip the interactive pages and the exports: SMS alone, then dashboards and SMS together",
    )
    args = parser.parse_args()
    args.keep = args.keep or args.build_only  # a failure late in a long build keeps what was built
    print("command:", " ".join(shlex.quote(a) for a in [".venv/bin/python", *sys.argv]))
    missed: list[str] = []

    base = make_url(args.url)
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    name = None
    if args.reuse:
        url = args.reuse
    else:
        name = f"smsgate_dash_{uuid.uuid4().hex[:10]}"
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = base.set(database=name).render_as_string(hide_password=False)
    database = Database.from_url(url)
    started = time.perf_counter()
    try:
        if not args.reuse:
            print(f"build: scratch database {name}")
            tally_bench.build(database, args.stations)
            add_extras(database)
            # The build takes half an hour: the code may have gained a migration meanwhile.
            cli(url, "init")
            where = scopes(database)
            with tally_bench.phase("quick-count sample (smsgate sample draw --size 2000)"):
                cli(url, "sample", "draw", "--size", "2000", "--seed", "1")
            made = accounts(url, where)
            print(f"  build total {time.perf_counter() - started:.1f} s")
        else:
            where = scopes(database)
            made = account_scopes(where)  # created by the --keep run that built it
        with database.read() as session:
            counts = {
                t: session.scalar(text(f"SELECT count(*) FROM {t}"))
                for t in (
                    "stations",
                    "reports",
                    "inbound_messages",
                    "outbound_messages",
                    "flags",
                    "incidents",
                )
            }
        print("data: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()) + f"; regions {where}")
        if args.build_only:
            return 0

        log = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-dashboard-{uuid.uuid4().hex[:6]}.log"
        with server(url, log) as (http_base, proc, worker):
            print(f"server: smsgate serve (default workers) at {http_base}, log {log}")
            worker_log = log.with_suffix(".worker.log")
            print(f"worker: smsgate worker (pid {worker.pid}), log {worker_log}")
            cookies = {email: login(http_base, email) for email in made}

            if args.concurrency_only:
                print("\n1., 2. interactive pages and exports skipped (--concurrency-only)")
            else:
                print(
                    f"\n1. interactive pages, {args.samples} sequential requests each "
                    f"(target p95 < 300 ms); {load()}"
                )
                for email in ("admin@bench.local", "kabkota@bench.local"):
                    role, scope = made[email]
                    print(f"  as {role} ({scope or 'Indonesia'}); {load()}")
                    for page, samples in time_pages(
                        http_base, cookies[email], pages(where, scope), args.samples
                    ).items():
                        mark = ""
                        if percentile(samples, 0.95) >= PAGE_TARGET:
                            mark = "  MISSED"
                            missed.append(f"{page} as {role}")
                        print(f"    {page:26} {figures(samples)}{mark}")

                print(
                    f"\n2. results CSV (targets: province < 2 s, country < 15 s, "
                    f"memory < {CSV_MEMORY_MB} MB); {load()}"
                )
                for level, code in (("province", where["province"]), ("country", None)):
                    seconds, rows, grown = export(http_base, cookies["admin@bench.local"], code, proc)
                    mark = ""
                    if seconds >= CSV_TARGETS[level] or grown >= CSV_MEMORY_MB:
                        mark = "  MISSED"
                        missed.append(f"results CSV {level}")
                    print(
                        f"  {level:9} {rows:8,} rows in {seconds:6.2f} s, server memory +{grown:.0f} MB{mark}"
                    )

            print(f"\n3. SMS alone: smsgate simulate at {args.sms_rate:g}/s for {args.seconds:g} s; {load()}")
            alone = simulate(http_base, url, args.sms_rate, args.seconds)
            print(f"  {alone['rate']:.1f} msgs/s, reply p50 {alone['p50']:.0f} ms, p99 {alone['p99']:.0f} ms")

            views = [
                (
                    cookies[email],
                    f"/dashboard/api/overview?region={scope}" if scope else "/dashboard/api/overview",
                )
                for email, (_, scope) in made.items()
            ]
            print(
                f"\n4. {args.dashboards} dashboards refreshing every {args.refresh:g} s "
                f"({args.dashboards / args.refresh:.0f} refreshes/s) "
                f"while SMS arrive at {args.sms_rate:g}/s; {load()}"
            )
            result: dict[str, object] = {}
            cards0 = card_computations(database)
            server0 = server_cpu_seconds(proc)
            worker0 = server_cpu_seconds(worker)
            busy0, total0 = cpu_busy()
            sms_thread = threading.Thread(
                target=lambda: result.update(sms=simulate(http_base, url, args.sms_rate, args.seconds))
            )
            sms_thread.start()
            seen = dashboards(http_base, views, args.dashboards, args.refresh, args.seconds)
            latencies, failures = seen.latencies, seen.failures
            sms_thread.join()
            busy1, total1 = cpu_busy()
            server_cpu = server_cpu_seconds(proc) - server0
            together = result["sms"]
            assert isinstance(together, dict)
            cpu = 100 * (busy1 - busy0) / max(1, total1 - total0)
            answers = ", ".join(f"{n} x {status}" for status, n in sorted(seen.statuses.items()))
            print(f"  refresh: {figures(latencies)}; answers {answers}")
            print(
                f"  load generator: requests left p50 {percentile(seen.lateness, 0.5) * 1000:.1f} ms, "
                f"p95 {percentile(seen.lateness, 0.95) * 1000:.1f} ms, "
                f"max {max(seen.lateness) * 1000:.1f} ms after they were due"
                " (each waits for its previous answer)"
            )
            print(
                f"  SMS: {together['rate']:.1f} msgs/s, reply p50 {together['p50']:.0f} ms, "
                f"p99 {together['p99']:.0f} ms (alone {alone['p99']:.0f} ms, "
                f"{together['p99'] / max(alone['p99'], 1):.2f}x)"
            )
            print(f"  machine CPU busy during the run: {cpu:.0f}% (server, database and load generators)")
            requests_made = len(latencies) + args.sms_rate * args.seconds
            print(
                f"  server CPU during the run: {server_cpu:.1f} s ({server_cpu / args.seconds:.2f} core; "
                f"{1000 * server_cpu / max(1, requests_made):.1f} ms per request, refreshes and SMS)"
            )
            cards = card_computations(database)
            if cards is not None and cards0 is not None:
                print(f"  quick-count cards computed and stored during the run: {cards - cards0}")
            if worker.poll() is not None:
                raise SystemExit(f"smsgate worker exited during the run: see {worker_log}")
            print(
                f"  worker ran: smsgate worker (pid {worker.pid}) alive, "
                f"{server_cpu_seconds(worker) - worker0:.1f} s CPU during the run"
                " (the cards above: the worker's, but a region's first view or a card due past the grace)"
            )
            print(f"  {load()} at the end")
            if percentile(latencies, 0.95) >= PAGE_TARGET or failures:
                missed.append("dashboard refresh p95 / failures")
            if together["p99"] > 2 * max(alone["p99"], 1):
                missed.append("SMS reply p99 more than 2x the baseline")
    finally:
        database.dispose()
        if name and not args.keep:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            print(f"dropped {name}")
        elif name:
            print(f"kept database: {url}  (next time: --reuse '{url}')")
        admin.dispose()
    print(f"\ntotal {time.perf_counter() - started:.1f} s")
    if missed:
        print("targets missed: " + "; ".join(missed))
        return 1
    print("every target met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
