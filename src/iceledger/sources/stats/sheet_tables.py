"""Find tables on a spreadsheet sheet by their caption and header, and read them as tidy rows.

One generic extractor for every table of ICE's detention-statistics workbooks. What a table looks
like (its caption, header words, row dimensions) lives in src/iceledger/data/layouts/stats_tables.toml;
this module knows only the few shapes those tables come in:

- long: row labels x value columns whose headers are values of a dimension (months, agencies,
  criminality...), written one value per output row;
- measures: row labels x columns that are distinct measures (count, cost), one output row per
  sheet row;
- records: a list such as the facilities table, every header a column.

A sheet arrives as a grid: a list of rows, each a list of raw cell values, as any reader returns
it. Tables may sit anywhere, side by side on the same rows; a table's block runs from its caption
down to the first blank row after which it does not resume (one or two empty rows may part it),
and sideways to the next thing printed on its caption row (or a caption found in its header row).
A header printed over two or three rows (groups above the columns' own headers) is read as the one
row the single-row form prints.
"""

from __future__ import annotations

import re
import tomllib
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from functools import cache, cached_property, lru_cache
from importlib import resources
from itertools import accumulate, compress
from operator import itemgetter
from pathlib import Path
from typing import Any, NamedTuple

from iceledger.errors import Location, SourceError
from iceledger.field_offices import normalise_aor
from iceledger.sources.stats.cells import (
    DATE_TEXT,
    CellValueError,
    ExcelErrorValue,
    cell_name,
    clean_text,
    clean_texts,
    column_index,
    column_letters,
    detached,
    fiscal_month,
    fiscal_year_in,
    month_and_year,
    month_of_fiscal_year,
    parse_date,
    parse_dates,
    parse_fiscal_year,
    parse_number,
    parse_numbers,
    sheet_key,
    snake_case,
)
from iceledger.sources.stats.snapshots import CAPTION, FOOTNOTE, FootnoteRule, SnapshotDating
from iceledger.tables import STATS_UNRECOGNISED

Grid = Sequence[Sequence[Any]]

# How far below its caption a table's header row may start (captions sit 1-3 rows above).
_HEADER_SEARCH_ROWS = 3
_TEXT_KINDS = {"closed", "open", "field_office"}
# Columns every table carries after its fiscal year: the day its figures describe, and where
# that date was printed (sources/stats/snapshots.py).
SNAPSHOT_COLUMNS = (("snapshot_date", "date32"), ("as_of_source", "string"))


def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text.replace("{date}", DATE_TEXT), re.IGNORECASE)


@dataclass(frozen=True)
class Dimension:
    """What a row label or column header names, and how raw text becomes its canonical value."""

    name: str
    kind: str
    values: tuple[tuple[str, re.Pattern[str]], ...] = ()
    # A closed dimension that takes new categories: how one is printed (its `value` group, or
    # the whole label, is the value), and the labels that are none (a total, a share).
    new_values: re.Pattern[str] | None = None
    not_a_category: re.Pattern[str] | None = None
    longest_category: int = 0
    # Each label read so far -> its canonical value, or the CellValueError it raised: workbooks
    # repeat the same few labels thousands of times.
    _read: dict[str, object] = field(default_factory=dict, compare=False, repr=False)

    @cached_property
    def declared(self) -> frozenset[str]:
        return frozenset(value for value, _ in self.values)

    def is_new(self, value: object) -> bool:
        """Whether a canonical value is a category stats_tables.toml does not declare."""
        return self.new_values is not None and value not in self.declared

    def recognises(self, text: str | None) -> bool:
        """Whether `text` is a known value: open dimensions know every label, the others only
        their declared values (and field offices), never a new category."""
        if text is None:
            return False
        if self.kind == "open":
            return True
        try:
            return not self.is_new(self.canonical(text))
        except CellValueError:
            return False

    def canonical(self, text: str | None) -> object:
        if text is None:
            return None
        value = self._read.get(text, self._read)
        if value is self._read:
            try:
                value = self._canonical(text)
            except CellValueError as problem:
                value = detached(problem)
            self._read[text] = value
        if value.__class__ is CellValueError:
            raise CellValueError(*value.args)
        return value

    def _canonical(self, text: str) -> object:
        if self.kind in _TEXT_KINDS:
            for value, pattern in self.values:
                if pattern.search(text):
                    return value
            if self.kind == "open":
                return text
            if self.kind == "field_office" and (office := normalise_aor(text)) is not None:
                return office.name
            respelt = _folded_values(self.values).get(_folded(text))
            if respelt is not None:
                return respelt
            if self.new_values is not None:
                return self._new_value(text)
            raise CellValueError(f"unrecognised {self.name} label {text!r}")
        if self.kind in ("fiscal_year", "integer"):
            if self.kind == "fiscal_year":
                return parse_fiscal_year(text)
            if not text.isdecimal():
                raise CellValueError(f"expected a whole number for {self.name}, found {text!r}")
            return int(text)
        if self.kind == "date":
            return parse_date(text)
        raise CellValueError(f"{self.name} values cannot be read from a label")

    def _new_value(self, text: str) -> str:
        assert self.new_values is not None
        if len(text) > self.longest_category:
            raise CellValueError(f"unrecognised {self.name} label {text!r}: over "
                                 f"{self.longest_category} characters, no category's name")
        if self.not_a_category is not None and self.not_a_category.search(text):
            raise CellValueError(f"unrecognised {self.name} label {text!r}: it reads as a total "
                                 "or a share, which cannot be a new category")
        match = self.new_values.search(text)
        value = None if match is None else (
            match.group("value") if "value" in self.new_values.groupindex else text)
        if value is None or not re.search(r"[^\W\d_]", value):
            raise CellValueError(f"unrecognised {self.name} label {text!r}")
        return value.strip()

    @property
    def arrow_type(self) -> str:
        kinds = {"fiscal_year": "int32", "integer": "int32", "date": "date32", "month": "date32"}
        return kinds.get(self.kind, "string")


def _folded(text: str) -> str:
    """A label without case, spacing, punctuation or a plural "s": how a re-spelt value is
    matched to the declared one it stands for."""
    letters = re.sub(r"[\W_]+", "", text.casefold())
    return letters[:-1] if letters.endswith("s") else letters


@cache
def _folded_values(values: tuple[tuple[str, re.Pattern[str]], ...]) -> dict[str, str]:
    return {_folded(value): value for value, _ in values}


@dataclass(frozen=True)
class RecordsSpec:
    rename: tuple[tuple[str, re.Pattern[str]], ...]
    required: tuple[str, ...]
    numeric: re.Pattern[str]
    dates: re.Pattern[str]
    zero_pad: dict[str, int]
    sums: dict[str, tuple[str, ...]]
    # A row whose first cell this finds ends the list: a total is no record.
    end_rows: re.Pattern[str] | None = None

    def column_name(self, header: str) -> str:
        return next((col for col, p in self.rename if p.search(header)), snake_case(header))

    def knows(self, name: str) -> bool:
        """Whether a column name is one the layout declares (renamed, required or typed)."""
        return name in self.required or name in self.zero_pad or any(
            col == name for col, _ in self.rename) or bool(
            self.numeric.search(name) or self.dates.search(name))


@dataclass(frozen=True)
class TableSpec:
    name: str
    sheets: re.Pattern[str]
    caption: re.Pattern[str] | None
    header: re.Pattern[str] | None
    label_headers: tuple[re.Pattern[str], ...] = ()
    rows: tuple[str, ...] = ()
    group_rows: str | None = None
    fill_down: tuple[str, ...] = ()
    blank_labels: dict[str, str] = field(default_factory=dict)
    columns: str | None = None
    value: str | None = None
    measures: tuple[tuple[str, re.Pattern[str]], ...] = ()
    skip_columns: tuple[re.Pattern[str], ...] = ()
    totals_table: str | None = None
    header_rows: int = 1
    month_fiscal_year_from: str | None = None
    records: RecordsSpec | None = None
    # Each tuple of row labels read so far -> its dimension values (shared, never changed):
    # every release repeats the same rows.
    labels_read: dict[tuple, dict[str, object]] = field(default_factory=dict, compare=False,
                                                        repr=False)
    # Each (column header, fiscal year) read so far -> (output table, column key), or the
    # CellValueError it raised.
    headers_read: dict[tuple, object] = field(default_factory=dict, compare=False, repr=False)

    def finds(self, text: str) -> re.Match[str] | None:
        pattern = self.caption or self.header
        return pattern.search(text) if pattern is not None else None


@dataclass(frozen=True)
class Layout:
    """All stats_tables.toml says: tables, dimensions and where workbook facts are printed."""

    tables: tuple[TableSpec, ...]
    dimensions: dict[str, Dimension]
    ignore_sheets: tuple[re.Pattern[str], ...]
    required_sheets: tuple[re.Pattern[str], ...]
    as_of: re.Pattern[str]
    sheet_fiscal_year: re.Pattern[str]
    file_date: re.Pattern[str]
    archive_stamp: re.Pattern[str]
    file_fiscal_year: re.Pattern[str]
    footnote_sheets: re.Pattern[str]
    caption_as_of: re.Pattern[str]
    fiscal_year_total: re.Pattern[str]
    footnote_rules: tuple[FootnoteRule, ...]

    def tables_for(self, sheet: str) -> list[TableSpec]:
        return [spec for spec in self.tables if spec.sheets.search(sheet_key(sheet))]

    def captioned_tables(self) -> list[TableSpec]:
        """Every table found by its caption: what a sheet of no known kind is searched for (a
        sheet ICE renamed: "Bond Statistics" for "Monthly Bond Statistics")."""
        return [spec for spec in self.tables if spec.caption is not None]

    def ignores(self, sheet: str) -> bool:
        return any(pattern.search(sheet_key(sheet)) for pattern in self.ignore_sheets)


def load_layout(path: Path | None = None) -> Layout:
    """Read a layout file; the package's own stats_tables.toml when no path is given."""
    if path is None:
        return _default_layout()
    return _layout_from(tomllib.loads(path.read_text(encoding="utf-8")))


@cache
def _default_layout() -> Layout:
    text = resources.files("iceledger.data").joinpath("layouts", "stats_tables.toml").read_text("utf-8")
    return _layout_from(tomllib.loads(text))


def _layout_from(raw: dict) -> Layout:
    new_categories = raw["new_categories"]
    not_a_category = _pattern(new_categories["not_a_category"])
    dimensions = {
        name: Dimension(
            name,
            entry["kind"],
            tuple((value, _pattern(p)) for value, p in entry.get("values", {}).items()),
            _pattern(entry["new_values"]) if "new_values" in entry else None,
            not_a_category,
            new_categories["longest"],
        )
        for name, entry in raw["dimensions"].items()
    }
    workbook = raw["workbook"]
    return Layout(
        tables=tuple(_table_spec(entry, dimensions) for entry in raw["tables"]),
        dimensions=dimensions,
        ignore_sheets=tuple(_pattern(p) for p in workbook["ignore_sheets"]),
        required_sheets=tuple(_pattern(p) for p in workbook["required_sheets"]),
        as_of=_pattern(workbook["as_of"]),
        sheet_fiscal_year=_pattern(workbook["sheet_fiscal_year"]),
        file_date=_pattern(workbook["file_date"]),
        archive_stamp=_pattern(workbook["archive_stamp"]),
        file_fiscal_year=_pattern(workbook["file_fiscal_year"]),
        footnote_sheets=_pattern(workbook["footnote_sheets"]),
        caption_as_of=_pattern(workbook["caption_as_of"]),
        fiscal_year_total=_pattern(workbook["fiscal_year_total"]),
        footnote_rules=tuple(
            FootnoteRule(_pattern(rule["line"]), _pattern(rule["tables"]),
                         _pattern(rule["sheets"]) if "sheets" in rule else None,
                         rule.get("earlier_years", False),
                         _pattern(rule["subject"]) if "subject" in rule else None)
            for rule in raw.get("footnote_dates", [])),
    )


def _table_spec(entry: dict, dimensions: dict[str, Dimension]) -> TableSpec:
    name = entry["name"]
    for dimension in [*entry.get("rows", []), entry.get("columns")]:
        if dimension is not None and dimension not in dimensions:
            raise ValueError(f"stats_tables.toml: table {name} uses unknown dimension {dimension}")
    records = None
    if entry.get("records"):
        records = RecordsSpec(
            rename=tuple((col, _pattern(p)) for col, p in entry.get("rename", {}).items()),
            required=tuple(entry.get("required", [])),
            numeric=_pattern(entry["numeric"]),
            dates=_pattern(entry["dates"]),
            zero_pad=dict(entry.get("zero_pad", {})),
            sums={col: tuple(parts) for col, parts in entry.get("sums", {}).items()},
            end_rows=_pattern(entry["end_rows"]) if "end_rows" in entry else None,
        )
    return TableSpec(
        name=name,
        sheets=_pattern(entry["sheets"]),
        caption=_pattern(entry["caption"]) if "caption" in entry else None,
        header=_pattern(entry["header"]) if "header" in entry else None,
        label_headers=tuple(_pattern(p) for p in entry.get("label_headers", [])),
        rows=tuple(entry.get("rows", [])),
        group_rows=entry.get("group_rows"),
        fill_down=tuple(entry.get("fill_down", [])),
        blank_labels=dict(entry.get("blank_labels", {})),
        columns=entry.get("columns"),
        value=entry.get("value"),
        measures=tuple((col, _pattern(p)) for col, p in entry.get("measures", {}).items()),
        skip_columns=tuple(_pattern(p) for p in entry.get("skip_columns", [])),
        totals_table=entry.get("totals_table"),
        header_rows=entry.get("header_rows", 1),
        month_fiscal_year_from=entry.get("month_fiscal_year_from"),
        records=records,
    )


class Quarantined(NamedTuple):
    """A value or row that could not be loaded, with where it is and why."""

    sheet: str
    row_number: int
    cell: str
    reason: str


class TableColumns:
    """One output table being filled; columns appear in first-seen order.

    Rows arrive a part at a time (a table block, a list of records), as one list per column
    that varies over the part beside the columns constant over it (workbook, sheet, caption
    fields): a block of a hundred values makes no hundred row objects, and a column constant
    over the whole table is laid down at once.
    """

    def __init__(self) -> None:
        self.types: dict[str, str] = {}
        self.parts: list[tuple[dict[str, object], dict[str, list], int]] = []

    def declare(self, columns: Iterable[tuple[str, str]]) -> None:
        for name, arrow_type in columns:
            self.types.setdefault(name, arrow_type)

    def add(self, constants: dict[str, object], columns: dict[str, list], length: int) -> None:
        """`length` rows: each column's values listed in `columns`, or else its constant."""
        if length:
            self.parts.append((constants, columns, length))

    @property
    def row_count(self) -> int:
        return sum(length for _, _, length in self.parts)

    def to_arrow(self):  # -> pa.Table; pyarrow is imported here so finding tables stays light
        import pyarrow as pa

        parts, total = self.parts, self.row_count
        varying = set().union(*(columns for _, columns, _ in parts))
        arrays = {}
        for name, kind in self.types.items():
            if parts and name not in varying:
                value = parts[0][0].get(name)
                if value is not None and all(constants.get(name) == value
                                             for constants, _, _ in parts):
                    arrays[name] = _repeated_array(value, total, kind)
                    continue
            values: list = []
            for constants, columns, length in parts:
                listed = columns.get(name)
                values.extend(listed if listed is not None else [constants.get(name)] * length)
            arrays[name] = _arrow_array(values, kind)
        return pa.table(arrays)


# Days from 0001-01-01 to the Unix epoch, the origin of Arrow's date32.
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
# Length of the runs of one repeated value that tables take their constant columns from.
_REPEATED_RUN = 256
# The array typecode holding each fixed-width Arrow type's values (date32: days since the epoch).
_FIXED_WIDTH = {"float64": "d", "int32": "i", "int64": "q", "date32": "i"}


def _arrow_array(values: list, kind: str):
    """An Arrow array built from raw buffers.

    pa.array() on Python lists imports pandas to check for pandas objects, which costs more
    than building every table of a workbook; buffers and the string builder do not.
    """
    import pyarrow as pa

    if kind == "string":
        first = values[0] if values else None
        if first.__class__ is str and first and values.count(first) == len(values):
            return _repeated_array(first, len(values), kind)
        if None not in values:
            # ASCII text (nearly all of it): one join, and offsets from the lengths, all in C.
            joined = "".join(values)
            data = joined.encode()
            if len(data) == len(joined):
                offsets = array("i", list(accumulate(map(len, values), initial=0)))
                return pa.Array.from_buffers(pa.string(), len(values),
                                             [None, pa.py_buffer(offsets), pa.py_buffer(data)])
        builder = pa.lib.StringBuilder()
        builder.append_values(values)
        return builder.finish()
    if kind == "list<string>":
        offsets, flat = array("i", [0]), []
        for items in values:
            flat.extend(items or ())
            offsets.append(len(flat))
        return pa.Array.from_buffers(pa.list_(pa.string()), len(values),
                                     [None, pa.py_buffer(offsets)],
                                     children=[_arrow_array(flat, "string")])
    typecode, arrow_type = _FIXED_WIDTH[kind], getattr(pa, kind)()
    # The membership test runs in C and spares scanning the many columns with no gap.
    missing = [i for i, value in enumerate(values) if value is None] if None in values else []
    if kind == "date32":
        values = [None if day is None else day.toordinal() - _EPOCH_ORDINAL for day in values]
    validity = None
    if missing:
        values = [0 if value is None else value for value in values]
        bits = bytearray(b"\xff" * ((len(values) + 7) // 8))
        for i in missing:
            bits[i >> 3] &= ~(1 << (i & 7)) & 0xFF
        validity = pa.py_buffer(bits)
    return pa.Array.from_buffers(arrow_type, len(values),
                                 [validity, pa.py_buffer(array(typecode, values))],
                                 null_count=len(missing))


def _repeated_array(value: object, length: int, kind: str):
    """An Arrow array of one value repeated (the workbook, its sha256, the sheet, the fiscal
    year): its bytes are laid down once and copied, not converted value by value.

    Every table of a workbook repeats the same few values; each is laid down once, long enough
    for most tables (a power of two for the longer ones), and the tables take its first values.
    """
    if (kind == "string" and value.__class__ is str and value) or (
            kind != "date32" and kind in _FIXED_WIDTH and value.__class__ in (int, float)):
        run = max(_REPEATED_RUN, 1 << (length - 1).bit_length())
        return _repeated_run(value, kind, run).slice(0, length)
    return _arrow_array([value] * length, kind)


@lru_cache(maxsize=128)
def _repeated_run(value: str | float, kind: str, length: int):
    import pyarrow as pa

    if kind == "string":
        encoded = value.encode()
        offsets = array("i", range(0, len(encoded) * length + 1, len(encoded)))
        return pa.Array.from_buffers(pa.string(), length,
                                     [None, pa.py_buffer(offsets), pa.py_buffer(encoded * length)])
    return pa.Array.from_buffers(getattr(pa, kind)(), length,
                                 [None, pa.py_buffer(array(_FIXED_WIDTH[kind], [value]) * length)])


class SheetScan:
    """A sheet's text cells (as printed) and the positions of its numbers, found in one pass.

    Text cells are kept as three parallel lists, not an object per cell, and a pattern is tried
    once on each distinct text: a sheet repeats its labels many times.
    """

    def __init__(self, rows: list[int], columns: list[int], texts: list[str],
                 numbers: dict[int, list[int]]):
        self.rows, self.columns, self.texts = rows, columns, texts
        self.numbers = numbers  # row -> columns holding a number, left to right
        self._distinct: set[str] | None = None

    def matching(self, pattern: re.Pattern[str]):
        """(row, column, cleaned text, match) of each text cell `pattern` finds, row by row."""
        for row, column, text in self.candidates(relaxed(pattern.pattern)):
            if (match := pattern.search(text)) is not None:
                yield row, column, text, match

    def candidates(self, candidate: re.Pattern[str]):
        """(row, column, cleaned text) of each non-blank text cell whose raw text `candidate`
        finds, row by row. A loose candidate tried on the raw text spares cleaning the many
        cells that cannot match; the caller tests the cleaned text exactly."""
        if self._distinct is None:
            self._distinct = set(self.texts)
        found = {raw for raw in self._distinct if candidate.search(raw) is not None}
        if not found:
            return
        for i in compress(range(len(self.texts)), map(found.__contains__, self.texts)):
            text = clean_text(self.texts[i])
            if text is not None:
                yield self.rows[i], self.columns[i], text


def scan_sheet(grid: Grid) -> SheetScan:
    rows: list[int] = []
    columns: list[int] = []
    texts: list[str] = []
    numbers: dict[int, list[int]] = {}
    add_row, add_column, add_text = rows.append, columns.append, texts.append
    for r, row in enumerate(grid):
        figures = []
        for c, value in enumerate(row):
            # Tested by class alone, an empty cell ("") costs no comparison with zero.
            kind = value.__class__
            if kind is str:
                if value:
                    add_row(r)
                    add_column(c)
                    add_text(value)
            elif kind is float or kind is int:  # bool is its own class: not a figure
                figures.append(c)
        if figures:
            numbers[r] = figures
    return SheetScan(rows, columns, texts, numbers)


@cache
def relaxed(pattern: str) -> re.Pattern[str]:
    """A looser form of a pattern, for testing raw cell text before cleaning it.

    It finds what the pattern finds in cleaned text, and more: a leading anchor lets spaces and
    footnote marks come first, a trailing one goes, named groups are unnamed, and a space may be
    any run of whitespace or none. What it lets through is tested again, exactly, on the cleaned
    text.
    """
    return re.compile(_relaxed_text(pattern), re.IGNORECASE)


def _relaxed_text(pattern: str) -> str:
    loose = re.sub(r"\(\?P<\w+>", "(?:", pattern)
    loose = re.sub(r"^\^", r"^[\\W\\d_]*", loose)
    loose = re.sub(r"(?<!\\)\$$", "", loose)
    return re.sub(r"(?<!\\) ", r"\\s*", loose)


_SINGLE_CELL = re.compile(r"^([A-Z]+)(\d+)$")


def figures_under_merges(workbook: str, extraction: Extraction,
                         merged: dict[str, list[tuple[tuple[int, int], tuple[int, int]]]]
                         ) -> list[SourceError]:
    """One error per merged range that covers a figure's cell. Excel keeps only the first
    cell of a merge: a figure merged into its neighbour (a month's figure under a merge
    started on the month before, a label merged over the first figure) is no longer in the
    file, and its place loads as blank, as if ICE had printed nothing there. Like a formula
    saved without its value, a figure the file lost is an error, the rest of the file loads."""
    figures: dict[str, dict[int, list[tuple[int, str, str]]]] = {}
    for name, table in extraction.tables.items():
        for constants, columns, length in table.parts:
            sheets = columns.get("sheet") or [constants.get("sheet")] * length
            cells = columns.get("cell_range") or [constants.get("cell_range")] * length
            for sheet, cell in zip(sheets, cells):
                if sheet in merged and cell and (found := _SINGLE_CELL.match(cell)):
                    figures.setdefault(sheet, {}).setdefault(int(found[2]) - 1, []).append(
                        (column_index(found[1]), cell, name))
    errors = []
    for sheet, ranges in merged.items():
        by_row = figures.get(sheet, {})
        for (first_row, first_column), (last_row, last_column) in ranges:
            covered = sorted((row, column, cell, name) for row, cells in by_row.items()
                             if first_row <= row <= last_row
                             for column, cell, name in cells
                             if first_column <= column <= last_column
                             and (row, column) != (first_row, first_column))
            if covered:
                first = cell_name(first_row, first_column)
                span = f"{first}:{cell_name(last_row, last_column)}"
                _, _, cell, name = covered[0]
                errors.append(SourceError(Location(workbook, sheet, cell), (
                    f"table {name}: the cell lies under the merged cells {span}, which keep "
                    f"only {first}'s value: {len(covered)} figure cell(s) of the merge loaded "
                    "as blank (a figure there, if ICE printed one, is no longer in the file)")))
    return errors


@dataclass
class SheetContext:
    """What a sheet's tables need to know about their workbook."""

    workbook: str
    sha256: str
    sheet: str
    fiscal_year: int | None
    # Zero values for months that began after this date are placeholders, not data.
    placeholder_cutoff: date | None = None
    # Dates each table's snapshot; without it tables carry no snapshot date.
    dating: SnapshotDating | None = None

    def for_table(self, table: str, fiscal_year: int | None, caption: str | None
                  ) -> tuple[SheetContext, dict[str, object]]:
        """The context one table is read in, and its snapshot columns: the snapshot date also
        bounds its placeholders when ICE's own words (a caption, a footnote) gave it."""
        if self.dating is None:
            return self, {"snapshot_date": None, "as_of_source": None}
        day, source = self.dating.date_for(table, self.sheet, fiscal_year, caption)
        context = self
        if source in (CAPTION, FOOTNOTE):
            context = replace(self, placeholder_cutoff=day)
        return context, {"snapshot_date": day, "as_of_source": source}

    @property
    def provenance(self) -> dict[str, object]:
        """Columns every row carries: which file (and which version of it) and which sheet."""
        return {"workbook": self.workbook, "sha256": self.sha256, "sheet": self.sheet}


@dataclass
class Extraction:
    """What reading a workbook's tables produced, good and bad."""

    tables: dict[str, TableColumns] = field(default_factory=dict)
    rows_read: int = 0
    rows_loaded: int = 0
    quarantined: list[Quarantined] = field(default_factory=list)
    errors: list[SourceError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    tables_found: list[str] = field(default_factory=list)
    # One line per block of figures in no known table (also among the warnings).
    unrecognised: list[str] = field(default_factory=list)
    # One line per category value stats_tables.toml does not declare, per table block (also
    # among the warnings).
    new_categories: list[str] = field(default_factory=list)
    # Each table read so far, by kind, fiscal year and caption fields -> where it was printed
    # and its cells.
    printed: dict[tuple, tuple[str, tuple]] = field(default_factory=dict)

    def output(self, name: str) -> TableColumns:
        table = self.tables.get(name)
        if table is None:
            table = self.tables[name] = TableColumns()
        return table

    def new_category(self, location: Location, spec: TableSpec, dimension: Dimension,
                     value: object) -> None:
        line = (f"{location}: table {spec.name}: new {dimension.name} {value!r}, none of "
                "stats_tables.toml's, loaded as a category of its own; the add-up checks count "
                "it among the parts")
        self.warnings.append(line)
        self.new_categories.append(line)

    def quarantine(self, sheet: str, row: int, column: int, reason: str) -> None:
        self.rows_read += 1
        self.quarantined.append(Quarantined(sheet, row + 1, cell_name(row, column), reason))



def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _any_filled(values: Iterable[Any]) -> bool:
    """Whether any value is not blank: _blank tested in one loop, spared a call per cell."""
    for value in values:
        if value is not None and (not isinstance(value, str) or value.strip()):
            return True
    return False


def _row_blank(row: Sequence[Any], start: int, stop: int) -> bool:
    return not _any_filled(row[start:stop])


@dataclass(frozen=True)
class Block:
    """Where one table sits: its header row(s), columns [first_column, end_column), data rows."""

    spec: TableSpec
    match: re.Match[str]
    top_row: int
    header_row: int
    first_column: int
    end_column: int
    first_row: int
    end_row: int
    # The header row(s), from first_column to end_column (borrowed when the table has none).
    header_cells: tuple[tuple[Any, ...], ...]

    def header(self, row: int, column: int) -> Any:
        return self.header_cells[row][column - self.first_column]

    @property
    def cell_range(self) -> str:
        return f"{cell_name(self.top_row, self.first_column)}:" \
               f"{cell_name(self.end_row - 1, self.end_column - 1)}"


def read_sheet(grid: Grid, specs: Sequence[TableSpec], layout: Layout, context: SheetContext,
               out: Extraction, scan: SheetScan | None = None, known: bool = True) -> list[str]:
    """Find every table of `specs` on one sheet and add its rows to `out`; the names of the
    tables read.

    On a sheet of no `known` kind, searched for every captioned table, a caption whose header
    is not the table's is taken for a line that looks like one: its figures stay unrecognised,
    without an error.
    """
    scan = scan or scan_sheet(grid)
    anchors = _find_anchors(scan, specs)
    anchor_columns: dict[int, list[int]] = {}
    for row, column, _, _ in anchors:
        anchor_columns.setdefault(row, []).append(column)
    for columns in anchor_columns.values():
        columns.sort()
    blocks = []
    for row, column, spec, match in anchors:
        try:
            blocks.append(_block(grid, spec, match, row, column, anchor_columns, layout,
                                 context))
        except SourceError as error:
            out.errors.append(error)
    headers_seen: dict[str, tuple[tuple[Any, ...], ...]] = {}
    read = []
    for block in blocks:
        block = _borrow_missing_header(grid, block, headers_seen, context, out)
        if not known and not _labels_match(block):
            continue
        out.tables_found.append(f"{block.spec.name}@{context.sheet.strip()}!{block.cell_range}")
        try:
            if block.spec.records is not None:
                _read_records(grid, block, context, out)
            else:
                _read_table(grid, block, layout, context, out)
        except SourceError as error:
            # A table refused before any of its rows were made: its figures are left uncovered,
            # so the generic long table keeps them rather than losing them with the error.
            out.errors.append(error)
            continue
        except RepeatedTable as repeated:
            out.warnings.append(str(repeated))
            continue
        read.append(block)
        headers_seen[block.spec.name] = block.header_cells
    if not anchors and specs and scan.numbers and known:
        # A sheet of a known kind whose figures sit under no caption or header it knows: its
        # tables would be lost to STATS_UNRECOGNISED with a warning alone.
        out.errors.append(SourceError(
            Location(context.workbook, context.sheet),
            "none of its known tables found (a caption or header reworded? see "
            f"stats_tables.toml); its figures are kept in {STATS_UNRECOGNISED}"))
    _keep_uncovered_numbers(grid, scan, read, context, out)
    return [block.spec.name for block in read]


def _labels_match(block: Block) -> bool:
    return all(
        pattern.search(clean_text(block.header(0, block.first_column + offset)) or "")
        for offset, pattern in enumerate(block.spec.label_headers)
    )


def _borrow_missing_header(grid: Grid, block: Block,
                           headers_seen: dict[str, tuple[tuple[Any, ...], ...]],
                           context: SheetContext, out: Extraction) -> Block:
    """A table printed without its header row reuses the header of the one above it.

    ICE repeats one kind of table down a sheet (a month per block) and sometimes drops a block's
    header; its first row then holds figures. Only an identically wide header is borrowed.
    """
    previous = headers_seen.get(block.spec.name)
    if (
        previous is None
        or block.spec.records is not None
        or block.spec.header_rows != 1
        or _labels_match(block)
        or len(previous[0]) != block.end_column - block.first_column
        or not any(_is_number(v) for v in block.header_cells[0])
    ):
        return block
    out.warnings.append(
        f"{context.sheet.strip()}: {block.spec.name} at "
        f"{cell_name(block.header_row, block.first_column)} has no header row; "
        "the header of the same table above it was used"
    )
    return replace(block, header_cells=previous, first_row=block.header_row)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_mark(value: object) -> bool:
    """A stray keystroke such as a backtick: text with no letter, digit or dash."""
    return isinstance(value, str) and bool(value.strip()) and not re.search(r"[\w\-–—]", value)


def _find_anchors(scan: SheetScan, specs: Sequence[TableSpec]):
    # One loose pattern for all the sheet's tables tests every text once; a hit is then placed.
    patterns = tuple((spec.caption or spec.header).pattern for spec in specs)
    anchors = []
    for row, column, text in scan.candidates(_any_anchor(patterns)):
        for spec in specs:
            match = spec.finds(text)
            if match is not None:
                anchors.append((row, column, spec, match))
                break
    return anchors


@cache
def _any_anchor(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """One relaxed pattern finding (at least) what any of `patterns` finds."""
    return re.compile("|".join(f"(?:{_relaxed_text(pattern)})" for pattern in patterns),
                      re.IGNORECASE)


def _block(grid: Grid, spec: TableSpec, match: re.Match[str], top: int, first_column: int,
           anchor_columns: dict[int, list[int]], layout: Layout, context: SheetContext
           ) -> Block:
    """The block of the table whose caption (or header) is at (top, first_column).

    `anchor_columns` holds, for each row, the columns where a table's caption or header was
    found, left to right.
    """
    height = len(grid)
    width = len(grid[top])
    if spec.caption is None:
        # Found by its header: the header row is the anchor row and runs to the first gap.
        header_row = top
        end_column = next(
            (c for c in range(first_column, width) if _blank(grid[top][c])), width
        )
        joined = None
        if spec.records is not None:
            over_two = _list_header_over_two_rows(grid, spec.records, top, first_column,
                                                  end_column)
            if over_two is not None:
                joined, header_row = over_two
                end_column = first_column + len(joined)
    else:
        joined = None
        end_column = next(
            (c for c in range(first_column + 1, width) if not _blank(grid[top][c])), width
        )
        header_row = next(
            (r for r in range(top + 1, min(top + 1 + _HEADER_SEARCH_ROWS, height))
             if not _row_blank(grid[r], first_column, end_column)),
            None,
        )
        if header_row is None:
            raise SourceError(
                Location(context.workbook, context.sheet, cell_name(top, first_column)),
                f"table {spec.name}: no header row below its caption",
            )
    for header in range(header_row, header_row + spec.header_rows):
        end_column = _bounded_by_anchor(anchor_columns, header, first_column, end_column)
    upper_row = header_row
    if spec.caption is not None:
        over_rows = _header_over_rows(grid, spec, match, header_row, first_column, end_column,
                                      layout, context)
        if over_rows is not None:
            # The columns' own headers are on the lowest row: locations name it.
            joined, lowest = over_rows
            for header_row in range(header_row + 1, lowest + 1):
                end_column = _bounded_by_anchor(anchor_columns, header_row, first_column,
                                                end_column)
    first_row = header_row + spec.header_rows
    end_row = first_row
    header_rows = grid[upper_row:first_row]
    while end_row < height:
        if _row_blank(grid[end_row], first_column, end_column):
            resumed = _resumed_after_gap(grid, end_row, first_column, end_column, header_rows,
                                         max(1, len(spec.label_headers)), anchor_columns)
            if resumed is None:
                break
            end_row = resumed
        if _ends_list(spec, grid[end_row][first_column]):
            break  # its figures stay unrecognised, and are reported so
        found = anchor_columns.get(end_row)
        beside = [c for c in found if first_column <= c < end_column] if found else None
        if beside and beside[0] == first_column:
            break  # the next table starts right below
        if beside:
            # A neighbour's caption starting lower down bounds this table on the right.
            end_column = beside[0]
            continue
        end_row += 1
    # A table with nothing to its right would otherwise span the whole sheet width.
    rows = grid[top:end_row]
    while end_column > first_column + 1:
        cells = list(map(itemgetter(end_column - 1), rows))
        if cells.count("") != len(cells) and _any_filled(cells):  # "" is how readers leave a gap
            break
        end_column -= 1
    header_cells = (tuple(joined[:end_column - first_column]),) if joined is not None else tuple(
        tuple(grid[r][first_column:end_column])
        for r in range(header_row, header_row + spec.header_rows)
    )
    return Block(spec, match, top, header_row, first_column, end_column, first_row, end_row,
                 header_cells)


def _bounded_by_anchor(anchor_columns: dict[int, list[int]], row: int, first_column: int,
                       end_column: int) -> int:
    """The table's right edge, brought in to a caption or header found on `row` inside it."""
    for column in anchor_columns.get(row, ()):
        if first_column < column < end_column:
            return column
    return end_column


# A header is read over at most three rows (a fiscal-year band, a group, the columns' own), and
# one empty row may stand between two of them.
_JOINED_HEADER_ROWS = 3


def _header_over_rows(grid: Grid, spec: TableSpec, match: re.Match[str], header_row: int,
                      first_column: int, end_column: int, layout: Layout,
                      context: SheetContext) -> tuple[list[Any], int] | None:
    """A header printed over two or three rows, as the one row the single-row form prints, and
    the row of the columns' own headers; None when the rows under the caption are not one
    header.

    A later release may print a group over several columns (`Month` over the months, `FY2026`
    over the measures, merged: stored in its leftmost cell, the others empty), perhaps under a
    band over the groups (`FY2026` over `Month`), with the columns' own headers on the row
    below, a header merged down over the rows (stored in the top cell: the label header, the
    fiscal-year total), or a caption-like note on the row above the header; an empty row may
    part two of those rows. A column then takes its lowest cell; a row-label column whichever
    of its cells reads as its label header.

    Rows are joined only while the one below holds no figure and no row label, and the lowest
    heads a column the row above leaves without a header: a real first row of figures, or a
    header over figures, is read as before. The groups are dropped, as the single-row form
    never prints them, so where they say what the headers under them do not (the same header
    under two groups, a fiscal year other than the table's) the rows are not joined and the
    table is refused as before, with the error at its first header cell without a header of
    its own.
    """
    if spec.header_rows != 1 or spec.records is not None:
        return None
    rows, r, parted = [header_row], header_row + 1, False
    while len(rows) < _JOINED_HEADER_ROWS and r < len(grid):
        cells = grid[r][first_column:end_column]
        if not _any_filled(cells) and not parted:
            parted, r = True, r + 1
            continue
        if not _under_a_header(spec, cells):
            break
        rows.append(r)
        r += 1
    for count in range(len(rows), 1, -1):
        joined = _joined_header(spec, match, [grid[r][first_column:end_column]
                                              for r in rows[:count]], layout, context)
        if joined is not None:
            return joined, rows[count - 1]
    return None


def _under_a_header(spec: TableSpec, cells: Sequence[Any]) -> bool:
    """Whether a row may continue the header above it: something printed, no figure, and no row
    label (a label column blank or holding its label header)."""
    labels = len(spec.label_headers)
    return _any_filled(cells) and not any(map(_is_figure, cells[labels:])) and all(
        not (text := clean_text(cell)) or pattern.search(text)
        for pattern, cell in zip(spec.label_headers, cells))


def _joined_header(spec: TableSpec, match: re.Match[str], rows: list[Sequence[Any]],
                   layout: Layout, context: SheetContext) -> list[Any] | None:
    """The header rows `rows` (top first) as one, or None where they are not one header."""
    labels = len(spec.label_headers)
    joined: list[Any] = []
    dropped: list[str] = []
    for offset, pattern in enumerate(spec.label_headers):
        texts = [clean_text(cells[offset]) or "" for cells in rows]
        heading = next((k for k, text in enumerate(texts) if pattern.search(text)), None)
        if heading is None:
            return None
        joined.append(rows[heading][offset])
        dropped.extend(text for text in texts[:heading] if text)
    lowest = len(rows) - 1
    # Each row above the lowest: the column of its group over the current one (its last
    # printed cell, carried right as a merge is).
    carried: list[int | None] = [None] * lowest
    heads_anew = False
    # Each lowest header (as read: any case) -> the groups over it.
    groups: dict[str, tuple] = {}
    for index in range(labels, len(rows[0])):
        column = [cells[index] for cells in rows]
        for k in range(lowest):
            if not _blank(column[k]):
                carried[k] = index
        own = max((k for k, cell in enumerate(column) if not _blank(cell)), default=None)
        if own is None or own < lowest:
            joined.append(column[0] if own is None else column[own])
            continue
        heads_anew = heads_anew or _blank(column[lowest - 1])
        over = tuple(carried)
        if groups.setdefault(clean_text(column[own]).casefold(), over) != over:
            return None
        dropped.extend(clean_text(rows[k][group]) for k, group in enumerate(over)
                       if group is not None)
        joined.append(column[own])
    if not heads_anew:
        return None
    named = match.groupdict().get("fiscal_year")
    try:
        fiscal_year = parse_fiscal_year(named) if named else context.fiscal_year
    except CellValueError:
        return None  # the caption's own error is reported with the table
    if any(fiscal_year_in(layout.sheet_fiscal_year, text) not in (None, fiscal_year)
           for text in dropped):
        return None
    return joined


def _list_header_over_two_rows(grid: Grid, records: RecordsSpec, anchor: int, first_column: int,
                               end_column: int) -> tuple[list[Any], int] | None:
    """The header of a list found by its header cell (`Name` at row `anchor`), printed over two
    rows, as one row, and the row of the columns' own headers; None where the anchor's row is
    the whole header.

    ICE's lists print groups over their columns (`FY26 ADP: Criminality` over `Male Crim` ...)
    on the row above the header, which the single row reads without. A later release may merge
    a header down over both rows (stored in the upper cell: `Name` and the facility columns, or
    the ALOS column alone), or print a group that completes its columns' names (`ALOS` over
    `FY26`). A column then takes its lower cell, or its upper one where the lower is empty; a
    lower cell naming no column the layout knows takes its group's words before it, where
    together they name one (`ALOS FY26`). The two rows are read as one only when neither holds
    a figure and together they head more columns, or more of the required ones, than the
    anchor's row alone: every archived list reads as before.
    """
    for upper in (anchor - 1, anchor):
        lower = upper + 1
        if upper < 0 or lower >= len(grid):
            continue
        high, low = grid[upper], grid[lower]
        if any(map(_is_figure, high[first_column:])) or any(map(_is_figure, low[first_column:])):
            continue
        if upper == anchor and not _blank(low[first_column]):
            continue  # the anchor has a header of its own below: it is not merged down
        joined, group = [], None
        for c in range(first_column, max(len(high), len(low))):
            above = high[c] if c < len(high) else None
            below = low[c] if c < len(low) else None
            if not _blank(above):
                group = clean_text(above)
            if _blank(below):
                if _blank(above):
                    break
                joined.append(above)
                continue
            text = clean_text(below)
            named = f"{group} {text}" if group is not None else text
            joined.append(named if not records.knows(records.column_name(text))
                          and records.knows(records.column_name(named)) else below)
        alone = [clean_text(cell) or "" for cell in grid[anchor][first_column:end_column]]
        if len(joined) > len(alone) or _required_found(records, joined) > \
                _required_found(records, alone):
            return joined, lower
    return None


def _required_found(records: RecordsSpec, headers: Sequence[Any]) -> int:
    names = {records.column_name(clean_text(header) or "") for header in headers}
    return sum(name in names for name in records.required)


def _ends_list(spec: TableSpec, first_cell: object) -> bool:
    end_rows = spec.records.end_rows if spec.records is not None else None
    return end_rows is not None and end_rows.search(clean_text(first_cell) or "") is not None


# How many empty rows may part one table: a later release may space out its groups.
_GAP_ROWS = 2


def _resumed_after_gap(grid: Grid, gap: int, first_column: int, end_column: int,
                       header_rows: Grid, label_columns: int,
                       anchor_columns: dict[int, list[int]]) -> int | None:
    """The row a table resumes at after one or two empty rows, or None where it ends.

    It resumes only at a row that reads as one of its own: no table's caption in its columns, a
    row label, and a figure under a printed header. A note under a table has no figure; the
    next table has its caption.
    """
    for r in range(gap + 1, min(gap + 1 + _GAP_ROWS, len(grid))):
        row = grid[r]
        if _row_blank(row, first_column, end_column):
            continue
        if any(first_column <= c < end_column for c in anchor_columns.get(r, ())):
            return None
        labels = row[first_column:first_column + label_columns]
        if not any(isinstance(label, str) and label.strip() for label in labels):
            return None
        figures = [c for c in range(first_column + label_columns, end_column)
                   if _is_figure(row[c])]
        headed = all(any(not _blank(header[c]) for header in header_rows) for c in figures)
        return r if figures and headed else None
    return None


def _is_figure(value: object) -> bool:
    """A number, or text that reads as one ("1,234", "-")."""
    if _is_number(value):
        return True
    if not isinstance(value, str) or not value.strip():
        return False
    try:
        return parse_number(value) is not None
    except CellValueError:
        return False


class _Column(NamedTuple):
    index: int
    target: str  # output table
    key: object  # the column dimension's value, or the measure name
    header: object  # raw header, kept for months whose year depends on the row


def _read_table(grid: Grid, block: Block, layout: Layout, context: SheetContext,
                out: Extraction) -> None:
    spec = block.spec
    where = _locator(context)
    constants, fiscal_year = _caption_fields(block, layout, context)
    _claim(grid, block, fiscal_year, constants, context, out)
    context, dated = context.for_table(spec.name, fiscal_year, block.match.string)
    label_count = len(spec.label_headers)
    for offset, pattern in enumerate(spec.label_headers):
        column = block.first_column + offset
        text = clean_text(block.header(0, column)) or ""
        if not pattern.search(text):
            raise SourceError(
                where(block.header_row, column),
                f"table {spec.name}: unexpected header {text!r} over the row labels "
                f"(expected /{pattern.pattern}/)",
            )
    columns = _value_columns(grid, block, layout, fiscal_year, where, out.warnings)
    columns = _without_misplaced_columns(grid, block, columns, fiscal_year, context, out)
    if not columns:
        raise SourceError(where(block.header_row, block.first_column),
                          f"table {spec.name}: no value columns under the header")
    dims = [layout.dimensions[name] for name in spec.rows]
    column_dim = layout.dimensions[spec.columns] if spec.columns else None
    if column_dim is not None:
        for column in columns:
            if column_dim.is_new(column.key):
                out.new_category(where(block.header_row, column.index), spec, column_dim,
                                 column.key)
    _declare_outputs(out, spec, dims, column_dim, constants)
    indexes = [c.index for c in columns]
    value_rows = [
        r for r in range(block.first_row, block.end_row)
        if _any_filled(map(grid[r].__getitem__, indexes))
    ]
    # Text under the last row of figures is a note (a source line, a caveat), not a table row.
    last = value_rows[-1] + 1 if value_rows else block.first_row
    valued = set(value_rows)
    group_labels = {r: clean_text(grid[r][block.first_column])
                    for r in range(block.first_row, last)} if spec.group_rows else None
    labels = _RowLabels(spec, dims, group_labels)
    announced: set[tuple[str, object]] = set()
    # Each row's dimension values -> the row that printed them first.
    rows_seen: dict[tuple, int] = {}
    block_constants = {**constants, **context.provenance, "fiscal_year": fiscal_year, **dated}
    emit = (_MeasureRows(spec, dims, columns, block, context) if spec.measures
            else _LongRows(spec, dims, column_dim, columns, context))
    for r in range(block.first_row, last):
        raw = list(map(clean_text, grid[r][block.first_column:block.first_column + label_count]))
        if r not in valued and raw.count(None) == label_count:
            continue  # an empty row parting the table
        try:
            row_dims = labels.resolve(raw, has_values=r in valued, row=r)
        except CellValueError as problem:
            # One quarantined row per output row it would have made: a row of measures is one
            # output row, a long table makes one per value.
            for c in columns[:1] if spec.measures else columns:
                out.quarantine(context.sheet, r, c.index, f"{spec.name}: {problem}")
            continue
        if row_dims is None:  # a group heading
            continue
        key = tuple(row_dims.values())
        first = rows_seen.setdefault(key, r)
        if first != r:
            # Two figures for one place in the table (a row pasted twice, a stale copy hidden
            # below): which is ICE's is not for the reader to guess, so the later is kept aside.
            for c in columns[:1] if spec.measures else columns:
                out.quarantine(context.sheet, r, c.index,
                               f"{spec.name}: the row {_shown(row_dims)} again, first at row "
                               f"{first + 1}: two figures for one place; this one not loaded")
            continue
        if labels.accepting:
            for dim, value, offset in labels.new_categories(row_dims):
                if (dim.name, value) not in announced:
                    announced.add((dim.name, value))
                    out.new_category(where(r, block.first_column + offset), spec, dim, value)
        emit.row(grid[r], r, row_dims, out)
    emit.finish(block_constants, out)
    if labels.offices_as_printed:
        out.warnings.append(
            f"{context.sheet.strip()}: {spec.name}: field office(s) not in the project's table "
            f"kept as printed: {', '.join(sorted(labels.offices_as_printed))}")


def _fiscal_year_of(month: date) -> int:
    return month.year + 1 if month.month >= 10 else month.year


def _shown(values: dict[str, object]) -> str:
    return ", ".join(f"{name} {value}" for name, value in values.items())


def _without_misplaced_columns(grid: Grid, block: Block, columns: list[_Column],
                              fiscal_year: int | None, context: SheetContext,
                              out: Extraction) -> list[_Column]:
    """The value columns but those whose header repeats an earlier one's (a month, an agency,
    a measure or the fiscal-year total printed twice: a column copied, hidden or not), and, in
    a table of one fiscal year's months (it has a fiscal-year total; the monthly bond table
    runs over twelve months of two years), a month of another year ("Oct 2026" beside FY2026's
    months: a typo, or the next year begun): two figures for one place, or a figure filed
    under the wrong year. Their figures are quarantined, each with its cell."""
    spec = block.spec
    first: dict[tuple, int] = {}
    kept = []
    for column in columns:
        key = column.key if column.key is not None or column.target != spec.name \
            else clean_text(column.header)
        where = first.setdefault((column.target, repr(key)), column.index)
        header = clean_text(column.header)
        if where != column.index:
            reason = (f"{spec.name}: the column {header!r} again, first at "
                      f"{cell_name(block.header_row, where)}: two figures for one place; this "
                      "one not loaded")
        elif spec.totals_table is not None and column.key.__class__ is date \
                and fiscal_year is not None and _fiscal_year_of(column.key) != fiscal_year:
            reason = (f"{spec.name}: the column {header!r} is a month of "
                      f"FY{_fiscal_year_of(column.key)}, not of the table's FY{fiscal_year}; "
                      "not loaded")
        else:
            kept.append(column)
            continue
        for r in range(block.first_row, block.end_row):
            if not _blank(grid[r][column.index]):
                out.quarantine(context.sheet, r, column.index, reason)
    return kept


class RepeatedTable(Exception):
    """A table printed again with the same figures: the copy is not read (a warning)."""


def _claim(grid: Grid, block: Block, fiscal_year: int | None, constants: dict[str, object],
           context: SheetContext, out: Extraction) -> None:
    """Refuse a table printed a second time: the same kind, fiscal year and caption fields (a
    copy of a sheet, hidden or not; a block pasted twice; the FY2024 court appearances printed
    on both ATD sheets of the 2024-11-15 release) would count its figures twice. The copy's
    figures are left to STATS_UNRECOGNISED; a copy whose cells differ is an error."""
    key = (block.spec.name, fiscal_year, tuple(sorted(constants.items(), key=repr)))
    cells = tuple(tuple(grid[r][block.first_column:block.end_column])
                  for r in range(block.header_row, block.end_row))
    here = f"{context.sheet.strip()}!{cell_name(block.top_row, block.first_column)}"
    first, first_cells = out.printed.setdefault(key, (here, cells))
    if first == here:
        return
    said = (f"table {block.spec.name} (FY{fiscal_year}) is printed again at {here}, first at "
            f"{first}")
    if cells == first_cells:
        raise RepeatedTable(f"{said}, figure for figure; the copy is not loaded again (kept in "
                            f"{STATS_UNRECOGNISED})")
    raise SourceError(
        Location(context.workbook, context.sheet, cell_name(block.top_row, block.first_column)),
        f"{said}, with other figures; the first is loaded, this one is kept in "
        f"{STATS_UNRECOGNISED}: read both before trusting either")


def _locator(context: SheetContext):
    def where(row: int, column: int) -> Location:
        return Location(context.workbook, context.sheet, cell_name(row, column))

    return where


def _caption_fields(block: Block, layout: Layout, context: SheetContext):
    constants: dict[str, object] = {}
    fiscal_year = context.fiscal_year
    for name, text in block.match.groupdict().items():
        try:
            if name == "fiscal_year":
                if text:
                    fiscal_year = parse_fiscal_year(text)
                continue
            dimension = layout.dimensions.get(name)
            if dimension is not None and dimension.kind == "month":
                constants[name] = fiscal_month(text, fiscal_year or 0)
            else:
                constants[name] = dimension.canonical(clean_text(text)) if dimension else text
        except CellValueError as problem:
            raise SourceError(
                Location(context.workbook, context.sheet,
                         cell_name(block.top_row, block.first_column)),
                f"table {block.spec.name}: caption: {problem}",
            ) from None
    return constants, fiscal_year


def _value_columns(grid: Grid, block: Block, layout: Layout, fiscal_year: int | None,
                   where, warnings: list[str]) -> list[_Column]:
    spec = block.spec
    column_dim = layout.dimensions[spec.columns] if spec.columns else None
    headers = _headers(block)
    data_rows = range(block.first_row, block.end_row)

    def has_data(index: int) -> bool:
        return any(not _blank(grid[r][index]) and not _is_mark(grid[r][index]) for r in data_rows)

    start = block.first_column + len(spec.label_headers)
    for index in range(start, block.end_column):
        if index in headers:
            continue
        for r in data_rows:
            if _is_mark(grid[r][index]):
                warnings.append(f"{where(r, index)}: stray mark {grid[r][index]!r} ignored")
        if has_data(index):
            # A header merged over several columns is stored in its leftmost cell, while the
            # figures may sit under another: the figures take the header nearest on their left.
            left = max((i for i in headers if i < index), default=None)
            if left is None or has_data(left):
                raise SourceError(where(block.header_row, index),
                                  f"table {spec.name}: values in a column with no header")
            headers[index] = headers.pop(left)
    columns: list[_Column] = []
    for index in sorted(headers):
        header = headers[index]
        text = header if isinstance(header, str) else None
        if text is not None and any(p.search(text) for p in spec.skip_columns):
            continue
        try:
            target, key = _column_kind(spec, column_dim, header, fiscal_year, layout)
            if column_dim is not None and column_dim.is_new(key) and not has_data(index):
                raise CellValueError(f"unrecognised {column_dim.name} label {header!r}")
        except CellValueError as problem:
            if not has_data(index):
                # A note beside the header, or a column not yet filled: no figure to lose.
                warnings.append(f"{where(block.header_row, index)}: table {spec.name}: "
                                f"header over no figures ignored ({problem})")
                continue
            raise SourceError(where(block.header_row, index),
                              f"table {spec.name}: unexpected column header: {problem}") from None
        columns.append(_Column(index, target, key, header))
    return columns


def _column_kind(spec: TableSpec, column_dim: Dimension | None, header: object,
                 fiscal_year: int | None, layout: Layout) -> tuple[str, object]:
    """_classify, remembered per table kind: every release prints the same headers."""
    read = spec.headers_read.get((header, fiscal_year))
    if read is None:
        try:
            read = _classify(spec, column_dim, header, fiscal_year, layout)
        except CellValueError as problem:
            read = detached(problem)
        spec.headers_read[(header, fiscal_year)] = read
    if read.__class__ is CellValueError:
        raise CellValueError(*read.args)
    return read


def _headers(block: Block) -> dict[int, object]:
    """Header of each column: the cell's text, or (year, month, point) for half-month headers."""
    start = block.first_column + len(block.spec.label_headers)
    if block.spec.header_rows == 1:
        headers = {}
        for index in range(start, block.end_column):
            value = block.header(0, index)
            if not _blank(value):
                headers[index] = value if not isinstance(value, str) else clean_text(value)
        return headers
    headers: dict[int, object] = {}
    year, month = None, None
    for index in range(start, block.end_column):
        # Years and month names are printed once over merged cells: carry them rightwards.
        printed_year = _year_text(block.header(0, index))
        raw_month = block.header(1, index)
        printed_month = raw_month if isinstance(raw_month, date) else clean_text(raw_month)
        own_year = _month_index(printed_month) and month_and_year(printed_month)[1]
        # A month printed with its year (a date, "January 2023") dates its column; a year row
        # saying otherwise leaves the column without one, refused by _classify.
        conflict = bool(own_year) and printed_year not in (None, str(own_year))
        if own_year:
            printed_year = str(own_year)
        if printed_month is not None and month is not None and printed_year is None \
                and _month_index(printed_month) < _month_index(month) and year is not None \
                and year.isdecimal():
            # January after December with no new year printed: the year still turned.
            year = str(int(year) + 1)
        year = printed_year or year
        month = printed_month or month
        point = clean_text(block.header(2, index))
        if point is not None:
            headers[index] = (None if conflict else year, month, point)
    return headers


def _year_text(raw: object) -> str | None:
    """A year header as digits: a year typed as text with a separator ("2,025") or read as a
    float (2025.0) is still the year; anything else stays as printed, to be judged later."""
    text = clean_text(raw)
    if text is None or text.isdecimal():
        return text
    try:
        number = parse_number(text)
    except CellValueError:
        return text
    return str(int(number)) if number is not None and number.is_integer() else text


def _month_index(header: object) -> int:
    try:
        return month_and_year(header)[0]
    except CellValueError:
        return 0


def _classify(spec: TableSpec, column_dim: Dimension | None, header: object,
              fiscal_year: int | None, layout: Layout) -> tuple[str, object]:
    """The output table a column's figures go to, and the value its header gives them."""
    if spec.measures:
        text = clean_text(header) or ""
        for name, pattern in spec.measures:
            if pattern.search(text):
                return spec.name, name
        raise CellValueError(f"{text!r} is none of {', '.join(n for n, _ in spec.measures)}")
    assert column_dim is not None
    if column_dim.kind == "month":
        if isinstance(header, str) and layout.fiscal_year_total.search(header):
            if spec.totals_table is None:
                raise CellValueError(f"{header!r} (a fiscal-year total) has no totals table")
            named = fiscal_year_in(layout.sheet_fiscal_year, header)
            if named is not None and spec.month_fiscal_year_from is None \
                    and named != fiscal_year:
                # Another year's total beside the months (a comparison) is no total of theirs.
                raise CellValueError(f"{header!r} is a total of FY{named}, not of the table's "
                                     f"FY{fiscal_year}")
            return spec.totals_table, None
        if spec.month_fiscal_year_from is None:
            return spec.name, fiscal_month(header, fiscal_year or 0)
        month_and_year(header)  # reject a non-month header now; its row gives the year
        return spec.name, None
    if column_dim.kind == "half_month":
        year, month, point = header
        if year is None or month is None or point.casefold() not in ("mid", "end"):
            printed = ", ".join("no year" if part is None else str(part) for part in header)
            raise CellValueError(f"expected a year, month and 'mid'/'end', found {printed}")
        return spec.name, (date(parse_fiscal_year(year), month_and_year(month)[0], 1),
                           point.casefold())
    return spec.name, column_dim.canonical(clean_text(header))


def _declare_outputs(out: Extraction, spec: TableSpec, dims: list[Dimension],
                     column_dim: Dimension | None, constants: dict[str, object]) -> None:
    leading = [("workbook", "string"), ("sha256", "string"), ("fiscal_year", "int32"),
               *SNAPSHOT_COLUMNS]
    leading += [(name, _constant_type(value)) for name, value in constants.items()]
    leading += [(d.name, d.arrow_type) for d in dims]
    trailing = [("sheet", "string"), ("cell_range", "string")]
    if spec.measures:
        out.output(spec.name).declare(
            leading + [(name, "float64") for name, _ in spec.measures] + trailing)
        return
    assert column_dim is not None and spec.value is not None
    if column_dim.kind == "half_month":
        keyed = [("month", "date32"), ("point", "string")]
    else:
        keyed = [(column_dim.name, column_dim.arrow_type)]
    out.output(spec.name).declare(leading + keyed + [(spec.value, "float64")] + trailing)
    if spec.totals_table:
        out.output(spec.totals_table).declare(leading + [(spec.value, "float64")] + trailing)


def _constant_type(value: object) -> str:
    if isinstance(value, int):
        return "int32"
    if isinstance(value, date):
        return "date32"
    return "string"


class _RowLabels:
    """Turns a row's label cells into its dimension values, remembering groups and merged cells.

    `group_labels` holds, for a table of labelled groups, each row's first label cell (cleaned),
    by row: a label neither dimension knows is told a new group from a new inner value by the
    rows below it.
    """

    def __init__(self, spec: TableSpec, dims: list[Dimension],
                 group_labels: dict[int, str | None] | None = None):
        self.spec = spec
        self.dims = dims
        self.group: object = None
        # The inner values the open group has printed so far.
        self.inner_seen: set[object] = set()
        self.group_labels = group_labels or {}
        # Group labels taken for field offices the project's table does not know.
        self.offices_as_printed: set[str] = set()
        self.previous: list[str | None] = [None] * len(dims)
        # The dimensions that may take a new category, with the label column each is read from.
        self.accepting = [(dim, min(i, len(spec.label_headers) - 1))
                          for i, dim in enumerate(dims) if dim.new_values is not None]

    def new_categories(self, row_dims: dict[str, object]):
        """(dimension, value, label column offset) of each new category the row names."""
        for dim, offset in self.accepting:
            value = row_dims[dim.name]
            if value is not None and dim.is_new(value):
                yield dim, value, offset

    def _opens_group(self, label: str, row: int) -> bool:
        """Whether a label of a labelled-groups table opens a group of the outer dimension.

        A label neither dimension declares (a field office the project lacks, an agency or a
        class ICE adds) opens a group when the open group has no inner row yet (or no group is
        open), or when an inner value the open group already printed follows it before the next
        known group: that repetition starts a group. Otherwise it is a new inner value of the
        open group.
        """
        outer, inner = self.dims
        if outer.recognises(label):
            return True
        if inner.recognises(label) or (self.inner_seen
                                       and not self._inner_repeats_below(row)):
            return False
        if outer.kind == "field_office":
            # Kept as printed, not quarantined with its figures: ICE has opened offices, and
            # printed sub-offices.
            self.offices_as_printed.add(label)
        return True

    def _inner_repeats_below(self, row: int) -> bool:
        outer, inner = self.dims
        for below, label in self.group_labels.items():
            if below <= row or label is None:
                continue
            if outer.recognises(label):
                return False
            try:
                if inner.canonical(label) in self.inner_seen:
                    return True
            except CellValueError:
                continue
        return False

    def resolve(self, raw: list[str | None], has_values: bool,
                row: int = -1) -> dict[str, object] | None:
        spec, dims = self.spec, self.dims
        if spec.group_rows is not None:
            outer, inner = dims
            label = raw[0]
            if spec.group_rows == "labelled" and label is not None \
                    and self._opens_group(label, row):
                self.group = label if label in self.offices_as_printed \
                    else outer.canonical(label)
                self.inner_seen = set()
                return {outer.name: self.group, inner.name: spec.blank_labels.get(inner.name,
                                                                                    "Total")}
            if spec.group_rows == "empty" and not has_values:
                self.group = outer.canonical(label)
                return None
            if label is None:
                raise CellValueError("figures without a row label")
            if self.group is None:
                raise CellValueError(f"row label {label!r} comes before any {outer.name} group")
            value = inner.canonical(label)
            self.inner_seen.add(value)
            return {outer.name: self.group, inner.name: value}
        unlabelled = raw.count(None) == len(raw)
        if spec.fill_down:
            raw = [self.previous[i] if text is None and dim.name in spec.fill_down else text
                   for i, (dim, text) in enumerate(zip(dims, raw))]
            self.previous = raw
        key = tuple(raw)
        values = spec.labels_read.get(key)
        if values is None:
            values = {dim.name: spec.blank_labels.get(dim.name) if text is None
                      else dim.canonical(text) for dim, text in zip(dims, raw)}
            spec.labels_read[key] = values
        if has_values and unlabelled:
            raise CellValueError("figures without a row label")
        return values


class _LongRows:
    """The rows one long table block makes, one per value, kept as a list per column."""

    def __init__(self, spec: TableSpec, dims: list[Dimension], column_dim: Dimension,
                 columns: list[_Column], context: SheetContext):
        self.spec, self.kind, self.columns, self.context = spec, column_dim.kind, columns, context
        self.dim_names = tuple(d.name for d in dims)
        self.key_name = column_dim.name
        main = [c for c in columns if c.target == spec.name]
        totals = [c for c in columns if c.target != spec.name]
        # Figures are read main columns first, then fiscal-year totals, in one pass per row.
        self.indexes = [c.index for c in main + totals]
        self.main_count = len(main)
        self.keys = [c.key for c in main]
        self.letters = [column_letters(c.index) for c in main]
        self.total_letters = [column_letters(c.index) for c in totals]
        cutoff = context.placeholder_cutoff
        # Where a zero is a placeholder: columns for periods wholly after the data-as-of date.
        self.late = [] if spec.month_fiscal_year_from else [
            j for j, key in enumerate(self.keys) if _after_cutoff(self.kind, key, cutoff)]
        self.main_keys = self._key_columns(self.keys)
        self.out = {name: [] for name in (*self.dim_names, *self.main_keys, "value", "cell_range")}
        self.totals_out = {name: [] for name in (*self.dim_names, "value", "cell_range")}
        self.placeholders = 0

    def _key_columns(self, keys: list) -> dict[str, list]:
        """The output columns the column headers' keys fill: a month, or a month and a point."""
        if self.kind == "half_month":
            return {"month": [month for month, _ in keys], "point": [point for _, point in keys]}
        return {self.key_name: keys}

    def row(self, cells: Sequence[Any], r: int, row_dims: dict[str, object],
            out: Extraction) -> None:
        if not self.spec.month_fiscal_year_from:
            try:
                found = [raw if raw.__class__ is float else parse_number(raw)
                         for raw in map(cells.__getitem__, self.indexes)]
            except CellValueError:
                pass  # read again cell by cell below, to quarantine just the bad ones
            else:
                main = found[:self.main_count]
                if self.late and 0.0 in main:
                    for j in self.late:
                        if main[j] == 0:
                            main[j] = None
                            self.placeholders += 1
                self._add(row_dims, r, self.main_keys, main, self.letters,
                          found[self.main_count:], self.total_letters)
                return
        self._row_by_cell(cells, r, row_dims, out)

    def _row_by_cell(self, cells: Sequence[Any], r: int, row_dims: dict[str, object],
                     out: Extraction) -> None:
        spec, kind, cutoff = self.spec, self.kind, self.context.placeholder_cutoff
        # Month headers whose year depends on the row ("Oct" of the row's fiscal year).
        row_year = row_dims[spec.month_fiscal_year_from] if spec.month_fiscal_year_from else None
        keys, values, letters, total_values, total_letters = [], [], [], [], []
        for column in self.columns:
            raw = cells[column.index]
            try:
                value = raw if raw.__class__ is float else parse_number(raw)
                key = column.key
                if key is None and row_year is not None and column.target == spec.name:
                    # One header serves every row's year: only its month is read ("Oct 2025"
                    # or a date over an FY2024 row is that row's October).
                    key = month_of_fiscal_year(month_and_year(column.header)[0], row_year)
            except CellValueError as problem:
                out.quarantine(self.context.sheet, r, column.index, f"{spec.name}: {problem}")
                continue
            if column.target != spec.name:
                total_values.append(value)
                total_letters.append(column_letters(column.index))
                continue
            if value == 0 and cutoff is not None and _after_cutoff(kind, key, cutoff):
                value = None
                self.placeholders += 1
            keys.append(key)
            values.append(value)
            letters.append(column_letters(column.index))
        self._add(row_dims, r, self._key_columns(keys), values, letters, total_values,
                  total_letters)

    def _add(self, row_dims: dict[str, object], r: int, keys: dict[str, list], values: list,
             letters: list[str], total_values: list, total_letters: list[str]) -> None:
        number = str(r + 1)
        for output, figures, columns in ((self.out, values, letters),
                                         (self.totals_out, total_values, total_letters)):
            if not figures:
                continue
            for name in self.dim_names:
                output[name].extend([row_dims[name]] * len(figures))
            output["value"].extend(figures)
            output["cell_range"].extend([column + number for column in columns])
        for name, column_keys in keys.items():
            self.out[name].extend(column_keys)

    def finish(self, constants: dict[str, object], out: Extraction) -> None:
        spec = self.spec
        columns = {spec.value if name == "value" else name: values
                   for name, values in self.out.items()}
        out.output(spec.name).add(constants, columns, len(self.out["value"]))
        totals = self.totals_out
        if spec.totals_table:
            out.output(spec.totals_table).add(
                constants, {**{name: totals[name] for name in self.dim_names},
                            spec.value: totals["value"], "cell_range": totals["cell_range"]},
                len(totals["value"]))
        loaded = len(self.out["value"]) + len(totals["value"])
        out.rows_read += loaded
        out.rows_loaded += loaded
        if self.placeholders:
            out.warnings.append(
                f"{self.context.sheet.strip()}: {spec.name}: {self.placeholders} zero value(s) "
                f"for periods after the data-as-of date {self.context.placeholder_cutoff} "
                "loaded as NULL (placeholders)"
            )


class _MeasureRows:
    """The rows one block of measures makes, one per sheet row, kept as a list per column."""

    def __init__(self, spec: TableSpec, dims: list[Dimension], columns: list[_Column],
                 block: Block, context: SheetContext):
        self.spec, self.columns, self.context = spec, columns, context
        self.dim_names = tuple(d.name for d in dims)
        self.indexes = [c.index for c in columns]
        # Each measure's one column (a repeated header's column is quarantined before).
        self.positions = {c.key: j for j, c in enumerate(columns)}
        self.first_letters = column_letters(block.first_column)
        self.last_letters = column_letters(columns[-1].index)
        self.out = {name: [] for name in (*self.dim_names, *self.positions, "cell_range")}
        self.rows = 0

    def row(self, cells: Sequence[Any], r: int, row_dims: dict[str, object],
            out: Extraction) -> None:
        try:
            found = list(map(parse_number, map(cells.__getitem__, self.indexes)))
        except CellValueError:
            for column in self.columns:  # the first bad figure quarantines the row
                try:
                    parse_number(cells[column.index])
                except CellValueError as problem:
                    out.quarantine(self.context.sheet, r, column.index,
                                   f"{self.spec.name}: {problem}")
                    return
        output = self.out
        for name in self.dim_names:
            output[name].append(row_dims[name])
        for name, j in self.positions.items():
            output[name].append(found[j])
        number = r + 1
        output["cell_range"].append(
            f"{self.first_letters}{number}:{self.last_letters}{number}")
        self.rows += 1

    def finish(self, constants: dict[str, object], out: Extraction) -> None:
        out.output(self.spec.name).add(constants, self.out, self.rows)
        out.rows_read += self.rows
        out.rows_loaded += self.rows


def _after_cutoff(kind: str, key: object, cutoff: date | None) -> bool:
    """Whether a month (or half month) column lies wholly after the data-as-of date."""
    if cutoff is None:
        return False
    if kind == "month":
        return key > cutoff
    if kind == "half_month":
        month, point = key
        return (month.replace(day=15) if point == "mid" else _month_end(month)) > cutoff
    return False


def _month_end(first: date) -> date:
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return following - timedelta(days=1)


def _read_records(grid: Grid, block: Block, context: SheetContext, out: Extraction) -> None:
    spec = block.spec
    records = spec.records
    assert records is not None
    names: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for index in range(block.first_column, block.end_column):
        text = clean_text(block.header(0, index)) or ""
        name = records.column_name(text)
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:  # a header printed twice: both columns kept, neither overwritten
            out.warnings.append(f"{context.sheet.strip()}: {spec.name}: the header {text!r} "
                                f"again at {cell_name(block.header_row, index)}; kept as "
                                f"{name}_{seen[name]}")
            name = f"{name}_{seen[name]}"
        names.append((index, name))
    _claim(grid, block, context.fiscal_year, {}, context, out)
    missing = [name for name in records.required if name not in {n for _, n in names}]
    if missing:
        raise SourceError(
            Location(context.workbook, context.sheet,
                     f"{cell_name(block.header_row, block.first_column)}:"
                     f"{cell_name(block.header_row, block.end_column - 1)}"),
            f"table {spec.name}: header lacks {', '.join(missing)}",
        )
    block_rows = grid[block.first_row:block.end_row]
    block_cells = {index: list(map(itemgetter(index), block_rows)) for index, _ in names}
    kinds = {name: _record_kind(name, block_cells[index], records) for index, name in names}
    table = out.output(spec.name)
    _, dated = context.for_table(spec.name, context.fiscal_year, None)
    table.declare([("workbook", "string"), ("sha256", "string"), ("fiscal_year", "int32"),
                   *SNAPSHOT_COLUMNS, *((name, kinds[name]) for _, name in names),
                   *((name, "float64") for name in records.sums),
                   ("notes", "string"), ("sheet", "string"), ("cell_range", "string")])
    rest = [index for index, _ in names[1:]]
    rows = [r for r in range(block.first_row, block.end_row)
            if _any_filled(map(grid[r].__getitem__, rest))]
    count = rows[-1] + 1 - block.first_row if rows else 0
    # Read a column at a time; a row with a cell its column cannot hold is quarantined, naming
    # the first such cell from the left.
    columns: dict[str, list] = {}
    bad: dict[int, tuple[int, str, CellValueError]] = {}
    notes: dict[int, list[str]] = {}
    for index, name in names:
        cells = block_cells[index][:count]
        values, problems = _column_values(
            _record_reader(kinds[name], records.zero_pad.get(name)), cells)
        for position, problem in problems.items():
            if kinds[name] == "date32" or isinstance(problem, ExcelErrorValue):
                # A word where a date belongs ("New Facility", "N/A") says why there is none; an
                # error value (#N/A) where a figure belongs is kept with the record's other cells.
                notes.setdefault(position, []).append(f"{name}: {clean_text(cells[position])}")
            else:
                bad.setdefault(position, (index, name, problem))
        columns[name] = values
    columns["notes"] = [None] * count
    for position, said in notes.items():
        columns["notes"][position] = "; ".join(said)
    for name, parts in records.sums.items():
        present = [columns[part] for part in parts if part in columns]
        columns[name] = [_sum_present(figures) for figures in zip(*present)] if present \
            else [None] * count
    first_letters = column_letters(block.first_column)
    last_letters = column_letters(block.end_column - 1)
    columns["cell_range"] = [f"{first_letters}{r}:{last_letters}{r}"
                             for r in range(block.first_row + 1, block.first_row + count + 1)]
    for position, (index, name, problem) in sorted(bad.items()):
        out.quarantine(context.sheet, block.first_row + position, index,
                       f"{spec.name}: {name}: {problem}")
    # An empty row parting the list is no record.
    gaps = {r - block.first_row for r in range(block.first_row, block.first_row + count)
            if not _any_filled(grid[r][block.first_column:block.end_column])}
    if bad or gaps:
        kept = [position not in bad and position not in gaps for position in range(count)]
        columns = {name: list(compress(values, kept)) for name, values in columns.items()}
    loaded = count - len(bad) - len(gaps)
    table.add({**context.provenance, "fiscal_year": context.fiscal_year, **dated}, columns,
              loaded)
    out.rows_read += loaded
    out.rows_loaded += loaded


def _column_values(reader, cells: list) -> tuple[list, dict[int, CellValueError]]:
    """A column's values read by `reader` (see _record_reader), and the error of each cell that
    could not be read (its value None)."""
    read_column, read = reader
    try:
        return read_column(cells), {}
    except CellValueError:
        values, problems = [], {}
        for position, cell in enumerate(cells):
            try:
                values.append(read(cell))
            except CellValueError as problem:
                values.append(None)
                problems[position] = problem
        return values, problems


def _sum_present(figures: Iterable[float | None]) -> float | None:
    present = [figure for figure in figures if figure is not None]
    return sum(present) if present else None


def _record_kind(name: str, cells: list, records: RecordsSpec) -> str:
    """A known column's declared kind; a column new to the layout is numeric if all its
    filled cells are numbers, otherwise text."""
    if records.numeric.search(name):
        return "float64"
    if records.dates.search(name):
        return "date32"
    if name in records.zero_pad or name in records.required:
        return "string"
    # Told apart by class (bool is its own): numbers, and nothing filled that is not one.
    classes = set(map(type, cells))
    if not classes & {int, float} or classes - {int, float, str, type(None)}:
        return "string"
    texts = {cell for cell in set(cells) if cell.__class__ is str}
    return "string" if any(text.strip() for text in texts) else "float64"


def _record_reader(kind: str, zero_pad: int | None):
    """The functions turning a record column's raw cells into values: the whole column at once,
    and one cell (for a column holding a cell that cannot be read)."""
    if kind == "float64":
        return parse_numbers, parse_number
    if kind == "date32":
        return parse_dates, parse_date
    if not zero_pad:
        return clean_texts, clean_text

    def padded(text: str | None) -> str | None:
        return text.zfill(zero_pad) if text is not None and text.isdecimal() else text

    return (lambda cells: list(map(padded, clean_texts(cells))),
            lambda raw: padded(clean_text(raw)))


def _count_inside(columns: list[int], spans: Sequence[tuple[int, int]]) -> int:
    """How many of the ascending `columns` fall inside any of the [left, right) spans."""
    inside, reached = 0, 0
    for left, right in sorted(spans):
        left = max(left, reached)  # overlapping spans count a column once
        if right > left:
            inside += bisect_left(columns, right) - bisect_left(columns, left)
            reached = right
    return inside


def _keep_uncovered_numbers(grid: Grid, scan: SheetScan, blocks: list[Block],
                            context: SheetContext, out: Extraction) -> None:
    """A figure outside every recognised table belongs to a table this layout does not know:
    it is kept, with the labels around it, in the generic long table `STATS_UNRECOGNISED`."""
    spans: dict[int, list[tuple[int, int]]] = {}
    for b in blocks:
        for r in range(b.top_row, b.end_row):
            spans.setdefault(r, []).append((b.first_column, b.end_column))
    stray = []
    for r, columns in scan.numbers.items():
        row_spans = spans.get(r, ())
        if len(row_spans) == 1 and row_spans[0][0] <= columns[0] and columns[-1] < row_spans[0][1]:
            continue  # the usual row: all its figures inside the one table it belongs to
        if _count_inside(columns, row_spans) == len(columns):
            continue  # tables side by side, each holding its own figures
        for c in columns:
            if not any(left <= c < right for left, right in row_spans):
                stray.append((r, c))
    for run in _row_runs(sorted(stray)):
        _keep_unrecognised_block(grid, run, context, out)


# How far above a block of figures its caption may be looked for.
_CAPTION_SEARCH_ROWS = 6


def _row_runs(cells: list[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    """Cells grouped into blocks of consecutive rows."""
    runs: list[list[tuple[int, int]]] = []
    for cell in cells:
        if runs and cell[0] - runs[-1][-1][0] <= 1:
            runs[-1].append(cell)
        else:
            runs.append([cell])
    return runs


def _text(grid: Grid, r: int, c: int) -> str | None:
    value = grid[r][c] if c < len(grid[r]) else None
    return clean_text(value) if value.__class__ is str else None


def _keep_unrecognised_block(grid: Grid, cells: list[tuple[int, int]], context: SheetContext,
                             out: Extraction) -> None:
    top, bottom = cells[0][0], cells[-1][0]
    right = max(c for _, c in cells)
    # Header rows: the rows right above the figures holding text; the caption is the nearest
    # line above them printed alone on its row.
    header_rows: list[int] = []
    r = top - 1
    while r >= 0 and len(header_rows) < _HEADER_SEARCH_ROWS and \
            _any_filled(grid[r][:right + 1]):
        header_rows.insert(0, r)
        r -= 1
    caption = None
    for r in range(top - 1, max(-1, top - 1 - _CAPTION_SEARCH_ROWS), -1):
        texts = [t for c in range(min(len(grid[r]), right + 1)) if (t := _text(grid, r, c))]
        if len(texts) == 1 and not any(_is_number(v) for v in grid[r][:right + 1]):
            caption = texts[0]
            if r in header_rows:
                header_rows = [h for h in header_rows if h > r]
            break
    columns: dict[str, list] = {name: [] for name in (
        "cell", "caption", "row_labels", "column_labels", "value")}
    for r, c in cells:
        labels = []
        for h in header_rows:
            # A header merged over several columns is stored in its leftmost cell.
            label = next((t for i in range(c, -1, -1) if (t := _text(grid, h, i))), None)
            if label is not None and label not in labels:
                labels.append(label)
        columns["cell"].append(cell_name(r, c))
        columns["caption"].append(caption)
        columns["row_labels"].append(" / ".join(
            t for i in range(c) if (t := _text(grid, r, i))) or None)
        columns["column_labels"].append(" / ".join(labels) or None)
        columns["value"].append(float(grid[r][c]))
    _, dated = context.for_table(STATS_UNRECOGNISED, context.fiscal_year, caption)
    table = out.output(STATS_UNRECOGNISED)
    table.declare([("workbook", "string"), ("sha256", "string"), ("fiscal_year", "int32"),
                   *SNAPSHOT_COLUMNS, ("sheet", "string"), ("cell", "string"),
                   ("caption", "string"), ("row_labels", "string"),
                   ("column_labels", "string"), ("value", "float64")])
    table.add({**context.provenance, "fiscal_year": context.fiscal_year, **dated}, columns,
              len(cells))
    out.rows_read += len(cells)
    out.rows_loaded += len(cells)
    left = min(c for _, c in cells)
    said = (f"{context.sheet.strip()}!{cell_name(top, left)}:{cell_name(bottom, right)}: "
            f"{len(cells)} figure(s) under {caption or 'no caption'!r} match no table of "
            f"stats_tables.toml; kept in {STATS_UNRECOGNISED}")
    out.warnings.append(said)
    out.unrecognised.append(said)
