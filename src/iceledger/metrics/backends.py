"""The engines a metric can run on: DuckDB (the warehouse itself) and Apache Spark.

Metrics are Ibis expressions, so the same definition runs on either. DuckDB reads the warehouse
file directly. Spark reads a Parquet lake (iceledger.lake): one a user exported and points at
(`--lake DIR`, on storage the cluster's workers can read), or, by default, one exported from the
warehouse into a temporary folder removed when the process exits. Spark runs locally (two cores)
unless a cluster's master is named (`--spark-master spark://HOST:PORT`); it is for running the
metric suite where data outgrow one machine, and for proving that the definitions do not depend
on DuckDB.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import socket
import sys
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import TypeVar

import ibis
import ibis.expr.types as ir
import pyarrow as pa
from ibis.backends.duckdb import Backend as IbisDuckDBBackend

from iceledger.byte_budget import ByteBudgetLRU
from iceledger.errors import IceledgerError
from iceledger.lake import export_lake, read_manifest
from iceledger.warehouse import STALE_DERIVED, Warehouse, derived_stale

BACKENDS = ("duckdb", "spark")
T = TypeVar("T")
# Compiled queries a backend keeps (a metric asked for with different parameters is another
# query); the least recently used is dropped first.
COMPILED_QUERIES_KEPT = 512
MEMTABLES_KEPT = 256
# Small answers about the records (each release's span, which columns it carries) a read-only
# warehouse keeps, the least recently used dropped first.
ANSWERS_KEPT = 512
# Results a backend keeps: each at most RESULT_BYTES_KEPT (a lookup's few rows), together at
# most RESULTS_BYTES_KEPT (a server holds a backend per thread).
RESULT_BYTES_KEPT = 256 * 2**10
RESULTS_BYTES_KEPT = 4 * 2**20
SCALAR_BYTES = 64


class ReadOnlyWarehouse(IbisDuckDBBackend):
    """Ibis's DuckDB backend on a warehouse opened read-only, remembering what cannot change.

    While the file is open read-only, DuckDB's lock keeps every writer out, so table schemas stay
    as they are: each is read once, not DESCRIBEd on every lookup. And Ibis's compiler often
    takes longer to turn a metric's expression into SQL than DuckDB takes to run it,
    so the SQL of each expression is kept and reused when an equal expression comes again (equal
    inputs, including memtables from `memtable`, give equal expressions). Small results are kept
    too, up to a byte budget, and so are the answers to the small questions every metric asks
    first (`remembered`: the days each release speaks for, the columns it carries): they run
    once per process, and cannot go stale while no writer can open the file.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._tables: dict[tuple, ir.Table] = {}
        self._compiled: OrderedDict[tuple, str] = OrderedDict()
        self._answers: OrderedDict[Hashable, object] = OrderedDict()
        self._results: ByteBudgetLRU = ByteBudgetLRU(RESULTS_BYTES_KEPT, result_bytes)

    def remembered(self, key: Hashable, answer: Callable[[], T]) -> T:
        """`answer()`, computed the first time `key` is asked for."""
        if key in self._answers:
            self._answers.move_to_end(key)
            return self._answers[key]
        value = self._answers[key] = answer()
        if len(self._answers) > ANSWERS_KEPT:
            self._answers.popitem(last=False)
        return value

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

    def to_pyarrow(self, expr: ir.Expr, /, *, params=None, limit=None, **kwargs):
        """A table, column or scalar, as Ibis gives it; a small one kept for the next call."""
        if params or kwargs:
            return super().to_pyarrow(expr, params=params, limit=limit, **kwargs)
        key = (expr.op(), limit)
        result = self._results.get(key)
        if result is None:
            result = super().to_pyarrow(expr, limit=limit)
            if result_bytes(result) <= RESULT_BYTES_KEPT:
                self._results.put(key, result)
        return result

    def forget_results(self) -> None:
        """Drop the kept results, so that the next call of each query runs it (a benchmark
        timing queries, not the cache)."""
        self._results.clear()


def result_bytes(result: pa.Table | pa.ChunkedArray | pa.Scalar) -> int:
    """The bytes a query's result holds: its buffers for a table or column; a scalar, which has
    no buffers of its own to measure, counted as one small row."""
    return getattr(result, "nbytes", SCALAR_BYTES)


def remembered(backend: ibis.BaseBackend, key: Hashable, answer: Callable[[], T]) -> T:
    """`answer()`, once per key on a read-only warehouse, whose rows cannot change while it is
    open; every time on other backends (a lake's files can be rewritten under Spark). `key` names
    the question, including any expression it reads (equal expressions hash equal)."""
    if isinstance(backend, ReadOnlyWarehouse):
        return backend.remembered(key, answer)
    return answer()


def duckdb_backend(warehouse_path: Path | str) -> ibis.BaseBackend:
    """The warehouse read-only as an Ibis backend, opened through the warehouse's own gate;
    refused while its derived tables are stale (an interrupted derive)."""
    warehouse = Warehouse(warehouse_path)
    backend = ReadOnlyWarehouse.from_connection(warehouse.open(read_only=True))
    if derived_stale(backend.con.cursor()):
        backend.disconnect()
        raise IceledgerError(f"{warehouse.path}: {STALE_DERIVED}")
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


SPARK_MASTER_ENV = "ICELEDGER_SPARK_MASTER"
LAKE_ENV = "ICELEDGER_LAKE"
# How long a named master may take to answer before the command gives up, in seconds.
MASTER_ANSWER_SECONDS = 10


def local_spark_session():
    """A small local Spark: two cores, few shuffle partitions, no web UI, UTC wall-clock."""
    return spark_session("local[2]")


def spark_session(master: str):
    """A Spark session on `master` (`local[N]` or a standalone cluster's `spark://HOST:PORT`)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise IceledgerError(
            "the Spark backend needs PySpark: pip install 'iceledger[spark]'"
        ) from None
    builder = (
        SparkSession.builder.master(master)
        .appName("iceledger")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        # Warehouse timestamps are local times without a zone; UTC keeps Spark from shifting them.
        .config("spark.sql.session.timeZone", "UTC")
        # Executors run this Python, so a cluster on this machine has the same packages.
        .config("spark.pyspark.python", sys.executable)
    )
    if master.startswith("spark://"):
        host, port = _master_address(master)
        _require_answer(master, host, port)
        if host in ("127.0.0.1", "localhost", "::1"):
            # A master on loopback can only reach a driver on loopback.
            builder = builder.config("spark.driver.host", "127.0.0.1")
    return builder.getOrCreate()


def _master_address(master: str) -> tuple[str, int]:
    address = master.removeprefix("spark://").split(",")[0]
    host, _, port = address.rpartition(":")
    if not host or not port.isdecimal():
        raise IceledgerError(f"Spark master {master!r}: expected spark://HOST:PORT")
    return host.strip("[]"), int(port)


def _require_answer(master: str, host: str, port: int) -> None:
    """Fail in one line, quickly, where Spark itself would retry a dead master for minutes."""
    try:
        socket.create_connection((host, port), timeout=MASTER_ANSWER_SECONDS).close()
    except OSError as exc:
        raise IceledgerError(
            f"Spark master {master} does not answer ({exc.strerror or exc}); start the cluster "
            "or check --spark-master / $" + SPARK_MASTER_ENV
        ) from None


def metric_tables() -> set[str]:
    from iceledger.metrics import REGISTRY

    return {table for metric in REGISTRY.values() for table in metric.tables}


def spark_backend(warehouse_path: Path | str | None = None, session=None, *,
                  lake: Path | str | None = None, master: str | None = None) -> ibis.BaseBackend:
    """An Ibis PySpark backend holding the lake's tables that registered metrics read.

    Without `lake`, the warehouse is exported to a temporary lake first.
    """
    if lake is None:
        if warehouse_path is None:
            raise IceledgerError("the Spark backend needs a warehouse or a lake (--lake DIR)")
        lake = Path(tempfile.mkdtemp(prefix="iceledger-spark-"))
        atexit.register(shutil.rmtree, lake, ignore_errors=True)
        export_lake(Warehouse(warehouse_path), lake)
    manifest = read_manifest(lake)
    session = session or spark_session(master or "local[2]")
    # Partition folders hold text; each column is cast back to its warehouse type below.
    session.conf.set("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
    backend = ibis.pyspark.connect(session)
    for name in sorted(metric_tables() & set(manifest["tables"])):
        entry = manifest["tables"][name]
        root = str(Path(lake) / name)
        frame = session.read.option("basePath", root).parquet(root)
        frame = frame.select(*(
            frame[c["name"]].cast(_spark_type(c["type"])) if c["name"] in entry["partition_by"]
            else frame[c["name"]] for c in entry["schema"]))
        frame.createOrReplaceTempView(name)
    return backend


def _spark_type(duckdb_type: str) -> str:
    """The Spark SQL type of a partition column (text, integers or dates in practice)."""
    return {"VARCHAR": "string", "INTEGER": "int", "BIGINT": "bigint", "DATE": "date",
            "DOUBLE": "double"}.get(duckdb_type, "string")


def connect(warehouse_path: Path | str, engine: str = "duckdb", *,
            lake: Path | str | None = None, spark_master: str | None = None) -> ibis.BaseBackend:
    """The backend a command runs on; Spark's lake and master default to their environment."""
    if engine == "duckdb":
        return duckdb_backend(warehouse_path)
    if engine == "spark":
        return spark_backend(warehouse_path, lake=lake or os.environ.get(LAKE_ENV) or None,
                             master=spark_master or os.environ.get(SPARK_MASTER_ENV) or None)
    raise IceledgerError(f"unknown backend {engine!r}; use one of {', '.join(BACKENDS)}")
