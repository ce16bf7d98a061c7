"""The engines a metric can run on: DuckDB (the warehouse itself) and Apache Spark.

Metrics are Ibis expressions, so the same definition runs on either. DuckDB reads the warehouse
file directly. Spark cannot read a DuckDB file, so the tables metrics read are exported to Parquet
in a temporary folder (removed when the process exits) and registered as views in a local Spark
session; Spark is for running the metric suite where data outgrow one machine, and for proving
that the definitions do not depend on DuckDB.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import ibis

from iceledger.errors import IceledgerError
from iceledger.warehouse import Warehouse

BACKENDS = ("duckdb", "spark")


def duckdb_backend(warehouse_path: Path | str) -> ibis.BaseBackend:
    path = Path(warehouse_path)
    if not path.exists():
        raise IceledgerError(
            f"{path}: no warehouse here yet; run `iceledger ingest ...` or `iceledger demo` "
            "first, or pass --warehouse PATH"
        )
    try:
        return ibis.duckdb.connect(str(path), read_only=True)
    except Exception as exc:  # duckdb raises several unrelated types for an unreadable file
        raise IceledgerError(f"{path}: cannot open the warehouse: {exc}") from exc


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
