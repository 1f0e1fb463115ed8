"""The compiled fast path must never disagree with the pyparsing grammar, the source of truth.

For every generated input, the fast path either declines (``None``) or gives exactly what the
grammar gives: the same message, or the same rejection at the same place.
"""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from grammar.errors import Rejection
from grammar.fastpath import express_report, parse_report_fast
from grammar.language import parse_normalised, parse_whole
from grammar.normalise import is_empty, normalise
from grammar.parser import parse_full
from grammar.semantics import candidate_set

from .strategies import (
    ALIASES,
    CANDIDATES,
    canonical,
    careless,
    gaps,
    near_reports,
    report_words,
    reportish_sequence,
    reportish_text,
    values,
    volunteer_style,
)

CONTEST = candidate_set(CANDIDATES, tuple(sorted(ALIASES.items())))


def outcome(run: object) -> object:
    """A comparable outcome: the message, or the rejection's attributes."""
    try:
        return run()  # type: ignore[operator]
    except Rejection as r:
        return ("rejected", r.code, r.start, r.end, r.field, r.expected, r.actual, r.details)


def check_agreement(original: str) -> bool:
    """Assert agreement on ``original``; True when the fast path answered (did not decline)."""
    text = normalise(original).text
    if is_empty(text):
        return False
    fast = outcome(lambda: parse_report_fast(text, CONTEST))
    if fast is None:
        return False
    assert fast == outcome(lambda: parse_full(text, CANDIDATES, ALIASES)), text
    return True


@given(reportish_text)
@settings(max_examples=1000)
@example("TPS 1201=5")
@example("01= 02=98")
@example("TPS 012 01=12 3 02=98 03=150")
@example("tps o12 o1:1 2=2 3=3")
@example("TPSO")
@example("0TPS")
def test_fast_path_agrees_on_reportlike_characters(text: str) -> None:
    check_agreement(text)


@given(reportish_sequence)
@settings(max_examples=1000)
def test_fast_path_agrees_on_reportlike_words(text: str) -> None:
    check_agreement(text)


@given(near_reports())
@settings(max_examples=1000)
def test_fast_path_agrees_on_reports_with_slips(text: str) -> None:
    """Reports with a slip or two: here the fast path answers most inputs, so the agreement is
    checked where it matters (on random characters or words it mostly declines)."""
    check_agreement(text)


@given(st.text(max_size=40))
def test_fast_path_agrees_on_any_text(text: str) -> None:
    check_agreement(text)


@given(st.data(), values)
def test_fast_path_answers_common_reports(data: st.DataObject, v: object) -> None:
    assert check_agreement(canonical(v))  # type: ignore[arg-type]
    assert check_agreement(data.draw(careless(v)))  # type: ignore[arg-type]
    assert check_agreement(data.draw(volunteer_style(v)))  # type: ignore[arg-type]


def grammar_outcome(run: object) -> object:
    """Like ``outcome`` but for the grammar's raw answer (a message or a report draft)."""
    return outcome(run)


command_words = st.sampled_from(
    [
        "BANTUAN",
        "help",
        "?",
        "BATAL",
        "CANCEL",
        "CEK",
        "CHECK",
        "LAPOR",
        "INCIDENT",
        "DAFTAR",
        "REG",
        "REKAP",
        "TOTAL",
        "BELUM",
        "MISSING",
        "STATUS",
        "QC",
        "SIARAN",
        "BROADCAST",
        "YA",
        "YES",
        "PIN",
        "4821",
        "BANTUN",
        "REKAPP",
        "CEKK",
        "TPS",
        "halo",
        "KAB.",
        "KOTA",
        "63.71",
        "6371011001012",
        "12",
        "abc",
        ":",
        "=",
    ]
)
command_like = st.lists(st.tuples(command_words | report_words, gaps), min_size=1, max_size=6).map(
    lambda parts: "".join(word + gap for word, gap in parts)
)


@given(command_like | reportish_sequence | st.text(max_size=30))
@settings(max_examples=700)
@example("HELP :")
@example("REKAP KAB")
def test_first_word_shortcut_agrees_with_the_whole_grammar(original: str) -> None:
    text = normalise(original).text
    if is_empty(text):
        return
    assert grammar_outcome(lambda: parse_normalised(text)) == grammar_outcome(lambda: parse_whole(text)), text


@given(values)
def test_express_path_answers_canonical_reports_with_their_totals(v: object) -> None:
    """The canonical form with ``SAH``/``TS``/``DPT`` after the pairs (what most volunteers
    send) is answered by the express path itself, exactly as the grammar answers it."""
    text = normalise(canonical(v)).text  # type: ignore[arg-type]
    express = express_report(text, CONTEST)
    if v.desa is None:  # type: ignore[attr-defined]
        assert express is not None, text
    if express is not None:
        assert express == parse_full(text, CANDIDATES, ALIASES), text


@given(near_reports())
@settings(max_examples=1000)
@example("TPS 012 01=60 02=50 03=40 SAH=151")
@example("TPS 012 01=60 02=50 03=40 TS=3 ts:4")
@example("TPS 012 01=60 02=50 03=40 TS=3 SAH=150 DPT=9999 TS=1")
@example("TPS 012 01=60 02=50 03=40 TS=03DPT=1")
@example("TPS 012 01=60 02=50 03=40 TS=12345")
def test_express_path_agrees_or_declines(text: str) -> None:
    """The express path on its own: it declines, or gives the grammar's report."""
    normalised = normalise(text).text
    express = outcome(lambda: express_report(normalised, CONTEST))
    if express is not None:
        assert express == outcome(lambda: parse_full(normalised, CANDIDATES, ALIASES)), normalised
