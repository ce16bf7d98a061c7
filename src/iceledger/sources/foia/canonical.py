"""Raw FOIA rows -> canonical rows (docs/codebook.md, "FOIA records"), vectorised with Arrow.

Every cell is kept or accounted for: a redaction string becomes NULL with its column named in the
row's `redacted` list; a cell that holds something other than its column's type (a date column
holding text, an unknown field office) becomes NULL with `column=raw value` in the row's
`unparsed` list. Only a row whose key date (the date that places the record in time) holds
something that is not a date at all is quarantined, with the cell named. Rows with no value in
any cell are not records (Excel keeps formatted blank rows) and are counted, not loaded.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import date

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from iceledger.field_offices import normalise_aor
from iceledger.sources.foia.layouts import EXTRA_PREFIX, Catalog, Dataset, catalog
from iceledger.sources.foia.readers import RawPart
from iceledger.sources.xlsx_files import ERROR_VALUES, FORMULA_MARK
from iceledger.warehouse import QuarantinedRow

TIMESTAMP = pa.timestamp("us")
_ISO_MOMENT = r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?$"
_WHOLE_NUMBER = r"^\s*-?\d+(\.0*)?\s*$"
_DECIMAL = r"^\s*-?\$?[\d,]*\.?\d+\s*$"
_SERIAL = r"^\s*\d{1,7}(\.\d+)?\s*$"
_SECONDS_PER_DAY = 86_400
_ERROR_VALUES = pa.array(sorted(ERROR_VALUES), pa.string())
_hash_connections = threading.local()


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


@dataclass
class CanonicalPart:
    table: pa.Table
    row_hashes: np.ndarray  # uint64 per table row, over the raw cells: finds exact duplicates
    rows_read: int
    blank_rows: int
    quarantined: list[QuarantinedRow] = field(default_factory=list)
    unknown_aor: np.ndarray | None = None  # bool per table row: AOR text naming no field office


@dataclass
class _Converted:
    values: pa.Array
    failed: pa.Array | None = None  # bool: a value was there but is not of the column's type


def canonicalise(part: RawPart, dataset: Dataset, context: FileContext) -> CanonicalPart:
    """Type, map and mark the cells of one raw part; quarantine rows without a usable key date."""
    cat = context.catalog
    raw = part.table
    blank = _all_null(raw)
    columns: dict[str, pa.Array] = {}
    extras: dict[str, pa.Array] = {}
    redacted: list[tuple[np.ndarray, pa.Array]] = []
    unparsed: list[tuple[np.ndarray, pa.Array]] = []
    unknown_aor = None
    key_failed = None
    for name in raw.column_names:
        values = _plain(raw.column(name))
        if pa.types.is_string(values.type):
            written = values
            values, marked, no_value = _strip_redactions(values, cat)
            if marked is not None:
                redacted.append((_indices(marked), _repeat(name, _count(marked))))
            if no_value is not None:
                rows = _indices(no_value)
                unparsed.append((rows, _unparsed_texts(name, written.take(pa.array(rows)))))
        if name.startswith(EXTRA_PREFIX):
            extras[name.removeprefix(EXTRA_PREFIX)] = values
            continue
        kind = cat.types.get(name)
        converted = _convert(kind, values, cat)
        columns[name] = converted.values
        if kind == "aor":
            columns["aor_code"] = _aor_codes(values)
            unknown_aor = converted.failed
        if converted.failed is not None and _count(converted.failed):
            rows = _indices(converted.failed)
            unparsed.append((rows, _unparsed_texts(name, values.take(pa.array(rows)))))
            if name == dataset.key_date:
                key_failed = converted.failed
    for derived in dataset.derived:
        if derived.source in columns:
            columns[derived.column] = _derive(columns[derived.source], derived.values,
                                              derived.otherwise)
    n = raw.num_rows
    if part.plan.match.by_vocabulary:
        columns["extras"] = _extras(n, extras)
    columns["redacted"] = _row_lists(n, redacted)
    columns["unparsed"] = _row_lists(n, unparsed)
    columns["source_file"] = pa.repeat(pa.scalar(context.file_name), n)
    columns["source_sheet"] = pa.repeat(pa.scalar(part.plan.name, pa.string()), n)
    columns["source_row"] = pa.array(part.rows)
    row_text = pc.cast(columns["source_row"], pa.string())
    columns["record_id"] = pc.binary_join_element_wise(
        pa.scalar(f"{context.record_prefix}:{part.plan.index}:"), row_text, "")
    columns["release"] = pa.repeat(pa.scalar(context.release), n)
    table = pa.table(columns)

    drop = blank
    quarantined: list[QuarantinedRow] = []
    if key_failed is not None:
        key_failed = pc.and_(key_failed, pc.invert(blank))
        quarantined = _quarantine(part, dataset, raw, key_failed)
        drop = pc.or_(blank, key_failed)
    keep = pc.invert(drop)
    hashes = _row_hashes(raw)
    if _count(drop):
        table = table.filter(keep)
        hashes = hashes[np.asarray(keep)]
        if unknown_aor is not None:
            unknown_aor = unknown_aor.filter(keep)
    blank_rows = _count(blank)
    return CanonicalPart(table, hashes, n - blank_rows, blank_rows, quarantined,
                         None if unknown_aor is None else np.asarray(unknown_aor))


def key_date_values(part: RawPart, dataset: Dataset, cat: Catalog) -> pa.Array:
    """The key dates of a raw part as timestamps (unreadable ones NULL), for the release fallback."""
    if dataset.key_date not in part.table.column_names:
        return pa.nulls(0, TIMESTAMP)
    values = _plain(part.table.column(dataset.key_date))
    if pa.types.is_string(values.type):
        values, _, _ = _strip_redactions(values, cat)
    return _moments(values, cat).values


# ---------------------------------------------------------------------------------------------


def _plain(column: pa.ChunkedArray) -> pa.Array:
    values = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if pa.types.is_large_string(values.type) or pa.types.is_string_view(values.type):
        values = values.cast(pa.string())
    return values


def _count(mask: pa.Array) -> int:
    return pc.sum(mask).as_py() or 0


def _indices(mask: pa.Array) -> np.ndarray:
    return np.flatnonzero(np.asarray(mask.fill_null(False)))


def _repeat(text: str, n: int) -> pa.Array:
    return pa.repeat(pa.scalar(text), n)


def _all_null(table: pa.Table) -> pa.Array:
    blank = pa.array(np.ones(table.num_rows, dtype=bool))
    for column in table.columns:
        empty = pc.is_null(column, nan_is_null=True)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            empty = pc.or_kleene(empty, pc.equal(column, ""))
        blank = pc.and_(blank, empty)
        if not pc.any(blank).as_py():
            break
    return blank.combine_chunks() if isinstance(blank, pa.ChunkedArray) else blank


def _strip_redactions(values: pa.Array, cat: Catalog
                      ) -> tuple[pa.Array, pa.Array | None, pa.Array | None]:
    """Empty text, redaction strings and texts that are no value become NULL; returns the masks
    of the redacted cells and of those that held no value.

    No value: one of Excel's error values (#N/A), a formula saved without its value (the reader
    gives its text, "=SUM(B2:B4)"), or text holding NUL characters (binary debris); such a cell
    is kept in the row's `unparsed` list, never taken for a blank.

    Each distinct text is judged once (`Catalog.is_redaction`); only texts with a parenthesis
    can be exemption markers, so most never reach the regular expression."""
    encoded = values.dictionary_encode()
    texts = encoded.dictionary
    maybe = pc.match_substring(texts, "(")
    marker = np.zeros(len(texts), dtype=bool)
    for position in np.flatnonzero(np.asarray(maybe.fill_null(False))):
        marker[position] = cat.is_redaction(texts[int(position)].as_py())
    marker |= np.asarray(pc.is_in(texts, value_set=pa.array([*cat.redaction_markers, ""])))
    no_value = np.asarray(pc.or_(pc.or_(
        pc.is_in(pc.utf8_upper(pc.utf8_trim_whitespace(texts)), value_set=_ERROR_VALUES),
        pc.starts_with(texts, FORMULA_MARK)), pc.match_substring(texts, "\x00")))
    if not (marker.any() or no_value.any()):
        return values, None, None
    hit = pa.array(marker | no_value).take(encoded.indices)
    marked = pc.and_(pa.array(marker).take(encoded.indices), pc.not_equal(values, ""))
    unreadable = pa.array(no_value).take(encoded.indices)
    values = pc.if_else(hit, pa.scalar(None, pa.string()), values)
    return (values, marked if pc.any(marked).as_py() else None,
            unreadable if pc.any(unreadable).as_py() else None)


def _unparsed_texts(name: str, raw: pa.Array) -> pa.Array:
    """`column=raw value` for each cell; a NUL character is written \\x00."""
    texts = pc.replace_substring(pc.cast(raw, pa.string()), "\x00", "\\x00")
    return pc.binary_join_element_wise(pa.scalar(f"{name}="), texts, "")


def _convert(kind: str | None, values: pa.Array, cat: Catalog) -> _Converted:
    if kind in ("timestamp", "date"):
        moments = _moments(values, cat)
        if kind == "date":
            moments.values = pc.cast(moments.values, pa.date32(), safe=False)
        return moments
    if kind == "integer":
        return _numbers(values, _WHOLE_NUMBER, pa.int32())
    if kind == "decimal":
        return _numbers(values, _DECIMAL, pa.float64())
    if kind == "yes_no":
        return _mapped(values, cat.yes_no, pa.bool_())
    if kind == "criminality":
        return _mapped(values, cat.criminality, pa.string())
    if kind == "aor":
        return _field_offices(values)
    return _Converted(values)


def _failed(source: pa.Array, result: pa.Array) -> pa.Array:
    return pc.and_(pc.is_valid(source), pc.is_null(result))


def _moments(values: pa.Array, cat: Catalog) -> _Converted:
    """Dates and date-times from typed columns, Excel serial numbers, ISO text or other formats."""
    if pa.types.is_timestamp(values.type) or pa.types.is_date(values.type):
        return _Converted(pc.cast(values, TIMESTAMP))
    if pa.types.is_integer(values.type) or pa.types.is_floating(values.type):
        result = _from_serial(pc.cast(values, pa.float64()), cat)
        return _Converted(result, _failed(values, result))
    if not pa.types.is_string(values.type):
        values = pc.cast(values, pa.string())
    try:  # the common case: every value is an ISO date-time, as fastexcel writes them
        result = pc.cast(values, TIMESTAMP)
    except pa.ArrowInvalid:
        iso = pc.match_substring_regex(values, _ISO_MOMENT)
        try:
            result = pc.cast(pc.if_else(iso, values, pa.scalar(None, pa.string())), TIMESTAMP)
        except pa.ArrowInvalid:  # a well-formed but impossible date such as 2024-02-30
            result = pa.nulls(len(values), TIMESTAMP)
    result = pc.round_temporal(result, unit="second")
    missing = _failed(values, result)
    if pc.any(missing).as_py():
        serial = pc.match_substring_regex(values, _SERIAL)
        numbers = pc.cast(pc.if_else(pc.and_(missing, serial), values,
                                     pa.scalar(None, pa.string())), pa.float64())
        result = pc.coalesce(result, _from_serial(numbers, cat))
        missing = _failed(values, result)
        for fmt in cat.datetime_formats:
            if not pc.any(missing).as_py():
                break
            candidates = pc.if_else(missing, values, pa.scalar(None, pa.string()))
            parsed = pc.strptime(candidates, format=fmt, unit="us", error_is_null=True)
            # strptime rolls impossible days over (30 February -> 2 March): keep a value only if
            # writing it back gives the text it came from.
            written = pc.strftime(pc.cast(parsed, pa.timestamp("s")), format=fmt)
            same = pc.equal(_unpadded(written), _unpadded(candidates))
            parsed = pc.if_else(pc.fill_null(same, False), parsed, pa.scalar(None, TIMESTAMP))
            result = pc.coalesce(result, parsed)
            missing = _failed(values, result)
    return _Converted(result, missing)


def _unpadded(text: pa.Array) -> pa.Array:
    """Dates and times with leading zeros dropped ("01/02/2025 09:05" -> "1/2/2025 9:5")."""
    return pc.replace_substring_regex(pc.utf8_trim_whitespace(text), r"(^|\D)0+(\d)", r"\1\2")


def _from_serial(days: pa.Array, cat: Catalog) -> pa.Array:
    # Serial 1 is 1900-01-01; anything past year 9999 is not a date. Excel's 1900 leap-year bug
    # only shifts dates before March 1900, far outside any release.
    usable = pc.and_(pc.greater_equal(days, 1.0), pc.less(days, 2_958_466.0))
    days = pc.if_else(usable, days, pa.scalar(None, pa.float64()))
    epoch = (date.fromisoformat(cat.excel_epoch) - date(1970, 1, 1)).days
    seconds = pc.round(pc.multiply(pc.add(days, float(epoch)), float(_SECONDS_PER_DAY)))
    micros = pc.cast(pc.multiply(seconds, 1_000_000.0), pa.int64())
    return pc.cast(micros, TIMESTAMP)


def _numbers(values: pa.Array, pattern: str, target: pa.DataType) -> _Converted:
    source = values
    if not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)):
        if not pa.types.is_string(values.type):
            values = source = pc.cast(values, pa.string())
        try:  # the common case: plain numbers that fit
            return _Converted(pc.cast(values, target))
        except pa.ArrowInvalid:
            pass
        ok = pc.match_substring_regex(values, pattern)
        text = pc.replace_substring_regex(pc.if_else(ok, values, pa.scalar(None, pa.string())),
                                          r"[\s$,]|\.0*\s*$" if pa.types.is_integer(target)
                                          else r"[\s$,]", "")
        values = pc.cast(text, pa.float64())
    # A value the column's type cannot hold (a birth year of 3,000,000,000, a fraction in a
    # count) is NULL and kept in `unparsed`, never an error for the whole file.
    numbers = pc.cast(values, pa.float64())
    usable = pc.is_finite(numbers)
    if pa.types.is_integer(target):
        bounds = np.iinfo(target.to_pandas_dtype())
        usable = pc.and_(usable, pc.and_(pc.equal(pc.floor(numbers), numbers), pc.and_(
            pc.greater_equal(numbers, float(bounds.min)), pc.less_equal(numbers, float(bounds.max)))))
    result = pc.cast(pc.if_else(usable, numbers, pa.scalar(None, pa.float64())), target)
    return _Converted(result, _failed(source, result))


def _mapped(values: pa.Array, mapping: dict, target: pa.DataType) -> _Converted:
    if pa.types.is_boolean(values.type) and target == pa.bool_():
        return _Converted(values)
    if not pa.types.is_string(values.type):
        values = pc.cast(values, pa.string())
    keys = pa.array(list(mapping), pa.string())
    index = pc.index_in(pc.utf8_trim_whitespace(values), value_set=keys)
    result = pa.array(list(mapping.values()), target).take(index)
    return _Converted(result, _failed(values, result))


def _field_offices(values: pa.Array) -> _Converted:
    names, _ = _aor_lookup(values)
    return _Converted(names, _failed(values, names))


def _aor_codes(values: pa.Array) -> pa.Array:
    return _aor_lookup(values)[1]


def _aor_lookup(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    if not pa.types.is_string(values.type):
        values = pc.cast(values, pa.string())
    encoded = values.dictionary_encode()
    offices = [normalise_aor(raw) for raw in encoded.dictionary.to_pylist()]
    names = pa.array([o.name if o else None for o in offices], pa.string())
    codes = pa.array([o.code if o else None for o in offices], pa.string())
    return names.take(encoded.indices), codes.take(encoded.indices)


def _derive(source: pa.Array, mapping: dict[str, str], otherwise: str) -> pa.Array:
    index = pc.index_in(source, value_set=pa.array(list(mapping), pa.string()))
    mapped = pa.array(list(mapping.values()), pa.string()).take(index)
    filled = pc.coalesce(mapped, pa.scalar(otherwise))
    return pc.if_else(pc.is_valid(source), filled, pa.scalar(None, pa.string()))


def _extras(n: int, extras: dict[str, pa.Array]) -> pa.Array:
    """The columns no canonical name covers, as one map per row: header -> text as written."""
    if not extras:
        return pa.MapArray.from_arrays(pa.array(np.zeros(n + 1, dtype=np.int32)),
                                       pa.array([], pa.string()), pa.array([], pa.string()))
    headers = list(extras)
    texts = [pc.cast(v, pa.string()) for v in extras.values()]
    present = np.stack([np.asarray(pc.is_valid(t)) for t in texts], axis=1)  # rows x columns
    rows, columns = np.nonzero(present)  # row-major: each row's cells in header order
    items = pa.concat_arrays(texts).take(pa.array(columns * n + rows))
    keys = pa.array(headers, pa.string()).take(pa.array(columns))
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(present.sum(axis=1), out=offsets[1:])
    return pa.MapArray.from_arrays(pa.array(offsets), keys, items)


def _row_lists(n: int, entries: list[tuple[np.ndarray, pa.Array]]) -> pa.Array:
    """A list<string> per row from (row indices, texts) pairs, in the pairs' order within a row."""
    if not entries:
        return pa.ListArray.from_arrays(pa.array(np.zeros(n + 1, dtype=np.int32)),
                                        pa.array([], pa.string()))
    rows = np.concatenate([r for r, _ in entries])
    texts = pa.concat_arrays([t for _, t in entries])
    order = np.argsort(rows, kind="stable")
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.bincount(rows, minlength=n), out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), texts.take(pa.array(order)))


def _quarantine(part: RawPart, dataset: Dataset, raw: pa.Table,
                failed: pa.Array) -> list[QuarantinedRow]:
    position = raw.column_names.index(dataset.key_date)
    header = part.plan.match.raw_headers[position] if position < len(
        part.plan.match.raw_headers) else dataset.key_date
    letter = part.columns[position]
    indices = _indices(failed)
    values = pc.cast(_plain(raw.column(position)).take(pa.array(indices)), pa.string())
    spreadsheet = part.plan.name is not None
    return [
        QuarantinedRow(part.plan.name, int(part.rows[i]),
                       f"{letter}{part.rows[i]}" if spreadsheet else letter,
                       f"{header} {value!r} is not a date")
        for i, value in zip(indices, values.to_pylist(), strict=True)
    ]


def _row_hashes(raw: pa.Table) -> np.ndarray:
    """A 64-bit hash of every row's raw cells (DuckDB's hash; one connection per thread)."""
    con = getattr(_hash_connections, "con", None)
    if con is None:
        con = _hash_connections.con = duckdb.connect()
    arguments = ", ".join(f'"{name}"' for name in raw.column_names)
    con.register("_raw_part", raw)
    try:
        hashes = con.execute(f"SELECT hash({arguments}) AS h FROM _raw_part").fetchnumpy()["h"]
    finally:
        con.unregister("_raw_part")
    return np.asarray(hashes, dtype=np.uint64)
