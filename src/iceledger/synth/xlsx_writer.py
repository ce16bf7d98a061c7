"""A streaming xlsx writer fast enough for millions of rows of same-layout sheets.

xlsxwriter, even in constant_memory mode, formats every cell in Python (about 30,000 rows of 25
columns a second here); this writer renders a whole block of rows at once with numpy. Every cell of
a column gets the same width, padded with spaces after its closing tag (whitespace between elements
is insignificant XML), so a block is one uint8 matrix filled column by column from small per-value
tables: labels become shared-string indices, numbers are looked up from their distinct values, and
Excel serial datetimes are computed as digits. Deflating runs in a worker thread while the next
block is rendered. Every cell keeps its `r` reference, because some readers require it.

Files are byte-identical for identical input: zip entries carry a fixed timestamp.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from iceledger.sources.stats.cells import column_letters
from iceledger.synth.columns import (
    EMPTY_CODE,
    Codes,
    Column,
    Labels,
    Moments,
    Numbers,
)

EXCEL_MAX_ROWS = 1_048_576
FIXED_ZIP_TIME = (2026, 1, 1, 0, 0, 0)
_EXCEL_DAY_OF_1970 = 25_569  # 1970-01-01 as an Excel serial day (1900 date system)
_SERIAL_DAY_DIGITS = 5  # serial days 10000..99999: the years 1927..2173
_SERIAL_FRACTION_DIGITS = 10  # 1e-10 of a day is under 10 microseconds
_DATETIME_STYLE, _DATE_STYLE = 1, 2
_BLOCK_ROWS = 32_768
_EMPTY_CELL_TAIL = b'"/>'
_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'

_STYLES = (
    f'{_XML_DECL}<styleSheet xmlns="{_NS}">'
    '<fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="3"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    # Built-in formats 22 (m/d/yy h:mm) and 14 (m/d/yyyy) mark the cells as datetimes and dates.
    '<xf numFmtId="22" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="14" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '</cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/>'
    "</cellStyles></styleSheet>"
)


class _SharedStrings:
    def __init__(self) -> None:
        self._index: dict[str, int] = {}

    def index(self, text: str) -> int:
        found = self._index.get(text)
        if found is None:
            found = self._index[text] = len(self._index)
        return found

    def xml(self) -> bytes:
        items = "".join(f'<si><t xml:space="preserve">{escape(s)}</t></si>' for s in self._index)
        return (f'{_XML_DECL}<sst xmlns="{_NS}" uniqueCount="{len(self._index)}">{items}</sst>'
                ).encode()


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """ASCII decimal digits of non-negative integers, zero-padded: an (n, width) uint8 matrix."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((values.astype(np.int64)[:, None] // powers) % 10 + 48).astype(np.uint8)


def _table(tails: Sequence[bytes]) -> np.ndarray:
    """One row per distinct cell tail, padded with spaces to the longest."""
    width = max(len(t) for t in tails)
    table = np.full((len(tails), width), ord(" "), dtype=np.uint8)
    for i, tail in enumerate(tails):
        table[i, : len(tail)] = np.frombuffer(tail, dtype=np.uint8)
    return table


def _blank_empty(tails: np.ndarray, empty: np.ndarray | None) -> np.ndarray:
    if empty is not None and empty.any():
        tails[empty] = ord(" ")
        tails[empty, : len(_EMPTY_CELL_TAIL)] = np.frombuffer(_EMPTY_CELL_TAIL, dtype=np.uint8)
    return tails


def _fixed_tails(head: bytes, body: np.ndarray, foot: bytes, empty: np.ndarray | None) -> np.ndarray:
    n = len(body)
    tails = np.empty((n, len(head) + body.shape[1] + len(foot)), dtype=np.uint8)
    tails[:, : len(head)] = np.frombuffer(head, dtype=np.uint8)
    tails[:, len(head) : len(head) + body.shape[1]] = body
    tails[:, len(head) + body.shape[1] :] = np.frombuffer(foot, dtype=np.uint8)
    return _blank_empty(tails, empty)


def _render_tails(column: Column, strings: _SharedStrings) -> np.ndarray:
    """Each cell of a column from just after its reference (`<c r="B12`) to its end."""
    if isinstance(column, Labels):
        table = _table([f'" t="s"><v>{strings.index(label)}</v></c>'.encode()
                        for label in column.labels] + [_EMPTY_CELL_TAIL])
        codes = np.where(column.codes == EMPTY_CODE, len(column.labels), column.codes)
        return table[codes]
    if isinstance(column, Numbers):
        distinct, inverse = np.unique(column.values, return_inverse=True)
        table = _table([f'"><v>{int(v)}</v></c>'.encode() for v in distinct]
                       + [_EMPTY_CELL_TAIL])
        if column.empty is not None:
            inverse = np.where(column.empty, len(distinct), inverse)
        return table[inverse]
    if isinstance(column, Moments):
        return _moment_tails(column)
    if isinstance(column, Codes):
        body = np.ascontiguousarray(column.values).view(np.uint8).reshape(len(column), -1)
        return _fixed_tails(b'" t="inlineStr"><is><t>', body, b"</t></is></c>", column.empty)
    raise TypeError(f"no xlsx rendering for {type(column).__name__}")


def _moment_tails(column: Moments) -> np.ndarray:
    empty = column.empty
    seconds = column.values if empty is None else np.where(empty, 0, column.values)
    days, second_of_day = np.divmod(seconds, 86_400)
    serial_days = days + _EXCEL_DAY_OF_1970
    live = serial_days if empty is None else serial_days[~empty]
    if len(live) and (live.min() < 10 ** (_SERIAL_DAY_DIGITS - 1) or
                      live.max() >= 10**_SERIAL_DAY_DIGITS):
        raise ValueError("a date falls outside the years 1927-2173 the xlsx writer handles")
    serial_days = np.where(serial_days < 10 ** (_SERIAL_DAY_DIGITS - 1),
                           10 ** (_SERIAL_DAY_DIGITS - 1), serial_days)
    if column.date_only:
        body = _digits(serial_days, _SERIAL_DAY_DIGITS)
        return _fixed_tails(f'" s="{_DATE_STYLE}"><v>'.encode(), body, b"</v></c>", empty)
    fraction = np.rint(second_of_day * (10**_SERIAL_FRACTION_DIGITS / 86_400))
    body = np.concatenate(
        [_digits(serial_days, _SERIAL_DAY_DIGITS), np.full((len(seconds), 1), ord("."), np.uint8),
         _digits(fraction, _SERIAL_FRACTION_DIGITS)], axis=1)
    return _fixed_tails(f'" s="{_DATETIME_STYLE}"><v>'.encode(), body, b"</v></c>", empty)


def _inline_row(row_number: int, texts: Sequence[str], strings: _SharedStrings | None) -> bytes:
    cells = []
    for i, text in enumerate(texts):
        ref = f"{column_letters(i)}{row_number}"
        if strings is None:
            cells.append(f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">'
                         f"{escape(text)}</t></is></c>")
        else:
            cells.append(f'<c r="{ref}" t="s"><v>{strings.index(text)}</v></c>')
    return f'<row r="{row_number}">{"".join(cells)}</row>'.encode()


class XlsxWriter:
    """One workbook of sheets sharing a layout: title rows, a header row, then data rows.

    Rows go to Sheet1 until it holds `max_data_rows`, then to Sheet2, and so on; every sheet
    repeats the title and header rows, as ICE's multi-sheet FOIA files do.
    """

    def __init__(self, path: Path, header: Sequence[str], title_rows: Sequence[str], *,
                 max_data_rows: int, document_title: str):
        above_data = len(title_rows) + 1
        if max_data_rows < 1:
            raise ValueError("max_data_rows must be at least 1")
        self.path = path
        self.header = list(header)
        self.title_rows = list(title_rows)
        self.max_data_rows = min(max_data_rows, EXCEL_MAX_ROWS - above_data)
        self.rows_per_sheet: list[int] = []
        self._document_title = document_title
        self._first_data_row = above_data + 1
        self._letters = [column_letters(i).encode() for i in range(len(self.header))]
        self._strings = _SharedStrings()
        self._zip = zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1)
        self._sheet = None
        self._deflater = ThreadPoolExecutor(max_workers=1)
        self._pending: Future | None = None

    def write(self, columns: Sequence[Column]) -> None:
        if len(columns) != len(self.header):
            raise ValueError(f"{len(columns)} columns for a {len(self.header)}-column layout")
        total = len(columns[0]) if columns else 0
        start = 0
        while start < total:
            if self._sheet is None or self.rows_per_sheet[-1] == self.max_data_rows:
                self._open_sheet()
            room = self.max_data_rows - self.rows_per_sheet[-1]
            stop = min(total, start + room, start + _BLOCK_ROWS)
            rows = np.arange(start, stop)
            block = [c.take(rows) for c in columns] if (start, stop) != (0, total) else columns
            self._write_block(block)
            start = stop

    def close(self) -> list[int]:
        if self._sheet is None:
            self._open_sheet()
        self._close_sheet()
        self._deflater.shutdown()
        self._put("xl/sharedStrings.xml", self._strings.xml())
        self._put("xl/styles.xml", _STYLES.encode())
        self._put_package_parts()
        self._zip.close()
        return self.rows_per_sheet

    def _write_block(self, columns: Sequence[Column]) -> None:
        first = self._first_data_row + self.rows_per_sheet[-1]
        tails = [_render_tails(c, self._strings) for c in columns]
        row_numbers = np.arange(first, first + len(tails[0]), dtype=np.int64)
        # Row numbers of one width render into one matrix; a block spans at most two widths.
        widths = 1 + sum((row_numbers >= 10**k).astype(np.int64) for k in range(1, 8))
        for width in np.unique(widths):
            part = np.flatnonzero(widths == width)
            self._send(self._render_rows(row_numbers[part], [t[part] for t in tails], int(width)))
        self.rows_per_sheet[-1] += len(row_numbers)

    def _render_rows(self, row_numbers: np.ndarray, tails: list[np.ndarray], width: int) -> bytes:
        digits = _digits(row_numbers, width)
        pieces: list[tuple[bytes, np.ndarray | None]] = [(b'<row r="', digits), (b'">', None)]
        for letters, tail in zip(self._letters, tails):
            pieces += [(b'<c r="' + letters, digits), (b"", tail)]
        pieces.append((b"</row>", None))
        row_width = sum(len(head) + (0 if body is None else body.shape[1]) for head, body in pieces)
        out = np.empty((len(row_numbers), row_width), dtype=np.uint8)
        at = 0
        for head, body in pieces:
            out[:, at : at + len(head)] = np.frombuffer(head, dtype=np.uint8)
            at += len(head)
            if body is not None:
                out[:, at : at + body.shape[1]] = body
                at += body.shape[1]
        return out.reshape(-1)

    def _open_sheet(self) -> None:
        if self._sheet is not None:
            self._close_sheet()
        number = len(self.rows_per_sheet) + 1
        info = zipfile.ZipInfo(f"xl/worksheets/sheet{number}.xml", date_time=FIXED_ZIP_TIME)
        info.compress_type = zipfile.ZIP_DEFLATED
        info._compresslevel = 1  # ZipFile.open ignores the archive's level for a given ZipInfo
        self._sheet = self._zip.open(info, "w", force_zip64=True)
        self.rows_per_sheet.append(0)
        head = [f'{_XML_DECL}<worksheet xmlns="{_NS}"><sheetData>'.encode()]
        for i, title in enumerate(self.title_rows, start=1):
            if title:
                head.append(_inline_row(i, [title], None))
        head.append(_inline_row(len(self.title_rows) + 1, self.header, self._strings))
        self._send(b"".join(head))

    def _close_sheet(self) -> None:
        self._send(b"</sheetData></worksheet>")
        self._wait()
        self._sheet.close()

    def _send(self, data: bytes | np.ndarray) -> None:
        self._wait()
        self._pending = self._deflater.submit(self._sheet.write, data)

    def _wait(self) -> None:
        if self._pending is not None:
            self._pending.result()
            self._pending = None

    def _put(self, name: str, data: bytes) -> None:
        info = zipfile.ZipInfo(name, date_time=FIXED_ZIP_TIME)
        info.compress_type = zipfile.ZIP_DEFLATED
        self._zip.writestr(info, data)

    def _put_package_parts(self) -> None:
        sheets = range(1, len(self.rows_per_sheet) + 1)
        sheet_types = "".join(
            f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>' for i in sheets)
        self._put("[Content_Types].xml", (
            f'{_XML_DECL}<Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Default Extension="rels" ContentType="application/'
            'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" '
            'ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType='
            '"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            f'{sheet_types}<Override PartName="/xl/styles.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/><Override PartName='
            '"/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.'
            'spreadsheetml.sharedStrings+xml"/><Override PartName="/docProps/core.xml" '
            'ContentType="application/vnd.openxmlformats-package.core-properties+xml"/></Types>'
        ).encode())
        self._put("_rels/.rels", (
            f'{_XML_DECL}<Relationships xmlns="{_PKG_REL_NS}"><Relationship Id="rId1" Type="'
            f'{_REL_NS}/officeDocument" Target="xl/workbook.xml"/><Relationship Id="rId2" '
            'Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/'
            'core-properties" Target="docProps/core.xml"/></Relationships>').encode())
        self._put("docProps/core.xml", (
            f'{_XML_DECL}<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/'
            '2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/">'
            f"<dc:title>{escape(self._document_title)}</dc:title>"
            "<dc:creator>iceledger synth</dc:creator></cp:coreProperties>").encode())
        sheet_list = "".join(f'<sheet name="Sheet{i}" sheetId="{i}" r:id="rId{i}"/>'
                             for i in sheets)
        self._put("xl/workbook.xml", (
            f'{_XML_DECL}<workbook xmlns="{_NS}" xmlns:r="{_REL_NS}"><sheets>{sheet_list}'
            "</sheets></workbook>").encode())
        sheet_rels = "".join(
            f'<Relationship Id="rId{i}" Type="{_REL_NS}/worksheet" '
            f'Target="worksheets/sheet{i}.xml"/>' for i in sheets)
        n = len(self.rows_per_sheet)
        self._put("xl/_rels/workbook.xml.rels", (
            f'{_XML_DECL}<Relationships xmlns="{_PKG_REL_NS}">{sheet_rels}'
            f'<Relationship Id="rId{n + 1}" Type="{_REL_NS}/styles" Target="styles.xml"/>'
            f'<Relationship Id="rId{n + 2}" Type="{_REL_NS}/sharedStrings" '
            'Target="sharedStrings.xml"/></Relationships>').encode())
