"""The published monthly series of a detention-statistics table, with its revision history.

ICE reprints every month of the fiscal year in each biweekly workbook, and the figures "fluctuate
until locked at the conclusion of the fiscal year" (the workbooks' own header): the October figure
in the March release is not the October figure in the September release. So a month has versions,
one per release that printed it. This module gives, for each month and each combination of the
table's dimensions (agency, criminality, release reason, ...):

- `versions`: every (release, value) version in publication order, with the change from the
  previous version;
- `latest`: the latest published value, where it came from, and how the month was revised (first
  value, number of revisions, largest single revision, change since first publication).

Both carry `failed_checks`: the validation checks (docs/stats-checks.md) that failed, in the
release a value comes from, for the series' table or for the workbook as a whole. A latest value
from a release that failed its checks is published, not clean, and says so.

Versions are ordered by the day their figures describe: the row's own snapshot date (ICE's
footnote or caption for that table, see docs/codebook.md "Snapshots"), else the workbook's printed
"data as of" date; then the date in the file name (`file_date`), the web-archive capture date
(`archive_date`), the workbook name and its sha256. File names are not trusted first: they carry
typos, and ICE has re-posted old data under newer names. A snapshot the release checks found to
be such a stale re-post (`not a stale re-post` failed in `stats_release_checks`) is left out: it
is never the latest value and never makes a revision. Figures nothing dates (a hidden sheet of
another fiscal year with no date of its own) cannot be placed: they are versions outside the
order, with the reason (`left_out`), never the latest value, and no day's snapshot.

Written in Ibis (window functions over the warehouse) so the same expression runs on DuckDB or
Spark, like every metric.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import ibis
import ibis.expr.types as ir
import pyarrow as pa

from iceledger.errors import IceledgerError
from iceledger.metrics.backends import memtable
from iceledger.tables import (
    FAIL,
    HIDDEN_UNDATED,
    STALE_REPOST_CHECK,
    STATS_CHECKS,
    STATS_RELEASE_CHECKS,
    STATS_WORKBOOKS,
)

# Where a figure came from; never a dimension of the series.
PROVENANCE_COLUMNS = ("workbook", "sheet", "cell_range", "sha256", "as_of_source")
# Numeric columns that label a row rather than measure something. They are not dimensions either:
# the month determines the year it belongs to, while `fiscal_year` (the workbook's year) can differ
# between releases printing the same month.
NOT_MEASURES = ("fiscal_year", "data_fiscal_year", "quarter")
# The first of these a release has dates its publication (see the module docstring).
PUBLICATION_DATES = ("file_date", "archive_date", "as_of_date")
# Each row's own snapshot (sources/stats/snapshots.py); older warehouses lack them.
SNAPSHOT_COLUMNS = ("snapshot_date", "as_of_source")
# Why a version is not among a series' ordered versions (version_history's `left_out`).
UNDATED_REASON = ("undated: a hidden sheet of another fiscal year that nothing on it dates; "
                  "the workbook's own date would make it the latest value")
# Printed figures are floats (ADPs to ~12 digits); smaller differences are float noise, not edits.
REVISION_EPSILON = 1e-9


@dataclass(frozen=True)
class SeriesSpec:
    table: str
    value: str
    dimensions: tuple[str, ...]
    # The columns naming the period a figure is for: a month, or a fiscal year and quarter.
    period: tuple[str, ...] = ("month",)


def monthly_tables(backend: ibis.BaseBackend) -> list[str]:
    return sorted(name for name in table_names(backend)
                  if name.startswith("stats_") and "month" in backend.table(name).schema())


def table_names(backend: ibis.BaseBackend) -> list[str]:
    # Ibis 12's DuckDB list_tables calls fetch_arrow_table, which DuckDB 2 removed; ask DuckDB.
    raw = getattr(backend, "con", None)
    if isinstance(raw, duckdb.DuckDBPyConnection):
        return [row[0] for row in raw.sql(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
        ).fetchall()]
    return backend.list_tables()


def series_spec(backend: ibis.BaseBackend, table: str, value: str | None = None) -> SeriesSpec:
    """Which column is the figure and which columns split it, read from the table's schema."""
    monthly = monthly_tables(backend)
    if table not in monthly:
        listing = ", ".join(monthly) or "none loaded yet (iceledger ingest stats)"
        raise IceledgerError(f"no monthly detention-statistics table named {table!r}; series "
                             f"works for tables with a month column: {listing}")
    schema = backend.table(table).schema()
    measures = [name for name, dtype in schema.items()
                if dtype.is_numeric() and name not in NOT_MEASURES]
    if value is None:
        if len(measures) != 1:
            raise IceledgerError(f"{table} has several figures ({', '.join(measures)}); "
                                 "choose one with --value")
        value = measures[0]
    elif value not in measures:
        raise IceledgerError(f"{table} has no numeric column {value!r} "
                             f"(figures: {', '.join(measures)})")
    dimensions = tuple(name for name, dtype in schema.items()
                       if dtype.is_string() and name not in PROVENANCE_COLUMNS)
    return SeriesSpec(table, value, dimensions)


def versions(backend: ibis.BaseBackend, spec: SeriesSpec, data: ir.Table | None = None
             ) -> ir.Table:
    """One row per (period, dimensions, release) that printed a figure, oldest release first.

    `data` is the table's rows reshaped by the caller (labels read into dimensions), with the
    table's provenance columns kept; by default the table as loaded.
    """
    data = backend.table(spec.table) if data is None else data
    releases = backend.table(STATS_WORKBOOKS)
    join_keys = [k for k in ("workbook", "sha256") if k in data.schema() and k in releases.schema()]
    dates = [c for c in PUBLICATION_DATES if c in releases.schema()]
    releases = releases.select(*join_keys, *dates).distinct()
    keys = [*spec.dimensions, *spec.period]
    data = data.filter(data[spec.value].notnull())
    stale = stale_snapshots(backend)
    if stale is not None and "fiscal_year" in data.schema():
        data = data.anti_join(stale, ["workbook", "fiscal_year"])
    snapshot = [c for c in SNAPSHOT_COLUMNS if c in data.schema()]
    rows = data.select(
        *keys, *[c for c in (*join_keys, "sheet", "cell_range") if c in data.schema()],
        *snapshot, value=data[spec.value].cast("float64"),
    ).join(releases, join_keys)
    rows = rows.left_join(failed_checks(backend, spec), "workbook").select(
        *rows.columns, "failed_checks")
    # The day the figure describes: the table's own snapshot date (its footnote or caption),
    # else the workbook's printed data date.
    data_date = ibis.coalesce(rows.snapshot_date, rows.as_of_date) if snapshot \
        else rows.as_of_date
    rows = rows.mutate(as_of_date=data_date)
    undated = _undated(rows)
    aside = rows.filter(undated)
    rows = rows.filter(~undated)
    order = [ibis.coalesce(rows.as_of_date, *[rows[c] for c in dates]),
             ibis.coalesce(*[rows[c] for c in dates]), *[rows[k] for k in join_keys]]
    in_order = ibis.window(group_by=keys, order_by=order)
    newest_first = ibis.window(group_by=keys, order_by=[ibis.desc(o) for o in order])
    whole = ibis.window(group_by=keys)
    rows = rows.mutate(
        release_number=ibis.row_number().over(in_order) + 1,
        previous_value=rows.value.lag().over(in_order),
        is_latest=ibis.row_number().over(newest_first) == 0,
    )
    rows = rows.mutate(change=rows.value - rows.previous_value)
    rows = rows.mutate(is_revision=(rows.change.abs() > REVISION_EPSILON).fill_null(False))
    rows = rows.mutate(
        first_value=rows.value.first().over(in_order),
        first_workbook=rows.workbook.first().over(in_order),
        n_releases=rows.value.count().over(whole),
        n_revisions=rows.is_revision.sum().over(whole),
        max_abs_revision=rows.change.abs().max().over(whole).fill_null(0.0),
        left_out=ibis.null("string"),
    )
    # Figures nothing dates are versions of their own, outside the order: never the latest
    # value, never a revision, and the reason said.
    schema = rows.schema()
    aside = aside.mutate(**{name: ibis.null(schema[name]) for name in schema
                            if name not in aside.columns})
    aside = aside.mutate(as_of_date=ibis.null("date"), is_latest=False, is_revision=False,
                         left_out=ibis.literal(UNDATED_REASON))
    return rows.union(aside.select(*rows.columns))


def _undated(rows: ir.Table) -> ir.BooleanValue:
    """Rows whose figures nothing dates (a hidden sheet of another fiscal year, nothing on it
    giving a date): they cannot be placed among the versions."""
    if "as_of_source" not in rows.columns:
        return ibis.literal(False)
    return (rows.as_of_source == HIDDEN_UNDATED).fill_null(False)


def stale_snapshots(backend: ibis.BaseBackend) -> ir.Table | None:
    """(workbook, fiscal_year) of every snapshot the release checks found to be a stale re-post
    (older data posted after newer): never a latest value, never a revision."""
    if STATS_RELEASE_CHECKS not in set(table_names(backend)):
        return None
    checks = backend.table(STATS_RELEASE_CHECKS)
    if "fiscal_year" not in checks.schema():
        return None
    stale = checks.filter((checks.check == STALE_REPOST_CHECK) & (checks.status == FAIL))
    return stale.select("workbook", fiscal_year=stale.fiscal_year.cast("int32")).distinct()


def snapshots(backend: ibis.BaseBackend, data: ir.Table, keys: list[str], value: str
              ) -> ir.Table:
    """`data`'s rows with `date`, the day their figures describe, stale re-posts left out.

    The day is the row's own snapshot date (the table's caption or the Footnotes sheet), else its
    workbook's printed data-as-of date, else its publication date. Never the workbook's date
    alone where the row has its own: ICE prints a stale 'data as of' line now and then (an FY2023
    workbook dated 2022-01-23), and a workbook reprints last year's closing sheet (the FY2020
    year-end snapshot again in a release of October 2021), whose figures describe neither the
    workbook's date nor its fiscal year.

    Of the releases printing the same `keys` on the same date, the first printing (by
    publication date, then name), with `n_printings` and `reprints_differing`: how many releases
    printed it, and how many of them printed another `value` than the first."""
    releases = backend.table(STATS_WORKBOOKS)
    join_keys = [k for k in ("workbook", "sha256") if k in data.columns and k in releases.columns]
    dates = [c for c in PUBLICATION_DATES if c in releases.columns]
    published = releases.select(*join_keys, **{f"published_{c}": releases[c] for c in dates})
    rows = data.join(published, join_keys)
    rows = rows.filter(~_undated(rows))
    snapshot = rows.snapshot_date if "snapshot_date" in rows.columns else ibis.null("date")
    printed_first = sorted(dates, key=lambda c: c != "as_of_date")
    rows = rows.mutate(date=ibis.coalesce(snapshot, *[rows[f"published_{c}"]
                                                      for c in printed_first]))
    stale = stale_snapshots(backend)
    if stale is not None and "fiscal_year" in rows.columns:
        rows = rows.anti_join(stale, ["workbook", "fiscal_year"])
    # A snapshot describes one day; a later release reprinting it adds nothing but can add
    # errors (docs/methodology.md gives one), so the first printing stands.
    group = [*keys, "date"]
    in_order = ibis.window(
        group_by=group,
        order_by=[ibis.coalesce(*[rows[f"published_{c}"] for c in dates]), rows.workbook],
    )
    rows = rows.mutate(printing=ibis.row_number().over(in_order),
                       first_value=rows[value].first().over(in_order))
    whole = ibis.window(group_by=group)
    differs = (rows[value] != rows.first_value).fill_null(False).cast("int64")
    rows = rows.mutate(n_printings=rows.printing.count().over(whole),
                       reprints_differing=differs.sum().over(whole))
    return rows.filter(rows.printing == 0).drop(
        "printing", "first_value", *[f"published_{c}" for c in dates])


def failed_checks(backend: ibis.BaseBackend, spec: SeriesSpec) -> ir.Table:
    """Per workbook, the names of the checks that failed for the series' table or for the
    workbook as a whole (its dates, its fiscal year), alphabetically, "; "-separated.

    Checks within a workbook and across releases (a release compared with the one before it)
    both count. Check rows name their workbook, not its sha256: two files loaded under one name
    (which the checks warn about) share their failures.
    """
    names = set(table_names(backend))
    checks = [backend.table(name).select("workbook", "check", "table", "status")
              for name in (STATS_CHECKS, STATS_RELEASE_CHECKS) if name in names]
    if not checks:
        return memtable(pa.table({"workbook": pa.array([], pa.string()),
                                  "failed_checks": pa.array([], pa.string())}))
    every = checks[0].union(*checks[1:]) if len(checks) > 1 else checks[0]
    failed = every.filter((every.status == FAIL)
                          & every.table.isin([spec.table, STATS_WORKBOOKS]))
    return failed.group_by("workbook").aggregate(
        failed_checks=failed.check.collect(distinct=True).sort().join("; "))


def latest(backend: ibis.BaseBackend, spec: SeriesSpec, data: ir.Table | None = None
           ) -> ir.Table:
    """One row per (period, dimensions): the latest published value and its revision summary.
    `data`: as for `versions`."""
    rows = versions(backend, spec, data)
    rows = rows.filter(rows.is_latest)
    provenance = [c for c in ("sha256", "sheet", "cell_range", "as_of_source")
                  if c in rows.schema()]
    return rows.select(
        *spec.dimensions, *spec.period, "value", "failed_checks",
        "workbook", "file_date", "as_of_date", *provenance,
        "first_value", "first_workbook",
        change_since_first=rows.value - rows.first_value,
        n_releases=rows.n_releases,
        n_revisions=rows.n_revisions,
        max_abs_revision=rows.max_abs_revision,
    ).order_by([*spec.dimensions, *spec.period])


def version_history(backend: ibis.BaseBackend, spec: SeriesSpec) -> ir.Table:
    rows = versions(backend, spec)
    provenance = [c for c in ("sha256", "sheet", "cell_range", "as_of_source")
                  if c in rows.schema()]
    return rows.select(
        *spec.dimensions, "month", "release_number", "workbook", "file_date", "as_of_date",
        *provenance, "value", "previous_value", "change", "is_revision", "is_latest",
        "failed_checks", "left_out",
    ).order_by([*spec.dimensions, "month", "release_number"])


def key_columns(spec: SeriesSpec, all_versions: bool = False) -> list[str]:
    """The columns that fit a terminal; files get every column."""
    if all_versions:
        return [*spec.dimensions, "month", "release_number", "workbook", "value", "change",
                "failed_checks"]
    return [*spec.dimensions, "month", "value", "workbook", "n_releases", "n_revisions",
            "max_abs_revision", "failed_checks"]


def published_series(backend: ibis.BaseBackend, table: str, value: str | None = None,
                     all_versions: bool = False) -> tuple[SeriesSpec, pa.Table]:
    spec = series_spec(backend, table, value)
    _require_one_figure_per_release(backend, spec)
    build = version_history if all_versions else latest
    return spec, build(backend, spec).to_pyarrow()


def _require_one_figure_per_release(backend: ibis.BaseBackend, spec: SeriesSpec) -> None:
    # Two figures for one month and dimension combination in one release would make "the"
    # published value ambiguous; it means the table has a dimension this module cannot see.
    data = backend.table(spec.table)
    # A workbook's snapshots (its fiscal years' sheets) are releases of their own.
    keys = [*spec.dimensions, "month",
            *[k for k in ("workbook", "sha256", "fiscal_year") if k in data.schema()]]
    clash = (data.filter(data[spec.value].notnull()).group_by(keys)
             .aggregate(n=data[spec.value].count()).filter(lambda t: t.n > 1)
             .limit(1).to_pyarrow().to_pylist())
    if clash:
        where = ", ".join(f"{k}={clash[0][k]}" for k in keys)
        raise IceledgerError(
            f"{spec.table}: {clash[0]['n']} figures for one month in one release ({where}); "
            f"the table needs a dimension column besides {', '.join(spec.dimensions) or 'month'}"
        )
