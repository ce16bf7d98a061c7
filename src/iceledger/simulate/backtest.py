"""Backtest: fit before a cutoff (default 2025-05-21, the 3,000-a-day order), drive with what
was observed after it, and compare the simulated population with what was counted.

With FOIA records: the model of estimate.py is fitted on the records before the cutoff, driven
by the ICE arrests recorded after it (book-ins not from an ICE arrest are held at their rate
before the cutoff: they are not arrests, and the backtest drives with arrests only), and its
daily population is compared with the FOIA midnight population (detention.daily_population)
and, where the workbooks are loaded, with ICE's published average daily population per month.

With the workbooks only: no arrests, no person-level stays and no outcomes are published, so
the only model the records support is an aggregate flow: one class, book-ins as published per
month, and one mean stay fitted by Little's law (published ADP / published book-ins per day)
on the 12 whole months before the cutoff's month, resampled by month for its interval. It is
driven by published book-ins, not arrests, and compared with published ADP.

Error is the mean absolute percentage error (MAPE) of the median run; a day or month whose
observed value lies outside the 90% interval of the runs is a miss, and the summary says how
many there were.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import ibis
import numpy as np
from ibis.common.exceptions import TableNotFound

from iceledger.metrics.detention import daily_population, published_latest
from iceledger.metrics.published_series import SeriesSpec
from iceledger.metrics.registry import MetricParams
from iceledger.simulate.estimate import (
    MAX_AGE,
    NotMeasurable,
    OUTCOMES,
    Estimates,
    arrests_between,
    data_end,
    estimate,
    require_records,
)
from iceledger.simulate.solve import DEFAULT_RUNS, INTERVAL, Scenario, simulate
from iceledger.tables import (
    FOIA_STAYS,
    STATS_ADP,
    STATS_BOOK_INS,
    STATS_DETAINED_NOW,
    STATS_WORKBOOKS,
)

DEFAULT_CUTOFF = date(2025, 5, 21)
FIT_MONTHS = 12
# The published series the workbook backtest follows.
PUBLISHED_ADP = SeriesSpec(STATS_ADP, "adp", ("agency", "criminality"))
PUBLISHED_BOOK_INS = SeriesSpec(STATS_BOOK_INS, "book_ins", ("agency",))
FOIA_CANNOT = (
    "Book-ins not from an ICE arrest (CBP arrests, among others) are held at their rate before "
    "the cutoff; a change in them after it is an error the backtest shows, not one it models.",
)
WORKBOOKS_CANNOT = (
    "No FOIA records: arrests, the book-in probability of an arrest, length of stay by "
    "criminality and arrest setting, outcomes at book-out, removals of people with convictions "
    "and cost per removal are not measurable from these records, and no strategy can be "
    "simulated.",
    "The workbooks publish no arrests, so this backtest is driven by published book-ins (ICE "
    "and CBP), not arrests, with one mean stay for everyone (Little's law on published ADP and "
    "book-ins), stays ending at a constant rate.",
    "Months are the workbooks' unit: the simulation starts on the first day of the cutoff's "
    "month, from the published ADP of the month before.",
)


@dataclass
class Comparison:
    """One observed series against the simulated one, per day or month."""

    target: str  # what was observed
    unit: str  # "day" or "month"
    periods: list[date]
    observed: np.ndarray
    simulated: np.ndarray  # median of runs
    low: np.ndarray
    high: np.ndarray
    source: str

    @property
    def mape(self) -> float:
        valid = self.observed > 0
        return float(np.mean(np.abs(self.simulated[valid] - self.observed[valid])
                             / self.observed[valid]) * 100)

    @property
    def misses(self) -> int:
        return int(((self.observed < self.low) | (self.observed > self.high)).sum())

    def verdict(self) -> str:
        n = len(self.periods)
        width = f"{INTERVAL[1] - INTERVAL[0]:.0f}%"
        unmodelled = int(np.isnan(self.simulated).sum())
        if unmodelled:
            return (f"{self.target}: not measurable: the model gives no value for {unmodelled} "
                    f"of {n} {self.unit}s")
        if self.misses == 0:
            return (f"{self.target}: MAPE {self.mape:.1f}%; every {self.unit} lies inside the "
                    f"model's {width} interval")
        return (f"{self.target}: MAPE {self.mape:.1f}%; the model misses by more than its "
                f"{width} interval on {self.misses} of {n} {self.unit}s")


@dataclass
class Backtest:
    mode: str  # "foia" or "workbooks"
    cutoff: date
    start: date
    days: int
    comparisons: list[Comparison]
    can: list[str]
    cannot: list[str]
    assumptions: list[str] = field(default_factory=list)


def backtest(backend: ibis.BaseBackend, cutoff: date = DEFAULT_CUTOFF,
             runs: int = DEFAULT_RUNS, replicates: int = 200) -> Backtest:
    """The FOIA backtest where FOIA records are loaded, else the workbooks' aggregate one."""
    try:
        require_records(backend)
    except NotMeasurable as missing:
        if not _has_table(backend, PUBLISHED_ADP.table):
            raise
        return workbook_backtest(backend, cutoff, runs, replicates, str(missing))
    return foia_backtest(backend, cutoff, runs, replicates)


def _has_table(backend: ibis.BaseBackend, name: str) -> bool:
    try:
        backend.table(name)
    except TableNotFound:
        return False
    return True


def foia_backtest(backend: ibis.BaseBackend, cutoff: date, runs: int,
                  replicates: int) -> Backtest:
    end = data_end(backend)
    last = end - timedelta(days=1)
    if last < cutoff:
        raise NotMeasurable(f"the records end on {end}, before the backtest's cutoff {cutoff}")
    fitted = estimate(backend, start=cutoff, replicates=replicates)
    days = (last - cutoff).days + 1
    by_class, by_office, unmatched = _observed_arrests(backend, fitted, cutoff, last)
    scenario = Scenario(
        name="backtest", description=f"fitted before {cutoff}, driven by the ICE arrests "
        f"recorded from {cutoff} to {last}", days=days, arrests_by_class=by_class,
        arrests_by_office=by_office, estimates=fitted)
    result = simulate(scenario, runs=runs)
    population = result.values["population"]
    mid, low, high = result.interval(population)
    counted = daily_population(backend, MetricParams(start=cutoff, end=last)).to_pyarrow()
    counted = dict(zip(counted.column("date").to_pylist(),
                       counted.column("population_midnight").to_pylist()))
    dates = scenario.dates
    observed = np.array([counted.get(d, np.nan) for d in dates], dtype=float)
    keep = ~np.isnan(observed)
    comparisons = [Comparison(
        "FOIA midnight population", "day", [d for d, k in zip(dates, keep) if k], observed[keep],
        mid[keep], low[keep], high[keep], f"{FOIA_STAYS} (detained_population_daily)")]
    assumptions = list(fitted.notes)
    if fitted.part_of_country:
        assumptions.append("ICE's published population figures are national, and "
                           f"{'; '.join(fitted.part_of_country)}: the simulation is compared "
                           "with the FOIA count only")
    else:
        comparisons += _published_comparisons(backend, dates, population)
    if unmatched:
        assumptions.append(f"{unmatched:,} arrests after the cutoff are of a class with no "
                           "record before it and are left out")
    return Backtest(
        mode="foia", cutoff=cutoff, start=cutoff, days=days, comparisons=comparisons,
        can=["Fitted on FOIA records before the cutoff: book-in probability, length of stay and "
             "outcomes by criminality and arrest setting; driven by the ICE arrests recorded "
             "after it."],
        cannot=list(FOIA_CANNOT), assumptions=assumptions,
    )


def _observed_arrests(backend, fitted: Estimates, first: date, last: date):
    """ICE arrests per day and class (T, C) and per office and class (F, C) from first to last,
    and the number in classes the fit never saw."""
    rows = arrests_between(backend, MetricParams(start=first, end=last), last + timedelta(1))
    rows = rows.group_by(["day", "aor", "criminality", "setting"]).aggregate(
        n=ibis._.count()).to_pyarrow().to_pylist()
    class_at = {c: i for i, c in enumerate(fitted.classes)}
    office_at = {f: i for i, f in enumerate(fitted.offices)}
    days = (last - first).days + 1
    by_class = np.zeros((days, len(class_at)))
    by_office = np.zeros((len(office_at), len(class_at)))
    unmatched = 0
    for row in rows:
        c = class_at.get((row["criminality"], row["setting"]))
        if c is None:
            unmatched += row["n"]
            continue
        by_class[(row["day"] - first).days, c] += row["n"]
        if row["aor"] in office_at:
            by_office[office_at[row["aor"]], c] += row["n"]
    return by_class, by_office, unmatched


def _published_comparisons(backend: ibis.BaseBackend, dates: list[date],
                           population: np.ndarray) -> list[Comparison]:
    """The simulated population against ICE's published ADP (per whole month) and detained
    count (on each workbook's data date), where the workbooks are loaded and cover the days."""
    comparisons = []
    adp = _published_adp(backend)
    if adp:
        comparisons.append(_monthly(adp, dates, population))
    detained = _published_detained(backend)
    on_days = [(day, detained[day]) for day in dates if day in detained]
    if on_days:
        at = {day: i for i, day in enumerate(dates)}
        runs = population[:, [at[day] for day, _ in on_days]]
        low, mid, high = np.percentile(runs, [INTERVAL[0], 50, INTERVAL[1]], axis=0)
        workbooks = sorted({workbook for _, (_, workbook) in on_days})
        comparisons.append(Comparison(
            "ICE published detained count", "workbook date", [day for day, _ in on_days],
            np.array([value for _, (value, _) in on_days]), mid, low, high,
            f"{STATS_DETAINED_NOW} on each workbook's data date (" + ", ".join(workbooks) + ")"))
    return comparisons


def _published_detained(backend: ibis.BaseBackend) -> dict[date, tuple[float, str]]:
    """ICE's printed 'currently detained' total (all agencies and classes) per data date."""
    if not (_has_table(backend, STATS_DETAINED_NOW) and _has_table(backend, STATS_WORKBOOKS)):
        return {}
    detained = backend.table(STATS_DETAINED_NOW)
    workbooks = backend.table(STATS_WORKBOOKS).select("workbook", "as_of_date")
    rows = detained.filter((detained.criminality == "Total") & (detained.agency == "Total")) \
        .join(workbooks, "workbook").select("as_of_date", "detained", "workbook")
    return {_day(r["as_of_date"]): (r["detained"], r["workbook"])
            for r in rows.to_pyarrow().to_pylist()
            if r["as_of_date"] is not None and r["detained"] is not None}


def _published_adp(backend: ibis.BaseBackend) -> dict[date, tuple[float, str]]:
    if not _has_table(backend, PUBLISHED_ADP.table):
        return {}
    rows = published_latest(backend, PUBLISHED_ADP, agency="Total", criminality="Total")
    return {_day(r["month"]): (r["value"], r["workbook"])
            for r in rows.select("month", "value", "workbook").to_pyarrow().to_pylist()
            if r["value"] is not None}


def _day(value) -> date:
    return value.date() if isinstance(value, datetime) else value


def _monthly(published: dict, dates: list[date], population: np.ndarray) -> Comparison:
    """Simulated monthly means against published ADP, for the whole months simulated."""
    months, observed, runs, sources = [], [], [], set()
    for month, (value, workbook) in sorted(published.items()):
        in_month = [i for i, d in enumerate(dates) if (d.year, d.month) == (month.year,
                                                                              month.month)]
        if len(in_month) < calendar.monthrange(month.year, month.month)[1]:
            continue
        months.append(month)
        observed.append(value)
        runs.append(population[:, in_month].mean(axis=1))
        sources.add(workbook)
    if not months:
        return Comparison("ICE published ADP", "month", [], np.array([]), np.array([]),
                          np.array([]), np.array([]), "no whole month simulated")
    low, mid, high = np.percentile(np.array(runs).T, [INTERVAL[0], 50, INTERVAL[1]], axis=0)
    return Comparison("ICE published ADP", "month", months, np.array(observed), mid, low, high,
                      f"{STATS_ADP} (latest workbook per month: "
                      + ", ".join(sorted(sources)) + ")")


def workbook_backtest(backend: ibis.BaseBackend, cutoff: date, runs: int, replicates: int,
                      why_no_foia: str) -> Backtest:
    adp = _published_adp(backend)
    book_ins = _published_book_ins(backend)
    start = cutoff.replace(day=1)
    before = sorted(m for m in adp if m < start and m in book_ins)[-FIT_MONTHS:]
    after = sorted(m for m in book_ins if m >= start)
    if len(before) < 3 or not after:
        raise NotMeasurable(f"the workbooks hold {len(before)} months with both ADP and book-ins "
                            f"before {start} and {len(after)} after it; the aggregate backtest "
                            "needs at least 3 before and 1 after")
    implied = np.array([adp[m][0] / book_ins[m] for m in before])  # Little's law, in days
    rng = np.random.default_rng(0)
    resampled = rng.choice(implied, size=(replicates, len(implied))).mean(axis=1)
    stays = np.concatenate([[implied.mean()], resampled])
    last_month = after[-1]
    last = last_month.replace(day=calendar.monthrange(last_month.year, last_month.month)[1])
    days = (last - start).days + 1
    dates = [start + timedelta(days=t) for t in range(days)]
    per_day = np.array([book_ins.get(d.replace(day=1), 0.0) for d in dates])
    fitted = _flow_estimates(stays, start, adp[before[-1]][0])
    scenario = Scenario(
        name="backtest", description=f"aggregate flow fitted on {before[0]:%Y-%m} to "
        f"{before[-1]:%Y-%m}, driven by published book-ins from {start:%Y-%m}", days=days,
        arrests_by_class=per_day[:, None], arrests_by_office=per_day.sum() * np.ones((1, 1)),
        estimates=fitted)
    population = simulate(scenario, runs=runs).values["population"]
    comparisons = _published_comparisons(backend, dates, population)
    return Backtest(
        mode="workbooks", cutoff=cutoff, start=start, days=days, comparisons=comparisons,
        can=[f"An aggregate flow check: published book-ins in, one mean stay of "
             f"{stays[0]:.1f} days (90% interval {np.percentile(stays[1:], INTERVAL[0]):.1f} to "
             f"{np.percentile(stays[1:], INTERVAL[1]):.1f}) fitted on {len(before)} months, "
             "published ADP out."],
        cannot=[why_no_foia, *WORKBOOKS_CANNOT],
        assumptions=["Partial months (a workbook's last month) are turned into book-ins per day "
                     "over the days the workbook covers."],
    )


def _published_book_ins(backend: ibis.BaseBackend) -> dict[date, float]:
    """Book-ins per day of each month (all agencies), partial months over the days printed."""
    if not _has_table(backend, PUBLISHED_BOOK_INS.table):
        return {}
    rows = published_latest(backend, PUBLISHED_BOOK_INS, agency="Total").select(
        "month", "value", "as_of_date").to_pyarrow().to_pylist()
    per_day = {}
    for row in rows:
        if row["value"] is None:
            continue
        month = _day(row["month"])
        days = calendar.monthrange(month.year, month.month)[1]
        as_of = _day(row["as_of_date"]) if row["as_of_date"] else None
        if as_of and month <= as_of < month + timedelta(days=days):
            days = (as_of - month).days + 1
        per_day[month] = row["value"] / days
    return per_day


def _flow_estimates(stays: np.ndarray, start: date, held: float) -> Estimates:
    """One class whose stays end at a constant daily rate with the given mean midnights."""
    replicates = len(stays)
    hazard = 1.0 / (stays + 1.0)  # mean of a geometric number of midnights: (1 - h) / h
    ages = np.zeros((1, 1, MAX_AGE))
    ages[0, 0, 1] = held  # memoryless: how long they have been held does not matter
    return Estimates(
        classes=(("all", "published book-ins"),), offices=("national",), start=start,
        leave=np.repeat(hazard[:, None, None], MAX_AGE, axis=-1),
        outcome_share=np.tile(np.eye(len(OUTCOMES))[-1][None, None, :, None],
                              (replicates, 1, 1, MAX_AGE)),
        book_in=np.ones((replicates, 1)), violent_share=np.zeros((replicates, 1)),
        no_arrest_book_ins=np.zeros((replicates, 1, 1)), held_at_start=ages,
        weekly_arrests=np.zeros((0, 1, 1)), recent_arrests=np.zeros((1, 1)),
    )
