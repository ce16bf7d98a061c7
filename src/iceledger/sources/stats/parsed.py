"""One parsed workbook: its tables and what was learned, and went wrong, reading it.

Its own module so that the parser (ingest) and the checks (checks) can both name it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from iceledger.errors import SourceError

if TYPE_CHECKING:
    import pyarrow as pa

    from iceledger.sources.stats.sheet_tables import Quarantined


@dataclass
class ParsedWorkbook:
    """One workbook's tables and what was learned, and went wrong, reading it."""

    path: Path
    workbook: str
    sha256: str
    fiscal_year: int | None = None
    file_date: date | None = None
    archive_date: date | None = None
    as_of_date: date | None = None
    tables: dict[str, pa.Table] = field(default_factory=dict)
    errors: list[SourceError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rows_read: int = 0
    rows_loaded: int = 0
    quarantined: list[Quarantined] = field(default_factory=list)
    tables_found: list[str] = field(default_factory=list)
    # One line per block of figures in no known table (also among the warnings).
    unrecognised: list[str] = field(default_factory=list)
    # One line per category value stats_tables.toml does not declare (also among the warnings).
    new_categories: list[str] = field(default_factory=list)
