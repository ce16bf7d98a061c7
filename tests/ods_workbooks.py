"""OpenDocument spreadsheets written by hand for tests (no writer is a dependency): a zip of
`mimetype` (first, stored), a manifest and content.xml, the least LibreOffice and calamine read.

Cells are typed as a spreadsheet program saves them: text, numbers (float), dates and
date-times (`office:date-value`, ISO), booleans; None or "" is an empty cell. Each run of
empty rows is one row element repeated (`table:number-rows-repeated`), as LibreOffice writes
them. A sheet named in `hidden` is hidden (`table:display="false"`)."""

from __future__ import annotations

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
