"""From recognised pieces to typed results: the rules that decide what a report means.

The grammar (``grammar.language``) and the compiled fast path (``grammar.fastpath``) both cut a
message into the same pieces (``Lexeme``, ``Item``, ``ReportDraft``); this module is where the
pieces get their meaning, in one place, so the two paths cannot disagree on a value. It raises
:class:`~grammar.errors.Rejection` for anything wrong and never guesses.

Normalisation identifiers recorded in ``normalisations`` (always in this order):

``unicode_normalised``
    full-width characters, no-break spaces, smart quotes, control characters ... were mapped.
``keyword_typo``
    a command word was read as the one keyword it is one letter away from (``BANTUN``).
``no_spaces``
    ``TPS`` was glued to its number (``TPS012``).
``separators``
    ``#``, ``*``, ``,`` or ``;`` separated the words of a report.
``colon_as_equals``
    ``:`` was read as ``=`` (``01:123``).
``letter_o_as_zero``
    the letter O/o was read as the digit 0 in a number (``TPS O12``, ``O1=123``, ``1O5``).
``leading_zeros_added``
    a candidate code was typed without its leading zero (``1=123`` is ``01``).
``leading_zeros_removed``
    a candidate code was typed with extra leading zeros (``001=123`` is ``01``).
``positional``
    counts were given without codes, one per candidate in code order (``TPS#012#123#98#150``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from grammar import errors
from grammar.errors import Rejection
from grammar.messages import RegionRef, Report, StationRef

NORMALISATIONS: tuple[str, ...] = (
    "unicode_normalised",
    "keyword_typo",
    "no_spaces",
    "separators",
    "colon_as_equals",
    "letter_o_as_zero",
    "leading_zeros_added",
    "leading_zeros_removed",
    "positional",
)
_ORDER = {name: index for index, name in enumerate(NORMALISATIONS)}

MAX_COUNT = 9999
MAX_TPS = 999

SEPARATOR_CHARS = "#*,;"
SEPARATOR = re.compile(r"[#*,;]")
_DIGITS = re.compile(r"[0-9O]+", re.IGNORECASE | re.ASCII)
_DOTTED_STATION = re.compile(r"([0-9]{2})\.([0-9]{2})\.([0-9]{2})\.([0-9]{4})/([0-9]+)")
_SLASHED_STATION = re.compile(r"([0-9]{10})/([0-9]+)")
_STATION_ID_LENGTH = 13
_DOTTED_REGION = re.compile(r"[0-9]{2}(?:\.[0-9]{2}(?:\.[0-9]{2}(?:\.[0-9]{4})?)?)?")
_UNDOTTED_REGION_SPLITS = {2: (2,), 4: (2, 2), 6: (2, 2, 2), 10: (2, 2, 2, 4)}
_LEVEL_PREFIX = re.compile(
    r"(KECAMATAN|KEC|KABUPATEN|KAB|KOTA|KELURAHAN|KEL|DESA|PROVINSI|PROV)(?:\.\s*|\s+)(?=\S)",
    re.IGNORECASE,
)
_LEVELS = {
    "KEC": "kecamatan",
    "KECAMATAN": "kecamatan",
    "KAB": "kabupaten",
    "KABUPATEN": "kabupaten",
    "KOTA": "kota",
    "DESA": "desa",
    "KEL": "desa",
    "KELURAHAN": "desa",
    "PROV": "provinsi",
    "PROVINSI": "provinsi",
}
_WHITESPACE = re.compile(r"\s+")


class Lexeme(NamedTuple):
    """A piece of the normalised text and where it is (``end`` exclusive)."""

    text: str
    start: int
    end: int


class Keyword(NamedTuple):
    """A command word as typed, the command it stands for, and whether it was a typo."""

    canonical: str
    typo: bool
    lexeme: Lexeme


PAIR, EXTRA, NUMBER, STRAY = "pair", "extra", "number", "stray"


class Item(NamedTuple):
    """One thing after the station: ``01=123`` (pair), ``SAH=371`` (extra), ``123``, or a stray word.

    ``value`` of a pair or extra is an empty lexeme at the end of the ``=`` when nothing follows it.
    """

    kind: str
    value: Lexeme
    key: Lexeme | None = None
    assign: Lexeme | None = None


@dataclass(frozen=True, slots=True)
class ReportDraft:
    """A report cut into pieces but not yet judged: what the grammar and the fast path agree on."""

    tps: Lexeme | None
    station_number: Lexeme | None
    items: tuple[Item, ...]
    pin: str | None = None


@dataclass(frozen=True, slots=True)
class Candidates:
    """The contest's candidate codes, in code order, and how to find one by its number."""

    codes: tuple[str, ...]
    by_value: dict[int, str]
    width: int


@lru_cache(maxsize=64)
def candidate_set(codes: tuple[str, ...]) -> Candidates:
    """Index candidate codes by integer value ("1" and "01" are the same candidate)."""
    by_value: dict[int, str] = {}
    for code in codes:
        if isinstance(code, str) and code.isascii() and code.isdigit() and len(code) <= 6:
            by_value.setdefault(int(code), code)
    ordered = tuple(by_value[value] for value in sorted(by_value))
    width = max((len(code) for code in ordered), default=2)
    return Candidates(ordered, by_value, width)


def ordered(notes: set[str]) -> tuple[str, ...]:
    """Normalisations in their documented order, so the echo is deterministic."""
    return tuple(sorted(notes, key=_ORDER.__getitem__))


def _digits(text: str, notes: set[str]) -> str | None:
    """The digits of a number that may use the letter O for 0, or ``None`` if it is not one."""
    if not _DIGITS.fullmatch(text):
        return None
    if "O" in text or "o" in text:
        notes.add("letter_o_as_zero")
        return text.upper().replace("O", "0")
    return text


def count_value(lexeme: Lexeme, field: str, notes: set[str]) -> int:
    """A vote or total: a clean integer 0..9999, else ``bad_number`` naming the field."""
    digits = _digits(lexeme.text, notes)
    if digits is not None:
        significant = digits.lstrip("0") or "0"
        if len(significant) <= len(str(MAX_COUNT)) and int(significant) <= MAX_COUNT:
            return int(significant)
    raise Rejection(errors.BAD_NUMBER, lexeme.start, lexeme.end, field=field)


def candidate_code(lexeme: Lexeme, candidates: Candidates, notes: set[str]) -> str:
    """The canonical code a typed code stands for (by integer value), else ``unknown_candidate``."""
    digits = _digits(lexeme.text, notes) or "0"
    significant = digits.lstrip("0") or "0"
    value = int(significant) if len(significant) <= 6 else None
    code = candidates.by_value.get(value) if value is not None else None
    if code is None:
        field = (
            f"{value:0{candidates.width}d}" if value is not None else significant[: errors.MAX_TOKEN_LENGTH]
        )
        raise Rejection(errors.UNKNOWN_CANDIDATE, lexeme.start, lexeme.end, field=field)
    if len(digits) < len(code):
        notes.add("leading_zeros_added")
    elif len(digits) > len(code):
        notes.add("leading_zeros_removed")
    return code


def station_ref(tps: Lexeme | None, number: Lexeme | None, notes: set[str]) -> StationRef:
    """A station from ``TPS <number>`` or a bare station number (``12``, 13 digits, desa/n)."""
    if number is None:
        start, end = (tps.start, tps.end) if tps is not None else (None, None)
        raise Rejection(errors.NO_STATION, start, end)
    if tps is not None and tps.end == number.start:
        notes.add("no_spaces")
    text = number.text
    local: set[str] = set()
    if "O" in text or "o" in text:
        local.add("letter_o_as_zero")
        text = text.upper().replace("O", "0")
    desa: str | None = None
    tps_digits: str | None = None
    if match := _DOTTED_STATION.fullmatch(text):
        desa, tps_digits = "".join(match.group(1, 2, 3, 4)), match.group(5)
    elif match := _SLASHED_STATION.fullmatch(text):
        desa, tps_digits = match.group(1, 2)
    elif text.isascii() and text.isdigit():
        if len(text) == _STATION_ID_LENGTH:
            desa, tps_digits = text[:10], text[10:]
        else:
            tps_digits = text
    significant = (tps_digits or "").lstrip("0")
    if tps_digits is None or not significant or len(significant) > 3 or int(significant) > MAX_TPS:
        raise Rejection(errors.BAD_STATION, number.start, number.end)
    notes.update(local)
    return StationRef(tps=int(significant), desa=desa)


def region_code(lexeme: Lexeme) -> str:
    """A Kemendagri code in dotted form; undotted codes of 2, 4, 6 or 10 digits are dotted."""
    text = lexeme.text
    if "." in text:
        if _DOTTED_REGION.fullmatch(text):
            return text
    elif text.isascii() and text.isdigit() and len(text) in _UNDOTTED_REGION_SPLITS:
        parts, at = [], 0
        for size in _UNDOTTED_REGION_SPLITS[len(text)]:
            parts.append(text[at : at + size])
            at += size
        return ".".join(parts)
    raise Rejection(errors.UNEXPECTED_TOKEN, lexeme.start, lexeme.end)


def region_ref(lexeme: Lexeme, *, is_code: bool) -> RegionRef:
    """A region as typed: a code, or a name with an optional level prefix (``KAB. BANJAR``)."""
    if is_code:
        return RegionRef(code=region_code(lexeme))
    text = _WHITESPACE.sub(" ", lexeme.text).strip()
    level = None
    if match := _LEVEL_PREFIX.match(text):
        level = _LEVELS[match.group(1).upper()]
        rest = text[match.end() :]
        if rest[:1].isdigit():
            shift = lexeme.text.find(rest)
            start = lexeme.start + max(shift, 0)
            return RegionRef(code=region_code(Lexeme(rest, start, start + len(rest))), level=level)
        text = rest
    return RegionRef(name=text.upper(), level=level)


def free_text(lexeme: Lexeme | None) -> str:
    """The sender's own words, whitespace collapsed; the case is kept."""
    return _WHITESPACE.sub(" ", lexeme.text).strip() if lexeme is not None else ""


def _absorbed(items: Sequence[Item], index: int) -> int:
    """Index after the bare numbers that follow item ``index`` (``01=12 3`` is ambiguous)."""
    end = index + 1
    while end < len(items) and items[end].kind == NUMBER:
        end += 1
    return end


def build_report(text: str, draft: ReportDraft, candidates: Candidates) -> Report:
    """Judge a report: every candidate exactly once, counts 0..9999, SAH equal to the sum.

    Problems are reported in the order they appear in the message, then the whole-message
    checks (positional count, missing candidates, SAH) follow, so one message always gets
    the same error.
    """
    notes: set[str] = set()
    station = None
    if draft.tps is not None:
        station = station_ref(draft.tps, draft.station_number, notes)
    if SEPARATOR.search(text):
        notes.add("separators")
    votes: dict[str, int] = {}
    extras: dict[str, int] = {}
    extra_lexemes: dict[str, Lexeme] = {}
    positional: list[Lexeme] = []
    items = draft.items
    index = 0
    while index < len(items):
        item = items[index]
        if item.kind == STRAY:
            raise Rejection(errors.UNEXPECTED_TOKEN, item.value.start, item.value.end)
        if item.kind == NUMBER:
            # Only a leading run of bare numbers gets here; later ones are absorbed below.
            if station is None:
                raise Rejection(errors.NO_STATION, item.value.start, item.value.end)
            positional.append(item.value)
            index += 1
            continue
        key = item.key
        assert key is not None and item.assign is not None
        if item.kind == PAIR:
            if positional:
                raise Rejection(errors.UNEXPECTED_TOKEN, key.start, item.value.end)
            field = candidate_code(key, candidates, notes)
        else:
            field = key.text.upper()
        after = _absorbed(items, index)
        if after > index + 1:
            raise Rejection(errors.BAD_NUMBER, item.value.start, items[after - 1].value.end, field=field)
        value = count_value(item.value, field, notes)
        if item.assign.text == ":":
            notes.add("colon_as_equals")
        if item.kind == PAIR:
            if field in votes:
                raise Rejection(errors.DUPLICATE_CANDIDATE, key.start, key.end, field=field)
            votes[field] = value
        else:
            if field in extras:
                raise Rejection(errors.UNEXPECTED_TOKEN, key.start, item.value.end, field=field)
            extras[field] = value
            extra_lexemes[field] = Lexeme(key.text, key.start, item.value.end)
        index = after
    if positional:
        if len(positional) != len(candidates.codes):
            raise Rejection(
                errors.POSITIONAL_COUNT,
                positional[0].start,
                positional[-1].end,
                expected=len(candidates.codes),
                actual=len(positional),
            )
        for code, lexeme in zip(candidates.codes, positional, strict=True):
            votes[code] = count_value(lexeme, code, notes)
        notes.add("positional")
    missing = tuple(code for code in candidates.codes if code not in votes)
    if missing:
        raise Rejection(errors.MISSING_CANDIDATE, field=missing[0], details=missing)
    total = sum(votes.values())
    if "SAH" in extras and extras["SAH"] != total:
        sah = extra_lexemes["SAH"]
        raise Rejection(
            errors.SUM_MISMATCH, sah.start, sah.end, field="SAH", expected=extras["SAH"], actual=total
        )
    return Report(
        station=station,
        votes=votes,
        valid=extras.get("SAH"),
        invalid=extras.get("TS"),
        registered=extras.get("DPT"),
        normalisations=ordered(notes),
        pin=draft.pin,
    )
