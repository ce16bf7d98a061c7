"""Readers for FOIA release files: raw ICE `.xlsx`, CSV, and (processed) parquet.

Each reader finds the header row of every sheet by its contents (iceledger.sources.foia.layouts),
then yields the data as *work items*: zero-argument callables that return a `RawPart` (the cells
of some rows as Arrow strings or typed columns, with their spreadsheet row numbers). Work items are
independent, so the ingest runs them on several threads while the file is still being read; no
reader holds more than a bounded slice of a file in memory.

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
import re
import zipfile
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from xml.etree import ElementTree

import fastexcel
import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import python_calamine

from iceledger.errors import Location, SourceError
from iceledger.sources.stats.cells import column_letters
from iceledger.sources.foia.layouts import HeaderMatch, catalog

CHUNK_BYTES = 32 << 20
MAX_CHUNK_BYTES = 128 << 20
HEADER_SEARCH_ROWS = 40
CSV_BLOCK_BYTES = 16 << 20
PARQUET_BATCH_ROWS = 65_536
CSV_DELIMITERS = (",", "\t", "|", ";")

_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_ROW_NUMBER = re.compile(rb'<row\b[^>]*?\br="(\d+)"')
_ROW_START = re.compile(rb"<row[\s>/]")


@dataclass(frozen=True)
class SheetPlan:
    """One sheet (or the whole of a CSV/parquet file) and the header found in it."""

    name: str | None
    index: int
    header_row: int  # 1-based row (or CSV record) of the header
    match: HeaderMatch
    title_text: str  # the rows above the header, joined


@dataclass
class RawPart:
    """Some data rows of one sheet: columns in header order, named by their canonical names."""

    plan: SheetPlan
    rows: np.ndarray  # int64 spreadsheet row (CSV record, parquet row) of each table row
    table: pa.Table
    columns: list[str]  # spreadsheet column letters (xlsx) or header names, for cell references


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


class FoiaReader(ABC):
    """What every reader offers: its sheets with their headers, and the work items of a sheet."""

    path: Path
    warnings: list[str]

    @abstractmethod
    def plans(self) -> list[SheetPlan]:
        """Every sheet that holds records, with the header found in it."""

    @abstractmethod
    def work(self, plan: SheetPlan) -> Iterator[tuple[WorkItem, int]]:
        """Work items of a sheet, each with the bytes of the file it covers (for progress)."""

    def close(self) -> None:  # noqa: B027 - a no-op for readers that hold nothing open
        """Release the file."""


def open_reader(path: Path) -> FoiaReader:
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return XlsxReader(path)
    if suffix in (".csv", ".tsv", ".txt"):
        return CsvReader(path)
    if suffix in (".parquet", ".pq"):
        return ParquetReader(path)
    raise SourceError(Location(path.name), f"cannot read {suffix or 'extension-less'} files as a "
                      "FOIA release; expected .xlsx, .csv or .parquet")


def no_header_error(location: Location, rows: list[list[object]]) -> SourceError:
    """The error for a sheet without a known header: name the layout it resembles most."""
    best = max(rows, key=lambda r: sum(1 for c in r if c not in (None, "")), default=[])
    if not best:
        return SourceError(location, "empty: no FOIA header row found")
    layout, missing = catalog().closest(best)
    shown = ", ".join(repr(m) for m in missing[:4]) + (" ..." if len(missing) > 4 else "")
    return SourceError(location, "not a FOIA release: no row matches a known header (closest "
                       f"layout {layout.name} lacks {len(missing)} of its headers: {shown})")


def _find_header(location: Location, rows: list[list[object]]) -> tuple[int, HeaderMatch]:
    for index, row in enumerate(rows):
        match = catalog().match(row)
        if match is not None:
            return index, match
    raise no_header_error(location, rows)


# ---------------------------------------------------------------------------------------------
# xlsx


@dataclass(frozen=True)
class _SheetPart:
    name: str
    member: str


class XlsxReader(FoiaReader):
    def __init__(self, path: Path, chunk_bytes: int = CHUNK_BYTES):
        self.path = path
        self.warnings = []
        self._file = Location(path.name)
        try:
            self._zip = zipfile.ZipFile(path)
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

    def close(self) -> None:
        self._zip.close()

    # -- package structure ------------------------------------------------------------------

    def _sheet_parts(self) -> list[_SheetPart]:
        workbook = ElementTree.fromstring(self._zip.read("xl/workbook.xml"))
        parts = []
        for sheet in workbook.iter(f"{{{_MAIN_NS}}}sheet"):
            target = self._targets.get(sheet.get(f"{{{_REL_NS}}}id"), ("", ""))
            if target[0].endswith("/worksheet"):
                parts.append(_SheetPart(sheet.get("name"), target[1]))
        if not parts:
            raise SourceError(self._file, "the workbook has no worksheets")
        return parts

    def _relationships(self) -> dict[str, tuple[str, str]]:
        rels = ElementTree.fromstring(self._zip.read("xl/_rels/workbook.xml.rels"))
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
        return self._zip.read(member) if member and member in self._zip.namelist() else None

    def _date_system(self) -> bytes:
        # The 1904 date system changes every date; carry the flag into each slice.
        found = re.search(rb"<workbookPr\b[^>]*/>", self._zip.read("xl/workbook.xml"))
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
                            pending = [head]
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
                    if size >= piece_bytes:
                        joined = b"".join(pending)
                        cut = joined.rfind(b"</row>") + len(b"</row>")
                        if cut >= len(b"</row>"):
                            yield memoryview(joined)[:cut]  # no copy of the slice's megabytes
                            pending, size = [joined[cut:]], len(joined) - cut
        except (zipfile.BadZipFile, EOFError, zlib.error, OSError) as exc:
            raise SourceError(location, f"truncated or corrupt sheet data ({exc})") from None
        raise SourceError(location, "the sheet data ends early (truncated file)")

    # -- header -----------------------------------------------------------------------------

    def plans(self) -> list[SheetPlan]:
        plans = []
        for index, sheet in enumerate(self._sheets):
            location = Location(self.path.name, sheet.name)
            head = self._head_rows(sheet)
            if not any(any(c not in (None, "") for c in row) for row in head):
                continue  # an empty sheet holds no records
            header_index, match = _find_header(location, head)
            title = " ".join(str(c) for row in head[:header_index] for c in row if c)
            plans.append(SheetPlan(sheet.name, index, header_index + 1, match, title))
        if not plans:
            raise SourceError(self._file, "every sheet is empty: no FOIA records here")
        return plans

    def _head_rows(self, sheet: _SheetPart) -> list[list[object]]:
        pieces = self._sheet_xml(sheet, piece_bytes=1 << 16)
        head = b""
        for piece in pieces:
            head += piece
            if len(_ROW_START.findall(head)) > HEADER_SEARCH_ROWS or len(head) > 1 << 20:
                break
        pieces.close()
        cut = head.rfind(b"</row>")
        head = head[: cut + len(b"</row>")] if cut >= 0 else head
        try:
            book = python_calamine.CalamineWorkbook.from_filelike(
                io.BytesIO(self._slice_workbook(head)))
            rows = book.get_sheet_by_index(0).to_python(skip_empty_area=False)
        except python_calamine.CalamineError as exc:
            raise SourceError(Location(self.path.name, sheet.name),
                              f"cannot read the first rows ({exc})") from None
        return [[("" if c is None else c) for c in row] for row in rows[: HEADER_SEARCH_ROWS]]

    # -- data -------------------------------------------------------------------------------

    def work(self, plan: SheetPlan) -> Iterator[tuple[WorkItem, int]]:
        sheet = self._sheets[plan.index]
        positions = [i for i, h in enumerate(plan.match.raw_headers) if h]
        names = unique_names([plan.match.canonical[i] for i in positions])
        letters = [column_letters(i) for i in positions]
        header_end = self._header_end(plan)
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
            yield (self._item(plan, piece, first_row, names, letters),
                   int(len(piece) * share))

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
            try:
                reader = fastexcel.read_excel(self._slice_workbook(anchor, piece))
                batch = reader.load_sheet(0, header_row=0, dtypes="string", eager=True)
            except fastexcel.FastExcelError as exc:
                raise SourceError(location, f"cannot read the rows from here on ({exc})") from None
            if batch.num_columns != len(names):
                raise SourceError(location, f"cells outside the {len(names)} header columns "
                                  "(a row wider than the header) in the rows from here on")
            table = pa.Table.from_batches([batch]).rename_columns(names)
            rows = np.arange(first_row, first_row + table.num_rows, dtype=np.int64)
            return RawPart(plan, rows, table, letters)

        return parse


# ---------------------------------------------------------------------------------------------
# CSV


class CsvReader(FoiaReader):
    def __init__(self, path: Path):
        self.path = path
        self.warnings = []
        self._file = Location(path.name)
        with open(path, "rb") as handle:
            sample = handle.read(1 << 16)
        self.encoding = self._encoding(sample)
        text = codecs.decode(sample, self.encoding, errors="replace").lstrip("\ufeff")
        self.header_line = text.splitlines()[0] if text else ""
        self.delimiter, self.match = self._header()

    def _encoding(self, sample: bytes) -> str:
        for bom, name in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                          (codecs.BOM_UTF16_BE, "utf-16")):
            if sample.startswith(bom):
                return name
        if b"\x00" in sample:
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

    def _header(self) -> tuple[str, HeaderMatch]:
        tried = []
        for delimiter in CSV_DELIMITERS:
            cells = next(csv.reader([self.header_line], delimiter=delimiter), [])
            tried.append(cells)
            match = catalog().match(cells)
            if match is not None:
                return delimiter, match
        location = Location(self.path.name, row=1)
        error = no_header_error(location, tried)
        raise SourceError(location, f"{error.problem}; tried the delimiters comma, tab, | and ;")

    def plans(self) -> list[SheetPlan]:
        return [SheetPlan(None, 0, 1, self.match, "")]

    def work(self, plan: SheetPlan) -> Iterator[tuple[WorkItem, int]]:
        names = unique_names(list(plan.match.canonical))
        headers = list(plan.match.raw_headers)
        try:
            reader = pa_csv.open_csv(
                self.path,
                read_options=pa_csv.ReadOptions(column_names=names, skip_rows=1,
                                                block_size=CSV_BLOCK_BYTES,
                                                encoding=self.encoding.replace("-sig", "")),
                # An empty line is kept as an all-NULL row so it is counted as a blank row and
                # the records after it keep their line numbers.
                parse_options=pa_csv.ParseOptions(delimiter=self.delimiter,
                                                  newlines_in_values=True,
                                                  ignore_empty_lines=False),
                convert_options=pa_csv.ConvertOptions(
                    column_types={n: pa.string() for n in names}, strings_can_be_null=True,
                    null_values=[""]),
            )
        except pa.ArrowInvalid as exc:
            raise self._error(exc) from None
        next_row = 2
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except pa.ArrowInvalid as exc:
                raise self._error(exc) from None
            rows = np.arange(next_row, next_row + batch.num_rows, dtype=np.int64)
            next_row += batch.num_rows
            part = RawPart(plan, rows, pa.Table.from_batches([batch]), headers)
            # The reader does not tell how far into the file it is; Arrow's size of the batch
            # is close to the bytes of text it came from.
            yield (lambda part=part: part), batch.nbytes

    def _error(self, exc: Exception) -> SourceError:
        """Name the record where the CSV stops being readable (found by a serial re-scan)."""
        message = str(exc)
        if "UTF8" in message or "UTF-8" in message:
            return SourceError(self._first_bad_utf8(), "not valid UTF-8 text; save the file as "
                               "UTF-8 (or with a byte-order mark)")
        found: list[int] = []

        def remember(row) -> str:
            found.append(row.number)
            return "error"

        try:
            scan = pa_csv.open_csv(
                self.path,
                read_options=pa_csv.ReadOptions(use_threads=False, block_size=CSV_BLOCK_BYTES,
                                                encoding=self.encoding.replace("-sig", "")),
                parse_options=pa_csv.ParseOptions(delimiter=self.delimiter,
                                                  newlines_in_values=True,
                                                  ignore_empty_lines=False,
                                                  invalid_row_handler=remember),
                convert_options=pa_csv.ConvertOptions(column_types={}, strings_can_be_null=True))
            for _ in scan:
                pass
        except pa.ArrowInvalid:
            pass
        detail = message.replace("CSV parse error: ", "")
        detail = detail if len(detail) <= 100 else detail[:100] + " ..."
        return SourceError(Location(self.path.name, row=found[0] if found else None),
                           f"{detail} (the header has {len(self.match.raw_headers)} fields split "
                           f"by {self.delimiter!r}: a wrong delimiter or an unquoted "
                           "delimiter inside a value)")

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


class ParquetReader(FoiaReader):
    def __init__(self, path: Path):
        self.path = path
        self.warnings = []
        self._bytes = path.stat().st_size
        try:
            self._file = pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise SourceError(Location(path.name), f"not a readable parquet file ({exc})") from None
        names = self._file.schema_arrow.names
        match = catalog().match(names)
        if match is None:
            raise no_header_error(Location(path.name), [names])
        self._plan = SheetPlan(None, 0, 0, match, "")

    def close(self) -> None:
        self._file.close()

    def plans(self) -> list[SheetPlan]:
        return [self._plan]

    def work(self, plan: SheetPlan) -> Iterator[tuple[WorkItem, int]]:
        names = unique_names(list(plan.match.canonical))
        headers = list(plan.match.raw_headers)
        total_rows = max(self._file.metadata.num_rows, 1)
        next_row = 1
        try:
            for batch in self._file.iter_batches(batch_size=PARQUET_BATCH_ROWS):
                table = pa.Table.from_batches([batch]).rename_columns(names)
                rows = np.arange(next_row, next_row + batch.num_rows, dtype=np.int64)
                next_row += batch.num_rows
                part = RawPart(plan, rows, table, headers)
                yield (lambda part=part: part), int(
                    self._bytes * batch.num_rows / total_rows)
        except (pa.ArrowInvalid, OSError) as exc:
            raise SourceError(Location(self.path.name, row=next_row),
                              f"unreadable parquet data from this row on ({exc})") from None
