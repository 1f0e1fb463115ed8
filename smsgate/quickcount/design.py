"""Sample design for the quick count: pure functions, no database.

* ``allocate``: how many stations each stratum gets, proportional to its registered voters
  (largest-remainder rounding, at least ``minimum`` per stratum so each stratum's variance can be
  estimated, never more than the stratum has).
* ``draw``: within each stratum the stations are kept in geographic order (station ID order:
  kecamatan, desa, TPS) and selected systematically (interval N_h/n_h, random start). Every
  station of stratum h still has inclusion probability n_h/N_h, which is what the estimator's
  weights w_h = N_h/n_h assume, and the sample is spread over the stratum's kecamatan and desa
  in proportion to their size (implicit stratification, Cochran 8.6-8.8): neighbouring
  stations vote alike, so the spread removes part of the variance for free. The variance is
  still estimated as for simple random sampling within strata, which on a sorted list is
  conservative (it over-states the variance by the gain).
* ``recommend_size``: the number of stations for a margin of error, with the design effect of
  sampling whole stations (clusters of voters) instead of voters.

Reference: W. G. Cochran, *Sampling Techniques*, 3rd ed. (1977), ch. 5 (stratified sampling,
proportional allocation), ch. 8 (systematic sampling), ch. 9 (cluster sampling, design effect).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

#: Intra-station correlation of the vote used when no design effect is given. Indonesian TPS
#: differ a lot from one another (regional loyalties), which is why pollsters need 2,000-3,000
#: TPS for +-1%; 0.2 reproduces that order of magnitude.
DEFAULT_ICC = 0.2


@dataclass(frozen=True)
class Allocation:
    """Per stratum (in the order given): the population ``N_h`` and the sample size ``n_h``."""

    population: np.ndarray
    sample: np.ndarray


def allocate(
    registered: Sequence[float] | np.ndarray,
    population: Sequence[int] | np.ndarray,
    size: int,
    *,
    minimum: int = 2,
) -> Allocation:
    """Sample sizes per stratum proportional to ``registered`` (the stratum's registered voters).

    Largest-remainder rounding so the sizes add up to ``size`` exactly; every stratum gets at
    least ``min(minimum, N_h)`` and at most ``N_h``. Raises ValueError when ``size`` is smaller
    than the minimums need or larger than the frame.
    """
    weights = np.asarray(registered, dtype=float)
    N = np.asarray(population, dtype=np.int64)
    if weights.shape != N.shape or weights.ndim != 1:
        raise ValueError("registered and population must be 1-d and the same length")
    if (N < 0).any() or (weights < 0).any():
        raise ValueError("negative stratum size or registered voters")
    floor = np.minimum(N, minimum)
    if size > N.sum():
        raise ValueError(f"sample size {size} is larger than the frame ({int(N.sum())} stations)")
    if size < floor.sum():
        needed = int(floor.sum())
        raise ValueError(f"sample size {size} is too small: {needed} needed for {minimum} per stratum")
    if weights.sum() <= 0:
        weights = N.astype(float)
    n = floor.copy()
    free = np.ones(len(N), dtype=bool)
    # Share what is left proportionally among the strata not yet fixed. A stratum whose share
    # exceeds its size is fixed at N_h first (the others then get more); only when none does,
    # strata whose share is at or below their floor are fixed there.
    while free.any():
        remaining = size - n[~free].sum()
        share = weights * free
        if share.sum() <= 0:
            break
        ideal = remaining * share / share.sum()
        high = free & (ideal >= N)
        low = free & (ideal <= floor)
        if high.any():
            n[high], free = N[high], free & ~high
        elif low.any():
            n[low], free = floor[low], free & ~low
        else:
            base = np.floor(ideal).astype(np.int64)
            n[free] = base[free]
            left = int(remaining - base[free].sum())
            order = np.argsort(-(ideal - base) * free, kind="stable")
            n[order[:left]] += 1
            break
    # Rare corner (caps and floors binding together): move single stations until the total
    # is right, taking from the most over-allocated stratum / giving to the most under-allocated.
    scale = np.where(weights > 0, weights, 1e-12)
    while n.sum() > size:
        spare = np.flatnonzero(n > floor)
        n[spare[np.argmax(n[spare] / scale[spare])]] -= 1
    while n.sum() < size:
        room = np.flatnonzero(n < N)
        n[room[np.argmin(n[room] / scale[room])]] += 1
    return Allocation(population=N, sample=n)


def systematic_indices(population: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Positions 0..N-1 picked systematically: interval k = N/n, random start u in [0, k)."""
    if size <= 0:
        return np.zeros(0, dtype=np.int64)
    interval = population / size
    start = rng.uniform(0, interval)
    return np.floor(start + interval * np.arange(size)).astype(np.int64)


def draw(strata: Sequence[str] | np.ndarray, sizes: dict[str, int], seed: int) -> np.ndarray:
    """Indices (into ``strata``, sorted) of the stations drawn: ``sizes[h]`` from stratum ``h``.

    Within each stratum (strata in sorted order) the stations are picked systematically in the
    order given, which callers make geographic (sorted by station ID), from a random start drawn
    by a generator seeded by ``seed``: the same frame and seed always give the same sample.
    """
    labels = np.asarray(strata)
    rng = np.random.default_rng(seed)
    chosen: list[np.ndarray] = []
    for code in sorted(sizes):
        members = np.flatnonzero(labels == code)
        n = sizes[code]
        if n > len(members):
            raise ValueError(f"stratum {code}: {n} wanted, {len(members)} stations")
        chosen.append(members[systematic_indices(len(members), n, rng)])
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def draw_frame(
    strata: Sequence[str] | np.ndarray,
    registered: Sequence[float] | np.ndarray,
    size: int,
    seed: int,
    *,
    minimum: int = 2,
) -> tuple[np.ndarray, dict[str, tuple[int, int, float]]]:
    """Allocate and draw in one step from a frame of stations.

    ``registered`` may contain NaN (unknown); those stations count with their stratum's mean
    (the frame's mean when the whole stratum is unknown) for the allocation only.
    Returns the chosen indices and, per stratum code, ``(N_h, n_h, registered total)``.
    """
    labels = np.asarray(strata)
    voters = np.asarray(registered, dtype=float)
    codes = sorted(set(labels.tolist()))
    overall = np.nanmean(voters) if np.isfinite(voters).any() else 1.0
    totals, counts = [], []
    for code in codes:
        mine = voters[labels == code]
        known = mine[np.isfinite(mine)]
        mean = known.mean() if len(known) else overall
        totals.append(float(known.sum() + mean * (len(mine) - len(known))))
        counts.append(len(mine))
    allocation = allocate(totals, counts, size, minimum=minimum)
    sizes = {code: int(n) for code, n in zip(codes, allocation.sample, strict=True)}
    chosen = draw(labels, sizes, seed)
    summary = {
        code: (int(N), int(n), total)
        for code, N, n, total in zip(codes, allocation.population, allocation.sample, totals, strict=True)
    }
    return chosen, summary


@dataclass(frozen=True)
class SizeRecommendation:
    stations: int
    voters_equivalent: int
    design_effect: float
    worst_share: float
    z: float
    without_fpc: int
    #: what the margin is for: ``share`` (the share closest to 50%) or ``lead`` (top two)
    target: str = "share"
    #: the per-voter variance used: p(1-p), or p1 + p2 - (p1 - p2)^2 for the lead
    variance: float = 0.25
    #: expected share of the sample that reports; ``stations`` is inflated by 1/response
    response: float = 1.0
    #: stations needed if everyone reported (before the response inflation)
    before_response: int = 0


def design_effect(voters_per_station: float, icc: float = DEFAULT_ICC) -> float:
    """Kish's design effect of sampling whole clusters of ``m`` voters: 1 + (m - 1) rho."""
    return 1.0 + max(voters_per_station - 1.0, 0.0) * icc


def lead_variance(shares: Sequence[float]) -> float:
    """Per-voter variance of the lead's indicator (+1 for the first, -1 for the second, 0
    otherwise): p1 + p2 - (p1 - p2)^2 for the two largest shares (1 in the worst case, p1 = p2
    = 0.5: four times a share's 0.25, which is why calling a close race needs a big sample)."""
    top = sorted(shares, reverse=True)
    first = top[0] if top else 0.5
    second = top[1] if len(top) > 1 else (0.5 if not top else min(first, 1 - first))
    return first + second - (first - second) ** 2


def measured_design_effect(
    strata: Sequence[str] | np.ndarray,
    votes: np.ndarray,
    valid: np.ndarray,
    *,
    lead: bool = False,
) -> float:
    """The design effect of a stratified sample of whole stations (proportional allocation),
    measured on a previous election's results per station (``votes``: stations x candidates,
    ``valid`` their valid votes), for the share closest to 50% or (``lead``) the lead of the
    top two:

        deff = sum_h W_h S^2_e,h / (xbar v),   e = y - p x,   W_h = N_h / N

    with y the candidate's votes (the first's minus the second's for the lead), p = Y / X, S^2_e,h
    the variance of e among the stations of stratum h, xbar the mean valid votes per station and
    v the per-voter variance (p(1-p), or p1 + p2 - (p1 - p2)^2). It is the variance of the
    stratified estimate over that of a simple random sample of as many voters (Cochran 5.3 and
    9.4). Sorting the stations geographically before selection only lowers it further.
    """
    labels = np.asarray(strata)
    y = np.asarray(votes, dtype=float)
    x = np.asarray(valid, dtype=float)
    keep = x > 0
    labels, y, x = labels[keep], y[keep], x[keep]
    if len(x) < 2:
        raise ValueError("need the previous result of at least two stations")
    shares = y.sum(axis=0) / x.sum()
    order = np.argsort(-shares)
    if lead:
        if y.shape[1] < 2:
            raise ValueError("the lead needs at least two candidates in the previous results")
        target = y[:, order[0]] - y[:, order[1]]
        variance = lead_variance(shares.tolist())
    else:
        k = int(np.argmin(np.abs(shares - 0.5)))
        target = y[:, k]
        variance = float(shares[k] * (1 - shares[k]))
    p = float(target.sum() / x.sum())
    e = target - p * x
    _, h = np.unique(labels, return_inverse=True)
    N = np.bincount(h).astype(float)
    sums = np.bincount(h, weights=e)
    squares = np.bincount(h, weights=e * e)
    s2 = np.where(N > 1, (squares - sums * sums / np.maximum(N, 1)) / np.maximum(N - 1, 1), 0.0)
    within = float(np.sum(N / N.sum() * s2))
    if variance <= 0:
        raise ValueError("the previous results have no variation to measure")
    return within / (float(x.mean()) * variance)


def recommend_size(
    moe: float,
    confidence: float = 0.95,
    shares: Sequence[float] = (0.5,),
    *,
    voters_per_station: float = 200.0,
    deff: float | None = None,
    icc: float = DEFAULT_ICC,
    frame: int | None = None,
    lead: bool = False,
    response: float = 1.0,
) -> SizeRecommendation:
    """Stations needed so the ``confidence`` interval is at most +-``moe``: of every share, or
    (``lead``) of the lead of the top two shares.

    n_0 (voters, simple random sampling) = z^2 v / moe^2 with v = p(1-p) for the share p closest
    to 50%, or v = p1 + p2 - (p1 - p2)^2 for the lead (the variance of a difference of two
    shares of one multinomial); stations = n_0 * deff / m with m valid votes per station; then
    the finite-population correction n = n' / (1 + n'/N) when the frame size N is known
    (Cochran 4.2, 9.4); finally divided by the expected ``response`` (the share of sampled
    stations expected to report in time).
    """
    if not 0 < moe < 1:
        raise ValueError("moe must be between 0 and 1, e.g. 0.01 for +-1 point")
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1, e.g. 0.95")
    if not shares or any(not 0 <= p <= 1 for p in shares) or (sum(shares) > 1 + 1e-9 and len(shares) > 1):
        raise ValueError("shares must be between 0 and 1 (and add up to at most 1)")
    if voters_per_station <= 0:
        raise ValueError("voters per station must be positive")
    if not 0 < response <= 1:
        raise ValueError("response must be in (0, 1], e.g. 0.8 when 80% of the sample reports in time")
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    worst = min(shares, key=lambda p: abs(p - 0.5))
    variance = lead_variance(shares) if lead else worst * (1 - worst)
    effect = design_effect(voters_per_station, icc) if deff is None else float(deff)
    voters = z * z * variance / (moe * moe)
    plain = voters * effect / voters_per_station
    stations = plain / (1 + plain / frame) if frame else plain
    needed = max(2, math.ceil(stations))
    return SizeRecommendation(
        stations=max(2, math.ceil(stations / response)),
        voters_equivalent=math.ceil(voters),
        design_effect=effect,
        worst_share=worst,
        z=z,
        without_fpc=max(2, math.ceil(plain)),
        target="lead" if lead else "share",
        variance=variance,
        response=response,
        before_response=needed,
    )
