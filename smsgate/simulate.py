"""``smsgate simulate``: an election night of signed Twilio webhooks, usable as a load test.

The simulator plays the registered volunteers of a deployment: each one texts the count of
their station in one of the forms the README lists as tolerated, some make mistakes, some send a wrong
count and correct it by resending, some ask ``CEK`` or ``BANTUAN``, a few strangers text in,
and the provider delivers some messages twice (same ``MessageSid``). Every request carries a
real ``X-Twilio-Signature`` computed over the exact URL it is posted to.

The plan is deterministic for a seed and the database's state (who sends what, in which form);
message ids are new on every run so a second run against the same database is new traffic, not
redeliveries. When the roster comes from the database, a run continues the night that is
already there: a station that has a result keeps its count, and no volunteer sends the text
flood control would hold (their latest handled text of the last ``SMSGATE_FLOOD_DUPLICATE_SECONDS``):
another tolerated form says the same thing. So the command can be run again at once.
Messages go out at a fixed rate from a pool of connections; a message that depends on an
earlier one (a correction, a redelivery, a ``CEK``) waits until that one was answered.

``run`` returns a ``Summary``: replies by outcome, status codes, latency percentiles and, when
the database is readable, the reports stored for this run against the report messages the
server accepted (the two must be equal: a redelivery never stores a second report) and what
flood control held. ``Summary.problems`` is what makes ``smsgate simulate`` exit 1: a failed
request, a count that differs, or a message answered otherwise than planned (held included).
"""

from __future__ import annotations

import csv
import html
import itertools
import random
import re
import secrets
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Never

import requests
from sqlalchemy import func, select
from tqdm import tqdm
from twilio.request_validator import RequestValidator

from .db import Database
from .models import VOLUNTEER, Candidate, Contact, InboundMessage, Report, Station, StationResult, utcnow
from .phones import InvalidPhone, normalise_phone
from .regions import normalise_code, to_key

WEBHOOK_PATH = "/webhooks/twilio"
ACCOUNT_SID = "AC" + "5" * 32
TO_NUMBER = "+15005550006"
DEFAULT_VOTERS = 250
_MESSAGE = re.compile(r"<Message>(.*?)</Message>", re.S)

#: What the simulated night is made of: category -> weight. Corrections and redeliveries
#: need an earlier message and fall back to a first report until there is one.
MIX: dict[str, float] = {
    "report": 0.72,
    "mistake": 0.08,
    "correction": 0.04,
    "duplicate": 0.06,
    "command": 0.07,
    "unregistered": 0.03,
}

#: The tolerated report forms (README, the message language) and how often volunteers use them.
FORMS: dict[str, float] = {
    "canonical": 0.30,
    "extras": 0.12,
    "colon": 0.06,
    "hash": 0.06,
    "star": 0.04,
    "comma": 0.03,
    "semicolon": 0.03,
    "no_space": 0.05,
    "loose": 0.05,
    "letter_o": 0.04,
    "positional": 0.05,
    "no_station": 0.07,
    "station_id": 0.03,
    "dotted_id": 0.02,
    "any_order": 0.05,
}

MISTAKES = (
    "sum_mismatch",
    "missing_candidate",
    "bad_number",
    "unknown_candidate",
    "unknown_station",
    "positional_count",
)

#: How often a volunteer's first report carries a wrong value they correct later.
WRONG_FIRST = 0.06


# -- who sends ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Volunteer:
    phone: str
    desa: str  # dotted desa code
    tps: int | None  # the station they are assigned to, when assigned to one
    lang: str = "id"


@dataclass
class Roster:
    """The volunteers, the stations of their desas (number -> registered voters) and the candidates.

    From a database also what the night so far left behind: ``counts``, the count each station
    with a result has, keyed by (dotted desa, tps), so a new run does not contradict it; and
    ``latest``, each phone's latest handled text within flood control's window (normalised as
    flood control compares texts), which a new run must not send again.
    """

    volunteers: list[Volunteer]
    stations: dict[str, dict[int, int | None]] = field(default_factory=dict)
    candidates: tuple[str, ...] = ("01", "02", "03")
    counts: dict[tuple[str, int], Count] = field(default_factory=dict)
    latest: dict[str, str] = field(default_factory=dict)

    def station_numbers(self, volunteer: Volunteer) -> list[int]:
        if volunteer.tps is not None:
            return [volunteer.tps]
        return sorted(self.stations.get(volunteer.desa, {})) or [1]

    def registered(self, desa: str, tps: int) -> int:
        return self.stations.get(desa, {}).get(tps) or DEFAULT_VOTERS


#: Outcomes of messages flood control held (services/flood.py): they neither count nor match.
HELD_OUTCOMES = ("duplicate_text", "throttled", "error")
#: SMSGATE_FLOOD_DUPLICATE_SECONDS's default: how far back a repeated text is held.
DUPLICATE_WINDOW = 600


def normal_text(body: str) -> str:
    """A text as flood control compares it: whitespace and case aside."""
    return " ".join(body.split()).upper()


def roster_from_database(database: Database, window: float = DUPLICATE_WINDOW) -> Roster:
    """Every active volunteer of the database with the stations of their desa, the counts of
    stations that have a result, and each phone's latest handled text of the last ``window`` s."""
    with database.read() as session:
        rows = session.execute(
            select(Contact.phone, Contact.region_code, Contact.tps, Contact.lang)
            .where(Contact.role == VOLUNTEER, Contact.active.is_(True), Contact.region_code.is_not(None))
            .order_by(Contact.id)
        ).all()
        volunteers = [
            Volunteer(phone, code, tps, lang or "id") for phone, code, tps, lang in rows if code is not None
        ]
        desas = {v.desa for v in volunteers}
        stations: dict[str, dict[int, int | None]] = defaultdict(dict)
        for code, tps, voters in session.execute(
            select(Station.region_code, Station.tps, Station.registered_voters)
        ):
            if code in desas:
                stations[code][tps] = voters
        candidates = tuple(session.scalars(select(Candidate.code).order_by(Candidate.code)))
        counts = {}
        for key, votes, invalid in session.execute(
            select(StationResult.station_id, StationResult.votes, StationResult.invalid).where(
                StationResult.status.in_(("reported", "verified")), StationResult.votes.is_not(None)
            )
        ):
            desa = f"{key[:2]}.{key[2:4]}.{key[4:6]}.{key[6:10]}"
            if desa in desas and votes:
                counts[(desa, int(key[10:]))] = Count(dict(votes), invalid or 0)
        latest = {}
        for phone, body in session.execute(
            select(InboundMessage.from_number, InboundMessage.body)
            .where(
                InboundMessage.received_at > utcnow() - timedelta(seconds=window),
                InboundMessage.outcome.not_in(HELD_OUTCOMES),
            )
            .order_by(InboundMessage.received_at, InboundMessage.id)
        ):
            latest[phone] = normal_text(body or "")
    return Roster(volunteers, dict(stations), candidates or ("01", "02", "03"), counts, latest)


def roster_from_csv(path: Path, candidates: Sequence[str] = ("01", "02", "03")) -> Roster:
    """Volunteers from a file in the ``import volunteers`` format (coordinators are skipped)."""
    volunteers = []
    with path.open(newline="", encoding="utf-8-sig") as stream:
        for row in csv.DictReader(stream):
            row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
            if (row.get("role") or VOLUNTEER).lower() != VOLUNTEER or not row.get("region_code"):
                continue
            try:
                phone = normalise_phone(row["phone"])
                desa = normalise_code(row["region_code"])
            except (InvalidPhone, ValueError, KeyError):
                continue
            tps = int(row["tps"]) if row.get("tps", "").isdigit() else None
            volunteers.append(Volunteer(phone, desa, tps, (row.get("lang") or "id").lower()))
    stations: dict[str, dict[int, int | None]] = defaultdict(dict)
    for v in volunteers:
        stations[v.desa][v.tps or 1] = None
    return Roster(volunteers, dict(stations), tuple(candidates))


# -- what they send -------------------------------------------------------------------------


@dataclass(frozen=True)
class Count:
    """One station's count from the C.Hasil form."""

    votes: dict[str, int]
    invalid: int

    @property
    def valid(self) -> int:
        return sum(self.votes.values())


@dataclass
class Planned:
    """One webhook to send. ``expect`` is ``OK``/``GAGAL`` or None when either is fine.

    ``repeat`` marks a text the same phone already sent under another id: flood control may
    hold it without a reply (SMSGATE_FLOOD_DUPLICATE_SECONDS), which is then fine too.
    """

    index: int
    category: str
    form: str
    phone: str
    body: str
    sid: str
    expect: str | None
    stores_report: bool = False
    after: int | None = None
    repeat: bool = False

    def expected(self, outcome: str) -> bool:
        if self.expect is None or outcome == self.expect:
            return outcome != "failed"
        return self.repeat and outcome == "none"


def _count_for(rng: random.Random, candidates: Sequence[str], registered: int) -> Count:
    turnout = rng.uniform(0.62, 0.92)
    ballots = round(registered * turnout)
    invalid = round(ballots * rng.uniform(0.005, 0.03))
    base = [0.30, 0.52, 0.18, 0.10, 0.10, 0.10][: len(candidates)]
    weights = [max(0.01, w + rng.gauss(0, 0.08)) for w in base]
    total = sum(weights)
    valid = ballots - invalid
    votes = [int(valid * w / total) for w in weights]
    votes[0] += valid - sum(votes)
    return Count(dict(zip(candidates, votes, strict=True)), invalid)


def station_count(seed: int, desa: str, tps: int, candidates: Sequence[str], registered: int | None) -> Count:
    """What the simulated night says station ``desa``/``tps`` counted: the simulation's ground
    truth, the same whether or not a volunteer of the station reports during the run."""
    return _count_for(random.Random(f"{seed}:{desa}:{tps}"), candidates, registered or DEFAULT_VOTERS)


def _typo(count: Count, rng: random.Random) -> Count:
    """The same count with one value mistyped (a digit swapped or dropped), still plausible."""
    code = rng.choice(sorted(count.votes))
    value = str(count.votes[code])
    if len(value) >= 2 and value[0] != value[1]:
        wrong = int(value[1] + value[0] + value[2:])
    else:
        wrong = int(value[:-1] or "0")
    return Count(count.votes | {code: wrong}, count.invalid)


def _o(text: str) -> str:
    return text.replace("0", "O")


def report_body(form: str, count: Count, desa: str, tps: int, rng: random.Random) -> str:
    """A report in one of the tolerated forms."""
    pairs = [(code, value) for code, value in count.votes.items()]
    station = f"TPS {tps:03d}"
    if form == "extras":
        text = " ".join(f"{c}={v}" for c, v in pairs)
        return f"{station} {text} SAH={count.valid} TS={count.invalid}"
    if form == "colon":
        return f"{station} " + " ".join(f"{c}:{v}" for c, v in pairs)
    if form in ("hash", "star", "comma", "semicolon"):
        sep = {"hash": "#", "star": "*", "comma": ",", "semicolon": ";"}[form]
        return sep.join([f"TPS{sep}{tps:03d}"] + [f"{c}={v}" for c, v in pairs])
    if form == "no_space":
        return f"TPS{tps:03d} " + " ".join(f"{c}={v}" for c, v in pairs)
    if form == "loose":
        return f"  tps  {tps}   " + "  ".join(f"{int(c)}={v}" for c, v in pairs) + " "
    if form == "letter_o":
        return f"TPS {_o(f'{tps:03d}')} " + " ".join(f"{_o(c)}={v}" for c, v in pairs)
    if form == "positional":
        return "#".join([f"TPS#{tps:03d}"] + [str(v) for _, v in pairs])
    if form == "no_station":
        return " ".join(f"{c}={v}" for c, v in pairs)
    if form == "station_id":
        return f"TPS {to_key(desa)}{tps:03d} " + " ".join(f"{c}={v}" for c, v in pairs)
    if form == "dotted_id":
        return f"TPS {desa}/{tps} " + " ".join(f"{c}={v}" for c, v in pairs)
    if form == "any_order":
        shuffled = pairs[:]
        rng.shuffle(shuffled)
        if shuffled == pairs:
            shuffled.reverse()
        return f"{station} " + " ".join(f"{c}={v}" for c, v in shuffled)
    return f"{station} " + " ".join(f"{c}={v}" for c, v in pairs)


def mistake_body(kind: str, count: Count, tps: int, candidates: Sequence[str]) -> str:
    """A report that must be rejected with a specific error."""
    pairs = list(count.votes.items())
    station = f"TPS {tps:03d}"
    text = " ".join(f"{c}={v}" for c, v in pairs)
    if kind == "sum_mismatch":
        return f"{station} {text} SAH={count.valid + 10}"
    if kind == "missing_candidate":
        return f"{station} " + " ".join(f"{c}={v}" for c, v in pairs[:-1])
    if kind == "bad_number":
        code, value = pairs[-1]
        return f"{station} " + " ".join(f"{c}={v}" for c, v in pairs[:-1]) + f" {code}={value}x"
    if kind == "unknown_candidate":
        extra = f"{len(candidates) + 1:02d}"
        return f"{station} {text} {extra}=12"
    if kind == "unknown_station":
        return f"TPS 998 {text}"
    # positional_count: one number short
    return "#".join([f"TPS#{tps:03d}"] + [str(v) for _, v in pairs[:-1]])


def _unregistered_phones(rng: random.Random, known: set[str]) -> Iterator[str]:
    while True:
        phone = f"+62819{rng.randrange(10**7, 10**8)}"
        if phone not in known:
            yield phone


def _weighted(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


class _Planner:
    """The state of one planned night: who has reported which station, which first reports
    were wrong (to be corrected), the counts drawn so far and the texts already planned. Each
    ``plan_*`` method plans one message of its category; the random draws happen in a fixed
    order, so the plan is the same for the same seed and roster."""

    def __init__(self, roster: Roster, seed: int, run_id: str) -> None:
        self.roster = roster
        self.seed = seed
        self.run_id = run_id
        self.rng = random.Random(seed)
        self.volunteers = roster.volunteers[:]
        self.rng.shuffle(self.volunteers)
        self.fresh = iter(self.volunteers)
        self.strangers = _unregistered_phones(self.rng, {v.phone for v in self.volunteers})
        self.counts: dict[tuple[str, int], Count] = {}
        self.reported: list[tuple[Volunteer, int, int]] = []  # (volunteer, tps, index of the report)
        self.to_correct: list[tuple[Volunteer, int, int]] = []
        self.out: list[Planned] = []
        #: (phone, text) -> the first message with that text; sent concurrently, either of two
        #: equal texts can be the one flood control holds, so both are marked as repeats.
        self.texts: dict[tuple[str, str], Planned] = {}

    def count_of(self, desa: str, tps: int) -> Count:
        """The station's count: the roster's when it has one, else drawn from the seed."""
        key = (desa, tps)
        if key not in self.counts:
            self.counts[key] = self.roster.counts.get(key) or station_count(
                self.seed, desa, tps, self.roster.candidates, self.roster.registered(desa, tps)
            )
        return self.counts[key]

    def new_text(self, phone: str, bodies: Iterable[str]) -> str:
        """The first of ``bodies`` that is not the phone's latest text before this run (flood
        control would hold it); when all are, the first (then marked a repeat by ``add``)."""
        held = self.roster.latest.get(phone)
        first = None
        for body in bodies:
            first = body if first is None else first
            if normal_text(body) != held:
                return body
        assert first is not None
        return first

    def report_bodies(self, volunteer: Volunteer, form: str, count: Count, tps: int) -> Iterable[str]:
        """The report in ``form``, then in every other form the volunteer can use."""
        for f in [form, *(f for f in FORMS if f != form)]:
            if f != "no_station" or volunteer.tps is not None:
                yield report_body(f, count, volunteer.desa, tps, self.rng)

    def add(
        self, category: str, form: str, phone: str, body: str, expect: str | None, **kw: object
    ) -> Planned:
        """Append one message, marking it (and its twin) a repeat when flood control may hold it."""
        index = len(self.out)
        sid = kw.pop("sid", None) or f"SM{self.run_id}{index:024x}"
        text = (phone, normal_text(body))
        first = self.texts.get(text) if category != "duplicate" else None
        if first is not None:
            kw["repeat"] = first.repeat = True
        if category != "duplicate" and self.roster.latest.get(phone) == text[1]:
            kw["repeat"] = True  # no other text says the same: flood control may hold it
        item = Planned(index, category, form, phone, body, str(sid), expect, **kw)  # type: ignore[arg-type]
        if category != "duplicate":
            self.texts.setdefault(text, item)
        self.out.append(item)
        return item

    def plan_report(self) -> None:
        """A volunteer's first report (sometimes with a typo, to be corrected later); once
        everyone has reported, a volunteer sends the same count again."""
        rng = self.rng
        volunteer = next(self.fresh, None)
        if volunteer is None:
            volunteer, tps, _ = rng.choice(self.reported)
            form = _pick_form(rng, volunteer)
            count = self.count_of(volunteer.desa, tps)
            body = self.new_text(volunteer.phone, self.report_bodies(volunteer, form, count, tps))
            self.add("report", f"resend:{form}", volunteer.phone, body, "OK", stores_report=True)
            return
        tps = rng.choice(self.roster.station_numbers(volunteer))
        count = self.count_of(volunteer.desa, tps)
        wrong = rng.random() < WRONG_FIRST
        form = _pick_form(rng, volunteer)
        sent = _typo(count, rng) if wrong else count
        body = self.new_text(volunteer.phone, self.report_bodies(volunteer, form, sent, tps))
        item = self.add("report", form, volunteer.phone, body, "OK", stores_report=True)
        self.reported.append((volunteer, tps, item.index))
        if wrong:
            self.to_correct.append((volunteer, tps, item.index))

    def plan_correction(self) -> None:
        """The right count after a wrong first report (a first report when none is wrong)."""
        if not self.to_correct:
            self.plan_report()
            return
        rng = self.rng
        volunteer, tps, index = self.to_correct.pop(rng.randrange(len(self.to_correct)))
        form = _pick_form(rng, volunteer)
        count = self.count_of(volunteer.desa, tps)
        body = self.new_text(volunteer.phone, self.report_bodies(volunteer, form, count, tps))
        self.add("correction", form, volunteer.phone, body, "OK", stores_report=True, after=index)

    def plan_duplicate(self) -> None:
        """The gateway delivering an earlier message again, with the same message id."""
        original = self.out[self.rng.randrange(len(self.out))]
        if original.after is not None and original.category == "duplicate":
            original = self.out[original.after]
        self.add(
            "duplicate",
            original.category,
            original.phone,
            original.body,
            original.expect,
            sid=original.sid,
            after=original.index,
            repeat=original.repeat,
        )

    def plan_command(self) -> None:
        """HELP, or CHECK of a station the volunteer has reported."""
        rng = self.rng
        volunteer, tps, index = rng.choice(self.reported)
        phone = volunteer.phone
        if rng.random() < 0.3:
            word = "HELP" if volunteer.lang == "en" else rng.choice(["BANTUAN", "bantuan", "?"])
            self.add("command", "help", phone, self.new_text(phone, (word, "?", "HELP")), None)
        else:
            word = "CHECK" if volunteer.lang == "en" else "CEK"
            body = self.new_text(phone, (f"{word} TPS {tps}", f"{word} TPS {tps:03d}"))
            self.add("command", "check", phone, body, "OK", after=index)

    def plan_mistake(self) -> None:
        """A malformed report, which must get a precise error."""
        rng = self.rng
        volunteer = rng.choice(self.volunteers)
        tps = rng.choice(self.roster.station_numbers(volunteer))
        kind = rng.choice(MISTAKES)
        count = self.count_of(volunteer.desa, tps)
        kinds = [kind, *(k for k in MISTAKES if k != kind)]
        candidates = self.roster.candidates
        body = self.new_text(volunteer.phone, (mistake_body(k, count, tps, candidates) for k in kinds))
        self.add("mistake", kind, volunteer.phone, body, "GAGAL")

    def plan_unregistered(self) -> None:
        """A well-formed report from a phone that is not registered, which must be refused."""
        rng = self.rng
        volunteer = rng.choice(self.volunteers)
        tps = rng.choice(self.roster.station_numbers(volunteer))
        stranger = next(self.strangers)
        count = self.count_of(volunteer.desa, tps)
        body = self.new_text(
            stranger,
            (report_body(f, count, volunteer.desa, tps, rng) for f in FORMS if f != "no_station"),
        )
        self.add("unregistered", "report", stranger, body, "GAGAL")


def plan(roster: Roster, messages: int, seed: int = 1, run_id: str | None = None) -> list[Planned]:
    """``messages`` webhooks for an election night, deterministic for ``seed`` and the roster
    (ids aside). Stations in ``roster.counts`` keep that count; a text equal to the phone's
    ``roster.latest`` is replaced by another form saying the same, or marked a repeat."""
    if not roster.volunteers:
        raise ValueError("no volunteers to simulate (register some first)")
    planner = _Planner(roster, seed, run_id or secrets.token_hex(4))
    while len(planner.out) < messages:
        category = _weighted(planner.rng, MIX)
        if category == "report" or (
            category in ("correction", "duplicate", "command") and not planner.reported
        ):
            planner.plan_report()
        elif category == "correction":
            planner.plan_correction()
        elif category == "duplicate":
            planner.plan_duplicate()
        elif category == "command":
            planner.plan_command()
        elif category == "mistake":
            planner.plan_mistake()
        else:
            planner.plan_unregistered()
    return planner.out


def _pick_form(rng: random.Random, volunteer: Volunteer) -> str:
    while True:
        form = _weighted(rng, FORMS)
        if form != "no_station" or volunteer.tps is not None:
            return form


# -- sending --------------------------------------------------------------------------------


@dataclass
class Result:
    planned: Planned
    status: int | None
    reply: str | None
    latency: float
    error: str | None = None

    @property
    def outcome(self) -> str:
        """``OK``, ``GAGAL`` (also for English ``ERROR``), ``other``, ``none``, or ``failed``."""
        if self.status != 200:
            return "failed"
        if not self.reply:
            return "none"
        word = self.reply.split(None, 1)[0].rstrip(":").upper()
        if word == "OK":
            return "OK"
        if word in ("GAGAL", "ERROR"):
            return "GAGAL"
        return "other"


@dataclass
class Summary:
    url: str
    planned: int
    sent: int
    elapsed: float
    rate: float
    concurrency: int
    outcomes: Counter[str]
    statuses: Counter[int]
    errors: Counter[str]
    latencies: list[float]
    by_category: dict[str, Counter[str]]
    unexpected: list[Result]
    duplicates: int
    duplicates_same_reply: int
    accepted_report_messages: int
    stopped_early: bool
    reports_stored: int | None = None
    messages_logged: int | None = None
    distinct_messages: int = 0
    #: What flood control did to this run's messages (from the database): ``duplicate_text``
    #: and ``throttled`` (held: not handled, no reply), ``reply_limit`` (handled, no reply).
    flood: Counter[str] | None = None
    #: Message ids flood control held or left unanswered.
    flood_ids: set[str] = field(default_factory=set)

    @property
    def throughput(self) -> float:
        return self.sent / self.elapsed if self.elapsed else 0.0

    @property
    def problems(self) -> list[str]:
        """Why the run failed, one phrase each; empty when every message was answered as planned.

        A message flood control held counts as a problem unless the plan itself repeated the
        text (then holding it is what flood control is for); a held message is never silent."""
        found = []
        failed_requests = self.non_200 + sum(self.errors.values())
        if failed_requests:
            found.append(f"{failed_requests} requests failed (non-200 or connection errors)")
        if self.reports_stored is not None and self.reports_stored != self.accepted_report_messages:
            found.append(f"{self.reports_stored} reports stored for {self.accepted_report_messages} accepted")
        answered = [r for r in self.unexpected if r.status == 200]
        if answered:
            held = [r for r in answered if r.planned.sid in self.flood_ids]
            silent = [r for r in answered if r.outcome == "none" and r.planned.sid not in self.flood_ids]
            detail = []
            if held:
                detail.append(f"{len(held)} held or left unanswered by flood control")
            if silent:
                detail.append(
                    f"{len(silent)} without reply (flood control, if the server's limits are on; "
                    "--database shows which)"
                    if self.flood is None
                    else f"{len(silent)} without reply"
                )
            found.append(
                f"{len(answered)} messages answered otherwise than planned"
                + (f" ({'; '.join(detail)})" if detail else "")
            )
        return found

    @property
    def failed(self) -> bool:
        """Whether the run found a fault (``problems``); ``smsgate simulate`` then exits 1."""
        return bool(self.problems)

    @property
    def non_200(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != 200)

    def percentile(self, p: float) -> float:
        """Latency in seconds at percentile ``p`` (0..100), nearest-rank."""
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
        return ordered[rank - 1]

    def format(self) -> str:
        ms = {p: 1000 * self.percentile(p) for p in (50, 90, 99)}
        worst = 1000 * max(self.latencies, default=0.0)
        lines = [
            f"sent {self.sent} of {self.planned} messages to {self.url} in {self.elapsed:.1f} s"
            f" ({self.throughput:.1f} msgs/s; limit {self.rate:g}/s, {self.concurrency} connections)"
            + ("  STOPPED at the time limit" if self.stopped_early else ""),
            f"replies: {self.outcomes['OK']} OK, {self.outcomes['GAGAL']} GAGAL/ERROR, "
            f"{self.outcomes['other']} other, {self.outcomes['none']} without reply; "
            f"non-200: {self.non_200}"
            + (
                f" ({', '.join(f'{s}: {n}' for s, n in sorted(self.statuses.items()) if s != 200)})"
                if self.non_200
                else ""
            )
            + f"; errors: {sum(self.errors.values())}",
            f"latency: p50 {ms[50]:.0f} ms, p90 {ms[90]:.0f} ms, p99 {ms[99]:.0f} ms, max {worst:.0f} ms",
        ]
        kinds = []
        for category, outcomes in sorted(self.by_category.items()):
            detail = ", ".join(f"{o} {n}" for o, n in outcomes.most_common())
            kinds.append(f"{category} {sum(outcomes.values())} ({detail})")
        lines.append("by kind: " + "; ".join(kinds))
        lines.append(
            f"redeliveries (same MessageSid): {self.duplicates} sent, "
            f"{self.duplicates_same_reply} answered with the first reply"
        )
        if self.unexpected:
            lines.append(f"unexpected replies: {len(self.unexpected)}, e.g.")
            for result in self.unexpected[:5]:
                lines.append(
                    f"  [{result.planned.category}/{result.planned.form}] {result.planned.body!r}"
                    f" -> {result.reply or result.error or result.status!r}"
                )
        for result in [r for r in self.unexpected if r.error][:1]:
            lines.append(f"  first error: {result.error}")
        if self.reports_stored is not None:
            verdict = "OK" if self.reports_stored == self.accepted_report_messages else "MISMATCH"
            lines.append(
                f"database: {self.reports_stored} reports stored for {self.accepted_report_messages} "
                f"accepted report messages ({verdict}); {self.messages_logged} of "
                f"{self.distinct_messages} distinct messages logged"
            )
        if self.flood is not None:
            lines.append(
                f"flood control: held {self.flood['duplicate_text']} as a repeat of the phone's last text "
                f"(duplicate_text), {self.flood['throttled']} over the per-minute limit (throttled); "
                f"{self.flood['reply_limit']} handled without a reply (reply_limit)"
            )
        problems = self.problems
        lines.append("result: " + ("FAILED: " + "; ".join(problems) if problems else "OK"))
        return "\n".join(lines)


def progress_bar(total: int, description: str = "sending") -> tqdm[Never]:
    """A tqdm bar on stderr, off when stderr is not a terminal; ``update()`` once per reply.

    The bar is updated from the sending threads; tqdm's own lock makes that safe.
    """
    return tqdm(total=total, desc=description, unit="msg", disable=None, leave=False, file=sys.stderr)


def webhook_url(url: str) -> str:
    """The deployment's base URL gets the Twilio webhook path; a URL with a path is used as is."""
    trimmed = url.rstrip("/")
    scheme_host = trimmed.split("://", 1)[-1]
    return trimmed if "/" in scheme_host else trimmed + WEBHOOK_PATH


def twilio_form(item: Planned) -> dict[str, str]:
    return {
        "ToCountry": "US",
        "SmsMessageSid": item.sid,
        "NumMedia": "0",
        "SmsSid": item.sid,
        "SmsStatus": "received",
        "Body": item.body,
        "To": TO_NUMBER,
        "NumSegments": "1",
        "MessageSid": item.sid,
        "AccountSid": ACCOUNT_SID,
        "From": item.phone,
        "ApiVersion": "2010-04-01",
    }


def reply_text(body: str) -> str | None:
    match = _MESSAGE.search(body)
    return html.unescape(match.group(1)) if match else None


def send_all(
    items: Sequence[Planned],
    url: str,
    auth_token: str,
    *,
    rate: float,
    concurrency: int = 8,
    timeout: float = 15.0,
    max_seconds: float | None = None,
    on_result: Callable[[Result], object] | None = None,
) -> tuple[list[Result], float, bool]:
    """Post ``items`` at ``rate`` per second over ``concurrency`` connections.

    Returns the results in plan order (only those sent), the elapsed seconds and whether the
    time limit stopped it. A message with ``after`` waits until that one was answered.
    """
    validator = RequestValidator(auth_token)
    done = [threading.Event() for _ in items]
    results: list[Result | None] = [None] * len(items)
    taken = itertools.count()
    lock = threading.Lock()
    stop = threading.Event()
    interval = 1.0 / rate if rate > 0 else 0.0
    start = time.monotonic()
    deadline = start + max_seconds if max_seconds else None

    def worker() -> None:
        with requests.Session() as session:
            session.headers["User-Agent"] = "TwilioProxy/1.1 (smsgate simulate)"
            while not stop.is_set():
                with lock:
                    index = next(taken)
                if index >= len(items):
                    return
                item = items[index]
                due = start + index * interval
                if deadline is not None and due > deadline:
                    stop.set()
                    return
                if due > time.monotonic() and stop.wait(due - time.monotonic()):
                    return
                if item.after is not None:
                    done[item.after].wait(timeout)
                results[index] = _post(session, validator, url, item, timeout)
                done[index].set()
                if on_result is not None:
                    on_result(results[index])  # type: ignore[arg-type]

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(max(1, concurrency))]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)
    except KeyboardInterrupt:
        stop.set()
        for thread in threads:
            thread.join(timeout + 1)
    elapsed = time.monotonic() - start
    return [r for r in results if r is not None], elapsed, stop.is_set()


def _post(
    session: requests.Session, validator: RequestValidator, url: str, item: Planned, timeout: float
) -> Result:
    form = twilio_form(item)
    headers = {"X-Twilio-Signature": validator.compute_signature(url, form)}
    began = time.perf_counter()
    try:
        response = session.post(url, data=form, headers=headers, timeout=timeout)
    except requests.RequestException as exc:
        return Result(item, None, None, time.perf_counter() - began, f"{type(exc).__name__}: {exc}")
    latency = time.perf_counter() - began
    reply = reply_text(response.text) if response.status_code == 200 else None
    return Result(item, response.status_code, reply, latency)


def summarise(
    items: Sequence[Planned],
    results: Sequence[Result],
    *,
    url: str,
    elapsed: float,
    rate: float,
    concurrency: int,
    stopped: bool,
) -> Summary:
    by_category: dict[str, Counter[str]] = defaultdict(Counter)
    outcomes: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    first_reply: dict[str, Result] = {}
    unexpected = []
    duplicates = same = 0
    accepted_reports: set[str] = set()
    for result in results:
        item = result.planned
        outcome = result.outcome
        outcomes[outcome] += 1
        by_category[item.category][outcome] += 1
        if result.status is not None:
            statuses[result.status] += 1
        if result.error:
            errors[result.error.split(":", 1)[0]] += 1
        if item.category == "duplicate":
            duplicates += 1
            first = first_reply.get(item.sid)
            same += int(
                first is not None and first.status == result.status == 200 and first.reply == result.reply
            )
        else:
            first_reply[item.sid] = result
        if item.stores_report and outcome == "OK":
            accepted_reports.add(item.sid)
        if not item.expected(outcome):
            unexpected.append(result)
    return Summary(
        url=url,
        planned=len(items),
        sent=len(results),
        elapsed=elapsed,
        rate=rate,
        concurrency=concurrency,
        outcomes=outcomes,
        statuses=statuses,
        errors=errors,
        latencies=[r.latency for r in results if r.status is not None],
        by_category=dict(by_category),
        unexpected=unexpected,
        duplicates=duplicates,
        duplicates_same_reply=same,
        accepted_report_messages=len(accepted_reports),
        stopped_early=stopped,
        distinct_messages=len({r.planned.sid for r in results}),
    )


def count_stored(database: Database, sid_prefix: str) -> tuple[int, int]:
    """(reports stored, inbound messages logged) for the Twilio message ids of one run."""
    pattern = sid_prefix + "%"
    with database.read() as session:
        reports = session.scalar(
            select(func.count(Report.id))
            .join(InboundMessage, Report.inbound_message_id == InboundMessage.id)
            .where(InboundMessage.provider == "twilio", InboundMessage.provider_message_id.like(pattern))
        )
        logged = session.scalar(
            select(func.count(InboundMessage.id)).where(
                InboundMessage.provider == "twilio", InboundMessage.provider_message_id.like(pattern)
            )
        )
    return int(reports or 0), int(logged or 0)


def flood_outcomes(database: Database, sid_prefix: str) -> tuple[Counter[str], set[str]]:
    """What flood control did to one run's Twilio messages: counts by kind, and their ids."""
    pattern = sid_prefix + "%"
    kinds: Counter[str] = Counter({"duplicate_text": 0, "throttled": 0, "reply_limit": 0})
    ids = set()
    with database.read() as session:
        rows = session.execute(
            select(
                InboundMessage.provider_message_id, InboundMessage.outcome, InboundMessage.error_code
            ).where(
                InboundMessage.provider == "twilio",
                InboundMessage.provider_message_id.like(pattern),
                (InboundMessage.outcome.in_(("duplicate_text", "throttled")))
                | (InboundMessage.error_code == "reply_limit"),
            )
        )
        for sid, outcome, error_code in rows:
            kinds[outcome if outcome in ("duplicate_text", "throttled") else error_code or outcome] += 1
            ids.add(sid)
    return kinds, ids


def run(
    url: str,
    auth_token: str,
    roster: Roster,
    *,
    messages: int,
    rate: float,
    concurrency: int = 8,
    seed: int = 1,
    max_seconds: float | None = None,
    database: Database | None = None,
    on_result: Callable[[Result], object] | None = None,
) -> Summary:
    """Plan and send an election night, then count what the database kept (when given)."""
    run_id = secrets.token_hex(4)
    items = plan(roster, messages, seed=seed, run_id=run_id)
    target = webhook_url(url)
    if max_seconds is None:
        max_seconds = 2 * messages / rate + 60 if rate > 0 else None
    results, elapsed, stopped = send_all(
        items,
        target,
        auth_token,
        rate=rate,
        concurrency=concurrency,
        max_seconds=max_seconds,
        on_result=on_result,
    )
    summary = summarise(
        items, results, url=target, elapsed=elapsed, rate=rate, concurrency=concurrency, stopped=stopped
    )
    if database is not None:
        summary.reports_stored, summary.messages_logged = count_stored(database, f"SM{run_id}")
        summary.flood, summary.flood_ids = flood_outcomes(database, f"SM{run_id}")
    return summary
