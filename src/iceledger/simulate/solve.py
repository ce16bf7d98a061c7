"""Two solvers for one model, which must agree where both apply.

The model: each day, ICE arrests of each class (criminality x arrest setting) and field office
lead to book-ins with the class's book-in probability, and book-ins not from an ICE arrest come
at their own rate. A person booked in is held for a number of midnights drawn from the class's
length-of-stay curve and leaves by removal, voluntary departure, release or otherwise with the
shares of the class's book-outs at that length. People held when the simulation starts leave
along the same curve, given how long they have already been held.

- `steady_state`: Little's law. Held at once = book-ins per day x mean midnights per stay, and
  each outcome per day = book-ins per day x P(outcome); one answer per bootstrap replicate of
  the parameters, so the interval is the parameters' uncertainty. It says where a strategy
  settles, not how long it takes or what happens on the way.
- `simulate`: many runs on a day grid. Each run takes one bootstrap replicate of every
  parameter and draws each day's book-ins per class as Poisson counts; the people held at each
  midnight and the book-outs of each day are the day's and earlier days' book-ins convolved
  with the class's survival and departure curves (computed by FFT), plus the people held at the
  start. Transients, funded-bed overruns and time-varying arrests (the backtest) need this one.

Field offices share their class's curves, so an office's population is its share of each
class's book-ins times that class's population; which office an arrest falls in is not drawn at
random.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import cached_property
from datetime import date, timedelta

import numpy as np

from iceledger.errors import IceledgerError
from iceledger.simulate.estimate import (
    OUTCOMES,
    Estimates,
    summarise_stays,
    survival,
    timeline_on,
)

INTERVAL = (5.0, 95.0)  # a 90% interval
DEFAULT_RUNS = 1000
CAPACITY_POLICIES = ("overrun", "turn-away")
# A survival below this is taken as none: dividing by it would give weights whose sums by FFT
# swamp every other term's precision.
SURVIVAL_FLOOR = 1e-9
REMOVED = OUTCOMES.index("removed")
RELEASED = OUTCOMES.index("released")

MEASURES = {
    "population": "people held at 00:00 (midnight count), each day",
    "bed_days": "bed-days: one person held at one midnight",
    "over_funded_beds": "people held beyond the funded beds (0 when within them)",
    "cost_usd": "bed-days x the daily bed rate in force (cost_rates.csv)",
    "removals": "book-outs by removal",
    "removals_convicted": "removals of people classed Convicted Criminal at book-in",
    "removals_violent": "removals of people with a conviction ICE classes violent",
    "released": "people held who were then released from custody (bond, recognizance, parole, ...)",
    "book_ins": "book-ins into ICE detention",
}
RATIOS = {
    "cost_per_removal_usd": ("cost_usd", "removals"),
    "cost_per_violent_removal_usd": ("cost_usd", "removals_violent"),
}


@dataclass(frozen=True)
class Scenario:
    """What a strategy changes: the daily ICE arrests and, through policy, the parameters.

    Arrests are given as two views of one (T, F, C) array (days, offices, classes), so that no
    run needs the whole of it: per day and class, and per office and class summed over the days
    (for each office's share of a class). Either may carry a leading replicate axis when the mix
    is itself an estimate."""

    name: str
    description: str
    days: int
    arrests_by_class: np.ndarray  # (T, C) or (R, T, C): ICE arrests per day
    arrests_by_office: np.ndarray  # (F, C) or (R, F, C): over the days, per office
    estimates: Estimates
    book_in: np.ndarray | None = None  # (R, C); None: the estimated probabilities
    leave: np.ndarray | None = None  # policy-modified curves; None: the estimated ones
    outcome_share: np.ndarray | None = None
    no_arrest_scale: float = 1.0  # book-ins not from an ICE arrest, as a multiple of observed
    assumptions: tuple[str, ...] = ()
    beds: float | None = None  # funded beds for every day; None: capacity.csv's, where sourced

    @classmethod
    def from_daily(cls, arrests: np.ndarray, **fields) -> Scenario:
        """From arrests per day, office and class: (T, F, C) or (R, T, F, C)."""
        return cls(days=arrests.shape[-3], arrests_by_class=arrests.sum(axis=-2),
                   arrests_by_office=arrests.sum(axis=-3), **fields)

    @property
    def dates(self) -> list[date]:
        return [self.estimates.start + timedelta(days=t) for t in range(self.days)]

    def curves(self) -> tuple[np.ndarray, np.ndarray]:
        e = self.estimates
        return (e.leave if self.leave is None else self.leave,
                e.outcome_share if self.outcome_share is None else self.outcome_share)

    @cached_property
    def stay_summary(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean midnights per stay (R, C), P(outcome) (R, C, O)) of the scenario's curves."""
        if self.leave is None and self.outcome_share is None:
            return self.estimates.stay_summary
        return summarise_stays(*self.curves())

    def book_in_rates(self) -> np.ndarray:
        """(R, C): book-in probability per ICE arrest; 0 for the no-ICE-arrest classes."""
        rates = self.estimates.book_in if self.book_in is None else self.book_in
        return np.nan_to_num(rates)

    def _per_replicate(self, values: np.ndarray, ndim: int, replicates: np.ndarray):
        if values.ndim == ndim + 1:
            return values[replicates]
        return np.broadcast_to(values, (len(replicates),) + values.shape)

    def book_ins_by_class(self, replicates: np.ndarray) -> np.ndarray:
        """Expected book-ins per day (len(replicates), T, C)."""
        arrests = self._per_replicate(self.arrests_by_class, 2, replicates)
        other = self.estimates.no_arrest_book_ins[replicates].sum(axis=1) * self.no_arrest_scale
        return arrests * self.book_in_rates()[replicates][:, None] + other[:, None]

    def book_ins_by_office(self, replicates: np.ndarray) -> np.ndarray:
        """Expected book-ins over the days (len(replicates), F, C)."""
        arrests = self._per_replicate(self.arrests_by_office, 2, replicates)
        other = self.estimates.no_arrest_book_ins[replicates] * self.no_arrest_scale
        return arrests * self.book_in_rates()[replicates][:, None] + other * self.days

    def rates(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(cost per bed-day per day, funded beds per day, their sources)."""
        cost, cost_sources = timeline_on("cost_rates.csv", "rate_usd_per_day", self.dates)
        if self.beds is not None:
            return cost, np.full(self.days, float(self.beds)), [
                *cost_sources, f"funded beds: {self.beds:,.0f}, as given"]
        beds, bed_sources = timeline_on("capacity.csv", "funded_beds", self.dates)
        return cost, beds, [*cost_sources, *bed_sources]


@dataclass
class Result:
    """Per measure: runs x days (simulate) or replicates (steady state)."""

    scenario: Scenario
    solver: str
    values: dict[str, np.ndarray]
    sources: list[str]
    notes: list[str] = field(default_factory=list)
    office_population: np.ndarray | None = None  # (runs, T, F), simulate only

    def interval(self, values: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray,
                                                                   np.ndarray]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN days: not measurable
            low, mid, high = np.nanpercentile(values, [INTERVAL[0], 50.0, INTERVAL[1]],
                                              axis=axis)
        return mid, low, high

    def totals(self) -> dict[str, np.ndarray]:
        """Horizon totals per run (population: its mean over the horizon and its last day)."""
        out: dict[str, np.ndarray] = {}
        for name, values in self.values.items():
            if name == "population":
                out["mean_population"] = values.mean(axis=-1)
                out["final_population"] = values[..., -1]
            else:
                out[name] = values.sum(axis=-1)
        for ratio, (top, bottom) in RATIOS.items():
            with np.errstate(invalid="ignore", divide="ignore"):
                out[ratio] = np.where(out[bottom] > 0, out[top] / out[bottom], np.nan)
        return out


def _runs_replicates(estimates: Estimates, runs: int) -> np.ndarray:
    """Run r uses bootstrap replicate 1 + r mod B (replicate 0 is the point estimate)."""
    bootstrap = estimates.replicates - 1
    if bootstrap < 1:
        return np.zeros(runs, dtype=int)
    return 1 + np.arange(runs) % bootstrap


def steady_state(scenario: Scenario) -> Result:
    """Little's law per replicate, with arrests at their mean over the scenario's days.

    Values are per day (a steady state has no horizon); row 0 is the point estimate."""
    e = scenario.estimates
    replicates = np.arange(e.replicates)
    per_day = scenario.book_ins_by_class(replicates).mean(axis=1)  # (R, C)
    stay, ends = scenario.stay_summary
    population = (per_day * stay).sum(axis=-1)
    cost_rate, beds, sources = scenario.rates()
    removals = per_day * ends[..., REMOVED]
    values = {
        "population": population,
        "bed_days": population,
        "over_funded_beds": np.maximum(population - beds[-1], 0.0),
        "cost_usd": population * cost_rate[-1],
        "removals": removals.sum(-1),
        "removals_convicted": removals[:, e.convicted].sum(-1),
        "removals_violent": (removals * e.violent_share).sum(-1),
        "released": (per_day * ends[..., RELEASED]).sum(-1),
        "book_ins": per_day.sum(-1),
    }
    for ratio, (top, bottom) in RATIOS.items():
        with np.errstate(invalid="ignore", divide="ignore"):
            values[ratio] = np.where(values[bottom] > 0, values[top] / values[bottom], np.nan)
    return Result(scenario, "steady state", values, sources, _bed_notes(beds))


def _kernels(leave: np.ndarray, shares: np.ndarray, days: int):
    """Survival S(k) for k = 0..MAX_AGE + days and book-out probability by outcome, the last
    band's hazard carried on past the age grid."""
    tail = np.repeat(leave[..., -1:], days + 1, axis=-1)
    long_leave = np.concatenate([leave, tail], axis=-1)
    long_shares = np.concatenate([shares, np.repeat(shares[..., -1:], days + 1, axis=-1)], -1)
    held = survival(long_leave)  # (R, C, A + 1)
    out = (held[..., :-1] * long_leave)[..., None, :] * long_shares  # (R, C, O, A)
    return held, out


def _fft_size(days: int) -> int:
    size = 1
    while size < 2 * days:
        size *= 2
    return size


def simulate(scenario: Scenario, runs: int = DEFAULT_RUNS, seed: int = 0,
             batch: int = 250, expected: bool = False, capacity: str = "overrun") -> Result:
    """`runs` stochastic runs over the scenario's days (see the module docstring).

    expected=True: one run on the point estimates with each day's expected book-ins instead of
    a draw: the expected path, day by day (no interval).
    capacity: "overrun" holds everyone and reports the people beyond the funded beds;
    "turn-away" books in, each day, only as many as the beds free at the next midnight can take
    (all classes alike), and counts the rest as turned_away."""
    if capacity not in CAPACITY_POLICIES:
        raise IceledgerError(f"capacity {capacity!r}: use {' or '.join(CAPACITY_POLICIES)}")
    e = scenario.estimates
    days = scenario.days
    n = _fft_size(days)
    replicate_of_run = np.zeros(1, dtype=int) if expected else _runs_replicates(e, runs)
    runs = len(replicate_of_run)
    used = np.unique(replicate_of_run)
    leave, shares = scenario.curves()
    held, out = _kernels(leave[used], shares[used], days)
    out = out[:, :, [REMOVED, RELEASED]]  # the outcomes the outputs count
    # People held at the start: those held k midnights are held at k + t with S(k + t) / S(k).
    start_held = e.held_at_start.sum(axis=0)  # (C, A)
    oldest = int(np.flatnonzero(start_held.any(axis=0)).max(initial=0)) + 1
    weight = _start_weights(start_held[:, :oldest], held[..., :oldest])  # (U, C, K)
    initial = _correlate(weight, held[..., :oldest + days], days)  # (U, C, T)
    initial_out = _correlate(weight[:, :, None], out[..., :oldest + days], days)  # (U, C, 2, T)
    office_share_start = _shares(e.held_at_start.sum(axis=-1).T).T  # (F, C), over offices

    kernel_hat = np.fft.rfft(np.concatenate(
        [np.zeros_like(held[..., :1]), held[..., 1:days]], axis=-1), n=n)  # (U, C, f)
    out_hat = np.fft.rfft(out[..., :days], n=n)  # (U, C, 2, f)
    cost_rate, beds, sources = scenario.rates()
    turn_away = capacity == "turn-away"
    if turn_away and not np.isfinite(beds).all():
        raise IceledgerError("turning people away at capacity needs a funded-bed count for every "
                             "day simulated; capacity.csv has none for some: give one with --beds N")
    convicted = e.convicted
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in MEASURES}
    if turn_away:
        parts["turned_away"] = []
    offices: list[np.ndarray] = []
    for first in range(0, runs, batch):
        replicates = replicate_of_run[first:first + batch]
        slot = np.searchsorted(used, replicates)
        admitted = scenario.book_ins_by_class(replicates)
        if not expected:
            admitted = rng.poisson(admitted).astype(float)
        if turn_away:
            wanted = admitted
            admitted = _within_beds(wanted, held[slot], initial[slot].sum(axis=1), beds)
            parts["turned_away"].append((wanted - admitted).sum(axis=-1))
        admitted_hat = np.fft.rfft(np.moveaxis(admitted, 1, -1), n=n)  # (b, C, f)
        population_by_class = np.fft.irfft(admitted_hat * kernel_hat[slot], n=n)[..., :days]
        population_by_class = np.maximum(population_by_class, 0.0) + initial[slot]
        leaving = np.fft.irfft(admitted_hat[:, :, None] * out_hat[slot], n=n)[..., :days]
        leaving = np.maximum(leaving, 0.0) + initial_out[slot]  # (b, C, O, T)
        population = population_by_class.sum(axis=1)
        removals = leaving[:, :, 0]
        parts["population"].append(population)
        parts["bed_days"].append(population)
        parts["over_funded_beds"].append(np.maximum(population - beds, 0.0))
        parts["cost_usd"].append(population * cost_rate)
        parts["removals"].append(removals.sum(axis=1))
        parts["removals_convicted"].append(removals[:, convicted].sum(axis=1))
        parts["removals_violent"].append(
            (removals * e.violent_share[replicates][..., None]).sum(axis=1))
        parts["released"].append(leaving[:, :, 1].sum(axis=1))
        parts["book_ins"].append(admitted.sum(axis=-1))
        # An office's population: its share of each class's book-ins (and of those held at the
        # start) times the class's population.
        arrivals_share = _shares(scenario.book_ins_by_office(replicates).transpose(0, 2, 1))
        from_arrivals = population_by_class - initial[slot]
        by_office = np.matmul(arrivals_share.transpose(0, 2, 1), from_arrivals) \
            + np.matmul(office_share_start, initial[slot])  # (b, F, T)
        offices.append(by_office.transpose(0, 2, 1).astype(np.float32))
    values = {name: np.concatenate(chunks) for name, chunks in parts.items()}
    notes = _bed_notes(beds) + ([
        "Capacity enforced (turn-away): each day, book-ins beyond the funded beds free at the "
        "next midnight are not made (all classes alike) and count as turned_away; the steady "
        "state does not enforce capacity."] if turn_away else [])
    return Result(scenario, "expected path" if expected else "stochastic", values, sources,
                  notes,
                  office_population=np.concatenate(offices))


def _within_beds(wanted: np.ndarray, held: np.ndarray, initial: np.ndarray,
                 beds: np.ndarray) -> np.ndarray:
    """Book-ins (b, T, C) cut, day by day, to what the beds free at the next midnight take.

    Day t's book-ins are first counted at midnight t + 1 (a share S(1) of them still held); the
    population expected there from everyone booked in before is known, so the day's book-ins
    are scaled (every class alike) to fill the free beds and no more. Sequential in days,
    vectorised over runs: each day adds its book-ins' survival to the later midnights."""
    days = wanted.shape[1]
    survival_after = held[..., 1:days + 1]  # S(1..T): (b, C, T)
    future = initial.copy()  # (b, T): people held each midnight, from book-ins so far
    admitted = wanted.copy()
    for t in range(days - 1):
        first_night = (wanted[:, t] * survival_after[:, :, 0]).sum(axis=-1)
        free = np.maximum(beds[t + 1] - future[:, t + 1], 0.0)
        scale = np.divide(free, first_night, out=np.ones_like(free), where=first_night > free)
        admitted[:, t] = wanted[:, t] * scale[:, None]
        future[:, t + 1:] += np.einsum("bc,bct->bt", admitted[:, t],
                                       survival_after[:, :, :days - t - 1])
    return admitted


def _start_weights(start_held: np.ndarray, held: np.ndarray) -> np.ndarray:
    """start_held[c, k] / held[u, c, k]: people held k midnights at the start, over the share of
    stays still held then, so that weight x held[k + t] is how many of them are held t days on.

    A replicate whose redraw kept no stay as long as someone already held has no survival at that
    age (a division by zero); those people go on as if held the longest time the replicate's
    curve still reaches, rather than as an infinite weight that would overflow every day's sum.
    """
    reached = held > SURVIVAL_FLOOR
    ages = np.arange(held.shape[-1])
    last = np.maximum.accumulate(np.where(reached, ages, 0), axis=-1)
    moved = np.zeros(held.shape)
    replicate, kind, _ = np.indices(held.shape)
    np.add.at(moved, (replicate, kind, last), np.broadcast_to(start_held, held.shape))
    return np.divide(moved, held, out=np.zeros(held.shape), where=reached)


def _correlate(weight: np.ndarray, curve: np.ndarray, days: int) -> np.ndarray:
    """sum over k of weight[..., k] * curve[..., k + t], for t < days (by FFT)."""
    ages = weight.shape[-1]
    size = 1
    while size < ages + curve.shape[-1]:
        size *= 2
    flipped = np.fft.rfft(weight[..., ::-1], n=size)
    full = np.fft.irfft(flipped * np.fft.rfft(curve, n=size), n=size)
    return np.maximum(full[..., ages - 1:ages - 1 + days], 0.0)


def _bed_notes(beds: np.ndarray) -> list[str]:
    if np.isfinite(beds).all():
        return []
    return ["capacity.csv has no sourced funded-bed count in force on some or all of the days "
            "simulated: over_funded_beds is not measurable on them (give one with --beds N)"]


def _shares(counts: np.ndarray) -> np.ndarray:
    """Shares along the last axis; all-zero rows stay zero."""
    total = counts.sum(axis=-1, keepdims=True)
    return np.divide(counts, total, out=np.zeros_like(counts, dtype=float), where=total > 0)
