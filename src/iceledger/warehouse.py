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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from iceledger import tables
from iceledger.errors import IceledgerError

if TYPE_CHECKING:
    # Imported where used: a command that only reads the source registry (a re-ingest of
    # unchanged files) never needs Arrow, which costs more to import than DuckDB.
    import pyarrow as pa

DEFAULT_WAREHOUSE = Path("iceledger.duckdb")
# DuckDB's cache grows toward most of the machine's memory while a large source is appended in
# one transaction; capped, it writes row groups out as it goes, and peak memory stays flat in the
# file's size (benchmarks/bench_foia_ingest.py). Loads use the cap; $ICELEDGER_LOAD_MEMORY
# overrides it.
LOAD_MEMORY_LIMIT = os.environ.get("ICELEDGER_LOAD_MEMORY", "600MB")
# The threads DuckDB may use on every connection ($ICELEDGER_THREADS; unset: one per core), and
# the threads that read workbook slices during a FOIA load: a cap for a shared machine.
THREADS = os.environ.get("ICELEDGER_THREADS")
# Deriving the FOIA tables sorts and windows whole tables, which needs room a load does not: a
# national release's stints -> stays fails under the load's cap. So derived rebuilds keep
# DuckDB's own default (80% of RAM) unless $ICELEDGER_DERIVE_MEMORY names a cap.
DERIVE_MEMORY_LIMIT = os.environ.get("ICELEDGER_DERIVE_MEMORY")

# Tables the warehouse keeps about itself; every other table is data.
# One row, written in the transaction of every FOIA load (stale) and of every derive (fresh): a
# kill between the two leaves it stale, so the next command rebuilds or refuses, never serves
# flags and tables derived from fewer rows than are loaded.
STALE_DERIVED = (
    "the derived FOIA tables are older than the loaded rows (a load's derive was interrupted "
    "or skipped); run `iceledger derive`"
)


def ident(name: str) -> str:
    """A name quoted for SQL."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A string constant for SQL."""
    return "'" + text.replace("'", "''") + "'"


def file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


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
    Quarantined rows are either listed here (and written when the source is registered) or
    written to the quarantine table by the load's own queries and counted in `quarantined_rows`.
    """

    rows_read: int = 0
    rows_loaded: int = 0
    rows_duplicate: int = 0
    quarantined: list[QuarantinedRow] = field(default_factory=list)
    quarantined_rows: int = 0

    @property
    def rows_quarantined(self) -> int:
        return len(self.quarantined) + self.quarantined_rows

    def balanced(self) -> bool:
        return self.rows_read == self.rows_loaded + self.rows_quarantined + self.rows_duplicate

    def add(self, other: RowAccounting) -> None:
        self.rows_read += other.rows_read
        self.rows_loaded += other.rows_loaded
        self.rows_duplicate += other.rows_duplicate
        self.quarantined.extend(other.quarantined)
        self.quarantined_rows += other.quarantined_rows


@dataclass
class SourceLoad:
    """Everything one source file contributes to the warehouse, loaded all-or-nothing.

    `write`, when given, runs first inside the load's transaction: the source's own queries
    (the FOIA rows, typed by DuckDB), which fill `accounting` as they go; `tables` follow.
    """

    path: Path
    sha256: str
    kind: str  # "stats" (published workbooks) or "foia" (individual-level records)
    tables: Mapping[str, pa.Table | Iterable[pa.RecordBatch]]
    accounting: RowAccounting
    write: Callable[[Loader], None] | None = None
    dataset: str | None = None
    layout: str | None = None
    warnings: list[str] = field(default_factory=list)
    synthetic: bool = False


# What every output of a warehouse holding synthetic files says, wherever it is shown.
SYNTHETIC_NOTICE = (
    "SYNTHETIC DATA: the warehouse holds files written by `iceledger synth`; these numbers "
    "describe invented records, no real person or event."
)


class Warehouse:
    """A DuckDB file holding every loaded table, the source registry and the quarantine.

    The one gate to the file: every reader and writer opens it through `open` (or `connect`,
    which closes what it opened), so the errors and the synthetic flag are said one way.
    """

    def __init__(self, path: Path | str = DEFAULT_WAREHOUSE):
        self.path = Path(path)

    def require(self) -> None:
        """Refuse, in one line, to read a warehouse that does not exist yet."""
        if not self.path.is_file():
            raise IceledgerError(
                f"{self.path}: no warehouse here yet; run `iceledger ingest ...` or "
                "`iceledger demo` first, or pass --warehouse PATH"
            )

    def open(
        self, read_only: bool = False, memory_limit: str | None = LOAD_MEMORY_LIMIT
    ) -> duckdb.DuckDBPyConnection:
        """A connection the caller closes; a write connection works under `memory_limit`."""
        if read_only:
            self.require()
        try:
            con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.Error as exc:
            raise IceledgerError(f"{self.path}: cannot open the warehouse: {exc}") from exc
        if THREADS:
            con.execute(f"SET threads = {int(THREADS)}")
        if not read_only:
            try:
                if memory_limit is not None:
                    con.execute(f"SET memory_limit = '{memory_limit}'")
                for name in (tables.SOURCES, tables.QUARANTINE):
                    con.execute(tables.catalogue()[name].ddl())
            except BaseException:
                con.close()
                raise
        return con

    @contextmanager
    def connect(
        self, read_only: bool = False, memory_limit: str | None = LOAD_MEMORY_LIMIT
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """`open`, closed when the block ends."""
        con = self.open(read_only, memory_limit)
        try:
            yield con
        finally:
            con.close()

    def synthetic(self) -> bool:
        """Whether any loaded source was written by `iceledger synth`."""
        return any(source["synthetic"] for source in self.sources())

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
                f"SELECT 1 FROM {tables.SOURCES} WHERE sha256 = ?", [sha256]
            ).fetchone()
        return found is not None

    def load(self, load: SourceLoad) -> bool:
        """Load one source atomically. Returns False (and changes nothing) if already loaded."""
        with self.loader() as loader:
            return loader.load(load)

    @contextmanager
    def loader(self, threads: int | None = None) -> Iterator[Loader]:
        """One write connection for many loads.

        For a command loading many small sources (34 workbooks of ~35 tables each), opening a
        connection per source and asking DuckDB for each table's columns per part cost far more
        than the inserts; the loader asks once and keeps the table catalogue current itself.
        `threads` caps DuckDB's threads: on tables of a few thousand rows, handing work between
        threads costs more than it saves.
        """
        with self.connect() as con:
            if threads is not None:
                con.execute(f"SET threads = {int(threads)}")
            yield Loader(con)


    def replace_table(self, name: str, data: pa.Table) -> None:
        """Rebuild a derived table from scratch in one transaction (derived, never source data)."""
        with self.connect() as con:
            replace_table(con, name, data)

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
            import pyarrow.csv as pa_csv

            pa_csv.write_csv(_flat_for_csv(table), output)
        elif fmt == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(table, output)
        else:
            raise IceledgerError(f"unknown export format {fmt!r}; use csv or parquet")
        return table.num_rows

    def sources(self) -> list[dict]:
        if not self.path.exists():
            return []
        with self.connect(read_only=True) as con:
            cur = con.execute(f"SELECT * FROM {tables.SOURCES} ORDER BY loaded_at, file_name")
            columns = [d[0] for d in cur.description]
            return [dict(zip(columns, row)) for row in cur.fetchall()]

    def _require_table(self, name: str) -> None:
        names = self.table_names()
        if name not in names:
            listing = ", ".join(names) if names else "none yet"
            raise IceledgerError(f"{self.path}: no table named {name!r} (tables: {listing})")


def _flat_for_csv(table: pa.Table) -> pa.Table:
    """CSV holds no lists or structs: such a column is written as JSON text, one value a cell."""
    import pyarrow as pa

    for index, column in enumerate(table.schema):
        if pa.types.is_nested(column.type):
            values = [None if value is None else json.dumps(value, default=str)
                      for value in table.column(index).to_pylist()]
            table = table.set_column(index, column.name, pa.array(values, pa.string()))
    return table


def require_balanced(load: SourceLoad) -> None:
    """Refuse, in one line, a load whose rows read are not all loaded, quarantined or flagged."""
    if not load.accounting.balanced():
        a = load.accounting
        raise IceledgerError(
            f"{load.path.name}: row accounting does not balance (read {a.rows_read} != "
            f"loaded {a.rows_loaded} + quarantined {a.rows_quarantined} + "
            f"duplicate {a.rows_duplicate}); nothing was loaded"
        )


def replace_table(con: duckdb.DuckDBPyConnection, name: str, data: pa.Table) -> None:
    """Rebuild a derived table from scratch in one transaction, on an open write connection."""
    con.execute("BEGIN TRANSACTION")
    try:
        con.register("_incoming", data)
        con.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM _incoming')
        con.unregister("_incoming")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


class Loader:
    """Loads sources through one open write connection (see Warehouse.loader)."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con
        self.catalogue = _catalogue(con)

    def insert(self, name: str, query: str, part: pa.Table | None = None) -> None:
        """Append the rows of `query` to table `name`, matching columns by name: the table is
        made, or grown by the columns it lacks, to hold them (as `_append` does for parts).
        The query reads `part`, if given, as `part`: scanned where it is, never registered
        (see `_append`)."""
        incoming = self.con.sql(query)
        if name not in self.catalogue:
            columns = ", ".join(f"{ident(c)} {t}" for c, t in zip(
                incoming.columns, map(str, incoming.types), strict=True))
            self.con.execute(f"CREATE TABLE {ident(name)} ({columns})")
            self.catalogue[name] = list(zip(incoming.columns, map(str, incoming.types),
                                            strict=True))
        elif set(incoming.columns) - {c for c, t in self.catalogue[name] if t != _UNKNOWN_TYPE}:
            self.catalogue[name] = _with_missing_columns(self.con, name, incoming,
                                                         self.catalogue[name])
        self.con.execute(f"INSERT INTO {ident(name)} BY NAME {query}")

    def execute(self, query: str, part: pa.Table | None = None) -> list[tuple]:
        """Run one statement (reading `part` as `part`, as `insert` does); its rows."""
        return self.con.execute(query).fetchall()

    def has_source(self, sha256: str) -> bool:
        return self.con.execute(
            f"SELECT 1 FROM {tables.SOURCES} WHERE sha256 = ?", [sha256]).fetchone() is not None

    def loaded(self) -> set[str]:
        """The SHA-256 of every source already loaded."""
        return {sha256 for (sha256,) in self.con.execute(
            f"SELECT sha256 FROM {tables.SOURCES}").fetchall()}

    def load_together(self, loads: Sequence[SourceLoad]) -> dict[str, str]:
        """Load many sources in one transaction, with one insert per table for all of them.

        DuckDB's cost is per statement and per commit more than per row, so many small sources
        (a folder of workbooks, some thirty tables each) load far faster together than one
        transaction each. All or nothing, like a single load. Should DuckDB refuse the joint
        load, each source is loaded in a transaction of its own, so that the one it refuses
        fails alone. Sources already loaded are left alone. Returns each source that could
        not be loaded (by sha256) with DuckDB's reason.
        """
        import pyarrow as pa

        for load in loads:
            require_balanced(load)
        known = self.loaded()
        fresh = []
        for load in loads:
            if load.sha256 not in known:
                known.add(load.sha256)
                fresh.append(load)
        con = self.con
        con.execute("BEGIN TRANSACTION")
        try:
            for name, parts in _parts_by_table(fresh).items():
                _append(con, name, pa.concat_tables(parts, promote_options="permissive"),
                        self.catalogue)
            _register(con, fresh)
            if any(load.kind == "foia" for load in fresh):
                mark_derived(con, stale=True)
            con.execute("COMMIT")
        except (duckdb.Error, pa.ArrowException):
            con.execute("ROLLBACK")
            self.catalogue = _catalogue(con)
            return self._load_each(fresh)
        except BaseException:
            con.execute("ROLLBACK")
            self.catalogue = _catalogue(con)
            raise
        return {}

    def _load_each(self, loads: Sequence[SourceLoad]) -> dict[str, str]:
        import pyarrow as pa

        refused = {}
        for load in loads:
            try:
                self.load(load)
            except (duckdb.Error, pa.ArrowException) as exc:
                refused[load.sha256] = f"{load.path.name}: the warehouse refused it ({exc})"
        return refused

    def load(self, load: SourceLoad) -> bool:
        """Load one source atomically. Returns False (and changes nothing) if already loaded."""
        con = self.con
        if self.has_source(load.sha256):
            return False
        con.execute("BEGIN TRANSACTION")
        try:
            if load.write is not None:
                load.write(self)
            for name, data in load.tables.items():
                _append(con, name, data, self.catalogue)
            require_balanced(load)
            _register(con, [load])
            if load.kind == "foia":
                mark_derived(con, stale=True)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            self.catalogue = _catalogue(con)  # the rolled-back tables and columns are gone
            raise
        return True


def _parts_by_table(loads: Iterable[SourceLoad]) -> dict[str, list[pa.Table]]:
    """Each table's parts across the sources. Whole tables only: a stream of batches read once
    could not be loaded again, source by source, should the joint load be refused."""
    import pyarrow as pa

    parts: dict[str, list[pa.Table]] = {}
    for load in loads:
        for name, data in load.tables.items():
            if not isinstance(data, pa.Table):
                raise TypeError(f"{load.path.name}: {name} is a stream; load it with load()")
            parts.setdefault(name, []).append(data)
    return parts


def _catalogue(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, str]]]:
    """Every table's columns (name, type) in order, in one query."""
    tables: dict[str, list[tuple[str, str]]] = {}
    for table, column, kind in con.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'main' ORDER BY table_name, ordinal_position").fetchall():
        tables.setdefault(table, []).append((column, kind))
    return tables


def _append(
    con: duckdb.DuckDBPyConnection, name: str, data: pa.Table | Iterable[pa.RecordBatch],
    catalogue: dict[str, list[tuple[str, str]]],
) -> None:
    """Append every part to `name`, matching columns by name (absent ones read as NULL).

    `catalogue` holds each table's columns and is kept current as tables are made and grown.
    A part goes in by one `INSERT ... BY NAME` statement scanning it where it is, not through
    `register`: DuckDB keeps every registered Arrow object inserted from until the transaction
    ends, which held a whole file in memory; a scanned part is let go once inserted. One
    statement per part also binds once, where a relation projected and inserted bound three
    times (with some thirty small tables per workbook, that was most of the load's time).
    """
    import pyarrow as pa

    schema = None
    for part in [data] if isinstance(data, pa.Table) else data:
        if name not in catalogue:
            incoming = con.from_arrow(part)
            incoming.create(name)
            catalogue[name] = list(zip(incoming.columns, map(str, incoming.types), strict=True))
            schema = part.schema
            continue
        if part.schema != schema:
            schema = part.schema
            known = dict(catalogue[name])
            if any(known.get(column, _UNKNOWN_TYPE) == _UNKNOWN_TYPE for column in schema.names):
                catalogue[name] = _with_missing_columns(con, name, con.from_arrow(part),
                                                        catalogue[name])
        con.execute(f'INSERT INTO "{name}" BY NAME SELECT * FROM part')


def mark_derived(con: duckdb.DuckDBPyConnection, stale: bool) -> None:
    """Say whether the derived tables lag the loaded rows (inside the caller's transaction)."""
    con.execute(tables.catalogue()[tables.DERIVED_STATE].ddl())
    con.execute(f"DELETE FROM {tables.DERIVED_STATE}")
    con.execute(f"INSERT INTO {tables.DERIVED_STATE} VALUES (?)", [stale])


def derived_stale(con: duckdb.DuckDBPyConnection) -> bool:
    """True when a FOIA load committed and no derive has since (warehouses from before the
    marker have none, and count as fresh)."""
    if not table_exists(con, tables.DERIVED_STATE):
        return False
    rows = con.execute(f"SELECT bool_or(stale) FROM {tables.DERIVED_STATE}").fetchall()
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
    con: duckdb.DuckDBPyConnection, name: str, incoming: duckdb.DuckDBPyRelation,
    existing: list[tuple[str, str]],
) -> list[tuple[str, str]]:
    """The table's columns (name, type) in order, after adding those only `incoming` has.

    Later releases add columns; the table grows to hold them and older rows read as NULL.
    A column whose type is still unknown (DuckDB's NULL type: it was created from a part that
    held no value for it, an empty part say) takes its type from the first part that has one;
    otherwise no later value could be cast into it.
    """
    known = dict(existing)
    changes = []
    for column, kind in zip(incoming.columns, map(str, incoming.types), strict=True):
        if column not in known:
            changes.append(f'ADD COLUMN "{column}" {kind}')
            known[column] = kind
        elif known[column] == _UNKNOWN_TYPE and kind != _UNKNOWN_TYPE:
            changes.append(f'ALTER COLUMN "{column}" TYPE {kind}')
            known[column] = kind
    for change in changes:
        con.execute(f'ALTER TABLE "{name}" {change}')
    return list(known.items())


def _register(con: duckdb.DuckDBPyConnection, loads: Sequence[SourceLoad]) -> None:
    """Add the sources to the registry and their quarantined rows to the quarantine, one
    statement each: DuckDB's cost is per statement, not per row."""
    loaded_at = datetime.now(timezone.utc).replace(tzinfo=None)
    sources = [[
        load.sha256,
        load.path.name,
        str(load.path),
        load.kind,
        load.dataset,
        load.layout,
        loaded_at,
        load.accounting.rows_read,
        load.accounting.rows_loaded,
        load.accounting.rows_quarantined,
        load.accounting.rows_duplicate,
        json.dumps(sorted(load.tables)),
        json.dumps(load.warnings),
        load.synthetic,
    ] for load in loads]
    quarantined = [[load.sha256, load.path.name, q.sheet, q.row_number, q.cell, q.reason]
                   for load in loads for q in load.accounting.quarantined]
    for table, rows in ((tables.SOURCES, sources), (tables.QUARANTINE, quarantined)):
        if rows:
            one = "(" + ",".join("?" * len(rows[0])) + ")"
            con.execute(f"INSERT INTO {table} VALUES " + ",".join([one] * len(rows)),
                        [value for row in rows for value in row])
