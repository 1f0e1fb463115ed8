"""Does the quick count keep its promises? Coverage and bias over simulated elections.

Each run is a fresh simulated Kalimantan Selatan election (``smsgate.quickcount.scenarios``:
13 kabupaten/kota, ~140 kecamatan, ~2,100 desa/kelurahan, ~13,500 TPS; a previous election
correlated ~0.8 with this one at station level; 30% of reports without TS), a fresh
600-station sample drawn by ``design.draw_frame`` (what ``smsgate sample draw`` runs), a
reporting pattern, and ``analysis.analyse`` (what ``smsgate quickcount`` runs). Printed, per
scenario: how often the 95% interval holds the truth (each candidate, the lead, turnout) for the
plain estimate and for the adjusted one, the mean error in points (bias), how often
``nonresponse_bias`` fired, how often the result was called and called wrongly; then small
regions (each kecamatan as a region): coverage by number of counted stations, with Student's t
(what is shown) beside the normal quantile (what was shown before).

    .venv/bin/python bench/quickcount_coverage.py [--runs 1000] [--sample 600] [--seed 1]

The test suite (tests/quickcount/test_simulation.py) runs the same scenarios with 120 runs.
CPU-bound (numpy); about 0.1 s per run on one core.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from smsgate.quickcount import estimate, scenarios


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def points(x: float) -> str:
    return f"{100 * x:+.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000, help="elections per scenario (default 1000)")
    parser.add_argument("--sample", type=int, default=600, help="sample stations (default 600)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scenario", action="append", help="only these scenarios (by name; repeatable)")
    args = parser.parse_args()
    frame = scenarios.build_frame()
    chosen = [s for s in scenarios.SCENARIOS if not args.scenario or s.name in args.scenario]
    command = f"bench/quickcount_coverage.py --runs {args.runs} --sample {args.sample} --seed {args.seed}"
    print(f"$ .venv/bin/python {command}")
    print(
        f"frame: {len(frame.station_ids):,} TPS, {frame.n_kab} kabupaten/kota, {frame.n_kec} kecamatan, "
        f"{frame.n_desa:,} desa/kelurahan ({frame.kelurahan.mean():.0%} of TPS in kelurahan); "
        f"sample {args.sample}; {args.runs} runs per scenario; "
        f"indicative below {estimate.MIN_STATIONS} stations"
    )
    results = []
    for scenario in chosen:
        started = time.perf_counter()
        summary = scenarios.run(
            scenario, args.runs, frame=frame, sample_size=args.sample, seed=args.seed
        ).summary()
        results.append((scenario, summary, time.perf_counter() - started))
        print(f"  {scenario.name}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    rho = np.mean([s["correlation"] for _, s, _ in results])
    print(f"station-level correlation of the 02 share with the previous election: {rho:.2f}")
    print()
    print("95% coverage, plain estimate (target 92-98%) | bias in points (01 / 02 / 03 / lead / turnout)")
    print()
    print(
        "| scenario | 01 | 02 | 03 | lead | turnout "
        "| bias 01 | bias 02 | bias 03 | bias lead | bias turnout |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for scenario, s, _ in results:
        cov, bias = s["coverage"], s["bias"]
        print(
            f"| {scenario.name} | "
            + " | ".join(pct(c) for c in cov)
            + " | "
            + " | ".join(points(b) for b in bias)
            + " |"
        )
    print()
    print("adjusted estimate (weighting classes; regression on the previous result where imported),")
    print(
        "the nonresponse_bias warning (target: >= 90% where the plain bias exceeds 1 point, <= 5% at random),"
    )
    print("and the call")
    print()
    print(
        "| scenario | adj. 01 | adj. 02 | adj. 03 | adj. lead | adj. bias 01 | adj. bias 02 | adj. bias lead "
        "| warned | called | called wrongly |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for scenario, s, _ in results:
        cov = s.get("adjusted_coverage")
        bias = s.get("adjusted_bias")
        cells = [pct(c) for c in cov] if cov is not None else ["-"] * 4
        b = [points(bias[0]), points(bias[1]), points(bias[3])] if bias is not None else ["-"] * 3
        print(
            f"| {scenario.name} | "
            + " | ".join(cells)
            + " | "
            + " | ".join(b)
            + f" | {pct(s['warned'])} | {pct(s['called'])} | {pct(s['wrong_call'])} |"
        )
    for scenario, s, _ in results:
        if "domains" not in s:
            continue
        print()
        print(f"small regions ({scenario.name}; every kecamatan of every 4th run, 02's share):")
        print()
        print("| counted stations | regions | coverage with t (df = n - strata) | with the normal 1.96 |")
        print("|---|---|---|---|")
        for name, (count, t_rate, z_rate) in s["domains"].items():
            shown = "" if name != "2-4" else f" (indicative below {estimate.MIN_STATIONS}: no interval shown)"
            print(f"| {name}{shown} | {count:,} | {pct(t_rate)} | {pct(z_rate)} |")
    total = sum(seconds for _, _, seconds in results)
    print()
    print(f"{total:.0f} s in all (shared CPU; figures do not depend on speed)")


if __name__ == "__main__":
    main()
