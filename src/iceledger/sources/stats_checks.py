"""Validation checks for ICE's detention-statistics workbooks.

ICE's workbooks carry publication errors that reporters have caught by hand: ICE and CBP columns
transposed (the release of 2025-02-27/28, TRAC 2025-02-28), "data as of" dates that did not move
(TRAC 2025-02-19) or that name the wrong year, facility ADPs that summed to only 42,221 and fell at
96 facilities in two weeks (the 2025-07-17 release, TRAC 2025-07-18). These checks make that scrutiny
routine. They never change or drop a figure: every check yields rows (pass / warn / fail) with the
expected and observed values and the cells involved, and the figures load as published.

Two kinds of check:
- within one workbook (`run_checks`): parts add to printed totals, ICE + CBP = Total, the stated
  fiscal year agrees with the months and the file date, the data date is plausible, facility ADPs add
  up to (nearly) the national ADP. These are loaded with the workbook as the `stats_checks` table.
- across releases (`run_release_checks`): a workbook compared with the release before it: ICE/CBP
  transposition, a data date that did not advance, facility bed-days that went backwards. Their
  answer depends on which releases are loaded, so they form a derived table, `stats_release_checks`,
  rebuilt over the whole warehouse (`review_warehouse`).

Tolerances are documented with their evidence in docs/stats-checks.md.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

import pyarrow as pa

PASS, WARN, FAIL = "pass", "warn", "fail"
CHECKS_TABLE = "stats_checks"
RELEASE_CHECKS_TABLE = "stats_release_checks"
TOTAL = "Total"

CHECKS_SCHEMA = pa.schema(
    [
        ("workbook", pa.string()),
        ("check", pa.string()),
        ("table", pa.string()),
        ("status", pa.string()),
        ("detail", pa.string()),
        ("location", pa.string()),
        ("expected", pa.float64()),
        ("observed", pa.float64()),
        ("compared_with", pa.string()),
    ]
)


class Release(Protocol):
    """One published workbook as the parser returns it (iceledger.sources.detention_stats)."""

    workbook: str
    fiscal_year: int | None
    file_date: date | None
    as_of_date: date | None
    tables: Mapping[str, pa.Table]


@dataclass(frozen=True)
class ReleaseTables:
    """A release rebuilt from the warehouse, for the checks that compare releases."""

    workbook: str
    fiscal_year: int | None
    file_date: date | None
    as_of_date: date | None
    tables: Mapping[str, pa.Table]


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


def results_table(results: Iterable[CheckResult]) -> pa.Table:
    rows = [r.__dict__ for r in results]
    return pa.Table.from_pylist(rows, schema=CHECKS_SCHEMA)


# --- parts and totals ---------------------------------------------------------------------------

@dataclass(frozen=True)
class PartsRule:
    """Within each group of rows sharing `by`, the `total` label's value must equal the combined
    values of the other labels of `dimension` (or of the listed `parts`).

    `combine="sum"` is for counts and for ADPs (a population splits into its parts); for averages
    over people (ALOS) a total is a weighted mean of its parts, so it must lie within their range.
    `nested` names subtotals printed among the parts (Bonded Out = Bond Set by ICE + by IJ): a
    subtotal's children are left out of the parent total so that nothing is counted twice.
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

    def part_labels(self, labels: Iterable[str]) -> list[str]:
        present = [label for label in labels if label != self.total]
        if self.parts is not None:
            return [label for label in present if label in self.parts]
        children = {c for parent, kids in self.nested.items() if parent in present for c in kids}
        return [label for label in present if label not in children]


_BONDED_OUT = {"Bonded Out": ("Bond Set by ICE", "Bond Set by IJ")}
_AGENCIES = ("ICE", "CBP")

PARTS_RULES: tuple[PartsRule, ...] = (
    PartsRule("criminality classes add to total", "stats_detained_now", "detained",
              "criminality", ("agency",)),
    PartsRule("ICE + CBP = Total", "stats_detained_now", "detained", "agency",
              ("criminality",), parts=_AGENCIES),
    PartsRule("ICE + CBP = Total", "stats_book_ins", "book_ins", "agency", ("month",),
              parts=_AGENCIES),
    PartsRule("criminality classes add to total", "stats_adp", "adp", "criminality",
              ("month", "agency"), tolerance=0.05),
    PartsRule("ICE + CBP = Total", "stats_adp", "adp", "agency", ("month", "criminality"),
              parts=_AGENCIES, tolerance=0.05),
    PartsRule("total ALOS within range of its parts", "stats_alos", "alos_days", "criminality",
              ("month", "agency"), combine="range", tolerance=0.01),
    PartsRule("total ALOS within range of its parts", "stats_alos", "alos_days", "agency",
              ("month", "criminality"), parts=_AGENCIES, combine="range", tolerance=0.01),
    PartsRule("criminality classes add to total", "stats_book_outs", "book_outs", "criminality",
              ("month", "release_reason")),
    PartsRule("release reasons add to total", "stats_book_outs", "book_outs", "release_reason",
              ("month", "criminality"), nested=_BONDED_OUT),
    PartsRule("subtotal release reasons add up", "stats_book_outs", "book_outs",
              "release_reason", ("month", "criminality"), total="Bonded Out",
              parts=_BONDED_OUT["Bonded Out"]),
)


def _check_parts(rule: PartsRule, workbook: str, table: pa.Table) -> list[CheckResult]:
    missing = [c for c in (rule.value, rule.dimension, *rule.by) if c not in table.column_names]
    if missing:
        return [CheckResult(workbook, rule.check, rule.table, WARN,
                            f"cannot run: the table has no column {', '.join(missing)}")]
    groups: dict[tuple, dict[str, dict]] = defaultdict(dict)
    for row in table.to_pylist():
        label = row[rule.dimension]
        if label is not None:
            groups[tuple(row[c] for c in rule.by)][label] = row
    results = []
    for key, members in groups.items():
        parts = rule.part_labels(members)
        if len(parts) < 2 and rule.parts is None or not parts:
            continue  # nothing to add up in this group (e.g. a reason printed without classes)
        group = _describe_group(rule.by, key)
        total_row = members.get(rule.total)
        if total_row is None:
            results.append(CheckResult(
                workbook, rule.check, rule.table, WARN,
                f"{group}: no {rule.total!r} row printed for {len(parts)} parts; not checkable",
                _location([members[p] for p in parts])))
            continue
        results.append(_compare_parts(rule, workbook, group, total_row,
                                      [members[p] for p in parts], parts))
    return results


def _compare_parts(rule: PartsRule, workbook: str, group: str, total_row: dict,
                   part_rows: list[dict], part_names: list[str]) -> CheckResult:
    observed = total_row[rule.value]
    values = [r[rule.value] for r in part_rows]
    blanks = [name for name, v in zip(part_names, values) if v is None]
    known = [v for v in values if v is not None]
    location = _location([total_row, *part_rows])
    if observed is None or not known:
        return CheckResult(workbook, rule.check, rule.table, WARN,
                           f"{group}: total or all parts blank; not checkable", location)
    blank_note = f" (blank: {', '.join(blanks)}, counted as 0)" if blanks else ""
    label = f"{group}: {rule.dimension} {rule.total!r}"
    if rule.combine == "sum":
        expected = float(sum(known))
        gap = observed - expected
        ok = abs(gap) <= rule.tolerance
        detail = (f"{label} {_num(observed)} {'=' if ok else '≠'} sum of "
                  f"{' + '.join(part_names)} = {_num(expected)}"
                  f"{'' if ok else f' (off by {_num(gap, signed=True)})'}{blank_note}")
    else:
        low, high = min(known), max(known)
        ok = low - rule.tolerance <= observed <= high + rule.tolerance
        expected = low if observed < low else high if observed > high else observed
        detail = (f"{label} {_num(observed)} {'lies within' if ok else 'lies OUTSIDE'} the range of "
                  f"{', '.join(part_names)} [{_num(low)}, {_num(high)}]{blank_note}")
    return CheckResult(workbook, rule.check, rule.table, PASS if ok else FAIL, detail, location,
                       expected, float(observed))


# --- fiscal year and data dates -----------------------------------------------------------------

# ICE posts a workbook about ten days after the data pull (5-21 days in 26 of the 28 dated
# releases FY21-FY26); a gap beyond this many days means the printed date is probably stale.
STALE_AS_OF_DAYS = 45
# The final workbook of a fiscal year is posted up to about ten weeks after 30 September.
FINAL_RELEASE_GRACE_DAYS = 120


def fiscal_year_bounds(fiscal_year: int) -> tuple[date, date]:
    return date(fiscal_year - 1, 10, 1), date(fiscal_year, 9, 30)


def _check_fiscal_year(release: Release) -> list[CheckResult]:
    name = "fiscal year agrees with months and dates"
    fy = release.fiscal_year
    if fy is None:
        return [CheckResult(release.workbook, name, "stats_workbooks", WARN,
                            "the workbook states no fiscal year; months and dates not checkable")]
    start, end = fiscal_year_bounds(fy)
    results = []
    for table_name, table in sorted(release.tables.items()):
        if "month" not in table.column_names:
            continue
        months = {m for m in table.column("month").to_pylist() if m is not None}
        outside = sorted(m for m in months if not start <= m <= end)
        own_year = "fiscal_year" in table.column_names and any(
            y not in (None, fy) for y in table.column("fiscal_year").to_pylist())
        if outside and not own_year:
            results.append(CheckResult(
                release.workbook, name, table_name, FAIL,
                f"FY{fy} runs {start}..{end} but the table has months "
                f"{', '.join(m.isoformat()[:7] for m in outside)}",
                observed=float(len(outside)), expected=0.0))
        elif months:
            results.append(CheckResult(
                release.workbook, name, table_name, PASS,
                f"all {len(months)} months lie in FY{fy} ({start}..{end})",
                observed=0.0, expected=0.0))
    file_date = release.file_date
    if file_date is not None:
        latest = end.toordinal() + FINAL_RELEASE_GRACE_DAYS
        ok = start <= file_date and file_date.toordinal() <= latest
        results.append(CheckResult(
            release.workbook, name, "stats_workbooks", PASS if ok else FAIL,
            f"file date {file_date} {'lies' if ok else 'does NOT lie'} within FY{fy} "
            f"({start}..{end}, or up to {FINAL_RELEASE_GRACE_DAYS} days after for its final "
            "release)"))
    return results


def _check_as_of(release: Release) -> list[CheckResult]:
    name = "data date plausible"
    as_of, file_date, fy = release.as_of_date, release.file_date, release.fiscal_year
    if as_of is None:
        return [CheckResult(release.workbook, name, "stats_workbooks", WARN,
                            "the workbook prints no 'data as of' date; staleness not checkable")]
    results = []
    if fy is not None:
        start, end = fiscal_year_bounds(fy)
        ok = start <= as_of <= date.fromordinal(end.toordinal() + FINAL_RELEASE_GRACE_DAYS)
        results.append(CheckResult(
            release.workbook, name, "stats_workbooks", PASS if ok else FAIL,
            f"data as of {as_of} {'lies within' if ok else 'lies OUTSIDE'} FY{fy} ({start}..{end})"))
        months = _latest_month(release)
        if months is not None:
            month, table_name = months
            ok = month <= as_of
            results.append(CheckResult(
                release.workbook, name, table_name, PASS if ok else FAIL,
                f"latest month with figures {month.isoformat()[:7]} "
                f"{'is not after' if ok else 'is AFTER'} the data date {as_of}"))
    if file_date is None:
        results.append(CheckResult(release.workbook, name, "stats_workbooks", WARN,
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
            release.workbook, name, "stats_workbooks", status,
            f"data as of {as_of}, file dated {file_date}: {gap} days; the data date {verdict}",
            expected=float(STALE_AS_OF_DAYS), observed=float(gap)))
    return results


def _latest_month(release: Release) -> tuple[date, str] | None:
    latest = None
    for table_name, table in release.tables.items():
        if "month" not in table.column_names:
            continue
        value_columns = [n for n, t in zip(table.column_names, table.schema.types)
                         if pa.types.is_floating(t) or pa.types.is_integer(t)]
        for row in table.select(["month", *value_columns]).to_pylist():
            has_figure = any(row[c] not in (None, 0) for c in value_columns if c != "fiscal_year")
            if row["month"] is not None and has_figure and (latest is None or row["month"] > latest[0]):
                latest = (row["month"], table_name)
    return latest


# --- across releases ----------------------------------------------------------------------------

@dataclass(frozen=True)
class AgencySplit:
    """A table whose rows split a figure between ICE and CBP, matched across releases on `keys`."""

    table: str
    value: str
    keys: tuple[str, ...]


AGENCY_SPLITS = (
    AgencySplit("stats_detained_now", "detained", ("criminality",)),
    AgencySplit("stats_book_ins", "book_ins", ("month",)),
    AgencySplit("stats_adp", "adp", ("month", "criminality")),
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
    for row in table.to_pylist():
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
    return CheckResult(current.workbook, "data date advanced", "stats_workbooks",
                       PASS if ok else WARN, detail, compared_with=previous.workbook,
                       expected=float(before.toordinal()), observed=float(now.toordinal()))


def _facility_bed_days(release: Release) -> dict[tuple, tuple[float, dict]]:
    table = release.tables.get("stats_facilities")
    if (table is None or release.as_of_date is None or release.fiscal_year is None
            or any(c not in table.column_names for c in ("name", "adp"))):
        return {}
    days = (release.as_of_date - fiscal_year_bounds(release.fiscal_year)[0]).days + 1
    found = {}
    for row in table.to_pylist():
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
    worst = sorted(fell, key=lambda k: now[k][0] / before[k][0])[:3]
    examples = "; ".join(f"{k[0].title()} {_num(before[k][0])} → {_num(now[k][0])}"
                         for k in worst)
    return CheckResult(
        current.workbook, "facility bed-days do not fall", "stats_facilities", status,
        f"{len(fell)} of {len(shared)} facilities also in {previous.workbook} show fewer "
        f"cumulative bed-days (FY-to-date ADP × days since 1 October) by over "
        f"{FACILITY_FALL_FRACTION:.0%}; a fiscal-year-to-date total cannot fall"
        + (f" (e.g. {examples})" if examples else ""),
        _location([now[k][1] for k in worst]), 0.0, float(len(fell)), previous.workbook)


def release_order(release: Release) -> tuple:
    """Publication order: the file's date, else its data date (FY19/FY20 names carry no date)."""
    published = release.file_date or release.as_of_date or date.min
    return (published, release.as_of_date or date.min, release.workbook)


def run_release_checks(releases: Iterable[Release]) -> pa.Table:
    """Checks comparing each release with the one before it, as `stats_release_checks`.

    Transposition is judged against the latest earlier release that was not itself flagged as
    transposed, so that one bad release does not make the good one after it look swapped.
    """
    ordered = sorted(releases, key=release_order)
    results: list[CheckResult | None] = []
    references: dict[str, Release] = {}
    same_year: dict[int | None, Release] = {}
    for previous, current in zip([None, *ordered], ordered):
        for split in AGENCY_SPLITS:
            reference = references.get(split.table)
            verdict = _check_transposed(split, current, reference) if reference else None
            results.append(verdict)
            if split.table in current.tables and (verdict is None or verdict.status != FAIL):
                references[split.table] = current
        if previous is not None:
            results.append(_check_data_date_advanced(current, previous))
        if current.fiscal_year in same_year:
            results.append(_check_facility_bed_days(current, same_year[current.fiscal_year]))
        if "stats_facilities" in current.tables:
            same_year[current.fiscal_year] = current
    return results_table(r for r in results if r is not None)


# --- running ------------------------------------------------------------------------------------

def run_checks(release: Release) -> pa.Table:
    """Every within-workbook check of one parsed workbook, as the `stats_checks` table."""
    results: list[CheckResult] = []
    for rule in PARTS_RULES:
        table = release.tables.get(rule.table)
        if table is not None:
            results.extend(_check_parts(rule, release.workbook, table))
    results.extend(_check_fiscal_year(release))
    results.extend(_check_as_of(release))
    return results_table(results)


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
