"""The quick-count estimator: pure functions over arrays, no database.

The stratified ratio estimator of a share (Cochran, *Sampling Techniques*, 3rd ed., 6.11-6.12;
Lohr, *Sampling: Design and Analysis*, 2nd ed., 4.5):

    p = sum_h w_h sum_i y_hi / sum_h w_h sum_i x_hi,  w_h = N_h / n_h

where y_hi are a candidate's votes and x_hi the valid votes at sampled station i of stratum h,
N_h the stations in the stratum and n_h the sampled stations of the stratum that have reported
(r_h below, where n_h is the whole sample of the stratum). Its variance comes from the
residuals e_hi = y_hi - p x_hi, in two phases (Särndal, Swensson & Wretman, *Model Assisted
Survey Sampling*, 1992, 9.3): the systematic sample of n_h stations, then the r_h of them
counted, taken as a random subsample:

    V(p) = X^-2 sum_h N_h^2 [(1 - n_h / N_h) s_h^2 / n_h + (1 / r_h - 1 / n_h) S_h^2]

with S_h^2 the textbook variance of the counted residuals (the order of a random subsample
does not matter) and s_h^2 the sampling variance of the sorted sample, estimated from
successive differences in geographic order (Wolter, *Introduction to Variance Estimation*,
2nd ed., 2007, 4.3-4.4, estimator v2) between consecutive counted stations of the same
kecamatan (``successive_variance``):

    s_h^2 = sum_pairs (e_hi - e_h,i-1)^2 / (2 pairs)

With every sampled station in, the second term is 0.

The sample is drawn systematically from the stations sorted geographically (``design``), so
neighbours in the sample are neighbours on the ground; the successive-difference estimator
captures the gain of that implicit stratification, which the textbook s^2 (which treats the
stratum's sample as a random one) would give away as too-wide intervals. On a sample in random
order both estimate the same thing. Callers pass units sorted by station ID. Intervals are p +- t SE with
Student's t at the design's degrees of freedom (counted stations minus strata, Lohr 5.4 /
Korn & Graubard 1999 5.2): with few stations the normal 1.96 understates the uncertainty of
the SE itself. Below ``MIN_STATIONS`` counted stations an estimate is only *indicative*: no
interval is shown, because none would keep its promise.

A domain (a region smaller than the design, e.g. one kecamatan of a kabupaten stratum) is
estimated with y and x set to zero outside the domain (Lohr 4.5 / Cochran 2.13), so the
variance accounts for the domain's random sample size.

Stratum collapse: a stratum with fewer than two reported stations has no variance estimate
(and with none, no estimate). It is merged with a neighbour, repeatedly, until every group has
at least two: the neighbour is the next stratum in code order with the same parent region
(the code without its last ``.segment``), else the previous one with the same parent, else
simply the next (or previous) stratum in code order. A merged group is treated as one stratum
(N_g = sum N_h, n_g = sum n_h), for the estimate and for its variance, and is listed in the
output so nobody mistakes it for the design.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

Z95 = float(stats.norm.ppf(0.975))
Z99 = float(stats.norm.ppf(0.995))


def _matrix(values: np.ndarray | Sequence[Sequence[float]], rows: int) -> np.ndarray:
    """``values`` as a float matrix with ``rows`` rows (a vector becomes one column)."""
    matrix = np.asarray(values, dtype=float)
    if matrix.ndim == 1:
        matrix = matrix.reshape(rows, -1) if rows else matrix.reshape(0, 1)
    return matrix


def parent_of(code: str) -> str:
    return code.rsplit(".", 1)[0] if "." in code else ""


def successive_variance(
    values: np.ndarray, group: np.ndarray, groups: int, block: np.ndarray | None = None
) -> np.ndarray:
    """Per group, sum (v_i - v_i-1)^2 / (2 (number of pairs)) over consecutive units of the
    group in the order given (0 for groups with fewer than two units).

    With ``block`` (the implicit stratum of each unit: its kecamatan), only pairs of
    consecutive units in the same block count, so a difference never straddles a boundary of
    the sort: a systematic sample along the sorted list gives every kecamatan its proportional
    share of the sample (to within one station), so the jump between one kecamatan's level and
    the next is not part of the sampling variance, and a pair across the boundary would count
    it. A group without any such pair falls back to all its consecutive pairs. Without
    ``block`` this is Wolter's v2 (pairs = n - 1)."""
    values = np.asarray(values, dtype=float)
    group = np.asarray(group, dtype=np.int64)
    order = np.argsort(group, kind="stable")
    g, v = group[order], values[order]
    same = g[1:] == g[:-1]
    squares = np.bincount(g[1:][same], weights=np.diff(v)[same] ** 2, minlength=groups)
    pairs = np.bincount(g[1:][same], minlength=groups).astype(float)
    if block is not None:
        b = np.asarray(block)[order]
        inner = same & (b[1:] == b[:-1])
        inner_squares = np.bincount(g[1:][inner], weights=np.diff(v)[inner] ** 2, minlength=groups)
        inner_pairs = np.bincount(g[1:][inner], minlength=groups).astype(float)
        use = inner_pairs > 0
        squares = np.where(use, inner_squares, squares)
        pairs = np.where(use, inner_pairs, pairs)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, squares / (2 * np.maximum(pairs, 1)), 0.0)


def spread(values: np.ndarray, group: np.ndarray, groups: int) -> np.ndarray:
    """Per group, the textbook variance sum (v - mean)^2 / (n - 1) (0 below two units): the
    variance of a random subsample does not depend on the order."""
    count = np.bincount(group, minlength=groups).astype(float)
    total = np.bincount(group, weights=values, minlength=groups)
    squares = np.bincount(group, weights=values**2, minlength=groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), 0.0)
        return np.where(count > 1, np.maximum(squares - count * mean**2, 0.0) / np.maximum(count - 1, 1), 0.0)


def collapse(codes: Sequence[str], reported: Sequence[int], minimum: int = 2) -> list[list[int]]:
    """Groups of stratum positions (``codes`` sorted) such that each has ``minimum`` reports.

    See the module docstring for the neighbour rule. With fewer than ``minimum`` reports in
    total, everything ends up in one group.
    """
    order = sorted(range(len(codes)), key=lambda i: codes[i])
    groups = [[i] for i in order]
    counts = [int(reported[i]) for i in order]
    while len(groups) > 1:
        short = next((g for g, c in enumerate(counts) if c < minimum), None)
        if short is None:
            break
        parent = parent_of(codes[groups[short][0]])
        candidates = [g for g in (short + 1, short - 1) if 0 <= g < len(groups)]
        same = [g for g in candidates if parent_of(codes[groups[g][0]]) == parent]
        other = (same or candidates)[0]
        low, high = sorted((short, other))
        groups[low] = groups[low] + groups[high]
        counts[low] += counts[high]
        del groups[high], counts[high]
    return groups


def collapsed_groups(
    codes: Sequence[str], N: np.ndarray, reported: np.ndarray
) -> tuple[list[int], list[list[int]], np.ndarray, np.ndarray]:
    """The strata (``codes``, populations ``N``, ``reported`` stations each) collapsed into
    groups by ``collapse``, for both estimators (this module's and ``nonresponse``'s): the
    positions of the strata taking part (a report or a population), each group's members as
    positions in that list, each stratum's group (-1: not taking part) and each group's
    population N_g."""
    present = [i for i in range(len(codes)) if reported[i] > 0 or N[i] > 0]
    groups = collapse([codes[i] for i in present], [reported[i] for i in present])
    group_of = np.full(len(codes), -1, dtype=np.int64)
    for g, members in enumerate(groups):
        group_of[[present[m] for m in members]] = g
    Ng = np.bincount(group_of[present], weights=N[present], minlength=len(groups))
    return present, groups, group_of, Ng


#: Fewer counted stations than this in a region: the estimate is indicative, without interval.
MIN_STATIONS = 5


@functools.lru_cache(maxsize=4096)
def quantile(confidence: float, df: int | None) -> float:
    """The two-sided ``confidence`` quantile: Student's t with ``df`` degrees of freedom
    (normal when ``df`` is None)."""
    if df is None:
        return float(stats.norm.ppf(0.5 + confidence / 2))
    return float(stats.t.ppf(0.5 + confidence / 2, max(int(df), 1)))


@dataclass(frozen=True)
class Ratio:
    """One estimated ratio (a share, turnout, a lead) with its standard error, the design's
    degrees of freedom (None: normal quantiles) and intervals."""

    value: float
    se: float
    df: int | None = None

    def interval(self, confidence: float) -> tuple[float, float]:
        half = quantile(confidence, self.df) * self.se
        return (self.value - half, self.value + half)

    @property
    def ci95(self) -> tuple[float, float]:
        return self.interval(0.95)

    @property
    def ci99(self) -> tuple[float, float]:
        return self.interval(0.99)

    @property
    def margin95(self) -> float:
        return quantile(0.95, self.df) * self.se


@dataclass(frozen=True)
class RatioEstimate:
    """Ratios for several numerators over one denominator, and how the strata were used."""

    ratios: list[Ratio]
    stations: int
    groups: list[list[str]] = field(default_factory=list)
    #: counted stations inside the domain minus the strata (groups) they lie in
    df: int = 1

    @property
    def collapsed(self) -> list[list[str]]:
        return [g for g in self.groups if len(g) > 1]


def ratio_estimate(
    strata: Sequence[str],
    population: Sequence[int] | np.ndarray,
    unit_stratum: Sequence[int] | np.ndarray,
    y: np.ndarray,
    x: Sequence[float] | np.ndarray,
    domain: Sequence[bool] | np.ndarray | None = None,
    block: Sequence[str] | np.ndarray | None = None,
    sampled: Sequence[int] | np.ndarray | None = None,
) -> RatioEstimate | None:
    """The stratified ratio estimate of each column of ``y`` over ``x``.

    ``strata`` are the stratum codes and ``population`` their N_h; ``unit_stratum[i]`` is the
    position in ``strata`` of reported sampled station i, ``y[i, k]`` its numerators and
    ``x[i]`` its denominator; ``domain[i]`` (optional) whether it lies in the domain;
    ``block[i]`` (optional) its implicit stratum, the kecamatan, for the variance
    (``successive_variance``); ``sampled[h]`` (optional) the stations of stratum ``h`` in the
    sample, reported or not (default: those passed, i.e. the whole sample is in). Every
    stratum passed takes part (pass only those the estimate is about); one with fewer than two
    reported stations is collapsed with a neighbour. Returns None when nothing is estimable
    (no station, or X = 0).
    """
    codes = list(strata)
    N = np.asarray(population, dtype=float)
    h = np.asarray(unit_stratum, dtype=np.int64)
    if len(h) == 0:
        return None
    ys = _matrix(y, len(h))
    xs = np.asarray(x, dtype=float)
    if domain is not None:
        inside = np.asarray(domain, dtype=bool)
        ys = ys * inside[:, None]
        xs = xs * inside
    reported = np.bincount(h, minlength=len(codes))
    present, groups, group_of, Ng = collapsed_groups(codes, N, reported)
    G = len(groups)
    gh = group_of[h]
    ng = np.bincount(gh, minlength=G).astype(float)
    if (ng == 0).any():  # a lone group without any report (only when nothing reported at all)
        return None
    w = Ng / ng
    X = float(np.sum(w[gh] * xs))
    if X <= 0:
        return None
    ratios: list[Ratio] = []
    # phase 1, the systematic sample of n_g stations; phase 2, the r_g of them counted
    if sampled is None:
        drawn = ng
    else:
        drawn = np.bincount(group_of[present], weights=np.asarray(sampled, dtype=float)[present], minlength=G)
        drawn = np.maximum(drawn, ng)
    fpc = np.clip(1.0 - drawn / np.maximum(Ng, 1.0), 0.0, 1.0)
    phase2 = np.clip(1.0 / ng - 1.0 / drawn, 0.0, None)
    active = np.ones(len(h), dtype=bool) if domain is None else np.asarray(domain, dtype=bool)
    df = max(int(active.sum()) - len(np.unique(gh[active])), 1)
    for k in range(ys.shape[1]):
        yk = ys[:, k]
        p = float(np.sum(w[gh] * yk)) / X
        e = yk - p * xs
        s2 = successive_variance(e, gh, G, None if block is None else np.asarray(block))
        variance = float(np.sum(Ng * Ng * (fpc * s2 / drawn + phase2 * spread(e, gh, G)))) / (X * X)
        ratios.append(Ratio(value=p, se=float(np.sqrt(variance)), df=df))
    return RatioEstimate(
        ratios=ratios,
        stations=len(h),
        groups=[[codes[present[m]] for m in members] for members in groups],
        df=df,
    )


# --- coverage: is it too early to trust the estimate? ---------------------------------------

#: Below this share of the sample reported, the estimate carries a warning.
LOW_COVERAGE = 0.20
#: A stratum lags when its coverage is below this fraction of the overall coverage ...
LAGGING = 0.5
#: ... and coverage is uneven when lagging strata hold at least this share of registered voters.
UNEVEN_SHARE = 0.10


@dataclass(frozen=True)
class Coverage:
    sampled: int
    reported: int
    rate: float
    low: bool
    uneven: bool
    lagging: list[str]


def coverage(
    codes: Sequence[str],
    sampled: Sequence[int] | np.ndarray,
    reported: Sequence[int] | np.ndarray,
    registered: Sequence[float] | np.ndarray,
) -> Coverage:
    """Overall coverage and the two warnings.

    ``low``: fewer than 20% of the sampled stations have reported. ``uneven``: the strata whose
    coverage is below half the overall coverage (``lagging``) together hold at least 10% of the
    registered voters, e.g. cities in and the countryside not yet; the estimate then leans on
    few stations in those strata, and if they vote differently from the early ones within the
    stratum the answer moves.
    """
    n = np.asarray(sampled, dtype=float)
    r = np.asarray(reported, dtype=float)
    voters = np.asarray(registered, dtype=float)
    total, done = float(n.sum()), float(r.sum())
    rate = done / total if total else 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        per = np.where(n > 0, r / np.maximum(n, 1), 0.0)
    lag_mask = (n > 0) & (per < LAGGING * rate)
    weight = voters.sum()
    if weight > 0:
        lag_share = float(voters[lag_mask].sum() / weight)
    else:
        lag_share = float(lag_mask.mean()) if len(n) else 0.0
    lagging = [codes[int(i)] for i in np.flatnonzero(lag_mask)]
    return Coverage(
        sampled=int(total),
        reported=int(done),
        rate=rate,
        low=rate < LOW_COVERAGE,
        uneven=bool(done > 0 and lag_share >= UNEVEN_SHARE),
        lagging=lagging,
    )


# --- everything the quick count reports, from the sample's arrays -------------------------


@dataclass(frozen=True)
class StratumCoverage:
    code: str
    population: int
    sampled: int
    reported: int
    disputed: int


@dataclass(frozen=True)
class Lead:
    """The margin between the top two candidates (positions ``first``, ``second``): the ratio
    of y_first - y_second over the valid votes, so its SE comes from the residuals of the
    difference and the covariance of the two shares is in it."""

    first: int
    second: int
    ratio: Ratio


@dataclass(frozen=True)
class QuickCountResult:
    shares: RatioEstimate | None
    turnout: RatioEstimate | None
    coverage: Coverage
    strata: list[StratumCoverage]
    lead: Lead | None = None
    #: invalid ballots over ballots cast, from the stations that gave TS
    invalid: RatioEstimate | None = None
    #: counted stations in the region that gave TS (invalid ballots), which turnout rests on
    with_invalid: int = 0
    #: counted stations in the region
    counted: int = 0

    @property
    def indicative(self) -> bool:
        """Fewer than ``MIN_STATIONS`` counted stations: the estimate has no honest interval."""
        return self.counted < MIN_STATIONS


def lead_of(
    strata: Sequence[str],
    population: Sequence[int] | np.ndarray,
    unit_stratum: np.ndarray,
    y: np.ndarray,
    x: np.ndarray,
    shares: RatioEstimate,
    domain: np.ndarray | None = None,
    block: np.ndarray | None = None,
    sampled: np.ndarray | None = None,
) -> Lead | None:
    """The lead of the top candidate over the runner-up (None with fewer than two candidates)."""
    if y.shape[1] < 2:
        return None
    order = np.argsort([-r.value for r in shares.ratios], kind="stable")
    first, second = int(order[0]), int(order[1])
    difference = ratio_estimate(
        strata, population, unit_stratum, (y[:, first] - y[:, second])[:, None], x, domain, block, sampled
    )
    if difference is None:
        return None
    return Lead(first, second, difference.ratios[0])


def quick_count(
    strata: Sequence[str],
    population: Sequence[int] | np.ndarray,
    stratum_registered: Sequence[float] | np.ndarray,
    unit_stratum: Sequence[int] | np.ndarray,
    counted: Sequence[bool] | np.ndarray,
    votes: np.ndarray,
    invalid: Sequence[float] | np.ndarray,
    registered: Sequence[float] | np.ndarray,
    *,
    disputed: Sequence[bool] | np.ndarray | None = None,
    domain: Sequence[bool] | np.ndarray | None = None,
    block: Sequence[str] | np.ndarray | None = None,
) -> QuickCountResult:
    """The shares, lead, turnout and coverage of a quick count from its sampled stations.

    Per stratum: ``strata`` codes, ``population`` N_h, ``stratum_registered`` (coverage
    weights). Per sampled station of those strata: ``unit_stratum`` (position in ``strata``),
    ``counted`` (its result counts: reported or verified), ``votes`` (stations x candidates),
    ``invalid`` (NaN when the report gave no TS), ``registered`` (NaN when unknown),
    ``disputed``, ``domain`` (inside the region asked about; all when None) and ``block``
    (the station's kecamatan, for the variance; see ``successive_variance``). Only counted
    stations enter the estimate; coverage is counted over the domain's sampled stations.

    Turnout (valid + invalid over registered) and the invalid share (invalid over valid +
    invalid) use only the counted stations that gave TS: counting a missing TS as 0 would
    bias turnout down by the invalid share.
    """
    h = np.asarray(unit_stratum, dtype=np.int64)
    use = np.asarray(counted, dtype=bool)
    inside = np.ones(len(h), dtype=bool) if domain is None else np.asarray(domain, dtype=bool)
    argued = np.zeros(len(h), dtype=bool) if disputed is None else np.asarray(disputed, dtype=bool)
    y = _matrix(votes, len(h))
    bad = np.asarray(invalid, dtype=float)
    voters = np.asarray(registered, dtype=float)
    codes = list(strata)
    H = len(codes)
    blocks = None if block is None else np.asarray(block)
    # Two counted stations in the domain at the least: with one, its residual is zero by
    # construction and the margin would read 0.
    enough = int((use & inside).sum()) >= 2
    valid = y.sum(axis=1)
    part = None if blocks is None else blocks[use]
    drawn = np.bincount(h, minlength=H)
    shares = (
        ratio_estimate(codes, population, h[use], y[use], valid[use], inside[use], part, drawn)
        if enough
        else None
    )
    lead = (
        lead_of(codes, population, h[use], y[use], valid[use], shares, inside[use], part, drawn)
        if shares
        else None
    )
    gave = use & np.isfinite(bad)
    with_invalid = int((gave & inside).sum())
    turnout = invalid_share = None
    if enough and with_invalid >= 2:
        cast = valid + np.nan_to_num(bad)
        invalid_share = ratio_estimate(
            codes, population, h[gave], bad[gave][:, None], cast[gave], inside[gave],
            None if blocks is None else blocks[gave], drawn,
        )  # fmt: skip
        known = gave & np.isfinite(voters)
        if (known & inside).sum() >= 2:
            turnout = ratio_estimate(
                codes, population, h[known], cast[known][:, None], voters[known], inside[known],
                None if blocks is None else blocks[known], drawn,
            )  # fmt: skip
    sampled = np.bincount(h[inside], minlength=H)
    reported = np.bincount(h[inside & use], minlength=H)
    in_dispute = np.bincount(h[inside & argued], minlength=H)
    table = [
        StratumCoverage(code, int(N), int(s), int(r), int(d))
        for code, N, s, r, d in zip(codes, np.asarray(population), sampled, reported, in_dispute, strict=True)
    ]
    return QuickCountResult(
        shares=shares,
        turnout=turnout,
        coverage=coverage(codes, sampled, reported, np.asarray(stratum_registered, dtype=float)),
        strata=table,
        lead=lead,
        invalid=invalid_share,
        with_invalid=with_invalid,
        counted=int((use & inside).sum()),
    )
