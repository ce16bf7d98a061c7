"""The embedded DuckDB warehouse: atomic loads, source registry, row accounting, exports.

Every load of one source file happens in one DuckDB transaction. DuckDB only makes a transaction
durable at COMMIT, so a crash, kill or Ctrl-C part-way through leaves the warehouse exactly as it was
before the load began (tests/test_warehouse.py proves it by killing a loading process).

Sources are keyed by the SHA-256 of their bytes: loading the same bytes twice is a no-op, whatever
the file is called; a changed file is a new version and is loaded beside the old one.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from iceledger.errors import IceledgerError

DEFAULT_WAREHOUSE = Path("iceledger.duckdb")
# DuckDB's cache grows toward most of the machine's memory while a large source is appended in
# one transaction; capped, it writes row groups out as it goes (a 6M-row append peaked at 2.1 GB
# RSS uncapped, 0.9 GB with a 600 MB cap). Loads use the cap; $ICELEDGER_LOAD_MEMORY overrides it.
LOAD_MEMORY_LIMIT = os.environ.get("ICELEDGER_LOAD_MEMORY", "600MB")
# Deriving the FOIA tables sorts and windows whole tables, which needs room a load does not:
# stints -> stays on 10M stints fails at a 1 GB cap and peaks at 2.3 GB RSS with 2 GB. So derived
# rebuilds keep DuckDB's own default (80% of RAM) unless $ICELEDGER_DERIVE_MEMORY names a cap.
DERIVE_MEMORY_LIMIT = os.environ.get("ICELEDGER_DERIVE_MEMORY")

# Tables the warehouse keeps about itself; every other table is data.
SOURCES_TABLE = "ingest_sources"
QUARANTINE_TABLE = "ingest_quarantine"
# One row, written in the transaction of every FOIA load (stale) and of every derive (fresh): a
# kill between the two leaves it stale, so the next command rebuilds or refuses, never serves
# flags and tables derived from fewer rows than are loaded.
DERIVED_STATE_TABLE = "ingest_derived_state"
STALE_DERIVED = (
    "the derived FOIA tables are older than the loaded rows (a load's derive was interrupted "
    "or skipped); run `iceledger derive`"
)

_SOURCES_DDL = f"""
CREATE TABLE IF NOT EXISTS {SOURCES_TABLE} (
    sha256 VARCHAR PRIMARY KEY,
    file_name VARCHAR NOT NULL,
    path VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    dataset VARCHAR,
    layout VARCHAR,
    loaded_at TIMESTAMP NOT NULL,
    rows_read BIGINT NOT NULL,
    rows_loaded BIGINT NOT NULL,
    rows_quarantined BIGINT NOT NULL,
    rows_duplicate BIGINT NOT NULL,
    tables_loaded VARCHAR NOT NULL,
    warnings VARCHAR NOT NULL,
    synthetic BOOLEAN NOT NULL
)
"""

_QUARANTINE_DDL = f"""
CREATE TABLE IF NOT EXISTS {QUARANTINE_TABLE} (
    sha256 VARCHAR NOT NULL,
    file_name VARCHAR NOT NULL,
    sheet VARCHAR,
    row_number BIGINT,
    cell VARCHAR,
    reason VARCHAR NOT NULL
)
"""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class QuarantinedRow:
    """A source row that could not be loaded, and why. Kept so that nothing is lost silently."""

    sheet: str | None
    row_number: int | None
    cell: str | None
    reason: str


@dataclass
class RowAccounting:
    """rows_read = rows_loaded + rows_quarantined + rows_duplicate, checked before any commit.

    `rows_duplicate` counts rows that are loaded but flagged as duplicates, which is why the rows
    of a data table (loaded + duplicate) are compared with rows_loaded + rows_duplicate.
    """

    rows_read: int = 0
    rows_loaded: int = 0
    rows_duplicate: int = 0
    quarantined: list[QuarantinedRow] = field(default_factory=list)

    @property
    def rows_quarantined(self) -> int:
        return len(self.quarantined)

    def balanced(self) -> bool:
        return self.rows_read == self.rows_loaded + self.rows_quarantined + self.rows_duplicate

    def add(self, other: RowAccounting) -> None:
        self.rows_read += other.rows_read
        self.rows_loaded += other.rows_loaded
        self.rows_duplicate += other.rows_duplicate
        self.quarantined.extend(other.quarantined)


@dataclass
class SourceLoad:
    """Everything one source file contributes to the warehouse, loaded all-or-nothing."""

    path: Path
    sha256: str
    kind: str  # "stats" (published workbooks) or "foia" (individual-level records)
    tables: Mapping[str, pa.Table | Iterable[pa.RecordBatch]]
    accounting: RowAccounting
    dataset: str | None = None
    layout: str | None = None
    warnings: list[str] = field(default_factory=list)
    synthetic: bool = False


class Warehouse:
    """A DuckDB file holding every loaded table, the source registry and the quarantine."""

    def __init__(self, path: Path | str = DEFAULT_WAREHOUSE):
        self.path = Path(path)

    @contextmanager
    def connect(
        self, read_only: bool = False, memory_limit: str | None = LOAD_MEMORY_LIMIT
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection; a write connection works under `memory_limit` (None: DuckDB's own)."""
        if read_only and not self.path.exists():
            raise IceledgerError(
                f"{self.path}: no warehouse here yet; run `iceledger ingest ...` or "
                "`iceledger demo` first, or pass --warehouse PATH"
            )
        try:
            con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.Error as exc:
            raise IceledgerError(f"{self.path}: cannot open the warehouse: {exc}") from exc
        try:
            if not read_only:
                if memory_limit is not None:
                    con.execute(f"SET memory_limit = '{memory_limit}'")
                con.execute(_SOURCES_DDL)
                con.execute(_QUARANTINE_DDL)
            yield con
        finally:
            con.close()

    def derived_stale(self) -> bool:
        if not self.path.exists():
            return False
        with self.connect(read_only=True) as con:
            return derived_stale(con)

    def has_source(self, sha256: str) -> bool:
        if not self.path.exists():
            return False
        with self.connect() as con:
            found = con.execute(
                f"SELECT 1 FROM {SOURCES_TABLE} WHERE sha256 = ?", [sha256]
            ).fetchone()
        return found is not None

    def load(self, load: SourceLoad) -> bool:
        """Load one source atomically. Returns False (and changes nothing) if already loaded."""
        if not load.accounting.balanced():
            a = load.accounting
            raise IceledgerError(
                f"{load.path.name}: row accounting does not balance (read {a.rows_read} != "
                f"loaded {a.rows_loaded} + quarantined {a.rows_quarantined} + "
                f"duplicate {a.rows_duplicate}); nothing was loaded"
            )
        with self.connect() as con:
            already = con.execute(
                f"SELECT 1 FROM {SOURCES_TABLE} WHERE sha256 = ?", [load.sha256]
            ).fetchone()
            if already:
                return False
            con.execute("BEGIN TRANSACTION")
            try:
                for name, data in load.tables.items():
                    _append(con, name, data)
                _register(con, load)
                if load.kind == "foia":
                    mark_derived(con, stale=True)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return True

    def replace_table(self, name: str, data: pa.Table) -> None:
        """Rebuild a derived table from scratch in one transaction (derived, never source data)."""
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                con.register("_incoming", data)
                con.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM _incoming')
                con.unregister("_incoming")
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    def table_names(self) -> list[str]:
        if not self.path.exists():
            return []
        with self.connect(read_only=True) as con:
            rows = con.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'main' ORDER BY table_name"
            ).fetchall()
        return [r[0] for r in rows]

    def read_table(self, name: str) -> pa.Table:
        self._require_table(name)
        with self.connect(read_only=True) as con:
            return con.sql(f'SELECT * FROM "{name}"').to_arrow_table()

    def export(self, name: str, fmt: str, output: Path) -> int:
        """Write one table as CSV or Parquet; returns the number of rows written."""
        table = self.read_table(name)
        if fmt == "csv":
            pa_csv.write_csv(table, output)
        elif fmt == "parquet":
            pq.write_table(table, output)
        else:
            raise IceledgerError(f"unknown export format {fmt!r}; use csv or parquet")
        return table.num_rows

    def sources(self) -> list[dict]:
        if not self.path.exists():
            return []
        with self.connect(read_only=True) as con:
            cur = con.execute(f"SELECT * FROM {SOURCES_TABLE} ORDER BY loaded_at, file_name")
            columns = [d[0] for d in cur.description]
            return [dict(zip(columns, row)) for row in cur.fetchall()]

    def _require_table(self, name: str) -> None:
        names = self.table_names()
        if name not in names:
            listing = ", ".join(names) if names else "none yet"
            raise IceledgerError(f"{self.path}: no table named {name!r} (tables: {listing})")


def _append(
    con: duckdb.DuckDBPyConnection, name: str, data: pa.Table | Iterable[pa.RecordBatch]
) -> None:
    """Append every part to `name`, matching columns by name (absent ones read as NULL).

    Parts go in through relations, not `register`: DuckDB keeps every registered Arrow object
    inserted from until the transaction ends, which held a whole 10M-row file in memory (7.6 GB
    RSS); a relation's part is let go once inserted.
    """
    columns: list[tuple[str, str]] | None = None
    schema = None
    for part in [data] if isinstance(data, pa.Table) else data:
        incoming = con.from_arrow(part)
        if columns is None and not table_exists(con, name):
            incoming.create(name)
            continue
        if part.schema != schema:
            schema = part.schema
            columns = _with_missing_columns(con, name, incoming)
        present = set(schema.names)
        incoming.project(", ".join(
            f'"{column}"' if column in present else f'NULL::{kind} AS "{column}"'
            for column, kind in columns
        )).insert_into(name)


def mark_derived(con: duckdb.DuckDBPyConnection, stale: bool) -> None:
    """Say whether the derived tables lag the loaded rows (inside the caller's transaction)."""
    con.execute(f"CREATE TABLE IF NOT EXISTS {DERIVED_STATE_TABLE} (stale BOOLEAN NOT NULL)")
    con.execute(f"DELETE FROM {DERIVED_STATE_TABLE}")
    con.execute(f"INSERT INTO {DERIVED_STATE_TABLE} VALUES (?)", [stale])


def derived_stale(con: duckdb.DuckDBPyConnection) -> bool:
    """True when a FOIA load committed and no derive has since (warehouses from before the
    marker have none, and count as fresh)."""
    if not table_exists(con, DERIVED_STATE_TABLE):
        return False
    rows = con.execute(f"SELECT bool_or(stale) FROM {DERIVED_STATE_TABLE}").fetchall()
    return bool(rows and rows[0][0])


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return (
        con.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema='main' AND table_name=?",
            [name],
        ).fetchone()
        is not None
    )


# How DuckDB names the type of a column made from an Arrow column with no values (pa.null()).
_UNKNOWN_TYPE = '"NULL"'


def _with_missing_columns(
    con: duckdb.DuckDBPyConnection, name: str, incoming: duckdb.DuckDBPyRelation
) -> list[tuple[str, str]]:
    """The table's columns (name, type) in order, after adding those only `incoming` has.

    Later releases add columns; the table grows to hold them and older rows read as NULL.
    A column whose type is still unknown (DuckDB's NULL type: it was created from a part that
    held no value for it, an empty part say) takes its type from the first part that has one;
    otherwise no later value could be cast into it.
    """
    def columns() -> list[tuple[str, str]]:
        return con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
            [name],
        ).fetchall()

    existing = columns()
    known = dict(existing)
    changes = []
    for column, kind in zip(incoming.columns, map(str, incoming.types), strict=True):
        if column not in known:
            changes.append(f'ADD COLUMN "{column}" {kind}')
        elif known[column] == _UNKNOWN_TYPE and kind != _UNKNOWN_TYPE:
            changes.append(f'ALTER COLUMN "{column}" TYPE {kind}')
    for change in changes:
        con.execute(f'ALTER TABLE "{name}" {change}')
    return columns() if changes else existing


def _register(con: duckdb.DuckDBPyConnection, load: SourceLoad) -> None:
    a = load.accounting
    con.execute(
        f"INSERT INTO {SOURCES_TABLE} VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [
            load.sha256,
            load.path.name,
            str(load.path),
            load.kind,
            load.dataset,
            load.layout,
            datetime.now(timezone.utc).replace(tzinfo=None),
            a.rows_read,
            a.rows_loaded,
            a.rows_quarantined,
            a.rows_duplicate,
            json.dumps(sorted(load.tables)),
            json.dumps(load.warnings),
            load.synthetic,
        ],
    )
    if a.quarantined:
        con.executemany(
            f"INSERT INTO {QUARANTINE_TABLE} VALUES (?,?,?,?,?,?)",
            [
                [load.sha256, load.path.name, q.sheet, q.row_number, q.cell, q.reason]
                for q in a.quarantined
            ],
        )
