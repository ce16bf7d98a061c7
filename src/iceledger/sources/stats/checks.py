"""Validation checks for ICE's detention-statistics workbooks.

ICE's workbooks carry publication errors that reporters have caught by hand: ICE and CBP columns
transposed (the release of 2025-02-27/28, TRAC 2025-02-28), "data as of" dates that did not move
(TRAC 2025-02-19) or that name the wrong year, facility ADPs that summed to only 42,221 and fell
at 96 facilities in two weeks (the 2025-07-17 release, TRAC 2025-07-18). These checks make that
scrutiny routine. They never change or drop a figure: every check yields rows (pass / warn / fail)
with the expected and observed values and the cells involved, and the figures load as published.

Two kinds of check:
- within one workbook (`run_checks`): parts add to printed totals, ICE + CBP = Total, the stated
  fiscal year agrees with the months and the file date, the data date is plausible, facility ADPs
  add up to (nearly) the national ADP. These are loaded with the workbook as `stats_checks`.
- across releases (`run_release_checks`): a workbook compared with the release before it, in the
  order of their data dates: a stale re-post (older data posted after newer), a file-name date
  before the data, ICE/CBP transposition, a data date that did not advance, facility bed-days
  that went backwards. Their
  answer depends on which releases are loaded, so they form a derived table, `stats_release_checks`,
  rebuilt over the whole warehouse (`review_warehouse`).

Every check runs per snapshot (`snapshots_of`): a workbook carrying two fiscal years' sheets is
checked year by year, never adding figures of two years. Tolerances are documented with their
evidence in docs/stats-checks.md.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from operator import itemgetter
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from iceledger.errors import IceledgerError
from iceledger.sources.stats.cells import fiscal_year_in
from iceledger.sources.stats.sheet_tables import TableColumns, load_layout
from iceledger.sources.stats.snapshots import OrderedSnapshot, Snapshot, order_snapshots
from iceledger.tables import (
    FAIL,
    PASS,
    STALE_REPOST_CHECK,
    STATS_ADP,
    STATS_ADP_BY_FACILITY_TYPE,
    STATS_ADP_FY,
    STATS_ALOS,
    STATS_ALOS_ADULT_BY_AGENCY,
    STATS_ALOS_BY_FACILITY_TYPE,
    STATS_BOOK_INS,
    STATS_BOOK_INS_BY_FACILITY_TYPE,
    STATS_BOOK_OUTS,
    STATS_BOOK_OUTS_BY_FACILITY_TYPE,
    STATS_CHECKS,
    STATS_DETAINED_BY_DISPOSITION,
    STATS_DETAINED_NOW,
    STATS_FACILITIES,
    STATS_RELEASE_CHECKS,
    STATS_UNRECOGNISED,
    STATS_WORKBOOKS,
    WARN,
)
from iceledger.warehouse import replace_table

if TYPE_CHECKING:
    import duckdb

    from iceledger.sources.stats.parsed import ParsedWorkbook
    from iceledger.warehouse import Warehouse

TOTAL = "Total"

CHECKS_COLUMNS = (
    ("workbook", "string"),
    ("check", "string"),
    ("table", "string"),
    ("status", "string"),
    ("detail", "string"),
    ("location", "string"),
    ("expected", "float64"),
    ("observed", "float64"),
    ("compared_with", "string"),
    # The snapshot checked: a workbook holding two years' sheets is checked year by year.
    ("fiscal_year", "int32"),
)
CHECKS_SCHEMA = pa.schema([(name, getattr(pa, kind)()) for name, kind in CHECKS_COLUMNS])


@dataclass(frozen=True)
class ReleaseTables:
    """A release rebuilt from the warehouse, for the checks that compare releases.

    The checks read only these attributes, so they take a parsed workbook (ParsedWorkbook) too.
    """

    workbook: str
    fiscal_year: int | None
    file_date: date | None
    as_of_date: date | None
    tables: Mapping[str, pa.Table]
    archive_date: date | None = None  # web-archive capture, from a name like 20221210163906-...
    # The latest snapshot date of the release's tables (the footnote dates), when known.
    data_date: date | None = None
    sha256: str | None = None
    # False for an older year's sheets carried beside the workbook's own year: the file name
    # and file date describe the workbook's own year only.
    primary: bool = True


if TYPE_CHECKING:
    Release = ReleaseTables | ParsedWorkbook


@dataclass(frozen=True)
class CheckResult:
    workbook: str
    check: str
    table: str
    status: str
    detail: str
    location: str | None = None
    expected: float | None = None
    observed: float | None = None
    compared_with: str | None = None
    fiscal_year: int | None = None


def results_table(results: Iterable[CheckResult], fiscal_year: int | None = None) -> pa.Table:
    """The results as a table; `fiscal_year` names the snapshot of those that name none.

    Built column by column from buffers: `pa.Table.from_pylist` imports pandas, which costs
    more than checking every workbook of a run.
    """
    results = list(results)
    columns = {name: [getattr(r, name) for r in results] for name, _ in CHECKS_COLUMNS}
    if fiscal_year is not None:
        columns["fiscal_year"] = [fiscal_year if year is None else year
                                  for year in columns["fiscal_year"]]
    table = TableColumns()
    table.declare(CHECKS_COLUMNS)
    table.add({}, columns, len(results))
    return table.to_arrow()


# --- parts and totals ---------------------------------------------------------------------------

@dataclass(frozen=True)
class PartsRule:
    """Within each group of rows sharing `by`, the `total` label's value must equal the combined
    values of the other labels of `dimension` (or of the listed `parts`).

    `combine="sum"` is for counts and for ADPs (a population splits into its parts); for averages
    over people (ALOS) a total is a weighted mean of its parts, so it must lie within their range.
    `nested` names subtotals printed among the parts (Bonded Out = Bond Set by ICE + by IJ): a
    subtotal's children are left out of the parent total so that nothing is counted twice.
    A rule on a month table also runs on its fiscal-year totals table (`<table>_fy`, the same
    groups without the month).
    """

    check: str
    table: str
    value: str
    dimension: str
    by: tuple[str, ...]
    parts: tuple[str, ...] | None = None
    total: str = TOTAL
    nested: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    combine: str = "sum"
    # Counts are whole numbers, so any gap of one or more is real; ADPs are printed as full floats.
    tolerance: float = 0.5

    def part_labels(self, labels: Iterable[str],
                    is_new: Callable[[object], bool] = lambda label: False) -> list[str]:
        """The labels summed against the total: the listed `parts` and, against the grand
        Total, any new category of the dimension (an agency ICE adds beside ICE and CBP; a new
        release reason is no part of Bonded Out), else every label but the total and the
        children of a subtotal printed among them."""
        present = [label for label in labels if label != self.total]
        if self.parts is not None:
            return [label for label in present
                    if label in self.parts or (self.total == TOTAL and is_new(label))]
        children = {c for parent, kids in self.nested.items() if parent in present for c in kids}
        return [label for label in present if label not in children]

    def variants(self) -> list[PartsRule]:
        if "month" not in self.by:
            return [self]
        totals = replace(self, table=f"{self.table}_fy",
                         by=tuple(c for c in self.by if c != "month"))
        return [self, totals]


_BONDED_OUT = {"Bonded Out": ("Bond Set by ICE", "Bond Set by IJ")}
_AGENCIES = ("ICE", "CBP")
_CLASSES_ADD_UP = "criminality classes add to total"
_AGENCIES_ADD_UP = "ICE + CBP = Total"
_TYPES_ADD_UP = "facility types add to total"
_AVERAGE_IN_RANGE = "total average within range of its parts"
ADP_TOLERANCE = 0.05  # persons; ADPs are printed unrounded, so parts match totals to float noise
ALOS_TOLERANCE = 0.01  # days

PARTS_RULES: tuple[PartsRule, ...] = (
    PartsRule(_CLASSES_ADD_UP, STATS_DETAINED_NOW, "detained", "criminality", ("agency",)),
    PartsRule(_AGENCIES_ADD_UP, STATS_DETAINED_NOW, "detained", "agency", ("criminality",),
              parts=_AGENCIES),
    PartsRule(_TYPES_ADD_UP, STATS_DETAINED_BY_DISPOSITION, "detained", "facility_type",
              ("disposition",)),
    PartsRule("dispositions add to total", STATS_DETAINED_BY_DISPOSITION, "detained",
              "disposition", ("facility_type",)),
    PartsRule(_AGENCIES_ADD_UP, STATS_BOOK_INS, "book_ins", "agency", ("month",),
              parts=_AGENCIES),
    PartsRule(_TYPES_ADD_UP, STATS_BOOK_INS_BY_FACILITY_TYPE, "book_ins", "facility_type",
              ("criminality",)),
    PartsRule(_CLASSES_ADD_UP, STATS_BOOK_INS_BY_FACILITY_TYPE, "book_ins", "criminality",
              ("facility_type",)),
    PartsRule(_CLASSES_ADD_UP, STATS_BOOK_OUTS, "book_outs", "criminality",
              ("month", "release_reason")),
    PartsRule("release reasons add to total", STATS_BOOK_OUTS, "book_outs", "release_reason",
              ("month", "criminality"), nested=_BONDED_OUT),
    PartsRule("subtotal release reasons add up", STATS_BOOK_OUTS, "book_outs",
              "release_reason", ("month", "criminality"), total="Bonded Out",
              parts=_BONDED_OUT["Bonded Out"]),
    PartsRule(_TYPES_ADD_UP, STATS_BOOK_OUTS_BY_FACILITY_TYPE, "book_outs", "facility_type",
              ()),
    PartsRule(_CLASSES_ADD_UP, STATS_ADP, "adp", "criminality", ("month", "agency"),
              tolerance=ADP_TOLERANCE),
    PartsRule(_AGENCIES_ADD_UP, STATS_ADP, "adp", "agency", ("month", "criminality"),
              parts=_AGENCIES, tolerance=ADP_TOLERANCE),
    PartsRule(_TYPES_ADD_UP, STATS_ADP_BY_FACILITY_TYPE, "adp", "facility_type", ("month",),
              tolerance=ADP_TOLERANCE),
    PartsRule(_AVERAGE_IN_RANGE, STATS_ALOS, "alos_days", "criminality", ("month", "agency"),
              combine="range", tolerance=ALOS_TOLERANCE),
    PartsRule(_AVERAGE_IN_RANGE, STATS_ALOS, "alos_days", "agency", ("month", "criminality"),
              parts=_AGENCIES, combine="range", tolerance=ALOS_TOLERANCE),
    PartsRule(_AVERAGE_IN_RANGE, STATS_ALOS_BY_FACILITY_TYPE, "alos_days", "facility_type",
              ("month",), combine="range", tolerance=ALOS_TOLERANCE),
    PartsRule(_AVERAGE_IN_RANGE, STATS_ALOS_ADULT_BY_AGENCY, "alos_days", "agency",
              ("month",), parts=_AGENCIES, combine="range", tolerance=ALOS_TOLERANCE),
)


@dataclass(frozen=True)
class MonthsRule:
    """A month table's months combine to the fiscal-year figure printed beside them (`_fy`).

    Counts sum. ADPs combine as a mean weighted by each month's days (the figure is bed-days over
    days), the last month counted only to the data date, which is not printed for the ADP tables:
    the check finds the day count that reproduces the printed figure, if one does. An average
    length of stay is weighted by book-outs, which the table does not give, so it must only lie
    within the range of the months.
    """

    table: str
    value: str
    keys: tuple[str, ...]
    combine: str = "sum"
    tolerance: float = 0.5

    @property
    def check(self) -> str:
        return "months add to fiscal-year total"

    @property
    def totals_table(self) -> str:
        return f"{self.table}_fy"


MONTHS_RULES: tuple[MonthsRule, ...] = (
    MonthsRule(STATS_BOOK_INS, "book_ins", ("agency",)),
    MonthsRule(STATS_BOOK_OUTS, "book_outs", ("release_reason", "criminality")),
    MonthsRule(STATS_ADP, "adp", ("agency", "criminality"), "days", ADP_TOLERANCE),
    MonthsRule(STATS_ADP_BY_FACILITY_TYPE, "adp", ("facility_type",), "days", ADP_TOLERANCE),
    MonthsRule(STATS_ALOS, "alos_days", ("agency", "criminality"), "range", ALOS_TOLERANCE),
    MonthsRule(STATS_ALOS_BY_FACILITY_TYPE, "alos_days", ("facility_type",), "range",
               ALOS_TOLERANCE),
    MonthsRule(STATS_ALOS_ADULT_BY_AGENCY, "alos_days", ("agency",), "range", ALOS_TOLERANCE),
)


# Every column the parts and months rules read.
_RULE_COLUMNS = tuple(dict.fromkeys(
    [column for rule in PARTS_RULES for column in (rule.value, rule.dimension, *rule.by)]
    + [column for rule in MONTHS_RULES for column in (rule.value, "month", *rule.keys)]))


def _key_getter(columns: Sequence[str]) -> Callable[[dict], tuple]:
    """A row's values of `columns`, as a tuple."""
    if len(columns) > 1:
        return itemgetter(*columns)
    if columns:
        column = columns[0]
        return lambda row: (row[column],)
    return lambda row: ()


def _missing_columns(table: pa.Table, columns: Iterable[str]) -> list[str]:
    present = set(table.schema.names)
    return [c for c in columns if c not in present]


# Where each figure is printed: a check names the sheet and cells of the figures it compares.
_LOCATION_COLUMNS = ("sheet", "cell_range")


def _rows(table: pa.Table, columns: Iterable[str]) -> list[dict]:
    """The table's rows as dicts of `columns` (those it has) and where each figure is printed.

    Converting only the columns a check reads is several times faster than every column.
    """
    present = set(table.schema.names)
    names = [c for c in dict.fromkeys((*columns, *_LOCATION_COLUMNS)) if c in present]
    values = [_python_values(table.column(name)) for name in names]
    return [dict(zip(names, row)) for row in zip(*values)]


def _python_values(column: pa.ChunkedArray) -> list:
    """The column's values as Python objects, as `to_pylist` gives them.

    Arrow makes each date through a scalar of its own, many times slower than a float; a date
    column (a few distinct months over thousands of rows) converts its distinct values once.
    """
    if not pa.types.is_date32(column.type):
        return column.to_pylist()
    encoded = column.combine_chunks().dictionary_encode()
    dates = encoded.dictionary.to_pylist()
    return [None if index is None else dates[index] for index in encoded.indices.to_pylist()]


class _TableRows:
    """Each table's rows as dicts of the columns the rules read, made once however many rules
    read the table."""

    def __init__(self) -> None:
        self._made: dict[int, tuple[pa.Table, list[dict]]] = {}

    def __call__(self, table: pa.Table) -> list[dict]:
        made = self._made.get(id(table))
        if made is None:  # the table is kept with its rows, so its id is not reused meanwhile
            made = self._made[id(table)] = (table, _rows(table, _RULE_COLUMNS))
        return made[1]


def _check_parts(rule: PartsRule, workbook: str, table: pa.Table,
                 rows_of: _TableRows | None = None) -> list[CheckResult]:
    missing = _missing_columns(table, (rule.value, rule.dimension, *rule.by))
    if missing:
        return [CheckResult(workbook, rule.check, rule.table, WARN,
                            f"cannot run: the table has no column {', '.join(missing)}")]
    groups: dict[tuple, dict[str, dict]] = defaultdict(dict)
    key_of = _key_getter(rule.by)
    dimension = rule.dimension
    for row in (rows_of or _TableRows())(table):
        label = row[dimension]
        if label is not None:
            groups[key_of(row)][label] = row
    results = []
    comparison = Comparison(rule.check, rule.table, rule.combine, rule.tolerance, rule.value)
    whole = "fiscal year" if rule.table.endswith("_fy") else "whole table"
    compared = f"{rule.dimension} {rule.total!r}"
    declared = load_layout().dimensions.get(dimension)
    is_new = declared.is_new if declared is not None else (lambda label: False)
    for key, members in groups.items():
        total_row = members.get(rule.total)
        if total_row is None:
            continue
        parts = rule.part_labels(members, is_new)
        # A group without its total printed (ICE prints a release-reason total only for all
        # classes together), or with a single part, has nothing to add up.
        if not parts or (len(parts) < 2 and rule.parts is None):
            continue
        group = _describe_group(rule.by, key) or whole
        results.append(comparison.judge(workbook, f"{group}: {compared}",
                                        total_row, [members[p] for p in parts], parts))
    return [r for r in results if r is not None]


def _check_months(rule: MonthsRule, workbook: str, months: pa.Table,
                  totals: pa.Table, rows_of: _TableRows | None = None) -> list[CheckResult]:
    missing = (_missing_columns(months, (rule.value, "month", *rule.keys))
               + _missing_columns(totals, (rule.value, *rule.keys)))
    if missing:
        return [CheckResult(workbook, rule.check, rule.table, WARN,
                            f"cannot run: no column {', '.join(sorted(set(missing)))}")]
    by_key: dict[tuple, list[dict]] = defaultdict(list)
    rows_of = rows_of or _TableRows()
    key_of = _key_getter(rule.keys)
    for row in rows_of(months):
        by_key[key_of(row)].append(row)
    comparison = Comparison(rule.check, rule.table, rule.combine, rule.tolerance, rule.value)
    results = []
    for total_row in rows_of(totals):
        key = key_of(total_row)
        month_rows = sorted((r for r in by_key.get(key, []) if r[rule.value] is not None),
                            key=lambda r: r["month"])
        if not month_rows:
            continue
        names = [r["month"].isoformat()[:7] for r in month_rows]
        label = f"{_describe_group(rule.keys, key)}: fiscal-year figure"
        results.append(comparison.judge(workbook, label, total_row, month_rows, names))
    return [r for r in results if r is not None]


@dataclass(frozen=True)
class Comparison:
    """How a printed total is judged against the parts it should be made of."""

    check: str
    table: str
    combine: str  # "sum", "range" (a weighted average) or "days" (a mean weighted by days)
    tolerance: float
    value: str

    def judge(self, workbook: str, label: str, total_row: dict, part_rows: list[dict],
              part_names: list[str]) -> CheckResult | None:
        observed = total_row[self.value]
        values = [r[self.value] for r in part_rows]
        blanks = [name for name, v in zip(part_names, values) if v is None]
        known = [v for v in values if v is not None]
        location = _location([total_row, *part_rows])
        if observed is None and not known:
            return None  # a month not yet published: blank throughout, nothing to compare
        if observed is None or not known:
            return CheckResult(workbook, self.check, self.table, WARN,
                               f"{label}: total or all parts blank; not checkable", location)
        if self.combine == "sum":
            expected = float(sum(known))
            ok = abs(observed - expected) <= self.tolerance
            how = f"sum of {' + '.join(part_names)} = {_num(expected)}"
        elif self.combine == "days":
            expected, last_days = _day_weighted_mean(part_rows, self.value, observed)
            ok = abs(observed - expected) <= self.tolerance
            how = (f"mean of {part_names[0]}..{part_names[-1]} weighted by days = "
                   f"{_num(expected)} (closest with {part_names[-1]} counted to day {last_days})")
        else:
            low, high = min(known), max(known)
            ok = low - self.tolerance <= observed <= high + self.tolerance
            expected = low if observed < low else high if observed > high else observed
            how = f"range of {', '.join(part_names)} [{_num(low)}, {_num(high)}]"
        if ok:
            verdict = "lies within the" if self.combine == "range" else "="
        else:
            verdict = "lies OUTSIDE the" if self.combine == "range" else "≠"
        detail = f"{label} {_num(observed)} {verdict} {how}"
        if not ok and self.combine != "range":
            detail += f" (off by {_num(observed - expected, signed=True)})"
        status = PASS if ok else FAIL
        if blanks:
            # With a part missing the comparison can mislead either way: report, don't condemn.
            detail += f"; blank: {', '.join(blanks)}, left out"
            status = PASS if ok else WARN
        return CheckResult(workbook, self.check, self.table, status, detail, location,
                           expected, float(observed))


def _day_weighted_mean(month_rows: list[dict], value: str, target: float) -> tuple[float, int]:
    """The days-weighted mean of monthly figures closest to `target`, and the last month's days."""
    full = [calendar.monthrange(r["month"].year, r["month"].month)[1] for r in month_rows]
    weighted = sum(r[value] * d for r, d in zip(month_rows[:-1], full))
    days = sum(full[:-1])
    last = month_rows[-1][value]
    candidates = [((weighted + last * n) / (days + n), n) for n in range(1, full[-1] + 1)]
    return min(candidates, key=lambda c: abs(c[0] - target))


# --- fiscal year and data dates -----------------------------------------------------------------

# ICE posts a workbook about ten days after the data pull (5-21 days in 28 of the 30 archived
# releases with a date in their name, FY21-FY26); a longer gap means the printed date is stale.
STALE_AS_OF_DAYS = 45
# The final workbook of a fiscal year is posted up to about ten weeks after 30 September.
FINAL_RELEASE_GRACE_DAYS = 120


def fiscal_year_bounds(fiscal_year: int) -> tuple[date, date]:
    return date(fiscal_year - 1, 10, 1), date(fiscal_year, 9, 30)


# These tables print the months of the workbook's own fiscal year, October to September; other
# month tables (bond, ICLOS, segregation, credible-fear parole) reach into earlier years.
FISCAL_YEAR_MONTH_TABLES = {rule.table: rule.value for rule in MONTHS_RULES}


def _months_with_figures(release: Release) -> dict[str, set[date]]:
    found = {}
    for table_name, value in FISCAL_YEAR_MONTH_TABLES.items():
        table = release.tables.get(table_name)
        if table is not None and not _missing_columns(table, ("month", value)):
            found[table_name] = {
                month for month, figure in zip(_python_values(table.column("month")),
                                               table.column(value).to_pylist())
                if month is not None and figure not in (None, 0)}
    return found


def _check_fiscal_year(release: Release, months: Mapping[str, set[date]]) -> list[CheckResult]:
    """`months`: the months with figures of each fiscal-year month table (_months_with_figures)."""
    name = "fiscal year agrees with months and dates"
    fy = release.fiscal_year
    if fy is None:
        return [CheckResult(release.workbook, name, STATS_WORKBOOKS, WARN,
                            "the workbook states no fiscal year; months and dates not checkable")]
    start, end = fiscal_year_bounds(fy)
    results = []
    named = _file_name_fiscal_year(release.workbook)
    primary = getattr(release, "primary", True)
    if named is not None and primary:
        ok = named == fy
        results.append(CheckResult(
            release.workbook, name, STATS_WORKBOOKS, PASS if ok else WARN,
            f"the file name says FY{named}, the sheets and figures FY{fy}"
            + ("" if ok else f": the file is misnamed (its figures are read as FY{fy})"),
            expected=float(fy), observed=float(named)))
    outside = {t: sorted(m for m in ms if not start <= m <= end) for t, ms in months.items()}
    outside = {t: ms for t, ms in outside.items() if ms}
    if months:
        results.append(CheckResult(
            release.workbook, name, STATS_WORKBOOKS, FAIL if outside else PASS,
            f"FY{fy} runs {start}..{end}; "
            + (f"figures for months outside it: {_months_by_table(outside)}" if outside
               else f"the {len(months)} fiscal-year month tables have figures only within it"),
            expected=0.0, observed=float(len({m for ms in outside.values() for m in ms}))))
    if release.file_date is not None and primary:
        ok = start <= release.file_date <= end + timedelta(days=FINAL_RELEASE_GRACE_DAYS)
        results.append(CheckResult(
            release.workbook, name, STATS_WORKBOOKS, PASS if ok else FAIL,
            f"file date {release.file_date} {'lies' if ok else 'does NOT lie'} within FY{fy} "
            f"({start}..{end}, or up to {FINAL_RELEASE_GRACE_DAYS} days after for its final "
            "release)"))
    return results


def _months_by_table(months: Mapping[str, list[date]]) -> str:
    """"2022-06 (stats_adp, stats_book_ins)": tables with the same months are named together."""
    tables_by_months: dict[tuple[date, ...], list[str]] = defaultdict(list)
    for table, ms in sorted(months.items()):
        tables_by_months[tuple(ms)].append(table)
    return "; ".join(f"{', '.join(m.isoformat()[:7] for m in ms)} ({', '.join(tables)})"
                     for ms, tables in tables_by_months.items())


def _file_name_fiscal_year(workbook: str) -> int | None:
    return fiscal_year_in(load_layout().file_fiscal_year, workbook)


def _check_as_of(release: Release, months: Mapping[str, set[date]]) -> list[CheckResult]:
    """`months`: the months with figures of each fiscal-year month table (_months_with_figures)."""
    name = "data date plausible"
    as_of, file_date, fy = release.as_of_date, release.file_date, release.fiscal_year
    if as_of is None:
        return [CheckResult(release.workbook, name, STATS_WORKBOOKS, WARN,
                            "the workbook prints no 'data as of' date; staleness not checkable")]
    results = []
    if fy is not None:
        start, end = fiscal_year_bounds(fy)
        ok = start <= as_of <= end + timedelta(days=FINAL_RELEASE_GRACE_DAYS)
        results.append(CheckResult(
            release.workbook, name, STATS_WORKBOOKS, PASS if ok else FAIL,
            f"data as of {as_of} {'lies within' if ok else 'lies OUTSIDE'} FY{fy} "
            f"({start}..{end})"))
    later = {t: sorted(m for m in ms if m > as_of)
             for t, ms in months.items()}
    later = {t: ms for t, ms in later.items() if ms}
    # The printed date is the facilities sheet's data pull; the detention tables can be
    # pulled days later, so figures for a later month make the printed date suspect, not
    # the figures.
    results.append(CheckResult(
        release.workbook, name, STATS_WORKBOOKS, WARN if later else PASS,
        f"data as of {as_of}; "
        + (f"yet figures for later months: {_months_by_table(later)}; the printed date is "
           "stale or belongs to another sheet" if later
           else "no month table has figures for a later month")))
    if not getattr(release, "primary", True):
        # An older year's sheet carried on purpose ("ATD EOFY23" in every FY2024 release) is
        # older than the file by design; whether it is stale is judged against other releases.
        return results
    if file_date is None:
        results.append(CheckResult(release.workbook, name, STATS_WORKBOOKS, WARN,
                                   "no date in the file name; the data date's age is not "
                                   "checkable"))
    else:
        gap = (file_date - as_of).days
        if gap < 0:
            status, verdict = FAIL, "is AFTER the file date"
        elif gap > STALE_AS_OF_DAYS:
            status, verdict = WARN, f"is more than {STALE_AS_OF_DAYS} days older: stale?"
        else:
            status, verdict = PASS, "is a normal interval before the file date"
        results.append(CheckResult(
            release.workbook, name, STATS_WORKBOOKS, status,
            f"data as of {as_of}, file dated {file_date}: {gap} days; the data date {verdict}",
            expected=float(STALE_AS_OF_DAYS), observed=float(gap)))
    return results


# --- facilities against the nation -------------------------------------------------------------

# The facility list omits facilities holding nobody on the day of the data pull, and hold rooms,
# hospitals, hotels and ORR/MIRP placements, so its ADPs sum to a little under the national
# fiscal-year ADP: 93-100% in 32 of the 34 archived releases FY19-FY26 (the other two are
# publication errors, at 54% and 116%). Below 95% the
# list misses a notable share; below 90%, or above the national figure, it is wrong. (In the
# 2025-07-17 release they summed to 42,221 against about 45,300 nationally, 93%: that release is
# caught by the bed-days comparison with the release before it.)
FACILITY_SHARE_WARN = 0.95
FACILITY_SHARE_FAIL = 0.90
FACILITY_SHARE_MAX = 1.01


def _check_facility_total(release: Release) -> list[CheckResult]:
    name = "facility ADPs add up to the national ADP"
    facilities = release.tables.get(STATS_FACILITIES)
    national = release.tables.get(STATS_ADP_FY)
    if facilities is None or national is None:
        return []
    missing = (_missing_columns(facilities, ("adp",))
               + _missing_columns(national, ("adp", "agency", "criminality")))
    if missing:
        return [CheckResult(release.workbook, name, STATS_FACILITIES, WARN,
                            f"cannot run: no column {', '.join(missing)}")]
    total_rows = [r for r in _rows(national, ("agency", "criminality", "adp"))
                  if r["agency"] == TOTAL and r["criminality"] == TOTAL and r["adp"]]
    if not total_rows:
        return []
    nation = total_rows[0]["adp"]
    rows = [r for r in _rows(facilities, ("adp",)) if r["adp"] is not None]
    listed = float(sum(r["adp"] for r in rows))
    share = listed / nation
    if share > FACILITY_SHARE_MAX:
        status, verdict = FAIL, "MORE than the national figure: facilities double counted?"
    elif share < FACILITY_SHARE_FAIL:
        status, verdict = FAIL, f"under {FACILITY_SHARE_FAIL:.0%} of it: the list is incomplete"
    elif share < FACILITY_SHARE_WARN:
        status, verdict = WARN, f"under {FACILITY_SHARE_WARN:.0%} of it: many are missing"
    else:
        status, verdict = PASS, "the usual shortfall of facilities not listed"
    return [CheckResult(
        release.workbook, name, STATS_FACILITIES, status,
        f"the ADPs of {len(rows)} listed facilities sum to {_num(listed)}, {share:.1%} of the "
        f"national fiscal-year ADP {_num(nation)}: {verdict}",
        _location([total_rows[0]]), float(nation), listed)]


# --- across releases ----------------------------------------------------------------------------

@dataclass(frozen=True)
class AgencySplit:
    """A table whose rows split a figure between ICE and CBP, matched across releases on `keys`."""

    table: str
    value: str
    keys: tuple[str, ...]


AGENCY_SPLITS = (
    AgencySplit(STATS_DETAINED_NOW, "detained", ("criminality",)),
    AgencySplit(STATS_BOOK_INS, "book_ins", ("month",)),
    AgencySplit(STATS_ADP, "adp", ("month", "criminality")),
)
# Between consecutive releases FY19-FY26 the ICE/CBP figures always sat closer to the previous
# release as printed than with the two agencies swapped (swapped distance / printed distance
# 1.7-56). A release that fits the swapped previous release better is flagged; one that fits it
# at least twice as well fails.
TRANSPOSED_FAIL_RATIO = 0.5

# A facility's fiscal-year-to-date ADP times the days elapsed is its cumulative bed-days, which
# cannot fall. Small falls come from the data date being approximate (the facilities sheet can be
# pulled days apart from the rest) and from revisions; between consecutive releases FY21-FY25 at
# most 5 of ~100 matched facilities fell by over 1%. In the 2025-07-17 release 96 of 172 did.
FACILITY_FALL_FRACTION = 0.05
FACILITY_FALL_SHARE = 0.25
FACILITY_MIN_MATCHED = 10


def _split_by_key(split: AgencySplit, release: Release) -> dict[tuple, dict[str, dict]]:
    table = release.tables.get(split.table)
    needed = (split.value, "agency", *split.keys)
    if table is None or any(c not in table.column_names for c in needed):
        return {}
    found: dict[tuple, dict[str, dict]] = defaultdict(dict)
    for row in _rows(table, needed):
        agency = (row["agency"] or "").strip()
        if agency in _AGENCIES and row[split.value] is not None:
            found[tuple(row[k] for k in split.keys)][agency] = row
    return {k: v for k, v in found.items() if len(v) == 2 and not (
        "criminality" in split.keys and k[split.keys.index("criminality")] == TOTAL)}


def _check_transposed(split: AgencySplit, current: Release,
                      reference: Release) -> CheckResult | None:
    now, before = _split_by_key(split, current), _split_by_key(split, reference)
    shared = [k for k in now if k in before]
    if not shared:
        return None
    as_printed = swapped = 0.0
    for key in shared:
        ice, cbp = now[key]["ICE"][split.value], now[key]["CBP"][split.value]
        ice0, cbp0 = before[key]["ICE"][split.value], before[key]["CBP"][split.value]
        as_printed += abs(ice - ice0) + abs(cbp - cbp0)
        swapped += abs(ice - cbp0) + abs(cbp - ice0)
    if swapped < TRANSPOSED_FAIL_RATIO * as_printed:
        status, verdict = FAIL, "the ICE and CBP figures look TRANSPOSED"
    elif swapped < as_printed:
        status, verdict = WARN, "the ICE and CBP figures may be transposed"
    else:
        status, verdict = PASS, "ICE and CBP figures continue the previous release"
    rows = [now[k][a] for k in shared for a in _AGENCIES]
    return CheckResult(
        current.workbook, "ICE and CBP not transposed", split.table, status,
        f"{verdict}: over {len(shared)} matching {'/'.join(split.keys)} rows they differ from "
        f"{reference.workbook} by {_num(as_printed)} as printed and by {_num(swapped)} with "
        "ICE and CBP swapped", _location(rows), as_printed, swapped, reference.workbook)


def _check_data_date_advanced(current: Release, previous: Release) -> CheckResult | None:
    now, before = current.as_of_date, previous.as_of_date
    if now is None or before is None:
        return None
    ok = now > before
    detail = (f"data as of {now}, previous release {previous.workbook} as of {before}: "
              + ("advanced" if ok else "did NOT advance; the printed date is probably stale"))
    return CheckResult(current.workbook, "data date advanced", STATS_WORKBOOKS,
                       PASS if ok else WARN, detail, compared_with=previous.workbook,
                       expected=float(before.toordinal()), observed=float(now.toordinal()))


def _facility_bed_days(release: Release) -> dict[tuple, tuple[float, dict]]:
    table = release.tables.get(STATS_FACILITIES)
    if (table is None or release.fiscal_year is None
            or any(c not in table.column_names for c in ("name", "adp"))):
        return {}
    # The facilities sheet's own date (its IIDS line) before the workbook's.
    as_of = _data_date({STATS_FACILITIES: table}) or release.as_of_date
    if as_of is None:
        return {}
    days = (as_of - fiscal_year_bounds(release.fiscal_year)[0]).days + 1
    if days <= 0:  # a date before the fiscal year began (a misprint): no bed-days to compare
        return {}
    found = {}
    for row in _rows(table, ("name", "state", "adp")):
        if row["name"] and row["adp"] is not None:
            key = (" ".join(row["name"].upper().split()), (row.get("state") or "").strip())
            found[key] = (row["adp"] * days, row)
    return found


def _check_facility_bed_days(current: Release, previous: Release) -> CheckResult | None:
    now, before = _facility_bed_days(current), _facility_bed_days(previous)
    shared = [k for k in now if k in before]
    if len(shared) < FACILITY_MIN_MATCHED:
        return None
    fell = [k for k in shared if now[k][0] < before[k][0] * (1 - FACILITY_FALL_FRACTION)]
    share = len(fell) / len(shared)
    status = FAIL if share > FACILITY_FALL_SHARE else PASS
    worst = sorted(fell, key=lambda k: now[k][0] / before[k][0] if before[k][0] else 1.0)[:3]
    examples = "; ".join(f"{k[0].title()} {_num(before[k][0])} → {_num(now[k][0])}"
                         for k in worst)
    return CheckResult(
        current.workbook, "facility bed-days do not fall", STATS_FACILITIES, status,
        f"{len(fell)} of {len(shared)} facilities also in {previous.workbook} show fewer "
        f"cumulative bed-days (FY-to-date ADP × days since 1 October) by over "
        f"{FACILITY_FALL_FRACTION:.0%}; a fiscal-year-to-date total cannot fall"
        + (f" (e.g. {examples})" if examples else ""),
        _location([now[k][1] for k in worst]), 0.0, float(len(fell)), previous.workbook)


def _as_snapshot(release: ReleaseTables) -> Snapshot:
    return Snapshot(release.workbook, release.sha256, release.fiscal_year,
                    release.data_date or release.as_of_date, release.file_date,
                    release.archive_date)


def order_releases(releases: Iterable[ReleaseTables]) -> list[tuple[ReleaseTables,
                                                                      OrderedSnapshot]]:
    """Releases (one per workbook file and fiscal year) in the order of their data dates."""
    by_snapshot = {}
    for release in releases:
        snapshot = _as_snapshot(release)
        by_snapshot[id(snapshot)] = (release, snapshot)
    ordered = order_snapshots(snapshot for _, snapshot in by_snapshot.values())
    return [(by_snapshot[id(o.snapshot)][0], o) for o in ordered]


def _check_ordering(release: ReleaseTables, ordered: OrderedSnapshot) -> list[CheckResult]:
    results = []
    year = f"FY{release.fiscal_year} " if release.fiscal_year else ""
    if ordered.stale_against is not None:
        results.append(CheckResult(
            release.workbook, STALE_REPOST_CHECK, STATS_WORKBOOKS, FAIL,
            f"its {year}data run to {ordered.snapshot.data_date}, yet {ordered.stale_against}, "
            f"posted before it, already held the same year's data to a later date: a stale "
            "re-post, never taken as the latest figures nor as a revision",
            compared_with=ordered.stale_against, fiscal_year=release.fiscal_year))
    if not ordered.file_date_consistent and release.primary:
        results.append(CheckResult(
            release.workbook, "file-name date agrees with the data", STATS_WORKBOOKS, WARN,
            f"the file name is dated {release.file_date}, before its own data "
            f"({ordered.snapshot.data_date}): a misnamed file; its data dates order it",
            fiscal_year=release.fiscal_year))
    return results


def run_release_checks(releases: Iterable[Release]) -> pa.Table:
    """Checks comparing each release with the one before it, as `stats_release_checks`.

    Releases are the fiscal-year snapshots of each workbook, ordered by their data dates within
    the year; a stale re-post is flagged and left out of the comparisons. Transposition is
    judged against the latest earlier release that was not itself flagged as transposed, so
    that one bad release does not make the good one after it look swapped.
    """
    results: list[CheckResult | None] = []
    ordered = []
    for release, placed in order_releases(snapshot for r in releases for snapshot in
                                          snapshots_of(r)):
        results.extend(_check_ordering(release, placed))
        # Another year's sheet that nothing dates (hidden, docs/stats-checks.md) has no place
        # in the order: compared with its neighbours, it would judge them or be judged.
        placeable = release.primary or placed.snapshot.data_date is not None
        if placed.stale_against is None and placeable:
            ordered.append(release)
    references: dict[str, Release] = {}
    same_year: dict[int | None, Release] = {}
    for previous, current in zip([None, *ordered], ordered):
        found: list[CheckResult | None] = []
        for split in AGENCY_SPLITS:
            reference = references.get(split.table)
            verdict = _check_transposed(split, current, reference) if reference else None
            found.append(verdict)
            if split.table in current.tables and (verdict is None or verdict.status != FAIL):
                references[split.table] = current
        if previous is not None:
            found.append(_check_data_date_advanced(current, previous))
        if current.fiscal_year in same_year:
            found.append(_check_facility_bed_days(current, same_year[current.fiscal_year]))
        if STATS_FACILITIES in current.tables:
            same_year[current.fiscal_year] = current
        results.extend(replace(r, fiscal_year=current.fiscal_year) for r in found
                       if r is not None)
    return results_table(r for r in results if r is not None)


# --- running ------------------------------------------------------------------------------------

def run_checks(release: Release) -> pa.Table:
    """Every within-workbook check of one parsed workbook, as the `stats_checks` table.

    Each fiscal year's snapshot is checked on its own: figures of two years are never added.
    """
    return pa.concat_tables(results_table(_snapshot_checks(snapshot), snapshot.fiscal_year)
                            for snapshot in snapshots_of(release))


def _fiscal_years(tables: Mapping[str, pa.Table]) -> set[int]:
    years: set[int] = set()
    for name, table in tables.items():
        if name.startswith("stats_") and name not in _NOT_SNAPSHOT_TABLES \
                and "fiscal_year" in table.schema.names:
            years.update(y for y in _years_of(table) if y is not None)
    return years


def _years_of(table: pa.Table) -> dict[int | None, pa.Scalar]:
    """Each fiscal year the table's rows carry, beside it as an Arrow value to filter with.

    pyarrow imports pandas to convert a Python value, which costs more than checking a workbook.
    """
    return {value.as_py(): value for value in pc.unique(table.column("fiscal_year"))}


def snapshots_of(release: Release) -> list[Release]:
    """The release split into one release per fiscal year its tables report.

    A workbook with one year's sheets is itself; one carrying an older year's sheet too
    (`Detention EOFY2020` beside `Detention FY22`) is split, each part holding only its year's
    rows and dated by them.
    """
    years = _fiscal_years(release.tables)
    if len(years) <= 1:
        year = next(iter(years), release.fiscal_year)
        return [ReleaseTables(release.workbook, year if year is not None else release.fiscal_year,
                              release.file_date, release.as_of_date, release.tables,
                              release.archive_date, _data_date(release.tables) or getattr(
                                  release, "data_date", None), getattr(release, "sha256", None),
                              getattr(release, "primary", True))]
    parts = []
    dated = {name: (table, _years_of(table)) for name, table in release.tables.items()
             if "fiscal_year" in table.schema.names and name not in _NOT_SNAPSHOT_TABLES}
    for year in sorted(years, reverse=True):
        tables = {name: table if len(present) == 1 else
                  table.filter(pc.equal(table.column("fiscal_year"), present[year]))
                  for name, (table, present) in dated.items() if year in present}
        primary = year == release.fiscal_year
        data_date = _data_date(tables)
        parts.append(ReleaseTables(release.workbook, year, release.file_date,
                                   release.as_of_date if primary else data_date, tables,
                                   release.archive_date, data_date,
                                   getattr(release, "sha256", None), primary))
    return parts


# Tables about the workbook rather than one snapshot of it.
_NOT_SNAPSHOT_TABLES = frozenset({STATS_WORKBOOKS, STATS_CHECKS, "stats_snapshots"})


def _data_date(tables: Mapping[str, pa.Table]) -> date | None:
    """The latest snapshot date the tables carry."""
    days = [pc.max(table.column("snapshot_date")).as_py() for name, table in tables.items()
            if name not in _NOT_SNAPSHOT_TABLES and "snapshot_date" in table.column_names
            and table.num_rows]
    days = [d for d in days if d is not None]
    return max(days) if days else None


def _snapshot_checks(release: Release) -> list[CheckResult]:
    results: list[CheckResult] = []
    rows_of = _TableRows()
    for rule in (variant for r in PARTS_RULES for variant in r.variants()):
        table = release.tables.get(rule.table)
        if table is not None:
            results.extend(_check_parts(rule, release.workbook, table, rows_of))
    for months_rule in MONTHS_RULES:
        months = release.tables.get(months_rule.table)
        totals = release.tables.get(months_rule.totals_table)
        if months is not None and totals is not None:
            results.extend(_check_months(months_rule, release.workbook, months, totals,
                                         rows_of))
    results.extend(_check_facility_total(release))
    results.extend(_check_negative(release))
    months = _months_with_figures(release)
    results.extend(_check_fiscal_year(release, months))
    results.extend(_check_as_of(release, months))
    results.extend(_check_unrecognised(release))
    results.extend(_check_new_categories(release))
    results.extend(_check_shares(release))
    return results


def _check_negative(release: Release) -> list[CheckResult]:
    """Every figure the workbooks print counts people, days or dollars: one below zero is a
    publication or transcription error. One failure per table, naming its first cell."""
    results = []
    for name, table in release.tables.items():
        if "cell_range" not in table.column_names:
            continue
        # One pass per figure column finds its least; only a table holding one below zero is
        # searched row by row.
        negative = [f.name for f in table.schema if pa.types.is_floating(f.type)
                    and (pc.min(table.column(f.name)).as_py() or 0.0) < 0]
        if not negative:
            continue
        below = pc.less(table.column(negative[0]), 0.0)
        for figure in negative[1:]:
            below = pc.or_kleene(below, pc.less(table.column(figure), 0.0))
        below = pc.fill_null(below, False)
        first = table.filter(below).slice(0, 1).to_pylist()[0]
        count = pc.sum(below).as_py()
        results.append(CheckResult(
            release.workbook, "no negative figure", name, FAIL,
            f"{count} row(s) hold a figure below zero", _location([first]),
            observed=float(count)))
    return results


def _share_figures(table: pa.Table) -> list[tuple[str, pa.ChunkedArray]]:
    """The figures of a table that are shares, each with its column: a column named `share`
    or `..._share`, and in a long table the rows whose metric is named so (`bond_posted_share`
    in `bond_metric`)."""
    shares = []
    for field_ in table.schema:
        if not pa.types.is_floating(field_.type):
            continue
        if field_.name == "share" or field_.name.endswith("_share"):
            shares.append((field_.name, pc.is_valid(table.column(field_.name))))
            continue
        for metric in table.schema:
            if pa.types.is_string(metric.type) and metric.name.endswith("_metric"):
                named = pc.ends_with(table.column(metric.name), "_share")
                shares.append((field_.name, pc.fill_null(named, False)))
    return shares


def _check_shares(release: Release) -> list[CheckResult]:
    """A share is printed as a fraction (0.977, in every archived workbook): one outside 0..1
    is a share printed in percentage points (97.7) or a count in its place, 100 times off. One
    failure per table, naming its first cell."""
    results = []
    for name, table in release.tables.items():
        if "cell_range" not in table.column_names:
            continue
        for column, rows in _share_figures(table):
            values = table.column(column)
            outside = pc.fill_null(pc.and_kleene(rows, pc.or_kleene(
                pc.less(values, 0.0), pc.greater(values, 1.0))), False)
            count = pc.sum(outside).as_py()
            if not count:
                continue
            first = table.filter(outside).slice(0, 1).to_pylist()[0]
            results.append(CheckResult(
                release.workbook, "shares between 0 and 1", name, FAIL,
                f"{count} share(s) in {column} outside 0..1, the first {_num(first[column])}: "
                "printed in percentage points, or not a share", _location([first]),
                observed=float(count)))
    return results


def _check_new_categories(release: Release) -> list[CheckResult]:
    """A category stats_tables.toml does not declare (an agency ICE added beside ICE and CBP),
    loaded as its own: one warning per table, column and value, naming its first cell, so that
    the metrics that map categories are taught it."""
    results = []
    dimensions = load_layout().dimensions
    for name, table in release.tables.items():
        for column in table.schema.names:
            dimension = dimensions.get(column)
            if dimension is None or dimension.new_values is None:
                continue
            values = table.column(column)
            for value in pc.unique(values).to_pylist():
                if value is None or not dimension.is_new(value):
                    continue
                printed = pc.equal(values, value)
                first = table.filter(printed).slice(0, 1).to_pylist()[0]
                count = pc.sum(printed).as_py()
                results.append(CheckResult(
                    release.workbook, "every category a known one", name, WARN,
                    f"{column} {value!r} is none of stats_tables.toml's: {count} row(s) "
                    "loaded as a category of its own, counted by the add-up checks; a metric "
                    "that maps categories does not know it", _location([first]),
                    observed=float(count)))
    return results


def _check_unrecognised(release: Release) -> list[CheckResult]:
    """Figures kept in the generic table because no layout spec knows their table: one warning
    per block (sheet and caption), so that a new kind of table is seen and given a spec."""
    table = release.tables.get(STATS_UNRECOGNISED)
    if table is None:
        return []
    blocks: dict[tuple[str, str | None], list[str]] = defaultdict(list)
    for row in _rows(table, ("sheet", "caption", "cell")):
        blocks[(row["sheet"].strip(), row["caption"])].append(row["cell"])
    return [CheckResult(
        release.workbook, "every figure in a known table", STATS_UNRECOGNISED, WARN,
        f"{len(cells)} figure(s) under {caption or 'no caption'!r} match no table of "
        f"stats_tables.toml; kept as printed in {STATS_UNRECOGNISED}",
        f"{sheet}!{cells[0]}" + (f" … {cells[-1]}" if len(cells) > 1 else ""),
        observed=float(len(cells)))
        for (sheet, caption), cells in blocks.items()]


# --- helpers ------------------------------------------------------------------------------------

def _describe_group(columns: Sequence[str], key: tuple) -> str:
    parts = []
    for column, value in zip(columns, key):
        shown = value.isoformat()[:7] if isinstance(value, date) and column == "month" else value
        parts.append(f"{column} {shown}")
    return ", ".join(parts)


def _location(rows: Sequence[dict]) -> str | None:
    """Sheet and cells of the rows compared, total first; a shared table block is named once."""
    cells: list[str] = []
    sheet = None
    for row in rows:
        sheet = sheet or (row.get("sheet") or "").strip() or None
        cell = row.get("cell_range")
        if cell and cell not in cells:
            cells.append(cell)
    if not cells:
        return sheet
    shown = cells if len(cells) <= 6 else [*cells[:5], f"… {len(cells) - 5} more"]
    return f"{sheet}!{shown[0]}" + (f" vs {', '.join(shown[1:])}" if len(shown) > 1 else "")


def _num(value: float, signed: bool = False) -> str:
    sign = "+" if signed else ""
    if float(value).is_integer():
        return f"{value:{sign},.0f}"
    return f"{value:{sign},.2f}"


# --- over the warehouse -------------------------------------------------------------------------

# The tables the cross-release checks read.
RELEASE_CHECK_TABLES = tuple(sorted({s.table for s in AGENCY_SPLITS} | {STATS_FACILITIES}))


def releases_from_warehouse(con: duckdb.DuckDBPyConnection
                            ) -> tuple[list[ReleaseTables], list[CheckResult]]:
    """Every loaded workbook with the tables the cross-release checks read.

    ICE re-posts a workbook under the same name with new figures. Rows carrying the file's
    sha256 tell the versions apart; rows carrying only the name cannot, so a name loaded twice
    without it is reported and left out of the comparisons.
    """
    names = _table_names(con)
    if STATS_WORKBOOKS not in names:
        return [], []
    # Not the lists of warnings and errors, which are long and of no use here.
    columns = [column for (column,) in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' "
        "AND table_name = ? AND column_name IN ('workbook', 'sha256', 'fiscal_year', "
        "'file_date', 'archive_date', 'as_of_date')", [STATS_WORKBOOKS]).fetchall()]
    workbooks = con.sql(f"SELECT {', '.join(columns)} FROM {STATS_WORKBOOKS}"
                        ).to_arrow_table().to_pylist()
    tables = {name: con.sql(f'SELECT * FROM "{name}"').to_arrow_table()
              for name in RELEASE_CHECK_TABLES if name in names}
    key = "sha256" if all("sha256" in t.column_names for t in tables.values()) else "workbook"
    loads = defaultdict(list)
    for row in workbooks:
        loads[row[key]].append(row)
    problems = [CheckResult(rows[0]["workbook"], "one version per workbook name",
                            STATS_WORKBOOKS, WARN,
                            f"{len(rows)} different files loaded under this name; left out of "
                            "the comparisons between releases")
                for rows in loads.values() if len(rows) > 1]
    split = {name: _split_by(table, key) for name, table in tables.items()}
    releases = [
        ReleaseTables(rows[0]["workbook"], rows[0]["fiscal_year"], rows[0]["file_date"],
                      rows[0]["as_of_date"],
                      {t: by[ident] for t, by in split.items() if ident in by},
                      rows[0].get("archive_date"), sha256=rows[0].get("sha256"))
        for ident, rows in loads.items() if len(rows) == 1
    ]
    return releases, problems


def _split_by(table: pa.Table, column: str) -> dict[str, pa.Table]:
    # Compared with Arrow values of the column's own, as in _years_of.
    values = table.column(column)
    return {value.as_py(): table.filter(pc.equal(values, value)) for value in pc.unique(values)}


@dataclass(frozen=True)
class ChecksReview:
    """The stored checks of every workbook and a fresh comparison of the releases."""

    within: pa.Table
    across: pa.Table

    @property
    def checks(self) -> pa.Table:
        return pa.concat_tables([self.within, self.across])

    def counts(self) -> dict[str, int]:
        statuses = self.checks.column("status").to_pylist()
        return {status: statuses.count(status) for status in (FAIL, WARN, PASS)}


def review_warehouse(warehouse: Warehouse,
                     con: duckdb.DuckDBPyConnection | None = None) -> ChecksReview:
    """Rebuild `stats_release_checks` over the loaded releases and gather all checks.

    `con`, a write connection to the warehouse already open (the ingest's), spares opening
    another.
    """
    if con is None:
        with warehouse.connect() as con:
            return review_warehouse(warehouse, con)
    releases, problems = releases_from_warehouse(con)
    if not releases and not problems:
        raise IceledgerError(f"{warehouse.path}: no detention-statistics workbooks loaded yet; "
                             "run `iceledger ingest stats PATH` first")
    across = pa.concat_tables([results_table(problems), run_release_checks(releases)])
    replace_table(con, STATS_RELEASE_CHECKS, across)
    if STATS_CHECKS in _table_names(con):
        columns = ", ".join(f'"{name}"' for name in CHECKS_SCHEMA.names)
        within = con.sql(f"SELECT {columns} FROM {STATS_CHECKS}").to_arrow_table().cast(
            CHECKS_SCHEMA)
    else:
        within = results_table([])
    return ChecksReview(within, across)


def _table_names(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {name for (name,) in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
    ).fetchall()}


def render_markdown(review: ChecksReview, warehouse_name: str) -> str:
    """A readable report: counts per check, then every failure and warning with its cells."""
    checks = review.checks.to_pylist()
    counts = review.counts()
    workbooks = sorted({r["workbook"] for r in checks})
    lines = [
        "# Detention-statistics checks",
        "",
        f"Warehouse `{warehouse_name}`: {len(workbooks)} workbooks; {counts[FAIL]} failed, "
        f"{counts[WARN]} warnings, {counts[PASS]} passed. A check never changes a figure: the "
        "figures are loaded as ICE published them. What each check tests and its tolerance: "
        "docs/stats-checks.md.",
        "",
        "## By check",
        "",
        "| check | table | fail | warn | pass |",
        "|---|---|---:|---:|---:|",
    ]
    tally: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(
        (FAIL, WARN, PASS), 0))
    for r in checks:
        tally[(r["check"], r["table"])][r["status"]] += 1
    for (check, table), n in sorted(tally.items()):
        lines.append(f"| {check} | {table} | {n[FAIL]} | {n[WARN]} | {n[PASS]} |")
    for status, heading in ((FAIL, "Failures"), (WARN, "Warnings")):
        flagged = [r for r in checks if r["status"] == status]
        lines += ["", f"## {heading} ({len(flagged)})", ""]
        if not flagged:
            lines.append("None.")
        for workbook in workbooks:
            mine = [r for r in flagged if r["workbook"] == workbook]
            if mine:
                lines += [f"### {workbook}", ""]
                lines += [_markdown_item(r) for r in mine]
                lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _markdown_item(result: dict) -> str:
    where = f" — `{result['location']}`" if result["location"] else ""
    against = f" (compared with {result['compared_with']})" if result["compared_with"] else ""
    return f"- **{result['check']}** ({result['table']}){against}: {result['detail']}{where}"
