"""Coverage simulation: do the real design and estimator keep their promises?

The same simulated Kalimantan Selatan elections as ``bench/quickcount_coverage.py``
(``smsgate.quickcount.scenarios``: a fresh election, a fresh sample drawn by
``design.draw_frame`` and the analysis ``smsgate quickcount`` uses, each run), with fewer runs
(the benchmark runs 1,000 per scenario and its figures are in the README). Deterministic: fixed
seeds. Each tolerance is the target widened by about 2.5 Monte Carlo standard errors of a rate
over that many runs (sqrt(p (1 - p) / R)), so a pass is not luck and a fail is not noise.
"""

from __future__ import annotations

import numpy as np
import pytest

from smsgate.quickcount import scenarios

RUNS = 120


@pytest.fixture(scope="module")
def frame() -> scenarios.Frame:
    return scenarios.build_frame()


def by_name(name: str) -> scenarios.Scenario:
    return next(s for s in scenarios.SCENARIOS if s.name == name)


@pytest.fixture(scope="module")
def all_in(frame) -> dict:  # type: ignore[no-untyped-def]
    return scenarios.run(by_name("all in"), RUNS, frame=frame, seed=11).summary()


@pytest.fixture(scope="module")
def random_60(frame) -> dict:  # type: ignore[no-untyped-def]
    return scenarios.run(by_name("random 60%"), RUNS, frame=frame, seed=12).summary()


@pytest.fixture(scope="module")
def late_60(frame) -> dict:  # type: ignore[no-untyped-def]
    return scenarios.run(by_name("late 60%"), RUNS, frame=frame, seed=13).summary()


@pytest.fixture(scope="module")
def late_80_without_previous(frame) -> dict:  # type: ignore[no-untyped-def]
    return scenarios.run(by_name("late 80%, no previous"), RUNS, frame=frame, seed=14).summary()


def test_intervals_cover_when_every_sampled_station_is_in(all_in) -> None:
    # columns: candidates 01, 02, 03, the lead, turnout; target 92-98% (the pairs of the
    # successive differences lie in different desa, which keeps the variance somewhat
    # conservative, hence the upper slack)
    rates = all_in["coverage"]
    assert ((rates >= 0.90) & (rates <= 1.0)).all(), rates
    assert np.abs(all_in["bias"]).max() < 0.002, all_in["bias"]  # < 0.2 points
    assert all_in["warned"] <= 0.05 and all_in["wrong_call"] == 0


def test_small_regions_cover_where_an_interval_is_shown(all_in) -> None:
    """Kecamatan as regions: t intervals keep ~95% even with few stations; below the
    minimum the estimate is indicative and shows none."""
    for name, (count, t_rate, _) in all_in["domains"].items():
        if count >= 100:
            assert 0.90 <= t_rate <= 0.99, (name, t_rate)
    count, t_rate, z_rate = all_in["domains"]["2-4"]
    assert z_rate < t_rate  # the normal quantile was what undercovered


def test_random_reporting_keeps_coverage_and_raises_no_alarm(random_60) -> None:
    rates = random_60["coverage"]
    assert ((rates >= 0.90) & (rates <= 1.0)).all(), rates
    assert random_60["warned"] <= 0.09  # target <= 5%
    assert ((random_60["adjusted_coverage"] >= 0.90) & (random_60["adjusted_coverage"] <= 1.0)).all()


def test_late_strongholds_warn_and_the_adjusted_estimate_covers(late_60) -> None:
    """60% in, rural desa and 02 strongholds late: the plain estimate is off by points and
    its intervals miss; the warning fires and the adjusted estimate (weighting classes +
    regression on the previous result) covers."""
    bias = late_60["bias"]
    assert bias[1] < -0.02 and late_60["coverage"][1] < 0.2  # the problem is real
    assert late_60["warned"] >= 0.85  # target >= 90%
    adjusted = late_60["adjusted_coverage"]
    assert (adjusted >= 0.85).all(), adjusted  # target >= 90%
    assert (np.abs(late_60["adjusted_bias"]) < np.abs(bias[:4]) / 3).all()
    assert late_60["called"] == 0  # never called while the warning stands


def test_late_reporting_warns_without_a_previous_result(late_80_without_previous) -> None:
    """80% in, rural desa and 02 strongholds late, nothing imported: the plain estimate is off
    by more than a point, and the joint test on registered voters and kelurahan/desa alone
    still raises the warning (target >= 90%; 2.5 Monte Carlo SE below it at 120 runs)."""
    summary = late_80_without_previous
    assert abs(summary["bias"][1]) > 0.01  # biased: the case the target is about
    assert summary["warned"] >= 0.83
    assert summary["wrong_call"] == 0
