"""The estimator and design formulas against small examples computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from smsgate.quickcount import design, estimate


def test_stratified_ratio_estimate_by_hand() -> None:
    """Two strata, candidate 01's votes y over valid votes x, stations in station-ID order.

    Stratum A: N=10, reported n=2: (y, x) = (30, 100), (50, 100)      w_A = 10/2 = 5
    Stratum B: N=40, reported n=4: (20, 100), (40, 200), (10, 100), (30, 200)   w_B = 40/4 = 10

    Y = 5*80 + 10*100 = 1400;  X = 5*200 + 10*600 = 7000;  p = 1400/7000 = 0.2
    residuals e = y - 0.2 x:  A: 10, 30;  B: 0, 0, -10, -10
    successive differences: A: 20 -> s2 = 400 / (2*1) = 200
                            B: 0, -10, 0 -> s2 = 100 / (2*3) = 16.667
    V = X^-2 [N_A^2 (1-f_A) s2_A/n_A + N_B^2 (1-f_B) s2_B/n_B]
      = [100 * 0.8 * 200/2 + 1600 * 0.9 * 16.667/4] / 7000^2 = (8000 + 6000) / 49e6
    SE = 0.0169031; degrees of freedom 6 stations - 2 strata = 4, t(0.975, 4) = 2.776445,
    t(0.995, 4) = 4.604095: 95% [0.153070, 0.246930], 99% [0.122177, 0.277823].
    """
    y = np.array([30, 50, 20, 40, 10, 30])
    x = np.array([100, 100, 100, 200, 100, 200])
    result = estimate.ratio_estimate(["A", "B"], [10, 40], [0, 0, 1, 1, 1, 1], y[:, None], x)
    assert result is not None
    ratio = result.ratios[0]
    assert ratio.value == pytest.approx(0.2)
    assert ratio.se == pytest.approx(math.sqrt(14000 / 49e6))
    assert ratio.df == 4
    assert ratio.ci95 == pytest.approx((0.153070, 0.246930), abs=1e-6)
    assert ratio.ci99 == pytest.approx((0.122177, 0.277823), abs=1e-6)
    assert ratio.margin95 == pytest.approx(2.776445 * ratio.se, abs=1e-7)
    assert result.collapsed == []


def test_successive_differences_follow_the_order_given() -> None:
    """Smooth in geographic order (1, 2, 3, 4): differences 1, 1, 1 -> s2 = 3/6 = 0.5, where
    the textbook variance would be 1.667; shuffled (1, 3, 2, 4): 4+1+4 = 9 -> 1.5."""
    assert estimate.successive_variance(np.array([1, 2, 3, 4]), np.zeros(4, int), 1)[0] == pytest.approx(0.5)
    assert estimate.successive_variance(np.array([1, 3, 2, 4]), np.zeros(4, int), 1)[0] == pytest.approx(1.5)
    # interleaved groups: each group's own neighbours (group 0: 1, 3 -> 2; group 1: 5, 5 -> 0)
    pooled = estimate.successive_variance(np.array([1, 5, 3, 5]), np.array([0, 1, 0, 1]), 2)
    assert pooled.tolist() == pytest.approx([2.0, 0.0])


def test_successive_differences_stay_inside_the_kecamatan() -> None:
    """Two kecamatan in one stratum, residuals 1, 2 | 6, 7: the jump 2 -> 6 is the gap between
    the kecamatan's levels, which a systematic sample along the sorted list does not draw at
    random (each kecamatan gets its share of the sample). Across: (1 + 16 + 1) / 6 = 3; within
    the kecamatan: (1 + 1) / (2 * 2) = 0.5. A stratum without two stations in any one
    kecamatan keeps every pair (group 1: 5, 9 -> 16 / 2 = 8)."""
    values = np.array([1, 2, 6, 7, 5, 9])
    group = np.array([0, 0, 0, 0, 1, 1])
    block = np.array(["630101", "630101", "630102", "630102", "630201", "630202"])
    assert estimate.successive_variance(values, group, 2).tolist() == pytest.approx([3.0, 8.0])
    assert estimate.successive_variance(values, group, 2, block).tolist() == pytest.approx([0.5, 8.0])
    result = estimate.ratio_estimate(
        ["A", "B"], [40, 20], group, (values + 10)[:, None], np.full(6, 100.0), block=block
    )
    assert result is not None
    # p = (40/4 * 56 + 20/2 * 34) / (40/4 * 400 + 20/2 * 200) = 900 / 6000; e = y - p x
    p = 900 / 6000
    e = values + 10 - p * 100
    s2 = estimate.successive_variance(e, group, 2, block)
    assert s2[0] == pytest.approx(((e[1] - e[0]) ** 2 + (e[3] - e[2]) ** 2) / 4)
    variance = (40**2 * (1 - 4 / 40) * s2[0] / 4 + 20**2 * (1 - 2 / 20) * s2[1] / 2) / 6000**2
    assert result.ratios[0].value == pytest.approx(p)
    assert result.ratios[0].se == pytest.approx(math.sqrt(variance))


def test_two_phases_when_part_of_the_sample_is_in() -> None:
    """One stratum N=100 with 8 sample stations, 4 counted: (y, x) = (30, 100), (50, 100),
    (20, 100), (40, 100), one kecamatan.

    w = 100/4 = 25, X = 25 * 400 = 10000, p = 140/400 = 0.35, e = -5, 15, -15, 5
    s2 (successive differences) = (20^2 + 30^2 + 20^2) / (2 * 3) = 283.33
    S2 (textbook) = (25 + 225 + 225 + 25) / 3 = 166.67
    V = 100^2 [(1 - 8/100) * 283.33 / 8 + (1/4 - 1/8) * 166.67] / 10000^2 = 0.0053417
    With all 8 taken as the sample (the old reading, sampled = counted) the same four give
    100^2 (1 - 4/100) 283.33 / 4 / 10000^2 = 0.0068 instead."""
    y = np.array([[30], [50], [20], [40]])
    block = np.array(["630101"] * 4)
    x = np.full(4, 100.0)
    found = estimate.ratio_estimate(["A"], [100], [0, 0, 0, 0], y, x, block=block, sampled=[8])
    assert found is not None
    variance = 100**2 * ((1 - 8 / 100) * (1700 / 6) / 8 + (1 / 4 - 1 / 8) * (500 / 3)) / 10000**2
    assert variance == pytest.approx(0.0053417, abs=1e-7)
    assert found.ratios[0].value == pytest.approx(0.35)
    assert found.ratios[0].se == pytest.approx(math.sqrt(variance))
    whole = estimate.ratio_estimate(["A"], [100], [0, 0, 0, 0], y, x, block=block)
    assert whole is not None
    assert whole.ratios[0].se == pytest.approx(math.sqrt(100**2 * 0.96 * (1700 / 6) / 4 / 10000**2))


def test_full_sample_of_a_stratum_has_no_variance() -> None:
    """f_h = 1 (every station in): the finite-population correction makes the variance 0."""
    result = estimate.ratio_estimate(["A"], [3], [0, 0, 0], np.array([[1], [5], [2]]), [10, 10, 10])
    assert result is not None
    assert result.ratios[0].value == pytest.approx(8 / 30)
    assert result.ratios[0].se == 0


def test_domain_estimate_counts_zeros_outside_the_domain() -> None:
    """One stratum N=8, n=4; the domain is stations 0 and 1.

    y*d = 30, 50, 0, 0; x*d = 100, 100, 0, 0; p = 80/200 = 0.4;
    e = 30-40, 50-40, 0, 0 = -10, 10, 0, 0; successive differences 20, -10, 0 -> s2 = 500/6;
    X = 2*200 = 400; V = 64 * (1 - 4/8) * (500/6) / 4 / 400^2; df = 2 stations - 1 stratum = 1.
    """
    result = estimate.ratio_estimate(
        ["A"], [8], [0, 0, 0, 0], np.array([[30], [50], [60], [5]]), [100, 100, 100, 100], [1, 1, 0, 0]
    )
    assert result is not None
    assert result.ratios[0].value == pytest.approx(0.4)
    assert result.ratios[0].se == pytest.approx(math.sqrt(64 * 0.5 * (500 / 6) / 4 / 400**2))
    assert result.ratios[0].df == 1


def test_collapse_neighbour_rule() -> None:
    """62.02 has one report: its next neighbour with the same parent (62.03, none) joins it,
    still short, then the previous one with the same parent (62.01); 63.01 (another
    province) stays apart. A last stratum short of reports joins the previous one."""
    codes = ["62.01", "62.02", "62.03", "63.01"]
    assert estimate.collapse(codes, [2, 1, 0, 3]) == [[0, 1, 2], [3]]
    assert estimate.collapse(["62.01", "62.02"], [3, 1]) == [[0, 1]]
    # no sibling under the same parent: the next stratum in code order
    assert estimate.collapse(["62.01", "63.01", "63.02"], [1, 2, 2]) == [[0, 1], [2]]
    assert estimate.collapse(["62.01", "62.02"], [2, 2]) == [[0], [1]]


def test_collapsed_group_is_estimated_as_one_stratum() -> None:
    """A (N=10, one report) collapses with B (N=40, three reports): the group is N=50, n=4."""
    y = np.array([[30], [20], [40], [10]])
    x = [100, 100, 200, 100]
    collapsed = estimate.ratio_estimate(["62.01", "62.02"], [10, 40], [0, 1, 1, 1], y, x)
    merged = estimate.ratio_estimate(["62"], [50], [0, 0, 0, 0], y, x)
    assert collapsed is not None and merged is not None
    assert collapsed.collapsed == [["62.01", "62.02"]]
    assert collapsed.ratios[0].value == pytest.approx(merged.ratios[0].value)
    assert collapsed.ratios[0].se == pytest.approx(merged.ratios[0].se)


def test_quick_count_needs_two_stations_in_the_domain() -> None:
    result = estimate.quick_count(
        ["A"], [10], [1000], [0, 0], [True, False], np.array([[1, 2], [3, 4]]), [0, 0], [10.0, 10.0]
    )
    assert result.shares is None and result.turnout is None and result.coverage.reported == 1


def test_coverage_warnings() -> None:
    """Overall 10/40 = 25% (not low); B's 1/10 is under half of 25% and holds 30% of voters."""
    cov = estimate.coverage(["A", "B", "C"], [20, 10, 10], [6, 1, 3], [500, 300, 200])
    assert not cov.low and cov.uneven and cov.lagging == ["B"]
    cov = estimate.coverage(["A", "B"], [20, 20], [3, 3], [1, 1])
    assert cov.low and not cov.uneven


def test_allocation_proportional_with_floor_and_cap() -> None:
    """Ideal shares 1, 3, 6 of 10: A is raised to the floor of 2, the 8 left split 300:600 =
    2.67, 5.33 -> 2 + 1 (largest remainder), 5 -> [2, 3, 5]."""
    assert design.allocate([100, 300, 600], [10, 10, 10], 10).sample.tolist() == [2, 3, 5]
    # A can only give its 3 stations; the other 6 split evenly
    assert design.allocate([1000, 10, 10], [3, 10, 10], 9).sample.tolist() == [3, 3, 3]
    # caps and floors together: A capped at 3 would leave B 1 < 2; repaired to [2, 2]
    assert design.allocate([1000, 1], [3, 10], 4).sample.tolist() == [2, 2]
    with pytest.raises(ValueError):
        design.allocate([1, 1], [5, 5], 3)  # below 2 per stratum
    with pytest.raises(ValueError):
        design.allocate([1, 1], [5, 5], 11)  # more than the frame


def test_systematic_draw_is_seeded_and_stays_in_strata() -> None:
    strata = np.array(["A"] * 50 + ["B"] * 30)
    first = design.draw(strata, {"A": 5, "B": 3}, seed=1)
    assert first.tolist() == design.draw(strata, {"A": 5, "B": 3}, seed=1).tolist()
    assert (strata[first] == "A").sum() == 5 and (strata[first] == "B").sum() == 3
    assert len(set(first.tolist())) == 8
    # each station of A has inclusion probability 5/50 over many seeds
    hits = np.zeros(80)
    for seed in range(2000):
        hits[design.draw(strata, {"A": 5, "B": 3}, seed=seed)] += 1
    assert np.allclose(hits[:50] / 2000, 0.1, atol=0.03)
    assert np.allclose(hits[50:] / 2000, 0.1, atol=0.03)


def test_recommended_size_by_hand() -> None:
    """moe 1 point at 95%, p = 0.5: 1.96^2 * 0.25 / 0.0001 = 9604 voters; deff 1 + 199 * 0.2 =
    40.8; 9604 * 40.8 / 200 = 1959.2 -> 1960 stations; with a frame of 13,584 stations:
    1959.2 / (1 + 1959.2 / 13584) = 1712.3 -> 1713."""
    advice = design.recommend_size(0.01, 0.95, voters_per_station=200)
    assert advice.voters_equivalent == 9604
    assert advice.design_effect == pytest.approx(40.8)
    assert advice.stations == 1960
    assert design.recommend_size(0.01, 0.95, voters_per_station=200, frame=13584).stations == 1713
