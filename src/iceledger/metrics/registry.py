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
    "pipeline": "Pipeline: detainers, encounters, who feeds ICE",
    "cost": "Cost",
    "claims": "Claims",
    "reconciliation": "Reconciliation",
    "human_cost": "Human cost",
}


@dataclass(frozen=True)
class MetricParams:
    """Parameters a caller may set; validated against the metric's allow-lists before use."""

    by: tuple[str, ...] = ()
    start: date | None = None
    end: date | None = None
    filters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


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
