"""Workbooks in the forms older productions come in, written by hand for tests (no writer for
them is a dependency): OpenDocument `.ods` and Excel 97-2003 `.xls`, the least calamine (and
LibreOffice) read. Cells are typed as a spreadsheet program saves them: text, numbers, dates and
date-times; None or "" is an empty cell. A sheet named in `hidden` is hidden.

.ods: a zip of `mimetype` (first, stored), a manifest and content.xml; dates as
`office:date-value` (ISO); each run of empty rows one row element repeated
(`table:number-rows-repeated`), as LibreOffice writes them.

.xls: a BIFF8 workbook stream (globals: BOF, codepage, date mode, fonts, 16 style XFs and two
cell XFs, general and the built-in date-time format 22; then a BOUNDSHEET per sheet; each sheet a
BOF, DIMENSIONS, NUMBER and LABEL records and EOF; dates are Excel serials in the date-time XF)
inside an OLE compound file (no mini stream: the stream is padded to 4 KB)."""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

MIMETYPE = "application/vnd.oasis.opendocument.spreadsheet"
_NAMESPACES = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
               'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
               'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
               'xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0"')
_MANIFEST = (
    '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="urn:oasis:names:'
    'tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2"><manifest:file-entry '
    f'manifest:full-path="/" manifest:media-type="{MIMETYPE}"/><manifest:file-entry '
    'manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>')


def _cell(value: object) -> str:
    if value is None or value == "":
        return "<table:table-cell/>"
    if isinstance(value, bool):
        kind = f'office:value-type="boolean" office:boolean-value="{str(value).lower()}"'
    elif isinstance(value, datetime | date):
        kind = f'office:value-type="date" office:date-value="{value.isoformat()}"'
    elif isinstance(value, int | float):
        kind = f'office:value-type="float" office:value="{value!r}"'
    else:
        kind = 'office:value-type="string"'
    return f"<table:table-cell {kind}><text:p>{escape(str(value))}</text:p></table:table-cell>"


def _rows(rows: Iterable[Sequence[object]]) -> Iterable[str]:
    empty = 0
    for row in rows:
        if all(value is None or value == "" for value in row):
            empty += 1
            continue
        if empty:
            yield (f'<table:table-row table:number-rows-repeated="{empty}"><table:table-cell/>'
                   "</table:table-row>")
            empty = 0
        yield f"<table:table-row>{''.join(_cell(v) for v in row)}</table:table-row>"


def write_ods(path: Path, sheets: dict[str, Iterable[Sequence[object]]],
              hidden: Iterable[str] = ()) -> Path:
    hidden = set(hidden)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as package:
        package.writestr(zipfile.ZipInfo("mimetype"), MIMETYPE, compress_type=zipfile.ZIP_STORED)
        package.writestr("META-INF/manifest.xml", _MANIFEST)
        with package.open("content.xml", "w") as content:
            content.write((
                f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {_NAMESPACES} '
                'office:version="1.2"><office:automatic-styles><style:style style:name="hidden" '
                'style:family="table"><style:table-properties table:display="false"/>'
                "</style:style></office:automatic-styles><office:body><office:spreadsheet>"
            ).encode())
            for name, rows in sheets.items():
                style = ' table:style-name="hidden"' if name in hidden else ""
                content.write(f"<table:table table:name={quoteattr(name)}{style}>".encode())
                for row in _rows(rows):
                    content.write(row.encode())
                content.write(b"</table:table>")
            content.write(b"</office:spreadsheet></office:body></office:document-content>")
    return path


# --- .xls -------------------------------------------------------------------------------------

_EPOCH = datetime(1899, 12, 30)
_GENERAL_XF, _DATE_TIME_XF = 16, 17
_FREE, _END_OF_CHAIN, _FAT_SECTOR = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD
_SECTOR = 512


def _record(kind: int, data: bytes = b"") -> bytes:
    if len(data) > 8224:
        raise ValueError("a record longer than BIFF8's 8,224 bytes (CONTINUE is not written)")
    return struct.pack("<HH", kind, len(data)) + data


def _bof(kind: int) -> bytes:
    return _record(0x0809, struct.pack("<HHHHII", 0x0600, kind, 0x0DBB, 1996, 0, 6))


def _text(text: str, length: str = "H") -> bytes:
    """An XLUnicodeString (length of 2 bytes) or ShortXLUnicodeString (1), UTF-16."""
    return struct.pack(f"<{length}B", len(text), 1) + text.encode("utf-16-le")


def _xf(number_format: int, style: bool) -> bytes:
    return _record(0x00E0, struct.pack("<HHHBBBBIIH", 0, number_format,
                                       0xFFF5 if style else 0x0001, 0x20, 0, 0, 0, 0, 0, 0x20C0))


def _sheet_stream(rows: list[Sequence[object]]) -> bytes:
    cells = []
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if value is None or value == "":
                continue
            if isinstance(value, date) and not isinstance(value, datetime):
                value = datetime(value.year, value.month, value.day)
            if isinstance(value, datetime):
                serial = (value - _EPOCH).total_seconds() / 86_400
                cells.append(_record(0x0203, struct.pack("<HHHd", r, c, _DATE_TIME_XF, serial)))
            elif isinstance(value, int | float) and not isinstance(value, bool):
                cells.append(_record(0x0203, struct.pack("<HHHd", r, c, _GENERAL_XF, value)))
            else:
                cells.append(_record(0x0204, struct.pack("<HHH", r, c, _GENERAL_XF)
                                     + _text(str(value))))
    width = max((len(row) for row in rows), default=0)
    return (_bof(0x0010) + _record(0x0200, struct.pack("<IIHHH", 0, len(rows), 0, width, 0))
            + b"".join(cells) + _record(0x000A))


def _workbook_stream(sheets: dict[str, list[Sequence[object]]], hidden: set[str],
                     protected: bool) -> bytes:
    fonts = _record(0x0031, struct.pack("<HHHHHBBBB", 200, 0, 0x7FFF, 400, 0, 0, 0, 0, 0)
                    + _text("Arial", "B")) * 5
    formats = b"".join(_xf(0, style=True) for _ in range(16)) + _xf(0, False) + _xf(22, False)
    # A password's FILEPASS record (RC4, its key fields zero: nothing after it is encrypted,
    # but a reader that meets it goes no further).
    password = _record(0x002F, struct.pack("<H", 1) + bytes(52)) if protected else b""
    head = (_bof(0x0005) + password + _record(0x0042, struct.pack("<H", 1200))
            + _record(0x0022, struct.pack("<H", 0)) + fonts + formats)
    streams = [_sheet_stream(list(rows)) for rows in sheets.values()]

    def bound(offset: int, name: str) -> bytes:
        return _record(0x0085, struct.pack("<IBB", offset, name in hidden, 0) + _text(name, "B"))

    offset = len(head) + sum(len(bound(0, n)) for n in sheets) + len(_record(0x000A))
    records = []
    for name, stream in zip(sheets, streams, strict=True):
        records.append(bound(offset, name))
        offset += len(stream)
    return head + b"".join(records) + _record(0x000A) + b"".join(streams)


def _directory_entry(name: str, kind: int, start: int, size: int, child: int = _FREE) -> bytes:
    encoded = name.encode("utf-16-le") + b"\0\0"
    return (encoded.ljust(64, b"\0") + struct.pack("<HBBIII", len(encoded), kind, 1, _FREE,
                                                   _FREE, child)
            + bytes(36) + struct.pack("<IQ", start, size))


def _compound_file(stream: bytes) -> bytes:
    """The stream as "Workbook" in a compound file: its FAT sectors, the DIFAT sectors that list
    those past the header's 109, the stream's sectors, the directory."""
    stream = stream.ljust(4096, b"\0")
    stream += bytes(-len(stream) % _SECTOR)
    sectors = len(stream) // _SECTOR
    fats, difats = 1, 0
    while fats * 128 < fats + difats + sectors + 1:
        fats += 1
        difats = -(-max(fats - 109, 0) // 127)
    first = fats + difats  # the stream's first sector
    chain = [_FAT_SECTOR] * fats + [0xFFFFFFFC] * difats  # 0xFFFFFFFC: a DIFAT sector
    chain += [first + i + 1 for i in range(sectors - 1)]
    chain += [_END_OF_CHAIN, _END_OF_CHAIN]  # the stream's last sector, the directory
    chain += [_FREE] * (fats * 128 - len(chain))
    listed = list(range(fats))
    difat = b""
    for n in range(difats):
        entries = listed[109 + 127 * n:][:127]
        following = fats + n + 1 if n + 1 < difats else _END_OF_CHAIN
        difat += struct.pack("<128I", *entries, *[_FREE] * (127 - len(entries)), following)
    directory = (_directory_entry("Root Entry", 5, _END_OF_CHAIN, 0, child=1)
                 + _directory_entry("Workbook", 2, first, len(stream))).ljust(_SECTOR, b"\0")
    in_header = listed[:109] + [_FREE] * (109 - len(listed[:109]))
    header = (bytes.fromhex("D0CF11E0A1B11AE1") + bytes(16)
              + struct.pack("<HHHHH6x", 0x3E, 3, 0xFFFE, 9, 6)
              + struct.pack("<9I", 0, fats, first + sectors, 0, 4096, _END_OF_CHAIN, 0,
                            fats if difats else _END_OF_CHAIN, difats)
              + struct.pack("<109I", *in_header))
    return header + struct.pack(f"<{len(chain)}I", *chain) + difat + stream + directory


def write_xls(path: Path, sheets: dict[str, Iterable[Sequence[object]]],
              hidden: Iterable[str] = (), protected: bool = False) -> Path:
    """`protected`: as saved with a password (below the workbook's first record, FILEPASS)."""
    path.write_bytes(_compound_file(_workbook_stream(
        {name: list(rows) for name, rows in sheets.items()}, set(hidden), protected)))
    return path
