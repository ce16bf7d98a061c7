"""ICE's own sheets in a production, and what a release can say, column by column.

A production may carry a `Summary` sheet (ICE's totals per dataset and fiscal year) and a
`Footnotes` sheet (when the data were updated, how ICE counts). The totals become a check: the
records loaded per dataset and fiscal year against ICE's own figure (`foia_published_totals`, and
one `ice_summary_totals` row per dataset in `foia_checks`). The footnotes are stored with the
release (`foia_release_notes`); their "updated through" date is the release date when the file
name carries none.

`Capabilities` tallies, from the rows loaded, how many rows of each dataset, sheet and month
carry a value in each canonical column (`foia_capabilities`): what the release can say, period by
period (docs/codebook.md, "FOIA capabilities").
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date

import pyarrow as pa

from iceledger.sources.foia.layouts import Catalog, hint_level
from iceledger.sources.foia.readers import IceSheet
from iceledger.sources.stats.cells import snake_case

SUMMARY_CHECK = "ice_summary_totals"
# Columns every loaded row has whatever its source: bookkeeping, not something the records say.
BOOKKEEPING = frozenset({"redacted", "unparsed", "extras", "source_file", "source_sheet",
                         "source_row", "record_id", "release", "is_exact_duplicate"})
_SLASH_DATE = re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b")
SUMMARY_FAIL_AT = 0.01


@dataclass(frozen=True)
class PublishedTotal:
    """One figure of ICE's Summary sheet."""

    dataset: str
    column: str  # "Total", or the sheet it counts ("Expedited Removals")
    label: str  # as ICE wrote it: "FY2019 YTD"
    fiscal_year: int
    total: int
    sheet: str
    row: int


@dataclass(frozen=True)
class Note:
    sheet: str
    row: int
    text: str
    dates: tuple[date, ...]


def read_notes(sheets: list[IceSheet]) -> list[Note]:
    notes = []
    for sheet in sheets:
        if sheet.kind != "notes":
            continue
        for number, row in enumerate(sheet.rows, start=1):
            text = " ".join(str(c).strip() for c in row if c not in (None, "")).strip()
            if text:
                notes.append(Note(sheet.name, number, text, _dates(text)))
    return notes


def updated_through(notes: list[Note], cat: Catalog) -> str | None:
    """The date the footnotes say the data run to ("updated through 07/06/2019"), ISO."""
    for note in notes:
        found = cat.vocabulary.updated_through.search(note.text)
        if found:
            month, day, year = (int(g) for g in found.groups())
            try:
                return date(year, month, day).isoformat()
            except ValueError:
                continue
    return None


def read_summary(sheets: list[IceSheet], cat: Catalog) -> tuple[list[PublishedTotal], list[str]]:
    """ICE's totals: blocks of a title row naming the dataset, a "Fiscal Year" header row and one
    row per fiscal year. Returns the totals and a warning per block whose dataset is unclear."""
    vocabulary = cat.vocabulary
    totals, warnings = [], []
    for sheet in sheets:
        if sheet.kind != "summary":
            continue
        title, header, dataset = "", None, None
        for number, row in enumerate(sheet.rows, start=1):
            cells = ["" if c is None else str(c).strip() for c in row]
            if not any(cells):
                continue
            first = cells[0]
            if first.casefold() == vocabulary.summary_header:
                header = cells
                named = [name for name in cat.datasets
                         if hint_level(vocabulary.hints.get(name, ()), None, title)]
                dataset = named[0] if len(named) == 1 else None
                if dataset is None:
                    warnings.append(f"sheet {sheet.name!r} row {number}: the totals under "
                                    f"{title[:60]!r} name {len(named)} datasets, not one; not "
                                    "compared")
                continue
            year = vocabulary.fiscal_year.match(first)
            if header is not None and year and any(isinstance(v, int | float) for v in row[1:]):
                fiscal_year = int(year.group(1))
                fiscal_year += 2000 if fiscal_year < 100 else 0
                for column, value in zip(header[1:], row[1:], strict=False):
                    if column and isinstance(value, int | float) and dataset:
                        totals.append(PublishedTotal(dataset, column, first, fiscal_year,
                                                     int(value), sheet.name, number))
                continue
            title, header, dataset = " ".join(c for c in cells if c), None, None
    return totals, warnings


class Capabilities:
    """Rows, values and redactions per dataset, sheet, month and canonical column."""

    def __init__(self) -> None:
        # (dataset, sheet, month, column) -> [rows, non-null values, redacted cells]
        self.counts: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
        self.rows: dict[tuple, int] = defaultdict(int)  # (dataset, sheet, month) -> rows

    def add(self, dataset: str, sheet: str | None, month: date | None, rows: int,
            values: dict[str, int]) -> None:
        """Rows of one sheet and month, and the values each of its columns carries there."""
        key = (dataset, sheet, month)
        self.rows[key] += rows
        for column, count in values.items():
            tally = self.counts[(*key, column)]
            tally[0] += rows
            tally[1] += count

    def add_redacted(self, dataset: str, sheet: str | None, month: date | None, column: str,
                     cells: int) -> None:
        self.counts[(dataset, sheet, month, column)][2] += cells

    def records(self, dataset: str, sheet: str | None = None) -> dict[int | None, int]:
        """Rows per fiscal year (None: no key date) of a dataset, or of one of its sheets."""
        years: dict[int | None, int] = defaultdict(int)
        for (name, sheet_name, month), rows in self.rows.items():
            if name == dataset and (sheet is None or sheet_name == sheet):
                year = None if month is None else month.year + (month.month >= 10)
                years[year] += rows
        return years

    def table(self, sha256: str, file_name: str, release: str) -> pa.Table:
        rows = [{"sha256": sha256, "file_name": file_name, "release": release,
                 "dataset": dataset, "sheet": sheet, "month": month,
                 "fiscal_year": None if month is None else month.year + (month.month >= 10),
                 "column": column, "rows": rows, "non_null": values, "redacted": redacted}
                for (dataset, sheet, month, column), (rows, values, redacted)
                in sorted(self.counts.items(), key=lambda item: tuple(
                    (x is None, x) for x in item[0]))]
        return pa.Table.from_pylist(rows, schema=pa.schema([
            ("sha256", pa.string()), ("file_name", pa.string()), ("release", pa.string()),
            ("dataset", pa.string()), ("sheet", pa.string()), ("month", pa.date32()),
            ("fiscal_year", pa.int32()), ("column", pa.string()), ("rows", pa.int64()),
            ("non_null", pa.int64()), ("redacted", pa.int64())]))


def compare_summary(totals: list[PublishedTotal], capabilities: Capabilities,
                    sheets_of: dict[str, list[str]], cat: Catalog
                    ) -> tuple[list[dict], dict[str, dict]]:
    """ICE's totals against the records loaded: the rows of the totals table, and one check
    result per dataset (in the form of iceledger.sources.foia.checks results)."""
    rows, checks = [], {}
    for dataset in dict.fromkeys(t.dataset for t in totals):
        mode = cat.vocabulary.compare.get(dataset, "fiscal_year")
        failed = 0
        checked: dict[str, int] = defaultdict(int)  # ICE's figures compared, per column
        example = None
        by_column: dict[str, list[PublishedTotal]] = defaultdict(list)
        for total in totals:
            if total.dataset == dataset:
                by_column[total.column].append(total)
        for column, figures in by_column.items():
            sheet = next((s for s in sheets_of.get(dataset, ())
                          if snake_case(s) == snake_case(column)), None)
            if sheet is None and column.casefold() != "total":
                continue  # a breakdown no sheet of the file matches: shown, not compared
            records = capabilities.records(dataset, sheet)
            for figure in figures:
                loaded = records.get(figure.fiscal_year, 0)
                rows.append({"dataset": dataset, "column": column, "label": figure.label,
                             "fiscal_year": figure.fiscal_year, "ice_total": figure.total,
                             "records": loaded, "compared": mode, "sheet": figure.sheet,
                             "row": figure.row})
                if mode == "fiscal_year":
                    checked[column] += figure.total
                    failed += abs(loaded - figure.total)
                    if loaded != figure.total and example is None:
                        example = (f"{figure.label} {column}: {loaded:,} records, ICE "
                                   f"{figure.total:,} (sheet {figure.sheet!r} row {figure.row})")
            if mode == "total":
                published = sum(f.total for f in figures)
                loaded = sum(records.values())
                checked[column] += published
                failed += abs(loaded - published)
                if loaded != published and example is None:
                    example = (f"{column}, all years: {loaded:,} records, ICE {published:,}")
        # The breakdown by sheet and the Total count the same records: the Total's figures, when
        # ICE printed one, are the records the check covers.
        covered = next((n for c, n in checked.items() if c.casefold() == "total"),
                       sum(checked.values()))
        share = failed / covered if covered else 0.0
        description = ("records per fiscal year of the key date equal ICE's total on its Summary "
                       "sheet" if mode == "fiscal_year" else "records in all equal ICE's total "
                       "over the production on its Summary sheet (ICE credits these to another "
                       "fiscal year than the key date's; the years are shown, not compared)")
        checks[dataset] = {
            "dataset": dataset, "check": SUMMARY_CHECK, "description": description,
            "compared": "per fiscal year" if mode == "fiscal_year" else "in total",
            "failed_rows": failed,
            "total_rows": covered,
            "status": "pass" if failed == 0 else ("fail" if share >= SUMMARY_FAIL_AT else "warn"),
            "warn_at": 0.0, "fail_at": SUMMARY_FAIL_AT, "example": example}
    return rows, checks


def totals_table(sha256: str, file_name: str, release: str, rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(
        [{"sha256": sha256, "file_name": file_name, "release": release, **r} for r in rows],
        schema=pa.schema([
            ("sha256", pa.string()), ("file_name", pa.string()), ("release", pa.string()),
            ("dataset", pa.string()), ("column", pa.string()), ("label", pa.string()),
            ("fiscal_year", pa.int32()), ("ice_total", pa.int64()), ("records", pa.int64()),
            ("compared", pa.string()), ("sheet", pa.string()), ("row", pa.int32())]))


def notes_table(sha256: str, file_name: str, release: str, notes: list[Note]) -> pa.Table:
    return pa.Table.from_pylist(
        [{"sha256": sha256, "file_name": file_name, "release": release, "sheet": n.sheet,
          "row": n.row, "note": n.text, "dates": list(n.dates)} for n in notes],
        schema=pa.schema([
            ("sha256", pa.string()), ("file_name", pa.string()), ("release", pa.string()),
            ("sheet", pa.string()), ("row", pa.int32()), ("note", pa.string()),
            ("dates", pa.list_(pa.date32()))]))


def _dates(text: str) -> tuple[date, ...]:
    found = []
    for month, day, year in _SLASH_DATE.findall(text):
        try:
            found.append(date(int(year), int(month), int(day)))
        except ValueError:
            continue
    return tuple(found)
