"""Gateway fleet benchmark: a compressed election night through the real intake, queue and worker job.

    .venv/bin/python bench/fleet.py [--messages 20000] [--hours 1] [--modems 4] [--seed 7]
        [--max-runs 4] [--jobs 1] [--intake-jobs 2] [--peak-factor 2.5]
        [--spread even] [--phones N ...]
        [--pg postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

1. The night, drawn from the plan's own profile (``smsgate.outgoing.plan.draw_night``, see its
   module): volunteers (ten per station) each send a report, a fifth of them a second text
   (``CEK``), and 5% of all texts come from numbers we do not know; arrivals follow one hump over
   ``--hours`` with a burst at its top, as steep as ``--peak-factor``.
2. The plan. The bench asks ``smsgate gateways plan`` (a subprocess, the documented command), with
   every assumption of its night spelled out, how many Android phones the night needs next to
   ``--modems`` modems, and prints what the same model says of the one night it drew.
3. The intake. Every text goes through the real intake at its arrival time on the virtual clock:
   a signed ``sms:received`` webhook for a text to a phone, a Kannel ``sms-service`` request
   (``SMSGATE_KANNEL_REPLY=queue``) for a text to a modem, posted to the app (``create_app``,
   Flask's test client), which parses, stores and tallies the report and queues the reply in the
   same transaction, with its priority and its home device. Each volunteer texts one device, spread
   as the plan assumes (``--spread``), strangers one at random. The intake runs once, before the
   sending (``--intake-jobs`` processes, by station): a queued reply is due from its arrival time
   (``next_attempt_at``), so no worker sees it earlier, and nothing the intake does depends on
   what has been sent. Each run gets a copy of that database in which every sender's texts and
   replies belong to the device the sender texts in that run's fleet (provider and ``via``, as
   the intake records them); the texts themselves are not re-taken (20,000 of them through the
   whole report path cost more CPU than a shared machine can give to every run).
4. The runs. Fake devices on localhost (tests/fleet/fakes.py: the Android local ``POST
   /message`` and Kannel ``sendsms`` APIs, answered as the real ones answer) transmit at 0.35
   SMS/s (phones) and 0.5 SMS/s (modems). Phones send ``system:ping`` every 30 s (signed
   webhooks through the app, as the app does with Settings > Ping on); one phone fails half-way
   (HTTP 500 on every send, no more pings). Two ``OutboundJob`` instances (two workers) take
   turns every 2 virtual seconds. The bench chooses the phone count itself: it starts at the
   plan's count and steps down while the target is met (volunteers' p95 reply lag under 60 s,
   every reply sent) or up while it is not, at most ``--max-runs`` runs, ``--jobs`` of them at
   once (processes); the smallest count meeting the target is what the night needed, to compare
   with the plan.

Time compression, honestly: the night runs on a virtual clock. The intake, the worker and the
fake devices all read it, so token buckets, heartbeats, backoffs and the radios' rates run in
virtual seconds while the machine runs as fast as it can. A reply's lag is its device's transmit
time (the radio's queue drains at its rate) minus the text's arrival, both virtual: the figures do
not depend on this machine's speed, and smsgate's own processing time counts as zero. Whether the
real code keeps up with the real night is a separate figure: texts taken in per wall-clock second,
and SMS claimed, sent and recorded per wall-clock second of the two workers, against the night's
peak rate (on a loaded shared machine both understate what a dedicated server does).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import multiprocessing
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from flask.testing import FlaskClient
from sqlalchemy import create_engine, select, text, update
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.fleet.fakes

from smsgate import create_app
from smsgate.config import Settings
from smsgate.db import Database
from smsgate.importers import upsert_contacts, upsert_regions, upsert_stations
from smsgate.models import Candidate, InboundMessage, OutboundMessage
from smsgate.models.outbound import STRANGER_REPLY, VOLUNTEER_REPLY
from smsgate.outgoing.plan import FAIL_AT, Assumptions, Plan, draw_night, spread
from smsgate.outgoing.plan import plan as plan_model
from smsgate.outgoing.sms_job import OutboundJob
from smsgate.schema import upgrade
from tests.fleet.fakes import FakeFleet, fake_fleet
from webhooks.android import signature

SMSGATE = str(Path(sys.executable).with_name("smsgate"))
PHONE_RATE, MODEM_RATE = 0.35, 0.5
STEP = 2.0  # virtual seconds between two polls (by either worker; each polls every 2 x STEP)
PING_EVERY = 30.0
TARGET = 60.0
DEPTH_EVERY = 300.0  # queue depth sampled every five virtual minutes
T0 = datetime(2024, 2, 14, 6, 0, tzinfo=UTC)  # 13:00 WIB: polls close
ANDROID_SECRET, KANNEL_SECRET = "bench-android-signing-key", "bench-kannel-secret"
SIM_NUMBER = "+6281251000000"


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


def night(people: list[tuple[str, str, int]], assumptions: Assumptions, seed: int) -> list[Text]:
    """The night drawn from the plan's own profile (``plan.draw_night``): each volunteer's first
    text is the report, a second one ``CEK``; strangers send small talk."""
    rng = random.Random(seed)
    drawn = draw_night(assumptions, seed)
    texts, seen = [], set()
    for v, at in zip(drawn.volunteer.tolist(), drawn.at.tolist(), strict=True):
        phone, _desa, tps = people[v]
        if v in seen:
            texts.append(Text(at, phone, "CEK", False))
            continue
        seen.add(v)
        votes = f"01={rng.randint(50, 120)} 02={rng.randint(40, 110)} 03={rng.randint(20, 90)}"
        texts.append(Text(at, phone, f"TPS {tps:03d} {votes}", False))
    for i, at in enumerate(drawn.strangers.tolist()):
        texts.append(Text(at, f"+62899{i:07d}", rng.choice(["halo", "info pemilu", "tes"]), True))
    return sorted(texts, key=lambda t: t.at)


def busiest(texts: list[Text], hours: float, window: float) -> float:
    """The busiest ``window`` seconds of the drawn night (sliding by 5 s) against its average."""
    times = sorted(t.at for t in texts)
    average = len(times) / (hours * 3600)
    most, start = 0, 0
    for end, at in enumerate(times):
        while times[start] <= at - window:
            start += 1
        most = max(most, end - start + 1)
    return most / window / average


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


def assign(
    volunteers: list[str], strangers: list[str], fleet: list[Member], how: str, seed: int
) -> dict[str, Member]:
    """Each sender texts one device: volunteers spread as the plan assumes (``plan.spread``:
    ``even`` in proportion to the rates, or ``random``), strangers at random (weights = rates)."""
    rng = np.random.default_rng(seed)
    rates = np.array([m.rate for m in fleet], dtype=np.float64)
    chosen = {
        p: fleet[i]
        for p, i in zip(volunteers, spread(rates, len(volunteers), how, rng).tolist(), strict=True)
    }
    picks = rng.choice(len(fleet), size=len(strangers), p=rates / rates.sum()).tolist()
    chosen.update({p: fleet[i] for p, i in zip(strangers, picks, strict=True)})
    return chosen


# -- the intake: signed webhooks through the app --------------------------------------------------


class Intake:
    """Posts each text to the app as its gateway would, at the clock's (virtual) time."""

    def __init__(self, client: FlaskClient, clock: VirtualClock) -> None:
        self.client, self.clock = client, clock
        self.ids = 0
        self.wall = 0.0  # wall-clock seconds spent in the app
        self.count = 0

    def text(self, item: Text, member: Member) -> None:
        self.ids += 1
        started = time.perf_counter()
        if member.kind == "android":
            response = self._android(
                {
                    "deviceId": member.identifier,
                    "event": "sms:received",
                    "id": f"bench-{self.ids:08d}",
                    "payload": {
                        "messageId": f"m{self.ids}",
                        "message": item.body,
                        "sender": item.phone,
                        "recipient": SIM_NUMBER,
                        "phoneNumber": item.phone,
                        "simNumber": 1,
                        "receivedAt": self.clock().isoformat(),
                    },
                    "webhookId": "bench-webhook",
                }
            )
        else:  # Kannel's get-url: sender=%p receiver=%P text=%a time=%T smsc=%i id=%I
            query = {
                "sender": item.phone,
                "receiver": SIM_NUMBER,
                "text": item.body,
                "time": str(int(self.clock().timestamp())),
                "smsc": member.identifier,
                "id": str(uuid.UUID(int=self.ids)),
                "secret": KANNEL_SECRET,
            }
            response = self.client.get("/webhooks/kannel", query_string=query)
        if response.status_code != 200:
            raise RuntimeError(f"intake answered {response.status_code}: {response.get_data(as_text=True)}")
        self.wall += time.perf_counter() - started
        self.count += 1

    def ping(self, member: Member) -> None:
        """``system:ping`` as the app sends it with Settings > Ping switched on."""
        beat = {
            "deviceId": member.identifier,
            "event": "system:ping",
            "id": f"ping-{uuid.uuid4().hex[:12]}",
            "payload": {"health": {"status": "pass", "checks": {"battery:level": {"observedValue": 90}}}},
            "webhookId": "bench-ping",
        }
        response = self._android(beat)
        if response.status_code != 200:
            raise RuntimeError(f"ping answered {response.status_code}")

    def _android(self, envelope: dict):  # type: ignore[no-untyped-def]
        body = json.dumps(envelope).encode()
        stamp = str(int(time.time()))  # the signature window is real time, as on a real server
        headers = {"X-Timestamp": stamp, "X-Signature": signature(ANDROID_SECRET, body, stamp)}
        return self.client.post(
            "/webhooks/android", data=body, headers=headers, content_type="application/json"
        )


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
    send_rate: float  # SMS claimed, sent and recorded per wall-clock second of the workers

    @property
    def p95(self) -> float:
        return pct(self.volunteers, 95)

    @property
    def met(self) -> bool:
        return self.p95 < TARGET and self.unsent == 0


def pct(values: list[float], p: int) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1] if len(values) > 1 else values[0]


def take_in(url: str, settings: Settings, chosen: dict[str, Member], texts: list[Text]) -> tuple[int, float]:
    """These texts through the app, each at its virtual arrival time: (texts, wall seconds)."""
    clock = VirtualClock()
    database = Database.from_url(url)
    app = create_app(settings, test_config={"TESTING": True}, database=database, clock=clock)
    intake = Intake(app.test_client(), clock)
    for n, item in enumerate(texts, 1):
        clock.now = T0 + timedelta(seconds=item.at)
        intake.text(item, chosen[item.phone])
        if n % 2000 == 0:
            print(f"  intake: {n:,} texts, {intake.count / intake.wall:.1f}/s", flush=True)
    database.dispose()
    return intake.count, intake.wall


def take_all_in(
    url: str,
    settings: Settings,
    chosen: dict[str, Member],
    texts: list[Text],
    jobs: int,
    station: dict[str, int],
) -> float:
    """The whole night's intake, by ``jobs`` processes (as ``jobs`` app servers would take it):
    each takes the texts of its share of the stations (and of the strangers) in arrival order,
    so one station's reports still arrive one after the other. Returns texts per wall second."""
    started = time.monotonic()
    if jobs <= 1:
        take_in(url, settings, chosen, texts)
        return len(texts) / (time.monotonic() - started)
    shares: list[list[Text]] = [[] for _ in range(jobs)]
    for item in texts:
        shares[station.get(item.phone, int(item.phone[-6:])) % jobs].append(item)
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
        list(pool.map(take_in, [url] * jobs, [settings] * jobs, [chosen] * jobs, shares))
    return len(texts) / (time.monotonic() - started)


def rehome(url: str, chosen: dict[str, Member]) -> None:
    """Make each sender's texts and queued replies those of the device the sender texts in this
    run's fleet (its provider and identifier, as the intake would have recorded them)."""
    database = Database.from_url(url)
    by_member: dict[Member, list[str]] = defaultdict(list)
    for phone, member in chosen.items():
        by_member[member].append(phone)
    with database.begin() as session:
        for member, phones in by_member.items():
            for i in range(0, len(phones), 500):
                chunk = phones[i : i + 500]
                session.execute(
                    update(OutboundMessage)
                    .where(OutboundMessage.to_number.in_(chunk))
                    .values(provider=member.kind, via=member.identifier)
                )
                session.execute(
                    update(InboundMessage)
                    .where(InboundMessage.from_number.in_(chunk))
                    .values(provider=member.kind, device=member.identifier)
                )
    database.dispose()


def run(url: str, settings: Settings, fleet: list[Member], end: float, hours: float, workdir: Path) -> Result:
    """The sending side of the night on ``url`` (a copy with the intake done and rehomed)."""
    clock = VirtualClock()
    database = Database.from_url(url)
    failing = fleet[0]  # a phone that dies half-way
    started = time.monotonic()
    worker_wall = 0.0
    with fake_fleet(clock) as fake:
        for m in fleet:
            fake.add(m.name, m.kind, m.identifier, m.rate)
        path = workdir / f"gateways-{len(fleet)}.toml"
        fleet_toml(path, fleet, fake.url)
        config = replace(settings, database_url=url, gateways_file=str(path))
        app = create_app(config, test_config={"TESTING": True}, database=database, clock=clock)
        pinger = Intake(app.test_client(), clock)
        workers = [OutboundJob(config, clock=clock) for _ in range(2)]
        t, next_ping = 0.0, 0.0
        while t <= end:
            clock.now = T0 + timedelta(seconds=t)
            if t >= hours * 3600 * FAIL_AT:
                fake.devices[failing.name].failing = 500
            if t >= next_ping:
                for m in fleet:
                    if m.kind == "android" and not (m is failing and fake.devices[m.name].failing):
                        pinger.ping(m)
                next_ping += PING_EVERY
            tick = time.perf_counter()
            workers[int(t // STEP) % 2].run_once(database)  # two workers, taking turns
            worker_wall += time.perf_counter() - tick
            t += STEP
        for worker in workers:
            worker.close()
        elapsed = time.monotonic() - started
        result = measure(database, fake, fleet, elapsed)
    database.dispose()
    result.send_rate = len(fake.sent) / worker_wall if worker_wall else float("nan")
    return result


def measure(database: Database, fake: FakeFleet, fleet: list[Member], elapsed: float) -> Result:
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
                OutboundMessage.route,
            )
        ).all()
        inbound = session.scalar(select(InboundMessage.id).order_by(InboundMessage.id.desc()).limit(1))
    if not rows or not inbound:
        raise RuntimeError("the intake queued no replies")
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
        spans.append((row.device, row.priority, row.created_at, row.sent_at, row.attempts, row.route))
    unsent = sum(1 for r in rows if r.sent_at is None)
    # Queue depth: replies queued and not yet accepted by a device, every five virtual minutes.
    last = max((r.sent_at or r.created_at) for r in rows)
    depth, t = [], T0
    while t <= last:
        depth.append(
            (
                (t - T0).total_seconds(),
                sum(1 for r in rows if r.created_at <= t and (r.sent_at is None or r.sent_at > t)),
            )
        )
        t += timedelta(seconds=DEPTH_EVERY)
    # A stranger's reply sent by a device while a volunteer's reply at home on that device (sent
    # there at its first attempt, not a failover) had been due for a full poll. A volunteer whose
    # own phone died waits for that phone to be found down, not behind a stranger.
    behind = 0
    waiting = defaultdict(list)
    for device, priority, created, sent, attempts, route in spans:
        if priority == VOLUNTEER_REPLY and attempts == 1 and not route:
            waiting[device].append((created, sent))
    for device, priority, _created, sent, _attempts, _route in spans:
        if priority == STRANGER_REPLY:
            behind += sum(1 for c, s in waiting[device] if c < sent - timedelta(seconds=STEP) and s > sent)
    per_device = Counter(s.device for s in fake.sent)
    phones = sum(1 for m in fleet if m.kind == "android")
    modems = len(fleet) - phones
    return Result(phones, modems, volunteers, strangers, depth, per_device, behind, unsent, elapsed, 0.0)


# -- the plan -----------------------------------------------------------------------------------


def planned_phones(a: Assumptions, modems: int) -> dict:
    """``smsgate gateways plan`` with every assumption of the bench's night spelled out; the
    headroom is 0 because the fake devices transmit at exactly their rate."""
    command = [
        SMSGATE,
        "gateways",
        "plan",
        "--volunteers",
        str(a.volunteers),
        "--hours",
        f"{a.hours:g}",
        "--texts-per-volunteer",
        f"{a.texts_per_volunteer:g}",
        "--unknown-share",
        f"{a.unknown_share:g}",
        "--peak-factor",
        f"{a.peak_factor:g}",
        "--headroom",
        f"{a.headroom:g}",
        "--spare",
        str(a.spare),
        "--android-rate",
        f"{a.android_rate:g}",
        "--modem-rate",
        f"{a.modem_rate:g}",
        "--spread",
        a.spread,
        "--modems",
        str(modems),
        "--json",
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return {"command": " ".join(command[1:]), **json.loads(output)}


# -- databases: one built night, a fresh copy per run ---------------------------------------------


class Scratch:
    """The built database (people, stations) and a fresh copy of it for every run."""

    def __init__(self, pg: str | None, workdir: Path) -> None:
        self.pg, self.workdir = pg, workdir
        self.copies: list[str] = []
        if not pg:
            self.url = f"sqlite:///{workdir / 'fleet.db'}"
            return
        base = make_url(pg)
        self.base = base
        self.name = f"smsgate_fleetbench_{uuid.uuid4().hex[:8]}"
        self.admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with self.admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{self.name}"'))
        self.url = base.set(database=self.name).render_as_string(hide_password=False)

    def copy(self) -> str:
        n = len(self.copies) + 1
        if not self.pg:
            target = self.workdir / f"run-{n}.db"
            shutil.copyfile(self.workdir / "fleet.db", target)
            for suffix in ("-wal", "-shm"):  # normally checkpointed away when the engine closed
                if (self.workdir / f"fleet.db{suffix}").exists():
                    shutil.copyfile(self.workdir / f"fleet.db{suffix}", self.workdir / f"run-{n}.db{suffix}")
            url = f"sqlite:///{target}"
        else:
            name = f"{self.name}_run{n}"
            with self.admin.connect() as c:
                c.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{self.name}"'))
            url = self.base.set(database=name).render_as_string(hide_password=False)
        self.copies.append(url)
        return url

    def discard(self, url: str) -> None:
        """A run's copy is not needed once measured (tmpfs and PostgreSQL space)."""
        if not self.pg:
            Path(make_url(url).database).unlink(missing_ok=True)
            return
        with self.admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))

    def drop(self) -> None:
        if not self.pg:
            return
        with self.admin.connect() as c:
            for url in [*self.copies, self.url]:
                name = make_url(url).database
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


# -- main ---------------------------------------------------------------------------------------


def report(result: Result, peak: float, plan_phones: int, model: Plan) -> None:
    mark = " (the plan's count)" if result.phones == plan_phones else ""
    print(f"\n== {result.phones} phones + {result.modems} modems{mark}: wall {result.seconds:.0f}s")
    own = model.check(result.phones, result.modems)
    print(f"  the plan's model on this very night: volunteers' p50 {own.p50:.1f}s  p95 {own.p95:.1f}s")
    for label, values in (("volunteers", result.volunteers), ("strangers", result.strangers)):
        print(
            f"  reply lag {label:10s} n={len(values):6d}  p50 {pct(values, 50):7.1f}s"
            f"  p95 {pct(values, 95):7.1f}s  max {max(values, default=float('nan')):7.1f}s"
        )
    print(
        f"  volunteers' p95 under {TARGET:g}s and every reply sent: {'yes' if result.met else 'NO'};"
        f" unsent {result.unsent}; volunteer replies passed by a stranger's on their device: {result.behind}"
    )
    print("  queue depth every 5 min: " + " ".join(f"{d}" for _, d in result.depth))
    print("  SMS per device: " + ", ".join(f"{k} {v}" for k, v in sorted(result.per_device.items())))
    print(
        f"  real code, wall clock: the two workers claimed, sent and recorded {result.send_rate:.1f} SMS/s"
        f" (the night's peak: {peak:.1f} texts/s)",
        flush=True,
    )


def search(
    planned: int, max_runs: int, jobs: int, attempt: Callable[[list[int]], dict[int, Result]]
) -> dict[int, Result]:
    """From the plan's count, down while the target is met, up while it is not, ``jobs`` counts
    at a time, until a count that meets the target sits next to one that does not."""
    results: dict[int, Result] = {}
    counts = [c for c in range(planned, planned - jobs, -1) if c >= 1]
    while counts and len(results) < max_runs:
        counts = [c for c in counts if c not in results][: max_runs - len(results)]
        results.update(attempt(counts))
        met = sorted(c for c, r in results.items() if r.met)
        if met and (met[0] == 1 or met[0] - 1 in results):
            break
        if met:
            counts = [c for c in range(met[0] - 1, met[0] - 1 - jobs, -1) if c >= 1]
        else:
            top = max(results)
            counts = list(range(top + 1, top + 1 + jobs))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=20000, help="texts in the night (at least)")
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--modems", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--peak-factor",
        type=float,
        default=2.5,
        help="the night's top against its average (the plan's default)",
    )
    parser.add_argument(
        "--spread", choices=("even", "random"), default="even", help="volunteers over devices"
    )
    parser.add_argument("--max-runs", type=int, default=4, help="runs of the phone-count search")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (processes)")
    parser.add_argument(
        "--intake-jobs", type=int, default=2, help="intake processes, by station (SQLite: writes take turns)"
    )
    parser.add_argument("--phones", type=int, nargs="*", help="run these phone counts instead of searching")
    parser.add_argument("--pg", help="PostgreSQL server URL; scratch databases are created and dropped")
    args = parser.parse_args()
    print("command: .venv/bin/python bench/fleet.py " + " ".join(sys.argv[1:]), flush=True)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the fake devices' request log
    logging.getLogger("smsgate").setLevel(logging.ERROR)  # the failing phone's retries
    shm = Path("/dev/shm")  # SQLite on tmpfs: the figures are virtual time, fsync would only cost wall time
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as tmp:
        workdir = Path(tmp)
        scratch = Scratch(args.pg, workdir)
        try:
            database = Database.from_url(scratch.url)
            upgrade(database.engine)
            volunteers = math.ceil(args.messages / 1.2 / 1.05 / 10) * 10
            people = build(database, volunteers)
            database.dispose()
            # The night's assumptions, the same for the plan and for the drawn night.
            assumptions = Assumptions(
                volunteers=volunteers,
                hours=args.hours,
                peak_factor=args.peak_factor,
                headroom=0.0,  # the fake devices transmit at exactly their rate
                spare=1,  # one phone fails half-way
                android_rate=PHONE_RATE,
                modem_rate=MODEM_RATE,
                target_seconds=TARGET,
                spread=args.spread,
            )
            print(
                "assumptions (the plan's and the night's): "
                + ", ".join(
                    f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in asdict(assumptions).items()
                )
            )
            texts = night(people, assumptions, args.seed)
            average = len(texts) / (args.hours * 3600)
            minute, five = busiest(texts, args.hours, 60), busiest(texts, args.hours, 300)
            peak = minute * average
            print(
                f"night: {len(texts):,} texts ({sum(t.stranger for t in texts):,} from unknown numbers) from"
                f" {volunteers:,} volunteers over {args.hours:g} virtual hours, drawn from the plan's profile"
                f" (seed {args.seed}): busiest minute x{minute:.2f} ({peak:.1f} texts/s),"
                f" busiest 5 min x{five:.2f} ({five * average:.1f} texts/s);"
                f" database {make_url(scratch.url).get_backend_name()}",
                flush=True,
            )
            settings = Settings.from_env(
                {
                    "SMSGATE_DATABASE_URL": scratch.url,
                    "SMSGATE_ANDROID_SECRET": ANDROID_SECRET,
                    "SMSGATE_KANNEL_SECRET": KANNEL_SECRET,
                    "SMSGATE_KANNEL_REPLY": "queue",
                }
            )
            plan = planned_phones(assumptions, args.modems)
            planned = plan["mixed"]["android_phones"]
            modelled = ", ".join(
                f"{c['phones']} phones p95 {c['p95']:.1f}s"
                for c in plan["checks"][f"phones next to {args.modems} modems"]
            )
            print(
                f"plan: smsgate {plan['command']}\n  -> {planned} phones next to {args.modems} modems"
                f" (profile: busiest minute {plan['busiest_minute_per_second']:.2f} texts/s,"
                f" busiest 5 min {plan['busiest_5min_per_second']:.2f}; the plan's model, worst of its"
                f" nights: {modelled})",
                flush=True,
            )
            model = plan_model(assumptions, nights=[draw_night(assumptions, args.seed)])
            print(
                f"  the plan's model on this very night (seed {args.seed}) needs"
                f" {model.phones_with(args.modems)} phones next to {args.modems} modems",
                flush=True,
            )
            strangers = sorted({t.phone for t in texts if t.stranger})
            people_phones = [phone for phone, _desa, _tps in people]
            counts = args.phones or [planned]

            def spread_over(fleet: list[Member]) -> dict[str, Member]:
                return assign(people_phones, strangers, fleet, args.spread, args.seed)

            chosen = spread_over(members(counts[0], args.modems))
            print(
                f"intake: {len(texts):,} texts through the app (signed webhooks), once,"
                f" by {args.intake_jobs} process(es)",
                flush=True,
            )
            station = {phone: n // 10 for n, (phone, _desa, _tps) in enumerate(people)}
            rate = take_all_in(scratch.url, settings, chosen, texts, args.intake_jobs, station)
            print(
                f"intake: {rate:.1f} texts/s on the wall clock (the night's peak: {peak:.1f} texts/s)",
                flush=True,
            )
            end = max(t.at for t in texts) + 900  # a quarter of an hour to drain after the last text

            def attempt(counts: list[int]) -> dict[int, Result]:
                work = []
                for phones in counts:
                    fleet = members(phones, args.modems)
                    url = scratch.copy()
                    rehome(url, spread_over(fleet))
                    work.append((url, settings, fleet, end, args.hours, workdir))
                if len(work) == 1:
                    done = [run(*work[0])]
                else:
                    with ProcessPoolExecutor(
                        len(work), mp_context=multiprocessing.get_context("fork")
                    ) as pool:
                        done = list(pool.map(run, *zip(*work, strict=True)))
                for (url, *_), result in zip(work, done, strict=True):
                    report(result, peak, planned, model)
                    scratch.discard(url)
                return {r.phones: r for r in done}

            if args.phones:
                results = {}
                for i in range(0, len(args.phones), max(args.jobs, 1)):
                    results.update(attempt(args.phones[i : i + max(args.jobs, 1)]))
            else:
                results = search(planned, args.max_runs, max(args.jobs, 1), attempt)
            good = [p for p, r in results.items() if r.met]
            needed = min(good) if good else None
            bounded = needed is not None and (needed == 1 or needed - 1 in results)
            if needed is None:
                verdict = "no count run met the target"
            elif needed == planned:
                verdict = "the plan agrees"
            else:
                verdict = f"the plan differs by {planned - needed:+d}"
            print(f"the plan's model on this very night needs {model.phones_with(args.modems)}")
            print("load average (1, 5, 15 min) at the end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
            print(
                f"\nsmallest phone count meeting the target: {needed}"
                f"{'' if bounded else ' (no failing run below it)'}; plan said {planned}: {verdict}"
            )
        finally:
            scratch.drop()


if __name__ == "__main__":
    main()
