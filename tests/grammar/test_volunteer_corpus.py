"""The volunteer corpus: at least 300 messages as volunteers write them, and never a wrong accept."""

from __future__ import annotations

from grammar import ParseError, parse
from grammar.canonical import render

from .volunteer_corpus import CANDIDATES, load, measure


def test_the_corpus_is_large_and_has_both_kinds() -> None:
    cases = load()
    assert len(cases) >= 300
    assert sum(case.must_refuse for case in cases) >= 50
    assert sum(not case.must_refuse for case in cases) >= 200


def test_no_message_of_the_corpus_is_wrongly_accepted() -> None:
    figures = measure(load())
    assert not figures.wrong_accepts, figures.wrong_accepts


def test_every_accepted_reading_parses_back_to_itself() -> None:
    """The canonical reading echoed to the volunteer is itself a message with the same meaning."""
    for case in load():
        got = parse(case.text, CANDIDATES)
        if isinstance(got, ParseError):
            continue
        again = parse(render(got), CANDIDATES)
        assert not isinstance(again, ParseError), (case.text, render(got), again)
        assert render(again) == render(got)
        assert type(again) is type(got)
