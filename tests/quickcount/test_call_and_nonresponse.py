"""The lead and its call, the presidential rule, turnout from TS only, the non-response checks
and the adjusted estimate, on small examples worked by hand."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from smsgate.quickcount import analysis, call, design, estimate, nonresponse, scenarios
from smsgate.quickcount.estimate import Ratio


def test_lead_se_comes_from_the_residuals_of_the_difference() -> None:
    """One stratum N=100, four stations (01, 02, 03 votes):

    (50, 40, 10), (30, 60, 10), (60, 30, 10), (40, 50, 10): x = 100 each, shares 45/45/10.
    Tie at the top: order by share keeps 01 first (stable), lead d = 0.
    y1 - y2 = 10, -30, 30, -10; residuals the same (d = 0); successive differences -40, 60, -40
    -> s2 = (1600 + 3600 + 1600) / 6 = 1133.33; X = 25 * 400 = 10000;
    V = 100^2 * 0.96 * 1133.33 / 4 / 10000^2 = 0.0272, SE = 0.16492.
    The two shares' own SEs would miss the covariance (they are negatively correlated).
    """
    votes = np.array([[50, 40, 10], [30, 60, 10], [60, 30, 10], [40, 50, 10]], dtype=float)
    result = estimate.quick_count(
        ["A"], [100], [1], [0, 0, 0, 0], [True] * 4, votes, [np.nan] * 4, [np.nan] * 4
    )
    assert result.lead is not None
    assert (result.lead.first, result.lead.second) == (0, 1)
    assert result.lead.ratio.value == pytest.approx(0.0)
    assert result.lead.ratio.se == pytest.approx(math.sqrt(100**2 * 0.96 * (6800 / 6) / 4 / 1e8))
    assert result.lead.ratio.df == 3
    assert result.indicative  # 4 stations < MIN_STATIONS


def test_turnout_and_invalid_only_from_stations_that_gave_ts() -> None:
    """Three stations of 100 valid votes and 200 registered voters; two gave TS=4, one none.
    Counting the missing TS as 0 would give (300 + 8) / 600 = 51.3%; the right answer is
    (200 + 8) / 400 = 52%, from 2 stations. Invalid share 8 / 208."""
    votes = np.array([[60, 40], [50, 50], [70, 30]], dtype=float)
    result = estimate.quick_count(
        ["A"], [10], [1], [0, 0, 0], [True] * 3, votes, [4, 4, np.nan], [200, 200, 200]
    )
    assert result.turnout is not None and result.invalid is not None
    assert result.turnout.ratios[0].value == pytest.approx(208 / 400)
    assert result.invalid.ratios[0].value == pytest.approx(8 / 208)
    assert result.with_invalid == 2


def test_t_quantiles_with_design_degrees_of_freedom() -> None:
    r = Ratio(0.5, 0.01, df=4)
    assert r.margin95 == pytest.approx(stats.t.ppf(0.975, 4) * 0.01)
    assert Ratio(0.5, 0.01).margin95 == pytest.approx(1.959964 * 0.01, abs=1e-8)


def test_lead_status_rule() -> None:
    lead = Ratio(0.05, 0.01, df=200)  # 99% interval [0.024, 0.076]
    assert call.lead_status(lead, indicative=False, coverage=0.8, warnings=[]) == call.CALLED
    assert call.lead_status(lead, indicative=False, coverage=0.3, warnings=[]) == call.LEADING
    assert (
        call.lead_status(lead, indicative=False, coverage=0.8, warnings=["nonresponse_bias"]) == call.LEADING
    )
    assert call.lead_status(lead, indicative=True, coverage=0.8, warnings=[]) == call.TOO_CLOSE
    narrow = Ratio(0.022, 0.01, df=200)  # 95% excludes 0, 99% does not
    assert call.lead_status(narrow, indicative=False, coverage=0.8, warnings=[]) == call.LEADING
    assert (
        call.lead_status(Ratio(0.01, 0.01, df=200), indicative=False, coverage=1, warnings=[])
        == call.TOO_CLOSE
    )
    # with a bias warning the adjusted lead must agree too
    adjusted = Ratio(0.01, 0.01, df=200)
    status = call.lead_status(
        lead, indicative=False, coverage=0.8, warnings=["nonresponse_bias"], adjusted=adjusted
    )
    assert status == call.TOO_CLOSE


def _shares(*values: float, se: float = 0.002) -> list[Ratio]:
    return [Ratio(v, se, df=500) for v in values]


def test_presidential_rule_three_pairs() -> None:
    codes = ["01", "02", "03"]
    strong = [_shares(0.3, 0.55, 0.15, se=0.01)] * 20 + [_shares(0.6, 0.15, 0.25, se=0.01)] * 18
    found = call.presidential(
        codes, _shares(0.3, 0.55, 0.15), Ratio(0.25, 0.004, df=500), Ratio(0.15, 0.004, df=500), strong,
        indicative=False, coverage=0.9, warnings=[],
    )  # fmt: skip
    assert (found.outcome, found.winner, found.status) == ("winner", "02", call.CALLED)
    assert found.provinces == 38 and found.provinces_20_certain == 20
    # 55% nationally but >= 20% in only 19 of 38 provinces: not more than half -> second round
    spread = [_shares(0.3, 0.55, 0.15, se=0.01)] * 19 + [_shares(0.6, 0.1, 0.3, se=0.01)] * 19
    found = call.presidential(
        codes, _shares(0.3, 0.55, 0.15), Ratio(0.25, 0.004, df=500), Ratio(0.15, 0.004, df=500), spread,
        indicative=False, coverage=0.9, warnings=[],
    )  # fmt: skip
    assert (found.outcome, found.runoff, found.status) == ("second round", ("02", "01"), call.CALLED)
    # 50.3% +- 0.4: neither surely above nor surely below 50%
    close = [_shares(0.3, 0.503, 0.197, se=0.01)] * 38
    found = call.presidential(
        codes, _shares(0.3, 0.503, 0.197), Ratio(0.2, 0.004, df=500), Ratio(0.1, 0.004, df=500), close,
        indicative=False, coverage=0.9, warnings=[],
    )  # fmt: skip
    assert (found.outcome, found.status) == ("winner", call.TOO_CLOSE)


def test_presidential_rule_two_pairs_is_plurality() -> None:
    provinces = [_shares(0.9, 0.1, se=0.01)] + [_shares(0.45, 0.55, se=0.01)] * 37
    found = call.presidential(
        ["01", "02"], _shares(0.48, 0.52), Ratio(0.04, 0.004, df=500), None, provinces,
        indicative=False, coverage=0.9, warnings=[],
    )  # fmt: skip
    assert (found.outcome, found.winner, found.status) == ("winner", "02", call.CALLED)


def test_nonresponse_check_by_hand() -> None:
    """One stratum of N=100, eight sampled stations, kelurahan = 1, 1, 1, 1, 0, 0, 0, 0.
    The four kelurahan reported: T = 4 - 4 * 0.5 = 2 (kelurahan among the reported minus the
    expected), V = r m / (n (n - 1)) * sum (c - mean)^2 = 16/56 * 2 = 0.571, z = 2.646,
    W = z^2 = 7.0, p = 0.0082 <= 0.025: warns (difference 1 >= 3 points). Three kelurahan and
    a desa reported: T = 1, z = 1.323, p = 0.186: chance."""
    flags = np.array([1, 1, 1, 1, 0, 0, 0, 0], dtype=bool)
    found = nonresponse.examine(
        [100], np.zeros(8, int), flags, registered=np.full(8, np.nan), kelurahan=flags
    )
    (check,) = found.checks
    assert (check.variable, check.reported, check.missing) == ("kelurahan", 1.0, 0.0)
    assert check.z == pytest.approx(2 / math.sqrt(16 / 56 * 2), abs=1e-9)
    assert found.test is not None and found.test.df == 1
    assert found.test.statistic == pytest.approx(7.0, abs=1e-9)
    assert found.test.p_value == pytest.approx(0.008151, abs=1e-6)
    assert check.warn and found.warn
    some = np.array([1, 1, 1, 0, 1, 0, 0, 0], dtype=bool)
    found = nonresponse.examine([100], np.zeros(8, int), some, registered=np.full(8, np.nan), kelurahan=flags)
    (check,) = found.checks
    assert check.z == pytest.approx(1 / math.sqrt(16 / 56 * 2), abs=1e-9)
    assert found.test is not None and found.test.p_value == pytest.approx(0.1859, abs=1e-4)
    assert not check.warn and not found.warn


def test_joint_test_uses_the_exact_randomisation_covariance() -> None:
    """Two strata; registered voters (one unknown) and kelurahan. Enumerating every way the
    same numbers of stations per stratum could have reported gives the covariance of the
    reported sums; the test's z and W must be the ones that covariance gives."""
    h = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    registered = np.array([120, 250, 180, np.nan, 300, 210, 150, 160, 290, 140, 200])
    kelurahan = np.array([1, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1], dtype=float)
    counted = np.array([1, 1, 0, 1, 1, 0, 1, 1, 0, 0, 1], dtype=bool)
    values = np.column_stack([registered, kelurahan])
    centred = values.copy()
    for g in (0, 1):
        mine = h == g
        for j in range(2):
            known = mine & np.isfinite(values[:, j])
            centred[known, j] -= values[known, j].mean()
    centred = np.nan_to_num(centred)
    sums = []
    first, second = np.flatnonzero(h == 0), np.flatnonzero(h == 1)
    for a in itertools.combinations(first, int(counted[first].sum())):
        for b in itertools.combinations(second, int(counted[second].sum())):
            sums.append(centred[list(a) + list(b)].sum(axis=0))
    sums = np.array(sums)
    assert np.allclose(sums.mean(axis=0), 0, atol=1e-9)
    covariance = np.cov(sums.T, bias=True)
    observed = centred[counted].sum(axis=0)
    test, z = nonresponse.score_test(values, h, counted, np.ones(len(h), dtype=bool))
    assert test is not None and test.df == 2
    assert z == pytest.approx(observed / np.sqrt(np.diag(covariance)), abs=1e-9)
    assert test.statistic == pytest.approx(float(observed @ np.linalg.solve(covariance, observed)), abs=1e-9)


def test_joint_test_keeps_its_size_under_random_reporting() -> None:
    """2,000 random reportings (80% at random) of one 600-station sample of the simulated
    frame, on registered voters, kelurahan and three previous shares (which sum to one, so
    the test drops the redundant direction): it rejects about as often as its level says
    (2.5%; binomial SE 0.35%), and a tenth as often at 10%."""
    frame = scenarios.build_frame()
    rng = np.random.default_rng(3)
    election = scenarios.simulate(frame, rng)
    chosen, summary = design.draw_frame(frame.strata, frame.registered, 600, seed=3)
    codes = sorted(summary)
    h = np.array([codes.index(c) for c in frame.strata[chosen]])
    previous = election.previous[chosen] / election.previous[chosen].sum(axis=1, keepdims=True)
    values = np.column_stack([frame.registered[chosen], frame.kelurahan[chosen], previous])
    inside = np.ones(len(chosen), dtype=bool)
    p = []
    for _ in range(2000):
        test, _ = nonresponse.score_test(values, h, rng.random(len(chosen)) < 0.8, inside)
        assert test is not None and test.df == 4
        p.append(test.p_value)
    p = np.array(p)
    assert abs((p <= nonresponse.NONRESPONSE_LEVEL).mean() - nonresponse.NONRESPONSE_LEVEL) < 0.011
    assert abs((p <= 0.10).mean() - 0.10) < 0.02


def test_kelurahan_from_the_village_code() -> None:
    assert nonresponse.is_kelurahan(["6371011001001", "6301012001001", "6301013001001"]).tolist() == [
        True,
        False,
        False,
    ]


def test_adjusted_with_a_perfect_previous_result_equals_the_full_sample() -> None:
    """If the previous result were this one (b = 1), the regression recovers the estimate the
    whole sample would give, whoever reported; its variance is then the sampling part only."""
    rng = np.random.default_rng(5)
    n = 40
    ids = np.array([f"630101{2001 + i // 4}{i % 4 + 1:03d}" for i in range(n)])
    valid = rng.integers(100, 200, n).astype(float)
    share = np.clip(0.3 + 0.4 * (np.arange(n) / n) + rng.normal(0, 0.05, n), 0, 1)
    y = np.round(share * valid)
    votes = np.column_stack([y, valid - y])
    counted = np.arange(n) < 25  # the early ones vote differently: not random
    full = estimate.ratio_estimate(["63.01"], [400], np.zeros(n, int), votes, valid)
    found = nonresponse.adjusted(
        ["63.01"], [400], np.zeros(n, int), counted, votes, valid,
        station_ids=ids, previous=[(votes, valid)],
    )  # fmt: skip
    assert full is not None and found is not None
    assert found.previous == [0, 1]
    for k in range(2):
        assert found.ratios[k].value == pytest.approx(full.ratios[k].value, abs=1e-9)
    plain = estimate.ratio_estimate(["63.01"], [400], np.zeros(25, int), votes[:25], valid[:25])
    assert plain is not None and abs(plain.ratios[0].value - full.ratios[0].value) > 0.05


def test_weighting_classes_merge_until_two_reports() -> None:
    """Kecamatan 01: kelurahan (2 reports) and desa (1 report) -> the desa class joins the
    kelurahan class of the same kecamatan; kecamatan 02: desa with 2 reports stays."""
    ids = [
        "6301011001001",
        "6301011001002",
        "6301012001001",
        "6301012001002",
        "6301022001001",
        "6301022001002",
    ]
    counted = np.array([True, True, True, False, True, True])
    cells = nonresponse.cells_of(ids, np.zeros(6, int), counted)
    assert cells[0] == cells[1] == cells[2] == cells[3]
    assert cells[4] == cells[5] != cells[0]


def test_geographic_systematic_draw_spreads_the_sample() -> None:
    """100 stations in ID order, 10 drawn: exactly one in each run of 10 consecutive stations."""
    strata = np.array(["A"] * 100)
    for seed in range(20):
        chosen = design.draw(strata, {"A": 10}, seed=seed)
        assert sorted(chosen // 10) == list(range(10))


def test_many_disputed_warning() -> None:
    n = 40
    ids = np.array([f"630101200{i // 10 + 1}{i % 10 + 1:03d}" for i in range(n)])
    votes = np.tile([[60.0, 40.0]], (n, 1))
    disputed = np.zeros(n, bool)
    disputed[:3] = True
    sample = analysis.Sample(
        candidates=["01", "02"], strata=["63.01"], population=np.array([400.0]),
        stratum_registered=np.array([1.0]), station_ids=ids, unit_stratum=np.zeros(n, int),
        counted=~disputed, disputed=disputed, votes=votes, invalid=np.full(n, np.nan),
        registered=np.full(n, np.nan), domain=np.ones(n, bool),
    )  # fmt: skip
    assert "many_disputed" in analysis.analyse(sample).warnings  # 3 of 40 >= 5%
    disputed[:] = False
    disputed[0] = True
    sample = analysis.Sample(**{**sample.__dict__, "disputed": disputed, "counted": ~disputed})
    assert "many_disputed" not in analysis.analyse(sample).warnings  # one station
