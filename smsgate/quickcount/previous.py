"""``smsgate import previous FILE.csv``: the previous election's result per station.

Format (UTF-8 CSV, header required)::

    station_id,01,02,03,valid
    6371011001001,40,120,25,190

``station_id`` as in every import (``6371011001001`` or ``63.71.01.1001/1``); one column per
*current* candidate code holding the previous votes of the side that candidate stands for
(which previous pair or party maps to which current candidate is the analyst's call; a current
candidate without a counterpart may be left out); ``valid`` optional, all valid votes of the
previous contest at the station (default: the sum of the candidate columns; never less).
Every station must exist. A file with any bad row imports nothing; a good file replaces the
whole previous import.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from ..importers import ImportError_
from ..models import PreviousResult, Station, utcnow
from ..services.official import MAX_COUNT, candidate_codes, parse_station_id

_CHUNK = 1000


@dataclass(frozen=True)
class PreviousRow:
    station_id: str
    votes: dict[str, int]
    valid: int


def _count(value: str, name: str) -> int:
    if not value.isdigit() or int(value) > MAX_COUNT:
        raise ValueError(f"{name} must be a whole number 0..{MAX_COUNT}, got {value!r}")
    return int(value)


def parse_previous(stream: TextIO, codes: Sequence[str]) -> list[PreviousRow]:
    """Every row, or ImportError_ listing each bad line."""
    reader = csv.DictReader(stream)
    header = []
    for raw in reader.fieldnames or []:
        name = (raw or "").strip().lower()
        header.append(name.zfill(2) if name.isdigit() else name)
    columns = [c for c in header if c in codes]
    unknown = [c for c in header if c not in codes and c not in ("station_id", "valid")]
    problems = []
    if "station_id" not in header:
        problems.append("missing column station_id")
    if not columns:
        problems.append(f"no candidate column (current candidates: {','.join(codes)})")
    if unknown:
        problems.append(f"unknown column(s) {', '.join(unknown)}")
    if len(set(header)) != len(header):
        problems.append("a column appears twice")
    if problems:
        raise ImportError_([f"line 1: {'; '.join(problems)} (e.g. station_id,{','.join(codes)},valid)"])
    reader.fieldnames = header
    rows: list[PreviousRow] = []
    seen: dict[str, int] = {}
    for record in reader:
        line = reader.line_num
        if None in record:
            problems.append(f"line {line}: more fields than columns")
            continue
        values = {k: (v or "").strip() for k, v in record.items()}
        try:
            station = parse_station_id(values["station_id"])
            votes = {code: _count(values[code], f"candidate {code}") for code in columns}
            total = sum(votes.values())
            valid = _count(values["valid"], "valid") if values.get("valid") else total
            if valid < total:
                raise ValueError(f"valid={valid} is less than the candidate columns' {total}")
        except ValueError as exc:
            problems.append(f"line {line}: {exc}")
            continue
        if station in seen:
            problems.append(f"line {line}: station {station} is already on line {seen[station]}")
            continue
        seen[station] = line
        rows.append(PreviousRow(station, votes, valid))
    if problems:
        raise ImportError_(problems)
    if not rows:
        raise ImportError_(["the file has no stations"])
    return rows


def import_previous(session: Session, stream: TextIO) -> int:
    """Replace the previous results with the file's; the number of stations imported."""
    rows = parse_previous(stream, candidate_codes(session))
    ids = [r.station_id for r in rows]
    known: set[str] = set()
    for start in range(0, len(ids), _CHUNK):
        known |= set(session.scalars(select(Station.id).where(Station.id.in_(ids[start : start + _CHUNK]))))
    unknown = [s for s in ids if s not in known]
    if unknown:
        raise ImportError_([f"unknown station {s}" for s in unknown])
    session.execute(delete(PreviousResult))
    now = utcnow()
    session.execute(
        insert(PreviousResult),
        [
            {
                "station_id": r.station_id,
                "desa": r.station_id[:10],
                "votes": r.votes,
                "valid": r.valid,
                "imported_at": now,
            }
            for r in rows
        ],
    )
    return len(rows)
