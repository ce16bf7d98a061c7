"""What the report says about where its numbers come from: every source file and every failed check.

Presentation only: reads the warehouse's own bookkeeping tables, computes nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from iceledger.tables import FOIA_CHECKS, QUARANTINE, SOURCES, STATS_CHECKS, STATS_WORKBOOKS
from iceledger.warehouse import table_exists

# Validation tables written by the ingest steps; each has a status column and readable detail.
CHECK_TABLES = {
    STATS_CHECKS: "status = 'fail'",
    FOIA_CHECKS: "status = 'fail'",
}
# The report lists at most this many failed checks per table and quarantine (file, reason) pairs;
# it always gives the full counts.
LISTED_CHECKS = 500
LISTED_QUARANTINE_REASONS = 200


@dataclass(frozen=True)
class Provenance:
    sources: list[dict]
    stats_releases: list[dict]
    quarantine_reasons: list[dict]
    quarantine_reason_count: int
    failed_checks: dict[str, list[dict]]
    failed_check_count: dict[str, int]

    @property
    def synthetic(self) -> bool:
        return any(s["synthetic"] for s in self.sources)


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict]:
    cur = con.execute(sql)
    columns = [d[0] for d in cur.description]
    return [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]


def read_provenance(con: duckdb.DuckDBPyConnection) -> Provenance:
    sources = _rows(
        con,
        f"SELECT file_name, sha256, kind, dataset, layout, rows_read, rows_loaded, "
        f"rows_quarantined, rows_duplicate, synthetic, loaded_at FROM {SOURCES} "
        f"ORDER BY kind, dataset, file_name",
    )
    stats_releases = (
        _rows(con, f"SELECT * EXCLUDE (sha256) FROM {STATS_WORKBOOKS} ORDER BY file_date")
        if table_exists(con, STATS_WORKBOOKS)
        else []
    )
    reasons = f"SELECT file_name, reason, count(*) AS rows FROM {QUARANTINE} GROUP BY ALL"
    quarantine_reasons = _rows(
        con, f"{reasons} ORDER BY rows DESC, file_name LIMIT {LISTED_QUARANTINE_REASONS}"
    )
    [reason_count] = con.execute(f"SELECT count(*) FROM ({reasons})").fetchone()
    tables = [(t, condition) for t, condition in CHECK_TABLES.items() if table_exists(con, t)]
    failed_checks = {
        table: _rows(con, f"SELECT * FROM {table} WHERE {condition} LIMIT {LISTED_CHECKS}")
        for table, condition in tables
    }
    failed_check_count = {
        table: con.execute(f"SELECT count(*) FROM {table} WHERE {condition}").fetchone()[0]
        for table, condition in tables
    }
    return Provenance(sources, stats_releases, quarantine_reasons, reason_count, failed_checks,
                      failed_check_count)
