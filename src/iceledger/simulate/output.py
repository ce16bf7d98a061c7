"""The simulator's results as rows (CSV, JSON) and terminal tables, each number with its
interval, and the assumptions, sources and labels that go with it."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
from rich.table import Table

from iceledger.errors import IceledgerError
from iceledger.simulate.backtest import Backtest
from iceledger.simulate.estimate import Estimates
from iceledger.simulate.solve import INTERVAL, MEASURES, Result, simulate, steady_state
from iceledger.simulate.strategies import STRATEGIES, scenarios

UNITS = {
    "population": "people", "mean_population": "people", "final_population": "people",
    "bed_days": "bed-days", "over_funded_beds": "people", "cost_usd": "US dollars",
    "removals": "people", "removals_convicted": "people", "removals_violent": "people",
    "released": "people", "book_ins": "people", "turned_away": "people",
    "cost_per_removal_usd": "US dollars",
    "cost_per_violent_removal_usd": "US dollars",
}
DEFINITIONS = {
    **MEASURES,
    "mean_population": "people held at 00:00, averaged over the days simulated",
    "final_population": "people held at 00:00 on the last day simulated",
    "turned_away": "book-ins that would have happened but found no funded bed free "
                   "(--capacity turn-away)",
    "cost_per_removal_usd": "detention cost / removals (detention only: no flights or staff)",
    "cost_per_violent_removal_usd": "detention cost / removals of people with a violent "
                                    "conviction",
}
STEADY_UNIT = "per day, once settled"


def _median(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else math.nan


def _number(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def summary_rows(results: list[Result]) -> list[dict]:
    """One row per strategy, solver and measure: estimate and 90% interval."""
    rows = []
    for result in results:
        if result.solver == "steady state":
            # Replicate 0 is the point estimate; the interval comes from the bootstrap ones.
            values = {name: (v[0], v[1:]) for name, v in result.values.items()}
            period = STEADY_UNIT
        else:
            totals = result.totals()
            values = {name: (_median(v), v) for name, v in totals.items()}
            period = (f"{result.scenario.days} days from {result.scenario.estimates.start}, "
                      f"{len(totals['cost_usd']):,} runs")
        for measure, (estimate, spread) in values.items():
            if measure == "bed_days" and result.solver == "steady state":
                continue  # per day, bed-days are the population
            finite = spread[np.isfinite(spread)]
            low, high = (np.percentile(finite, INTERVAL) if finite.size else (np.nan, np.nan))
            rows.append({
                "strategy": result.scenario.name, "solver": result.solver, "period": period,
                "measure": measure, "estimate": _number(estimate),
                "low_90": _number(low), "high_90": _number(high), "unit": UNITS[measure],
                "definition": DEFINITIONS[measure],
            })
    return rows


def daily_rows(result: Result) -> list[dict]:
    rows = []
    dates = result.scenario.dates
    for measure, values in result.values.items():
        mid, low, high = result.interval(values)
        for t, day in enumerate(dates):
            rows.append({"strategy": result.scenario.name, "date": day.isoformat(),
                         "measure": measure, "median": _number(mid[t]),
                         "low_90": _number(low[t]), "high_90": _number(high[t])})
    return rows


def _cell(row: dict) -> str:
    estimate, low, high = row["estimate"], row["low_90"], row["high_90"]
    if estimate is None:
        return "not measurable"
    money = row["unit"] == "US dollars"
    fmt = (lambda x: f"${x:,.0f}") if money else (lambda x: f"{x:,.1f}" if abs(x) < 100
                                                    else f"{x:,.0f}")
    if low is None or high is None:
        return fmt(estimate)
    return f"{fmt(estimate)} [{fmt(low)} to {fmt(high)}]"


def summary_tables(rows: list[dict]) -> list[Table]:
    """One table per solver: measures down, strategies across."""
    tables = []
    for solver in dict.fromkeys(r["solver"] for r in rows):
        chosen = [r for r in rows if r["solver"] == solver]
        strategies = list(dict.fromkeys(r["strategy"] for r in chosen))
        period = chosen[0]["period"]
        table = Table(title=f"{solver.capitalize()} ({period}); [90% interval]",
                      title_justify="left")
        table.add_column("measure")
        for strategy in strategies:
            table.add_column(strategy, justify="right")
        for measure in dict.fromkeys(r["measure"] for r in chosen):
            cells = {r["strategy"]: _cell(r) for r in chosen if r["measure"] == measure}
            table.add_row(measure, *(cells.get(s, "") for s in strategies))
        tables.append(table)
    return tables


def model_notes(estimates: Estimates, results: list[Result]) -> list[str]:
    """The assumptions and sources every simulation output carries."""
    e = estimates
    lines = [
        f"Model fitted on the FOIA records up to {e.start} (00:00): {e.counts['stays']:,} "
        f"detention stays ({e.counts['open_stays']:,} still open, censored), "
        f"{e.counts['arrests']:,} ICE arrests, {e.counts['held_at_start']:,} people held at the "
        f"start; {e.replicates - 1} bootstrap replicates.",
        "Each person's class is criminality at book-in x setting of the ICE arrest behind the "
        "stay (custodial, at-large, other; 'no ICE arrest' for the rest). Every class keeps its "
        "observed book-in probability, length-of-stay curve and outcomes whatever the strategy: "
        "the model does not know whether a strategy changes how people are held.",
        "Intervals: steady state, the parameters' bootstrap; stochastic, runs drawing "
        "parameters and daily book-ins. Interval " f"{INTERVAL[0]:g}th to {INTERVAL[1]:g}th "
        "percentile.",
        *e.notes,
    ]
    for name in dict.fromkeys(r.scenario.name for r in results):
        of_strategy = [r for r in results if r.scenario.name == name]
        s = of_strategy[0].scenario
        lines.append(f"{name}: {s.description}.")
        lines.extend(f"  - {a}" for a in s.assumptions)
    lines.extend(dict.fromkeys(n for r in results for n in r.notes))
    sources = dict.fromkeys(src for r in results for src in r.sources)
    lines.extend(f"Rate or capacity source: {src}" for src in sources)
    return lines


def backtest_rows(result: Backtest) -> list[dict]:
    return [
        {"target": c.target, "unit": c.unit, "period": p.isoformat(),
         "observed": _number(o), "simulated": _number(s), "low_90": _number(lo),
         "high_90": _number(hi), "source": c.source}
        for c in result.comparisons
        for p, o, s, lo, hi in zip(c.periods, c.observed, c.simulated, c.low, c.high)
    ]


def backtest_summary(result: Backtest) -> dict:
    return {
        "mode": result.mode, "cutoff": result.cutoff.isoformat(),
        "start": result.start.isoformat(), "days": result.days,
        "errors": [{"target": c.target, "unit": c.unit, "periods": len(c.periods),
                    "mape_percent": _number(c.mape) if len(c.periods) else None,
                    "misses_outside_interval": c.misses, "verdict": c.verdict(),
                    "source": c.source}
                   for c in result.comparisons],
        "can": result.can, "cannot": result.cannot, "assumptions": result.assumptions,
    }


def backtest_table(result: Backtest) -> Table:
    """Observed against simulated by month (daily series shown as monthly means)."""
    table = Table(title=f"Backtest from {result.start} ({result.mode}); simulated median "
                        "[90% interval]", title_justify="left")
    for column in ("month", "target", "observed", "simulated"):
        table.add_column(column, justify="left" if column in ("month", "target") else "right")
    for c in result.comparisons:
        months: dict = {}
        for p, o, s, lo, hi in zip(c.periods, c.observed, c.simulated, c.low, c.high):
            months.setdefault(p.replace(day=1), []).append((o, s, lo, hi))
        for month, values in months.items():
            o, s, lo, hi = np.mean(values, axis=0)
            table.add_row(f"{month:%Y-%m}", c.target, f"{o:,.0f}",
                          f"{s:,.0f} [{lo:,.0f} to {hi:,.0f}]")
    return table


def to_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue()


def steady_state_answer(estimates: Estimates, strategy: str, days: int, target: float | None,
                        fill: str, beds: float | None) -> dict:
    """One named strategy's steady state (with intervals) and expected daily population path
    (point estimates), with its assumptions: the API's answer, cheap once the model is fitted."""
    if strategy not in STRATEGIES:
        raise IceledgerError(f"strategy {strategy!r}: use {', '.join(STRATEGIES)}")
    (scenario,) = scenarios(estimates, [strategy], days, target, fill, beds)
    settled = steady_state(scenario)
    path = simulate(scenario, expected=True)
    return {
        "strategy": scenario.name,
        "description": scenario.description,
        "steady_state": [{k: v for k, v in row.items() if k not in ("strategy", "solver")}
                         for row in summary_rows([settled])],
        "path": [{"date": d.isoformat(), "population": _number(p)}
                 for d, p in zip(scenario.dates, path.values["population"][0])],
        "assumptions": model_notes(estimates, [settled]),
        "sources": list(dict.fromkeys(settled.sources)),
    }


def office_rows(result: Result) -> list[dict]:
    """Per field office: people held at 00:00, averaged over the days simulated (stochastic)."""
    if result.office_population is None:
        return []
    mean = result.office_population.mean(axis=1)  # (runs, F)
    low, mid, high = np.percentile(mean, [INTERVAL[0], 50.0, INTERVAL[1]], axis=0)
    return [{"strategy": result.scenario.name, "office": office,
             "mean_population": _number(m), "low_90": _number(lo), "high_90": _number(hi)}
            for office, m, lo, hi in zip(result.scenario.estimates.offices, mid, low, high)]
