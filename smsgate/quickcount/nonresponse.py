"""Is the night's reporting random? Checks and an adjusted estimate: pure numpy, no database.

The plain estimator treats a stratum's reported stations as a random subsample of its sampled
ones. On election night they are not: cities report first, remote desa last, and a campaign's
strongholds may be slow. Two things follow from what is known about *every* sampled station
before the night (reported or not):

``checks``: compare the reported sampled stations with those not yet in, within strata, on
registered voters, the share of kelurahan (urban village codes ``1xxx``; desa ``2xxx`` and any
other prefix count as desa) and, when imported, each candidate's share in the previous
election. A difference is *significant* when |z| >= ``NONRESPONSE_Z`` (z = difference / SE under
random reporting within strata) and *large enough to move the estimate* when it exceeds the
variable's floor in ``FLOORS``; both together raise ``nonresponse_bias``.

``adjusted``: an estimate that corrects for what the checks see (two-phase estimation, Särndal,
Swensson & Wretman, *Model Assisted Survey Sampling*, 1992, ch. 9 and 15.7; Cochran 12.2):

* weighting classes: within each stratum (group of collapsed strata) g the reported stations of
  class c (a kecamatan's kelurahan, or its desa) stand for the class's sampled stations, weight
  w = (N_g / n_g) (n_gc / r_gc), with n the sampled and r the reported counts. A class with
  fewer than two reports is merged with a neighbour (``cells_of``). Late reporting is
  regional (a remote kecamatan, a stronghold), so classes by place remove the part of the bias
  that lies between kecamatan and between kelurahan and desa.
* with a previous result, a regression (difference) correction per candidate k:

      p_adj = p_r + b (p'_s - p'_r)

  p_r the weighting-class ratio estimate of this election from the reported stations, p'_r the
  same estimator applied to the previous result of those stations, p'_s the previous result
  estimated from *all* sampled stations (weights N_g / n_g), and b the slope of the current
  residuals on the previous ones, pooled within classes (a least-squares fit on two
  covariates: the station's own previous result and its desa's, all the desa's TPS together,
  which measures the place's leaning with less noise). If the late stations voted for k in the
  previous election more than the early ones, p'_s - p'_r says by how much, and b carries it over.

Variance (two-phase; s^2 by successive differences, ``estimate``): V = V1 + V2 with
a = e / X (e = y - p x, the current residuals) and u = a - b c (c = e' / X'_r, the previous
residuals over the reported stations' previous total):

    V1 = sum_g N_g^2 (1 - n_g / N_g) s^2_a,g / n_g              (sampling the stations)
    V2 = sum_gc N_gc^2 (1 / r_gc - 1 / n_gc) s^2_u,gc,  N_gc = N_g n_gc / n_g   (who reported)

Without cells and previous result this is exactly the plain estimator and its variance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .estimate import Ratio, collapse, collapsed_groups, successive_variance

#: Size of the joint test: under random reporting within strata it rejects on at most this
#: share of nights (measured: 2.4% of 5,000 random reportings; the floors below make the
#: warning rarer still). Half the 5% that a false alarm may cost, so the chi-square
#: approximation has room.
NONRESPONSE_LEVEL = 0.025
#: A variable is named as different when its own score z is beyond the two-sided 5% point ...
VARIABLE_Z = float(stats.norm.ppf(0.975))
#: ... and the difference is large enough to matter (``previous`` per candidate share).
FLOORS = {"registered": 0.03, "kelurahan": 0.03, "previous": 0.01}


def is_kelurahan(station_ids: Sequence[str] | np.ndarray) -> np.ndarray:
    """Kemendagri village codes 1xxx are kelurahan (urban); 2xxx and anything else desa.
    ``station_ids`` are 13-digit KPU station IDs (PPKKCCDDDDTTT)."""
    return np.array([len(s) >= 7 and s[6] == "1" for s in station_ids], dtype=bool)


@dataclass(frozen=True)
class Check:
    """Reported vs not-yet-reported sampled stations on one variable known before the night:
    stratum-weighted means (the size of the difference) and the variable's own score z."""

    variable: str
    reported: float
    missing: float
    difference: float
    relative: float
    z: float
    warn: bool


@dataclass(frozen=True)
class Test:
    """The joint score test of random reporting within strata on every variable at once."""

    statistic: float
    df: int
    p_value: float
    level: float

    @property
    def reject(self) -> bool:
        return self.p_value <= self.level


@dataclass(frozen=True)
class Examination:
    checks: list[Check]
    test: Test | None

    @property
    def warn(self) -> bool:
        return any(c.warn for c in self.checks)


def _stratum_means(
    values: np.ndarray, h: np.ndarray, mask: np.ndarray, H: int
) -> tuple[np.ndarray, np.ndarray]:
    count = np.bincount(h[mask], minlength=H).astype(float)
    total = np.bincount(h[mask], weights=values[mask], minlength=H)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), 0.0), count


def describe(
    values: np.ndarray, population: np.ndarray, h: np.ndarray, counted: np.ndarray, inside: np.ndarray
) -> tuple[float, float] | None:
    """Stratum-weighted means of ``values`` over the reported and the missing sampled stations
    (weights N_h over the strata that have both and know the variable), or None when no
    stratum has both."""
    H = len(population)
    known = np.isfinite(values) & inside
    v = np.nan_to_num(values)
    mean_r, r = _stratum_means(v, h, known & counted, H)
    mean_m, m = _stratum_means(v, h, known & ~counted, H)
    both = (r > 0) & (m > 0)
    if not both.any() or r.sum() < 2 or m.sum() < 2:
        return None
    weight = np.where(both, population, 0.0)
    if weight.sum() <= 0:
        weight = both.astype(float)
    weight = weight / weight.sum()
    return float(np.sum(weight * mean_r)), float(np.sum(weight * mean_m))


def score_test(
    columns: np.ndarray, h: np.ndarray, counted: np.ndarray, inside: np.ndarray
) -> tuple[Test | None, np.ndarray]:
    """The stratified (Mantel-Haenszel) score test that reporting is random within strata,
    on the variables in ``columns`` (stations x variables, NaN unknown) jointly, and each
    variable's own score z.

    Under random reporting within strata, which r_h of a stratum's n_h sampled stations (in
    the domain) are in is a simple random draw, so for each variable the sum over reported
    stations of c_i (the value minus its stratum mean over the stations that know it; 0 where
    unknown) has mean 0 and the exact covariance of sampling without replacement:

        T = sum_h sum_{i reported} c_hi,   V = sum_h r_h m_h / (n_h (n_h - 1)) sum_i c_hi c_hi'

    (m_h = n_h - r_h). W = T' V^+ T is the score statistic of a logistic model of reporting on
    the stratum and the variables, tested against the model with the stratum alone; it is
    chi-square with rank(V) degrees of freedom. V is not estimated from the results, it is the
    known randomisation covariance, so no design degrees of freedom enter. Returns (None, z)
    when no variable varies where both reported and missing stations are."""
    A = np.asarray(columns, dtype=float).reshape(len(h), -1)
    q = A.shape[1]
    H = int(h.max()) + 1 if len(h) else 0
    known = np.isfinite(A) & inside[:, None]
    centred = np.zeros_like(A)
    for j in range(q):
        mean, _ = _stratum_means(np.nan_to_num(A[:, j]), h, known[:, j], H)
        centred[:, j] = np.where(known[:, j], A[:, j] - mean[h], 0.0)
    n = np.bincount(h[inside], minlength=H).astype(float)
    r = np.bincount(h[inside & counted], minlength=H).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        factor = np.where(n > 1, r * (n - r) / (n * np.maximum(n - 1, 1)), 0.0)
    T = centred[inside & counted].sum(axis=0)
    V = (centred * factor[h][:, None]).T @ centred
    sd = np.sqrt(np.clip(np.diag(V), 0.0, None))
    z = np.where(sd > 0, T / np.where(sd > 0, sd, 1.0), 0.0)
    live = sd > 1e-12 * max(float(sd.max()), 1e-300)
    if not live.any():
        return None, z
    correlation = V[np.ix_(live, live)] / np.outer(sd[live], sd[live])
    values, vectors = np.linalg.eigh(correlation)
    keep = values > 1e-8 * values.max()
    projected = vectors[:, keep].T @ z[live]
    statistic = float(np.sum(projected**2 / values[keep]))
    df = int(keep.sum())
    p_value = float(stats.chi2.sf(statistic, df))
    return Test(statistic=statistic, df=df, p_value=p_value, level=NONRESPONSE_LEVEL), z


def examine(
    population: Sequence[int] | np.ndarray,
    unit_stratum: Sequence[int] | np.ndarray,
    counted: Sequence[bool] | np.ndarray,
    *,
    registered: Sequence[float] | np.ndarray,
    kelurahan: Sequence[bool] | np.ndarray,
    previous: dict[str, np.ndarray] | None = None,
    domain: Sequence[bool] | np.ndarray | None = None,
) -> Examination:
    """Every comparison that can be made, per sampled station of the strata: ``registered``
    voters (NaN unknown), ``kelurahan`` flags and ``previous`` shares per candidate code (NaN
    where the previous result is unknown); and their joint test (``score_test``).

    A variable ``warn``s when the joint test rejects at ``NONRESPONSE_LEVEL``, its own |z| is
    at least ``VARIABLE_Z`` and its difference reaches its floor in ``FLOORS`` (relative for
    registered voters): significant together, and this variable big enough to matter."""
    N = np.asarray(population, dtype=float)
    h = np.asarray(unit_stratum, dtype=np.int64)
    use = np.asarray(counted, dtype=bool)
    inside = np.ones(len(h), dtype=bool) if domain is None else np.asarray(domain, dtype=bool)
    variables: list[tuple[str, np.ndarray, float, bool]] = [
        ("registered", np.asarray(registered, dtype=float), FLOORS["registered"], True),
        ("kelurahan", np.asarray(kelurahan, dtype=float), FLOORS["kelurahan"], False),
    ]
    for code, shares in (previous or {}).items():
        variables.append((f"previous:{code}", np.asarray(shares, dtype=float), FLOORS["previous"], False))
    described = [describe(values, N, h, use, inside) for _, values, _, _ in variables]
    present = [i for i, d in enumerate(described) if d is not None]
    if not present:
        return Examination([], None)
    test, z = score_test(np.column_stack([variables[i][1] for i in present]), h, use, inside)
    rejected = test is not None and test.reject
    found: list[Check] = []
    for position, i in enumerate(present):
        name, _, floor, relative = variables[i]
        reported, missing = described[i]  # type: ignore[misc]
        difference = reported - missing
        size = abs(difference) / (abs(missing) if relative and missing else 1.0)
        zj = float(z[position])
        found.append(
            Check(
                variable=name,
                reported=reported,
                missing=missing,
                difference=difference,
                relative=size if relative else difference,
                z=zj,
                warn=bool(rejected and abs(zj) >= VARIABLE_Z and size >= floor),
            )
        )
    return Examination(found, test)


def checks(
    population: Sequence[int] | np.ndarray,
    unit_stratum: Sequence[int] | np.ndarray,
    counted: Sequence[bool] | np.ndarray,
    *,
    registered: Sequence[float] | np.ndarray,
    kelurahan: Sequence[bool] | np.ndarray,
    previous: dict[str, np.ndarray] | None = None,
    domain: Sequence[bool] | np.ndarray | None = None,
) -> list[Check]:
    """The per-variable part of ``examine``."""
    return examine(
        population, unit_stratum, counted,
        registered=registered, kelurahan=kelurahan, previous=previous, domain=domain,
    ).checks  # fmt: skip


@dataclass(frozen=True)
class Adjusted:
    """The adjusted estimate of each column (shares, and the lead when asked) and how."""

    ratios: list[Ratio]
    method: str
    cells: int
    previous: list[int]


def cells_of(station_ids: Sequence[str] | np.ndarray, group: np.ndarray, counted: np.ndarray) -> np.ndarray:
    """Weighting classes: kecamatan x kelurahan/desa within each group of strata, merged with a
    neighbour (``collapse``: the other class of the same kecamatan first, then the next
    kecamatan in code order) until each has two reports. Returns a class number per station."""
    ids = np.asarray(station_ids)
    kel = is_kelurahan(ids)
    labels = np.array([f"{s[:6]}.{int(k)}" for s, k in zip(ids, kel, strict=True)]) if len(ids) else ids
    cell = np.zeros(len(ids), dtype=np.int64)
    next_id = 0
    for g in np.unique(group):
        mine = np.flatnonzero(group == g)
        codes, position = np.unique(labels[mine], return_inverse=True)
        reports = np.bincount(position[counted[mine]], minlength=len(codes))
        merged = collapse(list(codes), list(reports))
        number = np.zeros(len(codes), dtype=np.int64)
        for members in merged:
            number[members] = next_id
            next_id += 1
        cell[mine] = number[position]
    return cell


def _centred(values: np.ndarray, cell: np.ndarray, cells: int) -> np.ndarray:
    """``values`` minus their class mean (for the slope pooled within classes)."""
    count = np.bincount(cell, minlength=cells)
    mean = np.bincount(cell, weights=values, minlength=cells) / np.maximum(count, 1)
    return values - mean[cell]


def adjusted(
    strata: Sequence[str],
    population: Sequence[int] | np.ndarray,
    unit_stratum: Sequence[int] | np.ndarray,
    counted: Sequence[bool] | np.ndarray,
    y: np.ndarray,
    x: np.ndarray,
    *,
    station_ids: Sequence[str] | np.ndarray,
    previous: Sequence[tuple[np.ndarray, np.ndarray]] = (),
    domain: Sequence[bool] | np.ndarray | None = None,
) -> Adjusted | None:
    """The two-phase estimate (module docstring) of each column of ``y`` over ``x``.

    Per sampled station of the strata (reported or not), in station-ID order:
    ``unit_stratum``, ``counted``, ``y`` (stations x columns; only counted rows are read),
    ``x``, ``station_ids`` (for the weighting classes) and ``previous``: covariates, each a
    pair (numerators with the columns of ``y``, NaN where unknown; denominator), e.g. the
    station's own previous result and its desa's. None when nothing is estimable or there is
    nothing to adjust for (no class split, no previous result).
    """
    codes = list(strata)
    N = np.asarray(population, dtype=float)
    h = np.asarray(unit_stratum, dtype=np.int64)
    use = np.asarray(counted, dtype=bool)
    d = np.ones(len(h)) if domain is None else np.asarray(domain, dtype=bool).astype(float)
    ys = np.asarray(y, dtype=float).reshape(len(h), -1)
    xs = np.asarray(x, dtype=float)
    if int(((d > 0) & use).sum()) < 2:
        return None
    reported = np.bincount(h[use], minlength=len(codes))
    _, groups, group_of, Ng = collapsed_groups(codes, N, reported)
    G = len(groups)
    g_i = group_of[h]
    ng = np.bincount(g_i, minlength=G).astype(float)
    if (np.bincount(g_i[use], minlength=G) == 0).any():
        return None
    cell = cells_of(station_ids, g_i, use)
    kecamatan = np.array([str(s)[:6] for s in station_ids])
    C = int(cell.max()) + 1 if len(cell) else 0
    n_cell = np.bincount(cell, minlength=C).astype(float)
    r_cell = np.bincount(cell[use], minlength=C).astype(float)
    cell_group = np.zeros(C, dtype=np.int64)
    cell_group[cell] = g_i
    base = Ng / ng  # phase-1 weight N_g / n_g
    factor = n_cell / np.maximum(r_cell, 1)
    w = base[g_i] * factor[cell]  # meaningful on counted stations only
    R = use
    X = float(np.sum(w[R] * xs[R] * d[R]))
    if X <= 0:
        return None
    N_cell = base[cell_group] * n_cell
    fpc_g = np.clip(1.0 - ng / np.maximum(Ng, 1.0), 0.0, 1.0)
    phase2 = np.where(n_cell > 0, 1 / np.maximum(r_cell, 1) - 1 / np.maximum(n_cell, 1), 0.0)
    inside = (d > 0) & R
    df = max(int(inside.sum()) - len(np.unique(cell[inside])), 1)
    covariates = [
        (np.asarray(py, dtype=float).reshape(len(h), -1), np.asarray(px, dtype=float)) for py, px in previous
    ]
    ratios: list[Ratio] = []
    used_previous: set[int] = set()
    for k in range(ys.shape[1]):
        yd = ys[:, k] * d
        p_r = float(np.sum(w[R] * yd[R])) / X
        a = np.where(R, (yd - p_r * xs * d) / X, 0.0)
        shifts, residuals = [], []
        for py, px in covariates:
            known = np.isfinite(py[:, k]) & np.isfinite(px) & (px > 0)
            xk = np.where(known, px, 0.0) * d
            yk = np.where(known, py[:, k], 0.0) * d
            X1 = float(np.sum(base[g_i] * xk))
            Xr = float(np.sum((w * xk)[R]))
            if known[R].sum() < 2 or X1 <= 0 or Xr <= 0:
                continue
            p_s = float(np.sum(base[g_i] * yk)) / X1
            p_rprev = float(np.sum((w * yk)[R])) / Xr
            shifts.append(p_s - p_rprev)
            residuals.append(np.where(R, (yk - p_rprev * xk) / Xr, 0.0))
        value, u = p_r, a
        if residuals:
            c = np.column_stack(residuals)
            da = _centred(a[R], cell[R], C)
            dc = np.column_stack([_centred(c[R, j], cell[R], C) for j in range(c.shape[1])])
            if np.any(dc != 0):
                b = np.linalg.lstsq(dc, da, rcond=None)[0]
                value = p_r + float(np.dot(b, shifts))
                u = a - c @ b
                used_previous.add(k)
        s2_a = successive_variance(a[R], g_i[R], G, kecamatan[R])
        s2_u = successive_variance(u[R], cell[R], C)
        v1 = float(np.sum(Ng * Ng * fpc_g * s2_a / ng))
        v2 = float(np.sum(N_cell * N_cell * phase2 * s2_u))
        ratios.append(Ratio(value=value, se=float(np.sqrt(max(v1 + v2, 0.0))), df=df))
    split = C > G
    if not split and not used_previous:
        return None
    parts = []
    if split:
        parts.append("weighting classes kecamatan x kelurahan/desa within strata")
    if used_previous:
        parts.append("regression on the previous result (station and desa)")
    return Adjusted(ratios=ratios, method=" + ".join(parts), cells=C, previous=sorted(used_previous))
