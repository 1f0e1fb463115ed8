"""Coverage simulation: do the real design and estimator keep their promises?

Over many synthetic elections (tests/quickcount/synthetic.py: kabupaten-specific shares,
desa-correlated shares, station-varying turnout), each with a fresh sample drawn by the same
function ``smsgate sample draw`` uses (``design.draw_frame``, kabupaten strata, allocation
proportional to registered voters) and estimated by the same function ``smsgate quickcount``
uses (``estimate.quick_count``):

* the 95% interval contains the true share in 92-98% of the elections, for every candidate
  (and for turnout);
* the mean error is within a tenth of the estimator's standard error (its spread over the
  elections). With R elections the Monte Carlo noise of the mean error is SD/sqrt(R), so R is
  large enough (1000) for that bound to be a real test of bias and not of luck (0.1 SD is 3.2
  Monte Carlo SEs).

Deterministic: the frame, every election and every sample come from fixed seeds.
"""

from __future__ import annotations

import numpy as np
import pytest

from smsgate.quickcount import design, estimate

from .synthetic import build_frame, simulate

ELECTIONS = 1000
SAMPLE = 500


def run(elections: int, response: float = 1.0, seed: int = 2024) -> dict[str, np.ndarray]:
    frame = build_frame(seed)
    strata = frame.strata
    rng = np.random.default_rng(seed + 1)
    truth, estimates, ses, covered = [], [], [], []
    for election in range(elections):
        result = simulate(frame, rng)
        chosen, summary = design.draw_frame(strata, frame.registered, SAMPLE, seed=election)
        codes = sorted(summary)
        position = {code: i for i, code in enumerate(codes)}
        counted = rng.random(len(chosen)) < response if response < 1 else np.ones(len(chosen), bool)
        qc = estimate.quick_count(
            codes,
            [summary[c][0] for c in codes],
            [summary[c][2] for c in codes],
            [position[c] for c in strata[chosen]],
            counted,
            result.votes[chosen],
            result.invalid[chosen],
            frame.registered[chosen].astype(float),
        )
        assert qc.shares is not None and qc.turnout is not None
        ratios = [*qc.shares.ratios, qc.turnout.ratios[0]]
        true = np.array([*result.shares, result.turnout(frame.registered)])
        value = np.array([r.value for r in ratios])
        low = np.array([r.ci95[0] for r in ratios])
        high = np.array([r.ci95[1] for r in ratios])
        truth.append(true)
        estimates.append(value)
        ses.append([r.se for r in ratios])
        covered.append((low <= true) & (true <= high))
    return {
        "truth": np.array(truth),
        "estimate": np.array(estimates),
        "se": np.array(ses),
        "covered": np.array(covered),
    }


@pytest.fixture(scope="module")
def full_response() -> dict[str, np.ndarray]:
    return run(ELECTIONS)


def test_95_percent_intervals_cover_the_truth_92_to_98_percent(full_response) -> None:
    rates = full_response["covered"].mean(axis=0)
    # columns: candidates 01, 02, 03, then turnout
    assert ((rates >= 0.92) & (rates <= 0.98)).all(), rates


def test_mean_error_is_within_a_tenth_of_the_standard_error(full_response) -> None:
    error = full_response["estimate"] - full_response["truth"]
    spread = error.std(axis=0, ddof=1)
    assert (np.abs(error.mean(axis=0)) < 0.1 * spread).all(), (error.mean(axis=0), spread)
    # and the reported SE is honest about that spread (within 15%)
    ratio = full_response["se"].mean(axis=0) / spread
    assert ((ratio > 0.85) & (ratio < 1.15)).all(), ratio


def test_margin_is_near_the_pollsters_one_point() -> None:
    """500 TPS of ~170 valid votes in a heterogeneous province: a margin of a few points."""
    result = run(20)
    margin = estimate.Z95 * result["se"][:, :3].mean()
    assert 0.005 < margin < 0.05


def test_random_nonresponse_within_strata_keeps_coverage() -> None:
    """Live: only 60% of the sample in, at random within strata; intervals widen, still cover."""
    result = run(300, response=0.6, seed=7)
    rates = result["covered"].mean(axis=0)
    assert ((rates >= 0.91) & (rates <= 0.99)).all(), rates
