"""Deaths in ICE custody per 100,000 detention bed-days.

ICE publishes each death in its custody (its Detainee Death Reporting page and newsroom) but no
table of them; the counts here are sourced figures in src/iceledger/data/facts/deaths.csv (or
the user's copy in --facts DIR / $ICELEDGER_FACTS_DIR), each with the source's words, address and
date, one period (a fiscal year, or several) a row, competing counts beside the primary one.

A count of deaths says little without the time people spent in custody. The bed-days it is set
against come from the records, two ways:

- `deaths_in_custody`: the FOIA records' midnight population (detention.daily_population) summed
  over the period's days, where the releases cover every day of it;
- `deaths_in_custody_published`: ICE's published average daily population of each month of the
  period (its latest value) times the month's days, where the workbooks print every month of it.

A period the records do not cover whole gets its bed-days so far and no rate.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from iceledger.facts import DeathCount, load_deaths
from iceledger.metrics.backends import memtable
from iceledger.metrics.detention import (
    BOOK_OUTS,
    daily_population,
    published_latest,
    source_table,
    windows_of,
)
from iceledger.metrics.published_series import SeriesSpec
from iceledger.metrics.registry import Metric, MetricParams, NationalFigure, View, register
from iceledger.metrics.volume import STAY_IDENTIFIERS, covered_days
from iceledger.tables import FOIA_RELEASES, FOIA_STAYS, STATS_ADP, STATS_WORKBOOKS

QUESTION = "human_cost"
DEATHS_FILE = "deaths.csv"
PER = 100_000
UNDATED = "undated"
# The source's own words are in deaths.csv; every row names who counted, where and when.
SOURCE_COLUMNS = ("counted_by", "source", "url", "source_date")
PUBLISHED_ADP = SeriesSpec(STATS_ADP, "adp", ("agency", "criminality"))

DEATHS_CAVEATS = (
    "Deaths are counts from the sources named in each row (deaths.csv), not from the records; "
    "sources disagree (ICE announces some deaths late), and alternative counts are shown beside "
    "the primary one.",
    "ICE counts deaths in its custody, hospitals included, but not people released shortly "
    "before they died; researchers have found such deaths, so the counts are lower bounds.",
    "The deaths are of all ICE custody in the period; the bed-days are of what the records "
    "hold, and are the same period only where the row says the records cover all of it.",
)


def fiscal_label(start: date, end: date) -> str:
    """'FY2025' or 'FY2018–FY2020' for whole fiscal years, else the dates."""
    if (start.month, start.day, end.month, end.day) == (10, 1, 9, 30):
        first, last = start.year + 1, end.year
        return f"FY{last}" if first == last else f"FY{first}–FY{last}"
    return f"{start.isoformat()} to {end.isoformat()}"


def _figure(count: DeathCount) -> str:
    period = fiscal_label(count.period_start, count.period_end)
    return period if count.status == "primary" else f"{period}, alternative: {count.source}"


def death_counts(params: MetricParams) -> list[DeathCount]:
    """The sourced counts whose period overlaps the one asked for."""
    return [c for c in load_deaths()
            if (params.start is None or c.period_end >= params.start)
            and (params.end is None or c.period_start <= params.end)]


def counts_table(counts: list[DeathCount], **extra: list) -> pa.Table:
    """One row per count: figure (its label), period, status, deaths, days_in_period, sources,
    and `extra` columns."""
    return pa.table({
        "figure": [_figure(c) for c in counts],
        "period_start": pa.array([c.period_start for c in counts], pa.date32()),
        "period_end": pa.array([c.period_end for c in counts], pa.date32()),
        "status": pa.array([c.status for c in counts], pa.string()),
        "deaths": pa.array([c.deaths for c in counts], pa.int64()),
        "days_in_period": pa.array([(c.period_end - c.period_start).days + 1 for c in counts],
                                   pa.int64()),
        **extra,
        "counted_by": pa.array([c.counted_by for c in counts], pa.string()),
        "source": pa.array([c.source for c in counts], pa.string()),
        "url": pa.array([c.url for c in counts], pa.string()),
        "source_date": pa.array([str(c.source_date) if c.source_date else UNDATED
                                 for c in counts], pa.string()),
    })


def _with_rate(rows: ir.Table, whole: ir.BooleanValue) -> ir.Table:
    rate = rows.deaths.cast("float64") * PER / rows.bed_days.nullif(0)
    return rows.mutate(deaths_per_100k_bed_days=ibis.ifelse(whole, rate, ibis.null("float64")))


def _ordered(rows: ir.Table, measured: tuple[str, ...]) -> ir.Table:
    return rows.select(
        "figure", "period_start", "period_end", "status", "deaths", "days_in_period", *measured,
        "bed_days", "deaths_per_100k_bed_days", *SOURCE_COLUMNS,
    ).order_by(["period_start", "period_end", "status", "figure"])


def _deaths_foia(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    counts = death_counts(params)
    covered = covered_days(windows_of(backend, source_table(backend, FOIA_STAYS),
                                      "stay_book_in"), MetricParams())
    days_covered = [sum(1 for d in covered if c.period_start <= d <= c.period_end)
                    for c in counts]
    figures = memtable(counts_table(counts, days_covered=pa.array(days_covered, pa.int64())))
    span = MetricParams(start=min((c.period_start for c in counts), default=None),
                        end=max((c.period_end for c in counts), default=None))
    population = daily_population(backend, span)
    pairs = figures.join(population, [population.date >= figures.period_start,
                                      population.date <= figures.period_end])
    bed_days = pairs.group_by(bed_figure="figure").aggregate(
        bed_days=pairs.population_midnight.sum())
    rows = figures.left_join(bed_days, figures.figure == bed_days.bed_figure)
    rows = rows.mutate(bed_days=rows.bed_days.fill_null(0))
    rows = _with_rate(rows, rows.days_covered == rows.days_in_period)
    return _ordered(rows, ("days_covered",))


def _months(start: date, end: date) -> list[tuple[date, int]]:
    """The calendar months from start's to end's, with their days inside [start, end]."""
    months, month = [], start.replace(day=1)
    while month <= end:
        last = month.replace(day=calendar.monthrange(month.year, month.month)[1])
        months.append((month, (min(last, end) - max(month, start)).days + 1))
        month = last + timedelta(days=1)
    return months


def _deaths_published(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    counts = death_counts(params)
    spans = [(_figure(c), _months(c.period_start, c.period_end)) for c in counts]
    figures = memtable(counts_table(
        counts, months_in_period=pa.array([len(months) for _, months in spans], pa.int64())))
    month_days = memtable(pa.table({
        "month_figure": pa.array([f for f, months in spans for _ in months], pa.string()),
        "month": pa.array([m for _, months in spans for m, _ in months], pa.date32()),
        "days": pa.array([d for _, months in spans for _, d in months], pa.int64()),
    }))
    adp = published_latest(backend, PUBLISHED_ADP, agency="Total", criminality="Total")
    adp = adp.select(adp_month="month", adp="value")
    monthly = month_days.join(adp, month_days.month == adp.adp_month)
    bed_days = monthly.group_by("month_figure").aggregate(
        months_published=monthly.adp.count(),
        bed_days=(monthly.adp * monthly.days).sum(),
    )
    rows = figures.left_join(bed_days, figures.figure == bed_days.month_figure)
    rows = rows.mutate(months_published=rows.months_published.fill_null(0),
                       bed_days=rows.bed_days.fill_null(0.0))
    rows = _with_rate(rows, rows.months_published == rows.months_in_period)
    return _ordered(rows, ("months_in_period", "months_published"))


_DEFINITION = (
    "Deaths in ICE custody in each period of the sourced counts in deaths.csv (a fiscal year or "
    "several; figure names the period, and the source of an alternative count), with who "
    "counted them, the source, its address (url) and date (the source's words are in "
    "deaths.csv); beside them the "
    "detention bed-days of the same period {bed_days}, and deaths_per_100k_bed_days = deaths "
    "× 100,000 / bed_days, given only where {whole}."
)

register(
    Metric(
        name="deaths_in_custody",
        title="Deaths in ICE custody per 100,000 detention bed-days (FOIA bed-days)",
        question=QUESTION,
        definition=_DEFINITION.format(
            bed_days="from the FOIA records: the midnight population (as in "
            "detained_population_daily) summed over the period's days the releases cover "
            "(days_covered of days_in_period)",
            whole="the releases cover every day of the period"),
        unit="deaths; bed-days; deaths per 100,000 bed-days",
        caveats=(
            *DEATHS_CAVEATS,
            "FOIA bed-days are of the releases' coverage: a release limited to one program "
            "holds only part of the national population, and the rate would be too high; "
            "compare bed_days with deaths_in_custody_published.",
        ),
        tables=(FOIA_STAYS, FOIA_RELEASES, DEATHS_FILE),
        build=_deaths_foia,
        needs=(BOOK_OUTS, STAY_IDENTIFIERS),
        national=(NationalFigure(FOIA_STAYS, "the count of deaths in ICE custody"),),
        view=View("deaths_per_100k_bed_days", "deaths per 100,000 bed-days", "dots",
                  group="figure"),
    )
)

register(
    Metric(
        name="deaths_in_custody_published",
        title="Deaths in ICE custody per 100,000 detention bed-days (ICE's published population)",
        question=QUESTION,
        definition=_DEFINITION.format(
            bed_days="from ICE's workbooks: each month's published average daily population "
            "(all agencies and criminality classes, the latest value) times the month's days in "
            "the period, summed (months_published of months_in_period)",
            whole="the workbooks print every month of the period"),
        unit="deaths; bed-days; deaths per 100,000 bed-days",
        caveats=(
            *DEATHS_CAVEATS,
            "A month's published population is an average; a release's last month is often a "
            "part month, averaged over the days so far.",
        ),
        tables=(STATS_ADP, STATS_WORKBOOKS, DEATHS_FILE),
        build=_deaths_published,
        view=View("deaths_per_100k_bed_days", "deaths per 100,000 bed-days", "dots",
                  group="figure"),
    )
)


def _deaths_period(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    rows = _deaths_published(backend, params)
    rows = rows.filter(rows.status == "primary")
    if params.start is not None:
        rows = rows.filter(rows.period_start >= params.start)
    if params.end is not None:
        rows = rows.filter(rows.period_end <= params.end)
    total = rows.aggregate(
        period_start=rows.period_start.min(),
        period_end=rows.period_end.max(),
        counts=rows.count(),
        deaths=rows.deaths.sum(),
        months_in_period=rows.months_in_period.sum(),
        months_published=rows.months_published.sum(),
        bed_days=rows.bed_days.sum(),
    )
    total = _with_rate(total, total.months_published == total.months_in_period)
    return total.select("period_start", "period_end", "counts", "deaths", "months_in_period",
                        "months_published", "bed_days", "deaths_per_100k_bed_days")


register(
    Metric(
        name="deaths_in_custody_period",
        title="Deaths in ICE custody per 100,000 bed-days over a period",
        question=QUESTION,
        definition=(
            "Over the whole period asked for (--from/--to; all the counts by default): the "
            "primary counts of deaths.csv whose periods lie inside it (counts), summed, against "
            "the bed-days of their months from ICE's published population, as in "
            "deaths_in_custody_published; period_start and period_end are the first and last "
            "day of those counts. deaths_per_100k_bed_days only where the workbooks print every "
            "month. The claims register reads officials' death rates against it."
        ),
        unit="deaths; bed-days; deaths per 100,000 bed-days",
        caveats=(
            *DEATHS_CAVEATS,
            "A count whose period runs over the period asked for is left out, never cut.",
        ),
        tables=(STATS_ADP, STATS_WORKBOOKS, DEATHS_FILE),
        build=_deaths_period,
        view=View("deaths_per_100k_bed_days", "deaths per 100,000 bed-days", "dots"),
    )
)
