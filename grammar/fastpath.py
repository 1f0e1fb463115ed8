"""A compiled fast path for reports, built from the grammar's own patterns.

Most SMS are reports, and the pyparsing grammar spends most of its time trying alternatives.
This module joins the grammar's lexical patterns (``grammar.language.*_PATTERN``) into one
regular expression and cuts a report into the same ``ReportDraft`` the grammar would, which
``grammar.semantics.build_report`` then judges exactly as for the grammar. Whenever the text is
not plainly a report (a command word, a stray word, anything unusual) it declines by returning
``None`` and the grammar decides. ``tests/grammar/test_fastpath.py`` proves, with generated
inputs, that the fast path either declines or gives the grammar's answer.
"""

from __future__ import annotations

import re
from functools import lru_cache

from grammar.keywords import resolve_keyword
from grammar.language import (
    ASSIGN_PATTERN,
    BARE_NUMBER_PATTERN,
    CANDIDATE_CODE_PATTERN,
    CLOSING_PATTERN,
    COUNT_PATTERN,
    EXTRA_ASSIGN_PATTERN,
    EXTRA_KEYWORD_PATTERN,
    FILLER_PATTERN,
    FLAGS,
    MAX_REPORT_LENGTH,
    NAME_PATTERN,
    PIN_WORD_PATTERN,
    REPORT_WORD_PATTERN,
    SPACED_COUNT_PATTERN,
    STATION_NUMBER_PATTERN,
    TPS_PATTERN,
)
from grammar.messages import Report, StationRef
from grammar.semantics import (
    CLOSING,
    EXTRA,
    FILLER,
    NAMED,
    NUMBER,
    PAIR,
    SEPARATOR,
    Candidates,
    Item,
    Lexeme,
    ReportDraft,
    build_report,
    ordered,
)

_GAP = r"[ #*,;|/]*"


def _valued(prefix: str, assign: str, *, optional: bool) -> str:
    """``(assign [count] | count_after_gap)`` as the grammar composes it, in named groups."""
    spaced = rf" *(?P<{prefix}svalue>{SPACED_COUNT_PATTERN})"
    either = rf"(?: *(?P<{prefix}assign>{assign})(?: *(?P<{prefix}value>{COUNT_PATTERN}))?|{spaced})"
    return either + "?" if optional else either


_FILLER = re.compile(rf"{_GAP}(?P<filler>{FILLER_PATTERN})", FLAGS)
_STATION = re.compile(rf"{_GAP}(?P<tps>{TPS_PATTERN})(?:{_GAP}(?P<number>{STATION_NUMBER_PATTERN}))?", FLAGS)
_ITEM = re.compile(
    _GAP
    + "(?:"
    + rf"(?P<closing>{CLOSING_PATTERN})"
    + rf"|(?P<extra>{EXTRA_KEYWORD_PATTERN}){_valued('x', EXTRA_ASSIGN_PATTERN, optional=True)}"
    + rf"|(?P<code>{CANDIDATE_CODE_PATTERN}){_valued('c', ASSIGN_PATTERN, optional=True)}"
    + rf"|(?P<filler>{FILLER_PATTERN})"
    + rf"|(?P<name>{NAME_PATTERN}){_valued('n', ASSIGN_PATTERN, optional=False)}"
    + rf"|(?P<number>{BARE_NUMBER_PATTERN})"
    + rf"|(?P<stray>{REPORT_WORD_PATTERN})"
    + ")",
    FLAGS,
)
_TRAILING_GAP = re.compile(_GAP)
_FIRST_LETTERS = re.compile(rf"{_GAP}([A-Z]+|\?)", FLAGS)
_PIN_WORD = re.compile(PIN_WORD_PATTERN, FLAGS)
_KEYED = {"extra": ("x", EXTRA), "code": ("c", PAIR), "name": ("n", NAMED)}


def _lexeme(match: re.Match[str], group: str) -> Lexeme:
    start, end = match.span(group)
    return Lexeme(match.group(group), start, end)


def _keyed_item(match: re.Match[str], key_group: str) -> Item:
    prefix, kind = _KEYED[key_group]
    key = _lexeme(match, key_group)
    sign = _lexeme(match, f"{prefix}assign") if match.group(f"{prefix}assign") is not None else None
    value = None
    for group in (f"{prefix}value", f"{prefix}svalue"):
        if match.group(group) is not None:
            value = _lexeme(match, group)
    if value is None:
        after = sign.end if sign is not None else key.end
        value = Lexeme("", after, after)
    return Item(kind, value, key, sign)


def draft_report(text: str) -> ReportDraft | None:
    """Cut ``text`` into a report draft as the grammar would, or ``None`` to let it decide."""
    if len(text) >= MAX_REPORT_LENGTH:
        return None  # the grammar refuses the words beyond the limit
    first = _FIRST_LETTERS.match(text)
    if first is not None and resolve_keyword(first.group(1)) is not None:
        return None  # a command word (or a safe typo of one): the grammar's business
    if _PIN_WORD.search(text):
        return None  # the PIN suffix is cut off by the grammar
    items: list[Item] = []
    position = 0
    while (filler := _FILLER.match(text, position)) is not None:
        items.append(Item(FILLER, _lexeme(filler, "filler")))
        position = filler.end()
    tps = number = None
    station = _STATION.match(text, position)
    if station is not None:
        tps = _lexeme(station, "tps")
        if station.group("number") is not None:
            number = _lexeme(station, "number")
        position = station.end()
    length = len(text)
    while True:
        match = _ITEM.match(text, position)
        if match is None:
            break
        if match.group("stray") is not None:
            return None
        if match.group("closing") is not None:
            items.append(Item(CLOSING, _lexeme(match, "closing")))
        elif match.group("filler") is not None:
            items.append(Item(FILLER, _lexeme(match, "filler")))
        elif match.group("number") is not None:
            items.append(Item(NUMBER, _lexeme(match, "number")))
        else:
            key_group = next(group for group in _KEYED if match.group(group) is not None)
            items.append(_keyed_item(match, key_group))
        position = match.end()
    if _TRAILING_GAP.match(text, position).end() != length:  # type: ignore[union-attr]
        return None
    lead = next((item for item in items if item.kind != FILLER), None)
    if tps is None and (lead is None or lead.kind not in (PAIR, NAMED, EXTRA, NUMBER)):
        return None  # not plainly a report (the grammar may call it an unknown command)
    return ReportDraft(tps, number, tuple(items))


#: One clean total after the pairs (``TS=3``, ``SAH=371``, ``DPT=400``): the canonical form's tail.
_EXPRESS_EXTRA = r"[ #*,;]+(TS|SAH|DPT)([=:])([0-9]{1,4})"
_EXPRESS_EXTRAS = re.compile(_EXPRESS_EXTRA, FLAGS)
#: The ``Report`` field each canonical label fills.
_EXTRA_FIELDS = {"TS": "invalid", "SAH": "valid", "DPT": "registered"}


@lru_cache(maxsize=64)
def _express_pattern(candidate_count: int) -> re.Pattern[str]:
    """``TPS n``, exactly one clean ``code=count`` per candidate and up to three clean totals:
    the form nearly everyone sends."""
    pair = r"[ #*,;]+([0-9]{1,3})([=:])([0-9]{1,4})"
    extras = rf"((?:{_EXPRESS_EXTRA.replace('(', '(?:')}){{0,3}})"
    return re.compile(
        r"[ #*,;]*TPS([ #*,;]*)([0-9]{1,3})" + pair * candidate_count + extras + r"[ #*,;]*", FLAGS
    )


def express_report(text: str, candidates: Candidates) -> Report | None:
    """The common clean report without building pieces, or ``None`` for anything less plain.

    It only ever answers with a report that ``build_report`` would give for the same text;
    every doubt (an unknown or repeated code, TPS 0) is left to the general path, which also
    writes the error. ``tests/grammar/test_fastpath.py`` holds it to that.
    """
    if len(text) >= MAX_REPORT_LENGTH:
        return None  # the grammar refuses the words beyond the limit
    match = _express_pattern(len(candidates.codes)).fullmatch(text)
    if match is None:
        return None
    *groups, tail = match.groups()
    tps = int(groups[1])
    if not 0 < tps <= 999:
        return None
    notes: set[str] = set()
    if not groups[0]:
        notes.add("no_spaces")
    votes: dict[str, int] = {}
    by_value = candidates.by_value
    for at in range(2, len(groups), 3):
        typed, sign, value = groups[at : at + 3]
        code = by_value.get(int(typed))
        if code is None or code in votes:
            return None
        if len(typed) < len(code):
            notes.add("leading_zeros_added")
        elif len(typed) > len(code):
            notes.add("leading_zeros_removed")
        if sign == ":":
            notes.add("colon_as_equals")
        votes[code] = int(value)
    totals: dict[str, int] = {}
    if tail:
        for label, sign, value in _EXPRESS_EXTRAS.findall(tail):
            field = _EXTRA_FIELDS[label.upper()]
            if field in totals:
                return None  # a total given twice: the grammar's error
            totals[field] = int(value)
            if sign == ":":
                notes.add("colon_as_equals")
        if totals.get("valid", sum(votes.values())) != sum(votes.values()):
            return None  # SAH is not the sum: the grammar's error, pointing at it
    if SEPARATOR.search(text):
        notes.add("separators")
    return Report(
        StationRef(tps),
        votes,
        valid=totals.get("valid"),
        invalid=totals.get("invalid"),
        registered=totals.get("registered"),
        normalisations=ordered(notes) if notes else (),
    )


def parse_report_fast(text: str, candidates: Candidates) -> Report | None:
    """The report in normalised ``text``, or ``None`` when the grammar must decide."""
    express = express_report(text, candidates)
    if express is not None:
        return express
    draft = draft_report(text)
    if draft is None:
        return None
    return build_report(text, draft, candidates)
