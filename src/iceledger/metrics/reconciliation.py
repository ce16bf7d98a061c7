"""Reconciliation: figures counted from the FOIA records against ICE's published workbook figures.

Three comparisons, each for the dates both sources describe: the detained population on a
workbook's "data as of" date against the FOIA midnight population that day; monthly book-ins
(per day, so part-covered months compare fairly) against the workbooks' initial book-ins; and
monthly average daily population against the workbooks' ADP. Each row gives the difference
(FOIA minus published) and the difference as a percentage of the published figure, and is flagged
when that percentage is larger than a tolerance (DEFAULT_TOLERANCE_PCT unless the caller gives
another: `iceledger reconcile --tolerance PCT`).

The two sources are extracts of ICE's own systems made at different times, so some difference is
expected (records corrected after publication, different treatment of transfers and of people
arrested by CBP); the flag marks periods worth a look, it does not say which figure is wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from iceledger.metrics.detention import (
    adp_beside_published,
    daily_population,
    source_table,
)
from iceledger.metrics.registry import REGISTRY, Metric, MetricParams, View, register
from iceledger.metrics.volume import book_ins_compared, during

# A round threshold, not yet calibrated: the usual gap between the two sources has not been
# measured on a real FOIA release here. Pass another with --tolerance (docs/methodology.md).
DEFAULT_TOLERANCE_PCT = 5.0


def compared(
    table: ir.Table, foia: str, published: str, tolerance_pct: float
) -> ir.Table:
    """Add difference, difference_pct and flagged (NULL when either side is missing)."""
    difference = table[foia] - table[published]
    percent = ibis.ifelse(
        table[published] != 0, difference * 100.0 / table[published], ibis.null("float64")
    )
    return table.mutate(
        difference=difference,
        difference_pct=percent,
        tolerance_pct=ibis.literal(float(tolerance_pct)),
        flagged=percent.abs() > tolerance_pct,
    )


def _detained_population(
    backend: ibis.BaseBackend, params: MetricParams, tolerance_pct: float
) -> ir.Table:
    detained = source_table(backend, "stats_detained_now")
    workbooks = source_table(backend, "stats_workbooks").select("workbook", "as_of_date")
    published = detained.filter(
        (detained.criminality == "Total") & (detained.agency == "Total")
    ).join(workbooks, "workbook")
    published = published.select(
        "workbook", date=published.as_of_date, published_detained=published.detained
    )
    published = during(published, params, "date")
    foia = daily_population(backend, MetricParams(start=params.start, end=params.end))
    joined = published.join(foia, "date").select(
        "date", "workbook", "published_detained", foia_population_midnight="population_midnight"
    )
    return compared(
        joined, "foia_population_midnight", "published_detained", tolerance_pct
    ).order_by(["date", "workbook"])


def _book_ins(backend: ibis.BaseBackend, params: MetricParams, tolerance_pct: float) -> ir.Table:
    rates = book_ins_compared(backend, params)
    both = rates.filter(
        rates.foia_book_ins_per_day.notnull() & rates.workbook_book_ins_per_day.notnull()
    )
    both = both.select(
        "month",
        "foia_days",
        "workbook_days",
        foia_book_ins_per_day=both.foia_book_ins_per_day,
        published_book_ins_per_day=both.workbook_book_ins_per_day,
        published_workbook=both.workbook,
    )
    return compared(
        both, "foia_book_ins_per_day", "published_book_ins_per_day", tolerance_pct
    ).order_by("month")


def _adp(backend: ibis.BaseBackend, params: MetricParams, tolerance_pct: float) -> ir.Table:
    adp = adp_beside_published(backend, params)
    adp = adp.filter(adp.published_adp.notnull())
    return compared(adp, "foia_adp", "published_adp", tolerance_pct).order_by("month")


_TOLERANCE_DEFINITION = (
    "difference is FOIA minus published; difference_pct is difference / published x 100; "
    "flagged marks rows where |difference_pct| exceeds tolerance_pct "
    f"(default {DEFAULT_TOLERANCE_PCT:g}%; `iceledger reconcile --tolerance PCT`)."
)
_COMMON_CAVEATS = (
    "The FOIA records and the workbooks are extracts of ICE's systems made on different dates; "
    "a flag marks a period worth reading, not an error in either source.",
    "Workbook figures are revised until the fiscal year closes; the latest published value is "
    "used and its workbook named.",
)

# name -> build(backend, params, tolerance_pct); registered with the default tolerance.
RECONCILIATIONS: dict[str, Callable[..., ir.Table]] = {}


def _register(build: Callable[..., ir.Table], **fields) -> None:
    RECONCILIATIONS[fields["name"]] = build
    register(
        Metric(
            question="reconciliation",
            build=partial(build, tolerance_pct=DEFAULT_TOLERANCE_PCT),
            **fields,
        )
    )


_register(
    _detained_population,
    name="reconcile_detained_population",
    view=View("foia_population_midnight", "people", also=("published_detained",)),
    title="Detained population: ICE's workbook figure against the FOIA count that day",
    definition=(
        "For each workbook whose 'data as of' date the FOIA records cover: published_detained "
        "is the workbook's currently-detained total (all arresting agencies and criminality "
        "classes, stats_detained_now) and foia_population_midnight the FOIA midnight population "
        "that day (detained_population_daily). " + _TOLERANCE_DEFINITION
    ),
    unit="people",
    caveats=(
        *_COMMON_CAVEATS,
        "ICE has printed stale 'data as of' dates (see the stats checks); the date is taken as "
        "printed.",
    ),
    tables=("foia_stays", "foia_releases", "stats_detained_now", "stats_workbooks"),
)
_register(
    _book_ins,
    name="reconcile_book_ins",
    view=View("foia_book_ins_per_day", "book-ins per day", also=("published_book_ins_per_day",)),
    title="Book-ins per day: FOIA stays against ICE's initial book-ins, by month",
    definition=(
        "For each month both sources describe, book-ins per day as computed by "
        "book_ins_monthly_compared: new FOIA detention stays per covered day, and ICE's published "
        "initial book-ins (all arresting agencies) per day the workbook covers. Rates per day "
        "keep months that either source covers in part comparable. " + _TOLERANCE_DEFINITION
    ),
    unit="book-ins per day",
    caveats=_COMMON_CAVEATS,
    tables=("foia_stays", "foia_releases", "stats_book_ins", "stats_workbooks"),
)
_register(
    _adp,
    name="reconcile_adp",
    view=View("foia_adp", "people (average per day)", also=("published_adp",)),
    title="Average daily population: FOIA records against ICE's published ADP, by month",
    definition=(
        "For each whole month both sources describe, foia_adp (mean midnight population from "
        "the FOIA records) against published_adp (ICE's printed ADP, all agencies), as in "
        "adp_monthly. " + _TOLERANCE_DEFINITION
    ),
    unit="people (average per day)",
    caveats=_COMMON_CAVEATS,
    tables=("foia_stays", "foia_releases", "stats_adp", "stats_workbooks"),
)


def reconcile(
    backend: ibis.BaseBackend,
    tolerance_pct: float = DEFAULT_TOLERANCE_PCT,
    params: MetricParams | None = None,
) -> list[tuple[Metric, pa.Table]]:
    """Every reconciliation at the given tolerance, each with its metric (for its definition)."""
    params = params or MetricParams()
    results = []
    for name, build in RECONCILIATIONS.items():
        metric = REGISTRY[name]
        metric.validate(params)
        results.append((metric, build(backend, params, tolerance_pct=tolerance_pct).to_pyarrow()))
    return results
