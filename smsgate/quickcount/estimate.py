"""The quick-count estimator: pure functions over arrays, no database.

The stratified ratio estimator of a share (Cochran, *Sampling Techniques*, 3rd ed., 6.11-6.12;
Lohr, *Sampling: Design and Analysis*, 2nd ed., 4.5):

    p = sum_h w_h sum_i y_hi / sum_h w_h sum_i x_hi,  w_h = N_h / n_h

where y_hi are a candidate's votes and x_hi the valid votes at sampled station i of stratum h,
N_h the stations in the stratum and n_h the sampled stations of the stratum that have reported.
Its variance comes from the residuals e_hi = y_hi - p x_hi:

    V(p) = X^-2 sum_h N_h^2 (1 - f_h) s_h^2 / n_h,   f_h = n_h / N_h,   X = sum_h w_h sum_i x_hi

with s_h^2 the sample variance of the residuals in stratum h. Intervals are p +- z SE
(normal; z = 1.960 for 95%, 2.576 for 99%).

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


@dataclass(frozen=True)
class Ratio:
    """One estimated ratio (a share, or turnout) with its standard error and intervals."""

    value: float
    se: float

    @property
    def ci95(self) -> tuple[float, float]:
        return (self.value - Z95 * self.se, self.value + Z95 * self.se)

    @property
    def ci99(self) -> tuple[float, float]:
        return (self.value - Z99 * self.se, self.value + Z99 * self.se)

    @property
    def margin95(self) -> float:
        return Z95 * self.se


@dataclass(frozen=True)
class RatioEstimate:
    """Ratios for several numerators over one denominator, and how the strata were used."""

    ratios: list[Ratio]
    stations: int
    groups: list[list[str]] = field(default_factory=list)

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
) -> RatioEstimate | None:
    """The stratified ratio estimate of each column of ``y`` over ``x``.

    ``strata`` are the stratum codes and ``population`` their N_h; ``unit_stratum[i]`` is the
    position in ``strata`` of reported sampled station i, ``y[i, k]`` its numerators and
    ``x[i]`` its denominator; ``domain[i]`` (optional) whether it lies in the domain. Every
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
    present = [i for i in range(len(codes)) if reported[i] > 0 or N[i] > 0]
    groups = collapse([codes[i] for i in present], [reported[i] for i in present])
    group_of = np.full(len(codes), -1, dtype=np.int64)
    for g, members in enumerate(groups):
        group_of[[present[m] for m in members]] = g
    G = len(groups)
    gh = group_of[h]
    Ng = np.bincount(group_of[present], weights=N[present], minlength=G)
    ng = np.bincount(gh, minlength=G).astype(float)
    if (ng == 0).any():  # a lone group without any report (only when nothing reported at all)
        return None
    w = Ng / ng
    X = float(np.sum(w[gh] * xs))
    if X <= 0:
        return None
    ratios: list[Ratio] = []
    fpc = np.clip(1.0 - ng / np.maximum(Ng, 1.0), 0.0, 1.0)
    for k in range(ys.shape[1]):
        yk = ys[:, k]
        p = float(np.sum(w[gh] * yk)) / X
        e = yk - p * xs
        sums = np.bincount(gh, weights=e, minlength=G)
        squares = np.bincount(gh, weights=e * e, minlength=G)
        with np.errstate(invalid="ignore", divide="ignore"):
            s2 = np.where(ng > 1, (squares - sums * sums / ng) / (ng - 1), 0.0)
        s2 = np.maximum(s2, 0.0)
        variance = float(np.sum(Ng * Ng * fpc * s2 / ng)) / (X * X)
        ratios.append(Ratio(value=p, se=float(np.sqrt(variance))))
    return RatioEstimate(
        ratios=ratios,
        stations=len(h),
        groups=[[codes[present[m]] for m in members] for members in groups],
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
    sampled: Sequence[int],
    reported: Sequence[int],
    registered: Sequence[float],
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
    lagging = [codes[i] for i in np.flatnonzero(lag_mask)]
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
class QuickCountResult:
    shares: RatioEstimate | None
    turnout: RatioEstimate | None
    coverage: Coverage
    strata: list[StratumCoverage]


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
) -> QuickCountResult:
    """The shares, turnout and coverage of a quick count from its sampled stations.

    Per stratum: ``strata`` codes, ``population`` N_h, ``stratum_registered`` (coverage
    weights). Per sampled station of those strata: ``unit_stratum`` (position in ``strata``),
    ``counted`` (its result counts: reported or verified), ``votes`` (stations x candidates),
    ``invalid``, ``registered`` (NaN when unknown), ``disputed`` and ``domain`` (inside the region
    asked about; all when None). Only counted stations enter the estimate; coverage is counted
    over the domain's sampled stations.
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
    # Two counted stations in the domain at the least: with one, its residual is zero by
    # construction and the margin would read 0.
    enough = int((use & inside).sum()) >= 2
    shares = (
        ratio_estimate(codes, population, h[use], y[use], y[use].sum(axis=1), inside[use]) if enough else None
    )
    known = use & np.isfinite(voters)
    turnout = None
    if enough and (known & inside).sum() >= 2:
        cast = y[known].sum(axis=1) + np.nan_to_num(bad[known])
        turnout = ratio_estimate(codes, population, h[known], cast[:, None], voters[known], inside[known])
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
    )
