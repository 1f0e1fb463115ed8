"""Absurd input must cost little: work grows at most linearly with length, and is bounded for reports.

Wall-clock timings are flaky on shared CI machines, so the growth is measured by counting the
Python and C function calls ``parse`` makes (deterministic for a given input) on inputs of
doubling length. Quadratic behaviour (or catastrophic regex backtracking, which shows up as
time inside one call) is caught by the call counts and by the 100 kB inputs returning at all.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest

from grammar import Incident, Message, ParseError, parse

MESSAGE_TYPES = (*Message.__args__, ParseError)  # type: ignore[attr-defined]

SHAPES: dict[str, Callable[[int], str]] = {
    "words": lambda n: "x " * (n // 2),
    "one long word": lambda n: "x" * n,
    "digits": lambda n: "1" * n,
    "pairs": lambda n: "TPS 12 " + "01=1 " * (n // 5),
    "bare numbers": lambda n: "TPS 12 " + "1 " * (n // 2),
    "stray words": lambda n: "TPS 12 01=1 " + "a# " * (n // 3),
    "spaces": lambda n: "TPS" + " " * n + "12",
    "equals": lambda n: "01=" + "=" * n,
    "letter O": lambda n: "O" * n,
    "incident": lambda n: "LAPOR " + "kata " * (n // 5),
    "region": lambda n: "REKAP " + "a" * n,
    "no-break spaces": lambda n: "01=1\u00a0" * (n // 5),
    "full-width": lambda n: "０１＝１ " * (n // 5),
    "emoji": lambda n: "\U0001f600" * n,
    "NUL": lambda n: "\x00" * n + "HELP",
}


def calls(text: str) -> int:
    count = 0

    def profiler(frame: object, event: str, arg: object) -> None:
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    parse("warm up the caches 01=1")
    sys.setprofile(profiler)
    try:
        parse(text)
    finally:
        sys.setprofile(None)
    return count


@pytest.mark.parametrize("shape", SHAPES)
def test_work_grows_at_most_linearly(shape: str) -> None:
    small, large = calls(SHAPES[shape](4_000)), calls(SHAPES[shape](16_000))
    # Four times the text may cost at most a little over four times the calls.
    assert large <= 4.5 * small + 200, (small, large)


@pytest.mark.parametrize("shape", SHAPES)
def test_100_kb_inputs_are_answered(shape: str) -> None:
    text = SHAPES[shape](100_000)
    result = parse(text)
    if shape == "incident":
        assert isinstance(result, Incident)
        assert len(result.text) > 90_000
    else:
        assert isinstance(result, MESSAGE_TYPES)
