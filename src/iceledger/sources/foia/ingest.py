"""`iceledger ingest foia`: load individual-level ICE FOIA release files into the warehouse.

For each file: recognise the dataset and release layout from its header rows
(foia_layouts.toml), stream its rows through the canonicaliser on worker threads (readers in
foia_readers, typing in foia_canonical), flag rows identical to an earlier row of the same file,
run the validation checks (foia_checks), and hand it all to `Warehouse.load` as one transaction:
the rows, the checks and the row accounting land together or not at all. A file that cannot be
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
from iceledger.sources.foia.canonical import FileContext, canonicalise, key_date_values
from iceledger.sources.foia.checks import (
    CHECKS_TABLE,
    CheckContext,
    CheckRun,
    Rows,
    read_facility_codes,
    reference_facility_codes,
    results_table,
)
from iceledger.sources.foia.layouts import Layout, catalog
from iceledger.sources.foia.readers import FoiaReader, SheetPlan, open_reader
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
    defaults every such block is a fresh mmap, and the page faults cost a third of the parse
    time (measured: 0.70 s of system time per four 48 MB slices, 0.09 s with these settings).
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
    on_derive: Callable[[], None] | None = None,
) -> IngestReport:
    """Load each file (one transaction each), then rebuild the derived tables once (unless
    `derive` is False: then `iceledger derive` rebuilds them when the loading is done). They are
    rebuilt too when an earlier run's derive was interrupted, even if nothing new loads."""
    if release is not None and _as_date(release) is None:
        raise IceledgerError(f"--release {release!r} is not a date (YYYY-MM-DD)")
    user_codes = read_facility_codes(facility_references)
    keep_freed_memory()
    outcomes = []
    for path in paths:
        started = time.perf_counter()
        progress = on_file(path, path.stat().st_size if path.exists() else 0) if on_file else None
        try:
            outcome = _ingest_file(Path(path), warehouse, release, user_codes, workers, progress)
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
                 ) -> FileOutcome:
    if not path.is_file():
        raise SourceError(Location(path.name), "no such file")
    sha256 = file_sha256(path)
    outcome = FileOutcome(path, "loaded", sha256=sha256)
    if warehouse.has_source(sha256):
        outcome.status = "already loaded"
        return outcome
    reader = open_reader(path)
    try:
        plans = reader.plans()
        layout = _one_layout(path, plans)
        dataset = layout.dataset
        outcome.dataset, outcome.layout = dataset.name, layout.name
        outcome.warnings.extend(reader.warnings)
        outcome.release = _release_from_name(path.name) or release
        if outcome.release is None:
            outcome.release = _latest_event_date(reader, plans, workers)
            outcome.warnings.append(
                f"{path.name}: no release date (YYYYMMDD) in the file name; release set to the "
                f"latest {dataset.key_date} in the file, {outcome.release}")
        marker = catalog().synthetic_marker
        outcome.synthetic = marker in path.name.upper() or any(
            marker in p.title_text.upper() for p in plans)
        context = FileContext(path.name, sha256, outcome.release)
        checks = CheckRun(CheckContext(
            dataset, _as_date(outcome.release), _window_start(path.name),
            reference_facility_codes() | user_codes | _release_facility_codes(
                warehouse, outcome.release)))
        rows = _rows(reader, plans, context, outcome, checks, workers, progress)

        def check_results() -> Iterator[pa.Table]:
            outcome.checks = checks.results()
            yield results_table(sha256, path.name, dataset.name, outcome.checks)

        warehouse.load(SourceLoad(
            path=path, sha256=sha256, kind="foia",
            tables={dataset.table: rows, CHECKS_TABLE: check_results()},
            accounting=outcome.accounting, dataset=dataset.name, layout=layout.name,
            warnings=outcome.warnings, synthetic=outcome.synthetic))
    finally:
        reader.close()
    return outcome


def _rows(reader: FoiaReader, plans: list[SheetPlan], context: FileContext, outcome: FileOutcome,
          checks: CheckRun, workers: int, progress: Progress | None) -> Iterator[pa.Table]:
    dataset = plans[0].match.dataset
    duplicates = ExactDuplicates()
    accounting = outcome.accounting
    blank_rows = 0

    def items():
        for plan in plans:
            for work, size in reader.work(plan):
                yield (lambda work=work: canonicalise(work(), dataset, context)), size

    for part, size in ordered_parallel(items(), workers):
        flags = duplicates.flag(part.row_hashes)
        duplicate_count = int(flags.sum())
        accounting.rows_read += part.rows_read
        accounting.rows_duplicate += duplicate_count
        accounting.rows_loaded += part.table.num_rows - duplicate_count
        accounting.quarantined.extend(part.quarantined)
        blank_rows += part.blank_rows
        checks.update(Rows(part.table, part.unknown_aor))
        if progress:
            progress(size)
        yield part.table.append_column("is_exact_duplicate", pa.array(flags))
    if blank_rows:
        outcome.warnings.append(f"{outcome.path.name}: {blank_rows:,} blank rows (no value in "
                                "any cell) are not records and were not loaded")
    if not accounting.balanced():
        raise IceledgerError(f"{outcome.path.name}: row accounting does not balance; nothing "
                             "was loaded (this is a bug)")


def _one_layout(path: Path, plans: list[SheetPlan]) -> Layout:
    """Every sheet of a release file has the same columns; a sheet that differs is an error."""
    first = plans[0]
    for plan in plans[1:]:
        if plan.match.raw_headers != first.match.raw_headers:
            ours, theirs = set(first.match.raw_headers), set(plan.match.raw_headers)
            missing = ", ".join(sorted(ours - theirs)) or "none"
            extra = ", ".join(sorted(theirs - ours)) or "none"
            order = "" if ours != theirs else "; the same headers in another order"
            raise SourceError(
                Location(path.name, plan.name, row=plan.header_row),
                f"this sheet's header differs from sheet {first.name!r} (layout "
                f"{first.match.layout.name}): missing {missing}; extra {extra}{order}")
    return first.match.layout


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
    file name covers. Releases reach back a little before their first fiscal year (the July 2025
    release, "FY24-FY25", starts in September 2023), and stints of people already held at the
    start begin earlier still; a year's margin keeps the check for dates that are wrong."""
    found = catalog().fiscal_years_pattern.search(name)
    if not found:
        return None
    first = int(found.group(1))
    first += 2000 if first < 100 else 0
    return date(first - 2, 10, 1)  # fiscal year N starts on 1 October of year N-1


def _latest_event_date(reader: FoiaReader, plans: list[SheetPlan], workers: int) -> str:
    dataset = plans[0].match.dataset

    def items():
        for plan in plans:
            for work, size in reader.work(plan):
                yield (lambda work=work: pc.max(key_date_values(work(), dataset)).as_py()), size

    latest = [value for value, _ in ordered_parallel(items(), workers) if value is not None]
    if not latest:
        raise SourceError(Location(reader.path.name), f"no release date in the file name and no "
                          f"readable {dataset.key_date} in the file; pass --release YYYY-MM-DD")
    return max(latest).date().isoformat()


def _release_facility_codes(warehouse: Warehouse, release: str) -> frozenset[str]:
    """Facility codes already loaded for the same release (the release's own register)."""
    tables = set(warehouse.table_names())
    selects = [f"SELECT facility_code FROM {t} WHERE release = $release"
               for t in ("foia_stints", "foia_detainers") if t in tables]
    if not selects:
        return frozenset()
    with warehouse.connect(read_only=True) as con:
        rows = con.execute(" UNION ".join(selects), {"release": release}).fetchall()
    return frozenset(r[0] for r in rows if r[0])
