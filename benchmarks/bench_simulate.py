"""Speed of the strategy simulator's two solvers, on a SYNTHETIC model at national scale.

    python benchmarks/bench_simulate.py [--runs N] [--days N] [--offices N] [--repeats N]

Builds the model's parameters in memory (SYNTHETIC: invented stays, not ICE records): 12
classes, 25 field offices, 200 bootstrap replicates of length-of-stay curves drawn from
lognormal stays (median 20 to 45 days), 60,000 people held at the start, 3,000 ICE arrests a
day. Prints, with the targets beside them:

1. the stochastic solver: 1,000 runs x 365 days x 25 field offices (target: <= 10 s), and as a
   cross-check the population of 50 runs by a direct per-run, per-class convolution
   (numpy.convolve) beside the solver's FFT;
2. the steady state (Little's law) for a new parameter set (a new arrest rate and mix, the
   curves' summaries already computed), median of --repeats (target: <= 50 ms); and the same
   when a policy changes the curves themselves (their summaries recomputed).

The machine is shared: the load average and the process's CPU time are printed with the wall
times (on a loaded machine, the wall time is several times the CPU time).
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from datetime import date

import numpy as np

from iceledger.simulate.estimate import (
    MAX_AGE,
    NO_ICE_ARREST,
    OUTCOMES,
    Estimates,
    life_table,
)
from iceledger.simulate.solve import Scenario, simulate, steady_state
from iceledger.simulate.strategies import with_bond

CRIMINALITY = ("Convicted Criminal", "Pending Criminal Charges", "Other Immigration Violator")
SETTINGS = ("custodial", "at-large", "other", NO_ICE_ARREST)
REPLICATES = 200
HELD_AT_START = 60_000
ARRESTS_PER_DAY = 3_000


def synthetic_model(offices: int, seed: int = 0) -> Estimates:
    rng = np.random.default_rng(seed)
    classes = tuple((c, s) for c in CRIMINALITY for s in SETTINGS)
    n = len(classes)
    ended = np.zeros((n, len(OUTCOMES), MAX_AGE + 2))
    censored = np.zeros((n, MAX_AGE + 2))
    for c in range(n):
        median = rng.uniform(20, 45)
        stays = np.minimum(np.round(rng.lognormal(np.log(median), 1.0, 20_000)), MAX_AGE + 1)
        stays = stays.astype(int)
        open_stay = rng.random(stays.size) < 0.05
        outcome = rng.choice(len(OUTCOMES), stays.size, p=[0.55, 0.05, 0.3, 0.1])
        np.add.at(ended, (c, outcome[~open_stay], stays[~open_stay]), 1)
        np.add.at(censored, (c, stays[open_stay]), 1)
    redrawn = rng.poisson(ended, (REPLICATES,) + ended.shape).astype(float)
    recensored = rng.poisson(censored, (REPLICATES,) + censored.shape).astype(float)
    leave, shares = life_table(np.concatenate([ended[None], redrawn]),
                               np.concatenate([censored[None], recensored]))
    held = np.zeros((offices, n, MAX_AGE))
    ages = np.minimum(rng.geometric(1 / 40, HELD_AT_START), MAX_AGE - 1)
    np.add.at(held, (rng.integers(0, offices, HELD_AT_START), rng.integers(0, n, HELD_AT_START),
                     ages), 1)
    arrest_classes = np.array([s != NO_ICE_ARREST for _, s in classes])
    mix = rng.dirichlet(np.ones(offices * n)).reshape(offices, n) * arrest_classes
    mix /= mix.sum()
    book_in = np.where(arrest_classes, rng.uniform(0.6, 0.95, (REPLICATES + 1, n)), np.nan)
    return Estimates(
        classes=classes, offices=tuple(f"AOR {i:02d}" for i in range(offices)),
        start=date(2026, 1, 1), leave=leave, outcome_share=shares,
        book_in=book_in, violent_share=rng.uniform(0, 0.3, (REPLICATES + 1, n)),
        no_arrest_book_ins=rng.uniform(0, 20, (REPLICATES + 1, offices, n)) * ~arrest_classes,
        held_at_start=held, weekly_arrests=np.zeros((0, offices, n)),
        recent_arrests=mix * ARRESTS_PER_DAY,
    )


def scenario(e: Estimates, days: int, per_day: np.ndarray, **fields) -> Scenario:
    return Scenario(name="bench", description="SYNTHETIC", days=days,
                    arrests_by_class=np.repeat(per_day.sum(0)[None], days, axis=0),
                    arrests_by_office=per_day * days, estimates=e, **fields)


def direct_population(s: Scenario, runs: int, seed: int = 0) -> np.ndarray:
    """Population by a direct convolution per run and class (the same model and draws, no FFT)."""
    from iceledger.simulate.estimate import survival
    from iceledger.simulate.solve import _runs_replicates

    rng = np.random.default_rng(seed)
    replicates = _runs_replicates(s.estimates, runs)
    out = np.zeros((runs, s.days))
    for r, rep in enumerate(replicates):
        admitted = rng.poisson(s.book_ins_by_class(np.array([rep]))[0])  # (T, C)
        held = survival(s.estimates.leave[rep])  # (C, A + 1)
        for c in range(admitted.shape[1]):
            kernel = np.concatenate([[0.0], held[c, 1:s.days]])
            out[r] += np.convolve(admitted[:, c], kernel)[:s.days]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--offices", type=int, default=25)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()

    print(f"SYNTHETIC model: {args.offices} field offices, 12 classes, {REPLICATES} bootstrap "
          f"replicates, {HELD_AT_START:,} held at the start, {ARRESTS_PER_DAY:,} arrests a day")
    e = synthetic_model(args.offices)
    s = scenario(e, args.days, e.recent_arrests)
    e.stay_summary  # the curves' summaries, computed once per fitted model
    began, cpu = time.perf_counter(), time.process_time()
    result = simulate(s, runs=args.runs)
    took, cpu = time.perf_counter() - began, time.process_time() - cpu
    shape = result.office_population.shape
    print(f"1. stochastic: {args.runs:,} runs x {args.days} days x {shape[-1]} field offices: "
          f"{took:.2f} s (target <= 10 s) {'✓' if took <= 10 else '✗'}; CPU time "
          f"{cpu:.2f} s; load {os.getloadavg()[0]:.1f}")
    sample = min(50, args.runs)
    arrivals_only = scenario(replace(e, held_at_start=np.zeros_like(e.held_at_start)),
                             args.days, e.recent_arrests)
    direct = direct_population(arrivals_only, sample)
    by_fft = simulate(arrivals_only, runs=sample).values["population"]
    gap = np.abs(np.median(direct, 0) - np.median(by_fft, 0))[1:].max() / by_fft[:, -1].mean()
    print(f"   cross-check: the population of {sample} runs by a direct convolution per run and "
          f"class (numpy.convolve, arrivals only, the same random draws) and by the solver's "
          f"FFT: medians agree within "
          f"{gap:.2%} of the last day's population")

    rng = np.random.default_rng(1)
    cpu = time.process_time()
    timings = []
    for _ in range(args.repeats):
        per_day = e.recent_arrests * rng.uniform(0.5, 2.0, e.recent_arrests.shape)
        began = time.perf_counter()
        steady_state(scenario(e, args.days, per_day))
        timings.append(time.perf_counter() - began)
    median = float(np.median(timings)) * 1000
    cpu = (time.process_time() - cpu) / args.repeats * 1000
    print(f"2. steady state, a new arrest rate and mix: median {median:.1f} ms over "
          f"{args.repeats} (target <= 50 ms) {'✓' if median <= 50 else '✗'}; CPU time "
          f"{cpu:.1f} ms each on average")
    timings = []
    cpu = time.process_time()
    for repeat in range(max(3, args.repeats // 10)):
        began = time.perf_counter()
        leave, shares = with_bond(e, 0.1 + 0.01 * repeat, 7)
        steady_state(scenario(e, args.days, e.recent_arrests, leave=leave, outcome_share=shares))
        timings.append(time.perf_counter() - began)
    cpu = (time.process_time() - cpu) / len(timings) * 1000
    median = float(np.median(timings)) * 1000
    print(f"   a new policy (release on bond), curves recomputed: median {median:.1f} ms over "
          f"{len(timings)} (target <= 50 ms) {'✓' if median <= 50 else '✗'}; CPU time "
          f"{cpu:.1f} ms each on average; load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
