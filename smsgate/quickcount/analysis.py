"""Everything the quick count says about one region, from the sample's arrays: the plain
estimate, the lead and its call, turnout, the non-response checks, the adjusted estimate and
the warnings. Pure (numpy, no database): the service feeds it from the database, the coverage
benchmark and the test suite from simulated elections, so both measure the same code.

Warnings (each a stable key):

* ``too_few_reports`` — fewer than two counted stations in the region: no estimate;
* ``indicative`` — fewer than ``estimate.MIN_STATIONS`` counted: estimates without intervals;
* ``low_coverage`` — under 20% of the sampled stations counted;
* ``uneven_coverage`` — strata with 10%+ of the voters under half the overall rate;
* ``collapsed_strata`` — strata with fewer than two reports merged with a neighbour;
* ``nonresponse_bias`` — the reported stations differ from those not yet in on something known
  before the night (``nonresponse.examine``: a joint score test, and a difference that matters);
* ``many_disputed`` — at least ``DISPUTED_SHARE`` of the sampled stations that sent anything
  are disputed (and at least ``DISPUTED_MINIMUM``): they are left out as if missing, and if
  disputes cluster where one side is strong, that is non-random too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from . import call, estimate, nonresponse
from .call import Presidential

DISPUTED_SHARE = 0.05
DISPUTED_MINIMUM = 2


@dataclass(frozen=True)
class Sample:
    """The sampled stations of the strata a region touches, and what is known of them.

    Per stratum: ``strata`` (codes), ``population`` (N_h), ``stratum_registered``. Per sampled
    station: ``station_ids`` (13-digit), ``unit_stratum``, ``counted``, ``disputed``, ``votes``
    (stations x ``candidates``), ``invalid`` (NaN without TS), ``registered`` (NaN unknown),
    ``domain`` (inside the region), and the previous election's ``previous_votes`` (same
    columns, NaN unknown) and ``previous_valid``.
    """

    candidates: list[str]
    strata: list[str]
    population: np.ndarray
    stratum_registered: np.ndarray
    station_ids: np.ndarray
    unit_stratum: np.ndarray
    counted: np.ndarray
    disputed: np.ndarray
    votes: np.ndarray
    invalid: np.ndarray
    registered: np.ndarray
    domain: np.ndarray
    previous_votes: np.ndarray | None = None
    previous_valid: np.ndarray | None = None
    #: the previous result of each sampled station's whole desa (all its TPS in the file)
    desa_previous_votes: np.ndarray | None = None
    desa_previous_valid: np.ndarray | None = None
    national: bool = False


@dataclass(frozen=True)
class Analysis:
    result: estimate.QuickCountResult
    checks: list[nonresponse.Check]
    adjusted: nonresponse.Adjusted | None
    warnings: list[str]
    call: str
    presidential: Presidential | None = None
    third_gap: estimate.Ratio | None = None
    extra: dict[str, object] = field(default_factory=dict)
    #: the joint test of random reporting behind ``nonresponse_bias`` (None: nothing to test)
    test: nonresponse.Test | None = None

    @property
    def adjusted_lead(self) -> estimate.Ratio | None:
        if self.adjusted is None or self.result.lead is None:
            return None
        return self.adjusted.ratios[-1]


def previous_shares(sample: Sample) -> dict[str, np.ndarray]:
    """Each candidate's previous share per sampled station (NaN where unknown)."""
    if sample.previous_votes is None or sample.previous_valid is None:
        return {}
    shares: dict[str, np.ndarray] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for k, code in enumerate(sample.candidates):
            column = sample.previous_votes[:, k] / sample.previous_valid
            column[~(sample.previous_valid > 0)] = np.nan
            if np.isfinite(column).any():
                shares[code] = column
    return shares


def kecamatan_of(station_ids: Sequence[str] | np.ndarray) -> np.ndarray:
    """Each station's kecamatan code (the first six digits of its 13-digit ID): the implicit
    stratum of the geographic sort, for the variance (``estimate.successive_variance``)."""
    return np.array([str(s)[:6] for s in station_ids])


def analyse(sample: Sample) -> Analysis:
    """The quick count of the region ``sample.domain`` marks (module docstring)."""
    s = sample
    kec = kecamatan_of(s.station_ids)
    result = estimate.quick_count(
        s.strata,
        s.population,
        s.stratum_registered,
        s.unit_stratum,
        s.counted,
        s.votes,
        s.invalid,
        s.registered,
        disputed=s.disputed,
        domain=s.domain,
        block=kec,
    )
    kelurahan = nonresponse.is_kelurahan(s.station_ids)
    examination = nonresponse.examine(
        s.population,
        s.unit_stratum,
        s.counted,
        registered=s.registered,
        kelurahan=kelurahan,
        previous=previous_shares(s),
        domain=s.domain,
    )
    adjusted = None
    lead = result.lead
    if result.shares is not None:
        columns = s.votes
        pairs = [
            (votes, valid)
            for votes, valid in (
                (s.previous_votes, s.previous_valid),
                (s.desa_previous_votes, s.desa_previous_valid),
            )
            if votes is not None and valid is not None
        ]
        if lead is not None:
            columns = np.column_stack([s.votes, s.votes[:, lead.first] - s.votes[:, lead.second]])
            pairs = [(np.column_stack([v, v[:, lead.first] - v[:, lead.second]]), x) for v, x in pairs]
        adjusted = nonresponse.adjusted(
            s.strata,
            s.population,
            s.unit_stratum,
            s.counted,
            columns,
            s.votes.sum(axis=1),
            station_ids=s.station_ids,
            previous=pairs,
            domain=s.domain,
        )
    cov = result.coverage
    warnings: list[str] = []
    if result.shares is None:
        warnings.append("too_few_reports")
    elif result.indicative:
        warnings.append("indicative")
    if cov.low:
        warnings.append("low_coverage")
    if cov.uneven:
        warnings.append("uneven_coverage")
    if result.shares is not None and result.shares.collapsed:
        warnings.append("collapsed_strata")
    if examination.warn:
        warnings.append("nonresponse_bias")
    argued = int((np.asarray(s.disputed, dtype=bool) & np.asarray(s.domain, dtype=bool)).sum())
    sent = argued + result.counted
    if argued >= DISPUTED_MINIMUM and argued >= DISPUTED_SHARE * sent:
        warnings.append("many_disputed")
    adjusted_lead = adjusted.ratios[-1] if adjusted is not None and lead is not None else None
    status = call.lead_status(
        lead.ratio if lead else None,
        indicative=result.indicative,
        coverage=cov.rate,
        warnings=warnings,
        adjusted=adjusted_lead if "nonresponse_bias" in warnings else None,
    )
    presidential = None
    third_gap = None
    if s.national and result.shares is not None and lead is not None:
        presidential, third_gap = _presidential(s, result, warnings)
    return Analysis(
        result, examination.checks, adjusted, warnings, status, presidential, third_gap,
        test=examination.test,
    )  # fmt: skip


def _presidential(
    s: Sample, result: estimate.QuickCountResult, warnings: Sequence[str]
) -> tuple[call.Presidential, estimate.Ratio | None]:
    assert result.shares is not None and result.lead is not None
    use = np.asarray(s.counted, dtype=bool)
    inside = np.asarray(s.domain, dtype=bool)
    valid = s.votes.sum(axis=1)
    kec = kecamatan_of(s.station_ids)
    drawn = np.bincount(s.unit_stratum, minlength=len(s.strata))
    order = np.argsort([-r.value for r in result.shares.ratios], kind="stable")
    third_gap = None
    if len(order) >= 3:
        gap = estimate.ratio_estimate(
            s.strata,
            s.population,
            s.unit_stratum[use],
            (s.votes[use, order[1]] - s.votes[use, order[2]])[:, None],
            valid[use],
            inside[use],
            kec[use],
            drawn,
        )
        third_gap = gap.ratios[0] if gap else None
    province_of = np.array([sid[:2] for sid in s.station_ids])
    provinces: list[list[estimate.Ratio] | None] = []
    for code in sorted(set(province_of[inside].tolist())):
        mine = inside & (province_of == code)
        if int((mine & use).sum()) < 2:
            provinces.append(None)
            continue
        found = estimate.ratio_estimate(
            s.strata, s.population, s.unit_stratum[use], s.votes[use], valid[use], mine[use], kec[use], drawn
        )
        provinces.append(found.ratios if found else None)
    rule = call.presidential(
        s.candidates,
        result.shares.ratios,
        result.lead.ratio,
        third_gap,
        provinces,
        indicative=result.indicative,
        coverage=result.coverage.rate,
        warnings=warnings,
    )
    return rule, third_gap
