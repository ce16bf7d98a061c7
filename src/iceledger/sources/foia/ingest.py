"""`iceledger ingest foia`: load individual-level ICE FOIA release files into the warehouse.

For each file: recognise each sheet's dataset and layout from its header row (a layout listed in
foia_layouts.toml, else the header vocabulary of foia_vocabulary.toml, else a declared layout),
read ICE's own Summary and Footnotes sheets (ice_sheets), stream the rows of each dataset
through the canonicaliser on worker threads (readers, canonical), flag rows identical to an
earlier row of the same file, run the validation checks (checks) and compare the records with
ICE's Summary, tally what each column carries (foia_capabilities), and hand it all to
`Warehouse.load` as one transaction: the rows of every dataset, the checks and the row
accounting land together or not at all. A file that cannot be
read is reported as one error line and the other files still load. After the files, the derived
tables are rebuilt once (iceledger.sources.foia.derived).

Memory stays bounded whatever the file size: at most `workers + AHEAD` parts are in flight.
"""

from __future__ import annotations

import ctypes
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from iceledger.errors import IceledgerError, Location, SourceError
from iceledger.sources.foia import derived as foia_derived
from iceledger.sources.foia import ice_sheets
from iceledger.sources.foia.canonical import FileContext, canonicalise, key_date_values
from iceledger.sources.foia.checks import (
    CheckContext,
    CheckRun,
    Rows,
    read_facility_codes,
    reference_facility_codes,
    results_table,
)
from iceledger.sources.foia.declared import declared_catalog
from iceledger.sources.foia.layouts import Catalog, Dataset, catalog
from iceledger.sources.foia.readers import FoiaReader, SheetPlan, open_reader
from iceledger.sources.xlsx_files import missing_file
from iceledger.tables import (
    FOIA_CAPABILITIES,
    FOIA_CHECKS,
    FOIA_DETAINERS,
    FOIA_PUBLISHED_TOTALS,
    FOIA_RELEASE_NOTES,
    FOIA_STINTS,
)
from iceledger.warehouse import RowAccounting, SourceLoad, Warehouse, file_sha256

WORKERS = 2
AHEAD = 2
_DONE = object()  # the producer's last hand-off
SUFFIXES = (".xlsx", ".xlsm", ".csv", ".tsv", ".parquet")

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


@dataclass
class IngestReport:
    files: list[FileOutcome]
    derived: foia_derived.DerivedSummary | None = None
    derived_error: str | None = None

    @property
    def ok(self) -> bool:
        return self.derived_error is None and all(f.status != "error" for f in self.files)


class ExactDuplicates:
    """Remembers the row hashes of one file; flags rows whose raw cells repeat an earlier row's.

    Rows are compared by a 64-bit hash of all their cells: two different rows share a hash with a
    probability of about n²/2⁶⁵ (under 3 in a million for 10 million rows).

    The hashes seen are kept as a few sorted runs whose sizes at least double from the newest to
    the oldest, merged as they fill (as in a log-structured merge tree): each part is looked up
    in about log2(parts) runs, and every hash is merged about log2(parts) times, where one run
    re-sorted for every part cost O(parts²) (4.4 s of CPU for 10M rows in 64K-row parts).
    """

    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []  # each sorted and unique; oldest (largest) first

    def flag(self, hashes: np.ndarray) -> np.ndarray:
        order = np.argsort(hashes, kind="stable")
        ordered = hashes[order]
        repeat = np.zeros(len(ordered), dtype=bool)
        repeat[1:] = ordered[1:] == ordered[:-1]
        for run in self._runs:
            at = np.searchsorted(run, ordered).clip(max=len(run) - 1)
            repeat |= run[at] == ordered
        flags = np.empty(len(ordered), dtype=bool)
        flags[order] = repeat
        if not repeat.all():
            self._runs.append(ordered[~repeat])
        while len(self._runs) > 1 and len(self._runs[-2]) <= 2 * len(self._runs[-1]):
            newest = self._runs.pop()
            # Both runs are sorted, so the stable sort merges them in linear time.
            self._runs[-1] = np.sort(np.concatenate([self._runs[-1], newest]), kind="stable")
        return flags


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


def foia_paths(paths: Iterable[Path]) -> list[Path]:
    """The files named, with folders expanded to the release files in them (sorted)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in SUFFIXES))
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
    does not know."""
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
        except RuntimeError as exc:
            # Ctrl-C while DuckDB takes in a batch surfaces as RuntimeError("Query interrupted").
            if "interrupted" in str(exc).lower():
                raise KeyboardInterrupt from None
            raise
        except (pa.ArrowException, duckdb.Error, OSError, ValueError) as exc:
            # Input no check foresaw: still one line for this file, and the others load.
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
                                            window, codes)) for name in groups}
        tables: dict[str, Iterator[pa.Table]] = {
            cat.datasets[name].table: _rows(reader, group, cat.datasets[name], context, outcome,
                                            runs[name], capabilities, workers, progress)
            for name, group in groups.items()}

        compared: list[dict] = []

        def check_results() -> Iterator[pa.Table]:
            # Runs once every dataset's rows are in: the tallies are complete.
            outcome.warnings.extend(reader.warnings)
            rows, summary_checks = ice_sheets.compare_summary(
                totals, capabilities, {name: [p.name for p in group]
                                       for name, group in groups.items()}, cat)
            compared.extend(rows)
            for name in dict.fromkeys([*groups, *summary_checks]):
                results = runs[name].results() if name in runs else []
                results += [summary_checks[name]] if name in summary_checks else []
                outcome.checks.extend(results)
                yield results_table(sha256, path.name, name, results)

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
            warnings=outcome.warnings, synthetic=outcome.synthetic))
    finally:
        reader.close()
    return outcome


def _after(build: Callable[[], list[pa.Table]]) -> Iterator[pa.Table]:
    """Tables built only when the warehouse reaches them: after the rows they describe."""
    yield from (t for t in build() if t.num_rows)


def _rows(reader: FoiaReader, plans: list[SheetPlan], dataset: Dataset, context: FileContext,
          outcome: FileOutcome, checks: CheckRun, capabilities: ice_sheets.Capabilities,
          workers: int, progress: Progress | None) -> Iterator[pa.Table]:
    duplicates = ExactDuplicates()
    accounting = outcome.accounting
    blank_rows = 0
    required = _required_columns(dataset, context.catalog)
    identifiers = context.catalog.vocabulary.identifier_columns

    def items():
        for plan in plans:
            for work, size in reader.work(plan):
                yield (lambda work=work: canonicalise(work(), dataset, context)), size

    for part, size in ordered_parallel(items(), workers):
        # Two equal rows are the same record twice only if they name whom they are about:
        # without an identifier (the UW production) equal rows are different people's.
        flags = duplicates.flag(part.row_hashes) & _identified(part.table, identifiers)
        duplicate_count = int(flags.sum())
        accounting.rows_read += part.rows_read
        accounting.rows_duplicate += duplicate_count
        accounting.rows_loaded += part.table.num_rows - duplicate_count
        accounting.quarantined.extend(part.quarantined)
        blank_rows += part.blank_rows
        checks.update(Rows(part.table, part.unknown_aor))
        if progress:
            progress(size)
        table = part.table
        for name, sql_type in required.items():
            if name not in table.column_names:
                table = table.append_column(name, pa.nulls(table.num_rows, sql_type))
        capabilities.update(dataset.name, dataset.key_date, table)
        yield table.append_column("is_exact_duplicate", pa.array(flags))
    if blank_rows:
        outcome.warnings.append(f"{outcome.path.name}: {blank_rows:,} blank rows (no value in "
                                "any cell) are not records and were not loaded")
    if not accounting.balanced():
        raise IceledgerError(f"{outcome.path.name}: row accounting does not balance; nothing "
                             "was loaded (this is a bug)")


def _identified(table: pa.Table, identifiers: tuple[str, ...]) -> np.ndarray:
    """Whether each row carries any identifier."""
    identified = np.zeros(table.num_rows, dtype=bool)
    for name in identifiers:
        if name in table.column_names:
            identified |= np.asarray(pc.is_valid(table.column(name)))
    return identified


_ARROW_TYPES = {"timestamp": pa.timestamp("us"), "date": pa.date32(), "integer": pa.int32(),
                "decimal": pa.float64(), "yes_no": pa.bool_()}


def _required_columns(dataset: Dataset, cat: Catalog) -> dict[str, pa.DataType]:
    """The columns the derived tables read from this dataset's table, typed: a layout that lacks
    one (the UW production has no identifiers or book-outs) loads it as NULL, so the derived
    tables say what cannot be formed instead of failing."""
    return {name: _ARROW_TYPES.get(cat.types.get(name, ""), pa.string())
            for name in foia_derived.required_columns(dataset.table)}


def _by_dataset(path: Path, plans: list[SheetPlan]) -> dict[str, list[SheetPlan]]:
    """The sheets of each dataset. A release layout listed whole has the same columns on every
    sheet, so a sheet of it that differs is an error; sheets read by their vocabulary (one per
    fiscal year, say) may differ, and their table takes every column of each."""
    groups: dict[str, list[SheetPlan]] = {}
    for plan in plans:
        group = groups.setdefault(plan.match.dataset.name, [])
        first = group[0] if group else plan
        listed = not (plan.match.by_vocabulary and first.match.by_vocabulary)
        if listed and plan.match.raw_headers != first.match.raw_headers:
            ours, theirs = set(first.match.raw_headers), set(plan.match.raw_headers)
            missing = ", ".join(sorted(ours - theirs)) or "none"
            extra = ", ".join(sorted(theirs - ours)) or "none"
            order = "" if ours != theirs else "; the same headers in another order"
            raise SourceError(
                Location(path.name, plan.name, row=plan.header_row),
                f"this sheet's header differs from sheet {first.name!r} (layout "
                f"{first.match.layout.name}): missing {missing}; extra {extra}{order}")
        group.append(plan)
    return groups


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
    def items():
        for plan in plans:
            for work, size in reader.work(plan):
                yield (lambda work=work, dataset=plan.match.dataset: pc.max(
                    key_date_values(work(), dataset, cat)).as_py()), size

    latest = [value for value, _ in ordered_parallel(items(), workers) if value is not None]
    if not latest:
        raise SourceError(Location(reader.path.name), "no release date in the file name and no "
                          "readable key date in the file; pass --release YYYY-MM-DD")
    return max(latest).date().isoformat()


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
