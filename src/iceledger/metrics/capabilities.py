"""What a period's FOIA records can say: which canonical columns they carry.

ICE answers each FOIA requester in its own layout: one production has book-out dates and person
identifiers, another redacts every identifier or has no book-outs at all. A metric declares the
columns it needs (`Metric.needs`); before it is computed, the records that speak for the period
(for each day, the release the metrics themselves count it from) are grouped by release and
fiscal year of their key date, and each needed column's non-empty cells counted. A group in
which fewer than CARRIED_SHARE of the rows hold a value lacks the column: a redacted cell is
NULL after ingest, and a column absent from a layout is NULL throughout. Then the metric is
not measurable, and says why and where, rather than count every stay as still open or every
day's arrests as one person; or, for a need that says how the metric counts without it
(`Need.otherwise`), it is computed and that is added to its caveats.

Groups, not the whole warehouse: a release lacking a column over the days a newer release speaks
for changes nothing, and one lacking it for some fiscal years (ICE's sheets are per fiscal year)
refuses only the periods that reach into those years.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import ibis
import pyarrow as pa
from ibis.common.exceptions import TableNotFound

from iceledger.field_offices import field_offices
from iceledger.metrics.backends import memtable, remembered
from iceledger.metrics.registry import (
    RECORD_DIMENSIONS,
    REGISTRY,
    Metric,
    MetricParams,
    NationalFigure,
    Need,
    NotMeasurable,
    View,
    install_measurability_check,
    register,
    table_columns,
    unheld_text,
)
from iceledger.metrics.volume import (
    REACH_PART,
    REACH_UNNAMED,
    Windows,
    during,
    fiscal_year,
    fiscal_year_of,
    offices_by_release,
    reach,
    release_spans,
    release_windows,
)
from iceledger.tables import FOIA_ARREST_STAY_LINKS, FOIA_RELEASES, catalogue, key_dates

# A column held by fewer than 1 row in 100 of a release's fiscal year is not carried there: a
# production either has a column or redacts (or omits) it wholesale, while a column it has is
# empty only for some rows (a stay still open at the release end has no book-out yet, and even
# a release ending days into a fiscal year has closed a good part of that year's stays).
CARRIED_SHARE = 0.01
# A release's fiscal year with fewer rows than this is not judged: so few rows cannot tell a
# column ICE left out from one empty by chance (a short release whose few stays are all open).
JUDGED_ROWS = 20

# The date that places each table's rows in time (and in a release's coverage).
KEY_DATES = {name: column for name, column in key_dates().items()
             if name != FOIA_ARREST_STAY_LINKS}

# What a column holds, as a reader would name it.
MEANINGS = {
    "stay_book_out": "book-out dates",
    "person_id": "person identifiers",
    "criminality": "criminality classes",
    "stay_release_reason": "release reasons",
}


@dataclass(frozen=True)
class Gap:
    """Records of one release that lack a needed column, over some fiscal years."""

    need: Need
    release: str | None
    fiscal_years: tuple[int, ...]
    rows: int
    with_value: int

    def where(self) -> str:
        meaning = MEANINGS.get(self.need.column, f"values of {self.need.column}")
        records = catalogue()[self.need.table].derived_from or self.need.table
        return (
            f"release {self.release or '(unnamed)'} has no {meaning} in "
            f"{records}.{self.need.column} for {fiscal_years_text(self.fiscal_years)} "
            f"({self.with_value:,} of {self.rows:,} rows hold one)"
        )


@dataclass(frozen=True)
class Assessment:
    refusals: tuple[str, ...]  # why the metric is not measurable; empty when it is
    caveats: tuple[str, ...]  # how it counts without a column the records lack


def require_measurable(metric: Metric, backend: ibis.BaseBackend, params: MetricParams
                       ) -> tuple[str, ...]:
    """The caveats the records call for; NotMeasurable when they lack a column the metric needs."""
    assessment = assess(metric, backend, params)
    if assessment.refusals:
        raise NotMeasurable("; ".join(assessment.refusals))
    return assessment.caveats


def assess(metric: Metric, backend: ibis.BaseBackend, params: MetricParams) -> Assessment:
    # Gaps that share a reason are said once: "<why>, and <where>; <where>".
    refused: dict[str, list[str]] = {}
    caveats: dict[str, list[str]] = {}
    for table_name, needs in _by_table(metric.needs).items():
        for gap in gaps(backend, table_name, needs, params):
            if gap.need.otherwise is None:
                refused.setdefault(gap.need.why, []).append(gap.where())
            else:
                caveats.setdefault(gap.need.otherwise, []).append(gap.where())
    for why, where in unheld_columns(metric, backend, params).items():
        refused.setdefault(why, [where])
    partial, unnamed = national_reach(backend, metric.national, params,
                                      by_office="aor" in metric.dimensions)
    for why, where in partial.items():
        refused.setdefault(why, []).extend(where)
    for otherwise, where in unnamed.items():
        caveats.setdefault(otherwise, []).extend(where)
    if not metric.national:
        for table_name in (t for t in metric.tables if t in KEY_DATES):
            caveats.setdefault(PART_OF_COUNTRY, []).extend(
                where for kind, where in reaches(backend, table_name, params)
                if kind == REACH_PART)
    return Assessment(refusal_texts(refused), caveat_texts(caveats))


def refusal_texts(refused: dict[str, list[str]]) -> tuple[str, ...]:
    """Each reason with the places it holds: "<why>, and <where>; <where>"."""
    return tuple(f"{why}, and {'; '.join(where)}" for why, where in refused.items())


def caveat_texts(caveats: dict[str, list[str]]) -> tuple[str, ...]:
    """Each caveat after the places it holds: "<where>; <where>: <what it means>"."""
    return tuple(f"{'; '.join(where)}: {otherwise}" for otherwise, where in caveats.items()
                 if where)


def national_reach(backend: ibis.BaseBackend, figures: Iterable[NationalFigure],
                   params: MetricParams, by_office: bool = False
                   ) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Where the period's records cannot stand beside national figures, and where their reach
    is unknown: for each figure, the releases whose records name only part of ICE's field
    offices (why it is refused -> where) and those naming none (what it means -> where).
    Nothing when a metric comparing office by office (`by_office`: with each office's share of
    the figure) is asked for by field office."""
    partial: dict[str, list[str]] = {}
    unknown: dict[str, list[str]] = {}
    if by_office and ("aor" in params.by or "aor" in params.filters):
        return partial, unknown
    for figure in figures:
        partial_why = (f"{figure.figure} is national, and records of part of the country cannot "
                       "be set beside it" + (" (by field office they can: --by aor)"
                                             if by_office else ""))
        unnamed_why = (f"whether its records reach the whole country is not in them (ICE "
                       "answers some FOIA requests with one field office's records), and "
                       f"{figure.figure} is national: the two compare only if they do")
        for kind, where in reaches(backend, figure.table, params):
            found, why = (partial, partial_why) if kind == REACH_PART else (unknown, unnamed_why)
            found.setdefault(why, []).append(where)
    return partial, unknown


# What a count means where a release of part of the country speaks for some of its days.
PART_OF_COUNTRY = ("it speaks for the days no release reaching further covers, and there the "
                   "count is of that part of the country, not of the whole of ICE")


def reaches(backend: ibis.BaseBackend, table_name: str, params: MetricParams
            ) -> list[tuple[str, str]]:
    """(REACH_PART or REACH_UNNAMED, where) for each release speaking for the period whose
    records of the table are of part of the country or name no field office."""
    records = catalogue()[table_name].derived_from or table_name
    offices = len(field_offices())
    found = []
    for group in sorted(offices_named(backend, table_name, params),
                        key=lambda g: g["release"] or ""):
        name, named = group["release"] or "(unnamed)", group["offices"]
        kind = reach(group["rows"], group["named"], len(named))
        if kind == REACH_UNNAMED:
            found.append((kind, f"release {name} names no field office in {records}.aor "
                                f"({group['named']:,} of {group['rows']:,} rows name one)"
                          if not group["named"] else
                          f"release {name} names a field office in only {group['named']:,} of "
                          f"{group['rows']:,} rows of {records}.aor"))
        elif kind == REACH_PART:
            listed = ", ".join(named[:5]) + (f" and {len(named) - 5} more"
                                              if len(named) > 5 else "")
            found.append((kind, f"release {name}'s records in {records} name {len(named)} of "
                                f"ICE's {offices} field offices ({listed})"))
    return found


def unheld_columns(metric: Metric, backend: ibis.BaseBackend, params: MetricParams
                   ) -> dict[str, str]:
    """The record dimensions the metric groups by or is filtered on that no table it reads holds
    at all (no loaded layout carried the column, as the UW v. DHS production carries no field
    office), each with where it is missing; judged on the tables' columns, however few their
    rows. (Any other column an expression asks for and the records lack is refused as the
    metric is built: registry.compute.)"""
    grouped = [d for d in dict.fromkeys([*metric.disclosure.keys, *params.by, *params.filters])
               if d in RECORD_DIMENSIONS]
    tables = [name for name in metric.tables if name in catalogue()]
    held = table_columns(backend, tables) if grouped else {}
    if not held or len(held) < len(tables):
        return {}  # the metric says which table is missing when it reads it
    every = set().union(*held.values())
    records = [name for name in held if name in KEY_DATES] or list(held)
    return {f"the rows are counted by {dimension}": unheld_text(records, dimension)
            for dimension in grouped if dimension not in every}


def gaps(backend: ibis.BaseBackend, table_name: str, needs: Iterable[Need],
         params: MetricParams) -> list[Gap]:
    """Per release, the fiscal years of the period in which its records lack a needed column.

    Each release is judged over all its rows of a fiscal year (if it has JUDGED_ROWS), and only
    for the years in which it speaks for a day of the period.
    """
    needs = list(needs)
    judged = [g for g in counted(backend, table_name, [n.column for n in needs], params)
              if g["rows"] >= JUDGED_ROWS]
    found = []
    for need in needs:
        lacking: dict[str | None, list[dict]] = {}
        for group in judged:
            if group[need.column] < CARRIED_SHARE * group["rows"]:
                lacking.setdefault(group["release"], []).append(group)
        for release, groups in sorted(lacking.items(), key=lambda kv: kv[0] or ""):
            found.append(Gap(
                need,
                release,
                tuple(sorted(g["fiscal_year"] for g in groups)),
                sum(g["rows"] for g in groups),
                sum(g[need.column] for g in groups),
            ))
    return found


def counted(backend: ibis.BaseBackend, table_name: str, columns: list[str],
            params: MetricParams) -> list[dict]:
    """release, fiscal_year, rows and, per column, the rows holding a value: for each release
    and fiscal year in which it speaks for a day of the period.

    A table the warehouse does not have has no groups (the metric reading it says it is
    missing), nor one without releases and key dates. A derived table is judged by the records
    it is built from (tables.Table.derived_from).
    """
    spoken = _spoken_for(backend, table_name, params)
    if spoken is None:
        return []
    records, table, key, speaks, span = spoken
    # Every column some metric needs from the table is counted in the one pass, so that the
    # metrics asking next are answered without another (where the backend remembers).
    wanted = tuple(sorted(set(columns) | needed_columns(records)))
    groups = remembered(backend, ("columns carried", records, span.start, span.end, wanted),
                        lambda: _count_columns(table, key, span, wanted))
    return [dict(g) for g in groups if g["fiscal_year"] in speaks.get(g["release"], ())]


def offices_named(backend: ibis.BaseBackend, table_name: str, params: MetricParams
                  ) -> list[dict]:
    """release, rows, named (the rows naming a field office) and offices (those they name,
    sorted), over all the records of each release that speaks for a day of the period: a
    production's reach is its request's, and a few weeks of a fiscal year could name few
    offices by chance."""
    spoken = _spoken_for(backend, table_name, params)
    if spoken is None:
        return []
    _, table, _, speaks, _ = spoken
    groups = offices_by_release(backend, table)
    return [{**g, "offices": list(g["offices"])} for g in groups if g["release"] in speaks]


def _spoken_for(backend: ibis.BaseBackend, table_name: str, params: MetricParams):
    """(records table name, table, key date column, release -> fiscal years it speaks for in
    the period, a span of those whole years), or None when no release speaks for the period."""
    table_name = catalogue()[table_name].derived_from or table_name
    try:
        table = backend.table(table_name)
    except TableNotFound:
        return None
    key = KEY_DATES[table_name]
    if not {"release", key} <= set(table.columns):
        return None  # not loaded by `iceledger ingest foia`: nothing places its rows in a release
    speaks = _fiscal_years_spoken_for(release_windows(release_spans(backend, table, key)), params)
    if not speaks:
        return None
    # Only the fiscal years some release speaks for in the period are read (DuckDB skips the
    # other row groups by their least and greatest key date).
    years = set().union(*speaks.values())
    span = MetricParams(start=date(min(years) - 1, 10, 1), end=date(max(years), 9, 30))
    return table_name, table, key, speaks, span


def needed_columns(table_name: str) -> set[str]:
    """The columns registered metrics need from a table of records (or from tables derived from
    it)."""
    return {need.column for metric in REGISTRY.values() for need in metric.needs
            if (catalogue()[need.table].derived_from or need.table) == table_name}


def _count_columns(table: ibis.Table, key: str, span: MetricParams,
                   columns: tuple[str, ...]) -> list[dict]:
    """release, fiscal_year, rows and each column's rows holding a value, over the span."""
    # A column no loaded layout had is not in the table at all: none of its rows hold one.
    absent = {c: ibis.null("string") for c in columns if c not in table.columns}
    rows = during(table, span, key).mutate(**absent)
    year = fiscal_year_of(rows[key].cast("date")).name("fiscal_year")
    return rows.group_by(["release", year]).aggregate(
        rows=ibis._.count(), **{column: rows[column].count() for column in columns}
    ).to_pyarrow().to_pylist()


def _fiscal_years_spoken_for(windows: Windows, params: MetricParams) -> dict[str | None, set[int]]:
    """release -> the fiscal years in which it speaks for a day of the period."""
    years: dict[str | None, set[int]] = {}
    for release, spans in windows.items():
        for start, end in spans:
            start, end = max(start, params.start or start), min(end, params.end or end)
            if start <= end:
                years.setdefault(release, set()).update(
                    range(fiscal_year(start), fiscal_year(end) + 1))
    return years


def fiscal_years_text(years: tuple[int, ...]) -> str:
    """FY2012-FY2014, FY2016 for (2012, 2013, 2014, 2016)."""
    runs: list[list[int]] = []
    for year in years:
        if runs and year == runs[-1][-1] + 1:
            runs[-1].append(year)
        else:
            runs.append([year])
    return ", ".join(
        f"FY{run[0]}" if len(run) == 1 else f"FY{run[0]}-FY{run[-1]}" for run in runs
    )


def _by_table(needs: Iterable[Need]) -> dict[str, list[Need]]:
    grouped: dict[str, list[Need]] = {}
    for need in needs:
        grouped.setdefault(need.table, []).append(need)
    return grouped


# --- what each release carries, as a metric ------------------------------------------------------

_RECORD_COLUMNS = pa.schema([
    ("dataset", pa.string()), ("release", pa.string()), ("fiscal_year", pa.int64()),
    ("column", pa.string()), ("rows", pa.int64()), ("with_value", pa.int64()),
    ("share", pa.float64()), ("carried", pa.bool_()), ("needed_by", pa.string()),
])


def _record_columns(backend: ibis.BaseBackend, params: MetricParams) -> ibis.Table:
    needed_by: dict[tuple[str, str], list[str]] = {}
    for metric in REGISTRY.values():
        for need in metric.needs:
            needed_by.setdefault((need.table, need.column), []).append(metric.name)
    columns: dict[str, list[str]] = {}
    for table_name, column in sorted(needed_by):
        columns.setdefault(table_name, []).append(column)
    rows = []
    for table_name, table_columns in columns.items():
        for group in counted(backend, table_name, table_columns, params):
            for column in table_columns:
                share = group[column] / group["rows"]
                rows.append({
                    "dataset": table_name, "release": group["release"],
                    "fiscal_year": group["fiscal_year"], "column": column,
                    "rows": group["rows"], "with_value": group[column], "share": share,
                    "carried": share >= CARRIED_SHARE if group["rows"] >= JUDGED_ROWS else None,
                    "needed_by": ", ".join(sorted(needed_by[(table_name, column)])),
                })
    table = memtable(pa.Table.from_pylist(rows, schema=_RECORD_COLUMNS))
    return table.order_by(["dataset", "release", "fiscal_year", "column"])


register(
    Metric(
        name="record_columns",
        view=View("share", "share of rows", "dots", group="column"),
        title="What the records can say: the columns each release carries, by fiscal year",
        question="reconciliation",
        definition=(
            "For each FOIA dataset, release and fiscal year in which the release speaks for a "
            "day of the period, and each canonical column some metric needs (needed_by names "
            "them): rows, the rows holding a value (with_value; a redacted cell is empty) and "
            "their share. carried is false when fewer than 1 row in 100 holds one: then the "
            "metrics that need the column are not measurable over those days (or, where they "
            f"can count without it, say how). Empty when the release has fewer than {JUDGED_ROWS} "
            "rows that year, too few to judge."
        ),
        unit="rows; share of rows",
        caveats=(
            "A column a release carries can still be empty for some rows (a stay open at the "
            "release end has no book-out yet); the share says how many.",
        ),
        tables=(FOIA_RELEASES,),
        build=_record_columns,
    )
)

install_measurability_check(require_measurable)
