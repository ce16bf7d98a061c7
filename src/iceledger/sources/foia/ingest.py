"""`iceledger ingest foia`: load individual-level ICE FOIA release files into the warehouse.

For each file: recognise each sheet's dataset and layout from its header row (a layout listed in
foia_layouts.toml, else the header vocabulary of foia_vocabulary.toml, else a declared layout) and
read ICE's own Summary and Footnotes sheets (ice_sheets). Then, inside one transaction
(`Warehouse.load`), DuckDB loads the rows of each dataset with queries that Python only writes
(canonical.SheetRows): over `read_csv` or `read_parquet` on DuckDB's own threads, or over the
Arrow slices that fastexcel reads from a workbook on worker threads. Per sheet, one query notes
every row (its hash, whether it is blank, whether its key date is unreadable) and one types and
inserts the rows that are records; then a hash aggregate flags rows identical to an earlier row of
the same file, rows with an unreadable key date go to the quarantine, and the validation checks
(checks) and the tallies of what each column carries (foia_capabilities) are aggregates over the
rows just loaded. The rows of every dataset, the checks and the row accounting land together or
not at all. A file that cannot be read is reported as one error line and the other files still
load. After the files, the derived tables are rebuilt once (iceledger.sources.foia.derived).

Memory stays bounded whatever the file size: DuckDB streams and works under the load's memory
cap, and at most `workers + AHEAD` workbook slices are in flight.
"""

from __future__ import annotations

import ctypes
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa

from iceledger.errors import IceledgerError, Location, SourceError
from iceledger.sources.foia import derived as foia_derived
from iceledger.sources.foia import ice_sheets
from iceledger.sources.foia.canonical import (
    BLANK,
    HASH,
    HELPERS,
    KEY_TEXT,
    NAMED,
    OTHER_HEADER,
    STATUS,
    UNREADABLE_KEY,
    FileContext,
    SheetRows,
    quarantine_reason,
    register_functions,
    sql_type,
)
from iceledger.sources.foia.checks import (
    KNOWN_FACILITY_CODES,
    UNREADABLE_VALUES,
    CheckContext,
    CheckRun,
    read_facility_codes,
    reference_facility_codes,
    results_table,
)
from iceledger.sources.foia.declared import declared_catalog
from iceledger.sources.foia.layouts import Catalog, Dataset, catalog
from iceledger.sources.foia.readers import (
    ROW,
    UNREADABLE_FORMS,
    FoiaReader,
    SheetPlan,
    open_reader,
)
from iceledger.sources.xlsx_files import missing_file
from iceledger.tables import (
    FOIA_CAPABILITIES,
    FOIA_CHECKS,
    FOIA_DETAINERS,
    FOIA_PUBLISHED_TOTALS,
    FOIA_RELEASE_NOTES,
    FOIA_STINTS,
    QUARANTINE,
)
from iceledger.warehouse import (
    THREADS,
    Loader,
    QuarantinedRow,
    RowAccounting,
    SourceLoad,
    Warehouse,
    file_sha256,
    ident,
    literal,
)

WORKERS = int(THREADS) if THREADS else 2
AHEAD = 2
_DONE = object()  # the producer's last hand-off
SUFFIXES = (".xlsx", ".xlsm", ".xls", ".xlsb", ".ods", ".csv", ".tsv", ".parquet")
# The function through which the insert notes every row it reads (_Notes).
NOTE = "iceledger_note"
PROGRESS_SECONDS = 0.2
STREAM_ROWS = 122_880  # rows a batch, when one query's rows stream into another

Progress = Callable[[int], None]  # bytes of the current file just processed


@dataclass
class FileOutcome:
    path: Path
    status: str  # "loaded", "already loaded" or "error"
    sha256: str | None = None
    dataset: str | None = None
    layout: str | None = None
    release: str | None = None
    synthetic: bool = False
    accounting: RowAccounting = field(default_factory=RowAccounting)
    checks: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    first_quarantined: QuarantinedRow | None = None  # the rest are in the quarantine table


@dataclass
class IngestReport:
    files: list[FileOutcome]
    derived: foia_derived.DerivedSummary | None = None
    derived_error: str | None = None

    @property
    def ok(self) -> bool:
        return self.derived_error is None and all(f.status != "error" for f in self.files)


def ordered_parallel(items: Iterable[tuple[Callable[[], object], int]],
                     workers: int) -> Iterator[tuple[object, int]]:
    """Run work items on `workers` threads; yield their results in order.

    The items themselves are drawn on a thread of their own (for xlsx that is where the zip is
    inflated and cut into slices), so the caller's thread is left to write to the warehouse. At
    most `workers + AHEAD` items are in flight, which bounds the memory.
    """
    stop = threading.Event()
    handoff: queue.Queue = queue.Queue(maxsize=workers + AHEAD)

    def hand(entry) -> None:
        while not stop.is_set():
            try:
                handoff.put(entry, timeout=0.1)
                return
            except queue.Full:
                continue

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="foia") as pool:
        def produce() -> None:
            source = iter(items)
            try:
                for work, size in source:
                    if stop.is_set():
                        break
                    hand((pool.submit(work), size))
                hand(_DONE)
            except BaseException as exc:  # handed to the caller's thread, raised there
                hand(exc)
            finally:
                close = getattr(source, "close", None)
                if close:
                    close()

        producer = threading.Thread(target=produce, name="foia-reader", daemon=True)
        producer.start()
        try:
            while (entry := handoff.get()) is not _DONE:
                if isinstance(entry, BaseException):
                    raise entry
                future, size = entry
                yield future.result(), size
        finally:
            stop.set()
            while producer.is_alive():
                try:
                    entry = handoff.get(timeout=0.05)
                except queue.Empty:
                    continue
                if isinstance(entry, tuple):
                    entry[0].cancel()
            producer.join()


def keep_freed_memory() -> None:
    """Ask glibc to keep freed memory for reuse instead of returning it to the system.

    calamine allocates and frees a few hundred megabytes per slice of a sheet; with glibc's
    defaults every such block is a fresh mmap, and the page faults cost a large share of the
    parse time.
    Elsewhere (no glibc) this does nothing.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    mmap_threshold, trim_threshold = -3, -1  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD
    libc.mallopt(mmap_threshold, 256 << 20)
    libc.mallopt(trim_threshold, 512 << 20)


# A date only day first: a day of 13 to 31, then a month. When a date column's cells reading so
# are more than DAY_FIRST_SHARE of a sheet's rows, its day/month/year dates are not a slip here
# and there, and those read month first are wrong.
_DAY_FIRST = r"^\s*(1[3-9]|2\d|3[01])[/.-](0?[1-9]|1[0-2])[/.-]\d{2}(\d{2})?\b"
DAY_FIRST_SHARE = 0.01


def foia_paths(paths: Iterable[Path]) -> list[Path]:
    """The files named, with folders expanded to the release files in them (sorted), and to
    those in forms a release comes in that cannot be read (each then fails in one line)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in SUFFIXES
                                or p.suffix.lower() in UNREADABLE_FORMS))
        else:
            found.append(path)
    return found


def ingest_foia(
    paths: Iterable[Path],
    warehouse: Warehouse,
    *,
    release: str | None = None,
    facility_references: Iterable[Path] = (),
    workers: int = WORKERS,
    on_file: Callable[[Path, int], Progress] | None = None,
    derive: bool = True,
    layout: Path | None = None,
    on_derive: Callable[[], None] | None = None,
) -> IngestReport:
    """Load each file (one transaction each), then rebuild the derived tables once (unless
    `derive` is False: then `iceledger derive` rebuilds them when the loading is done). They are
    rebuilt too when an earlier run's derive was interrupted, even if nothing new loads.
    `layout`: a declared layout file (iceledger.sources.foia.declared) for layouts the catalogue
    does not know. `workers`: threads reading workbook slices."""
    cat = declared_catalog(layout) if layout is not None else catalog()
    if release is not None and _as_date(release) is None:
        raise IceledgerError(f"--release {release!r} is not a date (YYYY-MM-DD)")
    user_codes = read_facility_codes(facility_references)
    keep_freed_memory()
    outcomes = []
    for path in paths:
        started = time.perf_counter()
        progress = on_file(path, path.stat().st_size if path.exists() else 0) if on_file else None
        try:
            outcome = _ingest_file(Path(path), warehouse, release, user_codes, workers, progress,
                                   cat)
        except IceledgerError as exc:
            outcome = FileOutcome(Path(path), "error", error=str(exc))
        except duckdb.InterruptException:  # DuckDB's form of Ctrl-C: stop everything
            raise KeyboardInterrupt from None
        except Exception as exc:  # noqa: BLE001 - input no check foresaw, or a fault of ours
            if _interrupted(exc):
                raise KeyboardInterrupt from None
            # Still one line for this file (its load rolled back), and the others load.
            outcome = FileOutcome(Path(path), "error", error=f"{Path(path).name}: cannot be "
                                  f"loaded ({type(exc).__name__}: {exc}); nothing was loaded")
        outcome.seconds = time.perf_counter() - started
        outcomes.append(outcome)
    report = IngestReport(outcomes)
    if derive and (any(o.status == "loaded" for o in outcomes) or warehouse.derived_stale()):
        if on_derive:
            on_derive()
        try:
            report.derived = foia_derived.derive_warehouse(warehouse)
        except IceledgerError as exc:
            report.derived_error = str(exc)
    return report


def _ingest_file(path: Path, warehouse: Warehouse, release: str | None,
                 user_codes: frozenset[str], workers: int, progress: Progress | None,
                 cat: Catalog) -> FileOutcome:
    if not path.is_file():
        raise SourceError(Location(path.name), missing_file(path))
    sha256 = file_sha256(path)
    outcome = FileOutcome(path, "loaded", sha256=sha256)
    if warehouse.has_source(sha256):
        outcome.status = "already loaded"
        return outcome
    reader = open_reader(path, cat)
    try:
        plans = reader.plans()
        groups = _by_dataset(path, plans)
        outcome.dataset = ",".join(groups)
        outcome.layout = ",".join(dict.fromkeys(p.match.layout.name for p in plans))
        notes = ice_sheets.read_notes(reader.ice_sheets)
        totals, summary_warnings = ice_sheets.read_summary(reader.ice_sheets, cat)
        outcome.warnings.extend(f"{path.name}, {w}" for w in summary_warnings)
        outcome.release = (_release_from_name(path.name) or release
                           or ice_sheets.updated_through(notes, cat))
        if outcome.release is None:
            outcome.release = _latest_event_date(reader, plans, workers, cat)
            outcome.warnings.append(
                f"{path.name}: no release date (YYYYMMDD) in the file name or its notes; "
                f"release set to the latest key date in the file, {outcome.release}")
        marker = cat.synthetic_marker
        outcome.synthetic = marker in path.name.upper() or any(
            marker in p.title_text.upper() for p in plans)
        context = FileContext(path.name, sha256, outcome.release, cat)
        window = _window_start(" ".join([path.name, *(p.title_text for p in plans)]))
        codes = (reference_facility_codes() | user_codes
                 | _release_facility_codes(warehouse, outcome.release))
        capabilities = ice_sheets.Capabilities()
        runs = {name: CheckRun(CheckContext(cat.datasets[name], _as_date(outcome.release),
                                            window)) for name in groups}
        datasets = _FileRows(reader, context, outcome, capabilities, workers, progress)

        def write(loader: Loader) -> None:
            datasets.begin(loader, codes)
            for name, group in groups.items():
                datasets.load(loader, cat.datasets[name], group, runs[name])

        compared: list[dict] = []

        def check_results() -> Iterator[pa.Table]:
            # Runs once every dataset's rows are in: the tallies are complete.
            outcome.warnings.extend(reader.warnings)
            for name in groups:
                undated = capabilities.records(name).get(None, 0)
                if undated:
                    outcome.warnings.append(
                        f"{path.name}: {undated:,} {name} records have no "
                        f"{cat.datasets[name].key_date} (empty or redacted): loaded, but in no "
                        "month or fiscal year, so no count by date includes them")
            rows, summary_checks = ice_sheets.compare_summary(
                totals, capabilities, {name: [p.name for p in group]
                                       for name, group in groups.items()}, cat)
            compared.extend(rows)
            for name in dict.fromkeys([*groups, *summary_checks]):
                results = runs[name].results() if name in runs else []
                results += [summary_checks[name]] if name in summary_checks else []
                outcome.checks.extend(results)
                yield results_table(sha256, path.name, name, results)

        # The datasets' tables are written by `write`; named here, they are registered with
        # the source as the other tables are.
        tables: dict[str, Iterable[pa.Table]] = {
            cat.datasets[name].table: () for name in groups}
        tables[FOIA_CHECKS] = check_results()
        tables[FOIA_PUBLISHED_TOTALS] = _after(lambda: [ice_sheets.totals_table(
            sha256, path.name, outcome.release, compared)])
        tables[FOIA_CAPABILITIES] = _after(lambda: [capabilities.table(
            sha256, path.name, outcome.release)])
        tables[FOIA_RELEASE_NOTES] = _after(lambda: [ice_sheets.notes_table(
            sha256, path.name, outcome.release, notes)])
        warehouse.load(SourceLoad(
            path=path, sha256=sha256, kind="foia", tables=tables,
            accounting=outcome.accounting, dataset=outcome.dataset, layout=outcome.layout,
            warnings=outcome.warnings, synthetic=outcome.synthetic, write=write))
    finally:
        reader.close()
    return outcome


def _report_progress(con: duckdb.DuckDBPyConnection) -> None:
    """Have the connection keep its queries' progress, for query_progress(), unprinted."""
    con.execute("SET enable_progress_bar = true")
    con.execute("SET enable_progress_bar_print = false")


def _interrupted(exc: BaseException) -> bool:
    """Whether an error is Ctrl-C in disguise: DuckDB reports one that reaches it while it
    takes in a batch ("Query interrupted") or runs a Python function (a KeyboardInterrupt)."""
    return "interrupted" in str(exc).lower() or "KeyboardInterrupt" in str(exc)


def _after(build: Callable[[], list[pa.Table]]) -> Iterator[pa.Table]:
    """Tables built only when the warehouse reaches them: after the rows they describe."""
    yield from (t for t in build() if t.num_rows)


class _Notes:
    """What the insert notes of every row it reads, as the rows pass its filter (the noting
    function, `_FileRows._insert`): its row number, hash, what it is (canonical.STATUS) and, of a
    row whose key date is no date, that date's text; for the accounting, the quarantine and the
    duplicates. DuckDB calls it from its threads, a vector of rows at a time, in no set order;
    it keeps the vectors as they come (no Python per row) and says to keep the records."""

    def __init__(self) -> None:
        self.sheet = 0
        self._parts: list[tuple[int, pa.ChunkedArray, pa.ChunkedArray, pa.ChunkedArray,
                                pa.ChunkedArray]] = []
        self._lock = threading.Lock()

    def __call__(self, row: pa.ChunkedArray, hash_: pa.ChunkedArray, status: pa.ChunkedArray,
                 key_text: pa.ChunkedArray, keep: pa.ChunkedArray) -> pa.ChunkedArray:
        with self._lock:
            self._parts.append((self.sheet, row, hash_, status, key_text))
        return keep

    @property
    def read(self) -> int:
        """Rows noted, blank ones included."""
        return sum(len(part[1]) for part in self._parts)

    def table(self) -> pa.Table:
        """Every row noted: sheet, row, hash, status, key_text (the vectors as they came, as
        chunks: not copied into one array)."""
        schema = pa.schema([("sheet", pa.int32()), ("row", pa.int64()), ("hash", pa.uint64()),
                            ("status", pa.int8()), ("key_text", pa.string())])
        sheets = [pa.repeat(pa.scalar(sheet, pa.int32()), len(row))
                  for sheet, row, *_ in self._parts]
        columns = [pa.chunked_array([chunk for part in self._parts for chunk in part[i].chunks],
                                    schema.field(i).type) for i in range(1, len(schema))]
        return pa.Table.from_arrays([pa.chunked_array(sheets, pa.int32()), *columns],
                                    schema=schema)


class _FileRows:
    """Loads the rows of one file's datasets inside the load's transaction (see the module's
    docstring), filling the file's accounting, checks and capabilities."""

    def __init__(self, reader: FoiaReader, context: FileContext, outcome: FileOutcome,
                 capabilities: ice_sheets.Capabilities, workers: int,
                 progress: Progress | None):
        self.reader = reader
        self.context = context
        self.outcome = outcome
        self.capabilities = capabilities
        self.workers = workers
        self.progress = progress
        self.size = reader.path.stat().st_size
        self.notes = _Notes()

    def begin(self, loader: Loader, codes: frozenset[str]) -> None:
        con = loader.con
        register_functions(con)
        # The load's own connection: the function lives as long as it (one file).
        con.create_function(NOTE, self._note, ["BIGINT", "UBIGINT", "TINYINT", "VARCHAR",
                                               "BOOLEAN"], "BOOLEAN", type="arrow",
                            side_effects=True, null_handling="special")
        _report_progress(con)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {KNOWN_FACILITY_CODES} AS "
                    "SELECT DISTINCT unnest(?::VARCHAR[]) AS code", [sorted(codes)])

    def _note(self, row: pa.ChunkedArray, hash_: pa.ChunkedArray, status: pa.ChunkedArray,
              key_text: pa.ChunkedArray, keep: pa.ChunkedArray) -> pa.ChunkedArray:
        return self.notes(row, hash_, status, key_text, keep)

    def load(self, loader: Loader, dataset: Dataset, plans: list[SheetPlan],
             checks: CheckRun) -> None:
        cat = self.context.catalog
        required = {name: sql_type(cat.types.get(name))
                    for name in foia_derived.required_columns(dataset.table)}
        sheets = [SheetRows(plan, self.reader.columns(plan), self.context, required)
                  for plan in plans]
        self.notes = _Notes()
        for rows in sheets:
            self.notes.sheet = rows.plan.index
            self._insert(loader, dataset.table, rows)
        quarantined = self._account(loader, dataset.table, sheets, self.notes)
        unparsed = {rows.plan.index: self._tally(loader, dataset, rows, checks)
                    for rows in sheets}
        if quarantined or any(unparsed.values()):
            self._refuse_day_first_dates(loader, dataset.table, sheets, unparsed)

    # -- the rows in ------------------------------------------------------------------------

    def _insert(self, loader: Loader, table: str, rows: SheetRows) -> None:
        """Insert the sheet's records into `table` in one query, which notes every row it
        reads through the noting function (its filter: it keeps the records)."""
        records = (f"SELECT * EXCLUDE ({', '.join(HELPERS)}), false AS is_exact_duplicate "
                   f"FROM ({{}}) WHERE {NOTE}(source_row, {HASH}, {STATUS}, {KEY_TEXT}, "
                   f"{STATUS} < {BLANK})")
        relation = self.reader.relation(rows.plan)
        if relation is None:
            self._insert_parts(loader, table, rows, records.format(rows.query("part")))
            return
        try:
            self._insert_relation(loader, table, rows, records, relation)
            if not self.reader.numbered(rows.plan, self.notes.read):
                # Numbered wrong (a CSV's empty lines): the rows go, and come again renumbered.
                prefix = f"{self.context.record_prefix}:{rows.plan.index}"
                loader.execute(f"DELETE FROM {ident(table)} WHERE record_id >= "
                               f"{literal(prefix + ':')} AND record_id < {literal(prefix + ';')}")
                self.notes = _Notes()
                self.notes.sheet = rows.plan.index
                self._insert_relation(loader, table, rows, records,
                                      self.reader.relation(rows.plan))
        except (duckdb.InvalidInputException, duckdb.IOException) as exc:
            if _interrupted(exc):
                raise KeyboardInterrupt from None
            raise self.reader.read_error(exc) from None

    def _insert_relation(self, loader: Loader, table: str, rows: SheetRows, records: str,
                         relation: str) -> None:
        """The query over the reader's relation. A relation that reads on one thread (a CSV's:
        DuckDB numbers its records only so) is read, when DuckDB has more, by a query of its
        own, whose rows stream into the query that types them: that one, the bulk of the work,
        runs on every thread."""
        (threads,) = loader.execute("SELECT current_setting('threads')")[0]
        if not self.reader.serial or int(threads) == 1:
            with self._reporting(loader.con):
                loader.insert(table, records.format(rows.query(relation)))
            return
        reading = loader.con.cursor()
        _report_progress(reading)
        try:
            with self._reporting(reading):
                loader.insert(table, records.format(rows.query("part")), reading.sql(
                    f"SELECT * FROM {relation}").to_arrow_reader(STREAM_ROWS))
        finally:
            reading.close()

    def _insert_parts(self, loader: Loader, table: str, rows: SheetRows, records: str) -> None:
        """A workbook sheet: its slices, read on worker threads, stream in order into the
        one query."""
        schema = pa.schema([(c.source, pa.string()) for c in rows.columns]
                           + [(ROW, pa.int64())])
        failure: list[BaseException] = []

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                for part, size in ordered_parallel(self.reader.work(rows.plan), self.workers):
                    yield from part.table.cast(schema).to_batches()
                    if self.progress:
                        self.progress(size)
            except BaseException as exc:  # raised again on this side of DuckDB, as it was
                failure.append(exc)
                raise

        try:
            loader.insert(table, records, pa.RecordBatchReader.from_batches(schema, batches()))
        except BaseException:
            if failure:
                raise failure[0] from None
            raise

    @contextmanager
    def _reporting(self, con: duckdb.DuckDBPyConnection) -> Iterator[None]:
        """Report the progress DuckDB makes on the statement run inside, in the file's bytes."""
        if self.progress is None:
            yield
            return
        reported = [0]
        done = threading.Event()

        def watch() -> None:
            while not done.wait(PROGRESS_SECONDS):
                percent = con.query_progress()
                if percent > 0:
                    now = min(int(self.size * percent / 100), self.size)
                    if now > reported[0]:
                        self.progress(now - reported[0])
                        reported[0] = now

        watcher = threading.Thread(target=watch, name="foia-progress", daemon=True)
        watcher.start()
        try:
            yield
        finally:
            done.set()
            watcher.join()
        self.progress(self.size - reported[0])

    # -- flags, quarantine, accounting ------------------------------------------------------

    def _account(self, loader: Loader, table: str, sheets: list[SheetRows],
                 notes: _Notes) -> int:
        """The file's row accounting, its exact duplicates flagged and its rows quarantined;
        the rows quarantined from the sheets' records (not those the reader left out)."""
        accounting, prefix = self.outcome.accounting, self.context.record_prefix
        noted = notes.table()
        kept, blank, failed, named = loader.execute(
            f"SELECT count(*) FILTER (WHERE status < {BLANK}), count(*) FILTER (WHERE status = "
            f"{BLANK}), count(*) FILTER (WHERE status >= {UNREADABLE_KEY}), count(*) FILTER "
            f"(WHERE status = {NAMED}) FROM part", noted)[0]
        blank += sum(self.reader.unread_blank_rows(rows.plan) for rows in sheets)
        duplicates = 0
        if named:
            # Two equal rows are the same record twice only if they name whom they are
            # about: without an identifier (the UW production) equal rows are different
            # people's. Equal rows have the same identifiers, so only named rows are compared.
            flagged = _duplicates(loader, noted)
            duplicates = flagged.num_rows
            if duplicates:
                loader.execute(
                    f"UPDATE {ident(table)} SET is_exact_duplicate = true WHERE record_id >= "
                    f"{literal(prefix + ':')} AND record_id < {literal(prefix + ';')} AND "
                    f"record_id IN (SELECT {literal(prefix + ':')} || sheet || ':' || row "
                    "FROM part)", flagged)
        if failed:
            self._refuse_other_headers(loader, sheets, noted)
            for rows in sheets:
                self._quarantine(loader, rows, noted)
        rejected = [row for rows in sheets for row in self.reader.rejected_rows(rows.plan)]
        if rejected:
            self._quarantine_rejected(loader, rejected)
        accounting.rows_read += kept + failed + len(rejected)
        accounting.rows_duplicate += duplicates
        accounting.rows_loaded += kept - duplicates
        accounting.quarantined_rows += failed + len(rejected)
        if blank:
            self.outcome.warnings.append(f"{self.outcome.path.name}: {blank:,} blank rows (no "
                                         "value in any cell) are not records and were not "
                                         "loaded")
        return failed

    def _refuse_other_headers(self, loader: Loader, sheets: list[SheetRows],
                              noted: pa.Table) -> None:
        """Fail the file at a header row unlike its sheet's among the records (files of other
        layouts joined one under another): the rows below it were read under the wrong columns."""
        found = loader.execute(f"SELECT sheet, row, key_text FROM part WHERE status = "
                               f"{OTHER_HEADER} ORDER BY sheet, row LIMIT 1", noted)
        if not found:
            return
        index, row, text = found[0]
        rows = next(rows for rows in sheets if rows.plan.index == index)
        plan, key = rows.plan, rows.columns[rows.key].header
        raise SourceError(Location(self.context.file_name, plan.name, row=row),
                          f"a header row (its {key!r} column reads {text!r}) unlike the one at "
                          f"row {plan.header_row}: files of other "
                          "layouts joined one under another, whose rows would be read under the "
                          "wrong columns; split the file there")

    def _refuse_day_first_dates(self, loader: Loader, table: str, sheets: list[SheetRows],
                                unparsed: dict[int, int]) -> None:
        """Fail the file at a date column (the key date or any other) many of whose dates read
        only day first ("13/01/2012"): the column writes dates day/month/year, so its dates whose
        day is 12 or less were read month first, each a wrong date. Sought only among the cells
        no way of reading dates read: the key dates that are no date (noted, their rows
        quarantined) and the other date columns' cells in `unparsed`, in the sheets that have
        any (`unparsed`: rows with a cell in it, per sheet)."""
        failed = []  # (sheet, column position, row, text) of each date cell no way read
        for rows in sheets:
            index = rows.plan.index
            if rows.key is not None:
                failed.append(f"SELECT sheet, {rows.key} AS position, row, key_text AS text "
                              f"FROM part WHERE sheet = {index} AND status = {UNREADABLE_KEY}")
            others = [i for i in rows.date_columns if i != rows.key]
            if others and unparsed.get(index):
                prefix = f"{self.context.record_prefix}:{index}"
                names = "[" + ", ".join(literal(rows.columns[i].name) for i in others) + "]"
                positions = "[" + ", ".join(str(i) for i in others) + "]"
                failed.append(
                    f"SELECT {index}, {positions}[list_position({names}, split_part(entry, "
                    "'=', 1))], source_row, substr(entry, strpos(entry, '=') + 1) FROM (SELECT "
                    f"source_row, unnest(unparsed) AS entry FROM {ident(table)} WHERE "
                    f"record_id >= {literal(prefix + ':')} AND record_id < "
                    f"{literal(prefix + ';')} AND len(unparsed) > 0)")
        if not failed:
            return
        noted = self.notes.table()
        found = loader.execute(
            "SELECT sheet, position, min(row), arg_min(text, row), count(*) FROM ("
            f"{' UNION ALL '.join(failed)}) WHERE position IS NOT NULL AND regexp_matches(text, "
            f"{literal(_DAY_FIRST)}) GROUP BY sheet, position ORDER BY sheet, min(row)", noted)
        read = dict(loader.execute("SELECT sheet, count(*) FROM part GROUP BY sheet", noted))
        for index, position, row, text, count in found:
            if count < DAY_FIRST_SHARE * read[index]:
                continue
            rows = next(rows for rows in sheets if rows.plan.index == index)
            day = re.match(_DAY_FIRST, text)
            form = f"%d{text[day.end(1)]}%m{text[day.end(2)]}%{'Y' if day.group(3) else 'y'}"
            raise SourceError(Location(self.context.file_name, rows.plan.name, row=row),
                              f"{rows.columns[position].header} {text!r} is a date only day "
                              f"first, as are {count - 1:,} more: its column writes "
                              "day/month/year, and its dates whose day is 12 or less would be "
                              "read month first; declare its form in a layout file "
                              f"(date_formats = [\"{form}\"] and --layout; docs/foia-ingest.md)")

    def _quarantine(self, loader: Loader, rows: SheetRows, quarantined: pa.Table) -> None:
        if rows.key is None:
            return
        column, plan = rows.columns[rows.key], rows.plan
        cell = (f"{literal(column.reference)} || row" if plan.name is not None
                else literal(column.reference))
        sheet = "CAST(NULL AS VARCHAR)" if plan.name is None else literal(plan.name)
        chosen = (f"SELECT {literal(self.context.sha256)}, {literal(self.context.file_name)}, "
                 f"{sheet} AS sheet, row, {cell} AS cell, "
                 f"{quarantine_reason(column.header, 'status', 'key_text')} AS reason FROM part "
                 f"WHERE sheet = {plan.index} AND status >= {UNREADABLE_KEY} ORDER BY row")
        loader.execute(f"INSERT INTO {QUARANTINE} {chosen}", quarantined)
        if self.outcome.first_quarantined is None:
            first = loader.execute(f"SELECT sheet, row, cell, reason FROM ({chosen}) LIMIT 1",
                                   quarantined)
            self.outcome.first_quarantined = QuarantinedRow(*first[0]) if first else None

    def _quarantine_rejected(self, loader: Loader, rejected: list[QuarantinedRow]) -> None:
        """Rows the reader left out as unreadable (a CSV record of another field count than
        the header's), each with its place and why."""
        part = pa.table({"sheet": pa.array([r.sheet for r in rejected], pa.string()),
                         "row": pa.array([r.row_number for r in rejected], pa.int64()),
                         "cell": pa.array([r.cell for r in rejected], pa.string()),
                         "reason": pa.array([r.reason for r in rejected], pa.string())})
        loader.execute(f"INSERT INTO {QUARANTINE} SELECT {literal(self.context.sha256)}, "
                       f"{literal(self.context.file_name)}, sheet, row, cell, reason FROM part",
                       part)
        first = self.outcome.first_quarantined
        if first is None or rejected[0].row_number < (first.row_number or 0):
            self.outcome.first_quarantined = rejected[0]

    # -- checks and capabilities ------------------------------------------------------------

    def _tally(self, loader: Loader, dataset: Dataset, rows: SheetRows,
               checks: CheckRun) -> int:
        """The checks and the capabilities of one sheet, from the rows it loaded; the rows
        with a cell in `unparsed`."""
        plan, prefix = rows.plan, f"{self.context.record_prefix}:{rows.plan.index}"
        where = (f"FROM {ident(dataset.table)} WHERE record_id >= {literal(prefix + ':')} "
                 f"AND record_id < {literal(prefix + ';')}")
        month = (f"CAST(date_trunc('month', {ident(dataset.key_date)}) AS DATE)"
                 if dataset.key_date in rows.output_columns else "CAST(NULL AS DATE)")
        counted = [c for c in rows.output_columns if c not in ice_sheets.BOOKKEEPING]
        tests = checks.conditions(rows.typed_columns)
        items = [f"count({ident(c)})" for c in counted]
        for failed, checked in tests.values():
            items += [f"count(*) FILTER (WHERE ({failed}) AND ({checked}))",
                      f"count(*) FILTER (WHERE {checked})",
                      f"min(source_row) FILTER (WHERE ({failed}) AND ({checked}))"]
        # Grouped by the row's list of redacted columns as well (rows share a few such lists):
        # the redactions per column are counted from the lists, in the same scan.
        results = loader.execute(f"SELECT {month}, redacted, count(*), {', '.join(items)} "
                                 f"{where} GROUP BY ALL")
        totals = {name: [0, 0, None] for name in tests}
        for month_value, redacted, count, *values in results:
            self.capabilities.add(dataset.name, plan.name, month_value, count,
                                  dict(zip(counted, values, strict=False)))
            for column in redacted:
                self.capabilities.add_redacted(dataset.name, plan.name, month_value, column,
                                               count)
            for position, name in enumerate(tests):
                failed, total, first = values[len(counted) + 3 * position:][:3]
                tally = totals[name]
                tally[0] += failed
                tally[1] += total
                if first is not None and (tally[2] is None or first < tally[2]):
                    tally[2] = first
        for name, (failed, total, first) in totals.items():
            checks.add(name, failed, total, plan.name, first)
        return totals[UNREADABLE_VALUES][0] if UNREADABLE_VALUES in totals else 0


def _by_dataset(path: Path, plans: list[SheetPlan]) -> dict[str, list[SheetPlan]]:
    """The sheets of each dataset. A release layout listed whole has the same columns on every
    sheet (in any order), so a sheet of it that differs is an error; sheets read by their
    vocabulary (one per fiscal year, say) may differ, and their table takes every column of
    each."""
    groups: dict[str, list[SheetPlan]] = {}
    for plan in plans:
        group = groups.setdefault(plan.match.dataset.name, [])
        first = group[0] if group else plan
        listed = not (plan.match.by_vocabulary and first.match.by_vocabulary)
        ours, theirs = _columns(first), _columns(plan)
        if listed and ours.keys() != theirs.keys():
            missing = ", ".join(sorted(ours[c] for c in ours.keys() - theirs.keys())) or "none"
            extra = ", ".join(sorted(theirs[c] for c in theirs.keys() - ours.keys())) or "none"
            raise SourceError(
                Location(path.name, plan.name, row=plan.header_row),
                f"this sheet's header differs from sheet {first.name!r} (layout "
                f"{first.match.layout.name}): missing {missing}; extra {extra}")
        group.append(plan)
    return groups


def _columns(plan: SheetPlan) -> dict[str, str]:
    """A sheet's canonical columns, each with its header as written. Each sheet's columns are
    mapped by its own header row, so the same columns in another order, case or spacing are the
    same header."""
    return {canonical: raw for canonical, raw in zip(plan.match.canonical,
                                                     plan.match.raw_headers, strict=True)
            if canonical}


def _release_from_name(name: str) -> str | None:
    for found in catalog().release_date_pattern.finditer(name):
        try:
            return date(*(int(g) for g in found.groups())).isoformat()
        except ValueError:
            continue
    return None


def _as_date(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _window_start(name: str) -> date | None:
    """The earliest plausible key date: the start of the fiscal year before the first one the
    file's name (or its title rows: "FY2012 - FY2019 YTD") covers. Releases reach back a little before their first fiscal year (the July 2025
    release, "FY24-FY25", starts in September 2023), and stints of people already held at the
    start begin earlier still; a year's margin keeps the check for dates that are wrong."""
    found = catalog().fiscal_years_pattern.search(name)
    if not found:
        return None
    first = int(found.group(1))
    first += 2000 if first < 100 else 0
    return date(first - 2, 10, 1)  # fiscal year N starts on 1 October of year N-1


def _latest_event_date(reader: FoiaReader, plans: list[SheetPlan], workers: int,
                       cat: Catalog) -> str:
    """The latest readable key date in the file (read by DuckDB, apart from the warehouse)."""
    context = FileContext(reader.path.name, "", "", cat)
    latest = []
    with duckdb.connect() as con:
        for plan in plans:
            rows = SheetRows(plan, reader.columns(plan), context, {})
            relation = reader.relation(plan)
            if relation is not None:
                try:
                    latest.append(con.execute(rows.key_dates(relation)).fetchone()[0])
                except (duckdb.InvalidInputException, duckdb.IOException) as exc:
                    raise reader.read_error(exc) from None
                continue
            for part, _ in ordered_parallel(reader.work(plan), workers):
                latest.append(_key_date(con, rows, part.table))
    latest = [value for value in latest if value is not None]
    if not latest:
        raise SourceError(Location(reader.path.name), "no release date in the file name and no "
                          "readable key date in the file; pass --release YYYY-MM-DD")
    return max(latest).date().isoformat()


def _key_date(con: duckdb.DuckDBPyConnection, rows: SheetRows, part: pa.Table):
    return con.execute(rows.key_dates("part")).fetchone()[0]


def _duplicates(loader: Loader, part: pa.Table) -> pa.Table:
    """The (sheet, row) of each record naming someone whose hash an earlier one of the file
    has (`part`: every row noted)."""
    named = f"(SELECT sheet, row, hash FROM part WHERE status = {NAMED})"
    return loader.con.sql(
        f"SELECT sheet, row FROM {named} WHERE hash IN (SELECT hash FROM {named} GROUP BY hash "
        "HAVING count(*) > 1) QUALIFY row_number() OVER (PARTITION BY hash ORDER BY sheet, row) "
        "> 1").to_arrow_table()


def _release_facility_codes(warehouse: Warehouse, release: str) -> frozenset[str]:
    """Facility codes already loaded for the same release (the release's own register)."""
    tables = set(warehouse.table_names())
    selects = [f"SELECT facility_code FROM {t} WHERE release = $release"
               for t in (FOIA_STINTS, FOIA_DETAINERS) if t in tables]
    if not selects:
        return frozenset()
    with warehouse.connect(read_only=True) as con:
        rows = con.execute(" UNION ".join(selects), {"release": release}).fetchall()
    return frozenset(r[0] for r in rows if r[0])
