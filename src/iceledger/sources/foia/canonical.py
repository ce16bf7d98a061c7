"""Raw FOIA rows -> canonical rows (docs/codebook.md, "FOIA records"), written as DuckDB SQL.

Python only writes the query; DuckDB runs it on its own threads over `read_csv`, `read_parquet`
or the Arrow slices of a workbook. Every cell is kept or accounted for: a redaction string becomes
NULL with its column named in the row's `redacted` list; a cell that holds something other than
its column's type (a date column holding text, an unknown field office) or no value at all (one of
Excel's error values such as `#N/A`, a formula saved without its value, NUL characters) becomes
NULL with `column=raw value` in the row's `unparsed` list. Only two kinds of row are quarantined,
each with its cell named: one whose key date (the date that places the record in time) holds
something that is not a date at all, and a row of totals (no key date, a cell that is a totals
label as a whole). Rows with no value in any cell are not records (Excel keeps formatted blank
rows) and are counted, not loaded.

The query of a sheet (`SheetRows.query`) yields its typed columns, in the order they take in the
table, and columns that the load reads and never stores (`HELPERS`): what the row is (a record
naming whom it is about or not, a blank row, a row quarantined), the text a quarantine reason
quotes (the key date that is no date, the totals label) and a 64-bit hash of its raw cells (for
exact duplicates).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

import duckdb
import pyarrow as pa

from iceledger.field_offices import AOR_AFFIXES, aor_key, spellings, written_spellings
from iceledger.sources.foia.layouts import EXTRA_PREFIX, Catalog, Dataset, catalog
from iceledger.sources.foia.readers import ROW, RawColumn, SheetPlan
from iceledger.sources.stats.cells import snake_case
from iceledger.sources.xlsx_files import ERROR_VALUES, FORMULA_MARK
from iceledger.warehouse import ident, literal

STATUS, KEY_TEXT, HASH = "__status", "__key_text", "__hash"
HELPERS = (STATUS, KEY_TEXT, HASH)
# What a row is (STATUS): a record that names no one, one that does (an identifier), a blank row
# (no value in any cell); then the rows quarantined (STATUS >= UNREADABLE_KEY): one whose key date
# is no date, a row of totals (no key date, a cell labelling totals), the sheet's header row again
# (files joined one under another), and another header row in its key date's place (files of
# other layouts joined: the rows under it would be read under the first header's columns, so
# the load fails there).
UNNAMED, NAMED, BLANK, UNREADABLE_KEY, TOTALS_ROW, REPEATED_HEADER, OTHER_HEADER = range(7)

# Whitespace as Python's str.isspace() and Arrow's utf8_trim_whitespace define it (the same set).
UNICODE_SPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace())
_ASCII_SPACE = " \t\n\v\f\r"
# A zone after the time (`Z`, `+00:00`, `-0500`: JSON and API exports) is dropped: the clock is
# read as written, as a parquet timestamp's is in its zone (ICE's records are local times).
_ISO_MOMENT = (r"\d{4}-\d{2}-\d{2}(?:[ T](?:[01]\d|2[0-3])(?::[0-5]\d(?::[0-5]\d"
               r"(?:\.\d{1,6})?)?(?:Z|[+-](?:[01]\d|2[0-3])(?::?[0-5]\d)?)?)?)?")
_HOUR_ONLY = r"\d{4}-\d{2}-\d{2}[ T]\d{2}"
_DAY = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"
_SECOND = "[0-2][0-9]:[0-5][0-9]:[0-5][0-9]"
_SERIAL = r"^\s*(\d{1,7}(?:\.\d+)?)\s*$"
_WHOLE_NUMBER = r"^\s*(-?\d+)(?:\.0*)?\s*$"
_FLOAT = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_DECIMAL = r"\s*-?\$?[\d,]*\.?\d+\s*"
_ASCII = r"[\x00-\x7f]*"
_CELL = "<cell>"
_I = "'i'"  # case-insensitive
# What a text cell holds besides a value: a redaction, no value (kept in `unparsed`), nothing
# written as a word (an export's NULL: loaded as an empty cell is).
_REDACTED, _NO_VALUE, _EMPTY = 1, 2, 3
# UNICODE_SPACE as an RE2 class: ASCII's controls, three more, and Unicode's separators (Z).
_SPACE_CLASS = r"[\t-\r\x1c-\x1f\x{85}\p{Z}]"
# How a cell that may be a redaction without an ASCII parenthesis starts ("b6", "[B7c]",
# "REDACTED - b6", "*REDACTED*", "（b）（6）").
_BARE_MARKER_STARTS = ("b6", "b7", "B6", "B7", " ", "[", "*", "-", "<", "\uff08", '"', "'",
                       "REDACTED", "Redacted", "redacted")
_AOR_KEY_FUNCTION = "iceledger_aor_key"
_REPR_FUNCTION = "iceledger_repr"
_SECONDS_PER_DAY = 86_400
_TYPES = {"timestamp": "TIMESTAMP", "date": "DATE", "integer": "INTEGER", "decimal": "DOUBLE",
          "yes_no": "BOOLEAN"}


def sql_type(kind: str | None) -> str:
    """The DuckDB type a canonical column of this kind has."""
    return _TYPES.get(kind or "", "VARCHAR")


@dataclass(frozen=True)
class FileContext:
    """What every row of one file carries: its provenance and its release."""

    file_name: str
    sha256: str
    release: str
    catalog: Catalog = field(default_factory=catalog)

    @property
    def record_prefix(self) -> str:
        return self.sha256[:12]


def register_functions(con: duckdb.DuckDBPyConnection) -> None:
    """The two Python functions the queries call, for the rare values SQL cannot judge exactly:
    field-office text outside ASCII (Python's case folding) and quarantined key dates (written
    as Python writes a string, as the reason has always quoted them)."""
    registered = {r[0] for r in con.execute(
        "SELECT function_name FROM duckdb_functions() WHERE function_name IN (?, ?)",
        [_AOR_KEY_FUNCTION, _REPR_FUNCTION]).fetchall()}

    def each(function):
        return lambda values: pa.array([None if v is None else function(v)
                                        for v in values.to_pylist()], pa.string())

    for name, function in ((_AOR_KEY_FUNCTION, aor_key), (_REPR_FUNCTION, repr)):
        if name not in registered:
            con.create_function(name, each(function), ["VARCHAR"], "VARCHAR", type="arrow",
                                side_effects=False, null_handling="special")


class SheetRows:
    """The SQL that types, marks and describes the rows of one sheet (or CSV/parquet file)."""

    def __init__(self, plan: SheetPlan, columns: list[RawColumn], context: FileContext,
                 required: dict[str, str]):
        self.plan = plan
        self.columns = columns
        self.context = context
        self.dataset: Dataset = plan.match.dataset
        cat = context.catalog
        self._kinds = [None if c.name.startswith(EXTRA_PREFIX) else cat.types.get(c.name)
                       for c in columns]
        self._redaction = _redaction_sql(cat)
        self._formats = cat.datetime_formats
        self._epoch = (date.fromisoformat(cat.excel_epoch) - date(1970, 1, 1)).days
        self._required = required
        self.key = next((i for i, c in enumerate(columns) if c.name == self.dataset.key_date),
                        None)

    @property
    def date_columns(self) -> list[int]:
        """The columns typed as dates or date-times."""
        return [i for i, kind in enumerate(self._kinds) if kind in ("timestamp", "date")]

    # -- the output -------------------------------------------------------------------------

    @property
    def output_columns(self) -> list[str]:
        """The table columns this sheet's rows carry, in the order a new table takes them."""
        return [name for name, _ in self._outputs()]

    @property
    def typed_columns(self) -> dict[str, bool]:
        """The output columns the sheet itself has (without the required ones it lacks), each
        with whether it holds numbers."""
        numeric = {c.name for i, c in enumerate(self.columns) if self._kinds[i] in (
            "integer", "decimal") or (self._kinds[i] is None and c.storage in (
                "integer", "float") and not c.name.startswith(EXTRA_PREFIX))}
        return {name: name in numeric for name, _ in self._outputs(required=False)}

    def query(self, source: str) -> str:
        """SELECT every output column and the HELPERS from `source` (a relation with each
        RawColumn's source column and ROW)."""
        outputs = ", ".join(f"{expression} AS {ident(name)}"
                            for name, expression in self._outputs())
        helpers = ", ".join(f"{expression} AS {name}" for name, expression in self._helpers())
        return f"SELECT {outputs}, {helpers} FROM ({self._typed(source, self._every)})"

    def key_dates(self, source: str) -> str:
        """SELECT the largest readable key date of `source` (NULL when there is none)."""
        if self.key is None:
            return "SELECT CAST(NULL AS TIMESTAMP)"
        # A date column's maximum is a DATE: as a TIMESTAMP it compares with other sheets'.
        return (f"SELECT CAST(max(v{self.key}) AS TIMESTAMP) FROM "
                f"({self._typed(source, {self.key})})")

    # -- stages: raw -> stripped -> typed -> output ------------------------------------------

    @property
    def _every(self) -> set[int]:
        return set(range(len(self.columns)))

    @property
    def _checked(self) -> list[int]:
        """The columns whose cells can fail (f): typed ones, and text that can hold no value
        (one of Excel's error values, a formula without its value, NUL characters)."""
        return [i for i, c in enumerate(self.columns)
                if self._kinds[i] is not None or c.storage == "text"]

    def _typed(self, source: str, converted: set[int]) -> str:
        """Raw columns (r) and, for the `converted` ones, whether a text cell is a redaction
        (h); their values stripped of it (s), marked (m), converted (v) and failed (f): in
        projections one above the other, so that each is computed once."""
        hits, stripped, typed = [ROW], [ROW], [ROW]
        for i, column in enumerate(self.columns):
            raw = ident(column.source)
            hits.append(f"{raw} AS r{i}")
            stripped.append(f"r{i}")
            typed.append(f"r{i}")
            if i not in converted:
                continue
            text = column.storage == "text"
            if text:
                hits.append(f"{self._redaction.replace(_CELL, raw)} AS h{i}")
                stripped += [f"CASE WHEN h{i} > 0 THEN NULL ELSE r{i} END AS s{i}",
                             f"(h{i} = {_REDACTED} AND r{i} <> '') AS m{i}",
                             f"h{i} = {_NO_VALUE} AS e{i}"]
                typed += [f"s{i}", f"m{i}", f"e{i}"]
            else:
                stripped.append(f"r{i} AS s{i}")
                typed.append(f"s{i}")
            kind = self._kinds[i]
            if kind == "aor":
                # A position in the list of known spellings, not a join: a join may reorder
                # the rows, and the derived tables break ties in load order.
                value = f"s{i}" if text else f"CAST(s{i} AS VARCHAR)"
                stripped.append(f"{aor_position(value)} AS k{i}")
                typed += [f"{_AOR_NAMES}[k{i}] AS v{i}", f"{_AOR_CODES}[k{i}] AS code{i}"]
                value = f"k{i}"
            else:
                value = self._convert(kind, f"s{i}", column.storage)
                typed.append(f"{value} AS v{i}")
            if kind is not None:
                typed.append(f"(s{i} IS NOT NULL AND ({value}) IS NULL) AS c{i}")
            if text or kind is not None:
                failed = [f"e{i}"] if text else []
                failed += [f"c{i}"] if kind is not None else []
                typed.append(f"({' OR '.join(failed)}) AS f{i}")
        return (f"SELECT {', '.join(typed)} FROM (SELECT {', '.join(stripped)} FROM "
                f"(SELECT {', '.join(hits)} FROM {source}))")

    def _outputs(self, required: bool = True) -> list[tuple[str, str]]:
        context = self.context
        columns: dict[str, str] = {}
        extras: list[tuple[str, int]] = []
        for i, column in enumerate(self.columns):
            if column.name.startswith(EXTRA_PREFIX):
                extras.append((column.name.removeprefix(EXTRA_PREFIX), i))
                continue
            columns[column.name] = f"v{i}"
            if self._kinds[i] == "aor":
                columns["aor_code"] = f"code{i}"
        for derived in self.dataset.derived:
            if derived.source in columns:
                columns[derived.column] = _mapped(columns[derived.source], derived.values,
                                                  literal(derived.otherwise))
        if self.plan.match.by_vocabulary:
            entries = [f"{{'key': {literal(name)}, 'value': CAST(s{i} AS VARCHAR)}}"
                       for name, i in extras]
            columns["extras"] = (f"map_from_entries(list_filter([{', '.join(entries)}], "
                                 "lambda e: e.value IS NOT NULL))" if entries
                                 else "CAST(MAP {} AS MAP(VARCHAR, VARCHAR))")
        texts = [i for i, c in enumerate(self.columns) if c.storage == "text"]
        columns["redacted"] = (
            f"list_where({_sql_list(self.columns[i].name for i in texts)}, "
            f"[{', '.join(f'm{i}' for i in texts)}])" if texts else "CAST([] AS VARCHAR[])")
        typed = self._checked
        entries = ", ".join(f"CASE WHEN f{i} THEN {literal(self.columns[i].name + '=')} || "
                            f"{self._unparsed_text(i)} END" for i in typed)
        # Most rows have no cell in `unparsed`: their list is made only when one has.
        columns["unparsed"] = (
            f"CASE WHEN {' OR '.join(f'f{i}' for i in typed)} THEN list_filter([{entries}], "
            "lambda x: x IS NOT NULL) ELSE CAST([] AS VARCHAR[]) END" if typed
            else "CAST([] AS VARCHAR[])")
        columns["source_file"] = literal(context.file_name)
        columns["source_sheet"] = ("CAST(NULL AS VARCHAR)" if self.plan.name is None
                                   else literal(self.plan.name))
        columns["source_row"] = ROW
        columns["record_id"] = (f"{literal(f'{context.record_prefix}:{self.plan.index}:')} "
                                f"|| CAST({ROW} AS VARCHAR)")
        columns["release"] = literal(context.release)
        for name, kind in self._required.items() if required else ():
            columns.setdefault(name, f"CAST(NULL AS {kind})")
        return list(columns.items())

    def _unparsed_text(self, i: int) -> str:
        """A failed cell as its `unparsed` entry writes it: a cell that holds no value as it
        was written (a NUL character written \\x00), any other as its column read it."""
        if self.columns[i].storage != "text":
            return f"CAST(s{i} AS VARCHAR)"
        return f"CASE WHEN e{i} THEN replace(r{i}, chr(0), '\\x00') ELSE s{i} END"

    def _helpers(self) -> list[tuple[str, str]]:
        nothing = " ".join(f"WHEN {literal(m)} THEN NULL"
                           for m in ("", *self.context.catalog.empty_markers))
        texts = [f"CASE r{i} {nothing} ELSE r{i} END" for i, c in enumerate(self.columns)
                 if c.storage == "text"]
        # coalesce stops at a row's first value: most rows are judged on their first cell.
        empty = [f"coalesce({', '.join(texts)}) IS NULL"] if texts else []
        empty += [f"(r{i} IS NULL OR isnan(r{i}))" if c.storage == "float" else f"r{i} IS NULL"
                  for i, c in enumerate(self.columns) if c.storage != "text"]
        blank = " AND ".join(empty) or "true"
        identifiers = [f"v{i} IS NOT NULL" for i, c in enumerate(self.columns)
                       if c.name in self.context.catalog.vocabulary.identifier_columns]
        key = self.key
        unreadable, key_text = "", "CAST(NULL AS VARCHAR)"
        if key is not None:
            # Labels are looked for only in rows without a key date: CASE narrows the rows
            # before it tests a condition's second part.
            label = self._totals_label()
            totals = f"v{key} IS NULL AND {label} IS NOT NULL"
            unreadable = (f"WHEN {totals} THEN {TOTALS_ROW} WHEN c{key} THEN CASE WHEN "
                          f"{self._repeated_header()} THEN {REPEATED_HEADER} WHEN "
                          f"{self._header_text(key)} THEN {OTHER_HEADER} ELSE {UNREADABLE_KEY} "
                          "END ")
            key_text = (f"CASE WHEN {totals} THEN {label} WHEN c{key} THEN "
                        f"CAST(r{key} AS VARCHAR) END")
        return [
            (STATUS, f"CAST(CASE WHEN {blank} THEN {BLANK} {unreadable}WHEN "
                     f"{' OR '.join(identifiers) or 'false'} THEN {NAMED} ELSE {UNNAMED} END "
                     "AS TINYINT)"),
            (KEY_TEXT, key_text),
            (HASH, f"hash({', '.join(f'r{i}' for i in range(len(self.columns)))})"),
        ]

    def _repeated_header(self) -> str:
        """Whether the row's text cells are the sheet's headers (case and spacing aside)."""
        same = [f"{_snake(f'r{i}')} = {literal(snake_case(c.header))}"
                for i, c in enumerate(self.columns) if c.storage == "text"]
        return " AND ".join(same) or "false"

    def _header_text(self, i: int) -> str:
        """Whether cell i holds a header the catalogue knows or the sheet has."""
        cat = self.context.catalog
        known = (set(cat.vocabulary.columns) | cat.known_columns
                 | {key for layout in cat.layouts for key in layout.keys}
                 | {snake_case(c.header) for c in self.columns})
        cell = _snake(_text(f"r{i}", self.columns[i].storage))
        return f"list_contains({_sql_list(sorted(known))}, {cell})"

    def _totals_label(self) -> str:
        """The first text cell of the row that is a totals label as a whole (NULL if none)."""
        pattern = literal(_re2(self.context.catalog.totals_label.pattern))
        labels = [f"CASE WHEN regexp_full_match(r{i}, {pattern}, {_I}) THEN r{i} END"
                  for i, c in enumerate(self.columns) if c.storage == "text"]
        return f"coalesce({', '.join(labels)})" if labels else "CAST(NULL AS VARCHAR)"

    # -- conversions ------------------------------------------------------------------------

    def _convert(self, kind: str | None, value: str, storage: str) -> str:
        if kind in ("timestamp", "date"):
            moment = self._moment(value, storage)
            return f"CAST({moment} AS DATE)" if kind == "date" else moment
        if kind == "integer":
            if storage in ("integer", "float"):
                number = f"CAST({value} AS DOUBLE)"
                return (f"CASE WHEN isfinite({number}) AND {number} = floor({number}) AND "
                        f"{number} BETWEEN -2147483648 AND 2147483647 THEN "
                        f"CAST({number} AS INTEGER) END")
            text = _text(value, storage)
            return f"TRY_CAST(regexp_extract({text}, {literal(_WHOLE_NUMBER)}, 1) AS INTEGER)"
        if kind == "decimal":
            if storage in ("integer", "float"):
                number = f"CAST({value} AS DOUBLE)"
            else:
                text = _text(value, storage)
                number = (f"coalesce(CASE WHEN regexp_full_match({text}, {literal(_FLOAT)}) "
                          f"THEN TRY_CAST({text} AS DOUBLE) END, CASE WHEN regexp_full_match("
                          f"{text}, {literal(_DECIMAL)}) THEN TRY_CAST(regexp_replace({text}, "
                          f"'[\\s$,]', '', 'g') AS DOUBLE) END)")
            # A value the column cannot hold (1e400, NaN) is NULL and kept in `unparsed`.
            return f"CASE WHEN isfinite({number}) THEN {number} END"
        if kind == "yes_no":
            if storage == "boolean":
                return value
            return _looked_up(_text(value, storage), self.context.catalog.yes_no)
        if kind == "criminality":
            return _looked_up(_text(value, storage), self.context.catalog.criminality)
        if kind == "gender":
            text = _text(value, storage)
            return f"coalesce({_looked_up(text, self.context.catalog.gender)}, {text})"
        if kind == "country":
            # Each step only where needed: trimming and stripping accents cost more than the
            # tests before them, and nearly every cell is ASCII capitals already.
            text = _text(value, storage)
            trimmed = (f"CASE WHEN ends_with({text}, ' ') OR starts_with({text}, ' ') THEN "
                       f"{_trimmed(text)} ELSE {text} END")
            return (f"CASE WHEN strlen({text}) = length({text}) THEN upper({trimmed}) "
                    f"ELSE upper(strip_accents({_trimmed(text)})) END")
        return value

    def _moment(self, value: str, storage: str) -> str:
        """Dates and date-times from typed columns, Excel serial numbers, ISO text (rounded to
        the second) or the catalogue's other formats; NULL for anything else."""
        if storage == "moment":
            return f"CAST({value} AS TIMESTAMP)"
        if storage in ("integer", "float"):
            return self._serial(f"CAST({value} AS DOUBLE)")
        text = _text(value, storage)
        # The forms nearly every release writes, to the second or the day, read first by a
        # pattern cheaper than the regular expression (the same values, no rounding needed).
        common = (f"CASE WHEN ({text} GLOB {literal(_DAY + '[ T]' + _SECOND)} AND "
                  f"substr({text}, 12, 2) <= '23') OR {text} GLOB {literal(_DAY)} THEN "
                  f"TRY_CAST({text} AS TIMESTAMP) END")
        iso = (f"CASE WHEN regexp_full_match({text}, {literal(_ISO_MOMENT)}) THEN "
               f"date_trunc('second', TRY_CAST(CASE WHEN regexp_full_match({text}, "
               f"{literal(_HOUR_ONLY)}) THEN {text} || ':00' ELSE {text} END AS TIMESTAMP) "
               "+ INTERVAL 500 MILLISECOND) END")
        serial = self._serial(f"TRY_CAST(regexp_extract({text}, {literal(_SERIAL)}, 1) "
                              "AS DOUBLE)")
        # strptime skips ASCII spaces before a value, and reads none after it.
        trimmed = f"ltrim({text}, {literal(_ASCII_SPACE)})"
        ends = f"rtrim({text}, {literal(_ASCII_SPACE)}) = {text}"
        spaced = f"{text} GLOB {literal('[' + _ASCII_SPACE + ']*')}"
        formats = []
        for fmt in self._formats:
            parsed = f"try_strptime({trimmed}, {literal(fmt)})"
            # A format reads nothing it would not write: a value counts only if writing it back
            # gives the text it came from, leading zeros and case aside ("2025-1-1",
            # "02-JAN-25", "9:30 am"): as written, or without the zeros of months, days and
            # hours, or (dearest) with every leading zero dropped on both sides.
            same = " OR ".join(
                [f"upper(strftime({parsed}, {literal(written)})) = upper({text})"
                 for written in (fmt, _unpadded_format(fmt))]
                + [f"upper({_unpadded(f'strftime({parsed}, {literal(fmt)})')}) = "
                   f"upper({_unpadded(text)})"])
            # CASE narrows the rows before each part of its condition: a cell the format's
            # shape cannot hold costs no strptime (a failing one is dear), and only dates read
            # are written back.
            formats.append(f"CASE WHEN ({text} GLOB {literal(_format_glob(fmt))} OR {spaced}) "
                           f"AND {parsed} IS NOT NULL AND {ends} AND ({same}) THEN {parsed} END")
        # Each way is tried only on the cells no earlier way read (coalesce stops at a value).
        return (f"CASE WHEN {text} IS NULL THEN CAST(NULL AS TIMESTAMP) ELSE "
                f"coalesce({', '.join([common, iso, serial, *formats])}) END")

    def _serial(self, days: str) -> str:
        # Serial 1 is 1899-12-31 (epoch 1899-12-30); anything past year 9999 is not a date.
        # Excel's 1900 leap-year bug only shifts dates before March 1900.
        return (f"CASE WHEN {days} >= 1 AND {days} < 2958466 THEN make_timestamp(CAST("
                f"round_even(({days} + {float(self._epoch)}) * {float(_SECONDS_PER_DAY)}, 0) "
                "* 1000000.0 AS BIGINT)) END")


# ---------------------------------------------------------------------------------------------


def aor_position(text: str) -> str:
    """SQL for the position of AOR text in the lists of field offices (_AOR_NAMES, _AOR_CODES):
    text as a known spelling is written is found as it is (no regular expression for the common
    case); other text by its key (iceledger.field_offices.aor_key), in SQL for ASCII text, by
    the Python function otherwise (Unicode case folding)."""
    ascii_spaces = "".join(c for c in UNICODE_SPACE if c < "\x80")
    key = (f"CASE WHEN regexp_full_match({text}, {literal(_ASCII)}) THEN regexp_replace(lower(trim("
           f"regexp_replace(replace({text}, '.', ''), {literal(_char_class(ascii_spaces) + '+')}, "
           f"' ', 'g'))), {literal(AOR_AFFIXES)}, '\\1') ELSE {_AOR_KEY_FUNCTION}({text}) END")
    return (f"coalesce(list_position({_AOR_WRITTEN}, {text}), {len(written_spellings())} + "
            f"list_position({_AOR_KEYS}, {key}))")


def quarantine_reason(header: str, status: str, key_text: str) -> str:
    """SQL for the reason a row is quarantined: its key date's raw text, or the label of a row of
    totals, as Python quotes it."""
    totals = literal(header + " holds no date and a cell reads ")
    return (f"CASE WHEN {status} = {TOTALS_ROW} THEN {totals} || {_REPR_FUNCTION}({key_text}) "
            "|| ': a row of totals, not a record' "
            f"WHEN {status} = {REPEATED_HEADER} THEN 'the header row again (files joined one "
            "under another?), not a record' "
            f"ELSE {literal(header + ' ')} || {_REPR_FUNCTION}({key_text}) || ' is not a date' "
            "END")


def _snake(text: str) -> str:
    """SQL for text snake_cased as iceledger.sources.stats.cells.snake_case does (ASCII)."""
    return f"trim(regexp_replace(lower({text}), '[^0-9a-z]+', '_', 'g'), '_')"


def _text(value: str, storage: str) -> str:
    return value if storage == "text" else f"CAST({value} AS VARCHAR)"


def _trimmed(text: str) -> str:
    return f"trim({text}, {literal(UNICODE_SPACE)})"


def _format_glob(fmt: str) -> str:
    """A GLOB pattern every text the strptime format reads matches, as a cheap test before it:
    four or two digits for years, letters for month names and AM/PM, any run for the rest (and
    for a field without its zeros: "%-d", as a declared format may write it)."""
    fields = {"Y": "[0-9][0-9][0-9][0-9]", "y": "[0-9][0-9]", "b": "[A-Za-z][A-Za-z][A-Za-z]",
              "p": "[AaPp][Mm]", "%": "%"}
    out, i = [], 0
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt):
            unpadded = fmt[i + 1] == "-" and i + 2 < len(fmt)
            out.append("*" if unpadded else fields.get(fmt[i + 1], "*"))
            i += 3 if unpadded else 2
            continue
        out.append(f"[{fmt[i]}]" if fmt[i] in "[*?" else fmt[i])
        i += 1
    return "".join(out)


def _unpadded_format(fmt: str) -> str:
    """The format writing months, days and hours without leading zeros ("6/3/2025 9:30")."""
    for field in "mdHI":
        fmt = fmt.replace(f"%{field}", f"%-{field}")
    return fmt


def _unpadded(text: str) -> str:
    """Dates and times with leading zeros dropped ("01/02/2025 09:05" -> "1/2/2025 9:5")."""
    return f"regexp_replace({_trimmed(text)}, '(^|\\D)0+(\\d)', '\\1\\2', 'g')"


def _mapped(value: str, mapping: dict, otherwise: str | None, kind: str = "VARCHAR") -> str:
    cases = " ".join(f"WHEN {literal(k)} THEN {_value(v)}" for k, v in mapping.items())
    fallback = f" ELSE {otherwise}" if otherwise is not None else ""
    return (f"CASE WHEN ({value}) IS NULL THEN CAST(NULL AS {kind}) ELSE "
            f"(CASE {value} {cases}{fallback} END) END")


def _looked_up(text: str, mapping: dict) -> str:
    """The value `mapping` gives the text, spaces around it aside (trimmed only when the text
    as it is matches no key), then case and punctuation aside ("yes", "1-Convicted Criminal";
    folded only when the trimmed text matches no key either)."""
    cases = " ".join(f"WHEN {literal(k)} THEN {_value(v)}" for k, v in mapping.items())
    folded = {_folded_key(k): v for k, v in mapping.items()}
    loose = " ".join(f"WHEN {literal(k)} THEN {_value(v)}" for k, v in folded.items())
    key = f"trim(upper(regexp_replace({text}, '[^A-Za-z0-9]+', ' ', 'g')))"
    # An empty cell would be compared with every key at each of the three tries.
    return (f"CASE WHEN {text} IS NULL THEN NULL ELSE CASE {text} {cases} ELSE CASE "
            f"{_trimmed(text)} {cases} ELSE CASE {key} {loose} END END END END")


def _folded_key(text: str) -> str:
    """A value as _looked_up folds it in SQL: runs of other characters than ASCII letters and
    digits one space, upper case."""
    return re.sub(r"[^A-Za-z0-9]+", " ", text).strip().upper()


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return literal(str(value))


def _char_class(chars: str) -> str:
    return "[" + "".join(f"\\x{{{ord(c):x}}}" for c in chars) + "]"


def _sql_list(values: Iterable[str]) -> str:
    return "[" + ", ".join(literal(v) for v in values) + "]"


_AOR_WRITTEN = _sql_list(written_spellings())
_AOR_KEYS = _sql_list(spellings())
_AOR_OFFICES = [*written_spellings().values(), *spellings().values()]
_AOR_NAMES = _sql_list(office.name for office in _AOR_OFFICES)
_AOR_CODES = _sql_list(office.code for office in _AOR_OFFICES)


def _redaction_sql(cat: Catalog) -> str:
    """What a text cell (_CELL, to be replaced) holds: a value (0), a redaction (_REDACTED:
    empty, a listed redaction string, or made only of FOIA exemption markers, by the
    catalogue's pattern in RE2 with Python's whitespace), no value (_NO_VALUE: one of Excel's
    error values in any case and spacing, a formula saved without its value, as the reader
    gives it, or text holding NUL characters, binary debris) or nothing written as a word
    (_EMPTY: the catalogue's empty markers)."""
    # CASE, not IN (...): DuckDB may plan an IN list as a join, two per column. And a CASE
    # decides most cells by a character they hold or start with: every exemption marker holds a
    # parenthesis or starts with a bare b6 or b7, a space or a bracket, every error value a #;
    # the pattern is tried only on such cells that are no listed string.
    pattern = _re2(cat.redaction_pattern.pattern)
    paren = {m: _REDACTED for m in cat.redaction_markers if "(" in m}
    plain = {**{m: _REDACTED for m in cat.redaction_markers if "(" not in m},
             **{m: _EMPTY for m in cat.empty_markers}}
    marked = (f"CASE WHEN regexp_full_match({_CELL}, {literal(pattern)}, {_I}) THEN "
              f"{_REDACTED} ELSE 0 END")
    errors = " ".join(f"WHEN {literal(e)} THEN {_NO_VALUE}" for e in sorted(ERROR_VALUES))
    # A cell's first character is one test, where each start is one more: only the cells
    # that start with one of their characters are tested for the starts themselves.
    firsts = ", ".join(str(code) for code in sorted({ord(c[0]) for c in _BARE_MARKER_STARTS}))
    bare = " OR ".join(f"{_CELL} LIKE {literal(c + '%')}" for c in _BARE_MARKER_STARTS)
    return (f"(CASE WHEN {_CELL} = '' THEN {_REDACTED} WHEN starts_with({_CELL}, "
            f"{literal(FORMULA_MARK)}) OR contains({_CELL}, chr(0)) THEN {_NO_VALUE} "
            f"WHEN contains({_CELL}, '(') THEN {_one_of(paren, marked)} "
            f"WHEN contains({_CELL}, '#') THEN CASE upper({_trimmed(_CELL)}) {errors} ELSE "
            f"{_one_of(plain, '0')} END WHEN ascii({_CELL}) IN ({firsts}) THEN "
            f"{_one_of(plain, f'CASE WHEN {bare} THEN {marked} ELSE 0 END')} "
            f"ELSE {_one_of(plain, '0')} END)")


def _one_of(codes: dict[str, int], otherwise: str) -> str:
    """The code of _CELL among `codes`, else `otherwise`."""
    if not codes:
        return otherwise
    cases = " ".join(f"WHEN {literal(t)} THEN {code}" for t, code in codes.items())
    return f"CASE {_CELL} {cases} ELSE {otherwise} END"


def _re2(pattern: str) -> str:
    """A Python pattern in RE2's syntax: `\\s` matches what it matches in Python (Unicode
    whitespace), not only ASCII's. The patterns of the catalogue use nothing else RE2 lacks."""
    out, in_class, i = [], False, 0
    spaces = _SPACE_CLASS[1:-1]
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            escaped = pattern[i:i + 2]
            out.append((spaces if in_class else f"[{spaces}]") if escaped == "\\s" else escaped)
            i += 2
            continue
        if char == "[" and not in_class:
            in_class = True
        elif char == "]" and in_class:
            in_class = False
        out.append(char)
        i += 1
    return "".join(out)
