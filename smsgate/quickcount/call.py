"""The call: who leads, and may one say so? Pure functions over estimates, no database.

The lead is the margin between the top two candidates, estimated as one ratio
(y_first - y_second) / x so that its standard error comes from the residuals of the difference
and already holds the covariance of the two shares (``estimate.lead_of``). The rule:

* ``called`` — the 99% interval of the lead excludes 0, at least ``CALL_COVERAGE`` of the
  region's sampled stations are counted, the estimate is not indicative, and no warning says
  the sample may be unrepresentative (``BLOCKING``: non-random reporting, many disputed
  stations);
* ``leading`` — the 95% interval of the lead excludes 0 (and, when an adjusted estimate exists,
  its 95% interval too, for the same leader), but not everything a call needs;
* ``too close to call`` — otherwise (also whenever the estimate is indicative).

For the whole country the presidential rule (UUD 1945 art. 6A(3); Constitutional Court ruling
50/PUU-XII/2014 for two pairs) has its own status: with three or more pairs a pair wins in the
first round with more than 50% of the votes *and* at least 20% in more than half of the
provinces, otherwise the top two go to a second round; with two pairs the plurality wins.
``called`` needs the outcome to hold at the 99% level of every interval involved (plus the
coverage and warning conditions above), ``leading`` at the 95% level on the point estimates'
side, else ``too close to call``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .estimate import Ratio

CALLED, LEADING, TOO_CLOSE = "called", "leading", "too close to call"
#: Share of the region's sampled stations that must be counted before anything is called.
CALL_COVERAGE = 0.5
#: Warnings that keep a result from being called.
BLOCKING = ("nonresponse_bias", "many_disputed", "low_coverage")
FIRST_ROUND_SHARE = 0.5
PROVINCE_SHARE = 0.2


def lead_status(
    lead: Ratio | None,
    *,
    indicative: bool,
    coverage: float,
    warnings: Sequence[str],
    adjusted: Ratio | None = None,
) -> str:
    """``called`` / ``leading`` / ``too close to call`` for the lead (see the module docstring)."""
    if lead is None or indicative:
        return TOO_CLOSE
    clear95 = lead.ci95[0] > 0 and (adjusted is None or adjusted.ci95[0] > 0)
    clear99 = lead.ci99[0] > 0 and (adjusted is None or adjusted.ci99[0] > 0)
    if clear99 and coverage >= CALL_COVERAGE and not any(w in BLOCKING for w in warnings):
        return CALLED
    return LEADING if clear95 else TOO_CLOSE


@dataclass(frozen=True)
class Presidential:
    """The national rule's outcome: ``winner`` (first round or plurality) or ``second round``."""

    pairs: int
    provinces: int
    outcome: str  # "winner" | "second round"
    winner: str | None
    runoff: tuple[str, str] | None
    status: str
    #: provinces where the leader has >= 20%: certainly (99% lower bound) / on the point estimate
    provinces_20_certain: int
    provinces_20: int


def presidential(
    codes: Sequence[str],
    shares: Sequence[Ratio],
    lead: Ratio,
    third_gap: Ratio | None,
    provinces: Sequence[Sequence[Ratio] | None],
    *,
    indicative: bool,
    coverage: float,
    warnings: Sequence[str],
) -> Presidential:
    """The presidential rule for the whole country.

    ``shares`` per candidate (``codes``), ``lead`` the first-minus-second ratio, ``third_gap``
    the second-minus-third ratio (None with two pairs), ``provinces`` the shares per province
    (None where a province has no estimate yet; it then counts as not certainly >= 20% but
    possibly so).
    """
    order = sorted(range(len(codes)), key=lambda i: -shares[i].value)
    first = order[0]
    top = shares[first]
    blocked = indicative or coverage < CALL_COVERAGE or any(w in BLOCKING for w in warnings)
    P = len(provinces)
    half = P / 2
    certain = sum(1 for p in provinces if p is not None and p[first].ci99[0] >= PROVINCE_SHARE)
    point = sum(1 for p in provinces if p is not None and p[first].value >= PROVINCE_SHARE)
    possible95 = sum(1 for p in provinces if p is None or p[first].ci95[1] >= PROVINCE_SHARE)
    possible99 = sum(1 for p in provinces if p is None or p[first].ci99[1] >= PROVINCE_SHARE)
    certain95 = sum(1 for p in provinces if p is not None and p[first].ci95[0] >= PROVINCE_SHARE)
    if len(codes) == 2:
        status = lead_status(lead, indicative=indicative, coverage=coverage, warnings=warnings)
        return Presidential(2, P, "winner", codes[first], None, status, certain, point)
    runoff = (codes[order[0]], codes[order[1]])
    wins = top.value > FIRST_ROUND_SHARE and point > half
    if wins:
        sure99 = top.ci99[0] > FIRST_ROUND_SHARE and certain > half
        sure95 = top.ci95[0] > FIRST_ROUND_SHARE and certain95 > half
        status = CALLED if sure99 and not blocked else LEADING if sure95 else TOO_CLOSE
        return Presidential(len(codes), P, "winner", codes[first], None, status, certain, point)
    # a second round: certain when the leader is surely under 50% or surely misses the spread,
    # and the pair that goes through is clear (the runner-up surely ahead of the third)
    gap99 = third_gap is not None and third_gap.ci99[0] > 0
    gap95 = third_gap is not None and third_gap.ci95[0] > 0
    sure99 = (top.ci99[1] < FIRST_ROUND_SHARE or possible99 <= half) and gap99
    sure95 = (top.ci95[1] < FIRST_ROUND_SHARE or possible95 <= half) and gap95
    status = CALLED if sure99 and not blocked else LEADING if sure95 else TOO_CLOSE
    return Presidential(len(codes), P, "second round", None, runoff, status, certain, point)
