"""Validation of FOIA rows on ingest, as code: each check is a named condition with thresholds.

In the manner of pointblank: a check looks at every loaded row it applies to and counts the rows
that fail it; the share failing decides its status (`pass`, `warn` at or above `warn_at`, `fail`
at or above `fail_at`). Checks never remove rows: a failing row is loaded as it is and counted
here (only rows that cannot be used at all are quarantined, by the canonicaliser). Each check is
a pair of SQL conditions over the rows of one sheet as loaded (failed, applies), which the ingest
counts in one aggregate query per sheet. Results go to the `foia_checks` table, one row per file
and check, with the first failing row's location.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache
from importlib import resources
from pathlib import Path

import pyarrow as pa

from iceledger.errors import IceledgerError
from iceledger.sources.foia.layouts import Dataset

# How many years before its release a birth year may lie (the oldest people held are about 100).
MAX_AGE_YEARS = 110
# The facility codes a file's rows are checked against: a table of the load's transaction.
KNOWN_FACILITY_CODES = "__foia_known_facility_codes"


@dataclass(frozen=True)
class CheckContext:
    """What the checks of one file compare against."""

    dataset: Dataset
    release_date: date | None
    window_start: date | None  # earliest plausible key date, from the file name's fiscal years


Conditions = tuple[str, str] | None  # SQL: (the row fails, the check applies), None if never
# The canonical columns of a sheet's rows (before those it lacks are added as NULL), each with
# whether it holds numbers.
Columns = dict[str, bool]


@dataclass(frozen=True)
class Check:
    name: str
    description: str
    conditions: Callable[[Columns, CheckContext], Conditions]
    warn_at: float = 0.0
    fail_at: float | None = None

    def status(self, failed: int, total: int) -> str:
        if failed == 0 or total == 0:
            return "pass"
        share = failed / total
        if self.fail_at is not None and share >= self.fail_at:
            return "fail"
        return "warn" if share >= self.warn_at else "pass"


def _true(condition: str) -> str:
    return f"coalesce({condition}, false)"


def _any(conditions: list[str]) -> str:
    return "(" + " OR ".join(conditions) + ")"


def book_out_before_book_in(columns: Columns, context: CheckContext) -> Conditions:
    pairs = [(a, b) for a, b in (("book_in", "book_out"), ("stay_book_in", "stay_book_out"))
             if a in columns and b in columns]
    if not pairs:
        return None
    return (_any([_true(f'"{end}" < "{start}"') for start, end in pairs]),
            _any([f'("{start}" IS NOT NULL AND "{end}" IS NOT NULL)' for start, end in pairs]))


def dates_outside_release_window(columns: Columns, context: CheckContext) -> Conditions:
    key = context.dataset.key_date
    if key not in columns or context.release_date is None:
        return None
    end = context.release_date + timedelta(days=1)
    failed = [_true(f"\"{key}\" >= TIMESTAMP '{end.isoformat()}'")]
    if context.window_start is not None:
        failed.append(_true(f"\"{key}\" < TIMESTAMP '{context.window_start.isoformat()}'"))
    return _any(failed), f'"{key}" IS NOT NULL'


def impossible_birth_years(columns: Columns, context: CheckContext) -> Conditions:
    # A birth date's year too: a date written with two digits ("01-JAN-55") reads as 2055.
    years = [y for c, y in (("birth_year", "birth_year"), ("birth_date", 'year("birth_date")'))
             if c in columns]
    if not years or context.release_date is None:
        return None
    latest = context.release_date.year
    return (_any([_true(f"({y} < {latest - MAX_AGE_YEARS} OR {y} > {latest})") for y in years]),
            _any([f"{y} IS NOT NULL" for y in years]))


def unknown_facility_codes(columns: Columns, context: CheckContext) -> Conditions:
    if "facility_code" not in columns:
        return None
    return (f"(facility_code IS NOT NULL AND CAST(facility_code AS VARCHAR) NOT IN "
            f"(SELECT code FROM {KNOWN_FACILITY_CODES}))", "facility_code IS NOT NULL")


def identifier_gaps(columns: Columns, context: CheckContext) -> Conditions:
    if "person_id" not in columns:
        return None
    return "person_id IS NULL", "true"


# An AOR that names no field office is NULL, its text kept in `unparsed` as `aor=...`.
_UNKNOWN_AOR = "len(list_filter(unparsed, lambda x: starts_with(x, 'aor='))) > 0"


def unknown_aors(columns: Columns, context: CheckContext) -> Conditions:
    if "aor" not in columns:
        return None
    return _UNKNOWN_AOR, f"(aor IS NOT NULL OR {_UNKNOWN_AOR})"


def negative_numbers(columns: Columns, context: CheckContext) -> Conditions:
    """Every number a FOIA record holds (years, levels, sentences, amounts) is zero or more."""
    numbers = [name for name, numeric in columns.items() if numeric]
    if not numbers:
        return None
    return (_any([_true(f'"{name}" < 0') for name in numbers]),
            _any([f'"{name}" IS NOT NULL' for name in numbers]))


# ICE names countries in words (`MEXICO`, `CHINA, PEOPLES REPUBLIC OF`; none of its names is
# shorter than 4 letters): a value of 1 to 3 is a code (`MX`, `MEX`, `484`), which no table of
# ICE's names is shipped to translate, so counts by country would keep it apart from ICE's name.
COUNTRY_COLUMNS = ("citizenship_country", "birth_country", "departure_country")


def country_codes(columns: Columns, context: CheckContext) -> Conditions:
    present = [c for c in COUNTRY_COLUMNS if c in columns]
    if not present:
        return None
    return (_any([_true(f'strlen("{c}") <= 3') for c in present]),
            _any([f'"{c}" IS NOT NULL' for c in present]))


UNREADABLE_VALUES = "unreadable_values"


def unreadable_values(columns: Columns, context: CheckContext) -> Conditions:
    return "len(unparsed) > 0", "true"


CHECKS: tuple[Check, ...] = (
    Check("book_out_before_book_in", "a stint's or stay's book-out is earlier than its book-in",
          book_out_before_book_in, fail_at=0.01),
    Check("dates_outside_release_window", "the key date lies after the release date, or before "
          "the fiscal year preceding the first one the file name covers",
          dates_outside_release_window,
          fail_at=0.05),
    Check("impossible_birth_years", f"birth year (or a birth date's year) after the release "
          f"year or more than {MAX_AGE_YEARS} years before it", impossible_birth_years,
          fail_at=0.01),
    Check("unknown_facility_codes", "facility code in neither the facility reference nor "
          "another dataset of the same release", unknown_facility_codes),
    Check("identifier_gaps", "row has no person identifier (it can never be linked)",
          identifier_gaps, fail_at=0.10),
    Check("unknown_aors", "field office (AOR) text that names none of the 25 field offices",
          unknown_aors, fail_at=0.01),
    Check("negative_numbers", "a year, level, sentence or amount below zero", negative_numbers,
          fail_at=0.01),
    Check("country_codes", "a country written as a code of 1-3 characters (MX, MEX), not as "
          "ICE names it: counts by country keep it apart from ICE's name", country_codes,
          fail_at=0.01),
    Check(UNREADABLE_VALUES, "row holds a cell that is not of its column's type (kept in "
          "`unparsed`)", unreadable_values, fail_at=0.01),
)


@dataclass
class _Tally:
    failed: int = 0
    total: int = 0
    example: str | None = None


@dataclass
class CheckRun:
    """The checks of one file, accumulated sheet by sheet."""

    context: CheckContext
    tallies: dict[str, _Tally] = field(default_factory=dict)

    def conditions(self, columns: Columns) -> dict[str, tuple[str, str]]:
        """The checks that apply to rows with these canonical columns, with their SQL."""
        found = {}
        for check in CHECKS:
            conditions = check.conditions(columns, self.context)
            if conditions is not None:
                found[check.name] = conditions
        return found

    def add(self, name: str, failed: int, total: int, sheet: str | None,
            first_row: int | None) -> None:
        """One sheet's count for a check, and the row of its first failure."""
        tally = self.tallies.setdefault(name, _Tally())
        tally.failed += failed
        tally.total += total
        if failed and tally.example is None:
            tally.example = (f"sheet {sheet!r} row {first_row}" if sheet is not None
                             else f"row {first_row}")

    def results(self) -> list[dict]:
        by_name = {c.name: c for c in CHECKS}
        return [
            {"check": name, "description": by_name[name].description,
             "failed_rows": t.failed, "total_rows": t.total,
             "status": by_name[name].status(t.failed, t.total),
             "warn_at": by_name[name].warn_at, "fail_at": by_name[name].fail_at,
             "example": t.example}
            for name, t in self.tallies.items()
        ]


def results_table(sha256: str, file_name: str, dataset: str, results: list[dict]) -> pa.Table:
    schema = pa.schema([
        ("sha256", pa.string()), ("file_name", pa.string()), ("dataset", pa.string()),
        ("check", pa.string()), ("description", pa.string()), ("failed_rows", pa.int64()),
        ("total_rows", pa.int64()), ("status", pa.string()), ("warn_at", pa.float64()),
        ("fail_at", pa.float64()), ("example", pa.string()),
    ])
    rows = [{"sha256": sha256, "file_name": file_name, "dataset": dataset, **r} for r in results]
    return pa.Table.from_pylist(rows, schema=schema)


@cache
def reference_facility_codes() -> frozenset[str]:
    """The facility codes of the project's small reference (src/iceledger/data)."""
    with resources.files("iceledger.data").joinpath("reference", "foia_facility_codes.csv").open() as handle:
        return frozenset(row["facility_code"] for row in csv.DictReader(handle))


def read_facility_codes(paths: Iterable[Path]) -> frozenset[str]:
    """Facility codes from user reference files: CSV or TSV with a column named like
    `facility_code` or `detention_facility_code`."""
    codes: set[str] = set()
    for path in paths:
        try:
            with open(path, newline="", encoding="utf-8-sig") as handle:
                sample = handle.readline()
                handle.seek(0)
                reader = csv.DictReader(handle, delimiter="\t" if "\t" in sample else ",")
                column = next((c for c in reader.fieldnames or () if c.endswith("facility_code")),
                              None)
                if column is None:
                    raise IceledgerError(f"{path}: no column named like 'facility_code' "
                                         f"(columns: {', '.join(reader.fieldnames or ())})")
                codes.update(row[column].strip() for row in reader if row[column])
        except OSError as exc:
            raise IceledgerError(f"{path}: cannot read the facility reference ({exc})") from None
    return frozenset(codes)
