"""``normalise_phone`` answers an E.164 Indonesian number without ``phonenumbers``: it must
answer exactly what ``phonenumbers`` answers, for every such number and for the near misses."""

from __future__ import annotations

import random

import pytest

from smsgate.phones import InvalidPhone, normalise_phone, parsed_phone


def by_phonenumbers(raw: str) -> str:
    """The answer of the full path (``phonenumbers``), or ``"invalid"``."""
    try:
        return parsed_phone(raw.strip(), raw)
    except InvalidPhone:
        return "invalid"


def answered(raw: str) -> str:
    try:
        return normalise_phone(raw)
    except InvalidPhone:
        return "invalid"


def numbers() -> list[str]:
    """``+62``, ``+620``, ``62`` and ``+6`` followed by 0 to 20 digits, each first digit, each
    length, random digits after it, with and without spaces around: the fast path's whole
    domain and its edges."""
    rng = random.Random(62)
    found = []
    for prefix in ("+62", "+620", "62", "+6", "+63", "+062", "0"):
        for first in "0123456789":
            for length in range(21):
                for _ in range(3):
                    rest = "".join(rng.choice("0123456789") for _ in range(max(length - 1, 0)))
                    number = prefix + (first + rest if length else "")
                    found += [number, f" {number} ", number + "\n"]
    return found


def test_fast_path_answers_what_phonenumbers_answers() -> None:
    checked = [(raw, answered(raw), by_phonenumbers(raw)) for raw in numbers()]
    assert [c for c in checked if c[1] != c[2]] == []
    # the fast path's domain is covered, valid and invalid alike
    assert sum(1 for _raw, got, _ in checked if got.startswith("+62")) > 500
    assert sum(1 for _raw, got, _ in checked if got == "invalid") > 100


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+6281234567890", "+6281234567890"),
        (" +62811111111 ", "+62811111111"),
        ("6281234567890", "+6281234567890"),
        ("081234567890", "+6281234567890"),
        ("+62 812-3456-7890", "+6281234567890"),
        ("+620812345678", "+62812345678"),
        ("+621234", "invalid"),
        ("+62812345678901234567", "invalid"),
        ("+62812O4567890", "invalid"),
    ],
)
def test_examples(raw: str, expected: str) -> None:
    assert answered(raw) == expected
    assert by_phonenumbers(raw) == expected
