"""ICE detention-statistics workbooks: parse every table of one workbook.

`parse_workbook` reads one workbook into tidy Arrow tables (one per table kind, see the
"Detention statistics" section of docs/codebook.md) plus a `stats_workbooks` row describing the
file. `ingest.ingest_stats` loads them into the warehouse.

Cells are read with python-calamine by default. The reader is a parameter (any object with
`sheet_names` and `rows(sheet)`), so the same parse can run on another cell source; the
benchmark runs it on openpyxl for comparison. The parse path imports neither DuckDB nor pandas.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from iceledger.errors import Location, SourceError
from iceledger.sources.stats.cells import (
    fiscal_year_in,
    fiscal_year_of,
    fiscal_year_start,
    parse_date,
    sheet_key,
)
from iceledger.sources.stats.parsed import ParsedWorkbook
from iceledger.sources.stats.sheet_tables import (
    Extraction,
    Layout,
    SheetContext,
    SheetScan,
    TableColumns,
    figures_under_merges,
    load_layout,
    read_sheet,
    scan_sheet,
)
from iceledger.sources.stats.snapshots import FootnoteDate, SnapshotDating, footnote_dates
from iceledger.sources.xlsx_files import checked_workbook, sheet_members
from iceledger.tables import STATS_UNRECOGNISED, STATS_WORKBOOKS

if TYPE_CHECKING:
    import pyarrow as pa

# Bounds on what a workbook's parts may claim: ICE's largest sheet is 11 MB of XML, and its values
# span at most some 60,000 cells (1,889 rows by 31 columns).
MAX_PART_BYTES = 128 << 20
MAX_SHEET_CELLS = 10_000_000


class SheetSource(Protocol):
    """A workbook as a cell source: its sheet names, and each sheet's rows as lists of values."""

    @property
    def sheet_names(self) -> list[str]: ...

    def rows(self, sheet: str) -> Sequence[Sequence[Any]]: ...


class CalamineSource:
    """Cells read by python-calamine (Rust), the fast default, from a checked copy of the file
    (iceledger.sources.xlsx_files): a sheet too large to build is refused alone, and error cells
    and formulas saved without a value read as their text ("#N/A", "=SUM(B2:B4)")."""

    def __init__(self, path: Path):
        import python_calamine

        checked = checked_workbook(path, MAX_PART_BYTES, MAX_SHEET_CELLS)
        self._refused = checked.refused
        self._merged: dict[str, list[tuple[tuple[int, int], tuple[int, int]]]] = {}
        self._book = python_calamine.CalamineWorkbook.from_filelike(checked.data)

    @property
    def sheet_names(self) -> list[str]:
        return list(self._book.sheet_names)

    @property
    def hidden_sheets(self) -> frozenset[str]:
        """The sheets the workbook hides from its reader."""
        from python_calamine import SheetVisibleEnum

        return frozenset(sheet.name for sheet in self._book.sheets_metadata
                         if sheet.visible != SheetVisibleEnum.Visible)

    def rows(self, sheet: str) -> list[list[Any]]:
        if sheet in self._refused:
            raise self._refused[sheet]
        cells = self._book.get_sheet_by_name(sheet)
        self._merged[sheet] = cells.merged_cell_ranges or []
        # skip_empty_area=False keeps row and column indexes equal to the sheet's (A1 = [0][0]).
        return cells.to_python(skip_empty_area=False)

    def merged_ranges(self, sheet: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
        """The merged cells of a sheet read by `rows`: ((first row, first column), (last row,
        last column)), 0-based."""
        return self._merged.get(sheet, [])


def parse_workbook(
    path: Path | str,
    open_workbook: Callable[[Path], SheetSource] = CalamineSource,
    layout: Layout | None = None,
) -> ParsedWorkbook:
    """Parse every known table of one workbook. Problems are collected, never raised."""
    path = Path(path)
    layout = layout or load_layout()
    parsed = ParsedWorkbook(path=path, workbook=path.name, sha256="")
    try:
        parsed.sha256 = _sha256(path)
        book = open_workbook(path)
        sheet_names = book.sheet_names
    except OSError as exc:
        parsed.errors.append(SourceError(Location(path.name), f"cannot read the file: {exc}"))
        return parsed
    except SourceError as exc:
        parsed.errors.append(exc)
        return parsed
    except Exception as exc:  # noqa: BLE001 - each reader raises its own types for a bad file
        parsed.errors.append(SourceError(
            Location(path.name), f"not a readable .xlsx workbook ({type(exc).__name__}: {exc})"
        ))
        return parsed
    _read_file_name(parsed, layout)
    parsed.errors.extend(uncalculated_formulas(path))
    sheet_years = {name: _sheet_fiscal_year(name, layout) for name in sheet_names
                   if not layout.ignores(name)}
    parsed.fiscal_year = _workbook_fiscal_year(parsed, sheet_years, layout)
    for pattern in layout.required_sheets:
        if not any(pattern.search(sheet_key(name)) for name in sheet_names):
            parsed.errors.append(SourceError(
                Location(path.name), f"missing sheet: none is named like /{pattern.pattern}/"
            ))
    grids, specs = {}, {}
    for name in sheet_years:
        specs[name] = layout.tables_for(name)
        try:
            grids[name] = book.rows(name)
        except SourceError as exc:
            parsed.errors.append(exc)
        except Exception as exc:  # noqa: BLE001 - a damaged sheet must not stop the others
            parsed.errors.append(SourceError(Location(path.name, name),
                                             f"cannot read the sheet ({exc})"))
    scans = {name: scan_sheet(grid) for name, grid in grids.items()}
    for name in sheet_names:
        if name not in sheet_years:
            _read_prose_sheet_with_figures(book, name, layout, parsed, sheet_years, grids, scans,
                                           specs)
    parsed.as_of_date, iids_by_sheet = _as_of_date(parsed, scans, layout)
    cutoff = _placeholder_cutoff(parsed)
    # A reader other than calamine (tests, another cell source) may not know sheet visibility.
    hidden = book.hidden_sheets if hasattr(type(book), "hidden_sheets") else frozenset()
    hidden_other_years = frozenset(
        name for name in grids
        if name in hidden and (sheet_years[name] or parsed.fiscal_year) != parsed.fiscal_year)
    dating = SnapshotDating(layout.footnote_rules, _footnotes(book, sheet_names, layout, parsed),
                            iids_by_sheet, parsed.file_date, layout.caption_as_of,
                            hidden_other_years)
    extraction = Extraction()
    for name, grid in grids.items():
        year = sheet_years[name] or parsed.fiscal_year
        if year != parsed.fiscal_year:
            parsed.warnings.append(
                f"sheet {name.strip()!r} reports FY{year} in an FY{parsed.fiscal_year} workbook; "
                "its tables are a snapshot of their own"
            )
        context = SheetContext(path.name, parsed.sha256, name, year, cutoff, dating)
        known = bool(specs[name])
        read = read_sheet(grid, specs[name] or layout.captioned_tables(), layout, context,
                          extraction, scans[name], known=known)
        if read and name in hidden:
            # Published in the file, but unseen by anyone who opens it: perhaps a stale copy.
            tables = ", ".join(sorted(set(read)))
            parsed.warnings.append(
                f"sheet {name.strip()!r} is hidden in the workbook; its tables were read as "
                f"saved (a reader of the workbook does not see them): {tables}"
                + _hidden_dating(name, set(read), dating))
        if not known:
            parsed.warnings.append(
                f"sheet {name.strip()!r} is of no known kind; its tables were found by their "
                f"captions: {', '.join(sorted(set(read)))}" if read else
                f"sheet {name.strip()!r} is of no known kind; its figures are kept in "
                f"{STATS_UNRECOGNISED}")
    for day in dating.impossible_captions:
        parsed.warnings.append(f"a table caption is dated {day!r}, a date no calendar has: its "
                               "tables are dated by the next source that speaks for them "
                               "(as_of_source says which)")
    if dating.undated:
        parsed.warnings.append("no snapshot date fits the fiscal year of: "
                               + ", ".join(sorted(set(dating.undated))))
    if hasattr(type(book), "merged_ranges"):
        extraction.errors.extend(figures_under_merges(
            path.name, extraction, {name: book.merged_ranges(name) for name in grids}))
    _collect(parsed, extraction)
    return parsed


def _hidden_dating(sheet: str, tables: set[str], dating: SnapshotDating) -> str:
    """What dates a hidden sheet of another fiscal year, said after its hidden warning."""
    if sheet not in dating.hidden_other_years:
        return ""
    undated = sorted(t for t in tables if (sheet, t) in dating.hidden_undated)
    if not undated:
        return "; of another fiscal year, dated by its own words"
    which = "its tables" if len(undated) == len(tables) else ", ".join(undated)
    return (f"; of another fiscal year, and nothing on it dates {which}: the workbook's "
            "Footnotes and data-as-of line describe its visible sheets, so these figures are "
            "kept as versions but never taken as the latest published value")


def _read_prose_sheet_with_figures(book: SheetSource, name: str, layout: Layout,
                                   parsed: ParsedWorkbook, sheet_years: dict[str, int | None],
                                   grids: dict, scans: dict, specs: dict) -> None:
    """A sheet of prose (Header, Footnotes) holds no figure in any archived release; one that
    does is read as a sheet of no known kind, so that its figures are reported and kept rather
    than skipped with the sheet."""
    try:
        grid = book.rows(name)
    except Exception:  # noqa: BLE001 - a damaged prose sheet is reported where it is read
        return
    scan = scan_sheet(grid)
    if not scan.numbers:
        return
    parsed.warnings.append(f"sheet {name.strip()!r}, a sheet of prose, holds figures; read as a "
                           "sheet of no known kind")
    sheet_years[name] = _sheet_fiscal_year(name, layout)
    grids[name], scans[name], specs[name] = grid, scan, []


def _footnotes(book: SheetSource, sheet_names: list[str], layout: Layout,
               parsed: ParsedWorkbook) -> list[FootnoteDate]:
    """The dating lines of the workbook's Footnotes sheet(s)."""
    found: list[FootnoteDate] = []
    for name in sheet_names:
        if layout.footnote_sheets.search(sheet_key(name)):
            try:
                rows = book.rows(name)
            except Exception as exc:  # noqa: BLE001 - a damaged sheet must not stop the others
                parsed.warnings.append(f"cannot read the sheet {name.strip()!r} ({exc}); "
                                       "its dates are not used")
                continue
            dates = footnote_dates(rows, layout.footnote_rules, parsed.warnings, name)
            if not dates:
                # Every archived release's Footnotes date some table: none is a rewording.
                parsed.warnings.append(
                    f"{name.strip()}: none of its lines dates a table (reworded? see "
                    "[[footnote_dates]] in stats_tables.toml); the tables are dated by their "
                    "IIDS line or the file name")
            found.extend(dates)
    return found


# A formula cell saved without its value: <c r="B5" ...><f>SUM(B2:B4)</f></c>, or <v/> empty.
_FORMULA_WITHOUT_VALUE = re.compile(
    rb'<c r="([A-Z]+[0-9]+)"[^>]*>(?:<f[^>]*/>|<f[^>]*>[^<]*</f>)(?:<v\s*/>|<v></v>)?</c>')


def uncalculated_formulas(path: Path) -> list[SourceError]:
    """One error per sheet holding formula cells saved without their value, naming the first.

    Such a cell holds no figure (readers see it as blank; ours reads its formula, which is then
    quarantined as no number), so its figure would be missing without a word. Excel saves a
    value for every formula and, with any formula, a calculation chain (xl/calcChain.xml);
    a workbook written by a library without calculating has formulas and no chain. So only a
    workbook without the chain is searched, which spares reading every sheet's XML twice.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            if "xl/calcChain.xml" in archive.namelist():
                return []
            errors = []
            for sheet, member in sheet_members(archive).items():
                found = _FORMULA_WITHOUT_VALUE.findall(archive.read(member))
                if found:
                    errors.append(SourceError(
                        Location(path.name, sheet, found[0].decode()),
                        f"{len(found)} formula cell(s) saved without their value, the first "
                        "here; they hold no figure (open and save the file in a spreadsheet "
                        "program to calculate them)"))
            return errors
    except (OSError, zipfile.BadZipFile, KeyError):
        return []  # the reader reports an unreadable file


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _read_file_name(parsed: ParsedWorkbook, layout: Layout) -> None:
    """The report date and archive date a file name carries (FY25_detentionStats09242025.xlsx)."""
    name = parsed.workbook
    if stamp := layout.archive_stamp.search(name):
        digits = stamp["stamp"]  # YYYYMMDDhhmmss
        parsed.archive_date = date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    name_fiscal_year = fiscal_year_in(layout.file_fiscal_year, name)
    found = layout.file_date.search(name)
    if found is None:
        parsed.warnings.append("no report date in the file name")
        return
    parsed.file_date = _date_from_digits(found["digits"], name_fiscal_year)
    if parsed.file_date is None:
        parsed.warnings.append(f"file name digits {found['digits']!r} are not a date")


def _date_from_digits(digits: str, fiscal_year: int | None) -> date | None:
    """MMDDYYYY, MMDDYY (or YYMMDD when MMDDYY is impossible), or MMDD within the fiscal year."""
    candidates: list[tuple[int, int, int]] = []
    if len(digits) == 8:
        candidates = [(int(digits[4:]), int(digits[:2]), int(digits[2:4]))]
    elif len(digits) == 6:
        candidates = [
            (2000 + int(digits[4:]), int(digits[:2]), int(digits[2:4])),
            (2000 + int(digits[:2]), int(digits[2:4]), int(digits[4:])),
        ]
    elif len(digits) == 4 and fiscal_year is not None:
        month = int(digits[:2])
        candidates = [(fiscal_year - 1 if month >= 10 else fiscal_year, month, int(digits[2:]))]
    for year, month, day in candidates:
        try:
            return date(year, month, day)
        except ValueError:
            continue
    return None


def _sheet_fiscal_year(sheet: str, layout: Layout) -> int | None:
    return fiscal_year_in(layout.sheet_fiscal_year, sheet)


def _workbook_fiscal_year(parsed: ParsedWorkbook, sheet_years: dict[str, int | None],
                          layout: Layout) -> int | None:
    """The fiscal year most of the workbook's sheets report; else the file name's; else the date's.

    Sheet names are trusted over the file name: one archived file named FY24 holds FY2025 sheets
    (and figures), and a current-year workbook may carry a prior-year sheet (ATD EOFY23).
    """
    counts = Counter(year for year in sheet_years.values() if year is not None)
    from_name = fiscal_year_in(layout.file_fiscal_year, parsed.workbook)
    if counts:
        top = max(counts.values())
        year = max(y for y, n in counts.items() if n == top)
    else:
        year = from_name or (fiscal_year_of(parsed.file_date) if parsed.file_date else None)
    if from_name is not None and year != from_name:
        parsed.warnings.append(
            f"file name says FY{from_name} but its sheets report FY{year}; FY{year} used"
        )
    return year


def _as_of_date(parsed: ParsedWorkbook, scans: dict[str, SheetScan], layout: Layout
                ) -> tuple[date | None, dict[str, date]]:
    """The "data as of" date the workbook prints (its IIDS source line), and each sheet's."""
    found: list[date] = []
    by_sheet: dict[str, date] = {}
    for sheet, scan in scans.items():
        for _, _, _, match in scan.matching(layout.as_of):
            if match:
                try:
                    found.append(parse_date(match["date"]))
                except ValueError:
                    parsed.warnings.append(f"unreadable data-as-of date {match['date']!r}")
                    continue
                by_sheet.setdefault(sheet, found[-1])
    if not found:
        parsed.warnings.append("no data-as-of date printed in the workbook")
        return None, by_sheet
    if len(set(found)) > 1:
        parsed.warnings.append(
            f"several data-as-of dates printed: {', '.join(sorted({str(d) for d in found}))}"
        )
    return found[0], by_sheet


def _placeholder_cutoff(parsed: ParsedWorkbook) -> date | None:
    """The last day with data: a zero for a month starting later is a placeholder.

    The printed as-of date is used when it is plausible (inside the workbook's fiscal year and
    not after the report date); ICE has printed stale ones, so otherwise the report date is used.
    """
    as_of, report = parsed.as_of_date, parsed.file_date
    if as_of is not None and parsed.fiscal_year is not None:
        plausible = fiscal_year_start(parsed.fiscal_year) <= as_of <= (report or as_of)
        if plausible:
            return as_of
        parsed.warnings.append(
            f"data-as-of date {as_of} is implausible for an FY{parsed.fiscal_year} workbook"
            + (f" dated {report}" if report else "") + " (a stale header?)"
        )
    return report


def _collect(parsed: ParsedWorkbook, extraction: Extraction) -> None:
    parsed.tables = {name: columns.to_arrow() for name, columns in extraction.tables.items()}
    parsed.errors.extend(extraction.errors)
    parsed.warnings.extend(extraction.warnings)
    parsed.rows_read = extraction.rows_read
    parsed.rows_loaded = extraction.rows_loaded
    parsed.quarantined = extraction.quarantined
    parsed.tables_found = extraction.tables_found
    parsed.unrecognised = extraction.unrecognised
    parsed.new_categories = extraction.new_categories
    parsed.tables[STATS_WORKBOOKS] = workbook_row(parsed)


def workbook_row(parsed: ParsedWorkbook) -> pa.Table:
    """The one-row `stats_workbooks` table describing a parsed workbook."""
    row = TableColumns()
    row.declare([
        ("workbook", "string"), ("sha256", "string"), ("fiscal_year", "int32"),
        ("file_date", "date32"), ("archive_date", "date32"), ("as_of_date", "date32"),
        ("tables_found", "list<string>"), ("warnings", "list<string>"),
        ("errors", "list<string>"), ("rows_read", "int64"), ("rows_loaded", "int64"),
        ("rows_quarantined", "int64"),
    ])
    row.add({
        "workbook": parsed.workbook, "sha256": parsed.sha256, "fiscal_year": parsed.fiscal_year,
        "file_date": parsed.file_date, "archive_date": parsed.archive_date,
        "as_of_date": parsed.as_of_date, "tables_found": parsed.tables_found,
        "warnings": parsed.warnings, "errors": [str(e) for e in parsed.errors],
        "rows_read": parsed.rows_read, "rows_loaded": parsed.rows_loaded,
        "rows_quarantined": len(parsed.quarantined),
    }, {}, 1)
    return row.to_arrow()
