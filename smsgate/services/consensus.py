"""The consensus rule: when a station's volunteers have settled its count (pure, no I/O).

Ten volunteers watch every TPS. Demanding that all of them agree sends a station to a human
whenever one phone mistypes or lies: at a 3% misread rate a quarter of all stations would
need review, and one hostile volunteer per TPS could put any station there at will. So a
station is ``verified`` when a *qualified majority* of its current reports agree:

- two or more reports and no dissent at all (as before), or
- at least ``min_agree`` identical reports forming at least ``share`` of the current reports
  (default ``3,2/3``: three identical reports that are two thirds of them).

Otherwise it is ``disputed``. Dissenting reports are kept, counted and shown, never dropped.
The rule is configured with ``SMSGATE_CONSENSUS`` (``"<min_agree>,<share>"``, e.g. ``3,2/3``
or ``4,0.75``); ``share`` must be a strict majority so two readings can never both qualify.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

Votes = Mapping[str, int]


class BadRule(ValueError):
    """``SMSGATE_CONSENSUS`` is not ``<min_agree>,<share>`` with min_agree >= 2, 1/2 < share <= 1."""


@dataclass(frozen=True)
class Rule:
    """At least ``min_agree`` identical reports forming at least ``share`` of the current ones."""

    min_agree: int = 3
    share: Fraction = Fraction(2, 3)

    def qualified(self, agreeing: int, total: int) -> bool:
        """Whether ``agreeing`` identical reports out of ``total`` settle the station.

        No dissent (``agreeing == total``) needs only two independent reports."""
        if agreeing == total:
            return agreeing >= 2
        return agreeing >= self.min_agree and Fraction(agreeing, total) >= self.share

    def __str__(self) -> str:
        return f"{self.min_agree},{self.share.numerator}/{self.share.denominator}"


DEFAULT_RULE = Rule()


def parse_rule(text: str | None) -> Rule:
    """``"3,2/3"`` or ``"4,0.75"`` -> a ``Rule``; empty -> the default. Raises ``BadRule``."""
    if not text or not text.strip():
        return DEFAULT_RULE
    parts = [p.strip() for p in text.split(",")]
    try:
        if len(parts) != 2:
            raise ValueError
        min_agree = int(parts[0])
        share = Fraction(parts[1])
    except (ValueError, ZeroDivisionError):
        raise BadRule(
            f"SMSGATE_CONSENSUS: {text!r} is not '<min_agree>,<share>', e.g. 3,2/3 or 4,0.75"
        ) from None
    if min_agree < 2 or not Fraction(1, 2) < share <= 1:
        raise BadRule(f"SMSGATE_CONSENSUS: {text!r} needs min_agree >= 2 and 1/2 < share <= 1")
    return Rule(min_agree, share)


def distance(a: Votes, b: Votes) -> int:
    """Votes that move in the totals when reading ``b`` replaces ``a``: sum of |differences|."""
    return sum(abs(a.get(code, 0) - b.get(code, 0)) for code in set(a) | set(b))


def leaders(votes: Votes) -> frozenset[str]:
    """The candidate(s) with the most votes in one reading."""
    if not votes:
        return frozenset()
    top = max(votes.values())
    return frozenset(code for code, n in votes.items() if n == top)


@dataclass(frozen=True)
class Dissent:
    """How a station's other readings stand against the one the tally counts.

    ``count``: current reports whose votes differ from the counted reading.
    ``impact``: the most votes any competing reading would move in the totals.
    ``contested``: some competing reading puts a different candidate first.
    """

    count: int = 0
    impact: int = 0
    contested: bool = False


def dissent(counted: Votes | None, readings: Sequence[Votes]) -> Dissent:
    """Compare every current reading with the counted one."""
    if counted is None:
        return Dissent()
    others = [r for r in readings if dict(r) != dict(counted)]
    if not others:
        return Dissent()
    return Dissent(
        count=len(others),
        impact=max(distance(counted, r) for r in others),
        contested=any(leaders(r) != leaders(counted) for r in others),
    )
