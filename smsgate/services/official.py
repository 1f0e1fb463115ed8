"""Official per-station results (KPU) and where they differ from what our volunteers verified.

``import_official`` loads ``station_id,01,02,03,valid,invalid`` (one column per candidate of
the contest); every row is checked before anything is written, so a file with one bad row
imports nothing. Importing a station again replaces its official numbers.

``discrepancies`` compares the two per-station rows (``official_results`` and
``station_results``) inside the database, per candidate, bounded to a region by the
station-ID range, so it never loads the country's stations into Python. The difference of a
station is the sum over candidates of ``|official - ours|`` plus ``|official - ours|`` of the
invalid ballots when both sides gave them (valid is the sum of the candidates on both sides,
so it adds nothing new and is only shown).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import ColumnElement, Row, Select, and_, func, select
from sqlalchemy.orm import Session

from ..db import upsert_for
from ..importers import ImportError_, ImportResult
from ..models import Candidate, OfficialResult, Report, Station, StationResult, utcnow
from ..regions import desa_of_station
from .ingest import DEFAULT_CANDIDATES
from .tally import region_info

#: The largest count a column may hold (a TPS has at most a few hundred voters).
MAX_COUNT = 99_999
#: Which station statuses ``discrepancies`` compares by default and on request.
STATUS_CHOICES = {"verified": ("verified",), "all": ("reported", "verified", "disputed", "overridden")}
DEFAULT_LIMIT, MAX_LIMIT = 50, 1000

_UNDOTTED = re.compile(r"^\d{13}$")
_DOTTED = re.compile(r"^(\d{2})\.(\d{2})\.(\d{2})\.(\d{4})[/.](\d{1,3})$")
_CHUNK = 1000


def parse_station_id(text: str) -> str:
    """``6371011001012``, ``63.71.01.1001/12`` or ``63.71.01.1001.012`` -> ``6371011001012``."""
    text = text.strip()
    if _UNDOTTED.match(text):
        station, tps = text, int(text[10:])
    else:
        match = _DOTTED.match(text)
        if match is None:
            raise ValueError(f"not a station id (like 6371011001012 or 63.71.01.1001/12): {text!r}")
        tps = int(match.group(5))
        station = "".join(match.groups()[:4]) + f"{tps:03d}"
    if not 1 <= tps <= 999:
        raise ValueError(f"TPS number must be 1..999 in {text!r}")
    return station


def candidate_codes(session: Session) -> tuple[str, ...]:
    return tuple(session.scalars(select(Candidate.code).order_by(Candidate.code))) or DEFAULT_CANDIDATES


@dataclass(frozen=True)
class OfficialRow:
    line: int
    station_id: str
    votes: dict[str, int]
    valid: int
    invalid: int | None


def _count(value: str, name: str) -> int:
    if not value.isdigit() or int(value) > MAX_COUNT:
        raise ValueError(f"{name} must be a whole number 0..{MAX_COUNT}, got {value!r}")
    return int(value)


def _header(fieldnames: Sequence[str] | None, codes: Sequence[str]) -> list[str]:
    """The normalised header (candidate columns as ``01``, ``02``…); raises on a wrong one."""
    header = []
    for raw in fieldnames or []:
        name = (raw or "").strip().lower()
        header.append(name.zfill(2) if name.isdigit() else name)
    expected = ["station_id", *codes, "valid", "invalid"]
    missing = [column for column in expected if column not in header]
    unknown = [column for column in header if column not in expected]
    problems = []
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown column(s) {', '.join(unknown)}")
    if len(set(header)) != len(header):
        problems.append("a column appears twice")
    if problems:
        raise ImportError_([f"line 1: {'; '.join(problems)} (need {','.join(expected)})"])
    return header


def parse_official(stream: TextIO, codes: Sequence[str]) -> list[OfficialRow]:
    """Every row of the file, or ImportError_ listing each bad line (nothing is written here)."""
    reader = csv.DictReader(stream)
    reader.fieldnames = _header(reader.fieldnames, codes)
    rows: list[OfficialRow] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for record in reader:
        line = reader.line_num
        values = {k: (v or "").strip() for k, v in record.items() if k is not None}
        if None in record:
            problems.append(f"line {line}: more fields than columns")
            continue
        try:
            station = parse_station_id(values["station_id"])
            votes = {code: _count(values[code], f"candidate {code}") for code in codes}
            total = sum(votes.values())
            valid = _count(values["valid"], "valid") if values["valid"] else total
            if valid != total:
                raise ValueError(f"valid={valid} but the candidates' votes add up to {total}")
            invalid = _count(values["invalid"], "invalid") if values["invalid"] else None
        except ValueError as exc:
            problems.append(f"line {line}: {exc}")
            continue
        if station in seen:
            problems.append(f"line {line}: station {station} is already on line {seen[station]}")
            continue
        seen[station] = line
        rows.append(OfficialRow(line, station, votes, valid, invalid))
    if problems:
        raise ImportError_(problems)
    return rows


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _existing(session: Session, column: Any, ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(ids):
        found.update(session.scalars(select(column).where(column.in_(chunk))))
    return found


def store_official(session: Session, rows: Sequence[OfficialRow], source: str = "") -> ImportResult:
    """Check every station is known, then insert or replace the official rows."""
    ids = [row.station_id for row in rows]
    known = _existing(session, Station.id, ids)
    unknown = [
        f"line {r.line}: station {r.station_id} is not known" for r in rows if r.station_id not in known
    ]
    if unknown:
        raise ImportError_(unknown)
    already = _existing(session, OfficialResult.station_id, ids)
    now = utcnow()
    insert = upsert_for(session)
    for chunk in _chunks(rows):
        statement = insert(OfficialResult).values(
            [
                {
                    "station_id": r.station_id,
                    "votes": r.votes,
                    "valid": r.valid,
                    "invalid": r.invalid,
                    "source": source[:200],
                    "imported_at": now,
                }
                for r in chunk
            ]
        )
        excluded = statement.excluded
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["station_id"],
                set_={
                    "votes": excluded.votes,
                    "valid": excluded.valid,
                    "invalid": excluded.invalid,
                    "source": excluded.source,
                    "imported_at": excluded.imported_at,
                },
            )
        )
    session.flush()
    return ImportResult(created=len(ids) - len(already), updated=len(already))


def import_official(session: Session, stream: TextIO, source: str = "") -> ImportResult:
    return store_official(session, parse_official(stream, candidate_codes(session)), source)


def import_official_file(session: Session, path: Path) -> ImportResult:
    with path.open(newline="", encoding="utf-8-sig") as stream:
        return import_official(session, stream, source=path.name)


# -- discrepancies ---------------------------------------------------------------------------


def station_range(region_key: str) -> tuple[str, str]:
    """The first and last possible station IDs inside a region (IDs start with its key)."""
    return region_key.ljust(13, "0"), region_key.ljust(13, "9")


def _vote(column: Any, code: str) -> ColumnElement[int]:
    return func.coalesce(column[code].as_integer(), 0)


def discrepancies(
    session: Session,
    code: str | None = None,
    *,
    limit: int = DEFAULT_LIMIT,
    status: str = "verified",
) -> dict[str, Any]:
    """Stations in a region whose official numbers differ from ours, largest difference first.

    ``status`` ``verified`` (the default) compares only stations our volunteers verified: the
    evidence a campaign can stand behind. ``all`` adds ``reported`` (one volunteer),
    ``disputed`` and ``overridden`` (compared with the volunteers' agreed values they count)
    stations, each marked with its status. Missing stations have nothing to compare.
    Raises ``tally.UnknownRegion`` for an unknown region and ValueError for a bad status.
    """
    if status not in STATUS_CHOICES:
        raise ValueError(f"status must be one of {', '.join(STATUS_CHOICES)}")
    region = region_info(session, code)
    codes = candidate_codes(session)
    query = _discrepancy_query(codes, region.key, status, max(1, min(limit, MAX_LIMIT)))
    rows = session.execute(query).all()
    return {
        "region": {"code": region.code, "name": region.name, "level": region.level},
        "status": status,
        "total": int(rows[0].total) if rows else 0,
        "discrepancies": [_discrepancy(row, codes) for row in rows],
    }


def _discrepancy_query(codes: Sequence[str], region_key: str, status: str, limit: int) -> Select[Any]:
    """Our counted result beside the official one for each station of the region that differs,
    with the size of the difference (votes and invalid ballots) and how many differ in all."""
    ours, official = StationResult, OfficialResult
    # Our invalid count as the volunteer gave it (None when the report had no TS=).
    our_invalid = Report.invalid
    terms = [func.abs(_vote(official.votes, c) - _vote(ours.votes, c)) for c in codes]
    invalid_term = func.coalesce(func.abs(official.invalid - our_invalid), 0)
    difference = sum(terms[1:], terms[0]) + invalid_term
    low, high = station_range(region_key)
    return (
        select(
            ours.station_id,
            ours.status,
            ours.votes,
            ours.valid,
            our_invalid.label("invalid"),
            official.votes.label("official_votes"),
            official.valid.label("official_valid"),
            official.invalid.label("official_invalid"),
            difference.label("difference"),
            func.count().over().label("total"),
        )
        .join(official, official.station_id == ours.station_id)
        .outerjoin(Report, Report.id == ours.report_id)
        .where(
            and_(
                ours.station_id >= low,
                ours.station_id <= high,
                ours.status.in_(STATUS_CHOICES[status]),
                difference > 0,
            )
        )
        .order_by(difference.desc(), ours.station_id)
        .limit(limit)
    )


def _discrepancy(row: Row[Any], codes: Sequence[str]) -> dict[str, Any]:
    """One station of the list: both results and, per field, official minus ours."""
    votes, official_votes = row.votes or {}, row.official_votes or {}
    changes: dict[str, int | None] = {c: official_votes.get(c, 0) - votes.get(c, 0) for c in codes}
    changes["valid"] = row.official_valid - (row.valid or 0)
    both_invalid = row.official_invalid is not None and row.invalid is not None
    changes["invalid"] = row.official_invalid - row.invalid if both_invalid else None
    return {
        "station_id": row.station_id,
        "region_code": desa_of_station(row.station_id),
        "status": row.status,
        "difference": int(row.difference),
        "ours": {"votes": {c: votes.get(c, 0) for c in codes}, "valid": row.valid, "invalid": row.invalid},
        "official": {
            "votes": {c: official_votes.get(c, 0) for c in codes},
            "valid": row.official_valid,
            "invalid": row.official_invalid,
        },
        "diff": changes,
    }


def format_discrepancies(document: dict[str, Any]) -> str:
    """The plain-text listing of ``smsgate discrepancies``."""
    region = document["region"]
    where = f"{region['name']}{' ' + region['code'] if region['code'] else ''}"
    items = document["discrepancies"]
    lines = [
        f"{where}: {document['total']} station(s) ({document['status']}) differ from the official "
        f"results; showing {len(items)}, largest difference first"
    ]
    for item in items:
        lines.append(
            f"{item['station_id']} {item['region_code']} {item['status']} difference {item['difference']}"
        )
        for code, delta in item["diff"].items():
            if code in ("valid", "invalid"):
                ours, official = item["ours"][code], item["official"][code]
            else:
                ours, official = item["ours"]["votes"][code], item["official"]["votes"][code]
            shown = "?" if delta is None else f"{delta:+d}"
            lines.append(f"    {code:>7}: ours {_n(ours):>6}  official {_n(official):>6}  ({shown})")
    return "\n".join(lines)


def _n(value: int | None) -> str:
    return "-" if value is None else str(value)
