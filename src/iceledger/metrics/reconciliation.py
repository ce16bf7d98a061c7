"""Reconciliation: figures counted from the FOIA records against ICE's published workbook figures.

Three comparisons, each for the dates both sources describe: the detained population on a
workbook's "data as of" date against the FOIA midnight population that day; monthly book-ins
(per day, so part-covered months compare fairly) against the workbooks' initial book-ins; and
monthly average daily population against the workbooks' ADP. Each row gives the difference
(FOIA minus published) and the difference as a percentage of the published figure, and is flagged
when that percentage falls outside the gap measured between the two kinds of source for that
measure and era (TOLERANCES), or outside a flat band the caller asks for instead
(`iceledger reconcile --tolerance PCT`).

The two sources are extracts of ICE's own systems made at different times, so some difference is
expected (records corrected after publication, different treatment of transfers and of people
arrested by CBP), and how large it is depends on the measure and the era: FOIA-built book-ins ran
14-30% below ICE's published ones in 2018-19 and within 1% from FY2022. A flat threshold would flag
the first as errors and miss a shift of a few percent in the second. The flag marks periods
worth a look; it does not say which figure is wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import partial

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from iceledger.metrics.backends import memtable
from iceledger.metrics.capabilities import require_measurable
from iceledger.metrics.detention import (
    BOOK_OUTS,
    adp_beside_published,
    daily_population,
    source_table,
)
from iceledger.metrics.published_series import snapshots
from iceledger.metrics.registry import (
    REGISTRY,
    Metric,
    MetricParams,
    NationalFigure,
    View,
    register,
)
from iceledger.metrics.volume import STAY_IDENTIFIERS, book_ins_compared, during
from iceledger.tables import (
    FOIA_RELEASES,
    FOIA_STAYS,
    STATS_ADP,
    STATS_BOOK_INS,
    STATS_DETAINED_NOW,
    STATS_WORKBOOKS,
)

# The comparison measured between ICE's detention-statistics workbooks and a national daily
# series built from ICE's FOIA detention records (the Vera Institute's, vera-institute/
# ice-detention-trends, national.csv); docs/methodology.md, "Reconciliation", gives the figures.
MEASURED_SOURCE = (
    "measured between ICE's detention-statistics workbooks and the Vera Institute's FOIA-built "
    "national daily series (vera-institute/ice-detention-trends, national.csv)"
)


@dataclass(frozen=True)
class Band:
    """The expected range of FOIA minus published, in percent of published, over an era."""

    measure: str
    start: date | None  # first day of the era; None: from the first record
    end: date | None  # last day; None: to the present
    low_pct: float
    high_pct: float
    basis: str


ADP_BAND = (-6.6, 0.0)
TOLERANCES = (
    Band("adp", None, None, *ADP_BAND,
         "measured: FOIA-built ADP 0.1-6.6% below ICE's (median -1.2%) in every era; "
         "agreement not flagged"),
    Band("book_ins", date(2018, 11, 1), date(2019, 5, 31), -30.0, -14.0,
         "measured: FOIA-built 14-30% below ICE's, Nov 2018 - May 2019"),
    Band("book_ins", date(2021, 10, 1), None, -1.0, 1.0,
         "measured: FOIA-built within 1% of ICE's from FY2022"),
    Band("detained_population", None, None, *ADP_BAND,
         "the ADP band, borrowed: no gap measured for single days"),
)
NOT_JUDGED = "no gap measured for this era: not judged"


def bands_for(measure: str, tolerance_pct: float | None) -> list[Band]:
    """The measured bands of a measure, or one flat band of +/- tolerance_pct over all time."""
    if tolerance_pct is not None:
        return [Band(measure, None, None, -tolerance_pct, tolerance_pct,
                     f"flat +/-{tolerance_pct:g}%, as asked (--tolerance)")]
    return [band for band in TOLERANCES if band.measure == measure]


def compared(
    table: ir.Table, foia: str, published: str, day: str, bands: list[Band]
) -> ir.Table:
    """Add difference, difference_pct, the band in force on `day` and flagged.

    flagged is NULL when either side is missing, the published figure is 0, or no band covers
    the day.
    """
    difference = table[foia] - table[published]
    percent = ibis.ifelse(
        table[published] != 0, difference * 100.0 / table[published], ibis.null("float64")
    )
    table = table.mutate(difference=difference, difference_pct=percent)
    eras = memtable(pa.table({
        "band_start": pa.array([b.start or date.min for b in bands], pa.date32()),
        "band_end": pa.array([b.end or date.max for b in bands], pa.date32()),
        "tolerance_low_pct": pa.array([b.low_pct for b in bands], pa.float64()),
        "tolerance_high_pct": pa.array([b.high_pct for b in bands], pa.float64()),
        "tolerance_basis": pa.array([b.basis for b in bands], pa.string()),
    }))
    when = table[day].cast("date")
    joined = table.left_join(eras, [when >= eras.band_start, when <= eras.band_end])
    joined = joined.drop("band_start", "band_end")
    outside = (joined.difference_pct < joined.tolerance_low_pct) | (
        joined.difference_pct > joined.tolerance_high_pct
    )
    return joined.mutate(
        tolerance_basis=joined.tolerance_basis.fill_null(NOT_JUDGED),
        flagged=ibis.ifelse(joined.tolerance_low_pct.notnull(), outside, ibis.null("boolean")),
    )


def _detained_population(
    backend: ibis.BaseBackend, params: MetricParams, tolerance_pct: float | None
) -> ir.Table:
    detained = source_table(backend, STATS_DETAINED_NOW)
    source_table(backend, STATS_WORKBOOKS)  # a missing table refused by name, not a traceback
    published = snapshots(backend, detained.filter(
        (detained.criminality == "Total") & (detained.agency == "Total")
    ), [], "detained")
    published = published.select(
        "workbook", "date", published_detained=published.detained
    )
    published = during(published, params, "date")
    foia = daily_population(backend, MetricParams(start=params.start, end=params.end))
    joined = published.join(foia, "date").select(
        "date", "workbook", "published_detained", foia_population_midnight="population_midnight"
    )
    return compared(
        joined, "foia_population_midnight", "published_detained", "date",
        bands_for("detained_population", tolerance_pct),
    ).order_by(["date", "workbook"])


def _book_ins(
    backend: ibis.BaseBackend, params: MetricParams, tolerance_pct: float | None
) -> ir.Table:
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
        both, "foia_book_ins_per_day", "published_book_ins_per_day", "month",
        bands_for("book_ins", tolerance_pct),
    ).order_by("month")


def _adp(
    backend: ibis.BaseBackend, params: MetricParams, tolerance_pct: float | None
) -> ir.Table:
    adp = adp_beside_published(backend, params)
    adp = adp.filter(adp.published_adp.notnull())
    return compared(
        adp, "foia_adp", "published_adp", "month", bands_for("adp", tolerance_pct)
    ).order_by("month")


_TOLERANCE_DEFINITION = (
    "difference is FOIA minus published; difference_pct is difference / published x 100; "
    "flagged marks rows whose difference_pct lies outside tolerance_low_pct to "
    "tolerance_high_pct, the gap measured between ICE's published figures and FOIA-built series "
    "for this measure in the row's era (tolerance_basis says which and where it was measured; "
    "empty, and flagged empty, where no gap was measured), or a flat band asked for with "
    "`iceledger reconcile --tolerance PCT`."
)
_COMMON_CAVEATS = (
    f"The usual gaps (tolerance_basis) were {MEASURED_SOURCE}; docs/methodology.md gives them.",
    "The FOIA records and the workbooks are extracts of ICE's systems made on different dates; "
    "a flag marks a period worth reading, not an error in either source.",
    "Workbook figures are revised until the fiscal year closes; the latest published value is "
    "used and its workbook named.",
)

# name -> build(backend, params, tolerance_pct); registered with the measured bands.
RECONCILIATIONS: dict[str, Callable[..., ir.Table]] = {}


def _register(build: Callable[..., ir.Table], **fields) -> None:
    RECONCILIATIONS[fields["name"]] = build
    register(
        Metric(
            question="reconciliation",
            build=partial(build, tolerance_pct=None),
            **fields,
        )
    )


_register(
    _detained_population,
    name="reconcile_detained_population",
    view=View("foia_population_midnight", "people", also=("published_detained",)),
    title="Detained population: ICE's workbook figure against the FOIA count that day",
    definition=(
        "For each snapshot of ICE's currently-detained table whose date the FOIA records cover "
        "(the date the workbook's Footnotes sheet gives for the table, else its printed 'data "
        "as of' date; a snapshot reprinted by a later workbook once, from its first printing): "
        "published_detained is the currently-detained total (all arresting agencies and "
        f"criminality classes, {STATS_DETAINED_NOW}) and foia_population_midnight the FOIA "
        "midnight population that day (detained_population_daily). " + _TOLERANCE_DEFINITION
    ),
    unit="people",
    caveats=(
        *_COMMON_CAVEATS,
        "ICE has printed stale 'data as of' lines (see the stats checks); the Footnotes "
        "sheet's date for the table is used where there is one, the date the printed totals "
        "match the FOIA population best (docs/methodology.md).",
    ),
    tables=(FOIA_STAYS, FOIA_RELEASES, STATS_DETAINED_NOW, STATS_WORKBOOKS),
    needs=(BOOK_OUTS, STAY_IDENTIFIERS),
    national=(NationalFigure(FOIA_STAYS, "ICE's published count of people detained"),),
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
    tables=(FOIA_STAYS, FOIA_RELEASES, STATS_BOOK_INS, STATS_WORKBOOKS),
    needs=(STAY_IDENTIFIERS,),
    national=(NationalFigure(FOIA_STAYS, "ICE's published book-ins"),),
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
    tables=(FOIA_STAYS, FOIA_RELEASES, STATS_ADP, STATS_WORKBOOKS),
    needs=(BOOK_OUTS, STAY_IDENTIFIERS),
    national=(NationalFigure(FOIA_STAYS, "ICE's published average daily population"),),
)


def reconcile(
    backend: ibis.BaseBackend,
    tolerance_pct: float | None = None,
    params: MetricParams | None = None,
) -> list[tuple[Metric, pa.Table]]:
    """Every reconciliation, each with its metric (for its definition): flagged by the measured
    bands, or by a flat band of +/- tolerance_pct when one is given. NotMeasurable when the
    records lack what one of them needs."""
    params = params or MetricParams()
    results = []
    for name, build in RECONCILIATIONS.items():
        metric = REGISTRY[name]
        metric.validate(params)
        require_measurable(metric, backend, params)
        results.append((metric, build(backend, params, tolerance_pct=tolerance_pct).to_pyarrow()))
    return results
