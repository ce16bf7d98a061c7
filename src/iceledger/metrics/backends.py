"""The engines a metric can run on: DuckDB (the warehouse itself) and Apache Spark.

Metrics are Ibis expressions, so the same definition runs on either. DuckDB reads the warehouse
file directly. Spark cannot read a DuckDB file, so the tables metrics read are exported to Parquet
in a temporary folder (removed when the process exits) and registered as views in a local Spark
session; Spark is for running the metric suite where data outgrow one machine, and for proving
that the definitions do not depend on DuckDB.
"""

from __future__ import annotations

import atexit
import hashlib
import shutil
import tempfile
from collections import OrderedDict
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pyarrow as pa
from ibis.backends.duckdb import Backend as IbisDuckDBBackend

from iceledger.errors import IceledgerError
from iceledger.warehouse import STALE_DERIVED, Warehouse, derived_stale

BACKENDS = ("duckdb", "spark")
# Compiled queries a backend keeps (a metric asked for with different parameters is another
# query); the least recently used is dropped first.
COMPILED_QUERIES_KEPT = 512
MEMTABLES_KEPT = 256


class ReadOnlyWarehouse(IbisDuckDBBackend):
    """Ibis's DuckDB backend on a warehouse opened read-only, remembering what cannot change.

    While the file is open read-only, DuckDB's lock keeps every writer out, so table schemas stay
    as they are: each is read once, not DESCRIBEd on every lookup. And Ibis's compiler takes 10
    to 60 ms to turn a metric's expression into SQL, often longer than DuckDB takes to run it,
    so the SQL of each expression is kept and reused when an equal expression comes again (equal
    inputs, including memtables from `memtable`, give equal expressions). Only SQL text is kept:
    every call still runs its query.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._tables: dict[tuple, ir.Table] = {}
        self._compiled: OrderedDict[tuple, str] = OrderedDict()

    def table(self, name: str, /, *, database=None) -> ir.Table:
        key = (name, database)
        if key not in self._tables:
            self._tables[key] = super().table(name, database=database)
        return self._tables[key]

    def compile(self, expr: ir.Expr, /, *, limit=None, params=None, pretty: bool = False) -> str:
        if params:
            return super().compile(expr, limit=limit, params=params, pretty=pretty)
        key = (expr.op(), limit, pretty)
        sql = self._compiled.pop(key, None)
        if sql is None:
            sql = super().compile(expr, limit=limit, pretty=pretty)
        self._compiled[key] = sql
        if len(self._compiled) > COMPILED_QUERIES_KEPT:
            self._compiled.popitem(last=False)
        return sql


def duckdb_backend(warehouse_path: Path | str) -> ibis.BaseBackend:
    path = Path(warehouse_path)
    if not path.exists():
        raise IceledgerError(
            f"{path}: no warehouse here yet; run `iceledger ingest ...` or `iceledger demo` "
            "first, or pass --warehouse PATH"
        )
    try:
        backend = ReadOnlyWarehouse().connect(str(path), read_only=True)
    except Exception as exc:  # duckdb raises several unrelated types for an unreadable file
        raise IceledgerError(f"{path}: cannot open the warehouse: {exc}") from exc
    if derived_stale(backend.con.cursor()):
        backend.disconnect()
        raise IceledgerError(f"{path}: {STALE_DERIVED}")
    return backend


_memtables: OrderedDict[bytes, ir.Table] = OrderedDict()


def memtable(data: pa.Table) -> ir.Table:
    """`ibis.memtable(data)`, the same table for the same contents.

    Ibis tells memtables apart by object, so two built from equal data make two unequal
    expressions; the same one for equal data lets ReadOnlyWarehouse reuse compiled SQL.
    """
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, data.schema) as writer:
        writer.write_table(data)
    digest = hashlib.blake2b(sink.getvalue().to_pybytes(), digest_size=16).digest()
    table = _memtables.pop(digest, None)
    if table is None:
        table = ibis.memtable(data)
    _memtables[digest] = table
    if len(_memtables) > MEMTABLES_KEPT:
        _memtables.popitem(last=False)
    return table


def local_spark_session():
    """A small local Spark: two cores, few shuffle partitions, no web UI, UTC wall-clock."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise IceledgerError(
            "the Spark backend needs PySpark: pip install 'iceledger[spark]'"
        ) from None
    return (
        SparkSession.builder.master("local[2]")
        .appName("iceledger")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        # Warehouse timestamps are local times without a zone; UTC keeps Spark from shifting them.
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )


def metric_tables() -> set[str]:
    from iceledger.metrics import REGISTRY

    return {table for metric in REGISTRY.values() for table in metric.tables}


def spark_backend(warehouse_path: Path | str, session=None) -> ibis.BaseBackend:
    """An Ibis PySpark backend holding the warehouse tables that registered metrics read."""
    warehouse = Warehouse(warehouse_path)
    wanted = sorted(metric_tables() & set(warehouse.table_names()))
    session = session or local_spark_session()
    export_dir = Path(tempfile.mkdtemp(prefix="iceledger-spark-"))
    atexit.register(shutil.rmtree, export_dir, ignore_errors=True)
    with warehouse.connect(read_only=True) as con:
        for name in wanted:
            target = export_dir / f"{name}.parquet"
            con.execute(f"COPY \"{name}\" TO '{target}' (FORMAT parquet)")
    backend = ibis.pyspark.connect(session)
    for name in wanted:
        backend.read_parquet(str(export_dir / f"{name}.parquet"), table_name=name)
    return backend


def connect(warehouse_path: Path | str, engine: str = "duckdb") -> ibis.BaseBackend:
    if engine == "duckdb":
        return duckdb_backend(warehouse_path)
    if engine == "spark":
        return spark_backend(warehouse_path)
    raise IceledgerError(f"unknown backend {engine!r}; use one of {', '.join(BACKENDS)}")
