"""The volunteer corpus (``volunteer_corpus.txt``): load it, read every message, count the outcome.

``python -m tests.grammar.volunteer_corpus`` prints the figures the README states: first-try
acceptance (messages that must be accepted and are, with the expected reading) and wrong accepts
(messages accepted with another reading, or accepted when they must be refused).
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from grammar import ParseError, parse
from grammar.canonical import render

CORPUS = Path(__file__).with_name("volunteer_corpus.txt")
CANDIDATES = ("01", "02", "03")
ALIASES = {
    "AMIN": "01",
    "ANIES": "01",
    "MUHAIMIN": "01",
    "PRABOWO": "02",
    "GIBRAN": "02",
    "GANJAR": "03",
    "MAHFUD": "03",
}
"""The contest the corpus is written for (its header names it)."""

_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\"}


@dataclass(frozen=True)
class Case:
    line: int
    text: str
    expected: str

    @property
    def must_refuse(self) -> bool:
        return self.expected.startswith("!")

    @property
    def error_code(self) -> str | None:
        return self.expected[1:].strip() if self.must_refuse else None


def _unescape(text: str) -> str:
    out, chars = [], iter(text)
    for ch in chars:
        out.append(_ESCAPES.get(next(chars, ""), "") if ch == "\\" else ch)
    return "".join(out)


def load(path: Path = CORPUS) -> list[Case]:
    """Every message of the corpus with its expected reading (comments and blank lines skipped)."""
    cases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        text, expected = line.split("\t")
        cases.append(Case(number, _unescape(text), expected.strip()))
    return cases


def reading(text: str) -> str:
    """What the gateway makes of ``text``: its canonical reading, or ``! <error code>``."""
    result = parse(text, CANDIDATES, ALIASES)
    return f"! {result.code}" if isinstance(result, ParseError) else render(result)


@dataclass
class Figures:
    """Outcomes over the corpus; ``wrong_accepts`` must stay empty."""

    accepted: list[Case] = field(default_factory=list)
    not_accepted: list[tuple[Case, str]] = field(default_factory=list)
    refused: list[tuple[Case, str]] = field(default_factory=list)
    other_code: list[tuple[Case, str]] = field(default_factory=list)
    """Refused as they must be, but with another error code than the corpus expects."""
    wrong_accepts: list[tuple[Case, str]] = field(default_factory=list)

    @property
    def must_accept(self) -> int:
        wrongly_read = sum(not case.must_refuse for case, _ in self.wrong_accepts)
        return len(self.accepted) + len(self.not_accepted) + wrongly_read

    @property
    def acceptance(self) -> float:
        return len(self.accepted) / self.must_accept if self.must_accept else 1.0


def measure(cases: list[Case]) -> Figures:
    figures = Figures()
    for case in cases:
        got = reading(case.text)
        if case.must_refuse:
            (figures.refused if got.startswith("!") else figures.wrong_accepts).append((case, got))
            if got.startswith("!") and got.split()[1] != case.error_code:
                figures.other_code.append((case, got))
        elif got == case.expected:
            figures.accepted.append(case)
        elif got.startswith("!"):
            figures.not_accepted.append((case, got))
        else:
            figures.wrong_accepts.append((case, got))
    return figures


def _lines(figures: Figures, cases: list[Case]) -> Iterator[str]:
    yield f"command:         {' '.join(shlex.quote(a) for a in [sys.executable, '-m', __spec__.name])}"
    refuse = sum(case.must_refuse for case in cases)
    yield f"corpus:          {len(cases)} messages, {figures.must_accept} to accept, {refuse} to refuse"
    yield f"first-try acceptance: {len(figures.accepted)}/{figures.must_accept} = {figures.acceptance:.1%}"
    yield f"wrong accepts:   {len(figures.wrong_accepts)}"
    yield f"refused with another error code than expected: {len(figures.other_code)}"
    for case, got in figures.wrong_accepts:
        yield f"  WRONG line {case.line}: {case.text!r} -> {got} (expected {case.expected})"
    for case, got in figures.not_accepted:
        yield f"  not accepted line {case.line}: {case.text!r} -> {got}"
    for case, got in figures.other_code:
        yield f"  other code line {case.line}: {case.text!r} -> {got} (expected {case.expected})"


def main() -> int:
    cases = load()
    figures = measure(cases)
    for line in _lines(figures, cases):
        print(line)
    return 1 if figures.wrong_accepts else 0


if __name__ == "__main__":
    raise SystemExit(main())
