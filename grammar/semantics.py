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
``codes_and_counts``
    codes and counts alternated with only a gap between them (``TPS 12 01 123 02 98 03 150``).
``candidate_names``
    a candidate was named by one of the contest's aliases (``AMIN=123``).
``words_ignored``
    words that carry no value were skipped: ``paslon``, ``no.``, ``suara``, ... or a closing
    such as ``terima kasih`` after the report.
``punctuation``
    ``-``, ``)``, ``(..)``, ``|``, ``/`` or a trailing ``.``/``:`` was read as punctuation
    (``01-123``, ``(01) 123``, ``03=150.``, ``TPS 12:``).
"""

from __future__ import annotations

import dataclasses
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
    "codes_and_counts",
    "candidate_names",
    "words_ignored",
    "punctuation",
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


PAIR, NAMED, EXTRA, NUMBER, STRAY = "pair", "named", "extra", "number", "stray"
FILLER, CLOSING = "filler", "closing"


class Item(NamedTuple):
    """One thing in a report: ``01=123`` (pair), ``AMIN=123`` (named), ``SAH=371`` (extra), ``123``
    (number), a word without value (filler, closing) or a stray word.

    ``value`` of a pair or extra is an empty lexeme where the value should be when nothing follows
    the key; ``assign`` is ``None`` when a gap alone separates key and value (``SAH 371``).
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
    by_alias: dict[str, str]


@lru_cache(maxsize=64)
def candidate_set(codes: tuple[str, ...], aliases: tuple[tuple[str, str], ...] = ()) -> Candidates:
    """Index candidate codes by integer value ("1" and "01" are the same candidate) and by alias.

    ``aliases`` are (word, code) pairs; a word that is not letters only, or whose code is not a
    candidate, is ignored (the importer refuses such aliases, this only keeps ``parse`` total).
    """
    by_value: dict[int, str] = {}
    for code in codes:
        if isinstance(code, str) and code.isascii() and code.isdigit() and len(code) <= 6:
            by_value.setdefault(int(code), code)
    ordered = tuple(by_value[value] for value in sorted(by_value))
    width = max((len(code) for code in ordered), default=2)
    known = set(ordered)
    by_alias = {
        word.upper(): code
        for word, code in aliases
        if isinstance(word, str) and word.isascii() and word.isalpha() and code in known
    }
    return Candidates(ordered, by_value, width, by_alias)


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
    """A vote or total: a clean integer 0..9999, else ``bad_number`` naming the field.

    One trailing ``.`` or ``:`` closes a sentence (``03=150.``); a ``.`` or ``,`` inside a count
    could be a thousands separator (``1.123``) and is refused.
    """
    text = lexeme.text
    if len(text) > 1 and text[-1] in ".:":
        text = text[:-1]
        if _digits(text, set()) is not None:
            notes.add("punctuation")
    digits = _digits(text, notes)
    if digits is not None:
        significant = digits.lstrip("0") or "0"
        if len(significant) <= len(str(MAX_COUNT)) and int(significant) <= MAX_COUNT:
            return int(significant)
    raise Rejection(errors.BAD_NUMBER, lexeme.start, lexeme.end, field=field)


def candidate_code(lexeme: Lexeme, candidates: Candidates, notes: set[str]) -> str:
    """The canonical code a typed code stands for (by integer value), else ``unknown_candidate``.

    ``(01)`` and ``01)`` are the code 01 with punctuation around it.
    """
    text = lexeme.text
    if text.endswith(")"):
        text = text.strip("()")
        notes.add("punctuation")
    digits = _digits(text, notes) or "0"
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
    if tps is not None:
        written = tps.text.upper()
        if written[-1] in ".:-":
            notes.add("punctuation")
        elif written == "TPS" and tps.end == number.start:
            notes.add("no_spaces")
        if "NO" in written:
            notes.add("words_ignored")
    text = number.text
    local: set[str] = set()
    if len(text) > 1 and text[-1] in ".:":
        text = text[:-1]
        local.add("punctuation")
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


_LABEL_FIELDS = (("DPT", "DPT"), ("TIDAK", "TS"), ("TDK", "TS"), ("TS", "TS"), ("SAH", "SAH"))
_PAIR_PUNCTUATION = re.compile(r"[|/()-]")


def label_field(label: str) -> str:
    """``SAH``, ``TS`` or ``DPT`` for any of the form's labels (``JML SAH``, ``TIDAK SAH``, ...)."""
    words = label.upper().split()
    for word, field in _LABEL_FIELDS:
        if word in words:
            return field
    raise AssertionError(f"not a label: {label!r}")


def candidate_by_name(lexeme: Lexeme, candidates: Candidates, notes: set[str]) -> str:
    """The code of the candidate an alias names, else ``unexpected_token`` for the word."""
    code = candidates.by_alias.get(lexeme.text.upper())
    if code is None:
        raise Rejection(errors.UNEXPECTED_TOKEN, lexeme.start, lexeme.end)
    notes.add("candidate_names")
    return code


def _alternating(numbers: Sequence[Lexeme], candidates: Candidates) -> list[tuple[Lexeme, str]] | None:
    """Read bare numbers as ``code count code count ...`` when that is the only reading.

    It is when there are exactly two numbers per candidate, every candidate's code stands once in
    the code places, and the codes are either in the form's order or written in full
    (``03 150 01 123 02 98``): ``1 2 3 3 2 1`` is refused, it may be six counts typed by mistake.
    """
    codes = candidates.codes
    if len(numbers) != 2 * len(codes):
        return None
    found: list[str] = []
    for lexeme in numbers[0::2]:
        digits = _digits(lexeme.text, set())
        significant = (digits or "").lstrip("0") or "0"
        code = candidates.by_value.get(int(significant)) if digits and len(significant) <= 6 else None
        if code is None:
            return None
        found.append(code)
    if sorted(found) != sorted(codes):
        return None
    in_order = found == list(codes)
    in_full = all(len(lexeme.text) >= len(code) for lexeme, code in zip(numbers[0::2], found, strict=True))
    if not (in_order or in_full):
        return None
    return list(zip(numbers[0::2], found, strict=True))


@dataclass
class _Reading:
    """What a report's items say so far; ``build_report`` fills it one item at a time."""

    station: StationRef | None
    notes: set[str]
    votes: dict[str, int] = dataclasses.field(default_factory=dict)
    extras: dict[str, int] = dataclasses.field(default_factory=dict)
    #: Where each of ``SAH``/``TS``/``DPT`` was written (a ``SAH`` mismatch points at it).
    extra_lexemes: dict[str, Lexeme] = dataclasses.field(default_factory=dict)
    #: The leading bare numbers: counts in the form's order, or codes and counts alternating.
    positional: list[Lexeme] = dataclasses.field(default_factory=list)


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
    after_station = draft.station_number.end if draft.station_number else 0
    if _PAIR_PUNCTUATION.search(text, after_station):
        notes.add("punctuation")
    reading = _Reading(station, notes)
    index = 0
    while index < len(draft.items):
        index = _read_item(draft.items, index, reading, candidates)
    if reading.positional:
        _read_positional(reading, candidates)
    _check_whole(reading, candidates)
    return Report(
        station=station,
        votes=reading.votes,
        valid=reading.extras.get("SAH"),
        invalid=reading.extras.get("TS"),
        registered=reading.extras.get("DPT"),
        normalisations=ordered(notes),
        pin=draft.pin,
    )


def _read_item(items: Sequence[Item], index: int, reading: _Reading, candidates: Candidates) -> int:
    """Read ``items[index]`` into ``reading``; returns the index of the next item to read."""
    item = items[index]
    if item.kind == FILLER:
        reading.notes.add("words_ignored")
        return index + 1
    if item.kind == CLOSING:
        if index + 1 < len(items):
            following = items[index + 1]
            start = (following.key or following.value).start
            raise Rejection(errors.UNEXPECTED_TOKEN, start, following.value.end)
        reading.notes.add("words_ignored")
        return index + 1
    if item.kind == STRAY:
        raise Rejection(errors.UNEXPECTED_TOKEN, item.value.start, item.value.end)
    if item.kind == NUMBER:
        # Only a leading run of bare numbers gets here; later ones are absorbed below.
        if reading.station is None:
            raise Rejection(errors.NO_STATION, item.value.start, item.value.end)
        if reading.votes or reading.extras:  # a number apart from any value, after words that carry none
            raise Rejection(errors.UNEXPECTED_TOKEN, item.value.start, item.value.end)
        reading.positional.append(item.value)
        return index + 1
    return _read_keyed(items, index, reading, candidates)


def _read_keyed(items: Sequence[Item], index: int, reading: _Reading, candidates: Candidates) -> int:
    """A value with its key (``01=123``, ``AMIN=123``, ``SAH=371``) and the numbers it absorbs."""
    item = items[index]
    key = item.key
    assert key is not None
    field = _field_of(item, key, index, reading, candidates)
    after = _absorbed(items, index)
    if after > index + 1:
        raise Rejection(errors.BAD_NUMBER, item.value.start, items[after - 1].value.end, field=field)
    value = count_value(item.value, field, reading.notes)
    if item.assign is not None and item.assign.text == ":":
        reading.notes.add("colon_as_equals")
    if item.kind != EXTRA:
        if field in reading.votes:
            raise Rejection(errors.DUPLICATE_CANDIDATE, key.start, key.end, field=field)
        reading.votes[field] = value
    else:
        if field in reading.extras:
            raise Rejection(errors.UNEXPECTED_TOKEN, key.start, item.value.end, field=field)
        reading.extras[field] = value
        reading.extra_lexemes[field] = Lexeme(key.text, key.start, item.value.end)
    return after


def _field_of(item: Item, key: Lexeme, index: int, reading: _Reading, candidates: Candidates) -> str:
    """The candidate code or the label (``SAH``, ``TS``, ``DPT``) a key names."""
    if item.kind not in (PAIR, NAMED):
        return label_field(key.text)
    if reading.positional:
        raise Rejection(errors.UNEXPECTED_TOKEN, key.start, item.value.end)
    if item.kind == PAIR:
        return candidate_code(key, candidates, reading.notes)
    if reading.station is None and index == 0 and key.text.upper() not in candidates.by_alias:
        raise Rejection(errors.UNKNOWN_COMMAND, key.start, key.end)  # "HALO 5" is no report
    return candidate_by_name(key, candidates, reading.notes)


def _read_positional(reading: _Reading, candidates: Candidates) -> None:
    """Bare numbers: codes and counts alternating when that is the only reading, else one
    count per candidate in the form's order."""
    positional, notes = reading.positional, reading.notes
    pairs = _alternating(positional, candidates)
    if pairs is not None:
        for (code_lexeme, code), lexeme in zip(pairs, positional[1::2], strict=True):
            candidate_code(code_lexeme, candidates, notes)  # the leading-zero notes
            reading.votes[code] = count_value(lexeme, code, notes)
        notes.add("codes_and_counts")
    elif len(positional) != len(candidates.codes):
        raise Rejection(
            errors.POSITIONAL_COUNT,
            positional[0].start,
            positional[-1].end,
            expected=len(candidates.codes),
            actual=len(positional),
        )
    else:
        for code, lexeme in zip(candidates.codes, positional, strict=True):
            reading.votes[code] = count_value(lexeme, code, notes)
        notes.add("positional")


def _check_whole(reading: _Reading, candidates: Candidates) -> None:
    """Every candidate given, and ``SAH`` (when given) equal to the sum of the votes."""
    missing = tuple(code for code in candidates.codes if code not in reading.votes)
    if missing:
        raise Rejection(errors.MISSING_CANDIDATE, field=missing[0], details=missing)
    total = sum(reading.votes.values())
    if "SAH" in reading.extras and reading.extras["SAH"] != total:
        sah = reading.extra_lexemes["SAH"]
        raise Rejection(
            errors.SUM_MISMATCH, sah.start, sah.end, field="SAH", expected=reading.extras["SAH"], actual=total
        )
