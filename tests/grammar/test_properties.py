"""Properties of the language that no table can cover: they hold for every generated message."""

from __future__ import annotations

import dataclasses
import string

from hypothesis import example, given, settings
from hypothesis import strategies as st

from grammar import Message, ParseError, Report, StationRef, parse
from grammar.canonical import render

from .strategies import (
    ALIASES,
    CANDIDATES,
    Values,
    canonical,
    careless,
    reportish_sequence,
    reportish_text,
    values,
    volunteer_style,
)

MESSAGE_TYPES = (*Message.__args__, ParseError)  # type: ignore[attr-defined]


def expected_report(v: Values) -> Report:
    return Report(
        StationRef(v.tps, v.desa),
        dict(zip(CANDIDATES, v.votes, strict=True)),
        valid=v.total if v.valid else None,
        invalid=v.invalid,
        registered=v.registered,
    )


def same_values(got: object, want: Report) -> bool:
    """Equal values; the normalisations are allowed to differ (they say how it was typed)."""
    return (
        isinstance(got, Report)
        and hash(got) == hash(want)
        and (got.station, dict(got.votes), got.valid, got.invalid, got.registered)
        == (want.station, dict(want.votes), want.valid, want.invalid, want.registered)
    )


@given(st.text())
@example("\x00")
@example("TPS\u00a0012\u00a001\uff1d123")
@example("\ud800")
def test_any_text_gives_a_message_or_an_error(text: str) -> None:
    assert isinstance(parse(text), MESSAGE_TYPES)


@given(st.text(alphabet=string.printable + "OoＴＰＳ＝０１２\u00a0\u200b😀", max_size=80))
def test_printable_text_gives_a_message_or_an_error(text: str) -> None:
    result = parse(text)
    assert isinstance(result, MESSAGE_TYPES)
    if isinstance(result, ParseError) and result.position is not None:
        assert 0 <= result.position <= len(text)
        assert result.token is not None and text.startswith(result.token, result.position)


@given(reportish_sequence)
def test_reportlike_text_errors_point_into_the_text(text: str) -> None:
    result = parse(text)
    assert isinstance(result, MESSAGE_TYPES)
    if isinstance(result, ParseError) and result.position is not None:
        assert text.startswith(result.token or "", result.position)


@given(values)
def test_canonical_reports_round_trip(v: Values) -> None:
    got = parse(canonical(v))
    assert got == expected_report(v)
    assert isinstance(got, Report) and got.normalisations == ()


@given(st.data(), values)
@settings(max_examples=300)
def test_careless_typing_never_changes_the_values(data: st.DataObject, v: Values) -> None:
    text = data.draw(careless(v))
    assert same_values(parse(text), expected_report(v)), text


@given(st.data(), values)
def test_changing_one_digit_never_gives_the_original_values(data: st.DataObject, v: Values) -> None:
    text = canonical(v)
    digits = [i for i, c in enumerate(text) if c.isdigit()]
    at = data.draw(st.sampled_from(digits))
    other = data.draw(st.sampled_from([d for d in "0123456789" if d != text[at]]))
    mutated = text[:at] + other + text[at + 1 :]
    assert not same_values(parse(mutated), expected_report(v)), mutated


@given(values)
def test_positional_form_gives_the_same_votes(v: Values) -> None:
    text = "TPS#" + f"{v.desa or ''}{v.tps:03d}#" + "#".join(str(n) for n in v.votes)
    got = parse(text)
    assert isinstance(got, Report)
    assert dict(got.votes) == dict(zip(CANDIDATES, v.votes, strict=True))
    assert "positional" in got.normalisations


@given(reportish_text | reportish_sequence)
def test_parse_is_deterministic(text: str) -> None:
    assert parse(text) == parse(text)


@given(st.data(), values)
@settings(max_examples=300)
def test_volunteer_style_never_changes_the_values(data: st.DataObject, v: Values) -> None:
    text = data.draw(volunteer_style(v))
    assert same_values(parse(text, CANDIDATES, ALIASES), expected_report(v)), text


@given(st.data(), values)
@settings(max_examples=300)
def test_every_accepted_variant_rendered_canonically_parses_the_same(data: st.DataObject, v: Values) -> None:
    text = data.draw(st.one_of(careless(v), volunteer_style(v), reportish_sequence, reportish_text))
    got = parse(text, CANDIDATES, ALIASES)
    if isinstance(got, ParseError):
        return
    again = parse(render(got), CANDIDATES, ALIASES)
    assert again == dataclasses.replace(got, normalisations=again.normalisations), (text, render(got))


@given(st.data(), values)
@settings(max_examples=200)
def test_nothing_may_follow_a_complete_report(data: st.DataObject, v: Values) -> None:
    """A closing or a filler is no licence: an unknown word or any number after a report fails."""
    text = data.draw(st.one_of(careless(v), volunteer_style(v)))
    tail = data.draw(st.sampled_from([" salah", " 5", " terima kasih 7", " salam salah", ", 0", " Budi"]))
    got = parse(text + tail, CANDIDATES, ALIASES)
    assert isinstance(got, ParseError), text + tail
