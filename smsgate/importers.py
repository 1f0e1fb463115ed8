"""CSV imports (the README's formats). Every row is checked before anything is written, so a
file with one bad row imports nothing and the error names the line."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from grammar.keywords import alias_problem

from .models import COORDINATOR, VOLUNTEER, Candidate, Contact, Region, Station, StationResult, utcnow
from .models.contacts import LANGUAGES
from .phones import InvalidPhone, is_mobile, normalise_phone
from .regions import level_of, normalise_code, to_key
from .services import counters, pins


class ImportError_(ValueError):
    """A file that cannot be imported; ``problems`` lists ``line N: what is wrong``."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    #: (phone, PIN) of every coordinator who got a PIN from this import: shown once, stored hashed.
    pins: tuple[tuple[str, str], ...] = ()


def search_name(name: str) -> str:
    """Upper-case, single-spaced: what ``REKAP <name>`` is matched against."""
    return " ".join(name.upper().split())


def _rows(stream: TextIO, required: Sequence[str]) -> Iterable[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(stream)
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [column for column in required if column not in header]
    if missing:
        problem = f"line 1: missing column(s) {', '.join(missing)} (need {','.join(required)})"
        if len(header) == 1 and ";" in header[0]:
            problem += "; the file is separated by ';', not ',': save it as CSV with commas"
        raise ImportError_([problem])
    reader.fieldnames = header
    for row in reader:
        yield reader.line_num, {k: (v or "").strip() for k, v in row.items() if k is not None}


def _int(value: str, name: str, low: int, high: int) -> int:
    if not value.isdigit() or not low <= int(value) <= high:
        raise ValueError(f"{name} must be a whole number {low}..{high}, got {value!r}")
    return int(value)


def _region_code(value: str, *, level: int | None = None) -> str:
    try:
        code = normalise_code(value)
    except ValueError:
        raise ValueError(f"not a Kemendagri region code: {value!r}") from None
    if level is not None and level_of(code) != level:
        raise ValueError(f"{value!r} is not a desa code (like 63.71.01.1001)")
    return code


def _collect(stream: TextIO, required: Sequence[str], parse: Callable[[dict[str, str]], Any]) -> list[Any]:
    return [value for _line, value in _collect_lines(stream, required, parse)]


def _collect_lines(
    stream: TextIO, required: Sequence[str], parse: Callable[[dict[str, str]], Any]
) -> list[tuple[int, Any]]:
    """Every row parsed, with its line number; any problem refuses the file, naming each line."""
    parsed, problems = [], []
    for line, row in _rows(stream, required):
        try:
            parsed.append((line, parse(row)))
        except ValueError as exc:
            problems.append(f"line {line}: {exc}")
    if problems:
        raise ImportError_(problems)
    return parsed


def import_regions(session: Session, stream: TextIO) -> ImportResult:
    def parse(row: dict[str, str]) -> tuple[str, str]:
        if not row["name"]:
            raise ValueError("name is empty")
        return _region_code(row["code"]), row["name"]

    return upsert_regions(session, _collect(stream, ("code", "name"), parse))


def upsert_regions(session: Session, regions: Iterable[tuple[str, str]]) -> ImportResult:
    """Insert or rename regions, parents first; a region whose parent is unknown is an error."""
    items = sorted(set(regions), key=lambda item: (level_of(item[0]), item[0]))
    known = set(session.scalars(select(Region.code)))
    existing = {
        r.code: r for r in session.scalars(select(Region).where(Region.code.in_([c for c, _ in items])))
    }
    problems = []
    created = updated = 0
    for code, name in items:
        parent = code.rsplit(".", 1)[0] if "." in code else None
        if parent is not None and parent not in known:
            problems.append(f"{code}: parent region {parent} is not known (import it first)")
            continue
        region = existing.get(code)
        if region is None:
            session.add(
                Region(
                    code=code,
                    key=to_key(code),
                    name=name,
                    search_name=search_name(name),
                    level=level_of(code),
                    parent_code=parent,
                )
            )
            created += 1
        elif region.name != name:
            region.name, region.search_name = name, search_name(name)
            updated += 1
        known.add(code)
    if problems:
        raise ImportError_(problems)
    session.flush()
    return ImportResult(created, updated)


def import_stations(session: Session, stream: TextIO) -> ImportResult:
    desa_codes = set(session.scalars(select(Region.code).where(Region.level == 4)))

    def parse(row: dict[str, str]) -> tuple[str, int, int | None]:
        code = _region_code(row["region_code"], level=4)
        if code not in desa_codes:
            raise ValueError(f"desa {code} is not known (import or load regions first)")
        tps = _int(row["tps"], "tps", 1, 999)
        voters = (
            _int(row["registered_voters"], "registered_voters", 0, 100000)
            if row.get("registered_voters")
            else None
        )
        return code, tps, voters

    rows = _collect(stream, ("region_code", "tps", "registered_voters"), parse)
    return upsert_stations(session, rows)


def upsert_stations(session: Session, rows: Iterable[tuple[str, int, int | None]]) -> ImportResult:
    """Create or update stations; new ones get a ``missing`` result and count in the totals."""
    rows = list(rows)
    existing = {s.id: s for s in session.scalars(select(Station))} if rows else {}
    created = updated = 0
    new_counts: list[tuple[str, str, int]] = []
    for code, tps, voters in rows:
        station_id = f"{to_key(code)}{tps:03d}"
        station = existing.get(station_id)
        if station is None:
            station = Station(id=station_id, region_code=code, tps=tps, registered_voters=voters)
            session.add(station)
            existing[station_id] = station
            session.add(StationResult(station_id=station_id, status="missing", report_count=0, flagged=False))
            new_counts.append((to_key(code), "stations", 1))
            created += 1
        elif station.registered_voters != voters:
            station.registered_voters = voters
            updated += 1
    session.flush()
    counters.add_many(session, new_counts)
    return ImportResult(created, updated)


def import_candidates(session: Session, stream: TextIO) -> ImportResult:
    """``code,name[,aliases]``: aliases are space-separated words a volunteer may write instead
    of the code (``01,Anies Baswedan - Muhaimin Iskandar,AMIN ANIES``).

    Every alias must be readable as that candidate alone: letters only, not a word of the
    message language (``grammar.keywords.alias_problem``), and not another candidate's code or
    alias. A problem refuses the whole file, naming each line.
    """

    def parse(row: dict[str, str]) -> tuple[str, str, tuple[str, ...]]:
        code = row["code"]
        if not code.isdigit() or len(code) > 3:
            raise ValueError(f"candidate code must be digits like 01, got {code!r}")
        if not row["name"]:
            raise ValueError("name is empty")
        aliases = tuple(dict.fromkeys(word.upper() for word in row.get("aliases", "").split()))
        for alias in aliases:
            problem = alias_problem(alias)
            if problem is not None:
                raise ValueError(f"alias {alias} {problem}")
        return code.zfill(2), row["name"], aliases

    rows = _collect(stream, ("code", "name"), parse)
    codes = [code for code, _, _ in rows]
    duplicates = sorted({c for c in codes if codes.count(c) > 1})
    if duplicates:
        raise ImportError_([f"candidate code {c} appears twice" for c in duplicates])
    owners: dict[str, list[str]] = {}
    for code, _, aliases in rows:
        for alias in aliases:
            owners.setdefault(alias, []).append(code)
    shared = sorted(alias for alias, holders in owners.items() if len(holders) > 1)
    if shared:
        raise ImportError_([f"alias {a} is given to candidates {', '.join(owners[a])}" for a in shared])
    created = updated = 0
    for code, name, aliases in rows:
        words = " ".join(aliases)
        candidate = session.get(Candidate, code)
        if candidate is None:
            session.add(Candidate(code=code, name=name, aliases=words))
            created += 1
        elif (candidate.name, candidate.aliases) != (name, words):
            candidate.name, candidate.aliases = name, words
            updated += 1
    session.flush()
    return ImportResult(created, updated)


def import_volunteers(session: Session, stream: TextIO) -> ImportResult:
    regions = set(session.scalars(select(Region.code)))
    stations = set(session.scalars(select(Station.id)))

    def parse(row: dict[str, str]) -> dict[str, Any]:
        try:
            phone = normalise_phone(row["phone"])
        except InvalidPhone:
            raise ValueError(f"not a phone number: {row['phone']!r}") from None
        if not is_mobile(phone):
            raise ValueError(f"{row['phone']!r} is not a mobile number (a landline cannot receive SMS)")
        role = (row.get("role") or VOLUNTEER).lower()
        if role not in (VOLUNTEER, COORDINATOR):
            raise ValueError(f"role must be volunteer or coordinator, got {role!r}")
        lang = (row.get("lang") or "id").lower()
        if lang not in LANGUAGES:
            raise ValueError(f"lang must be id or en, got {lang!r}")
        code = (
            _region_code(row["region_code"], level=4 if role == VOLUNTEER else None)
            if row.get("region_code")
            else None
        )
        if role == VOLUNTEER and code is None:
            raise ValueError("a volunteer needs the region_code of their desa")
        if code is not None and code not in regions:
            raise ValueError(f"region {code} is not known")
        tps = _int(row["tps"], "tps", 1, 999) if row.get("tps") else None
        if tps is not None:
            if role != VOLUNTEER:
                raise ValueError("only volunteers are assigned to a tps")
            if f"{to_key(code or '')}{tps:03d}" not in stations:
                raise ValueError(f"station {code} TPS {tps} is not known")
        return {
            "phone": phone,
            "name": row.get("name", ""),
            "role": role,
            "region_code": code,
            "tps": tps,
            "lang": lang,
        }

    numbered = _collect_lines(stream, ("phone", "name", "role", "region_code", "tps", "lang"), parse)
    lines: dict[str, list[int]] = {}
    for line, row in numbered:
        lines.setdefault(row["phone"], []).append(line)
    duplicates = [(phone, found) for phone, found in lines.items() if len(found) > 1]
    if duplicates:
        raise ImportError_(
            [
                f"line {found[1]}: phone {phone} is already on line {found[0]}"
                + (f" (and again on lines {', '.join(map(str, found[2:]))})" if len(found) > 2 else "")
                for phone, found in sorted(duplicates, key=lambda item: item[1])
            ]
        )
    return upsert_contacts(session, [row for _line, row in numbered])


def upsert_contacts(
    session: Session, rows: Iterable[dict[str, Any]], *, give_pins: bool = True
) -> ImportResult:
    """Create or update contacts; coordinators without a PIN get one (``give_pins``), returned once."""
    rows = list(rows)
    existing = {
        c.phone: c
        for c in session.scalars(select(Contact).where(Contact.phone.in_([r["phone"] for r in rows])))
    }
    created = updated = 0
    touched = []
    for row in rows:
        contact = existing.get(row["phone"])
        if contact is None:
            contact = Contact(active=True, **row)
            session.add(contact)
            created += 1
        else:
            for key, value in row.items():
                setattr(contact, key, value)
            contact.active = True
            updated += 1
        touched.append(contact)
    session.flush()
    return ImportResult(created, updated, _give_pins(session, touched) if give_pins else ())


def _give_pins(session: Session, contacts: Iterable[Contact]) -> tuple[tuple[str, str], ...]:
    """A made-up PIN for every coordinator who has none, to be shown once by the caller."""
    given = []
    now = utcnow()
    for contact in contacts:
        if contact.is_coordinator and contact.pin_hash is None:
            pin = pins.generate()
            pins.set_pin(session, contact, pin, now)
            given.append((contact.phone, pin))
    return tuple(given)


IMPORTERS: dict[str, Callable[[Session, TextIO], ImportResult]] = {
    "regions": import_regions,
    "stations": import_stations,
    "volunteers": import_volunteers,
    "candidates": import_candidates,
}


def import_file(session: Session, kind: str, path: Path) -> ImportResult:
    with path.open(newline="", encoding="utf-8-sig") as stream:
        return IMPORTERS[kind](session, stream)
