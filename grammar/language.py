"""The SMS message language, as a pyparsing grammar. Read this file to learn the language.

This grammar is the single source of truth. ``grammar.fastpath`` compiles the same lexical
patterns (the ``*_PATTERN`` constants below) into one regular expression for the common report
forms, and a property test proves it agrees with this grammar on every input.

The text reaching the grammar is already normalised (``grammar.normalise``): ASCII punctuation,
plain spaces only. Words are separated by a ``GAP``: spaces and the separators ``# * , ;`` that
feature-phone users type instead of spaces.

    message  ::= body [pin_suffix]
    body     ::= help | cancel | check | incident | register | totals | missing | status
               | quick_count | broadcast | confirm | set_pin | report    (else: unknown_command)
    pin_suffix ::= "PIN" ["=" | ":"] pin_digits END      the last word PIN that is not the first
    pin_digits ::= 4 to 6 digits                         word; nothing but gaps after it

    report   ::= filler* [station] item* END
    station  ::= "TPS" ["NO" | "NO." | "NOMOR" | "NMR"] ["." | ":" | "-"] [station_number]
                     TPS 012 | TPS12 | TPS O12 | TPS No. 12 | TPS.012 | TPS-012 | TPS 12: | TPS 12.
                     | TPS 6371011001012 | TPS 63.71.01.1001/12 | TPS 6371011001/12
    item     ::= closing | extra | vote | filler | named_vote | bare_number | stray_word
    vote     ::= code (("=" | ":" | "-") [count] | count_after_gap)     01=123, 1:123, 01-123
    code     ::= digits | digits ")" | "(" digits ")"                    01 | 1) | (01)
    named_vote ::= alias (("=" | ":" | "-") [count] | count_after_gap)  AMIN=123, anies 123
    extra    ::= label (("=" | ":") [count] | [count_after_gap])        SAH=371, TIDAK SAH 5
    label    ::= [("JUMLAH" | "JML") ["SELURUH"] ["SUARA"] | "SUARA"] "SAH"           -> SAH
               | "TS" | [("JUMLAH" | "JML")] ["SUARA"] ("TIDAK" | "TDK") "SAH"     -> TS
               | [("JUMLAH" | "JML")] "DPT"                                         -> DPT
    filler   ::= ("PASLON" | "PASANGAN" | "CALON" | "NOMOR" | "NMR" | "NO" | "URUT" | "SUARA"
               | "HASIL" | "PEROLEHAN") ["." | ":"]                      carries no value
    closing  ::= ("TERIMA KASIH" | "TERIMAKASIH" | "TRIMA KASIH" | "MAKASIH" | "MKSH" | "TRIMS"
               | "TKS" | "THX" | "TQ" | "SALAM") ["." | "!"]...          only as the last item
    count    ::= digits ["." | ":"]            one trailing full stop or colon closes a sentence
    positional counts: TPS#012#123#98#150 (bare numbers, one per candidate in code order)
    codes and counts: TPS 12 01 123 02 98 03 150 (bare numbers, code then count, when the codes
                      are each candidate once, in code order or written in full)

    Inside a report ``|`` and ``/`` are gaps too (``01=123 | 02=98``). An alias is a word the
    contest's candidates CSV gives a candidate; ``grammar.semantics`` resolves it, so an
    unknown word with a value (``salah 5``, ``JOKOWI=5``) is refused where it stands.

    help        ::= ("BANTUAN" | "HELP" | "INFO" | "?") anything
    cancel      ::= ("BATAL" | "CANCEL") [reference]
    check       ::= ("CEK" | "CHECK") [station | station_number]
    incident    ::= ("LAPOR" | "INCIDENT") text
    register    ::= ("DAFTAR" | "REG" | "REGISTER") reference text
    totals      ::= ("REKAP" | "TOTAL") [region]
    missing     ::= ("BELUM" | "MISSING") [region]
    status      ::= "STATUS" (station | station_number)       with the desa: full station ID
    quick_count ::= "QC" [region]
    broadcast   ::= ("SIARAN" | "BROADCAST") text
    confirm     ::= ("YA" | "YES") reference
    set_pin     ::= "PIN" [pin_digits] pin_digits         PIN <new> | PIN <old> <new>
    region      ::= region_code | region_name          63.71 | 6371 | KAB. BANJAR | KOTA BANJARMASIN

The PIN suffix is cut off before the body is parsed (``split_pin``), so every message type may
carry it; in the free text of help, incident, register and broadcast a ``PIN`` that does not
end the message as a well-formed suffix is part of the text, anywhere else it is an error.

Lexemes are deliberately lenient (a ``count`` is anything up to the next gap) so that a wrong
value is *recognised* as the value of a candidate and reported as ``bad_number`` for that
candidate, instead of failing somewhere vaguer. ``grammar.semantics`` then judges the pieces.
All patterns are linear: atomic groups stop backtracking into numbers (``TPS 1201=5`` must not
be read as station 120 plus ``1=5``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

import pyparsing as pp

from grammar import errors
from grammar.errors import Rejection
from grammar.keywords import CLOSINGS, FILLER_WORDS, resolve_keyword
from grammar.messages import (
    Broadcast,
    Cancel,
    Check,
    Confirm,
    Help,
    Incident,
    Message,
    Missing,
    Pin,
    QuickCount,
    Register,
    Status,
    Totals,
)
from grammar.semantics import (
    CLOSING,
    EXTRA,
    FILLER,
    NAMED,
    NUMBER,
    PAIR,
    STRAY,
    Item,
    Keyword,
    Lexeme,
    ReportDraft,
    free_text,
    region_ref,
    station_ref,
)

FLAGS = re.IGNORECASE | re.ASCII
GAP = " #*,;"
"""What may stand between two words: a space or a separator volunteers type instead."""

# ---------------------------------------------------------------------------------------------
# Lexical patterns, shared with the fast path. ``[0-9O]`` with IGNORECASE: O/o may stand for 0.
# ---------------------------------------------------------------------------------------------
REPORT_GAP = GAP + "|/"
"""Inside a report ``|`` and ``/`` may also stand between two pairs (``01=123 | 02=98``)."""

TPS_PATTERN = r"TPS(?![A-NP-Z])(?: *(?:NOMOR|NMR|NO)(?![A-Z])\.?)?[.:-]?"
STATION_NUMBER_PATTERN = r"(?>[0-9O][^ #*,;|=:]*)(?::(?=[ #*,;|]))?(?! *[=:])"
CANDIDATE_CODE_PATTERN = r"\((?>[0-9O]+)\)|(?>[0-9O]+)(?:\)|(?= *[=:-]))"
_VALID_LABEL = r"(?:(?:JUMLAH|JML) +(?:SELURUH +)?(?:SUARA +)?|SUARA +)?SAH"
_INVALID_LABEL = r"TS|(?:(?:JUMLAH|JML) +)?(?:SUARA +)?(?:TIDAK|TDK) +SAH"
_REGISTERED_LABEL = r"(?:(?:JUMLAH|JML) +)?DPT"
EXTRA_KEYWORD_PATTERN = rf"(?:{_INVALID_LABEL}|{_VALID_LABEL}|{_REGISTERED_LABEL})(?![A-Z])"
ASSIGN_PATTERN = r"[=:-]"
EXTRA_ASSIGN_PATTERN = r"[=:]"
COUNT_PATTERN = r"(?!(?>[0-9O]+) *[=:)-]|\()[^ #*,;|/]+"
SPACED_COUNT_PATTERN = rf"(?=[0-9]){COUNT_PATTERN}"
BARE_NUMBER_PATTERN = r"(?>[0-9O]+)\.?(?![^ #*,;|/])"
FILLER_PATTERN = rf"(?:{'|'.join(FILLER_WORDS)})(?:[.:]?(?![^ #*,;|/])|\.(?=[0-9O]))"
CLOSING_PATTERN = rf"(?:{'|'.join(c.replace(' ', ' +') for c in CLOSINGS)})[.!]*(?![^ #*,;|/])"
NAME_PATTERN = r"[A-Z]{2,20}(?![A-Z0-9])"
WORD_PATTERN = r"[^ #*,;]+"
REPORT_WORD_PATTERN = r"[^ #*,;|/]+"
COMMAND_WORD_PATTERN = r"[A-Z]+|\?+"
REFERENCE_PATTERN = r"[^ #*,;]+"
REGION_CODE_PATTERN = r"[0-9][0-9.]*(?![^ #*,;])"
REGION_NAME_PATTERN = r"[^\W\d_][^#*,;]*"
TEXT_PATTERN = r"[^ #*,;:=].*"


def _to_lexeme(s: str, loc: int, toks: pp.ParseResults) -> Lexeme:
    return Lexeme(toks[0], loc, loc + len(toks[0]))


def lexeme(pattern: str, name: str, *, gap: str = GAP, flags: int = FLAGS) -> pp.ParserElement:
    """A token of the language: a regular expression that yields a positioned ``Lexeme``."""
    expr = pp.Regex(pattern, flags=flags).set_name(name)
    expr.set_whitespace_chars(gap, copy_defaults=False)
    expr.add_parse_action(_to_lexeme)
    return expr


def command_word(canonical: str) -> pp.ParserElement:
    """The word of one command in any of its spellings, or a safe one-letter typo of one."""

    def is_this_command(toks: pp.ParseResults) -> bool:
        resolved = resolve_keyword(toks[0].text)
        return resolved is not None and resolved[0] == canonical

    def to_keyword(toks: pp.ParseResults) -> Keyword:
        resolved = resolve_keyword(toks[0].text)
        assert resolved is not None
        return Keyword(canonical, resolved[1], toks[0])

    word = lexeme(COMMAND_WORD_PATTERN, canonical).add_condition(is_this_command)
    return word.add_parse_action(to_keyword).set_name(canonical)


def _reject_unexpected(toks: pp.ParseResults) -> None:
    word: Lexeme = toks[0]
    raise Rejection(errors.UNEXPECTED_TOKEN, word.start, word.end)


def _reject_unknown_command(toks: pp.ParseResults) -> None:
    word: Lexeme = toks[0]
    raise Rejection(errors.UNKNOWN_COMMAND, word.start, word.end)


END = pp.StringEnd().set_whitespace_chars(GAP, copy_defaults=False).set_name("end of message")
REPORT_END = pp.StringEnd().set_whitespace_chars(REPORT_GAP, copy_defaults=False).set_name("end of message")
unexpected_word = lexeme(WORD_PATTERN, "unexpected word").add_parse_action(_reject_unexpected)
FINISH = (END | unexpected_word).set_name("end of message")
"""After a command's arguments: the end, else the first word left over is the error."""

# ---------------------------------------------------------------------------------------------
# Reports
# ---------------------------------------------------------------------------------------------
tps_word = lexeme(TPS_PATTERN, "TPS", gap=REPORT_GAP)
station_number = lexeme(STATION_NUMBER_PATTERN, "station number", gap=REPORT_GAP)
candidate_code = lexeme(CANDIDATE_CODE_PATTERN, "candidate code", gap=REPORT_GAP)
candidate_name = lexeme(NAME_PATTERN, "candidate name", gap=REPORT_GAP)
extra_keyword = lexeme(EXTRA_KEYWORD_PATTERN, "SAH, TS or DPT", gap=REPORT_GAP)
assign = lexeme(ASSIGN_PATTERN, "=, : or -", gap=" ")
extra_assign = lexeme(EXTRA_ASSIGN_PATTERN, "= or :", gap=" ")
count = lexeme(COUNT_PATTERN, "count", gap=" ")
spaced_count = lexeme(SPACED_COUNT_PATTERN, "count", gap=" ")
bare_number = lexeme(BARE_NUMBER_PATTERN, "number", gap=REPORT_GAP)
filler_word = lexeme(FILLER_PATTERN, "filler word", gap=REPORT_GAP)
closing_words = lexeme(CLOSING_PATTERN, "closing", gap=REPORT_GAP)
stray_word = lexeme(REPORT_WORD_PATTERN, "word", gap=REPORT_GAP)


def _keyed(kind: str) -> Callable[[pp.ParseResults], Item]:
    """``key [sign] [value]``: a missing sign or value is an empty lexeme where it would be."""

    def build(toks: pp.ParseResults) -> Item:
        key, *rest = toks
        sign = value = None
        if len(rest) == 2:
            sign, value = rest
        elif rest and rest[0].text[:1].isdigit():  # only a count after a gap starts with a digit
            value = rest[0]
        elif rest:
            sign = rest[0]
        if value is None:
            after = sign.end if sign is not None else key.end
            value = Lexeme("", after, after)
        return Item(kind, value, key, sign)

    return build


def _single(kind: str) -> Callable[[pp.ParseResults], Item]:
    return lambda toks: Item(kind, toks[0])


station = (tps_word + pp.Opt(station_number)).set_name("station")
_valued = (assign + pp.Opt(count)) | spaced_count
_extra_valued = (extra_assign + pp.Opt(count)) | pp.Opt(spaced_count)
vote = (candidate_code + pp.Opt(_valued)).set_name("vote").add_parse_action(_keyed(PAIR))
named_vote = (candidate_name + _valued).set_name("vote by name").add_parse_action(_keyed(NAMED))
extra = (extra_keyword + _extra_valued).set_name("SAH/TS/DPT").add_parse_action(_keyed(EXTRA))
positional_count = bare_number.copy().add_parse_action(_single(NUMBER))
filler = filler_word.copy().add_parse_action(_single(FILLER))
closing = closing_words.copy().add_parse_action(_single(CLOSING))
stray = stray_word.copy().add_parse_action(_single(STRAY))
MAX_REPORT_LENGTH = 2000
"""A report is short (Twilio delivers at most 1,600 characters): words beyond this are refused,
which bounds the work for absurd input instead of reading 100 kB of numbers."""


def _within_report_length(s: str, loc: int, toks: pp.ParseResults) -> None:
    item: Item = toks[0]
    start = (item.key or item.value).start
    if start >= MAX_REPORT_LENGTH:
        raise Rejection(errors.UNEXPECTED_TOKEN, start, item.value.end, details=("too_long",))


report_item = (closing | extra | vote | filler | named_vote | positional_count | stray).set_name(
    "report item"
)
report_item.add_parse_action(_within_report_length)
report_start = pp.FollowedBy(
    pp.ZeroOrMore(filler_word) + (tps_word | candidate_code | extra_keyword | bare_number | named_vote)
)


def _report_draft(toks: pp.ParseResults) -> ReportDraft:
    items: list[Item] = []
    station_parts: list[Lexeme] = []
    for part in toks:
        (items if isinstance(part, Item) else station_parts).append(part)
    tps = station_parts[0] if station_parts else None
    number = station_parts[1] if len(station_parts) > 1 else None
    return ReportDraft(tps, number, tuple(items))


report = (
    report_start + pp.ZeroOrMore(filler) + pp.Opt(station) + pp.ZeroOrMore(report_item) + REPORT_END
).set_name("report")
report.add_parse_action(_report_draft)

# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------
reference = lexeme(REFERENCE_PATTERN, "reference")
text = lexeme(TEXT_PATTERN, "text", gap=GAP + ":=", flags=re.DOTALL)
region_code = lexeme(REGION_CODE_PATTERN, "region code").add_parse_action(lambda toks: ("code", toks[0]))
region_name = lexeme(REGION_NAME_PATTERN, "region name", flags=re.IGNORECASE).add_parse_action(
    lambda toks: ("name", toks[0])
)
region = (region_code | region_name).set_name("region")
station_argument = station | station_number.copy().add_parse_action(lambda toks: [None, toks[0]])
station_argument.set_name("station")

HELP = command_word("BANTUAN")
CANCEL = command_word("BATAL")
CHECK = command_word("CEK")
INCIDENT = command_word("LAPOR")
REGISTER = command_word("DAFTAR")
TOTALS = command_word("REKAP")
MISSING = command_word("BELUM")
STATUS = command_word("STATUS")
QUICK_COUNT = command_word("QC")
BROADCAST = command_word("SIARAN")
CONFIRM = command_word("YA")
SET_PIN = command_word("PIN")


def _notes(keyword: Keyword) -> tuple[str, ...]:
    return ("keyword_typo",) if keyword.typo else ()


def _missing(keyword: Keyword) -> Rejection:
    return Rejection(
        errors.MISSING_ARGUMENT, keyword.lexeme.start, keyword.lexeme.end, field=keyword.canonical
    )


def _station(toks: pp.ParseResults, keyword: Keyword) -> tuple[Lexeme | None, Lexeme | None]:
    """The (TPS word, number) after a command word; a bare number has no TPS word."""
    parts = list(toks)[1:]
    if not parts:
        return None, None
    if parts[0] is None:
        return None, parts[1]
    return parts[0], parts[1] if len(parts) > 1 else None


def _build_help(toks: pp.ParseResults) -> Help:
    return Help(normalisations=_notes(toks[0]))


def _build_cancel(toks: pp.ParseResults) -> Cancel:
    ref = toks[1].text.upper() if len(toks) > 1 else None
    return Cancel(ref, normalisations=_notes(toks[0]))


def _build_check(toks: pp.ParseResults) -> Check:
    keyword: Keyword = toks[0]
    tps, number = _station(toks, keyword)
    notes: set[str] = set()
    ref = station_ref(tps, number, notes) if (tps or number) else None
    return Check(ref, normalisations=_notes(keyword))


def _build_status(toks: pp.ParseResults) -> Status:
    keyword: Keyword = toks[0]
    tps, number = _station(toks, keyword)
    if tps is None and number is None:
        raise _missing(keyword)
    ref = station_ref(tps, number, set())
    if ref.desa is None:
        assert number is not None
        raise Rejection(errors.NO_STATION, (tps or number).start, number.end)
    return Status(ref, normalisations=_notes(keyword))


def _text_command(build: Callable[[str, tuple[str, ...]], Message]) -> Callable[[pp.ParseResults], Message]:
    def action(toks: pp.ParseResults) -> Message:
        keyword: Keyword = toks[0]
        words = free_text(toks[1]) if len(toks) > 1 else ""
        if not words:
            raise _missing(keyword)
        return build(words, _notes(keyword))

    return action


def _build_register(toks: pp.ParseResults) -> Register:
    keyword: Keyword = toks[0]
    name = free_text(toks[2]) if len(toks) > 2 else ""
    if not name:
        raise _missing(keyword)
    return Register(toks[1].text.upper(), name, normalisations=_notes(keyword))


def _region_command(build: Callable[..., Message]) -> Callable[[pp.ParseResults], Message]:
    def action(toks: pp.ParseResults) -> Message:
        keyword: Keyword = toks[0]
        ref = None
        if len(toks) > 1:
            kind, where = toks[1]
            ref = region_ref(where, is_code=kind == "code")
        return build(ref, normalisations=_notes(keyword))

    return action


def _build_confirm(toks: pp.ParseResults) -> Confirm:
    keyword: Keyword = toks[0]
    if len(toks) < 2:
        raise _missing(keyword)
    return Confirm(toks[1].text.upper(), normalisations=_notes(keyword))


def _build_pin(toks: pp.ParseResults) -> Pin:
    keyword: Keyword = toks[0]
    digits: list[Lexeme] = list(toks)[1:]
    if not digits:
        raise _missing(keyword)
    for value in digits:
        _check_pin(value)
    if len(digits) == 1:
        return Pin(digits[0].text, normalisations=_notes(keyword))
    return Pin(digits[1].text, old=digits[0].text, normalisations=_notes(keyword))


help_command = (HELP + pp.Opt(text)).set_name("BANTUAN").add_parse_action(_build_help)
cancel_command = (CANCEL + pp.Opt(reference) + FINISH).set_name("BATAL").add_parse_action(_build_cancel)
check_command = (CHECK + pp.Opt(station_argument) + FINISH).set_name("CEK").add_parse_action(_build_check)
incident_command = (
    (INCIDENT + pp.Opt(text))
    .set_name("LAPOR")
    .add_parse_action(_text_command(lambda words, notes: Incident(words, normalisations=notes)))
)
register_command = (REGISTER + pp.Opt(reference + pp.Opt(text))).set_name("DAFTAR")
register_command.add_parse_action(_build_register)
totals_command = (
    (TOTALS + pp.Opt(region) + FINISH).set_name("REKAP").add_parse_action(_region_command(Totals))
)
missing_command = (
    (MISSING + pp.Opt(region) + FINISH).set_name("BELUM").add_parse_action(_region_command(Missing))
)
status_command = (
    (STATUS + pp.Opt(station_argument) + FINISH).set_name("STATUS").add_parse_action(_build_status)
)
quick_count_command = (QUICK_COUNT + pp.Opt(region) + FINISH).set_name("QC")
quick_count_command.add_parse_action(_region_command(QuickCount))
broadcast_command = (
    (BROADCAST + pp.Opt(text))
    .set_name("SIARAN")
    .add_parse_action(_text_command(lambda words, notes: Broadcast(words, normalisations=notes)))
)
confirm_command = (CONFIRM + pp.Opt(reference) + FINISH).set_name("YA").add_parse_action(_build_confirm)
pin_command = (SET_PIN + pp.Opt(reference + pp.Opt(reference)) + FINISH).set_name("PIN")
pin_command.add_parse_action(_build_pin)

unknown_command = lexeme(WORD_PATTERN, "command").add_parse_action(_reject_unknown_command)

command = (
    help_command
    | cancel_command
    | check_command
    | incident_command
    | register_command
    | totals_command
    | missing_command
    | status_command
    | quick_count_command
    | broadcast_command
    | confirm_command
    | pin_command
).set_name("command")

message = (command | report | unknown_command).set_name("message").parse_with_tabs()
"""The whole language. ``parse_with_tabs`` keeps offsets exact (pyparsing would expand tabs)."""


COMMAND_BY_WORD: dict[str, pp.ParserElement] = {
    "BANTUAN": help_command,
    "BATAL": cancel_command,
    "CEK": check_command,
    "LAPOR": incident_command,
    "DAFTAR": register_command,
    "REKAP": totals_command,
    "BELUM": missing_command,
    "STATUS": status_command,
    "QC": quick_count_command,
    "SIARAN": broadcast_command,
    "YA": confirm_command,
    "PIN": pin_command,
}
"""Each command by its canonical word, so ``parse_normalised`` can go straight to it."""

not_a_command = (report | unknown_command).set_name("report").parse_with_tabs()
for _expr in COMMAND_BY_WORD.values():
    _expr.parse_with_tabs()

_FIRST_WORD = re.compile(rf"[{GAP}]*({COMMAND_WORD_PATTERN})", FLAGS)


# ---------------------------------------------------------------------------------------------
# The PIN suffix
# ---------------------------------------------------------------------------------------------
PIN_WORD_PATTERN = r"(?<![^ #*,;])PIN(?=[ #*,;=:]|$)"
PIN_DIGITS_PATTERN = r"[0-9]{4,6}"
PIN_FIELD = "PIN"
FREE_TEXT_COMMANDS = frozenset({"BANTUAN", "LAPOR", "DAFTAR", "SIARAN"})
"""Commands whose last argument is the sender's own words: a ``PIN`` there is a suffix only
when the whole tail is a well-formed one, else it is part of the text."""

_PIN_WORD = re.compile(PIN_WORD_PATTERN, FLAGS)
_PIN_TAIL = re.compile(r"[ #*,;]*[=:]?[ #*,;]*([^ #*,;]*)", FLAGS)
_PIN_DIGITS = re.compile(PIN_DIGITS_PATTERN, FLAGS)
_GAPS = re.compile(rf"[{GAP}]*")
_WORD = re.compile(WORD_PATTERN, FLAGS)


def _check_pin(value: Lexeme) -> str:
    if not _PIN_DIGITS.fullmatch(value.text):
        raise Rejection(errors.BAD_NUMBER, value.start, value.end, field=PIN_FIELD)
    return value.text


def split_pin(text: str, *, free_text: bool = False) -> tuple[str, str | None]:
    """Cut the ``PIN dddd`` suffix off a message: (the message before it, the PIN digits).

    The suffix is the last word ``PIN`` that is not the message's first word, then an optional
    ``=``/``:`` and 4 to 6 digits, and nothing after it but gaps. Anywhere else the word ``PIN``
    is an error (a PIN must end the message, so a report cannot hide words behind it), except in
    the free text of ``FREE_TEXT_COMMANDS``, where a malformed tail is just text.
    """
    first = _GAPS.match(text).end()  # type: ignore[union-attr]
    found = None
    for match in _PIN_WORD.finditer(text, first + 1):
        found = match
    if found is None:
        return text, None
    tail = _PIN_TAIL.match(text, found.end())
    assert tail is not None
    value = Lexeme(tail.group(1), tail.start(1), tail.end(1))
    rest = _GAPS.match(text, tail.end()).end()  # type: ignore[union-attr]
    well_formed = rest == len(text) and _PIN_DIGITS.fullmatch(value.text) is not None
    if free_text and not well_formed:
        return text, None
    if rest != len(text):
        word = _WORD.match(text, rest)
        raise Rejection(errors.UNEXPECTED_TOKEN, rest, word.end() if word else len(text))
    return text[: found.start()], _check_pin(value)


def _with_pin(result: Message | ReportDraft, pin: str | None) -> Message | ReportDraft:
    return result if pin is None else dataclasses.replace(result, pin=pin)


def _run(expr: pp.ParserElement, text: str) -> Message | ReportDraft:
    try:
        result = expr.parse_string(text, parse_all=False)
    except pp.ParseBaseException as exc:
        loc = min(exc.loc, len(text))
        raise Rejection(errors.UNEXPECTED_TOKEN, loc, len(text)) from None
    parsed: Message | ReportDraft = result[0]  # the parse action built it
    return parsed


def parse_normalised(text: str) -> Message | ReportDraft:
    """Run the grammar on normalised text; a report comes back as a draft to be judged.

    Trying eleven commands one after the other costs more than the rest of the parse, so the
    first word picks the alternative of ``message`` that would match. This is only a shortcut:
    every alternative starts with the same word pattern and keyword resolution, so the others
    would fail on it anyway, and when the chosen one does not match (it always should) the
    whole ``message`` decides. A property test checks both give the same answers.
    """
    first = _FIRST_WORD.match(text)
    resolved = resolve_keyword(first.group(1)) if first is not None else None
    body, pin = split_pin(text, free_text=resolved is not None and resolved[0] in FREE_TEXT_COMMANDS)
    if resolved is None:
        return _with_pin(_run(not_a_command, body), pin)
    try:
        result = COMMAND_BY_WORD[resolved[0]].parse_string(body, parse_all=False)[0]
    except pp.ParseBaseException:
        result = _run(message, body)
    return _with_pin(result, pin)


def parse_whole(text: str) -> Message | ReportDraft:
    """Run ``message`` itself, without the first-word shortcut (for tests)."""
    first = _FIRST_WORD.match(text)
    resolved = resolve_keyword(first.group(1)) if first is not None else None
    body, pin = split_pin(text, free_text=resolved is not None and resolved[0] in FREE_TEXT_COMMANDS)
    return _with_pin(_run(message, body), pin)
