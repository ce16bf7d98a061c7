"""What both families' readers check in a spreadsheet file before any cell is read.

The Rust reader behind them (calamine, through python-calamine and fastexcel) trusts the file: one
value at cell XFD1048576 makes it build a grid of 17 billion cells and abort the process, and a
cell holding one of Excel's error values (#N/A, #REF! ...) or a formula saved without its value
reads as blank, like an empty cell. So the bytes are looked at first: what kind of file it is
(`file_kind`), how many cells a sheet's values span (`sheet_span`), and error cells and formulas
without a value are rewritten as text cells (`errors_as_text`) that the readers hand on, to be
judged as what they are, never taken for blanks.
"""

from __future__ import annotations

import html
import io
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from iceledger.errors import Location, SourceError

# Excel's error values, as a cell shows them; a formula saved without its value is read as its
# text after FORMULA_MARK ("=SUM(B2:B4)").
ERROR_VALUES = frozenset({
    "#N/A", "#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#GETTING_DATA",
    "#SPILL!", "#CALC!", "#FIELD!", "#BLOCKED!", "#CONNECT!", "#BUSY!", "#UNKNOWN!"})
FORMULA_MARK = "="

_OLE_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")
_SNIFF_BYTES = 4096
_TEXT_BYTES = frozenset(range(32, 256)) | {9, 10, 12, 13}

# What a file of each kind is, said to a user who named it as a workbook or a CSV.
KINDS = {
    "empty": "an empty file (0 bytes)",
    "zip": "a zip archive (an xlsx workbook?); name it .xlsx if it is one",
    "ole": ("an OLE compound file: a password-protected (encrypted) workbook or an old .xls "
            "one; open it in a spreadsheet program and save it as .xlsx without a password"),
    "parquet": "a parquet file; name it .parquet",
    "text": "a text file (a CSV?); name it .csv if it is one",
    "binary": "its bytes are not a zip archive",
}
# Kinds that are certainly no CSV (a text CSV may hold stray bytes of any value).
NOT_A_CSV_KINDS = frozenset({"zip", "ole", "parquet"})


def missing_file(path: Path) -> str:
    """What to say of a path named as a file that is none."""
    if path.is_symlink():
        return "a symbolic link that leads nowhere (a loop, or its target is missing)"
    if path.is_dir():
        return "a folder, not a file"
    return "no such file or folder"


def file_kind(path: Path) -> str:
    """"empty", "zip" (an xlsx is one), "ole", "parquet", "text" or "binary", by the first bytes."""
    with open(path, "rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    if not head:
        return "empty"
    if head.startswith(b"PK"):
        return "zip"
    if head.startswith(_OLE_MAGIC):
        return "ole"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or _TEXT_BYTES.issuperset(head):
        return "text"
    return "binary"


# A value-holding element whose reference lies past column ZZ or row 9,999 (a tag that does not
# close itself: ICE's sheets style thousands of empty cells past their tables). Below that a
# sheet spans at most 9,999 x 702 cells, which the reader builds in a few hundred megabytes.
_FAR_REFERENCE = re.compile(rb' r="(?:[A-Z]{3}|[A-Z]{1,2}\d{5})[^>/]*+>')
_VALUED_CELL = re.compile(rb'<c\b[^>]*?\br="([A-Z]{1,3})(\d+)"[^>]*(?<!/)>'
                          rb"(?:(?!</c>).){0,400}?<(?:v|is)\b", re.DOTALL)


def _column_number(letters: bytes) -> int:
    number = 0
    for letter in letters:
        number = number * 26 + letter - 64
    return number


def sheet_span(xml: bytes) -> tuple[int, int, str] | None:
    """Rows and columns of the rectangle a sheet's values span, and the reference of the value
    farthest out, when some value lies past column ZZ or row 9,999 (else None)."""
    if not _FAR_REFERENCE.search(xml):
        return None
    rows, columns = [], []
    for letters, digits in _VALUED_CELL.findall(xml):
        columns.append(_column_number(letters))
        rows.append(int(digits))
    if not rows:
        return None
    far = max(range(len(rows)), key=lambda i: rows[i] * columns[i])
    ref = f"{_letters(columns[far])}{rows[far]}"
    return max(rows) - min(rows) + 1, max(columns) - min(columns) + 1, ref


def _letters(number: int) -> str:
    letters = ""
    while number:
        number, remainder = divmod(number - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


_ERROR_TYPE = re.compile(rb' t="e"')
_ERROR_CELL = re.compile(rb'(<c\b[^>]*?) t="e"')
_FORMULA_WITHOUT_VALUE = re.compile(
    rb"<f\b[^>]*?(?:/>|>([^<]*)</f>)(?:<v\s*/>|<v></v>)?</c>")
_TYPE_ATTRIBUTE = re.compile(rb'\st="[^"]*"')


def errors_as_text(xml: bytes | memoryview) -> bytes | memoryview:
    """Sheet XML with error cells and formulas saved without a value turned into text cells:
    "#N/A" stays "#N/A", a formula reads as "=SUM(B2:B4)". XML without either is returned as is."""
    if _ERROR_TYPE.search(xml):
        xml = _ERROR_CELL.sub(rb'\1 t="str"', xml)
    found = list(_FORMULA_WITHOUT_VALUE.finditer(xml))
    if not found:
        return xml
    data = bytes(xml)
    pieces, done = [], 0
    for match in found:
        start = data.rfind(b"<c", done, match.start())
        opening = data.index(b">", start, match.start()) if start >= 0 else -1
        if opening < 0:
            continue
        attributes = _TYPE_ATTRIBUTE.sub(b"", data[start + 2:opening])
        formula = data[opening + 1:match.start()] + match.group(0)[:-len(b"</c>")]
        formula = re.sub(rb"<v\s*/>|<v></v>", b"", formula)
        text = FORMULA_MARK.encode() + (match.group(1) or b"(shared formula)")
        pieces += [data[done:start], b"<c", attributes, b' t="str">', formula,
                   b"<v>", text, b"</v></c>"]
        done = match.end()
    pieces.append(data[done:])
    return b"".join(pieces)


def sheet_members(archive: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name -> its XML member, from the workbook's sheet list and relationships."""
    names = set(archive.namelist())
    targets = {}
    relationships = archive.read("xl/_rels/workbook.xml.rels")
    for element in re.findall(rb"<Relationship [^>]*>", relationships):
        ident, target = _attribute(element, b"Id"), _attribute(element, b"Target")
        if ident and target:
            targets[ident] = target.lstrip("/")
    found = {}
    for element in re.findall(rb"<sheet [^>]*>", archive.read("xl/workbook.xml")):
        name, target = _attribute(element, b"name"), targets.get(_attribute(element, b"r:id"))
        if name is None or target is None:
            continue
        member = target if target.startswith("xl/") else f"xl/{target}"
        if member in names:
            found[html.unescape(name)] = member
    return found


def _attribute(element: bytes, name: bytes) -> str | None:
    found = re.search(rb"\s" + re.escape(name) + rb'="([^"]*)"', element)
    return found.group(1).decode() if found else None


_EMPTY_SHEET = (b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.'
                b'openxmlformats.org/spreadsheetml/2006/main"><sheetData/></worksheet>')


# The parts a reader needs besides the sheets to read their cells.
_CELL_PARTS = frozenset({"[Content_Types].xml", "_rels/.rels", "xl/workbook.xml",
                         "xl/_rels/workbook.xml.rels", "xl/sharedStrings.xml", "xl/styles.xml"})


@dataclass
class CheckedWorkbook:
    """An uncompressed copy of a workbook for the reader, and the sheets it must not read."""

    data: io.BytesIO
    refused: dict[str, SourceError]


def checked_workbook(path: Path, max_part_bytes: int, max_sheet_cells: int) -> CheckedWorkbook:
    """The workbook's parts read once, each part's declared size bounded (the zip never inflates
    past it), each sheet's span bounded, error cells and formulas without a value turned to text;
    copied uncompressed, so that the reader does not inflate them again. A sheet over a bound is
    refused alone (emptied in the copy, its error kept); any other part over it refuses the file."""
    kind = file_kind(path)
    if kind != "zip":
        raise SourceError(Location(path.name), f"not a readable .xlsx workbook: {KINDS[kind]}")
    refused: dict[str, SourceError] = {}
    copy = io.BytesIO()
    try:
        with zipfile.ZipFile(path) as archive, zipfile.ZipFile(copy, "w") as out:
            sheets = {member: name for name, member in sheet_members(archive).items()}
            for info in archive.infolist():
                sheet = sheets.get(info.filename)
                if sheet is None and info.filename not in _CELL_PARTS:
                    continue  # drawings, themes, printer settings: no cell is in them
                if info.file_size > max_part_bytes:
                    problem = (f"{info.filename} claims {info.file_size / 2**20:,.0f} MB "
                               f"uncompressed, over the {max_part_bytes >> 20} MB any workbook "
                               "of the kind needs; not read (a damaged or hostile file)")
                    if sheet is None:
                        raise SourceError(Location(path.name), problem)
                    refused[sheet] = SourceError(Location(path.name, sheet), problem)
                    out.writestr(info.filename, _EMPTY_SHEET)
                    continue
                data = archive.read(info)
                if sheet is not None:
                    span = sheet_span(data)
                    if span and span[0] * span[1] > max_sheet_cells:
                        rows, columns, ref = span
                        refused[sheet] = SourceError(
                            Location(path.name, sheet, cell=ref),
                            f"a value here makes the sheet span {rows:,} rows by {columns:,} "
                            f"columns ({rows * columns:,} cells), over the {max_sheet_cells:,} "
                            "any workbook of the kind needs; the sheet is not read (a damaged "
                            "or hostile file)")
                        data = _EMPTY_SHEET
                    else:
                        data = errors_as_text(data)
                out.writestr(info.filename, data)
    except (zipfile.BadZipFile, KeyError, EOFError, zlib.error, OSError) as exc:
        raise SourceError(Location(path.name), f"not a readable .xlsx workbook (truncated or "
                          f"corrupt: {exc})") from None
    copy.seek(0)
    return CheckedWorkbook(copy, refused)
