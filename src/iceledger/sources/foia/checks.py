"""Validation of FOIA rows on ingest, as code: each check is a named function with thresholds.

In the manner of pointblank: a check looks at every loaded row it applies to and counts the rows
that fail it; the share failing decides its status (`pass`, `warn` at or above `warn_at`, `fail`
at or above `fail_at`). Checks never remove rows: a failing row is loaded as it is and counted
here (only rows that cannot be used at all are quarantined, by the canonicaliser). Results go to
the `foia_checks` table, one row per file and check, with the first failing row's location.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from iceledger.errors import IceledgerError
from iceledger.sources.foia.layouts import Dataset

# How many years before its release a birth year may lie (the oldest people held are about 100).
MAX_AGE_YEARS = 110


@dataclass(frozen=True)
class CheckContext:
    """What the checks of one file compare against."""

    dataset: Dataset
    release_date: date | None
    window_start: date | None  # earliest plausible key date, from the file name's fiscal years
    known_facility_codes: frozenset[str]


@dataclass(frozen=True)
class Rows:
    """The loaded rows of one part, with what the canonicaliser knew about them."""

    table: pa.Table
    unknown_aor: np.ndarray | None


Outcome = tuple[pa.Array, pa.Array] | None  # (failed, checked) masks, None if not applicable


@dataclass(frozen=True)
class Check:
    name: str
    description: str
    evaluate: Callable[[Rows, CheckContext], Outcome]
    warn_at: float = 0.0
    fail_at: float | None = None

    def status(self, failed: int, total: int) -> str:
        if failed == 0 or total == 0:
            return "pass"
        share = failed / total
        if self.fail_at is not None and share >= self.fail_at:
            return "fail"
        return "warn" if share >= self.warn_at else "pass"


def _has(rows: Rows, *names: str) -> bool:
    return all(n in rows.table.column_names for n in names)


def _column(rows: Rows, name: str) -> pa.Array:
    return rows.table.column(name).combine_chunks()


def _true(mask) -> pa.Array:
    return pc.fill_null(mask, False)


def book_out_before_book_in(rows: Rows, context: CheckContext) -> Outcome:
    pairs = [(a, b) for a, b in (("book_in", "book_out"), ("stay_book_in", "stay_book_out"))
             if _has(rows, a, b)]
    if not pairs:
        return None
    failed = checked = None
    for start, end in pairs:
        start_values, end_values = _column(rows, start), _column(rows, end)
        both = pc.and_(pc.is_valid(start_values), pc.is_valid(end_values))
        wrong = _true(pc.less(end_values, start_values))
        failed = wrong if failed is None else pc.or_(failed, wrong)
        checked = both if checked is None else pc.or_(checked, both)
    return failed, checked


def dates_outside_release_window(rows: Rows, context: CheckContext) -> Outcome:
    key = context.dataset.key_date
    if not _has(rows, key) or context.release_date is None:
        return None
    values = _column(rows, key)
    end = datetime.combine(context.release_date + timedelta(days=1), datetime.min.time())
    failed = _true(pc.greater_equal(values, pa.scalar(end, values.type)))
    if context.window_start is not None:
        start = datetime.combine(context.window_start, datetime.min.time())
        failed = pc.or_(failed, _true(pc.less(values, pa.scalar(start, values.type))))
    return failed, pc.is_valid(values)


def impossible_birth_years(rows: Rows, context: CheckContext) -> Outcome:
    if not _has(rows, "birth_year") or context.release_date is None:
        return None
    years = _column(rows, "birth_year")
    latest = context.release_date.year
    failed = pc.or_(_true(pc.less(years, latest - MAX_AGE_YEARS)),
                    _true(pc.greater(years, latest)))
    return failed, pc.is_valid(years)


def unknown_facility_codes(rows: Rows, context: CheckContext) -> Outcome:
    if not _has(rows, "facility_code"):
        return None
    codes = _column(rows, "facility_code")
    known = pa.array(sorted(context.known_facility_codes), pa.string())
    failed = pc.and_(pc.is_valid(codes), pc.invert(pc.is_in(codes, value_set=known)))
    return failed, pc.is_valid(codes)


def identifier_gaps(rows: Rows, context: CheckContext) -> Outcome:
    if not _has(rows, "person_id"):
        return None
    ids = _column(rows, "person_id")
    return pc.is_null(ids), pa.array(np.ones(len(ids), dtype=bool))


def unknown_aors(rows: Rows, context: CheckContext) -> Outcome:
    if rows.unknown_aor is None or not _has(rows, "aor"):
        return None
    failed = pa.array(rows.unknown_aor)
    return failed, pc.or_(pc.is_valid(_column(rows, "aor")), failed)


def negative_numbers(rows: Rows, context: CheckContext) -> Outcome:
    """Every number a FOIA record holds (years, levels, sentences, amounts) is zero or more."""
    numbers = [field.name for field in rows.table.schema if field.name != "source_row" and (
        pa.types.is_integer(field.type) or pa.types.is_floating(field.type))]
    if not numbers:
        return None
    failed = checked = None
    for name in numbers:
        values = _column(rows, name)
        below = _true(pc.less(values, pa.scalar(0, values.type)))
        failed = below if failed is None else pc.or_(failed, below)
        present = pc.is_valid(values)
        checked = present if checked is None else pc.or_(checked, present)
    return failed, checked


def unreadable_values(rows: Rows, context: CheckContext) -> Outcome:
    lengths = pc.list_value_length(_column(rows, "unparsed"))
    return pc.greater(lengths, 0), pa.array(np.ones(len(lengths), dtype=bool))


CHECKS: tuple[Check, ...] = (
    Check("book_out_before_book_in", "a stint's or stay's book-out is earlier than its book-in",
          book_out_before_book_in, fail_at=0.01),
    Check("dates_outside_release_window", "the key date lies after the release date, or before "
          "the fiscal year preceding the first one the file name covers",
          dates_outside_release_window,
          fail_at=0.05),
    Check("impossible_birth_years", f"birth year after the release year or more than "
          f"{MAX_AGE_YEARS} years before it", impossible_birth_years, fail_at=0.01),
    Check("unknown_facility_codes", "facility code in neither the facility reference nor "
          "another dataset of the same release", unknown_facility_codes),
    Check("identifier_gaps", "row has no person identifier (it can never be linked)",
          identifier_gaps, fail_at=0.10),
    Check("unknown_aors", "field office (AOR) text that names none of the 25 field offices",
          unknown_aors, fail_at=0.01),
    Check("negative_numbers", "a year, level, sentence or amount below zero", negative_numbers,
          fail_at=0.01),
    Check("unreadable_values", "row holds a cell that is not of its column's type (kept in "
          "`unparsed`)", unreadable_values, fail_at=0.01),
)


@dataclass
class _Tally:
    failed: int = 0
    total: int = 0
    example: str | None = None


@dataclass
class CheckRun:
    """The checks of one file, accumulated part by part while the file streams in."""

    context: CheckContext
    tallies: dict[str, _Tally] = field(default_factory=dict)

    def update(self, rows: Rows) -> None:
        for check in CHECKS:
            outcome = check.evaluate(rows, self.context)
            if outcome is None:
                continue
            failed, checked = outcome
            tally = self.tallies.setdefault(check.name, _Tally())
            failed = pc.and_(_true(failed), _true(checked))
            count = pc.sum(failed).as_py() or 0
            tally.failed += count
            tally.total += pc.sum(checked).as_py() or 0
            if count and tally.example is None:
                tally.example = _where(rows.table, int(np.flatnonzero(np.asarray(failed))[0]))

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


def _where(table: pa.Table, index: int) -> str:
    sheet = table.column("source_sheet")[index].as_py()
    row = table.column("source_row")[index].as_py()
    return f"sheet {sheet!r} row {row}" if sheet is not None else f"row {row}"


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
