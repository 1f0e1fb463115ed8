"""Simulated Kalimantan Selatan elections to measure the quick count's promises.

Used by ``bench/quickcount_coverage.py`` (1,000+ runs per scenario, figures in the README) and
by the test suite (fewer runs, tolerances that fit their noise). Each run: a fresh election on a
fixed frame, a fresh sample drawn by ``design.draw_frame`` (what ``smsgate sample draw`` uses),
a reporting pattern, and ``analysis.analyse`` (what ``smsgate quickcount`` uses).

The frame is shaped like Kalimantan Selatan: 11 kabupaten and 2 kota, about 150 kecamatan,
2,000 desa/kelurahan (kelurahan codes 1xxx in the kota and kecamatan seats, desa 2xxx) and
about 13,600 TPS of 120-300 registered voters.

An election: three pairs (about 25/58/17%); each pair's logit has a kabupaten, a kecamatan and
a desa effect, an urban (kelurahan) effect, and a station effect. The previous election shares
the regional and urban effects but not the station effect, plus a swing: station-level shares
then correlate about 0.8 between the two elections (the run measures and prints it). Turnout
varies by kabupaten and station; about 3% of ballots are invalid; 30% of the reports give no TS.

Reporting patterns: ``all`` (every sampled station in), ``random`` (a share in, at random),
``late`` (a share in; rural desa and the 02 pair's strongholds come last: the reporting order
is a noisy score that rises for kelurahan and falls with the pair's regional strength).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import analysis, design, estimate

BASE_LOGITS = np.array([-0.35, 0.55, -0.45])
CANDIDATES = ["01", "02", "03"]
URBAN = np.array([0.45, -0.35, 0.0])
SWING = np.array([0.1, -0.05, -0.1])
STATION_SD = 0.25
TS_GIVEN = 0.7


@dataclass(frozen=True)
class Frame:
    station_ids: np.ndarray
    kab: np.ndarray
    kec: np.ndarray
    desa: np.ndarray
    kelurahan: np.ndarray
    registered: np.ndarray
    n_kab: int
    n_kec: int
    n_desa: int

    @property
    def strata(self) -> np.ndarray:
        return np.array([f"{s[:2]}.{s[2:4]}" for s in self.station_ids])


def build_frame(seed: int = 63, scale: float = 1.0) -> Frame:
    """The Kalimantan-Selatan-like frame (``scale`` < 1 shrinks it for quick tests)."""
    rng = np.random.default_rng(seed)
    kab_codes = [f"{k:02d}" for k in range(1, 12)] + ["71", "72"]
    ids, kab, kec, desa, kel, reg = [], [], [], [], [], []
    n_kec = n_desa = 0
    for k, kab_code in enumerate(kab_codes):
        city = kab_code.startswith("7")
        for c in range(max(2, round((5 if city else 12) * scale))):
            n_kec += 1
            villages = max(2, round(rng.integers(12, 19) * scale))
            for d in range(villages):
                urban = city or d == 0
                code = (1001 if urban else 2001) + d
                n_desa += 1
                for t in range(int(rng.integers(3 if not urban else 8, 9 if not urban else 17))):
                    ids.append(f"63{kab_code}{c + 1:02d}{code}{t + 1:03d}")
                    kab.append(k)
                    kec.append(n_kec - 1)
                    desa.append(n_desa - 1)
                    kel.append(urban)
                    reg.append(int(rng.integers(120, 301)))
    order = np.argsort(ids)
    return Frame(
        station_ids=np.array(ids)[order],
        kab=np.array(kab)[order],
        kec=np.array(kec)[order],
        desa=np.array(desa)[order],
        kelurahan=np.array(kel)[order],
        registered=np.array(reg)[order],
        n_kab=len(kab_codes),
        n_kec=n_kec,
        n_desa=n_desa,
    )


@dataclass(frozen=True)
class Election:
    votes: np.ndarray
    invalid: np.ndarray
    previous: np.ndarray
    #: the 02 pair's regional strength (kabupaten + kecamatan + desa effect), for ``late``
    strength: np.ndarray

    @property
    def shares(self) -> np.ndarray:
        return self.votes.sum(axis=0) / self.votes.sum()


def simulate(frame: Frame, rng: np.random.Generator) -> Election:
    n = len(frame.station_ids)
    k = len(BASE_LOGITS)
    regional = (
        rng.normal(0, 0.4, (frame.n_kab, k))[frame.kab]
        + rng.normal(0, 0.25, (frame.n_kec, k))[frame.kec]
        + rng.normal(0, 0.3, (frame.n_desa, k))[frame.desa]
    )
    common = BASE_LOGITS + regional + np.outer(frame.kelurahan, URBAN)

    def votes_for(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        shares = np.exp(logits)
        shares /= shares.sum(axis=1, keepdims=True)
        turnout = 1 / (
            1 + np.exp(-(1.2 + rng.normal(0, 0.3, frame.n_kab)[frame.kab] + rng.normal(0, 0.4, n)))
        )
        cast = rng.binomial(frame.registered, turnout)
        invalid = rng.binomial(cast, 0.03)
        # multinomial by successive binomials (the same distribution, vectorised)
        left = cast - invalid
        votes = np.zeros((n, k), dtype=np.int64)
        rest = np.ones(n)
        for j in range(k - 1):
            votes[:, j] = rng.binomial(left, np.clip(shares[:, j] / np.maximum(rest, 1e-12), 0, 1))
            left = left - votes[:, j]
            rest = rest - shares[:, j]
        votes[:, k - 1] = left
        return votes, invalid

    votes, invalid = votes_for(common + rng.normal(0, STATION_SD, (n, k)))
    previous, _ = votes_for(common + SWING + rng.normal(0, STATION_SD, (n, k)))
    strength = regional[:, 1] - regional[:, [0, 2]].mean(axis=1)
    return Election(votes=votes, invalid=invalid, previous=previous, strength=strength)


@dataclass(frozen=True)
class Scenario:
    name: str
    pattern: str  # all | random | late
    response: float = 1.0
    previous: bool = True
    #: how strongly kelurahan report earlier / 02 strongholds later (``late`` only)
    urban: float = 2.0
    stronghold: float = 0.8
    domains: bool = False


SCENARIOS = [
    Scenario("all in", "all", domains=True),
    Scenario("random 80%", "random", 0.8),
    Scenario("random 60%", "random", 0.6),
    Scenario("late 80%", "late", 0.8),
    Scenario("late 60%", "late", 0.6),
    Scenario("late 80%, no previous", "late", 0.8, previous=False),
    Scenario("late 60%, no previous", "late", 0.6, previous=False),
]


def reporting(
    scenario: Scenario, frame: Frame, election: Election, chosen: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Which sampled stations are in."""
    size = len(chosen)
    if scenario.pattern == "all":
        return np.ones(size, dtype=bool)
    if scenario.pattern == "random":
        return rng.random(size) < scenario.response
    strength = election.strength[chosen]
    score = (
        scenario.urban * frame.kelurahan[chosen]
        - scenario.stronghold * strength / strength.std()
        + rng.logistic(0, 1, size)
    )
    return score >= np.quantile(score, 1 - scenario.response)


@dataclass
class Tally:
    """Per-run outcomes of one scenario."""

    error: list[np.ndarray] = field(default_factory=list)  # plain: candidates, lead, turnout
    covered: list[np.ndarray] = field(default_factory=list)
    adjusted_error: list[np.ndarray] = field(default_factory=list)  # candidates, lead
    adjusted_covered: list[np.ndarray] = field(default_factory=list)
    warned: list[bool] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    wrong_call: list[bool] = field(default_factory=list)
    correlation: list[float] = field(default_factory=list)
    #: small regions: (counted stations, covered by the t interval, covered by a normal one)
    domains: list[tuple[int, bool, bool]] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        error, covered = np.array(self.error), np.array(self.covered)
        out: dict[str, object] = {
            "runs": len(self.error),
            "coverage": covered.mean(axis=0),
            "bias": error.mean(axis=0),
            "warned": float(np.mean(self.warned)),
            "called": float(np.mean([c == "called" for c in self.calls])),
            "wrong_call": float(np.mean(self.wrong_call)),
            "correlation": float(np.mean(self.correlation)),
        }
        if self.adjusted_error:
            out["adjusted_coverage"] = np.array(self.adjusted_covered).mean(axis=0)
            out["adjusted_bias"] = np.array(self.adjusted_error).mean(axis=0)
        if self.domains:
            d = np.array(self.domains)
            bins = {"2-4": (2, 4), "5-9": (5, 9), "10-19": (10, 19), "20+": (20, 10**9)}
            domains: dict[str, tuple[int, float, float]] = {}
            out["domains"] = domains
            for name, (low, high) in bins.items():
                mine = d[(d[:, 0] >= low) & (d[:, 0] <= high)]
                t_rate = float(mine[:, 1].mean()) if len(mine) else float("nan")
                z_rate = float(mine[:, 2].mean()) if len(mine) else float("nan")
                domains[name] = (len(mine), t_rate, z_rate)
        return out


def _inside(ratio: estimate.Ratio, truth: float) -> bool:
    low, high = ratio.ci95
    return bool(low <= truth <= high)


def run(scenario: Scenario, runs: int, *, frame: Frame, sample_size: int = 600, seed: int = 1) -> Tally:
    """``runs`` elections of ``scenario`` on ``frame``, deterministic for a ``seed``."""
    rng = np.random.default_rng([seed, sum(map(ord, scenario.name))])
    strata_labels = frame.strata
    tally = Tally()
    for number in range(runs):
        election = simulate(frame, rng)
        chosen, summary = design.draw_frame(
            strata_labels, frame.registered, sample_size, seed=int(rng.integers(2**31))
        )
        codes = sorted(summary)
        position = {code: i for i, code in enumerate(codes)}
        counted = reporting(scenario, frame, election, chosen, rng)
        invalid = election.invalid[chosen].astype(float)
        invalid[rng.random(len(chosen)) > TS_GIVEN] = np.nan
        previous = election.previous[chosen].astype(float) if scenario.previous else None
        desa_votes = np.column_stack(
            [np.bincount(frame.desa, weights=c, minlength=frame.n_desa) for c in election.previous.T]
        )
        desa_share = desa_votes / np.maximum(desa_votes.sum(axis=1, keepdims=True), 1)
        desa_previous = (
            desa_share[frame.desa[chosen]] * previous.sum(axis=1, keepdims=True)
            if previous is not None
            else None
        )
        sample = analysis.Sample(
            candidates=CANDIDATES,
            strata=codes,
            population=np.array([summary[c][0] for c in codes]),
            stratum_registered=np.array([summary[c][2] for c in codes]),
            station_ids=frame.station_ids[chosen],
            unit_stratum=np.array([position[c] for c in strata_labels[chosen]]),
            counted=counted,
            disputed=np.zeros(len(chosen), dtype=bool),
            votes=election.votes[chosen].astype(float),
            invalid=invalid,
            registered=frame.registered[chosen].astype(float),
            domain=np.ones(len(chosen), dtype=bool),
            previous_votes=previous,
            previous_valid=None if previous is None else previous.sum(axis=1),
            desa_previous_votes=desa_previous,
            desa_previous_valid=None if previous is None else previous.sum(axis=1),
        )
        found = analysis.analyse(sample)
        result = found.result
        assert result.shares is not None and result.lead is not None and result.turnout is not None
        truth_shares = election.shares
        first, second = result.lead.first, result.lead.second
        truth_lead = truth_shares[first] - truth_shares[second]
        truth_turnout = (election.votes.sum() + election.invalid.sum()) / frame.registered.sum()
        ratios = [*result.shares.ratios, result.lead.ratio, result.turnout.ratios[0]]
        truth = np.array([*truth_shares, truth_lead, truth_turnout])
        tally.error.append(np.array([r.value for r in ratios]) - truth)
        tally.covered.append(np.array([_inside(r, t) for r, t in zip(ratios, truth, strict=True)]))
        if found.adjusted is not None:
            adjusted = found.adjusted.ratios
            tally.adjusted_error.append(np.array([r.value for r in adjusted]) - truth[:-1])
            tally.adjusted_covered.append(
                np.array([_inside(r, t) for r, t in zip(adjusted, truth[:-1], strict=True)])
            )
        tally.warned.append("nonresponse_bias" in found.warnings)
        tally.calls.append(found.call)
        true_leader = int(np.argmax(truth_shares))
        tally.wrong_call.append(found.call == "called" and first != true_leader)
        shares_now = election.votes / np.maximum(election.votes.sum(axis=1, keepdims=True), 1)
        shares_then = election.previous / np.maximum(election.previous.sum(axis=1, keepdims=True), 1)
        tally.correlation.append(float(np.corrcoef(shares_now[:, 1], shares_then[:, 1])[0, 1]))
        if scenario.domains and number % 4 == 0:
            _domains(tally, frame, election, sample, chosen)
    return tally


def _domains(
    tally: Tally, frame: Frame, election: Election, sample: analysis.Sample, chosen: np.ndarray
) -> None:
    """Every kecamatan as a region: is the 02 share covered where an interval is shown?"""
    kec = frame.kec[chosen]
    use = sample.counted
    valid = sample.votes.sum(axis=1)
    for region in np.unique(kec):
        inside = kec == region
        count = int((inside & use).sum())
        if count < 2:
            continue
        found = estimate.ratio_estimate(
            sample.strata,
            sample.population,
            sample.unit_stratum[use],
            sample.votes[use],
            valid[use],
            inside[use],
            analysis.kecamatan_of(sample.station_ids[use]),
            np.bincount(sample.unit_stratum, minlength=len(sample.strata)),
        )
        if found is None:
            continue
        mine = frame.kec == region
        truth = election.votes[mine, 1].sum() / election.votes[mine].sum()
        ratio = found.ratios[1]
        normal = estimate.Ratio(ratio.value, ratio.se)
        tally.domains.append((count, _inside(ratio, truth), _inside(normal, truth)))
