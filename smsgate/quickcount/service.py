"""The quick count against the database: store sample designs, load the live results of the
sampled stations and hand them to the pure functions in ``design`` and ``estimate``.

Which station results count (the rule, also stated in every document under ``rule``):
``reported``, ``verified`` and ``overridden`` results are current and enter the estimate with the
values the tally counts for them (a flagged station still counts, as in the tally; an
``overridden`` one with the volunteers' agreed reading, not the coordinator's report that waits
for a decision, so a spoofed coordinator SMS moves neither); ``disputed`` ones are
left out of the estimate and listed under ``disputed`` until someone settles them; ``missing``
ones are not in yet. The estimate therefore treats reported sampled stations as a random
subsample of their stratum (weights N_h / reported n_h); the coverage warnings say when that
is too early to trust.
"""

from __future__ import annotations

import csv
import hashlib
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TextIO

import numpy as np
from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.orm import Session

from ..importers import ImportError_
from ..models import (
    Candidate,
    OfficialResult,
    PreviousResult,
    Report,
    SampleDesign,
    SampleResultChange,
    SampleStation,
    SampleStratum,
    Station,
    StationResult,
)
from ..regions import KEY_LENGTHS, normalise_code, to_code, to_key
from ..services import tally as tally_service
from ..services.station_results import DISPUTED, OVERRIDDEN, REPORTED, VERIFIED
from . import analysis, call, design, estimate

#: ``--strata`` choices and the region level each one stratifies by.
STRATA_LEVELS = {"province": 1, "kabkota": 2, "kecamatan": 3}
COUNTED = (REPORTED, VERIFIED, OVERRIDDEN)
RULE = (
    "reported, verified and overridden station results count with the values the tally counts "
    "(overridden: the volunteers' agreed reading, not the coordinator's report under review); "
    "disputed ones are left out and listed"
)
CALL_RULE = (
    f"called: the 99% interval of the lead excludes 0, at least {call.CALL_COVERAGE:.0%} of the sample "
    f"is counted, the estimate is not indicative and no {'/'.join(call.BLOCKING)} warning; "
    "leading: the 95% interval of the lead excludes 0; otherwise too close to call"
)
PRESIDENTIAL_RULE = (
    "three or more pairs: more than 50% of the votes and at least 20% in more than half of the "
    "provinces wins, otherwise a second round between the top two; two pairs: plurality"
)


class NoDesign(LookupError):
    """There is no active sample design yet."""


UnknownRegion = tally_service.UnknownRegion


@dataclass(frozen=True)
class Drawn:
    design: SampleDesign
    strata: int
    frame: int


def _store(
    session: Session,
    *,
    level: str,
    region: str | None,
    seed: int | None,
    strata: dict[str, tuple[int, int, float]],
    members: Iterable[tuple[str, str]],
    now: datetime | None,
) -> SampleDesign:
    session.execute(update(SampleDesign).where(SampleDesign.active.is_(True)).values(active=False))
    record = SampleDesign(
        strata_level=level,
        region_code=region,
        seed=seed,
        size=sum(n for _, n, _ in strata.values()),
        active=True,
        **({"created_at": now} if now else {}),
    )
    session.add(record)
    session.flush()
    ids: dict[str, int] = {}
    for code, (population, sample, registered) in sorted(strata.items()):
        row = SampleStratum(
            design_id=record.id, code=code, population=population, sample_size=sample, registered=registered
        )
        session.add(row)
        session.flush()
        ids[code] = row.id
    rows = [{"design_id": record.id, "station_id": s, "stratum_id": ids[code]} for s, code in members]
    if rows:
        session.execute(insert(SampleStation), rows)
    return record


def draw_sample(
    session: Session,
    *,
    size: int,
    strata: str,
    seed: int,
    region: str | None = None,
    now: datetime | None = None,
) -> Drawn:
    """Draw and store a new active design from the stations (in ``region`` when given).

    Raises ValueError when the frame cannot give ``size`` stations (too few, or fewer than
    two per stratum), UnknownRegion for an unknown region.
    """
    if strata not in STRATA_LEVELS:
        raise ValueError(f"strata must be one of {', '.join(STRATA_LEVELS)}")
    info = tally_service.region_info(session, region)
    code, key = info.code or None, info.key
    width = KEY_LENGTHS[STRATA_LEVELS[strata]]
    if len(key) > width:
        raise ValueError(f"region {code} is smaller than a {strata} stratum")
    query = select(Station.id, Station.registered_voters).order_by(Station.id)
    if key:
        query = query.where(Station.id.like(f"{key}%"))
    frame = session.execute(query).all()
    if not frame:
        raise ValueError("no stations in the frame (import stations first)")
    ids = np.array([row.id for row in frame])
    labels = np.array([to_code(station[:width]) for station in ids])
    voters = np.array(
        [np.nan if row.registered_voters is None else row.registered_voters for row in frame], dtype=float
    )
    chosen, summary = design.draw_frame(labels, voters, size, seed)
    record = _store(
        session,
        level=strata,
        region=code,
        seed=seed,
        strata=summary,
        members=zip(ids[chosen].tolist(), labels[chosen].tolist(), strict=True),
        now=now,
    )
    return Drawn(record, len(summary), len(frame))


def read_sample_csv(stream: TextIO) -> list[tuple[str, str]]:
    """``station_id,stratum`` rows (station IDs dotted or not); ImportError_ names bad lines."""
    reader = csv.DictReader(stream)
    header = [h.strip().lower() for h in reader.fieldnames or []]
    if "station_id" not in header or "stratum" not in header:
        raise ImportError_(["line 1: need the columns station_id,stratum"])
    reader.fieldnames = header
    rows, problems = [], []
    for row in reader:
        station = (row.get("station_id") or "").strip().replace(".", "").replace("/", "")
        stratum = (row.get("stratum") or "").strip()
        if not (station.isdigit() and len(station) == 13):
            problems.append(f"line {reader.line_num}: not a 13-digit station ID: {station!r}")
        elif not stratum:
            problems.append(f"line {reader.line_num}: stratum is empty")
        else:
            rows.append((station, stratum))
    if problems:
        raise ImportError_(problems)
    return rows


def import_sample(session: Session, rows: list[tuple[str, str]], now: datetime | None = None) -> Drawn:
    """Store an external design. Each stratum must be a region code (any level): its N_h is
    the number of stations in that region here, and every station must lie inside it."""
    problems: list[str] = []
    if not rows:
        raise ImportError_(["the file has no stations"])
    seen: set[str] = set()
    strata: dict[str, list[str]] = {}
    for station, stratum in rows:
        try:
            code = normalise_code(stratum)
        except ValueError:
            problems.append(f"{station}: stratum {stratum!r} is not a region code")
            continue
        if station in seen:
            problems.append(f"{station}: listed twice")
        seen.add(station)
        if not station.startswith(to_key(code)):
            problems.append(f"{station}: not inside stratum {code}")
        strata.setdefault(code, []).append(station)
    known = set(session.scalars(select(Station.id).where(Station.id.in_(seen)))) if seen else set()
    problems += [f"{s}: unknown station" for s in sorted(seen - known)]
    summary: dict[str, tuple[int, int, float]] = {}
    for code, members in sorted(strata.items()):
        voters = [
            v
            for (v,) in session.execute(
                select(Station.registered_voters).where(Station.id.like(f"{to_key(code)}%"))
            )
        ]
        known_voters = [v for v in voters if v is not None]
        mean = sum(known_voters) / len(known_voters) if known_voters else 0.0
        total = float(sum(known_voters) + mean * (len(voters) - len(known_voters)))
        summary[code] = (len(voters), len(members), total)
        if len(members) > len(voters):
            problems.append(f"stratum {code}: {len(members)} sampled but only {len(voters)} stations")
    if problems:
        raise ImportError_(problems)
    record = _store(
        session,
        level="import",
        region=None,
        seed=None,
        strata=summary,
        members=[(s, normalise_code(c)) for s, c in rows],
        now=now,
    )
    return Drawn(record, len(summary), sum(N for N, _, _ in summary.values()))


def active_design(session: Session) -> SampleDesign | None:
    return session.scalars(
        select(SampleDesign).where(SampleDesign.active.is_(True)).order_by(SampleDesign.id.desc())
    ).first()


def _ratio(r: estimate.Ratio, digits: int = 6, *, interval: bool = True) -> dict[str, Any]:
    """A ratio as JSON; without ``interval`` (an indicative estimate) no margin or interval."""
    return {
        "value": round(r.value, digits),
        "se": round(r.se, digits),
        "df": r.df,
        "margin95": round(r.margin95, digits) if interval else None,
        "ci95": [round(v, digits) for v in r.ci95] if interval else None,
        "ci99": [round(v, digits) for v in r.ci99] if interval else None,
    }


@dataclass
class Loaded:
    """The sample of the strata a region touches, with each station's last change."""

    sample: analysis.Sample
    updated: np.ndarray  # seconds since the epoch, NaN for stations without a result
    statuses: list[str | None]
    strata: list[SampleStratum]


def _previous_of_desa(session: Session, desas: list[str], candidates: list[str]) -> dict[str, np.ndarray]:
    """Per desa key: the previous votes of every station of the desa, per candidate, then valid."""
    totals: dict[str, np.ndarray] = {}
    for start in range(0, len(desas), 500):
        chunk = desas[start : start + 500]
        for desa, votes, valid in session.execute(
            select(PreviousResult.desa, PreviousResult.votes, PreviousResult.valid).where(
                PreviousResult.desa.in_(chunk)
            )
        ):
            sums = totals.setdefault(desa, np.zeros(len(candidates) + 1))
            sums[:-1] += [float((votes or {}).get(c, 0)) for c in candidates]
            sums[-1] += float(valid or 0)
    return totals


def load(session: Session, record: SampleDesign, info: tally_service.RegionInfo) -> Loaded:
    """One query for the sampled stations (with their result, the report it rests on for TS,
    and their previous result), one for the strata, and one for the desa-level previous
    results when any were imported."""
    key = info.key
    rows = _sampled_rows(session, record)
    inside_strata = sorted({row.stratum for row in rows if row.station_id.startswith(key)})
    strata = {
        s.code: s
        for s in session.scalars(
            select(SampleStratum).where(
                SampleStratum.design_id == record.id, SampleStratum.code.in_(inside_strata)
            )
        )
    }
    codes = sorted(strata)
    position = {code: i for i, code in enumerate(codes)}
    rows = [row for row in rows if row.stratum in position]
    candidates = list(session.scalars(select(Candidate.code).order_by(Candidate.code)))
    candidates += sorted({c for row in rows for c in (row.votes or {})} - set(candidates))
    K = len(candidates)
    votes = np.array([[(row.votes or {}).get(c, 0) for c in candidates] for row in rows], dtype=float)
    votes = votes.reshape(len(rows), K)
    station_ids = np.array([row.station_id for row in rows], dtype=str)
    previous_votes, previous_valid, desa_votes = _previous(session, rows, candidates, station_ids)
    updated = np.array([np.nan if row.updated_at is None else row.updated_at.timestamp() for row in rows])
    sample = analysis.Sample(
        candidates=candidates,
        strata=codes,
        population=np.array([strata[c].population for c in codes], dtype=float),
        stratum_registered=np.array([strata[c].registered for c in codes], dtype=float),
        station_ids=station_ids,
        unit_stratum=np.array([position[row.stratum] for row in rows], dtype=np.int64),
        counted=np.array([row.status in COUNTED for row in rows], dtype=bool),
        disputed=np.array([row.status == DISPUTED for row in rows], dtype=bool),
        votes=votes,
        invalid=np.array([np.nan if row.invalid is None else float(row.invalid) for row in rows]),
        registered=np.array([np.nan if row.registered is None else float(row.registered) for row in rows]),
        domain=np.array([sid.startswith(key) for sid in station_ids], dtype=bool),
        previous_votes=previous_votes,
        previous_valid=previous_valid,
        desa_previous_votes=desa_votes,
        desa_previous_valid=previous_valid if desa_votes is not None else None,
        national=info.code == "",
    )
    return Loaded(sample, updated, [row.status for row in rows], [strata[c] for c in codes])


def _sampled_rows(session: Session, record: SampleDesign) -> list[Row[Any]]:
    """Every sampled station of ``record``, by station id: its stratum, counted result (status,
    votes, the TS of the report it rests on, when it changed), registered voters and previous
    result, each column read by its name."""
    return list(
        session.execute(
            select(
                SampleStation.station_id,
                SampleStratum.code.label("stratum"),
                StationResult.status,
                StationResult.votes,
                Report.invalid,
                Station.registered_voters.label("registered"),
                StationResult.updated_at,
                PreviousResult.votes.label("previous_votes"),
                PreviousResult.valid.label("previous_valid"),
            )
            .join(SampleStratum, SampleStratum.id == SampleStation.stratum_id)
            .join(Station, Station.id == SampleStation.station_id)
            .outerjoin(StationResult, StationResult.station_id == SampleStation.station_id)
            .outerjoin(Report, Report.id == StationResult.report_id)
            .outerjoin(PreviousResult, PreviousResult.station_id == SampleStation.station_id)
            .where(SampleStation.design_id == record.id)
            .order_by(SampleStation.station_id)
        )
    )


def _previous(
    session: Session, rows: Sequence[Row[Any]], candidates: Sequence[str], station_ids: np.ndarray
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """The sampled stations' previous votes and valid ballots, and the previous votes of their
    desa scaled to each station's valid ballots (all None when no previous result was imported)."""
    if all(row.previous_valid is None for row in rows):
        return None, None, None
    K = len(candidates)
    previous_votes = np.array(
        [
            [
                np.nan if row.previous_valid is None else float((row.previous_votes or {}).get(c, np.nan))
                for c in candidates
            ]
            for row in rows
        ]
    ).reshape(len(rows), K)
    previous_valid = np.array(
        [np.nan if row.previous_valid is None else float(row.previous_valid) for row in rows]
    )
    desas = _previous_of_desa(session, sorted({sid[:10] for sid in station_ids}), list(candidates))
    known_columns = ~np.all(np.isnan(previous_votes), axis=0)
    desa_votes = np.full((len(rows), K), np.nan)
    for i, sid in enumerate(station_ids):
        total = desas.get(sid[:10])
        if total is not None and total[-1] > 0 and np.isfinite(previous_valid[i]):
            desa_votes[i] = np.where(known_columns, total[:-1] / total[-1] * previous_valid[i], np.nan)
    return previous_votes, previous_valid, desa_votes


def replay(loaded: Loaded, moment: datetime) -> analysis.Sample:
    """The sample as it stood at ``moment``: a station counts from its result's last change."""
    by_then = np.isfinite(loaded.updated) & (np.nan_to_num(loaded.updated, nan=np.inf) <= moment.timestamp())
    return replace(
        loaded.sample, counted=loaded.sample.counted & by_then, disputed=loaded.sample.disputed & by_then
    )


def _estimate_of(result: estimate.QuickCountResult, candidates: list[str], digits: int = 6) -> dict[str, Any]:
    """Per candidate, the estimated share (no interval while the estimate is indicative)."""
    if not result.shares:
        return {}
    interval = not result.indicative
    return {
        c: _ratio(r, digits, interval=interval) for c, r in zip(candidates, result.shares.ratios, strict=True)
    }


def _lead_of(
    result: estimate.QuickCountResult, candidates: list[str], digits: int = 6
) -> dict[str, Any] | None:
    """The leader, the runner-up and the lead between them, or None with fewer than two."""
    if result.lead is None:
        return None
    return {
        "first": candidates[result.lead.first],
        "second": candidates[result.lead.second],
        **_ratio(result.lead.ratio, digits, interval=not result.indicative),
    }


def _adjusted_of(found: analysis.Analysis, candidates: list[str], with_lead: bool) -> dict[str, Any] | None:
    """The estimate adjusted for non-response, when the checks called for one."""
    if found.adjusted is None:
        return None
    interval = not found.result.indicative
    ratios = found.adjusted.ratios
    return {
        "method": found.adjusted.method,
        "estimate": {
            c: _ratio(r, interval=interval)
            for c, r in zip(candidates, ratios[: len(candidates)], strict=True)
        },
        "lead": _ratio(ratios[-1], interval=interval) if with_lead else None,
    }


def _rate_of(result: estimate.QuickCountResult, part: estimate.RatioEstimate | None) -> dict[str, Any] | None:
    """Turnout or the invalid rate, with the number of stations that gave it."""
    if part is None or result.shares is None:
        return None
    return {**_ratio(part.ratios[0], interval=not result.indicative), "stations": result.with_invalid}


def _presidential_of(found: analysis.Analysis) -> dict[str, Any] | None:
    """The presidential rule's outcome (national presidential races only)."""
    if found.presidential is None:
        return None
    p = found.presidential
    return {
        "rule": PRESIDENTIAL_RULE,
        "pairs": p.pairs,
        "provinces": p.provinces,
        "outcome": p.outcome,
        "winner": p.winner,
        "runoff": list(p.runoff) if p.runoff else None,
        "status": p.status,
        "provinces_20": p.provinces_20,
        "provinces_20_certain": p.provinces_20_certain,
    }


def _nonresponse_of(found: analysis.Analysis) -> list[dict[str, Any]]:
    """Reported against missing stations, one entry per auxiliary variable."""
    return [
        {
            "variable": c.variable,
            "reported": round(c.reported, 4),
            "missing": round(c.missing, 4),
            "difference": round(c.difference, 4),
            "z": round(c.z, 2) if np.isfinite(c.z) else None,
            "warn": c.warn,
        }
        for c in found.checks
    ]


def _nonresponse_test_of(found: analysis.Analysis) -> dict[str, Any] | None:
    """The joint test of reported against missing stations, when there is one."""
    if found.test is None:
        return None
    return {
        "statistic": round(found.test.statistic, 3),
        "df": found.test.df,
        "p_value": round(found.test.p_value, 5),
        "level": found.test.level,
        "reject": found.test.reject,
    }


def document_of(found: analysis.Analysis, sample: analysis.Sample) -> dict[str, Any]:
    """The analysis as the JSON fields of the quick-count document (estimate, lead, call,
    turnout, warnings, checks, adjusted estimate, presidential rule, strata)."""
    result = found.result
    candidates = sample.candidates
    cov = result.coverage
    lead = _lead_of(result, candidates)
    return {
        "stations": {
            "sample": cov.sampled,
            "counted": cov.reported,
            "disputed": sum(s.disputed for s in result.strata),
            "coverage": round(cov.rate, 4),
        },
        "estimate": _estimate_of(result, candidates),
        "indicative": bool(result.shares is not None and result.indicative),
        "min_stations": estimate.MIN_STATIONS,
        "lead": lead,
        "call": found.call,
        "call_rule": CALL_RULE,
        "presidential": _presidential_of(found),
        "turnout": _rate_of(result, result.turnout),
        "invalid": _rate_of(result, result.invalid),
        "adjusted": _adjusted_of(found, candidates, with_lead=lead is not None),
        "nonresponse": _nonresponse_of(found),
        "nonresponse_test": _nonresponse_test_of(found),
        "warnings": found.warnings,
        "collapsed_strata": result.shares.collapsed if result.shares else [],
        "lagging_strata": cov.lagging,
    }


#: (database, design id, design creation, region key) -> (fingerprint, document without comparison)
_cache: dict[tuple[str, int, str, str], tuple[tuple[Any, ...], dict[str, Any]]] = {}
_CACHE_LIMIT = 512


def fingerprint(session: Session, record: SampleDesign) -> tuple[Any, ...]:
    """What changes whenever the estimate could, in one statement: how many times a sampled
    station's result changed (``SampleResultChange``, logged by the database in the transaction
    that changed it), the previous-result import and the candidates."""
    changes = (
        select(func.count())
        .select_from(SampleResultChange)
        .where(SampleResultChange.design_id == record.id)
        .scalar_subquery()
    )
    previous = select(func.max(PreviousResult.imported_at)).scalar_subquery()
    candidates = select(func.count(Candidate.code)).scalar_subquery()
    return tuple(session.execute(select(changes, previous, candidates)).one())


def _loader(session: Session, record: SampleDesign, info: tally_service.RegionInfo) -> Callable[[], Loaded]:
    """``load(session, record, info)`` run at most once, on first call: the card recomputes the
    estimate and the night from the same sample instead of reading it twice (on the national
    data set the read and its arrays are about a fifth of the card's recomputation)."""
    kept: list[Loaded] = []

    def loaded() -> Loaded:
        if not kept:
            kept.append(load(session, record, info))
        return kept[0]

    return loaded


def _core(
    session: Session,
    record: SampleDesign,
    info: tally_service.RegionInfo,
    mark: tuple[Any, ...] | None = None,
    loaded: Callable[[], Loaded] | None = None,
) -> dict[str, Any]:
    """The estimate part of the document, recomputed only when ``fingerprint`` (``mark``, when
    the caller has just read it) changed, from ``loaded()`` when given (shared with the night)."""
    url = session.get_bind().engine.url.render_as_string(hide_password=True)
    key = (url, record.id, record.created_at.isoformat(), info.key)
    mark = fingerprint(session, record) if mark is None else mark
    cached = _cache.get(key)
    if cached is not None and cached[0] == mark:
        return cached[1]
    document = body((loaded or _loader(session, record, info))())
    if len(_cache) >= _CACHE_LIMIT:
        _cache.clear()
    _cache[key] = (mark, document)
    return document


def body(loaded: Loaded, sample: analysis.Sample | None = None) -> dict[str, Any]:
    """The estimate part of the document (``document_of``, the strata and the disputed
    stations) from ``loaded`` (or ``sample``, a replay of it)."""
    sample = sample or loaded.sample
    found = analysis.analyse(sample)
    body = document_of(found, sample)
    body["strata"] = [
        {
            "code": s.code,
            "population": s.population,
            "sampled": s.sampled,
            "reported": s.reported,
            "disputed": s.disputed,
            "coverage": round(s.reported / s.sampled, 4) if s.sampled else None,
        }
        for s in found.result.strata
    ]
    body["disputed"] = [
        {"station": str(sid), "stratum": sample.strata[h]}
        for sid, h, argued, inside in zip(
            sample.station_ids, sample.unit_stratum, sample.disputed, sample.domain, strict=True
        )
        if argued and inside
    ]
    return body


def quickcount(
    session: Session, region: str | None = None, *, as_of: datetime | None = None, comparison: bool = True
) -> dict[str, Any]:
    """The quick-count document for ``region`` (the whole design when empty).

    ``as_of`` replays the night: only station results last changed by then count (the demo
    uses it to show the estimate converging). The estimate is cached per design and region
    and recomputed only when a sampled station's result changed (``fingerprint``), so
    dashboards refreshing every few seconds do not recompute it. ``comparison=False`` leaves
    out the comparison with the full tally (the dashboard has the tally beside it).
    Raises NoDesign without an active design and UnknownRegion for an unknown region.
    """
    info = tally_service.region_info(session, region)  # raises tally.UnknownRegion
    record = active_design(session)
    if record is None:
        raise NoDesign()
    if as_of is None:
        estimate_part = _core(session, record, info)
    else:
        loaded = load(session, record, info)
        estimate_part = body(loaded, replay(loaded, as_of))
    return _document(session, record, info, estimate_part, comparison=comparison)


def card_document(
    session: Session, record: SampleDesign, info: tally_service.RegionInfo, body: dict[str, Any]
) -> dict[str, Any]:
    """The dashboard card's document around ``body``: the region, the design and the rule."""
    return _document(session, record, info, body, comparison=False)


def _document(
    session: Session,
    record: SampleDesign,
    info: tally_service.RegionInfo,
    body: dict[str, Any],
    *,
    comparison: bool,
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "region": {"code": info.code, "name": info.name, "level": info.level},
        "design": {
            "id": record.id,
            "strata_level": record.strata_level,
            "region_code": record.region_code,
            "seed": record.seed,
            "size": record.size,
            "created_at": record.created_at.isoformat(),
        },
        "rule": RULE,
        **body,
    }
    if comparison:
        document["comparison"] = compare(session, info, body["estimate"])
    return document


#: Points of ``history`` at most (the first and the last sampled result and fixed moments between).
HISTORY_POINTS = 24
#: The history's grid steps in seconds: the smallest one that keeps the points to
#: ``HISTORY_POINTS`` is used (then whole days), so the moments stay put as the night goes on.
HISTORY_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
#: (database, design id, design creation, region key) -> (fingerprint, history, point digests)
_history_cache: dict[tuple[str, int, str, str], tuple[tuple[Any, ...], dict[str, Any], list[str]]] = {}


def history(session: Session, region: str | None = None, points: int = HISTORY_POINTS) -> dict[str, Any]:
    """The estimate through the night: at the first sampled result, the last, and fixed moments
    between them (``moments``), the estimate as it stood then (a station counts from its
    result's last change, so a station whose result changed later appears at that later time).
    Cached like ``quickcount``; a recomputation reuses the points whose inputs did not change."""
    info = tally_service.region_info(session, region)
    record = active_design(session)
    if record is None:
        raise NoDesign()
    return _history(session, record, info, fingerprint(session, record), points)


def card(session: Session, region: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``quickcount(session, region, comparison=False)`` and ``history(session, region)``
    together, computed in this process (``quickcount.stored.card`` is what the dashboard
    serves: one process computes it for all): the design and the cache check are read once
    for both, and when a sampled station changed, the sample is read once for both."""
    info = tally_service.region_info(session, region)
    record = active_design(session)
    if record is None:
        raise NoDesign()
    mark = fingerprint(session, record)
    loaded = _loader(session, record, info)
    document = _document(session, record, info, _core(session, record, info, mark, loaded), comparison=False)
    return document, _history(session, record, info, mark, HISTORY_POINTS, loaded)


def _history(
    session: Session,
    record: SampleDesign,
    info: tally_service.RegionInfo,
    mark: tuple[Any, ...],
    points: int,
    sample: Callable[[], Loaded] | None = None,
) -> dict[str, Any]:
    url = session.get_bind().engine.url.render_as_string(hide_password=True)
    key = (url, record.id, record.created_at.isoformat(), info.key)
    cached = _history_cache.get(key)
    if cached is not None and cached[0] == mark:
        return cached[1]
    earlier = dict(zip(cached[2], cached[1]["points"], strict=True)) if cached is not None else {}
    loaded = (sample or _loader(session, record, info))()
    document, digests = night(loaded, record, info, points, earlier)
    if len(_history_cache) >= _CACHE_LIMIT:
        _history_cache.clear()
    _history_cache[key] = (mark, document, digests)
    return document


def moments(first: float, last: float, points: int = HISTORY_POINTS) -> list[float]:
    """The history's moments (seconds since the epoch): ``first`` and ``last`` and, between
    them, the multiples of the smallest ``HISTORY_STEPS`` step (else of whole days) that keep
    them to ``points``. Fixed moments, not an even split of the night that moves with every
    new result: a point's inputs then change only when a result at or before it changes, so
    the next recomputation reuses it (``night``)."""
    if last <= first or points <= 1:
        return [last]
    inner = points - 2
    steps = [*HISTORY_STEPS, *(86400 * n for n in range(2, 3 + math.ceil((last - first) / 86400)))]
    for step in steps:
        low, high = math.floor(first / step) + 1, math.ceil(last / step) - 1
        if high - low + 1 <= inner:
            return [first, *(k * float(step) for k in range(low, high + 1)), last]
    return [first, last]


def night(
    loaded: Loaded,
    record: SampleDesign,
    info: tally_service.RegionInfo,
    points: int,
    earlier: dict[str, dict[str, Any]],
) -> tuple[dict[str, Any], list[str]]:
    """The history document of ``loaded`` and each point's input digest (``point_digest``);
    a point whose digest is in ``earlier`` (digest -> point of an earlier computation) is taken
    from there instead of analysed again (each analysis is a full estimate with the
    non-response checks: on the national sample the history's points were two thirds of the
    card's recomputation)."""
    times = loaded.updated[np.isfinite(loaded.updated) & (loaded.sample.counted | loaded.sample.disputed)]
    series: list[dict[str, Any]] = []
    digests: list[str] = []
    if len(times):
        base = _static_digest(loaded.sample)
        for moment in moments(float(times.min()), float(times.max()), points):
            when = datetime.fromtimestamp(moment, tz=UTC)
            sample = _as_of(loaded, when)
            digest = point_digest(base, sample, when)
            point = earlier.get(digest)
            series.append(point if point is not None else _history_point(sample, when))
            digests.append(digest)
    document = {
        "region": {"code": info.code, "name": info.name, "level": info.level},
        "design": {"id": record.id},
        "points": series,
    }
    return document, digests


def _static_digest(sample: analysis.Sample) -> bytes:
    """A digest of what a history point depends on besides the results in by then: the
    candidates, strata, stations, registered voters and previous results (the previous-result
    import and the candidates are also in the fingerprint; this keeps the point honest alone)."""
    digest = hashlib.sha256(repr((sample.candidates, sample.strata, sample.national)).encode())
    for part in (
        sample.population,
        sample.stratum_registered,
        sample.station_ids,
        sample.unit_stratum,
        sample.registered,
        sample.domain,
        sample.previous_votes,
        sample.previous_valid,
        sample.desa_previous_votes,
        sample.desa_previous_valid,
    ):
        digest.update(b"-" if part is None else np.ascontiguousarray(part).tobytes())
    return digest.digest()


def point_digest(base: bytes, sample: analysis.Sample, when: datetime) -> str:
    """What the point at ``when`` is computed from (``_as_of`` keeps nothing else): the moment,
    ``base`` (``_static_digest``), which stations count or are disputed by then and their
    votes and invalid ballots."""
    digest = hashlib.sha256(base)
    digest.update(when.isoformat().encode())
    for part in (sample.counted, sample.disputed, sample.votes, sample.invalid):
        digest.update(np.ascontiguousarray(part).tobytes())
    return digest.hexdigest()[:32]


def _as_of(loaded: Loaded, when: datetime) -> analysis.Sample:
    """``replay(loaded, when)`` with the votes and invalid ballots of the stations not in by
    then blanked, so that the point depends on nothing ``point_digest`` leaves out."""
    sample = replay(loaded, when)
    inside = sample.counted | sample.disputed
    return replace(
        sample,
        national=False,
        votes=np.where(inside[:, None], sample.votes, 0.0),
        invalid=np.where(inside, sample.invalid, np.nan),
    )


def _history_point(sample: analysis.Sample, when: datetime) -> dict[str, Any]:
    """One point of the history: the estimate as it stood at ``when``, to four digits."""
    found = analysis.analyse(sample)
    result = found.result
    return {
        "t": when.isoformat(timespec="seconds"),
        "counted": result.counted,
        "coverage": round(result.coverage.rate, 4),
        "estimate": _estimate_of(result, sample.candidates, 4),
        "lead": _lead_of(result, sample.candidates, 4),
        "call": found.call,
        "warnings": found.warnings,
    }


def _shares(votes: dict[str, int]) -> dict[str, float]:
    valid = sum(votes.values())
    return {c: round(v / valid, 6) for c, v in votes.items()} if valid else {}


def _against(estimated: dict[str, Any], shares: dict[str, float]) -> dict[str, Any]:
    return {
        code: {
            "share": share,
            "difference": round(estimated[code]["value"] - share, 6),
            "inside95": (
                None
                if estimated[code]["ci95"] is None  # indicative: there is no interval
                else estimated[code]["ci95"][0] <= share <= estimated[code]["ci95"][1]
            ),
        }
        for code, share in shares.items()
        if code in estimated
    }


def compare(session: Session, info: tally_service.RegionInfo, estimated: dict[str, Any]) -> dict[str, Any]:
    """The estimate against the full tally (all stations, from the counters) and, when the
    official results table has rows for the region, against the official count."""
    full = tally_service.tally(session, info.code or None)
    counts = full["stations"]
    comparison: dict[str, Any] = {
        "tally": {
            "stations_reported": counts["reported"],
            "stations_total": counts["total"],
            "complete": counts["total"] > 0 and counts["reported"] == counts["total"],
            "candidates": _against(estimated, _shares(full["votes"])),
        },
        "official": None,
    }
    query = select(OfficialResult.votes)
    if info.key:
        query = query.where(OfficialResult.station_id.like(f"{info.key}%"))
    totals: dict[str, int] = {}
    stations = 0
    for (votes,) in session.execute(query):
        stations += 1
        for code, count in (votes or {}).items():
            totals[code] = totals.get(code, 0) + int(count)
    if stations:
        comparison["official"] = {
            "stations": stations,
            "stations_total": counts["total"],
            "candidates": _against(estimated, _shares(totals)),
        }
    return comparison


def _pct(r: dict[str, Any]) -> str:
    """``25.10%  +-1.20  [23.90, 26.30]  [23.50, 26.70]`` or ``25.10%  (indicative)``."""
    if r["ci95"] is None:
        return f"{100 * r['value']:6.2f}%  (indicative, no interval)"
    return (
        f"{100 * r['value']:6.2f}%  {100 * r['margin95']:5.2f}   "
        f"[{100 * r['ci95'][0]:5.2f}, {100 * r['ci95'][1]:5.2f}]    "
        f"[{100 * r['ci99'][0]:5.2f}, {100 * r['ci99'][1]:5.2f}]"
    )


def _estimate_lines(document: dict[str, Any]) -> list[str]:
    """The call, the presidential rule, the estimate table and the adjusted estimate."""
    if not document["estimate"]:
        return ["no estimate yet: fewer than two sampled stations have reported"]
    lines = []
    lead = document["lead"]
    if lead is not None:
        lines.append(f"call: {document['call']} ({lead['first']} over {lead['second']})")
    president = document.get("presidential")
    if president is not None:
        outcome = (
            f"{president['winner']} wins"
            if president["outcome"] == "winner"
            else f"second round {' vs '.join(president['runoff'])}"
        )
        lines.append(
            f"presidential rule: {outcome} ({president['status']}); leader >= 20% in "
            f"{president['provinces_20']} of {president['provinces']} provinces "
            f"({president['provinces_20_certain']} certainly)"
        )
    if document["indicative"]:
        lines.append(
            f"INDICATIVE: fewer than {document['min_stations']} counted stations, no interval is shown"
        )
    lines.append("candidate   share     +-95%   95% interval        99% interval")
    for code, r in document["estimate"].items():
        lines.append(f"  {code:<8} {_pct(r)}")
    if lead is not None:
        lines.append(f"  lead {lead['first']}-{lead['second']} {_pct(lead)}")
    if document["turnout"]:
        t = document["turnout"]
        lines.append(f"  turnout  {_pct(t)}  (from {t['stations']} stations that gave TS)")
    if document["invalid"]:
        lines.append(f"  invalid  {_pct(document['invalid'])}")
    adjusted = document["adjusted"]
    if adjusted is not None:
        lines.append(f"adjusted estimate ({adjusted['method']}):")
        for code, r in adjusted["estimate"].items():
            lines.append(f"  {code:<8} {_pct(r)}")
        if adjusted["lead"] is not None:
            lines.append(f"  lead     {_pct(adjusted['lead'])}")
    return lines


def _check_lines(document: dict[str, Any]) -> list[str]:
    """Reported against missing stations, collapsed and lagging strata."""
    lines = []
    test = document["nonresponse_test"]
    if test is not None:
        lines.append(
            f"  reported vs missing, joint test: chi2 {test['statistic']} on {test['df']} df, "
            f"p {test['p_value']:.4f} (level {test['level']}){' REJECTED' if test['reject'] else ''}"
        )
    for check in document["nonresponse"]:
        lines.append(
            f"  reported vs missing, {check['variable']}: {check['reported']:.4g} vs {check['missing']:.4g} "
            f"(z {check['z']}){' DIFFERENT' if check['warn'] else ''}"
        )
    for group in document["collapsed_strata"]:
        lines.append(f"  collapsed strata: {' + '.join(group)}")
    if document["lagging_strata"]:
        lines.append(f"  lagging strata: {', '.join(document['lagging_strata'])}")
    return lines


def _strata_lines(document: dict[str, Any]) -> list[str]:
    """The strata table and the disputed stations left out."""
    lines = ["stratum            N    n  in  disputed"]
    for s in document["strata"]:
        lines.append(
            f"  {s['code']:<14} {s['population']:>5} {s['sampled']:>4} {s['reported']:>3} {s['disputed']:>4}"
        )
    if document["disputed"]:
        lines.append("disputed (left out): " + " ".join(d["station"] for d in document["disputed"]))
    return lines


def _comparison_lines(comparison: dict[str, Any]) -> list[str]:
    """The estimate against the full tally and the official results."""
    lines = []
    for name in ("tally", "official"):
        part = comparison[name]
        if part is None:
            lines.append("official results: none imported for this region")
            continue
        label = (
            f"full tally ({part['stations_reported']}/{part['stations_total']} stations"
            f"{', complete' if part.get('complete') else ''})"
            if name == "tally"
            else f"official results ({part['stations']}/{part['stations_total']} stations)"
        )
        cells = [
            f"{code} {100 * c['share']:.2f}% (estimate {100 * c['difference']:+.2f}"
            f"{'' if c['inside95'] in (True, None) else ', OUTSIDE its 95% interval'})"
            for code, c in part["candidates"].items()
        ]
        lines.append(f"{label}: {'  '.join(cells) if cells else '-'}")
    return lines


def format_quickcount(document: dict[str, Any]) -> str:
    """The plain-text output of ``smsgate quickcount``."""
    region, stations = document["region"], document["stations"]
    place = f"{region['name']}{' ' + region['code'] if region['code'] else ''}"
    lines = [
        f"quick count {place}: design {document['design']['id']} ({document['design']['strata_level']}), "
        f"{stations['counted']}/{stations['sample']} sampled stations in "
        f"({100 * stations['coverage']:.0f}%), "
        f"{stations['disputed']} disputed",
        f"rule: {document['rule']}",
    ]
    lines += [f"WARNING: {WARNING_TEXT[warning]}" for warning in document["warnings"]]
    lines += _estimate_lines(document)
    lines += _check_lines(document)
    lines += _strata_lines(document)
    lines += _comparison_lines(document["comparison"])
    return "\n".join(lines)


WARNING_TEXT = {
    "too_few_reports": "fewer than two sampled stations in this region have reported",
    "indicative": f"fewer than {estimate.MIN_STATIONS} counted stations: indicative, no interval",
    "low_coverage": f"under {100 * estimate.LOW_COVERAGE:.0f}% of the sample has reported",
    "uneven_coverage": "uneven coverage: strata with 10%+ of the voters are under half the overall rate",
    "collapsed_strata": "strata with fewer than two reports were merged with a neighbour",
    "nonresponse_bias": "the stations not yet in differ from those in (see below): see the adjusted estimate",
    "many_disputed": "many sampled stations are disputed and left out as if missing",
}
