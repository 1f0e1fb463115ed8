"""Gateway fleet benchmark: a compressed election night through the real queue and worker job.

    .venv/bin/python bench/fleet.py [--messages 20000] [--hours 2] [--modems 4] [--seed 7]
        [--pg postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

1. The night. Volunteers (ten per station) each send a report, a fifth of them a second text,
   and 5% of all texts come from numbers we do not know; arrivals follow a hump over ``--hours``
   with a burst at the peak. Every text is logged and its reply queued at its arrival time with
   the services' own ``queue_reply`` (priority from the sender's contact, ``via`` the device its
   sender texts), as the inbound transaction does; the reports are not parsed here.
2. The fleet. The bench measures the night's peak factor (busiest 10 minutes against the
   average), asks ``smsgate gateways plan`` (a subprocess, the documented command) how many
   Android phones the night needs next to ``--modems`` modems, and runs fake devices on
   localhost (tests/fleet/fakes.py: the Android local ``POST /message`` and Kannel ``sendsms``
   APIs) that transmit at 0.35 SMS/s (phones) and 0.5 SMS/s (modems). Each volunteer texts one
   device, chosen in proportion to the devices' rates.
3. The runs. Two ``OutboundJob`` instances (two workers) poll every 2 virtual seconds; phones
   send ``system:ping`` every 30 s; one phone fails half-way (HTTP 500, no more pings). The bench
   runs the plan's device count, then fewer phones, and picks the smallest count that met the
   target (volunteers' p95 reply lag under 60 s), which ``gateways plan`` should equal.

Lag is the device's transmit time (its queue drains at its own rate) minus the text's arrival.
Figures are from a virtual clock, so they do not depend on this machine's speed; the wall-clock
time of each run is printed too (noisy on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.fleet.fakes

from smsgate.config import Settings
from smsgate.db import Database
from smsgate.importers import upsert_contacts, upsert_regions, upsert_stations
from smsgate.inbound import Heartbeat
from smsgate.models import Candidate, Contact, GatewayDevice, GatewayPing, InboundMessage, OutboundMessage
from smsgate.models.outbound import STRANGER_REPLY, VOLUNTEER_REPLY
from smsgate.outgoing.sms_job import OutboundJob
from smsgate.schema import upgrade
from smsgate.services import heartbeats
from smsgate.services.outbound import queue_reply
from tests.fleet.fakes import FakeFleet, fake_fleet

SMSGATE = str(Path(sys.executable).with_name("smsgate"))
PHONE_RATE, MODEM_RATE = 0.35, 0.5
STEP = 2.0  # virtual seconds between two polls (by either worker; each polls every 2 x STEP)
PING_EVERY = 30.0
TARGET = 60.0
T0 = datetime(2024, 2, 14, 6, 0, tzinfo=UTC)  # 13:00 WIB: polls close


class VirtualClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass(frozen=True)
class Text:
    at: float  # virtual seconds after T0
    phone: str
    body: str
    stranger: bool


# -- the night ----------------------------------------------------------------------------------


def build(database: Database, volunteers: int) -> list[tuple[str, str, int]]:
    """One kecamatan, desas of 100 stations, ten volunteers per station: (phone, desa, tps)."""
    stations = math.ceil(volunteers / 10)
    desas = [f"63.71.01.{1001 + i}" for i in range(math.ceil(stations / 100))]
    people = []
    with database.begin() as session:
        regions = [
            ("63", "Kalimantan Selatan"),
            ("63.71", "Kota Banjarmasin"),
            ("63.71.01", "Banjarmasin Selatan"),
        ]
        upsert_regions(session, regions + [(d, f"Desa {d[-4:]}") for d in desas])
        for code, name in (("01", "A"), ("02", "B"), ("03", "C")):
            session.add(Candidate(code=code, name=name))
        rows = [(desas[s // 100], s % 100 + 1, 300) for s in range(stations)]
        upsert_stations(session, rows)
        for n in range(volunteers):
            desa, tps, _ = rows[n // 10]
            phone = f"+62811{n:07d}"
            people.append((phone, desa, tps))
        upsert_contacts(
            session,
            [
                {"phone": p, "name": f"V{i}", "role": "volunteer", "region_code": d, "tps": t, "lang": "id"}
                for i, (p, d, t) in enumerate(people)
            ],
        )
    return people


def night(people: list[tuple[str, str, int]], hours: float, rng: random.Random) -> list[Text]:
    """Reports on a hump peaking a third into the night, a burst at the peak, seconds and strangers."""
    span = hours * 3600

    def arrival() -> float:
        if rng.random() < 0.10:  # the burst: 10% of texts within five minutes of the peak
            return span / 3 + rng.uniform(0, 300)
        return min(max(rng.triangular(0, span, span / 3), 0), span)

    texts = []
    for phone, _desa, tps in people:
        votes = f"01={rng.randint(50, 120)} 02={rng.randint(40, 110)} 03={rng.randint(20, 90)}"
        first = arrival()
        texts.append(Text(first, phone, f"TPS {tps:03d} {votes}", False))
        if rng.random() < 0.2:  # a second text a little later (it may fall after the night's end)
            texts.append(Text(first + rng.uniform(60, 1800), phone, "CEK", False))
    for i in range(round(len(texts) * 0.05 / 0.95)):
        texts.append(Text(arrival(), f"+62899{i:07d}", rng.choice(["halo", "info pemilu", "tes"]), True))
    return sorted(texts, key=lambda t: t.at)


def peak_factor(texts: list[Text], hours: float) -> float:
    """The busiest five minutes against the night's average rate."""
    window, per = 300.0, Counter(int(t.at // 300) for t in texts)
    average = len(texts) / (hours * 3600)
    return max(max(per.values()) / window / average, 1.0)


# -- the fleet ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    name: str
    kind: str  # android | kannel
    identifier: str
    rate: float


def members(phones: int, modems: int) -> list[Member]:
    found = [Member(f"hp-{i + 1:02d}", "android", f"dev{i + 1:04d}", PHONE_RATE) for i in range(phones)]
    found += [Member(f"modem-{i + 1:02d}", "kannel", f"modem{i + 1}", MODEM_RATE) for i in range(modems)]
    return found


def fleet_toml(path: Path, fleet: list[Member], url: str) -> None:
    lines = ['[fleet]\nfailover = "any"\nsilent_after_seconds = 120\n']
    for m in fleet:
        lines.append(f'[[device]]\nname = "{m.name}"\nprovider = "{m.kind}"\nrate = {m.rate}\n')
        if m.kind == "android":
            lines.append(
                f'url = "{url}/android/{m.name}/message"\nuser = "sms"\npassword = "secret-pw"\n'
                f'device_id = "{m.identifier}"\nheartbeat = true\n'
            )
        else:
            lines.append(
                f'url = "{url}/cgi-bin/sendsms"\nuser = "sms"\npassword = "secret-pw"\n'
                f'smsc = "{m.identifier}"\n'
            )
    path.write_text("\n".join(lines), encoding="utf-8")


def assign(people: list[str], fleet: list[Member], rng: random.Random) -> dict[str, Member]:
    """Each sender texts one device; busier devices are the faster ones (weights = rates)."""
    return {phone: rng.choices(fleet, weights=[m.rate for m in fleet])[0] for phone in people}


# -- one run ------------------------------------------------------------------------------------


@dataclass
class Result:
    phones: int
    modems: int
    volunteers: list[float]
    strangers: list[float]
    depth: list[tuple[float, int]]
    per_device: Counter
    behind: int
    unsent: int
    seconds: float

    @property
    def p95(self) -> float:
        return pct(self.volunteers, 95)


def pct(values: list[float], p: int) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1] if len(values) > 1 else values[0]


def arrive(session: Session, items: list[Text], chosen: dict[str, Member], contacts: dict[str, int]) -> None:
    """Log texts and queue their replies with the services' own ``queue_reply`` (priority from the
    sender's contact row, provider and ``via`` from the device the sender texted), as the inbound
    transaction does. The reports are not parsed or counted here: that path has its own
    benchmarks (bench/simulate.py), and on a shared machine it would take most of the run."""
    for item in items:
        at = T0 + timedelta(seconds=item.at)
        member = chosen[item.phone]
        inbound = InboundMessage(
            provider=member.kind,
            provider_message_id=uuid.uuid4().hex,
            from_number=item.phone,
            device=member.identifier,
            body=item.body,
            received_at=at,
            contact_id=contacts.get(item.phone),
            outcome="refused" if item.stranger else "accepted",
        )
        session.add(inbound)
        reply = (
            "Nomor belum terdaftar." if item.stranger else f"OK {item.body[:60]} Ref {uuid.uuid4().hex[:6]}"
        )
        inbound.reply = reply
        queue_reply(session, inbound, reply, at)


def reset(database: Database) -> None:
    with database.begin() as session:
        for table in (OutboundMessage, InboundMessage, GatewayDevice, GatewayPing):
            session.execute(table.__table__.delete())


def run(
    database: Database,
    settings: Settings,
    fleet: list[Member],
    chosen: dict[str, Member],
    texts: list[Text],
    hours: float,
    workdir: Path,
) -> Result:
    clock = VirtualClock()
    reset(database)
    with database.read() as session:
        contacts = dict(session.execute(select(Contact.phone, Contact.id)).all())
    pending = deque(texts)
    failing = fleet[0]  # a phone that dies half-way
    started = time.monotonic()
    with fake_fleet(clock) as fake:
        for m in fleet:
            fake.add(m.name, m.kind, m.identifier, m.rate)
        path = workdir / f"gateways-{len(fleet)}.toml"
        fleet_toml(path, fleet, fake.url)
        config = replace(settings, gateways_file=str(path))
        workers = [OutboundJob(config, clock=clock) for _ in range(2)]
        end = max(t.at for t in texts) + 900  # a quarter of an hour to drain after the last text
        t, next_ping = 0.0, 0.0
        while t <= end:
            clock.now = T0 + timedelta(seconds=t)
            arrived = []
            while pending and pending[0].at <= t:
                arrived.append(pending.popleft())
            if arrived:
                with database.begin() as session:
                    arrive(session, arrived, chosen, contacts)
            if t >= hours * 3600 / 2:
                fake.devices[failing.name].failing = 500
            if t >= next_ping:  # every phone's system:ping, recorded as the webhook records it
                with database.begin() as session:
                    for m in fleet:
                        if m.kind == "android" and not (m is failing and fake.devices[m.name].failing):
                            heartbeats.record(
                                session, Heartbeat("android", m.identifier, "pass", 90), clock()
                            )
                next_ping += PING_EVERY
            workers[int(t // STEP) % 2].run_once(database)  # two workers, taking turns
            t += STEP
        for worker in workers:
            worker.close()
        elapsed = time.monotonic() - started
    return measure(database, fake, len([m for m in fleet if m.kind == "android"]), len(fleet), elapsed)


def measure(database: Database, fake: FakeFleet, phones: int, total: int, elapsed: float) -> Result:
    with database.read() as session:
        rows = session.execute(
            select(
                OutboundMessage.id,
                OutboundMessage.to_number,
                OutboundMessage.text,
                OutboundMessage.priority,
                OutboundMessage.created_at,
                OutboundMessage.sent_at,
                OutboundMessage.device,
                OutboundMessage.attempts,
            )
        ).all()
    transmitted: dict[tuple[str, str], deque] = defaultdict(deque)
    for sent in sorted(fake.sent, key=lambda s: s.accepted_at):
        transmitted[(sent.to, sent.text)].append(sent.transmitted_at)
    volunteers, strangers, spans = [], [], []
    for row in sorted(rows, key=lambda r: (r.sent_at is None, r.sent_at or r.created_at)):
        if row.sent_at is None or not transmitted[(row.to_number, row.text)]:
            continue
        done = transmitted[(row.to_number, row.text)].popleft()
        lag = (done - row.created_at).total_seconds()
        (strangers if row.priority == STRANGER_REPLY else volunteers).append(lag)
        spans.append((row.device, row.priority, row.created_at, row.sent_at, row.attempts))
    unsent = sum(1 for r in rows if r.sent_at is None)
    # Queue depth every ten virtual minutes: arrived and not yet accepted by a device.
    last = max((r.sent_at or r.created_at) for r in rows)
    depth, t = [], T0
    while t <= last:
        depth.append(
            (
                (t - T0).total_seconds(),
                sum(1 for r in rows if r.created_at <= t and (r.sent_at is None or r.sent_at > t)),
            )
        )
        t += timedelta(minutes=10)
    # A stranger's reply sent while a volunteer's reply for the same device had been due for a
    # full poll (a reply waiting out its backoff after a failed send is not due).
    behind = 0
    waiting = defaultdict(list)
    for device, priority, created, sent, attempts in spans:
        if priority == VOLUNTEER_REPLY and attempts == 1:
            waiting[device].append((created, sent))
    for device, priority, _created, sent, _attempts in spans:
        if priority == STRANGER_REPLY:
            behind += sum(1 for c, s in waiting[device] if c < sent - timedelta(seconds=STEP) and s > sent)
    per_device = Counter(s.device for s in fake.sent)
    return Result(phones, total - phones, volunteers, strangers, depth, per_device, behind, unsent, elapsed)


# -- the plan -----------------------------------------------------------------------------------


def planned_phones(volunteers: int, texts: list[Text], hours: float, factor: float, modems: int) -> dict:
    second = sum(1 for t in texts if not t.stranger) / volunteers
    unknown = sum(1 for t in texts if t.stranger) / sum(1 for t in texts if not t.stranger)
    command = [
        SMSGATE,
        "gateways",
        "plan",
        "--volunteers",
        str(volunteers),
        "--hours",
        f"{hours:g}",
        "--texts-per-volunteer",
        f"{second:.3f}",
        "--unknown-share",
        f"{unknown:.3f}",
        "--peak-factor",
        f"{factor:.3f}",
        "--modems",
        str(modems),
        "--json",
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return {"command": " ".join(command[1:]), **json.loads(output)}


# -- main ---------------------------------------------------------------------------------------


def scratch(pg: str | None, workdir: Path) -> tuple[str, callable]:
    if not pg:
        return f"sqlite:///{workdir / 'fleet.db'}", lambda: None
    base = make_url(pg)
    name = f"smsgate_fleet_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return base.set(database=name).render_as_string(hide_password=False), drop


def report(result: Result, plan_phones: int | None = None) -> None:
    mark = " (the plan's count)" if result.phones == plan_phones else ""
    print(f"\n== {result.phones} phones + {result.modems} modems{mark}: wall {result.seconds:.0f}s")
    for label, values in (("volunteers", result.volunteers), ("strangers", result.strangers)):
        print(
            f"  reply lag {label:10s} n={len(values):6d}  p50 {pct(values, 50):7.1f}s"
            f"  p95 {pct(values, 95):7.1f}s  max {max(values, default=float('nan')):7.1f}s"
        )
    print(
        f"  volunteers' p95 under {TARGET:g}s: {'yes' if result.p95 < TARGET else 'NO'};"
        f" unsent {result.unsent}; volunteer replies passed by a stranger's on their device: {result.behind}"
    )
    print("  queue depth every 10 min: " + " ".join(f"{d}" for _, d in result.depth))
    print("  SMS per device: " + ", ".join(f"{k} {v}" for k, v in sorted(result.per_device.items())))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=20000, help="texts in the night (at least)")
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--modems", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pg", help="PostgreSQL server URL; a scratch database is created and dropped")
    parser.add_argument(
        "--no-compare", action="store_true", help="Only the plan's count, not fewer phones too"
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)
    print("command: .venv/bin/python bench/fleet.py " + " ".join(sys.argv[1:]))
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the fake devices' request log
    shm = Path("/dev/shm")  # SQLite on tmpfs: the figures are virtual time, fsync would only cost wall time
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as tmp:
        workdir = Path(tmp)
        url, drop = scratch(args.pg, workdir)
        try:
            database = Database.from_url(url)
            upgrade(database.engine)
            volunteers = math.ceil(args.messages / 1.2 / 1.05 / 10) * 10
            people = build(database, volunteers)
            texts = night(people, args.hours, rng)
            factor = peak_factor(texts, args.hours)
            print(
                f"night: {len(texts):,} texts ({sum(t.stranger for t in texts):,} from unknown numbers) from"
                f" {volunteers:,} volunteers over {args.hours:g} virtual hours; peak factor {factor:.2f}"
                f" (busiest 5 min / average); database {make_url(url).get_backend_name()}"
            )
            settings = Settings(database_url=url)
            plan = planned_phones(volunteers, texts, args.hours, factor, args.modems)
            planned = plan["mixed"]["android_phones"]
            print(
                f"plan: smsgate {plan['command']}\n  -> {planned} phones next to {args.modems} modems"
                f" (capacity needed {plan['capacity_needed']} SMS/s at the peak,"
                f" {plan['peak_per_second']:.2f} texts/s)"
            )
            senders = sorted({t.phone for t in texts})
            results = {}
            for phones in (planned,) if args.no_compare else (planned, planned - 3):
                if phones < 1:
                    continue
                fleet = members(phones, args.modems)
                results[phones] = run(
                    database,
                    settings,
                    fleet,
                    assign(senders, fleet, random.Random(args.seed)),
                    texts,
                    args.hours,
                    workdir,
                )
                report(results[phones], planned)
                if results[phones].p95 >= TARGET:
                    break
            good = [p for p, r in results.items() if r.p95 < TARGET]
            needed = min(good) if good else None
            print(
                f"\nsmallest phone count meeting the target among those run: {needed}; plan said {planned}"
                f" (the plan keeps 1 spare phone for the one that fails)"
            )
            database.dispose()
        finally:
            drop()


if __name__ == "__main__":
    main()
