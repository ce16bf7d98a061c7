"""What a metric is, and the one registry every presentation layer reads.

A metric is written once, as a function that builds an Ibis expression from a backend and a set of
validated parameters. The same expression runs on DuckDB (the default) and on PySpark. Reports,
the dashboard, the API and the CLI only ever call `compute`; none of them computes a number.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date

import ibis
import pyarrow as pa

from iceledger.errors import IceledgerError

# The questions metrics answer, in the order shown, with the title of each one's report section
# and dashboard page.
QUESTIONS = {
    "volume": "Volume against targets",
    "targeting": "Who is targeted",
    "detention": "Detention",
    "outcomes": "Outcomes",
    "cost": "Cost",
    "claims": "Claims",
    "reconciliation": "Reconciliation",
}


# The days a period may name: wide enough for any record, narrow enough that a day after the
# last (`end + 1 day`) and a window before the first stay ordinary dates.
FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(2100, 12, 31)


@dataclass(frozen=True)
class MetricParams:
    """Parameters a caller may set; validated against the metric's allow-lists before use."""

    by: tuple[str, ...] = ()
    start: date | None = None
    end: date | None = None
    filters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


# Why public outputs withhold a metric whose rows overlap (spans before and after each split, a
# risk set shrinking day by day): the difference of two rows counts people no rule here protects.
OVERLAPPING_ROWS = (
    "its rows cover overlapping groups of people, and the difference of two rows counts the "
    "people between them, which small-cell suppression cannot protect"
)


@dataclass(frozen=True)
class Disclosure:
    """How public outputs read a metric's columns (serving/disclosure.py; docs/dashboard.md).

    Every integer column of a metric with a count_column counts people, unless named here: a
    new count column is protected without anyone remembering to list it.
    """

    # Row keys besides the time column and `by` (one row per arrest setting, per field office).
    keys: tuple[str, ...] = ()
    # Keys whose rows may count the same people twice (one row per target in force that day).
    copies: tuple[str, ...] = ()
    # Columns holding a total of another over one key, as (column, counted column, key): the
    # month's arrests with a setting beside each setting's arrests. The auditor reads them so.
    totals: tuple[tuple[str, str, str], ...] = ()
    # Public facts beside the counts (a target, a rate, a date): never hidden.
    facts: tuple[str, ...] = ()
    # Integer columns that count no one (days in a month, a rank); hidden with their row.
    measures: tuple[str, ...] = ()
    # Why public outputs cannot serve the metric at all (empty: they can).
    withheld: str = ""


@dataclass(frozen=True)
class Metric:
    name: str
    title: str
    question: str
    definition: str
    unit: str
    caveats: tuple[str, ...]
    tables: tuple[str, ...]
    build: Callable[[ibis.BaseBackend, MetricParams], ibis.Table]
    dimensions: tuple[str, ...] = ()
    filters: tuple[str, ...] = ()
    # Column holding the number of people behind each row; public outputs suppress small cells by it.
    count_column: str | None = None
    disclosure: Disclosure = Disclosure()

    def validate(self, params: MetricParams) -> None:
        unknown_dims = [d for d in params.by if d not in self.dimensions]
        if unknown_dims:
            raise IceledgerError(
                f"metric {self.name!r} cannot be broken down by {', '.join(unknown_dims)}; "
                f"allowed: {', '.join(self.dimensions) or 'none'}"
            )
        unknown_filters = [f for f in params.filters if f not in self.filters]
        if unknown_filters:
            raise IceledgerError(
                f"metric {self.name!r} cannot be filtered by {', '.join(unknown_filters)}; "
                f"allowed: {', '.join(self.filters) or 'none'}"
            )
        for option, day in (("--from", params.start), ("--to", params.end)):
            if day is not None and not FIRST_DAY <= day <= LAST_DAY:
                raise IceledgerError(
                    f"{option} {day.isoformat()} is outside the days iceledger computes, "
                    f"{FIRST_DAY.isoformat()} to {LAST_DAY.isoformat()}"
                )
        if params.start and params.end and params.start > params.end:
            raise IceledgerError(f"--from {params.start} is after --to {params.end}")


REGISTRY: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    if metric.question not in QUESTIONS:
        raise ValueError(f"{metric.name}: unknown question {metric.question!r}")
    if metric.name in REGISTRY:
        raise ValueError(f"metric {metric.name!r} registered twice")
    REGISTRY[metric.name] = metric
    return metric


def get(name: str) -> Metric:
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY)) or "none"
        raise IceledgerError(f"no metric named {name!r} (known: {known})") from None


def compute(name: str, backend: ibis.BaseBackend, params: MetricParams | None = None) -> pa.Table:
    metric = get(name)
    params = params or MetricParams()
    metric.validate(params)
    return metric.build(backend, params).to_pyarrow()
