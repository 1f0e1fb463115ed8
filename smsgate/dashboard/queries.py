"""What the dashboard pages show, as plain data (dicts and lists) built with bounded queries.

Totals come from the sharded region counters (``services.tally``), never from scanning
reports; lists are limited or paginated.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from sqlalchemy import ColumnElement, exists, func, literal, literal_column, or_, select, true
from sqlalchemy.orm import Session

from ..csv_cells import safe_row
from ..db import Database
from ..models import (
    VOLUNTEER,
    Candidate,
    Contact,
    Flag,
    InboundMessage,
    Incident,
    OutboundMessage,
    Region,
    RegionCounter,
    Report,
    Station,
    StationDecision,
    StationResult,
    User,
)
from ..regions import level_of, to_code, to_key
from ..services import outbox, station_results
from ..services.tally import tally
from . import phone_search, text_search

COUNTER_NAMES = ("stations", "reported", "verified", "disputed", "flagged")
PAGE_SIZE = 50
MAX_PAGE = 200
ACTIVITY_HOURS = 24
ACTIVITY_BARS = 60
#: Stations per page of the review queue (a page of full cards, not the whole night at once).
REVIEW_PAGE_SIZE = 25


def candidates(session: Session) -> list[tuple[str, str]]:
    return [(c.code, c.name) for c in session.scalars(select(Candidate).order_by(Candidate.code))]


def shares(votes: dict[str, int], valid: int) -> dict[str, float]:
    return {code: (100.0 * n / valid if valid else 0.0) for code, n in votes.items()}


# -- overview ------------------------------------------------------------------------------


def overview(
    session: Session,
    code: str,
    now: datetime,
    *,
    database: Database,
    card_seconds: float,
    card_grace: float = 0.0,
) -> dict[str, Any]:
    """The overview document (also the JSON the page refreshes itself from), but for the
    activity chart, which ``dashboard.activity`` adds with its own transactions. The quick-count
    card is the stored one (``quickcount.stored``: at most ``card_seconds`` old while results
    change), written through ``database`` when this request computes it (a due card only after
    ``card_grace`` seconds of waiting for ``smsgate worker``)."""
    document = tally(session, code)
    stations = document["stations"]
    stations["missing"] = max(stations["total"] - stations["reported"], 0)
    names = dict(candidates(session))
    document["candidates"] = [
        {
            "code": c,
            "name": names.get(c, c),
            "votes": v,
            "share": shares(document["votes"], document["valid"])[c],
        }
        for c, v in document["votes"].items()
    ]
    document["quick_count"] = quick_count(
        session, code, names, database=database, card_seconds=card_seconds, card_grace=card_grace, now=now
    )
    document["updated_at"] = now.isoformat(timespec="seconds")
    return document


#: The quick-count history chart: an SVG of this size (viewBox units).
HISTORY_WIDTH, HISTORY_HEIGHT = 600, 160


def _pct(r: dict[str, Any] | None, key: str, index: int | None = None) -> float | None:
    if r is None or r[key] is None:
        return None
    return 100 * (r[key] if index is None else r[key][index])


def history_chart(points: Sequence[dict[str, Any]], codes: Sequence[str]) -> dict[str, Any]:
    """Each candidate's estimate through the night as SVG polyline points (x: time, y: share
    in percent, scaled to the highest estimate plus a margin), and the time range."""
    if not points:
        return {"series": [], "first": None, "last": None, "top": 0}
    times = [datetime.fromisoformat(p["t"]).timestamp() for p in points]
    span = (times[-1] - times[0]) or 1.0
    top = max((100 * r["value"] for p in points for r in p["estimate"].values()), default=0.0)
    top = min(100.0, math.ceil((top + 5) / 10) * 10)
    series = []
    for code in codes:
        cells = [
            (10 + (HISTORY_WIDTH - 20) * (t - times[0]) / span, 100 * p["estimate"][code]["value"])
            for t, p in zip(times, points, strict=True)
            if code in p["estimate"]
        ]
        coords = " ".join(
            f"{x:.1f},{HISTORY_HEIGHT - 20 - (HISTORY_HEIGHT - 30) * v / top:.1f}" for x, v in cells
        )
        series.append({"code": code, "points": coords, "last": cells[-1][1] if cells else None})
    return {"series": series, "first": points[0]["t"], "last": points[-1]["t"], "top": top}


def quick_count(
    session: Session,
    code: str,
    names: dict[str, str] | None = None,
    *,
    database: Database,
    card_seconds: float,
    now: datetime,
    card_grace: float = 0.0,
) -> dict[str, Any] | None:
    """The quick-count card: shares in percent with their 95% intervals (None when the
    estimate is indicative), the lead and the call, the warnings, the adjusted estimate, the
    estimate through the night and how fresh it is (when it was computed, from how many
    sampled results, whether a newer result waits), from the card one process computes for
    all (``quickcount.stored``). None when there is no active sample design."""
    from ..quickcount.service import NoDesign
    from ..quickcount.stored import card

    try:
        document, night = card(
            database, session, code or None, interval=card_seconds, now=now, grace=card_grace
        )
    except NoDesign:
        return None
    names = dict(candidates(session)) if names is None else names
    lead = document["lead"]
    adjusted = document["adjusted"]
    president = document["presidential"]
    return {
        "sample": document["stations"]["sample"],
        "counted": document["stations"]["counted"],
        "disputed": document["stations"]["disputed"],
        "warnings": document["warnings"],
        "indicative": document["indicative"],
        "call": document["call"],
        "presidential": president,
        "lead": None
        if lead is None
        else {
            "first": lead["first"],
            "second": lead["second"],
            "value": 100 * lead["value"],
            "low": _pct(lead, "ci95", 0),
            "high": _pct(lead, "ci95", 1),
        },
        "adjusted": None
        if adjusted is None
        else {
            "method": adjusted["method"],
            "estimate": {c: 100 * r["value"] for c, r in adjusted["estimate"].items()},
        },
        "turnout_stations": document["turnout"]["stations"] if document["turnout"] else 0,
        "candidates": [
            {
                "code": c,
                "name": names.get(c, c),
                "estimate": 100 * r["value"],
                "low": _pct(r, "ci95", 0),
                "high": _pct(r, "ci95", 1),
            }
            for c, r in document["estimate"].items()
        ],
        "history": history_chart(night["points"], list(document["estimate"])),
        "freshness": document["freshness"],
    }


# -- drill-down ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Crumb:
    code: str
    name: str


def breadcrumbs(session: Session, code: str, scope_code: str | None) -> list[Crumb]:
    """From the user's scope down to ``code``, one query for the names."""
    codes = [to_code(to_key(code)[:n]) for n in (2, 4, 6, 10) if n <= len(to_key(code))] if code else []
    if scope_code:
        codes = codes[level_of(scope_code) - 1 :]
    names = dict(session.execute(select(Region.code, Region.name).where(Region.code.in_(codes))).all())
    crumbs = [] if scope_code else [Crumb("", "Indonesia")]
    return crumbs + [Crumb(c, names.get(c, c)) for c in codes]


def _row(name: str, code: str, values: dict[str, int], codes: Sequence[str]) -> dict[str, Any]:
    votes = {c: values.get(f"v:{c}", 0) for c in codes}
    valid = values.get("valid", 0)
    row: dict[str, Any] = {"name": name, "code": code}
    row |= {n: values.get(n, 0) for n in COUNTER_NAMES}
    row["missing"] = max(row["stations"] - row["reported"], 0)
    row["votes"] = votes
    row["shares"] = shares(votes, valid)
    row["valid"] = valid
    return row


def child_rows(session: Session, code: str) -> tuple[str, list[dict[str, Any]]]:
    """The rows under ``code``: ("region", child regions) or ("station", the desa's stations).

    Child regions are read from the counters in one grouped query over their keys."""
    codes = [c for c, _ in candidates(session)]
    level = level_of(code)
    if level == 4:
        rows = session.execute(
            select(Station, StationResult)
            .outerjoin(StationResult, StationResult.station_id == Station.id)
            .where(Station.region_code == code)
            .order_by(Station.tps)
        ).all()
        out = []
        for station, result in rows:
            values: dict[str, int] = {"stations": 1}
            if result is not None:
                values |= station_results.counter_values(result)
            out.append(_row(f"TPS {station.tps:03d}", station.id, values, codes))
        return "station", out
    parent = Region.parent_code == code if code else Region.parent_code.is_(None)
    children = list(session.execute(select(Region.code, Region.key, Region.name).where(parent)))
    totals: dict[str, dict[str, int]] = {key: {} for _, key, _ in children}
    if children:
        grouped = session.execute(
            select(RegionCounter.region_key, RegionCounter.name, func.sum(RegionCounter.value))
            .where(RegionCounter.region_key.in_(list(totals)))
            .group_by(RegionCounter.region_key, RegionCounter.name)
        )
        for key, name, value in grouped:
            totals[key][name] = int(value or 0)
    return "region", [_row(name, c, totals[key], codes) for c, key, name in sorted(children)]


def region_names(session: Session, keys: set[str]) -> dict[str, str]:
    """Dotted code -> name for undotted region ``keys`` (one query)."""
    codes = [to_code(k) for k in keys]
    return dict(session.execute(select(Region.code, Region.name).where(Region.code.in_(codes))).all())


# -- station -------------------------------------------------------------------------------


def station_page(session: Session, station_id: str) -> dict[str, Any] | None:
    station = session.get(Station, station_id)
    if station is None:
        return None
    result = session.get(StationResult, station_id)
    reports = list(
        session.scalars(
            select(Report).where(Report.station_id == station_id).order_by(Report.created_at, Report.id)
        )
    )
    message_ids = {r.inbound_message_id for r in reports} | {
        r.cancelled_by_message_id for r in reports if r.cancelled_by_message_id
    }
    messages = list(
        session.scalars(
            select(InboundMessage)
            .where(InboundMessage.id.in_(message_ids))
            .order_by(InboundMessage.received_at, InboundMessage.id)
        )
    )
    contacts = {r.contact_id for r in reports}
    phones = dict(session.execute(select(Contact.id, Contact.phone).where(Contact.id.in_(contacts))).all())
    flags = list(
        session.scalars(select(Flag).where(Flag.station_id == station_id).order_by(Flag.created_at.desc()))
    )
    decisions = session.execute(
        select(StationDecision, User.email)
        .join(User, User.id == StationDecision.user_id)
        .where(StationDecision.station_id == station_id)
        .order_by(StationDecision.decided_at.desc())
    ).all()
    incidents = list(
        session.scalars(
            select(Incident).where(Incident.station_id == station_id).order_by(Incident.created_at.desc())
        )
    )
    region = session.get(Region, station.region_code)
    return {
        "station": station,
        "desa": region.name if region else station.region_code,
        "result": result,
        "reports": reports,
        "phones": phones,
        "messages": messages,
        "flags": flags,
        "report_flags": _open_flags_by_report(flags),
        "decisions": decisions,
        "incidents": incidents,
    }


def _open_flags_by_report(flags: Sequence[Flag]) -> dict[int, list[Flag]]:
    """Open flags beside the report they belong to (a dissenting report's flags stay there)."""
    found: dict[int, list[Flag]] = {}
    for flag in flags:
        if flag.report_id is not None and flag.resolved_at is None:
            found.setdefault(flag.report_id, []).append(flag)
    return found


# -- review queue (the lists themselves: services/review.py) ---------------------------------


class NotCurrent(LookupError):
    """The report to confirm is unknown, of another station, superseded or cancelled."""


def confirm_report(
    session: Session,
    station_id: str,
    report_id: int,
    user: User,
    now: datetime,
    rule: station_results.Rule = station_results.DEFAULT_RULE,
) -> Report:
    """Record ``user``'s decision that ``report_id`` is the station's result.

    The station becomes ``verified`` with that report's values (``station_results.refresh``
    honours the newest decision and moves the counters); its open flags are resolved by
    ``user``."""
    station_results.lock(session, station_id)
    report = session.get(Report, report_id)
    if report is None or report.station_id != station_id or not report.current:
        raise NotCurrent(report_id)
    session.add(StationDecision(station_id=station_id, report_id=report.id, user_id=user.id, decided_at=now))
    for flag in session.scalars(
        select(Flag).where(Flag.station_id == station_id, Flag.resolved_at.is_(None))
    ):
        flag.resolved_at = now
        flag.resolved_by = f"{user.email} (dasbor)"
    for other in station_results.current_reports(session, station_id):
        if dict(other.votes) != dict(report.votes) and other.dissent_cleared_at is None:
            other.dissent_cleared_at = now
            other.dissent_cleared_by = f"{user.email} (dasbor)"
    session.flush()
    station_results.refresh(session, station_id, now=now, rule=rule)
    return report


def reject_override(
    session: Session,
    station_id: str,
    report_id: int,
    user: User,
    now: datetime,
    rule: station_results.Rule = station_results.DEFAULT_RULE,
) -> Report:
    """Reject the coordinator's report that overrides the station: restore the volunteers' agreement
    (including volunteer reports a coordinator cancelled whose cancel was still open: ``_restore_held``).

    The report is cancelled by ``user`` (kept, never deleted; ``report.cancelled`` goes out like
    any cancellation) and its ``override`` flag resolved as rejected, so nothing a volunteer
    sends later brings it back; the coordinator can still send a new report, which is held for
    review again. Raises ``NotCurrent`` unless ``report_id`` is the coordinator's current report
    on a station that is ``overridden`` right now (a stale page, or someone decided first)."""
    result = station_results.lock(session, station_id)
    report = session.get(Report, report_id)
    if (
        report is None
        or report.station_id != station_id
        or not report.current
        or not report.by_coordinator
        or result.status != station_results.OVERRIDDEN
    ):
        raise NotCurrent(report_id)
    report.cancelled_at = now
    for flag in session.scalars(
        select(Flag).where(
            Flag.station_id == station_id,
            Flag.kind == station_results.OVERRIDE_FLAG,
            Flag.resolved_at.is_(None),
        )
    ):
        flag.resolved_at = now
        flag.resolved_by = f"{user.email} (dasbor, ditolak)"
    session.flush()
    outbox.report_cancelled(session, report, now)
    restored = _restore_held(session, station_id, f"{user.email} (dasbor, ditolak)", now)
    session.flush()
    for back in restored:
        outbox.report_stored(session, back, (), now)
    station_results.refresh(session, station_id, now=now, rule=rule)
    return report


def _restore_held(session: Session, station_id: str, by: str, now: datetime) -> list[Report]:
    """Rejecting an override also rejects the open coordinator cancels that stood against it.

    The volunteer reports a coordinator cancelled (``station_results.held_reports``) formed the
    agreement the reviewer chose to keep, so they count again: uncancelled (and announced with
    ``report.accepted`` again), their ``coordinator_cancel`` flags resolved as rejected. A
    volunteer who has sent a newer report since keeps that one; only the flag is resolved."""
    held = station_results.held_reports(session, station_id)
    if not held:
        return []
    senders = {r.contact_id for r in station_results.current_reports(session, station_id)}
    restored: list[Report] = []
    for old in sorted(held, key=lambda r: (r.created_at, r.id), reverse=True):
        if old.contact_id not in senders:
            old.cancelled_at = None
            old.cancelled_by_message_id = None
            senders.add(old.contact_id)
            restored.append(old)
    held_ids = [r.id for r in held]
    for flag in session.scalars(
        select(Flag).where(
            Flag.station_id == station_id,
            Flag.kind == station_results.COORDINATOR_CANCEL,
            Flag.resolved_at.is_(None),
            Flag.report_id.in_(held_ids),
        )
    ):
        flag.resolved_at = now
        flag.resolved_by = by
    return sorted(restored, key=lambda r: r.id)


def resolve_flags(
    session: Session,
    station_id: str,
    user: User,
    now: datetime,
    rule: station_results.Rule = station_results.DEFAULT_RULE,
) -> int:
    """Resolve the station's open flags without choosing a report: for a flagged station with
    nothing left to confirm (a coordinator cancelled its last report). Returns how many."""
    station_results.lock(session, station_id)
    query = select(Flag).where(Flag.station_id == station_id, Flag.resolved_at.is_(None))
    flags = list(session.scalars(query))
    for flag in flags:
        flag.resolved_at = now
        flag.resolved_by = f"{user.email} (dasbor)"
    session.flush()
    station_results.refresh(session, station_id, now=now, rule=rule)
    return len(flags)


# -- message log ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LogEntry:
    direction: str  # "in" | "out"
    at: datetime
    phone: str
    text: str
    outcome: str
    reply: str | None
    id: int


@dataclass(frozen=True)
class MessageFilter:
    phone: str = ""
    text: str = ""
    station: str = ""
    outcome: str = ""


def _contact_in_scope(scope_code: str | None) -> Any:
    if not scope_code:
        return true()
    return or_(Contact.region_code == scope_code, Contact.region_code.like(f"{scope_code}.%"))


@dataclass(frozen=True)
class _Side:
    """One direction of the log, as the filters and the page read it: the same four filters
    apply to inbound and outbound SMS through these columns."""

    model: Any
    contact: Any  # how a message meets its contact: what the coordinator's scope reads
    number: Any  # the other party's phone: what the phone filter reads
    outcome: Any  # inbound outcome or outbound status
    inbound_id: Any  # the inbound message it is (or answers): what the station filter reads
    text: Any
    at: Any
    entry: Callable[[Any], LogEntry]


_INBOUND = _Side(
    InboundMessage,
    # Joined on the phone, not contact_id: (from_number, received_at) is indexed, so a
    # kabupaten's messages are read contact by contact instead of walking the whole
    # night's log backwards until 50 of them turn up (seconds at national scale).
    Contact.phone == InboundMessage.from_number,
    InboundMessage.from_number,
    InboundMessage.outcome,
    InboundMessage.id,
    InboundMessage.body,
    InboundMessage.received_at,
    lambda m: LogEntry("in", m.received_at, m.from_number, m.body, m.outcome, m.reply, m.id),
)
_OUTBOUND = _Side(
    OutboundMessage,
    Contact.id == OutboundMessage.contact_id,
    OutboundMessage.to_number,
    OutboundMessage.status,
    OutboundMessage.inbound_message_id,
    OutboundMessage.text,
    OutboundMessage.created_at,
    lambda m: LogEntry("out", m.created_at, m.to_number, m.text, m.status, m.last_error, m.id),
)


#: A text search across the whole log first reads this many of the newest messages (each side):
#: a word one message in a hundred holds (``TPS 012`` on a real night) has its page there.
SEARCH_WINDOW = 4000
#: Then it asks the trigram index for the messages holding each run of letters and
#: digits of the text (``text_search.candidates``); up to this many, they are all the matches
#: there can be, and the page is read among them.
SEARCH_CANDIDATES = 1000


def message_log(
    session: Session,
    scope_code: str | None,
    filters: MessageFilter,
    page: int,
    window: int = SEARCH_WINDOW,
    candidates: int = SEARCH_CANDIDATES,
) -> tuple[list[LogEntry], bool]:
    """One page of inbound and outbound SMS, newest first, and whether there is a next page.

    A coordinator sees the messages of contacts in their scope; SMS from unknown numbers only
    show to users whose scope is the whole country. ``filters.phone`` is read by
    ``phone_search`` (the start of a number, or its last digits); raises
    ``phone_search.InvalidPhoneSearch`` when it is not part of a phone number. ``filters.text``
    is found anywhere in the message, whatever its case, character for character
    (``text_search``; on PostgreSQL first in the newest ``window`` messages, then among at most
    ``candidates`` trigram matches: ``_page``)."""
    page = max(1, min(page, MAX_PAGE))
    wanted = page * PAGE_SIZE + 1
    phone = phone_search.parse(filters.phone)  # InvalidPhoneSearch: the view says so
    dialect = session.get_bind().dialect.name
    postgresql = dialect == "postgresql"
    national = not (scope_code or phone or filters.station)
    search = Search(
        filters.text.strip().lower(),
        window if postgresql and national else 0,
        candidates if postgresql else 0,
    )
    station_messages = None
    if filters.station:
        station_messages = select(Report.inbound_message_id).where(
            Report.station_id == filters.station.strip()
        )
    entries: list[LogEntry] = []
    for side in (_INBOUND, _OUTBOUND):
        query = select(side.model)
        if scope_code:
            query = query.join(Contact, side.contact).where(_contact_in_scope(scope_code))
        if phone is not None:
            query = query.where(phone_search.condition(side.number, phone, dialect))
        if filters.outcome:
            query = query.where(side.outcome == filters.outcome)
        if station_messages is not None:
            query = query.where(side.inbound_id.in_(station_messages))
        entries += map(side.entry, _page(session, query, side.model, side.text, side.at, search, wanted))
    entries.sort(key=lambda e: (e.at, e.direction == "in", e.id), reverse=True)
    start = (page - 1) * PAGE_SIZE
    return entries[start : start + PAGE_SIZE], len(entries) > start + PAGE_SIZE


@dataclass(frozen=True)
class Search:
    """The text searched for (lower case, ``""``: none), how many of the newest messages are
    read first and how many trigram candidates next (0: not at all; SQLite reads neither)."""

    text: str
    window: int
    candidates: int


def _page(
    session: Session, query: Any, model: Any, column: Any, at: Any, search: Search, wanted: int
) -> list[Any]:
    """The first ``wanted`` rows of ``query`` holding ``search.text`` in ``column``, newest
    (``at``, then id) first, on PostgreSQL in up to three steps, each exact when it answers:

    1. the newest ``search.window`` rows (a range on ``at`` from the window's oldest): a common
       word's page is there, and every older row would come after it;
    2. a text with a run of three letters or digits is looked up run by run in the trigram
       index: when fewer than ``search.candidates`` rows hold every run (counted first, the
       count stopping there), the page is read among them (a materialized CTE, so the planner
       cannot turn it into a walk of the whole log): ``TPS 012`` took 150-280 ms through the
       whole pattern, whose boundary trigrams every report holds, and 2-5 ms this way;
    3. the whole pattern, as the planner sees fit (a walk of the log newest first, or the
       trigram matches sorted).

    A national search whose text is in no message took the planner's walk through all 2.1
    million (seconds) or a 150 ms index intersection; a rare text now costs steps 1 and 2."""
    order = (at.desc(), model.id.desc())
    if not search.text:
        return list(session.scalars(query.order_by(*order).limit(wanted)))
    if search.window:
        since = session.scalar(select(at).order_by(at.desc()).offset(search.window - 1).limit(1))
        if since is not None:
            recent = query.where(at >= since, text_search.exactly(column, search.text))
            found = list(session.scalars(recent.order_by(*order).limit(wanted)))
            if len(found) >= wanted:
                return found
    runs = text_search.candidates(column, search.text)
    if search.candidates and runs:
        probe = select(model.id).where(*runs).limit(search.candidates)
        count = session.scalar(select(func.count()).select_from(probe.subquery())) or 0
        if count < search.candidates:  # every row that can match: read the page among them
            among = probe.cte("candidates").prefix_with("MATERIALIZED")
            exact = query.where(model.id.in_(select(among.c.id)), text_search.exactly(column, search.text))
            return list(session.scalars(exact.order_by(*order).limit(wanted)))
    return list(
        session.scalars(query.where(text_search.anywhere(column, search.text)).order_by(*order).limit(wanted))
    )


def outcomes() -> list[str]:
    from ..models.messages import OUTCOMES
    from ..models.outbound import STATUSES

    return list(OUTCOMES) + list(STATUSES)


def volunteer_history(session: Session, phone: str) -> dict[str, Any] | None:
    contact = session.scalars(select(Contact).where(Contact.phone == phone)).first()
    if contact is None:
        return None
    reports = list(
        session.scalars(
            select(Report).where(Report.contact_id == contact.id).order_by(Report.created_at.desc())
        )
    )
    return {"contact": contact, "reports": reports}


# -- volunteers, incidents, exports --------------------------------------------------------


def _volunteers_without_report(scope_code: str | None, *columns: Any) -> Any:
    """Active volunteers in scope with no report that counts, by region, TPS and phone.

    The volunteer condition is written as the partial index ``ix_contacts_volunteers_in_order``
    states it (a literal role, the bare boolean), so on PostgreSQL a page is read in that index's
    order and stops at its limit instead of sorting every volunteer of the country."""
    reported = exists().where(Report.contact_id == Contact.id, Report.cancelled_at.is_(None))
    return (
        select(*columns)
        .outerjoin(Region, Region.code == Contact.region_code)
        .where(
            Contact.role == literal_column(f"'{VOLUNTEER}'"),
            Contact.active,
            _contact_in_scope(scope_code),
            ~reported,
        )
        .order_by(Contact.region_code, Contact.tps, Contact.phone)
    )


def volunteers_without_report(session: Session, scope_code: str | None, limit: int = 500) -> list[Any]:
    """Rows of ``phone, name, region_code, tps, region_name``: the columns the page shows, not a
    ``Contact`` (every column, an identity-map entry) for each of 500 rows."""
    columns = (
        Contact.phone,
        Contact.name,
        Contact.region_code,
        Contact.tps,
        Region.name.label("region_name"),
    )
    return list(session.execute(_volunteers_without_report(scope_code, *columns).limit(limit)))


#: Rows fetched from the database at a time by the CSV exports (a server-side cursor on
#: PostgreSQL), so memory stays flat however large the export.
EXPORT_BATCH = 2000


def volunteers_csv_rows(session: Session, scope_code: str | None) -> Iterator[list[Any]]:
    """Volunteers without a report, as plain rows straight from the cursor (no ORM objects)."""
    yield ["phone", "name", "region_code", "region_name", "tps"]
    query = _volunteers_without_report(
        scope_code, Contact.phone, Contact.name, Contact.region_code, Region.name, Contact.tps
    )
    for phone, name, region_code, region_name, tps in _stream(session, query):
        yield [phone, name, region_code or "", region_name or "", tps or ""]


def results_csv_rows(session: Session, key: str, zone: tzinfo = UTC) -> Iterator[list[Any]]:
    """Every station under ``key`` with its result, as plain rows straight from the cursor.

    Building an ORM object per station cost ten times the query at province scale; reading
    columns through SQLAlchemy Core keeps a national export to the database's own time.
    ``updated_at`` is ISO 8601 in ``zone`` (the dashboard's, SMSGATE_TIMEZONE) with its offset,
    so the file shows the times the dashboard shows and still names the instant exactly."""
    codes = [c for c, _ in candidates(session)]
    yield [
        "station_id", "region_code", "desa", "tps", "status", *(f"votes_{c}" for c in codes),
        "valid", "invalid", "report_count", "flagged", "updated_at",
    ]  # fmt: skip
    columns = (
        Station.id, Station.region_code, Region.name, Station.tps, StationResult.status,
        StationResult.votes, StationResult.valid, StationResult.invalid,
        StationResult.report_count, StationResult.flagged, StationResult.updated_at,
    )  # fmt: skip
    regions: ColumnElement[bool]
    results: ColumnElement[bool]
    if key:  # each table read by its own prefix range (see results_csv_copy)
        regions = (Region.code == Station.region_code) & Region.code.like(f"{to_code(key)}%")
        results = (StationResult.station_id == Station.id) & StationResult.station_id.like(f"{key}%")
    else:
        regions = Region.code == Station.region_code
        results = StationResult.station_id == Station.id
    query = select(*columns).join(Region, regions).outerjoin(StationResult, results).order_by(Station.id)
    if key:
        query = query.where(Station.id.like(f"{key}%"))
    for station_id, region_code, desa, tps, status, votes, valid, invalid, count, flagged, updated in _stream(
        session, query
    ):
        votes = votes or {}
        yield [
            station_id,
            region_code,
            desa,
            tps,
            status or "missing",
            *(votes.get(c, "") for c in codes),
            "" if valid is None else valid,
            "" if invalid is None else invalid,
            count or 0,
            int(bool(flagged)),
            updated.astimezone(zone).isoformat(timespec="seconds") if status is not None and updated else "",
        ]


#: A text cell a spreadsheet would evaluate, as ``csv_cells.safe_cell`` decides it, in SQL: it
#: starts with a formula character and is neither a plain number nor an E.164 number.
_SQL_FORMULA = (
    "{name} ~ '^[-=+@\t\r]'"
    " AND {name} !~ '^[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][+-]?[0-9]+)?$'"
    " AND {name} !~ '^[+][1-9][0-9]{{6,14}}$'"
)


def results_csv_copy(session: Session, key: str, zone: tzinfo = UTC) -> Iterator[bytes] | None:
    """The results CSV of ``results_csv_rows`` byte for byte, written by PostgreSQL itself
    (``COPY (SELECT …) TO STDOUT``), or None where it cannot be (SQLite; a region name with a
    line break, which only the ``csv`` module writes the same way).

    Formatting 823,220 rows in Python took about 30 s nationally; PostgreSQL writes them in a
    few seconds and the app only passes the chunks on. A cell a spreadsheet would evaluate gets
    the leading apostrophe ``csv_cells.safe_cell`` gives it, ``updated_at`` is written in
    ``zone`` as ``results_csv_rows`` writes it (to the second, with the offset), and lines end
    with CRLF as the ``csv`` module ends them."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    from psycopg import sql

    # Only the names this export writes: every region's name took a quarter of a province's time.
    names = Region.name.regexp_match("[\r\n]")
    if key:
        names = names & Region.code.like(f"{to_code(key)}%")
    broken = session.execute(select(literal(1)).where(names).limit(1))
    if broken.first() is not None:
        return None
    codes = [c for c, _ in candidates(session)]
    header = [
        "station_id", "region_code", "desa", "tps", "status", *(f"votes_{c}" for c in codes),
        "valid", "invalid", "report_count", "flagged", "updated_at",
    ]  # fmt: skip
    name = sql.SQL("nullif(g.name, '')")
    desa = sql.SQL("CASE WHEN {formula} THEN '''' || {name} ELSE {name} END").format(
        formula=sql.SQL(_SQL_FORMULA).format(name=name), name=name
    )
    votes = sql.SQL("").join(sql.SQL("r.votes ->> {}, ").format(sql.Literal(c)) for c in codes)
    # to_char writes a timestamptz in the session's zone: this transaction's is ``zone``.
    session.execute(select(func.set_config("TimeZone", getattr(zone, "key", "UTC"), True)))
    updated = sql.SQL(
        "CASE WHEN r.status IS NOT NULL THEN to_char(r.updated_at, 'YYYY-MM-DD\"T\"HH24:MI:SSTZH:TZM') END"
    )
    # A region's stations, its desa and its results are each read by their own prefix range
    # (pattern-ops indexes): with the prefix on the stations alone, PostgreSQL read every
    # result and every region of the country to join a province's (0.7 s of 0.9 s).
    where: sql.Composable
    in_regions: sql.Composable
    in_results: sql.Composable
    if key:
        where = sql.SQL("WHERE s.id LIKE {}").format(sql.Literal(f"{key}%"))
        in_regions = sql.SQL(" AND g.code LIKE {}").format(sql.Literal(f"{to_code(key)}%"))
        in_results = sql.SQL(" AND r.station_id LIKE {}").format(sql.Literal(f"{key}%"))
    else:
        where = in_regions = in_results = sql.SQL("")
    query = sql.SQL(
        "COPY (SELECT s.id, s.region_code, {desa}, s.tps, coalesce(r.status, 'missing'), {votes}"
        "r.valid, r.invalid, coalesce(r.report_count, 0), CASE WHEN r.flagged THEN 1 ELSE 0 END,"
        " {updated} FROM stations s JOIN regions g ON g.code = s.region_code{in_regions}"
        " LEFT JOIN station_results r ON r.station_id = s.id{in_results} {where} ORDER BY s.id)"
        " TO STDOUT WITH (FORMAT csv)"
    ).format(
        desa=desa, votes=votes, updated=updated, where=where, in_regions=in_regions, in_results=in_results
    )
    connection = session.connection().connection.driver_connection
    assert connection is not None  # a live psycopg connection: the session has just connected

    def chunks() -> Iterator[bytes]:
        buffer = io.StringIO()
        csv.writer(buffer).writerow(safe_row(header))
        yield buffer.getvalue().encode()
        with connection.cursor() as cursor, cursor.copy(query) as copy:
            for data in copy:
                yield bytes(data).replace(b"\n", b"\r\n")

    return chunks()


def _stream(session: Session, query: Any) -> Iterator[Any]:
    result = session.execute(query.execution_options(stream_results=True, yield_per=EXPORT_BATCH))
    for partition in result.partitions():
        yield from partition


def incidents(session: Session, key: str, limit: int = 200) -> list[Any]:
    """The newest incidents under ``key`` (``""``: the whole country, read by ``created_at``)."""
    query = (
        select(Incident, Contact.phone)
        .join(Contact, Contact.id == Incident.contact_id)
        .order_by(Incident.created_at.desc(), Incident.id.desc())
        .limit(limit)
    )
    if key:
        query = query.where(Incident.place_key.like(f"{key}%"))
    return list(session.execute(query))
