"""ICE detention-statistics workbooks: load files and folders of them into the warehouse.

`ingest_stats` hashes every file first and asks the warehouse once which it holds, so that a
re-ingest of unchanged files never imports the parser or Arrow. New workbooks are parsed
(`parse.parse_workbook`), checked (`checks.run_checks`) and loaded together, one insert per
table for a whole batch of workbooks in one transaction; then the checks across releases are
rebuilt over everything loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from iceledger.errors import IceledgerError
from iceledger.sources.xlsx_files import missing_file
from iceledger.tables import STATS_CHECKS
from iceledger.warehouse import file_sha256, require_balanced

if TYPE_CHECKING:
    from iceledger.sources.stats.checks import ChecksReview
    from iceledger.sources.stats.parsed import ParsedWorkbook
    from iceledger.sources.stats.sheet_tables import Quarantined
    from iceledger.warehouse import Loader, SourceLoad, Warehouse

# Layout name recorded in ingest_sources.layout for every stats workbook.
LAYOUT_NAME = "stats_tables.toml"
# Workbooks load in batches of about this many figures, each batch one transaction: a folder of
# any size is held in memory a batch at a time (a workbook prints a few thousand figures).
BATCH_ROWS = 500_000


@dataclass
class IngestedFile:
    path: Path
    status: str  # "loaded", "unchanged" (already in the warehouse) or "failed"
    rows_loaded: int = 0
    rows_quarantined: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    first_quarantined: Quarantined | None = None
    # One line per block of figures in no known table (a table ICE added, or reworded).
    unrecognised: list[str] = field(default_factory=list)
    # One line per category value no layout declares (an agency ICE added beside ICE and CBP).
    new_categories: list[str] = field(default_factory=list)


@dataclass
class StatsIngestSummary:
    files: list[IngestedFile] = field(default_factory=list)
    # The checks of every loaded workbook and across releases, when this ingest loaded any.
    review: ChecksReview | None = None

    @property
    def failed(self) -> bool:
        """True if any file, or any table in a file, could not be read."""
        return any(f.errors for f in self.files)

    def count(self, status: str) -> int:
        return sum(f.status == status for f in self.files)


def workbook_paths(paths: Iterable[Path | str]) -> list[Path]:
    """The files named, and the .xlsx files inside the folders named, in a stable order. A name
    that is no file stays in the list: its load fails alone, saying why."""
    found: list[Path] = []
    for given in map(Path, paths):
        if given.is_dir():
            found.extend(sorted(p for p in given.rglob("*.xlsx") if not p.name.startswith("~$")))
        else:
            found.append(given)
    return found


def ingest_stats(
    paths: Iterable[Path | str],
    warehouse: Warehouse,
    progress: Callable[[Path], None] | None = None,
) -> StatsIngestSummary:
    """Parse and load workbooks through one connection; returns what happened to each.

    A file already loaded (same bytes) is left alone; a changed file is a new version. Loads
    are all-or-nothing per batch of workbooks (see `Loader.load_together`): an interrupted
    ingest leaves the warehouse as it was before the batch. `progress` is called with each
    path once it is done.
    """
    summary = StatsIngestSummary()
    files = workbook_paths(paths)
    with warehouse.loader(threads=1) as loader:
        known = loader.loaded()
        batch = _Batch(loader)
        for path in files:
            summary.files.append(_check_in(path, known, batch))
            if progress is not None:
                progress(path)
        batch.flush()
        if summary.count("loaded"):
            from iceledger.sources.stats.checks import review_warehouse

            summary.review = review_warehouse(warehouse, loader.con)
    return summary


def _check_in(path: Path, known: set[str], batch: _Batch) -> IngestedFile:
    """A file failed alone (no file there, unreadable), unchanged, or added to the batch."""
    if not path.is_file():
        return IngestedFile(path, "failed", errors=[f"{path}: {missing_file(path)}"])
    try:
        sha256 = file_sha256(path)
    except OSError as exc:
        return IngestedFile(path, "failed", errors=[f"{path.name}: cannot read the file: {exc}"])
    if sha256 in known or sha256 in batch.files:
        return IngestedFile(path, "unchanged")
    return batch.add(path)


class _Batch:
    """Parsed workbooks waiting to be loaded together."""

    def __init__(self, loader: Loader):
        self.loader = loader
        self.files: dict[str, IngestedFile] = {}  # by sha256
        self.loads: list[SourceLoad] = []
        self.rows = 0

    def add(self, path: Path) -> IngestedFile:
        from iceledger.sources.stats.parse import parse_workbook

        parsed = parse_workbook(path)
        errors = [str(e) for e in parsed.errors]
        if len(parsed.tables) <= 1:  # nothing but the workbook's own description
            return IngestedFile(path, "failed", errors=errors or [f"{path.name}: no tables found"],
                                warnings=parsed.warnings)
        load = source_load(parsed)
        try:
            require_balanced(load)
        except IceledgerError as exc:  # kept out alone, not with the whole batch
            return IngestedFile(path, "failed", errors=[*errors, str(exc)],
                                warnings=parsed.warnings)
        done = self.files[parsed.sha256] = IngestedFile(
            path, "loaded", parsed.rows_loaded, len(parsed.quarantined), errors, parsed.warnings,
            parsed.quarantined[0] if parsed.quarantined else None, parsed.unrecognised,
            parsed.new_categories)
        self.loads.append(load)
        self.rows += parsed.rows_loaded
        if self.rows >= BATCH_ROWS:
            self.flush()
        return done

    def flush(self) -> None:
        if self.loads:
            for sha256, reason in self.loader.load_together(self.loads).items():
                refused = self.files[sha256]
                refused.status = "failed"
                refused.rows_loaded = refused.rows_quarantined = 0
                refused.first_quarantined = None
                refused.unrecognised = refused.new_categories = []
                refused.errors.append(reason)
        self.loads, self.rows = [], 0


def source_load(parsed: ParsedWorkbook) -> SourceLoad:
    """The warehouse load of one parsed workbook (its tables, accounting and quarantine)."""
    from iceledger.sources.foia.layouts import catalog
    from iceledger.sources.stats.checks import run_checks
    from iceledger.warehouse import QuarantinedRow, RowAccounting, SourceLoad

    accounting = RowAccounting(
        rows_read=parsed.rows_read,
        rows_loaded=parsed.rows_loaded,
        quarantined=[QuarantinedRow(q.sheet.strip(), q.row_number, q.cell, q.reason)
                     for q in parsed.quarantined],
    )
    return SourceLoad(
        path=parsed.path,
        sha256=parsed.sha256,
        kind="stats",
        tables={**parsed.tables, STATS_CHECKS: run_checks(parsed)},
        accounting=accounting,
        layout=LAYOUT_NAME,
        warnings=parsed.warnings + [str(e) for e in parsed.errors],
        # As for FOIA files: a file named SYNTHETIC_... (iceledger's own) is labelled synthetic.
        synthetic=catalog().synthetic_marker in parsed.path.name.upper(),
    )
