"""Readers for FOIA release files: raw ICE `.xlsx` (and the `.xls`, `.xlsb` and `.ods` of older
productions), CSV, and (processed) parquet.

Each reader finds the header row of every sheet by its contents (iceledger.sources.foia.layouts)
and describes the sheet's columns (`RawColumn`). DuckDB reads CSV and parquet itself: their reader
hands over a relation (`relation`: `read_csv` or `read_parquet` with a row number) for the load's
queries to read on DuckDB's threads. An xlsx sheet comes as *work items*: zero-argument callables
that return a `RawPart` (the cells of some rows as Arrow strings, with their spreadsheet row
numbers); work items are independent, so the ingest runs them on several threads while the file is
still being read, and no reader holds more than a bounded slice of a file in memory.

xlsx: ICE's sheets run to a million rows, and calamine (the Rust reader behind fastexcel) builds a
whole sheet in memory, kilobytes a row for the 53-column stints layout. So the sheet's XML is
streamed out of the zip and cut at row boundaries into slices of about CHUNK_BYTES; each slice
becomes a small uncompressed workbook (the original styles and shared strings, one sheet holding
an "anchor" row of column names just above the slice's first row, then the slice's rows verbatim)
that fastexcel turns into Arrow. Row numbers and column positions are those of the original
sheet, because every cell keeps its own `r` reference. docs/foia-ingest.md has the measurements
behind this choice.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
import tempfile
import zipfile
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from xml.etree import ElementTree

import duckdb
import fastexcel
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import python_calamine

from iceledger.errors import Location, SourceError
from iceledger.sources.foia.layouts import Catalog, HeaderMatch, catalog, hint_level
from iceledger.sources.stats.cells import column_index, column_letters
from iceledger.sources.xlsx_files import KINDS, NOT_A_CSV_KINDS, errors_as_text, file_kind
from iceledger.warehouse import QuarantinedRow, ident, literal

CHUNK_BYTES = 32 << 20
MAX_CHUNK_BYTES = 128 << 20
HEADER_SEARCH_ROWS = 100
ICE_SHEET_ROWS = 500  # a Summary or Footnotes sheet is a page of text and totals
MAX_LEADING_ROWS = 1_000  # formatted blank rows above a header that the header search skips
MAX_ROW_GAP = 10_000  # rows missing from a sheet's XML before the slice is cut there
MAX_PART_BYTES = 2 << 30  # a workbook part read whole (shared strings, styles, workbook.xml)
# The longest CSV record DuckDB reads (a cell of 20 MB has been seen), and its buffer.
CSV_MAX_LINE_BYTES = 64 << 20
CSV_SCAN_BYTES = 16 << 20
CSV_DELIMITERS = (",", "\t", "|", ";")
UTF8_PROBLEM = "not valid UTF-8 text; save the file as UTF-8 (or with a byte-order mark)"
ROW = "__row"  # the column of source row numbers in every relation and part a reader hands over

_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_ROW_NUMBER = re.compile(rb'<row\b[^>]*?\br="(\d+)"')
_ROW_OPEN = re.compile(rb"<row\b")
_ROW_START = re.compile(rb"<row[\s>/]")
_VALUE_ROW = re.compile(rb'<row\b[^>]*?\br="(\d+)"[^>]*(?<!/)>(?:(?!</row>).)*?<(?:v|is)\b',
                        re.DOTALL)
_TEXT_TYPES = ("string", "large_string", "string_view")

@dataclass(frozen=True)
class SheetPlan:
    """One sheet (or the whole of a CSV/parquet file) and the header found in it."""

    name: str | None
    index: int
    header_row: int  # 1-based row (or CSV record) of the header
    match: HeaderMatch
    title_text: str  # the rows above the header, joined


@dataclass(frozen=True)
class IceSheet:
    """One of ICE's own sheets that hold no records: its per-year totals or its footnotes."""

    kind: str  # "summary" or "notes"
    name: str
    rows: list[list[object]]


@dataclass(frozen=True)
class RawColumn:
    """One column of a sheet as its reader hands it over."""

    name: str  # canonical name, unique within the sheet (EXTRA_PREFIX + header for extras)
    source: str  # its name in the relation or part the reader hands over
    storage: str  # "text", "float", "integer", "moment", "boolean" or "other"
    header: str  # as written in the header row
    reference: str  # how its cells are named: column letters (xlsx), else the header


@dataclass
class RawPart:
    """Some data rows of one sheet: a column per RawColumn (named by its source) and ROW."""

    plan: SheetPlan
    table: pa.Table


WorkItem = Callable[[], RawPart]


def unique_names(names: list[str]) -> list[str]:
    """Canonical names made unique (a repeated name gets _2, _3...) and never empty."""
    seen: dict[str, int] = {}
    out = []
    for position, name in enumerate(names):
        name = name or f"column_{column_letters(position).lower()}"
        count = seen.get(name, 0) + 1
        seen[name] = count
        out.append(name if count == 1 else f"{name}_{count}")
    return out


def storage_of(arrow_type: pa.DataType) -> str:
    """How the load's queries treat a column stored with this Arrow type."""
    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    if str(arrow_type) in _TEXT_TYPES:
        return "text"
    if pa.types.is_floating(arrow_type):
        return "float"
    if pa.types.is_integer(arrow_type):
        return "integer"
    if pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type):
        return "moment"
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    return "other"


class FoiaReader(ABC):
    """What every reader offers: its sheets with their headers and columns, and their rows,
    either as a relation DuckDB reads itself (CSV, parquet) or as work items (xlsx)."""

    path: Path
    warnings: list[str]
    catalog: Catalog
    ice_sheets: list[IceSheet]  # filled by plans()
    serial = False  # whether DuckDB reads the relation on one thread only

    def __init__(self, path: Path, cat: Catalog | None = None):
        self.path = path
        self.warnings = []
        self.catalog = cat or catalog()
        self.ice_sheets = []

    @abstractmethod
    def plans(self) -> list[SheetPlan]:
        """Every sheet that holds records, with the header found in it."""

    @abstractmethod
    def columns(self, plan: SheetPlan) -> list[RawColumn]:
        """The sheet's columns, in order."""

    def relation(self, plan: SheetPlan) -> str | None:
        """SQL for a relation of the sheet's rows (its columns and ROW) that DuckDB reads
        itself, or None when the rows come as work items."""
        return None

    def work(self, plan: SheetPlan) -> Iterator[tuple[WorkItem, int]]:
        """Work items of a sheet, each with the bytes of the file it covers (for progress)."""
        return iter(())

    def numbered(self, plan: SheetPlan, records: int) -> bool:
        """Whether the relation numbered the `records` it read right; if not, the next
        relation of the sheet will."""
        return True

    def unread_blank_rows(self, plan: SheetPlan) -> int:
        """Blank rows of the sheet that its relation or work items leave out."""
        return 0

    def rejected_rows(self, plan: SheetPlan) -> list[QuarantinedRow]:
        """Rows of the sheet that its relation or work items leave out as unreadable, each
        with its place and why: they go to the quarantine."""
        return []

    def read_error(self, exc: duckdb.Error) -> SourceError:
        """The one line that says where reading the relation failed."""
        return SourceError(Location(self.path.name), f"cannot be read ({exc})")

    def close(self) -> None:  # noqa: B027 - a no-op for readers that hold nothing open
        """Release the file."""


# Forms a production comes in that iceledger does not read, and what to do with one. A folder's
# files of these kinds are loaded too, so that each is a line saying so, never skipped unsaid.
UNREADABLE_FORMS = {".zip": "an archive: unzip it and load the folder"}
# Workbook forms read whole, a sheet at a time (WholeSheetReader): what each is, and the kind of
# file (xlsx_files.file_kind) it must be.
WHOLE_SHEET_FORMS = {".xls": ("an old Excel (97-2003) workbook", "ole"),
                     ".xlsb": ("a binary Excel workbook", "zip"),
                     ".ods": ("an OpenDocument spreadsheet", "zip")}


def open_reader(path: Path, cat: Catalog | None = None) -> FoiaReader:
    suffix = path.suffix.lower()
    cat = cat or catalog()
    if suffix in (".xlsx", ".xlsm"):
        return XlsxReader(path, cat)
    if suffix in WHOLE_SHEET_FORMS:
        return WholeSheetReader(path, cat)
    if suffix in (".csv", ".tsv", ".txt"):
        return CsvReader(path, cat)
    if suffix in (".parquet", ".pq"):
        return ParquetReader(path, cat)
    advice = f"{UNREADABLE_FORMS[suffix]}; " if suffix in UNREADABLE_FORMS else ""
    raise SourceError(Location(path.name), f"cannot read {suffix or 'extension-less'} files as a "
                      f"FOIA release: {advice}expected .xlsx, .xls, .xlsb, .ods, .csv or "
                      ".parquet")


def no_header_error(location: Location, rows: list[list[object]], cat: Catalog,
                    sheet_name: str | None = None, title: str = "") -> SourceError:
    """The error for a sheet without a known header: the datasets and the listed layout it
    resembles most, what they lack, and where to look further."""
    best = max(rows, key=lambda r: sum(1 for c in r if c not in (None, "")), default=[])
    if not best:
        return SourceError(location, "empty: no FOIA header row found")
    layout, missing = cat.closest(best)
    shown = ", ".join(repr(m) for m in missing[:4]) + (" ..." if len(missing) > 4 else "")
    readings = []
    candidates = cat.candidates(best, sheet_name, title)
    # The hint a dataset without its date column holds over the readings that have theirs.
    named = max((c.hinted for c in candidates if not c.has_key_date), default=0)
    for candidate in candidates[:2]:
        lacks = (f"lacks its date column {candidate.dataset.key_date}" if not
                 candidate.has_key_date else "the sheet's or file's name names another dataset"
                 if candidate.hinted < named else "ties with another dataset: name the sheet "
                 "after one")
        readings.append(f"{candidate.dataset.name} maps {len(candidate.mapped)} of "
                        f"{len([c for c in best if c not in (None, '')])} headers but {lacks}")
    return SourceError(location, "not a FOIA release: no row matches a known header or reads as "
                       f"a dataset (closest: {'; '.join(readings)}; layout {layout.name} lacks "
                       f"{len(missing)} of its headers: {shown}); run `iceledger inspect "
                       f"{location.file}` and see docs/foia-ingest.md, \"Declared layouts\"")


def _continued(error: SourceError, previous: str | None) -> SourceError:
    """A sheet without a header after a sheet of records may hold the rest of its records:
    Excel's sheets end at row 1,048,576, and the next sheet often repeats no header. Its rows
    are not read under another sheet's header unasked; the error says how to load them."""
    return SourceError(error.location, f"no header row: if it continues sheet {previous!r} "
                       "(a sheet ends at row 1,048,576), copy that sheet's header row above "
                       f"its first row; {error.problem}")


def _title(rows: list[list[object]]) -> str:
    return " ".join(str(c) for row in rows for c in row if c not in (None, ""))


def csv_head_rows(text: str, delimiter: str) -> list[list[object]]:
    """The first records of a CSV's text split by the delimiter: where its header is sought."""
    records = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    return list(itertools.islice(records, HEADER_SEARCH_ROWS))


def find_header(location: Location, rows: list[list[object]], cat: Catalog,
                sheet_name: str | None = None, file_title: str = "") -> tuple[int, HeaderMatch]:
    """The index of the header among the rows and its match; `file_title` (a CSV's name) is
    read as a title row above them all."""
    for index, row in enumerate(rows):
        match = cat.match(row, sheet_name, " ".join(filter(None, [file_title,
                                                                  _title(rows[:index])])))
        if match is not None:
            return index, match
    raise no_header_error(location, rows, cat, sheet_name,
                          " ".join(filter(None, [file_title, _title(rows[:1])])))


def holds_totals(cat: Catalog, rows: list[list[object]]) -> bool:
    """Whether the rows hold a block of ICE's totals: a "Fiscal Year" header row followed by a
    fiscal year's row of numbers. Asked only of a sheet that reads as no records."""
    vocabulary = cat.vocabulary
    filled = [row for row in rows if any(c not in (None, "") for c in row)]
    return any(
        str(row[0]).strip().casefold() == vocabulary.summary_header
        and vocabulary.fiscal_year.match(str(after[0]))
        and any(isinstance(v, int | float) for v in after[1:])
        for row, after in zip(filled, filled[1:], strict=False) if row and after)


def ice_sheet_kind(cat: Catalog, name: str, rows: list[list[object]]) -> str | None:
    """"summary" or "notes" for ICE's own sheets (by name; a sheet with no row of several filled
    cells is notes whatever its name), None for a sheet that should hold records."""
    vocabulary = cat.vocabulary
    if hint_level(vocabulary.summary_names, name, "") == 2:
        return "summary"
    if hint_level(vocabulary.notes_names, name, "") == 2:
        return "notes"
    widest = max((sum(1 for c in row if c not in (None, "")) for row in rows), default=0)
    return "notes" if widest < vocabulary.min_columns else None


# ---------------------------------------------------------------------------------------------
# xlsx


def _fast_reader_rejected(exc: BaseException) -> bool:
    """Whether the fast reader failed on the XML (not, say, Ctrl-C): its own errors, or a panic
    inside its Rust code, which reaches Python as pyo3's PanicException, a BaseException."""
    return isinstance(exc, fastexcel.FastExcelError | python_calamine.CalamineError) or (
        type(exc).__name__ == "PanicException")


def _xml_cell_text(cell: ElementTree.Element, strings: list[str]) -> str | None:
    kind = cell.get("t")
    if kind == "inlineStr":
        return "".join(t.text or "" for t in cell.iter(f"{{{_MAIN_NS}}}t"))
    value = cell.find(f"{{{_MAIN_NS}}}v")
    text = value.text if value is not None else None
    if text is None:
        return None
    if kind == "s":
        try:
            return strings[int(text)]
        except (ValueError, IndexError):
            return None
    if kind == "b":
        return "TRUE" if text.strip() == "1" else "FALSE"
    return text


def _row_runs(piece: bytes | memoryview, first_row: int) -> Iterator[tuple[bytes, int]]:
    """The slice cut where its row numbers jump by more than MAX_ROW_GAP: the fast reader builds
    every row between the first and the last, so one cell claiming row 1,048,576 would cost a
    million empty rows. Rows absent from the XML hold nothing; they are not blank rows read."""
    tail = list(_ROW_NUMBER.finditer(piece, max(0, len(piece) - 8192)))
    # A slice may be a memoryview of the sheet's buffer (no copy): counted by regex, which reads
    # any buffer, as bytes.count would not.
    rows = sum(1 for _ in _ROW_OPEN.finditer(piece))
    if not tail or int(tail[-1].group(1)) - first_row < rows + MAX_ROW_GAP:
        yield piece, first_row
        return
    start, run_first, previous = 0, first_row, first_row - 1
    for found in _ROW_NUMBER.finditer(piece):
        number = int(found.group(1))
        if number - previous > MAX_ROW_GAP and found.start() > start:
            yield piece[start:found.start()], run_first
            start, run_first = found.start(), number
        previous = number
    yield piece[start:], run_first


class BeyondColumns:
    """Finds a cell holding a value in a column past the first `width` (e.g. past H for 8)
    before the fast reader runs, because it builds every cell of the rectangle up to the
    farthest one. `search` gives the first such cell's match (its reference in group 1).

    The full test (the cell's tag, then a value inside it) costs several times what scanning
    for a reference alone does, and nearly every cell of a sheet is one, so it runs only where
    a reference past the header stands, and not on a tag that closes itself (an empty cell:
    ICE's sheets style empty cells past the header)."""

    # How far a cell's tag may reach before and after its `r` attribute for the full test.
    TAG_BEFORE, CELL_AFTER = 256, 1024

    def __init__(self, width: int):
        last = column_letters(width - 1)
        options = [f"[A-Z]{{{len(last) + 1},3}}"] if len(last) < 3 else []
        for position, letter in enumerate(last):
            if letter < "Z":
                rest = len(last) - position - 1
                options.append(f"{last[:position]}[{chr(ord(letter) + 1)}-Z]"
                               + (f"[A-Z]{{{rest}}}" if rest else ""))
        beyond = "|".join(options).encode()
        self._reference = re.compile(rb'r="(?:' + beyond + rb')\d') if options else None
        self._closed = re.compile(rb'[^>]*/>')
        self._cell = re.compile(rb'<c\b[^>]*?\br="((?:' + beyond + rb')\d+)"[^>]*(?<!/)>'
                                rb'(?:(?!</c>).){0,400}?<(?:v|is)\b', re.DOTALL)

    def search(self, piece: bytes | memoryview) -> re.Match | None:
        if self._reference is None:
            return None
        position = 0
        while found := self._reference.search(piece, position):
            position = found.end()
            if self._closed.match(piece, position):
                continue
            cell = self._cell.search(piece, max(0, found.start() - self.TAG_BEFORE),
                                     position + self.CELL_AFTER)
            if cell:
                return cell
        return None


@dataclass(frozen=True)
class _Sheet:
    name: str
    hidden: bool  # hidden in the workbook ("hidden" or "veryHidden")


@dataclass(frozen=True)
class _SheetPart(_Sheet):
    member: str  # the sheet's XML in the zip


class WorkbookReader(FoiaReader):
    """What every workbook reader shares: its sheets, the first rows of each, and the header
    found in them. A reader sets `_sheets` and reads a sheet's first rows (`_head_rows`)."""

    _sheets: list[_Sheet]
    _file: Location

    @abstractmethod
    def _head_rows(self, sheet: _Sheet, limit: int = HEADER_SEARCH_ROWS) -> list[list[object]]:
        """The sheet's rows from its first to `limit` rows past the first that holds a value
        (formatted blank rows above a header do not use up the search), as typed values."""

    def plans(self) -> list[SheetPlan]:
        plans = []
        for index, sheet in enumerate(self._sheets):
            location = Location(self.path.name, sheet.name)
            head = self._head_rows(sheet)
            if not any(any(c not in (None, "") for c in row) for row in head):
                continue  # an empty sheet holds no records
            kind = ice_sheet_kind(self.catalog, sheet.name, head)
            if kind is not None:
                self.ice_sheets.append(IceSheet(kind, sheet.name,
                                                self._head_rows(sheet, ICE_SHEET_ROWS)))
                continue
            if sheet.hidden:
                # Not part of the release as it is shown: often a working copy of records
                # another sheet holds, which would count them twice.
                self.warnings.append(f"{self.path.name}, sheet {sheet.name!r}: hidden in the "
                                     "workbook, so not loaded; unhide it to load its rows")
                continue
            try:
                header_index, match = find_header(location, head, self.catalog, sheet.name)
            except SourceError as error:
                if not holds_totals(self.catalog, head):
                    raise _continued(error, plans[-1].name) if plans else error
                # Not records, but ICE's totals under another name ("Sheet1", "FY Stats").
                self.ice_sheets.append(IceSheet("summary", sheet.name,
                                                self._head_rows(sheet, ICE_SHEET_ROWS)))
                continue
            plans.append(SheetPlan(sheet.name, index, header_index + 1, match,
                                   _title(head[:header_index])))
        if not plans:
            raise SourceError(self._file, "no sheet holds FOIA records (every sheet is empty, "
                              "notes or hidden)")
        return plans

    def columns(self, plan: SheetPlan) -> list[RawColumn]:
        """The header's columns, every cell as text, named in the quarantine by their letters."""
        headers = plan.match.raw_headers
        positions = [i for i, h in enumerate(headers) if h]
        names = unique_names([plan.match.canonical[i] for i in positions])
        return [RawColumn(name, name, "text", headers[i], column_letters(i))
                for name, i in zip(names, positions, strict=True)]

    def head_rows(self, name: str, limit: int = HEADER_SEARCH_ROWS) -> list[list[object]]:
        """The first rows of a sheet, for `iceledger inspect`."""
        return self._head_rows(next(s for s in self._sheets if s.name == name), limit)

    @property
    def sheet_names(self) -> list[str]:
        return [s.name for s in self._sheets]

    @property
    def hidden_sheets(self) -> list[str]:
        return [s.name for s in self._sheets if s.hidden]


class XlsxReader(WorkbookReader):
    """Raw `.xlsx` (and `.xlsm`): each sheet's XML streamed in slices (the module's docstring)."""

    def __init__(self, path: Path, cat: Catalog | None = None, chunk_bytes: int = CHUNK_BYTES):
        super().__init__(path, cat)
        self._fallback_used: set[str] = set()
        self._file = Location(path.name)
        kind = file_kind(path)
        if kind == "ole":
            # FOIA loads read .xls, so an old workbook misnamed needs only its right name.
            raise SourceError(self._file, "not a readable xlsx workbook: an OLE compound file: "
                              f"{WHOLE_SHEET_FORMS['.xls'][0]} (name it .xls) or a "
                              "password-protected (encrypted) one (open it in a spreadsheet "
                              "program and save it without a password)")
        if kind != "zip":
            raise SourceError(self._file, f"not a readable xlsx workbook: {KINDS[kind]}")
        try:
            self._zip = zipfile.ZipFile(path)
            if "xl/workbook.bin" in self._zip.namelist():
                self._zip.close()
                raise SourceError(self._file, "not a readable xlsx workbook: "
                                  f"{WHOLE_SHEET_FORMS['.xlsb'][0]}; name it .xlsb")
            self._targets = self._relationships()
            self._sheets = self._sheet_parts()
            self._shared_strings = self._read_optional(self._related("sharedStrings"))
            self._styles = self._read_optional(self._related("styles"))
        except (zipfile.BadZipFile, KeyError, ElementTree.ParseError, EOFError, zlib.error) as exc:
            raise SourceError(self._file, f"not a readable xlsx workbook (truncated or corrupt: "
                              f"{exc})") from None
        # A large shared-string table is parsed again for every slice: take bigger slices then,
        # up to a size whose parse still fits in a few hundred megabytes.
        self._chunk_bytes = min(max(chunk_bytes, 4 * len(self._shared_strings or b"")),
                                MAX_CHUNK_BYTES)
        self._workbook_pr = self._date_system()
        self._strings: list[str] | None = None

    def close(self) -> None:
        self._zip.close()

    # -- package structure ------------------------------------------------------------------

    def _sheet_parts(self) -> list[_SheetPart]:
        workbook = ElementTree.fromstring(self._read_member("xl/workbook.xml"))
        parts = []
        for sheet in workbook.iter(f"{{{_MAIN_NS}}}sheet"):
            target = self._targets.get(sheet.get(f"{{{_REL_NS}}}id"), ("", ""))
            if target[0].endswith("/worksheet"):
                parts.append(_SheetPart(sheet.get("name"),
                                        sheet.get("state") in ("hidden", "veryHidden"),
                                        target[1]))
        if not parts:
            raise SourceError(self._file, "the workbook has no worksheets")
        return parts

    def _relationships(self) -> dict[str, tuple[str, str]]:
        rels = ElementTree.fromstring(self._read_member("xl/_rels/workbook.xml.rels"))
        found = {}
        for rel in rels.iter(f"{{{_PKG_REL_NS}}}Relationship"):
            target = rel.get("Target")
            member = target.lstrip("/") if target.startswith("/") else str(
                PurePosixPath("xl") / target)
            found[rel.get("Id")] = (rel.get("Type"), member)
        return found

    def _related(self, kind: str) -> str | None:
        for rel_type, member in self._targets.values():
            if rel_type.endswith("/" + kind):
                return member
        return None

    def _read_optional(self, member: str | None) -> bytes | None:
        return self._read_member(member) if member and member in self._zip.namelist() else None

    def _read_member(self, member: str) -> bytes:
        """A part read whole, after its declared size (the zip never inflates past it) is
        checked: a few kilobytes of zip can claim gigabytes."""
        size = self._zip.getinfo(member).file_size
        if size > MAX_PART_BYTES:
            raise SourceError(self._file, f"{member} claims {size / 2**30:.1f} GB uncompressed, "
                              f"over the {MAX_PART_BYTES >> 30} GB any production's part "
                              "needs; not read (a damaged or hostile file)")
        return self._zip.read(member)

    def _date_system(self) -> bytes:
        # The 1904 date system changes every date; carry the flag into each slice.
        found = re.search(rb"<workbookPr\b[^>]*/>", self._read_member("xl/workbook.xml"))
        return found.group(0) if found else b""

    # -- slices -----------------------------------------------------------------------------

    def _slice_workbook(self, *rows_xml: bytes) -> bytes:
        buffer = io.BytesIO()
        rels = [f'<Relationship Id="rId1" Type="{_REL_NS}/worksheet" '
                'Target="worksheets/sheet1.xml"/>']
        overrides = ['<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
                     'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>']
        extra = {"styles": self._styles, "sharedStrings": self._shared_strings}
        for number, (kind, data) in enumerate(extra.items(), start=2):
            if data is not None:
                rels.append(f'<Relationship Id="rId{number}" Type="{_REL_NS}/{kind}" '
                            f'Target="{kind}.xml"/>')
                overrides.append(f'<Override PartName="/xl/{kind}.xml" ContentType="application/'
                                 f'vnd.openxmlformats-officedocument.spreadsheetml.{kind}+xml"/>')
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as out:
            out.writestr("[Content_Types].xml", (
                '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats'
                '.org/package/2006/content-types"><Default Extension="rels" ContentType="'
                'application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="'
                'xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" '
                'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.'
                f'main+xml"/>{"".join(overrides)}</Types>'))
            out.writestr("_rels/.rels", (
                f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{_PKG_REL_NS}">'
                f'<Relationship Id="rId1" Type="{_REL_NS}/officeDocument" '
                'Target="xl/workbook.xml"/></Relationships>'))
            out.writestr("xl/workbook.xml", (
                f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{_MAIN_NS}" '
                f'xmlns:r="{_REL_NS}">').encode() + self._workbook_pr +
                b'<sheets><sheet name="s" sheetId="1" r:id="rId1"/></sheets></workbook>')
            out.writestr("xl/_rels/workbook.xml.rels", (
                f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{_PKG_REL_NS}">'
                f'{"".join(rels)}</Relationships>'))
            for kind, data in extra.items():
                if data is not None:
                    out.writestr(f"xl/{kind}.xml", data)
            with out.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
                sheet.write((f'<?xml version="1.0" encoding="UTF-8"?><worksheet '
                             f'xmlns="{_MAIN_NS}"><sheetData>').encode())
                for rows in rows_xml:
                    sheet.write(rows)
                sheet.write(b"</sheetData></worksheet>")
        return buffer.getvalue()

    def _sheet_xml(self, sheet: _SheetPart, piece_bytes: int | None = None) -> Iterator[bytes]:
        """The content of the sheet's <sheetData>, as pieces that each end at a row boundary."""
        piece_bytes = piece_bytes or self._chunk_bytes
        location = Location(self.path.name, sheet.name)
        end_tag = b"</sheetData>"
        pending: list[bytes] = []
        size = 0
        started = False
        try:
            with self._zip.open(sheet.member) as stream:
                while block := stream.read(4 << 20):
                    if not started:
                        head = b"".join([*pending, block])
                        found = re.search(rb"<sheetData\b[^>]*?(/?)>", head)
                        if not found:
                            pending = [head[-4096:]]  # where a tag cut by the block starts
                            continue
                        if found.group(1):
                            return
                        started, pending, size = True, [], 0
                        block = head[found.end():]
                    tail = pending[-1][-len(end_tag):] if pending else b""
                    if end_tag in tail + block:
                        joined = b"".join([*pending, block])
                        yield joined[: joined.find(end_tag, max(0, size - len(end_tag)))]
                        return
                    pending.append(block)
                    size += len(block)
                    # Joined only where a row ends, so a row without end is not copied again and
                    # again; one larger than any slice may be is a damaged or hostile file.
                    if size >= piece_bytes and b"</row>" in tail + block:
                        joined = b"".join(pending)
                        cut = joined.rfind(b"</row>") + len(b"</row>")
                        yield memoryview(joined)[:cut]  # no copy of the slice's megabytes
                        pending, size = [joined[cut:]], len(joined) - cut
                    elif size > MAX_CHUNK_BYTES + piece_bytes:
                        raise SourceError(location, f"a row longer than {MAX_CHUNK_BYTES >> 20} "
                                          "MB of XML (a damaged or hostile file)")
        except (zipfile.BadZipFile, EOFError, zlib.error, OSError) as exc:
            raise SourceError(location, f"truncated or corrupt sheet data ({exc})") from None
        raise SourceError(location, "the sheet data ends early (truncated file)")

    # -- header -----------------------------------------------------------------------------

    def _head_rows(self, sheet: _SheetPart, limit: int = HEADER_SEARCH_ROWS
                   ) -> list[list[object]]:
        pieces = self._sheet_xml(sheet, piece_bytes=1 << 16)
        head, keep = b"", limit
        for piece in pieces:
            head += piece
            first = _VALUE_ROW.search(head)
            keep = limit + (min(int(first.group(1)) - 1, MAX_LEADING_ROWS) if first else 0)
            if len(_ROW_START.findall(head)) > keep or len(head) > 1 << 20:
                break
        pieces.close()
        cut = head.rfind(b"</row>")
        head = head[: cut + len(b"</row>")] if cut >= 0 else head
        # A row numbered far below the first (a cell at row 1,048,576 of a 5 KB file) would make
        # the reader build every row in between: the head ends before it.
        for found in _ROW_NUMBER.finditer(head):
            if int(found.group(1)) > keep:
                head = head[: found.start()]
                break
        location = Location(self.path.name, sheet.name)
        try:
            book = python_calamine.CalamineWorkbook.from_filelike(
                io.BytesIO(self._slice_workbook(head)))
            rows = book.get_sheet_by_index(0).to_python(skip_empty_area=False)
        except BaseException as exc:
            if not _fast_reader_rejected(exc):
                raise
            self._note_fallback(sheet.name, exc)
            table = self._xml_table(head, 1, None, location)
            rows = [list(r.values()) for r in table.to_pylist()]
        return [[("" if c is None else c) for c in row] for row in rows[:keep]]

    def _note_fallback(self, sheet: str, exc: BaseException) -> None:
        if sheet not in self._fallback_used:
            self._fallback_used.add(sheet)
            reason = str(exc).splitlines()[0].strip()
            self.warnings.append(f"{self.path.name}, sheet {sheet!r}: the fast reader cannot "
                                 f"read it ({reason}); read with the XML reader instead")

    def _shared_string_list(self) -> list[str]:
        if self._strings is None:
            strings = []
            if self._shared_strings:
                for _, item in ElementTree.iterparse(io.BytesIO(self._shared_strings)):
                    if item.tag == f"{{{_MAIN_NS}}}si":
                        strings.append("".join(t.text or "" for t in item.iter(
                            f"{{{_MAIN_NS}}}t")))
                        item.clear()
            self._strings = strings
        return self._strings

    def _xml_table(self, piece: bytes, first_row: int, width: int | None,
                   location: Location) -> pa.Table:
        """Rows of sheet XML as text columns, read by Python's XML parser: the fallback for XML
        the fast reader rejects. Cells are placed by their reference where it has a column,
        else after the previous cell; numbers stay as written (date columns read Excel serials)."""
        strings = self._shared_string_list()
        rows: dict[int, dict[int, str]] = {}
        wrapped = io.BytesIO(b"".join([f'<sheetData xmlns="{_MAIN_NS}">'.encode(), bytes(piece),
                                       b"</sheetData>"]))
        row_number, widest = first_row - 1, 0
        try:
            for _, row in ElementTree.iterparse(wrapped):
                if row.tag != f"{{{_MAIN_NS}}}row":
                    continue
                numbered = row.get("r")
                row_number = int(numbered) if numbered and numbered.isdecimal() else row_number + 1
                cells, column = rows.setdefault(row_number, {}), -1
                for cell in row.iter(f"{{{_MAIN_NS}}}c"):
                    letters = re.match(r"[A-Za-z]{0,3}", cell.get("r") or "").group(0)
                    column = column_index(letters) if letters else column + 1
                    value = _xml_cell_text(cell, strings)
                    if value not in (None, ""):
                        cells[column] = value
                        widest = max(widest, column + 1)
                row.clear()
        except ElementTree.ParseError as exc:
            # The rows before it parsed: the fault is in the next one.
            raise SourceError(Location(location.file, location.sheet, row=row_number + 1),
                              f"the sheet's XML is not readable ({exc})") from None
        width = widest if width is None else width
        if widest > width:
            raise SourceError(location, f"cells outside the {width} header columns (a row wider "
                              "than the header) in the rows from here on")
        last = max(rows, default=first_row - 1)
        columns = [[None] * (last - first_row + 1) for _ in range(width)]
        for number, cells in rows.items():
            for column, value in cells.items():
                columns[column][number - first_row] = value
        return pa.table({str(i): pa.array(c, pa.string()) for i, c in enumerate(columns)})

    # -- data -------------------------------------------------------------------------------

    def work(self, plan: SheetPlan) -> Iterator[tuple[WorkItem, int]]:
        sheet = self._sheets[plan.index]
        columns = self.columns(plan)
        names = [c.source for c in columns]
        letters = [c.reference for c in columns]
        header_end = self._header_end(plan)
        outside = BeyondColumns(len(plan.match.raw_headers))
        next_row = plan.header_row + 1
        info = self._zip.getinfo(sheet.member)
        share = info.compress_size / max(info.file_size, 1)  # progress in bytes of the file
        skip = True
        for piece in self._sheet_xml(sheet):
            if skip:
                piece = header_end(piece)
                if piece is None:
                    continue
                skip = False
            # Rows without an `r` attribute follow on from the previous row.
            numbered = _ROW_NUMBER.search(piece, 0, 4096)
            first_row = int(numbered.group(1)) if numbered else next_row
            if not numbered:
                next_row = first_row + len(_ROW_START.findall(piece))
            beyond = outside.search(piece)
            if beyond:
                raise SourceError(Location(self.path.name, plan.name,
                                           cell=beyond.group(1).decode()),
                                  f"a cell outside the {len(columns)} header columns (a row "
                                  "wider than the header)")
            runs = list(_row_runs(piece, first_row))
            for run, run_first in runs:
                yield (self._item(plan, run, run_first, names, letters),
                       int(len(piece) * share / len(runs)))

    def _header_end(self, plan: SheetPlan) -> Callable[[bytes], bytes | None]:
        """Cuts the title and header rows off the start of the sheet's XML."""
        state = {"seen": b""}

        def cut(piece: bytes) -> bytes | None:
            data = state["seen"] + bytes(piece)
            numbered = re.search(rb'<row\b[^>]*?\br="%d"' % plan.header_row, data)
            if numbered:
                start = numbered.start()
            else:
                starts = [m.start() for m in _ROW_START.finditer(data)]
                if len(starts) < plan.header_row:
                    state["seen"] = data
                    return None
                start = starts[plan.header_row - 1]
            end = data.find(b"</row>", start)
            if end < 0:
                state["seen"] = data
                return None
            return data[end + len(b"</row>"):]

        return cut

    def _item(self, plan: SheetPlan, piece: bytes, first_row: int, names: list[str],
              letters: list[str]) -> WorkItem:
        anchor_row = first_row - 1
        anchor = (f'<row r="{anchor_row}">' + "".join(
            f'<c r="{letter}{anchor_row}" t="inlineStr"><is><t>{i}</t></is></c>'
            for i, letter in enumerate(letters)) + "</row>").encode()

        def parse() -> RawPart:
            location = Location(self.path.name, plan.name, row=first_row)
            rows_xml = errors_as_text(piece)
            try:
                reader = fastexcel.read_excel(self._slice_workbook(anchor, rows_xml))
                batch = reader.load_sheet(0, header_row=0, dtypes="string", eager=True)
                table = pa.Table.from_batches([batch])
                # The anchor row names each header column by its position among them; a
                # column it leaves unnamed (a blank header cell, or past the header) is other.
                headed = [str(i) for i in range(len(letters))]
            except BaseException as exc:
                if not _fast_reader_rejected(exc):
                    raise
                self._note_fallback(plan.name, exc)
                table = self._xml_table(rows_xml, first_row, len(plan.match.raw_headers),
                                        location)
                headed = [str(column_index(letter)) for letter in letters]
            _require_empty_outside(table, headed, location, len(names))
            table = table.select(headed).rename_columns(names)
            rows = np.arange(first_row, first_row + table.num_rows, dtype=np.int64)
            return RawPart(plan, table.append_column(ROW, pa.array(rows)))

        return parse


def _require_empty_outside(table: pa.Table, headed: list[str], location: Location,
                           width: int) -> None:
    """Columns without a header (a blank header cell between named ones, styled cells past the
    last) are dropped only when they hold nothing: a value there belongs to no column."""
    kept = set(headed)
    for name in table.column_names:
        if name not in kept and table.column(name).null_count != table.num_rows:
            raise SourceError(location, f"cells outside the {width} header columns (a row "
                              "wider than the header, or values under a blank header cell) in "
                              "the rows from here on")


# ---------------------------------------------------------------------------------------------
# .xls, .xlsb, .ods


class WholeSheetReader(WorkbookReader):
    """Workbooks in the forms older productions come in (WHOLE_SHEET_FORMS), read by calamine:
    python-calamine's typed values for the header search and ICE's own sheets, fastexcel's Arrow
    text for the records, as the xlsx slices are read, so that a cell types as it would in an
    xlsx. These forms cannot be sliced: each sheet is read whole, on a worker thread.

    Both skip the empty rows and columns before a sheet's first value; the rows keep the numbers
    the sheet shows by calamine's `start` (its first row and column holding a value), checked
    against the header row's text where fastexcel puts it."""

    def __init__(self, path: Path, cat: Catalog | None = None):
        super().__init__(path, cat)
        self._file = Location(path.name)
        self._form, expected = WHOLE_SHEET_FORMS[path.suffix.lower()]
        kind = file_kind(path)
        if kind != expected:
            raise SourceError(self._file, f"not a readable {path.suffix.lower()} workbook "
                              f"({self._form}): {KINDS[kind]}")
        if kind == "zip":
            self._require_sane_part_sizes()
        try:
            self._book = python_calamine.CalamineWorkbook.from_path(str(path))
            self._sheets = [_Sheet(m.name, m.visible != python_calamine.SheetVisibleEnum.Visible)
                            for m in self._book.sheets_metadata
                            if m.typ == python_calamine.SheetTypeEnum.WorkSheet]
        except BaseException as exc:
            if not self._rejected(exc):
                raise
            raise SourceError(self._file, self._unreadable(exc)) from None
        if not self._sheets:
            raise SourceError(self._file, "the workbook has no worksheets")
        self._starts: dict[str, tuple[int, int]] = {}  # (row, column) of each sheet's first value
        self._closed = False

    def plans(self) -> list[SheetPlan]:
        """The sheets' plans; then the typed reader lets go of the file (calamine may hold every
        sheet of it), before fastexcel reads a sheet's records."""
        try:
            return super().plans()
        finally:
            self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._book.close()

    @staticmethod
    def _rejected(exc: BaseException) -> bool:
        """Whether calamine failed on the file: its errors, a panic, or (for a damaged
        binary workbook) an I/O error of its own ("failed to fill whole buffer")."""
        return _fast_reader_rejected(exc) or isinstance(exc, OSError | ValueError)

    def _unreadable(self, exc: BaseException) -> str:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0].strip()
        advice = ("; open it in a spreadsheet program and save it without a password"
                  if isinstance(exc, python_calamine.PasswordError) else "")
        return (f"not a readable {self.path.suffix.lower()} workbook ({self._form}: "
                f"{reason}){advice}")

    def _require_sane_part_sizes(self) -> None:
        """A zipped form's parts, each inflated whole by calamine, checked by their declared
        size first: a few kilobytes of zip can claim gigabytes."""
        try:
            with zipfile.ZipFile(self.path) as package:
                largest = max(package.infolist(), key=lambda info: info.file_size, default=None)
        except (zipfile.BadZipFile, OSError) as exc:
            raise SourceError(self._file, self._unreadable(exc)) from None
        if largest is not None and largest.file_size > MAX_PART_BYTES:
            raise SourceError(self._file, f"{largest.filename} claims "
                              f"{largest.file_size / 2**30:.1f} GB uncompressed, over the "
                              f"{MAX_PART_BYTES >> 30} GB any production's part needs; not read "
                              "(a damaged or hostile file)")

    def _head_rows(self, sheet: _Sheet, limit: int = HEADER_SEARCH_ROWS) -> list[list[object]]:
        try:
            data = self._book.get_sheet_by_name(sheet.name)
            start = data.start or (0, 0)  # None for a sheet without a value
            self._starts[sheet.name] = start
            keep = limit + min(start[0], MAX_LEADING_ROWS)
            rows = data.to_python(skip_empty_area=False, nrows=keep)
        except BaseException as exc:
            if not self._rejected(exc):
                raise
            raise SourceError(Location(self.path.name, sheet.name),
                              self._unreadable(exc)) from None
        return [[("" if c is None else c) for c in row] for row in rows]

    def work(self, plan: SheetPlan) -> Iterator[tuple[WorkItem, int]]:
        yield self._read_sheet(plan), self.path.stat().st_size

    def _read_sheet(self, plan: SheetPlan) -> WorkItem:
        columns = self.columns(plan)
        first_row, first_column = self._starts[plan.name]
        headers = plan.match.raw_headers
        positions = [i - first_column for i, h in enumerate(headers) if h]

        def parse() -> RawPart:
            location = Location(self.path.name, plan.name)
            try:
                batch = fastexcel.read_excel(str(self.path)).load_sheet(
                    plan.name, header_row=None, dtypes="string", eager=True)
            except BaseException as exc:
                if not self._rejected(exc):
                    raise
                raise SourceError(location, self._unreadable(exc)) from None
            table = pa.Table.from_batches([batch])
            header_index = plan.header_row - 1 - first_row  # the header's row in the table
            self._require_header_at(table, header_index, positions, location, plan)
            rows = table.slice(header_index + 1)
            headed = [table.column_names[p] for p in positions]
            _require_empty_outside(rows, headed, Location(location.file, location.sheet,
                                                           row=plan.header_row + 1),
                                   len(headers))
            rows = rows.select(headed).rename_columns([c.source for c in columns])
            numbers = np.arange(plan.header_row + 1, plan.header_row + 1 + rows.num_rows,
                                dtype=np.int64)
            return RawPart(plan, rows.append_column(ROW, pa.array(numbers)))

        return parse

    @staticmethod
    def _require_header_at(table: pa.Table, index: int, positions: list[int],
                           location: Location, plan: SheetPlan) -> None:
        """The header's words where fastexcel's rows put it: else the two readers place the
        sheet's first value otherwise, and the rows would be numbered wrong."""
        found = (table.slice(index, 1).to_pylist()[0] if 0 <= index < table.num_rows else {})
        cells = list(found.values())
        written = [h for h in plan.match.raw_headers if h]
        read = [str(cells[p]).strip() if 0 <= p < len(cells) and cells[p] is not None else ""
                for p in positions]
        if any(h != r for h, r in zip(written, read, strict=True)
               if any(c.isalpha() for c in h)):
            raise SourceError(Location(location.file, location.sheet, row=plan.header_row),
                              "the sheet's readers disagree on where its rows are (the header "
                              "row is not where its first value places it); not loaded, rather "
                              "than numbered wrong")


# ---------------------------------------------------------------------------------------------
# CSV


@dataclass(frozen=True)
class _RecordScan:
    """A CSV's records below its header, read one by one with Python's csv module (which keeps
    a quoted line end inside its value): what DuckDB's `read_csv` leaves out, and where."""

    records: int  # records with as many fields as the header: those `read_csv` reads
    # Per run of lines `read_csv` leaves out among the records (empty lines, and records of
    # another field count): (records before it, lines left out so far).
    steps: list[tuple[int, int]]
    blank: int  # empty lines
    # (row, fields) of each record whose field count is not the header's; no fields for a last
    # line cut off inside a quoted value
    ragged: list[tuple[int, int | None]]


class CsvReader(FoiaReader):
    serial = True  # DuckDB numbers a CSV's records only on one thread (WITH ORDINALITY)

    def __init__(self, path: Path, cat: Catalog | None = None):
        super().__init__(path, cat)
        self._file = Location(path.name)
        kind = file_kind(path)
        if kind in NOT_A_CSV_KINDS:
            raise SourceError(self._file, f"not a CSV: {KINDS[kind]}")
        with open(path, "rb") as handle:
            sample = handle.read(1 << 16)
        self.encoding = self._encoding(sample)
        text = codecs.decode(sample, self.encoding, errors="replace").lstrip("\ufeff")
        # Sought in the text, not the bytes: in UTF-16 every "\r" is followed by a NUL byte.
        # Excel on Windows ends records with CRLF and a line break inside a cell (a header
        # wrapped on two lines, "Apprehension\nDate") with a bare LF: DuckDB takes the first
        # line end it meets for the file's and reads no record after a header so wrapped.
        self._mixed_line_ends = (re.search("\r(?!\n)", text.rstrip("\r")) is not None
                                 or ("\r\n" in text and re.search("(?<!\r)\n", text) is not None))
        self.delimiter, self._plan = self._header(text)
        self._transcoded: Path | None = None
        self._scan: _RecordScan | None = None  # once the records are counted (see `numbered`)

    def _encoding(self, sample: bytes) -> str:
        for bom, name in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                          (codecs.BOM_UTF16_BE, "utf-16")):
            if sample.startswith(bom):
                return name
        # UTF-16 text without a byte-order mark is NUL every other byte; a NUL here and there is
        # a stray byte in a cell, which the canonicaliser keeps in `unparsed`.
        if sample.count(0) * 10 > len(sample):
            raise SourceError(Location(self.path.name, row=1), "not a text CSV in a known "
                              "encoding (NUL bytes: UTF-16 without a byte-order mark, or binary); "
                              "save it as UTF-8")
        try:
            sample.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start < len(sample) - 4:  # not merely a character cut by the sample's end
                self.warnings.append(f"{self.path.name}: not UTF-8; read as Windows-1252")
                return "cp1252"
        return "utf-8"

    def _header(self, text: str) -> tuple[str, SheetPlan]:
        """The delimiter, and the header found among the first records split by it: an ICE
        sheet saved as CSV keeps the title rows above its header (padded with delimiters to the
        sheet's width, or not)."""
        tried: list[list[object]] = []
        location = Location(self.path.name, row=1)
        for delimiter in CSV_DELIMITERS:
            rows = csv_head_rows(text, delimiter)
            try:
                index, match = find_header(location, rows, self.catalog, None, self.path.stem)
            except SourceError:
                tried.extend(rows)
                continue
            return delimiter, SheetPlan(None, 0, index + 1, match, _title(rows[:index]))
        error = no_header_error(location, tried, self.catalog, None, self.path.stem)
        raise SourceError(location, f"{error.problem}; tried the delimiters comma, tab, | and ;")

    def plans(self) -> list[SheetPlan]:
        return [self._plan]

    def columns(self, plan: SheetPlan) -> list[RawColumn]:
        names = unique_names(list(plan.match.canonical))
        return [RawColumn(name, f"c{i}", "text", header, header) for i, (name, header)
                in enumerate(zip(names, plan.match.raw_headers, strict=True))]

    def relation(self, plan: SheetPlan) -> str:
        """`read_csv`, every field as text (empty -> NULL), with the record number of each row.
        DuckDB numbers the records as it reads them (WITH ORDINALITY, which reads the file on
        one thread: DuckDB cannot number a CSV's records in parallel); it skips the title rows
        above the header, empty lines and records whose field count is not the header's, which
        the record numbers still count, so once a file is known to hold some of the last two
        among its records (`numbered`), the numbers step over them."""
        read = f"(SELECT * FROM {self._read_csv(plan, lenient=True)} WITH ORDINALITY) AS records"
        steps = self._scan.steps if self._scan else []
        if not steps:
            return f"(SELECT *, ordinality + {plan.header_row} AS {ROW} FROM {read})"
        # A record's number moves by the lines left out before it: the count of the last run.
        values = ", ".join(f"({before}, {lines})" for before, lines in steps)
        return (f"(SELECT records.*, ordinality + {plan.header_row} + coalesce(left_out.lines, "
                f"0) AS {ROW} FROM {read} ASOF LEFT JOIN (VALUES {values}) AS "
                "left_out(before, lines) ON records.ordinality > left_out.before "
                "ORDER BY ordinality)")

    def _read_csv(self, plan: SheetPlan, lenient: bool) -> str:
        """The `read_csv` call; `lenient`: records of another field count than the header's
        are left out (as are, alas, other records DuckDB cannot read: `numbered` finds them)."""
        if self._mixed_line_ends or self.encoding == "cp1252":
            self._transcoded = self._transcoded or self._copy_for_duckdb()
        path = self._transcoded or self.path
        encoding = "utf-16" if path == self.path and self.encoding == "utf-16" else "utf-8"
        columns = ", ".join(f"{literal(c.source)}: 'VARCHAR'" for c in self.columns(plan))
        return (f"read_csv({literal(str(path))}, auto_detect = false, header = true, "
                f"skip = {plan.header_row - 1}, delim = {literal(self.delimiter)}, "
                f"quote = '\"', escape = '\"', columns = {{{columns}}}, encoding = "
                f"{literal(encoding)}, "
                f"max_line_size = {CSV_MAX_LINE_BYTES}, buffer_size = {CSV_MAX_LINE_BYTES}, "
                f"strict_mode = true, ignore_errors = {str(lenient).lower()})")

    def numbered(self, plan: SheetPlan, records: int) -> bool:
        """Whether the relation numbered the `records` it read right. It did unless the file
        holds empty lines or records of another field count than the header's among its
        records, which only a file whose lines outnumber its records can (they may also be line
        ends inside quoted values): then the file is read record by record to place them, and
        the next relation steps over them. The two readers must agree on the records: if they
        do not, the file is not loaded rather than misnumbered."""
        if self._scan is not None:
            return True
        lines, trailing = self._lines()
        if lines - trailing - plan.header_row == records and self.encoding != "utf-16":
            self._scan = _RecordScan(records, [], trailing, [])
            return True
        scan = self._scan_records(plan)
        if scan.records != records:
            raise self._disagreement(plan, records, scan)
        counted = [(row, fields) for row, fields in scan.ragged if fields]
        if counted and not scan.records:
            row, fields = counted[0]
            raise SourceError(Location(self.path.name, row=row), self._fields_problem(
                fields, "every record has a field count other than the header's: "))
        self._scan = scan
        return not scan.steps

    def unread_blank_rows(self, plan: SheetPlan) -> int:
        """Empty lines: DuckDB skips them, but each is a blank row (numbered and counted)."""
        return self._scan.blank if self._scan else 0

    def rejected_rows(self, plan: SheetPlan) -> list[QuarantinedRow]:
        """Records of another field count than the header's (a line cut short, an unquoted
        delimiter inside a value): not loaded, each quarantined with its record number."""
        width = len(plan.match.raw_headers)

        def reason(fields: int | None) -> str:
            if fields is None:
                return "the file's last line, cut off inside a quoted value"
            return (f"a record of {fields} field{'s' if fields > 1 else ''} where the header "
                    f"has {width}")

        return [QuarantinedRow(None, row, None, reason(fields))
                for row, fields in (self._scan.ragged if self._scan else [])]

    def _lines(self) -> tuple[int, int]:
        """The lines in the file (the last counted whether or not a line end closes it), and
        the empty lines at its end."""
        ends, tail = 0, b""
        block = bytearray(CSV_SCAN_BYTES)  # read into, again and again: no block allocated
        with open(self.path, "rb", buffering=0) as handle:
            while size := handle.readinto(block):
                read = block if size == len(block) else block[:size]
                ends += read.count(b"\n")
                tail = (tail + read[-4096:])[-4096:]
        trailing = tail[len(tail.rstrip(b"\r\n")):].replace(b"\r\n", b"\n").count(b"\n")
        return ends + (0 if tail.endswith(b"\n") else 1), max(trailing - 1, 0)

    def _scan_records(self, plan: SheetPlan) -> _RecordScan:
        """The records below the header read one by one (see _RecordScan). A quoted value that
        never closes is an error, as DuckDB's is, when it holds line ends: it may hold records
        too. Within the file's last line it is that line cut off, a record like any other cut
        short."""
        width = len(plan.match.raw_headers)
        steps: list[tuple[int, int]] = []
        ragged: list[tuple[int, int | None]] = []
        records = left_out = blank = number = 0

        def leave_out(fields: int | None) -> None:
            nonlocal left_out, blank
            left_out += 1
            if fields:
                ragged.append((number, fields))
            elif fields is None:
                ragged.append((number + 1, None))
            else:
                blank += 1
            if steps and steps[-1][0] == records:
                steps[-1] = (records, left_out)
            else:
                steps.append((records, left_out))

        # Process-wide, but only ever raised: a field DuckDB reads, Python's csv module must.
        csv.field_size_limit(max(csv.field_size_limit(), CSV_MAX_LINE_BYTES))
        with open(self.path, newline="", encoding=self.encoding) as text:
            reader = csv.reader(text, delimiter=self.delimiter, strict=True)
            lines = 0  # the lines read up to the end of the last record
            try:
                for number, record in enumerate(reader, start=1):
                    lines = reader.line_num
                    if number <= plan.header_row:
                        continue
                    if len(record) == width:
                        records += 1
                    else:
                        leave_out(len(record))
            except UnicodeDecodeError:
                raise SourceError(self._first_bad_utf8(), UTF8_PROBLEM) from None
            except csv.Error as exc:
                where = Location(self.path.name, row=number + 1)
                if "unexpected end of data" not in str(exc):
                    raise SourceError(where, "a quoted value with more text after its closing "
                                      f"quote ({exc})") from None
                if reader.line_num > lines + 1 or number < plan.header_row:
                    raise SourceError(where, self._never_closes()) from None
                leave_out(None)
        # Lines left out after the last record move no record's number.
        return _RecordScan(records, [s for s in steps if s[0] < records], blank, ragged)

    def _disagreement(self, plan: SheetPlan, records: int, scan: _RecordScan) -> SourceError:
        """The error for a file DuckDB reads otherwise than Python's csv module: DuckDB's own,
        when it fails on something other than a field count, else the counts."""
        try:
            with duckdb.connect() as con:
                con.execute(f"SELECT count(*) FROM {self._read_csv(plan, lenient=False)}")
        except duckdb.Error as exc:
            if "Expected Number of Columns" not in str(exc):
                return self.read_error(exc)
        return SourceError(self._file, f"DuckDB reads {records:,} records of "
                           f"{len(plan.match.raw_headers)} fields where Python's csv module "
                           f"reads {scan.records:,} (and {len(scan.ragged):,} of another field "
                           "count); not loaded, rather than numbered wrong")

    def _copy_for_duckdb(self) -> Path:
        """The file as UTF-8 in a temporary file, for what DuckDB cannot read: Windows-1252,
        and a file of mixed line ends (a lone carriage return beside other line ends, or CRLF
        records with a bare LF inside a quoted cell), which is rewritten record by record with
        the same cells (the csv module keeps a line end inside a quoted value as it is, and an
        empty line as one)."""
        handle = tempfile.NamedTemporaryFile(suffix=".csv", delete=False)
        with handle, open(self.path, encoding=self.encoding, newline="") as source:
            if not self._mixed_line_ends:
                while block := source.read(1 << 22):
                    handle.write(block.encode("utf-8"))
            else:
                with open(handle.name, "w", encoding="utf-8", newline="") as target:
                    writer = csv.writer(target, delimiter=self.delimiter, lineterminator="\n")
                    writer.writerows(csv.reader(source, delimiter=self.delimiter))
        return Path(handle.name)

    def close(self) -> None:
        if self._transcoded is not None:
            self._transcoded.unlink(missing_ok=True)

    def read_error(self, exc: duckdb.Error) -> SourceError:
        """Name the line where the CSV stops being readable, as DuckDB reports it."""
        message = str(exc)
        if "unicode" in message.lower() or "not utf-8" in message.lower():
            return SourceError(self._first_bad_utf8(), UTF8_PROBLEM)
        line = re.search(r"CSV Error on Line: (\d+)", message)
        where = Location(self.path.name, row=int(line.group(1)) if line else None)
        if "unterminated quote" in message:
            return SourceError(where, self._never_closes())
        counts = re.search(r"Expected Number of Columns: \d+ Found: (\d+)", message)
        if counts:
            return SourceError(where, self._fields_problem(int(counts.group(1))))
        too_long = re.search(r"Maximum line size of \d+ bytes exceeded[^\n]*", message)
        detail = (too_long.group(0) if too_long else
                  message.splitlines()[0].removeprefix("Invalid Input Error: ")[:100])
        return SourceError(where, f"{detail} (the header has {len(self._plan.match.raw_headers)} "
                           f"fields split by {self.delimiter!r})")

    def _never_closes(self) -> str:
        return (f"Expected {len(self._plan.match.raw_headers)} columns, got a quoted value that "
                "never closes (the file ends inside it: truncated, or a stray quote)")

    def _fields_problem(self, fields: int, why: str = "") -> str:
        width = len(self._plan.match.raw_headers)
        return (f"Expected {width} columns, got {fields} ({why}the header has {width} fields "
                f"split by {self.delimiter!r}: a wrong delimiter or an unquoted delimiter "
                "inside a value)")

    def _first_bad_utf8(self) -> Location:
        with open(self.path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError:
                    return Location(self.path.name, row=number)
        return Location(self.path.name)


# ---------------------------------------------------------------------------------------------
# Parquet


_FIXED_OFFSET = re.compile(r"([+-])(\d{2}):?(\d{2})?")


class ParquetReader(FoiaReader):
    def __init__(self, path: Path, cat: Catalog | None = None):
        super().__init__(path, cat)
        try:
            self._file = pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise SourceError(Location(path.name), f"not a readable parquet file ({exc})") from None
        names = self._file.schema_arrow.names
        match = self.catalog.match(names, None, path.stem)
        if match is None:
            raise no_header_error(Location(path.name), [names], self.catalog, None, path.stem)
        self._plan = SheetPlan(None, 0, 0, match, "")

    def close(self) -> None:
        self._file.close()

    def plans(self) -> list[SheetPlan]:
        return [self._plan]

    def columns(self, plan: SheetPlan) -> list[RawColumn]:
        names = unique_names(list(plan.match.canonical))
        return [RawColumn(name, field.name, storage_of(field.type), header, header)
                for name, field, header in zip(names, self._file.schema_arrow,
                                               plan.match.raw_headers, strict=False)]

    def relation(self, plan: SheetPlan) -> str:
        zones = {f.name: f.type.tz for f in self._file.schema_arrow
                 if pa.types.is_timestamp(f.type) and f.type.tz}
        columns = ", ".join(
            f"{_wall_clock(ident(c.source), zones[c.source])} AS {ident(c.source)}"
            if c.source in zones else ident(c.source) for c in self.columns(plan))
        return (f"(SELECT {columns}, file_row_number + 1 AS {ROW} FROM read_parquet("
                f"{literal(str(self.path))}, file_row_number = true))")

    def read_error(self, exc: duckdb.Error) -> SourceError:
        return SourceError(Location(self.path.name), f"unreadable parquet data ({exc})")


def _wall_clock(column: str, zone: str) -> str:
    """SQL for a time-zone-aware timestamp as the clock read in its own zone (ICE's records are
    local times), whatever zone the machine running the load is in. Parquet keeps the instant;
    Arrow's schema keeps the zone, a name ("America/New_York") or a fixed offset ("-05:00")."""
    offset = _FIXED_OFFSET.fullmatch(zone)
    if offset is None:
        return f"timezone({literal(zone)}, {column})"
    sign, hours, minutes = offset.groups()
    return (f"(timezone('UTC', {column}) + "
            f"to_minutes({sign}{int(hours) * 60 + int(minutes or 0)}))")
